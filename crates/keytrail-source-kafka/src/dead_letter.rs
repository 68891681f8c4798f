//! The dead-letter output: where records that cannot be normalized (and
//! events a SIEM refused for good) go, with their reason and origin.
//!
//! A dead letter counts as acknowledged only once its write is confirmed:
//! the Kafka delivery report for a topic, `fdatasync` for a file. A failed write
//! is retried with backoff until it succeeds or the pipeline stops; its
//! acknowledgement waits meanwhile, and so do the offsets behind it.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use keytrail_core::{DeadLetter, DeadLetterBatch};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::config::{DeadLetterConfig, KafkaConfig};
use crate::telemetry;

/// Why a dead letter could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// The producer could not be created.
    #[error("cannot create the dead-letter producer")]
    Producer(#[source] rdkafka::error::KafkaError),
    /// The broker refused or timed out.
    #[error("cannot write to dead-letter topic {topic}")]
    Produce {
        /// Topic.
        topic: String,
        /// Cause.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The file could not be opened, written or synced.
    #[error("cannot write dead-letter file {}", path.display())]
    File {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Neither or both targets configured.
    #[error("dead_letter needs exactly one of `topic` or `path`")]
    Target,
}

/// Writes dead letters to the configured target.
pub enum DeadLetterWriter {
    /// A Kafka topic.
    Kafka {
        /// The producer.
        producer: FutureProducer,
        /// Topic name.
        topic: String,
    },
    /// An NDJSON file.
    File {
        /// Path, for errors.
        path: PathBuf,
        /// Open for appending.
        file: tokio::fs::File,
    },
}

#[derive(Serialize)]
struct FileLine<'a> {
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<i64>,
    line: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_base64: Option<String>,
}

const PRODUCE_TIMEOUT: Duration = Duration::from_secs(30);

/// A file target's lines are written once this many bytes are ready.
const FILE_WRITE_BYTES: usize = 1024 * 1024;

impl DeadLetterWriter {
    /// Opens the target of `config` (the topic uses the `[kafka]` brokers
    /// and security settings).
    pub async fn open(
        config: &DeadLetterConfig,
        kafka: &KafkaConfig,
    ) -> Result<DeadLetterWriter, DeadLetterError> {
        match (&config.topic, &config.path) {
            (Some(topic), None) => {
                let producer = kafka
                    .producer_config()
                    .create()
                    .map_err(DeadLetterError::Producer)?;
                Ok(DeadLetterWriter::Kafka {
                    producer,
                    topic: topic.clone(),
                })
            }
            (None, Some(path)) => DeadLetterWriter::file(path.clone()).await,
            _ => Err(DeadLetterError::Target),
        }
    }

    /// An NDJSON file target, created if missing, appended to.
    pub async fn file(path: PathBuf) -> Result<DeadLetterWriter, DeadLetterError> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(|source| DeadLetterError::File {
                path: path.clone(),
                source,
            })?;
        Ok(DeadLetterWriter::File { path, file })
    }

    /// Writes the letters and returns once the write is confirmed: one
    /// `fdatasync` for all of them, or every delivery report. A file write
    /// that fails part way is cut back to where it started, so that the
    /// retry's first line does not run on from a fragment.
    pub async fn write<'a>(
        &mut self,
        letters: impl IntoIterator<Item = &'a DeadLetter>,
    ) -> Result<(), DeadLetterError> {
        match self {
            DeadLetterWriter::Kafka { producer, topic } => {
                let sends = letters.into_iter().map(|letter| {
                    let headers = headers(letter);
                    let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic.as_str())
                        .payload(&letter.payload[..])
                        .headers(headers);
                    producer.send(record, Timeout::After(PRODUCE_TIMEOUT))
                });
                for result in futures::future::join_all(sends).await {
                    result.map_err(|(source, _)| DeadLetterError::Produce {
                        topic: topic.clone(),
                        source,
                    })?;
                }
                Ok(())
            }
            DeadLetterWriter::File { path, file } => {
                let io = |source| DeadLetterError::File {
                    path: path.clone(),
                    source,
                };
                let start = file.metadata().await.map_err(io)?.len();
                // Collected first: iterating the caller's iterator (a
                // closure over its batches) across the writes' awaits left
                // rustc unable to prove the spawned task's future `Send`
                // (its known limit with higher-ranked lifetimes).
                let letters: Vec<&DeadLetter> = letters.into_iter().collect();
                let written = async {
                    let mut buf = Vec::new();
                    for letter in letters {
                        let text = std::str::from_utf8(&letter.payload).ok();
                        let line = FileLine {
                            reason: letter.reason.to_string(),
                            detail: letter.detail.as_deref(),
                            topic: letter.origin.as_ref().map(|o| &*o.topic),
                            partition: letter.origin.as_ref().map(|o| o.partition),
                            offset: letter.origin.as_ref().map(|o| o.offset),
                            line: letter.line,
                            payload: text,
                            payload_base64: text.is_none().then(|| {
                                base64::engine::general_purpose::STANDARD.encode(&letter.payload)
                            }),
                        };
                        serde_json::to_writer(&mut buf, &line)?;
                        buf.push(b'\n');
                        // A group can hold many large letters (events a SIEM
                        // refused): written in pieces, their JSON lines are
                        // never in memory all at once.
                        if buf.len() >= FILE_WRITE_BYTES {
                            file.write_all(&buf).await?;
                            buf.clear();
                        }
                    }
                    file.write_all(&buf).await?;
                    file.flush().await?;
                    file.sync_data().await
                }
                .await;
                if let Err(error) = written {
                    // Best effort: if even this fails, the error below is
                    // what gets reported and retried.
                    let _ = file.set_len(start).await;
                    return Err(io(error));
                }
                Ok(())
            }
        }
    }
}

