//! The dead-letter output: where records that cannot be normalized (and
//! events a SIEM refused for good) go, with their reason and origin.
//!
//! A dead letter counts as acknowledged only once its write is confirmed:
//! the Kafka delivery report for a topic, `fsync` for a file. A failed write
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

    /// Writes the letters and returns once the write is confirmed.
    pub async fn write(&mut self, letters: &[DeadLetter]) -> Result<(), DeadLetterError> {
        match self {
            DeadLetterWriter::Kafka { producer, topic } => {
                let sends = letters.iter().map(|letter| {
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
                let mut buf = Vec::with_capacity(letters.len() * 256);
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
                    serde_json::to_writer(&mut buf, &line).map_err(|e| DeadLetterError::File {
                        path: path.clone(),
                        source: e.into(),
                    })?;
                    buf.push(b'\n');
                }
                let io = |source| DeadLetterError::File {
                    path: path.clone(),
                    source,
                };
                file.write_all(&buf).await.map_err(io)?;
                file.flush().await.map_err(io)?;
                file.sync_data().await.map_err(io)
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

/// The dead-letter task: writes each batch (retrying with backoff until the
/// write is confirmed), then acknowledges it. Ends when the channel closes.
pub async fn run(mut writer: DeadLetterWriter, mut input: mpsc::Receiver<DeadLetterBatch>) {
    while let Some(DeadLetterBatch { letters, ack }) = input.recv().await {
        if letters.is_empty() {
            ack.ack();
            continue;
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            match writer.write(&letters).await {
                Ok(()) => {
                    telemetry::dead_lettered(&letters);
                    ack.ack();
                    break;
                }
                Err(error) => {
                    telemetry::dead_letter_write_failed(&error);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use keytrail_core::{DeadLetterReason, Origin};

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
                    topic: Arc::from("audit"),
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
}