fn headers(letter: &DeadLetter) -> OwnedHeaders {
    let reason = letter.reason.to_string();
    let line = letter.line.to_string();
    let mut headers = OwnedHeaders::new()
        .insert(Header {
            key: "keytrail.reason",
            value: Some(reason.as_bytes()),
        })
        .insert(Header {
            key: "keytrail.line",
            value: Some(line.as_bytes()),
        });
    if let Some(detail) = &letter.detail {
        headers = headers.insert(Header {
            key: "keytrail.detail",
            value: Some(detail.as_bytes()),
        });
    }
    if let Some(origin) = &letter.origin {
        let partition = origin.partition.to_string();
        let offset = origin.offset.to_string();
        headers = headers
            .insert(Header {
                key: "keytrail.topic",
                value: Some(origin.topic.as_bytes()),
            })
            .insert(Header {
                key: "keytrail.partition",
                value: Some(partition.as_bytes()),
            })
            .insert(Header {
                key: "keytrail.offset",
                value: Some(offset.as_bytes()),
            });
    }
    headers
}

/// At most this many batches share one confirmation.
const GROUP_MAX_BATCHES: usize = 64;

/// How long the first batch of a group waits for more. A dead letter's
/// acknowledgement lets its offsets be committed (every
/// `commit_interval_ms`), and a revocation or shutdown waits for it; the
/// events' delivery to the SIEM does not. Waiting delays those by at most
/// this much, and a busy pipeline pays for one `fdatasync` per group
/// instead of one per batch.
const GROUP_LINGER: Duration = Duration::from_millis(20);

/// The dead-letter task: writes the batches that arrive within
/// [`GROUP_LINGER`] of the first one together (retrying with backoff until the
/// write is confirmed), then acknowledges each. Ends when the channel
/// closes.
pub async fn run(mut writer: DeadLetterWriter, mut input: mpsc::Receiver<DeadLetterBatch>) {
    let mut received = Vec::with_capacity(GROUP_MAX_BATCHES);
    let mut group = Vec::with_capacity(GROUP_MAX_BATCHES);
    while input.recv_many(&mut received, GROUP_MAX_BATCHES).await > 0 {
        let deadline = tokio::time::Instant::now() + GROUP_LINGER;
        while received.len() < GROUP_MAX_BATCHES {
            let room = GROUP_MAX_BATCHES - received.len();
            match tokio::time::timeout_at(deadline, input.recv_many(&mut received, room)).await {
                // The channel closed, or the group waited long enough.
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        for batch in received.drain(..) {
            // A batch without letters has nothing to wait for.
            if batch.letters.is_empty() {
                batch.ack.ack();
            } else {
                group.push(batch);
            }
        }
        if group.is_empty() {
            continue;
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            match writer
                .write(group.iter().flat_map(|batch| &batch.letters))
                .await
            {
                Ok(()) => break,
                Err(error) => {
                    telemetry::dead_letter_write_failed(&error);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
        for DeadLetterBatch { letters, ack } in group.drain(..) {
            telemetry::dead_lettered(&letters);
            ack.ack();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use keytrail_core::{AckToken, BatchStatus, DeadLetterReason, Origin, Topic};

    use super::*;

    #[tokio::test]
    async fn file_letters_keep_reason_origin_and_bytes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("dead.jsonl");
        let mut writer = DeadLetterWriter::file(path.clone()).await.expect("opens");
        let letters = [
            DeadLetter {
                reason: DeadLetterReason::InvalidJson,
                detail: Some("expected value at line 1 column 1".into()),
                origin: Some(Origin {
                    topic: Topic::from("audit"),
                    partition: 3,
                    offset: 41,
                }),
                line: 2,
                payload: b"not json".to_vec(),
            },
            DeadLetter {
                reason: DeadLetterReason::InvalidUtf8,
                detail: None,
                origin: None,
                line: 1,
                payload: vec![0xff, 0xfe],
            },
        ];
        writer.write(&letters).await.expect("writes");
        let text = std::fs::read_to_string(&path).expect("reads back");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines[0]["reason"], "invalid_json");
        assert_eq!(lines[0]["offset"], 41);
        assert_eq!(lines[0]["payload"], "not json");
        assert_eq!(lines[1]["payload_base64"], "//4=");
        assert!(lines[1].get("payload").is_none());
    }

    fn letter(offset: i64) -> DeadLetter {
        DeadLetter {
            reason: DeadLetterReason::InvalidJson,
            detail: None,
            origin: Some(Origin {
                topic: Topic::from("audit"),
                partition: 0,
                offset,
            }),
            line: 1,
            payload: b"{".to_vec(),
        }
    }

    /// Batches already queued (one of them empty) are all written, in
    /// order, and every one is acknowledged as delivered; a token dropped
    /// unresolved would report `Failed`.
    #[tokio::test]
    async fn queued_batches_are_written_in_order_and_each_acknowledged() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("dead.jsonl");
        let writer = DeadLetterWriter::file(path.clone()).await.expect("opens");
        let statuses = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel(8);
        let batches = [vec![letter(1), letter(2)], Vec::new(), vec![letter(3)]];
        for (index, letters) in batches.into_iter().enumerate() {
            let statuses = Arc::clone(&statuses);
            let ack = AckToken::new(move |status| {
                statuses.lock().expect("not poisoned").push((index, status));
            });
            tx.send(DeadLetterBatch { letters, ack })
                .await
                .expect("queued");
        }
        drop(tx);
        run(writer, rx).await;

        let text = std::fs::read_to_string(&path).expect("reads back");
        let offsets: Vec<i64> = text
            .lines()
            .map(|l| {
                let line: serde_json::Value = serde_json::from_str(l).expect("json line");
                line["offset"].as_i64().expect("offset")
            })
            .collect();
        assert_eq!(offsets, [1, 2, 3]);
        let mut statuses = statuses.lock().expect("not poisoned").clone();
        statuses.sort_by_key(|(index, _)| *index);
        assert_eq!(
            statuses,
            [
                (0, BatchStatus::Delivered),
                (1, BatchStatus::Delivered),
                (2, BatchStatus::Delivered)
            ]
        );
    }

    /// Letters larger in all than one file write are written in pieces and
    /// read back whole, in order.
    #[tokio::test]
    async fn a_group_larger_than_a_file_write_is_read_back_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("dead.jsonl");
        let mut writer = DeadLetterWriter::file(path.clone()).await.expect("opens");
        let letters: Vec<DeadLetter> = (0..7)
            .map(|offset| DeadLetter {
                payload: format!("{offset}{}", "x".repeat(FILE_WRITE_BYTES / 3)).into_bytes(),
                ..letter(offset)
            })
            .collect();
        writer.write(&letters).await.expect("writes");
        let text = std::fs::read_to_string(&path).expect("reads back");
        let payloads: Vec<String> = text
            .lines()
            .map(|l| {
                let line: serde_json::Value = serde_json::from_str(l).expect("json line");
                line["payload"].as_str().expect("payload").to_owned()
            })
            .collect();
        let expected: Vec<String> = letters
            .iter()
            .map(|l| String::from_utf8(l.payload.clone()).expect("utf-8"))
            .collect();
        assert_eq!(payloads, expected);
    }

    /// The offsets in the dead-letter file, in file order.
    fn file_offsets(path: &std::path::Path) -> Vec<i64> {
        std::fs::read_to_string(path)
            .expect("reads back")
            .lines()
            .map(|l| {
                let line: serde_json::Value = serde_json::from_str(l).expect("json line");
                line["offset"].as_i64().expect("offset")
            })
            .collect()
    }

    /// A batch of one letter whose acknowledgement is sent on the channel.
    fn batch_reporting(
        offset: i64,
        statuses: &mpsc::UnboundedSender<(i64, BatchStatus)>,
    ) -> DeadLetterBatch {
        let statuses = statuses.clone();
        DeadLetterBatch {
            letters: vec![letter(offset)],
            ack: AckToken::new(move |status| {
                let _ = statuses.send((offset, status));
            }),
        }
    }

    /// A batch that arrives within [`GROUP_LINGER`] of the first is written
    /// with it: when the first is acknowledged, the second is in the file
    /// too, and not before the window has passed. (Written one group at a
    /// time, the first would be acknowledged alone, while the task waits
    /// out the second's window.)
    #[tokio::test(start_paused = true)]
    async fn a_batch_within_the_window_is_written_with_the_first() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("dead.jsonl");
        let writer = DeadLetterWriter::file(path.clone()).await.expect("opens");
        let (statuses, mut acknowledged) = mpsc::unbounded_channel();
        let (tx, rx) = mpsc::channel(8);
        let task = tokio::spawn(run(writer, rx));

        let start = tokio::time::Instant::now();
        tx.send(batch_reporting(1, &statuses))
            .await
            .expect("queued");
        tokio::time::sleep(GROUP_LINGER / 2).await;
        tx.send(batch_reporting(2, &statuses))
            .await
            .expect("queued");
        let first = acknowledged.recv().await.expect("acknowledged");
        assert_eq!(first, (1, BatchStatus::Delivered));
        assert!(
            start.elapsed() >= GROUP_LINGER,
            "the group waited out its window"
        );
        assert_eq!(
            file_offsets(&path),
            [1, 2],
            "the second batch was written with it"
        );

        // Long after the window: written and acknowledged after the others.
        tokio::time::sleep(GROUP_LINGER * 5).await;
        tx.send(batch_reporting(3, &statuses))
            .await
            .expect("queued");
        drop(tx);
        task.await.expect("the task ends when the channel closes");
        drop(statuses);
        let mut rest = Vec::new();
        while let Some(status) = acknowledged.recv().await {
            rest.push(status);
        }
        assert_eq!(
            rest,
            [(2, BatchStatus::Delivered), (3, BatchStatus::Delivered)]
        );
        assert_eq!(file_offsets(&path), [1, 2, 3]);
    }

    /// While every write fails (a full device), the batch is retried and
    /// never acknowledged as delivered; stopping the task reports it failed,
    /// so its offsets are never committed.
    #[cfg(target_os = "linux")]
    #[tokio::test(start_paused = true)]
    async fn a_batch_is_not_acknowledged_while_its_write_fails() {
        let full = std::path::Path::new("/dev/full");
        assert!(full.exists(), "Linux has /dev/full, whose writes fail");
        let writer = DeadLetterWriter::file(full.to_path_buf())
            .await
            .expect("opens");
        let (statuses, mut acknowledged) = mpsc::unbounded_channel();
        let (tx, rx) = mpsc::channel(8);
        tx.send(batch_reporting(1, &statuses))
            .await
            .expect("queued");
        drop(statuses);
        let task = tokio::spawn(run(writer, rx));
        // A minute of retries, with the backoff doubling to 10 s.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(
            acknowledged.try_recv().is_err(),
            "nothing is acknowledged while the write fails"
        );
        assert!(!task.is_finished(), "the task keeps retrying");
        task.abort();
        let _ = task.await;
        assert_eq!(acknowledged.recv().await, Some((1, BatchStatus::Failed)));
    }
}
