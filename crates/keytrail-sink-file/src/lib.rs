//! The file sink: normalized events appended to a file, one JSON object per
//! line (the same form `keytrail normalize` prints).
//!
//! It is the simplest sink that keeps the at-least-once promise: a batch is
//! acknowledged only after its lines are written and (by default) synced to
//! disk, so Kafka offsets never pass an event that could still be lost in a
//! page cache. Useful as a local archive, for debugging, and in tests.

use std::path::PathBuf;

use keytrail_core::{AckToken, SharedEvents, Sink, SinkError};
use metrics::counter;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

/// `[file]`: the file sink.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// File to append events to (created if missing).
    pub path: PathBuf,
    /// Sync each batch to disk before acknowledging it (`fdatasync`).
    #[serde(default = "default_sync")]
    pub sync: bool,
}

fn default_sync() -> bool {
    true
}

/// Why the file sink failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write events to {}", path.display())]
pub struct FileSinkError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The file sink.
pub struct FileSink {
    path: PathBuf,
    file: tokio::fs::File,
    sync: bool,
    buf: Vec<u8>,
}

impl FileSink {
    /// Opens (or creates) the file for appending.
    pub async fn open(config: &FileSinkConfig) -> Result<FileSink, FileSinkError> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.path)
            .await
            .map_err(|source| FileSinkError {
                path: config.path.clone(),
                source,
            })?;
        Ok(FileSink {
            path: config.path.clone(),
            file,
            sync: config.sync,
            buf: Vec::with_capacity(1 << 16),
        })
    }

    async fn write(&mut self, events: &SharedEvents) -> std::io::Result<()> {
        self.buf.clear();
        for event in events.iter() {
            event.write_json(&mut self.buf);
            self.buf.push(b'\n');
        }
        self.file.write_all(&self.buf).await?;
        self.file.flush().await?;
        if self.sync {
            self.file.sync_data().await?;
        }
        Ok(())
    }

    fn error(&self, source: std::io::Error) -> SinkError {
        SinkError {
            sink: "file",
            source: Box::new(FileSinkError {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

impl Sink for FileSink {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn accept(&mut self, events: SharedEvents, ack: AckToken) -> Result<(), SinkError> {
        match self.write(&events).await {
            Ok(()) => {
                counter!("keytrail_stage_events_out_total", "stage" => "sink_file")
                    .increment(events.len() as u64);
                ack.ack();
                Ok(())
            }
            Err(source) => {
                ack.fail();
                Err(self.error(source))
            }
        }
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        match self.file.sync_all().await {
            Ok(()) => Ok(()),
            Err(source) => Err(self.error(source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use keytrail_core::{BatchStatus, Event, Source, Timestamp};

    use super::*;

    #[tokio::test]
    async fn appends_json_lines_and_acks_after_the_write() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("events.jsonl");
        let mut sink = FileSink::open(&FileSinkConfig {
            path: path.clone(),
            sync: true,
        })
        .await
        .expect("opens");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink_seen = Arc::clone(&seen);
        let ack = AckToken::new(move |s| sink_seen.lock().expect("lock").push(s));
        let events: Vec<Event> = (0..3)
            .map(|n| {
                Event::new(
                    Timestamp::from_millis(n),
                    Source::SecurosysKm,
                    format!("E{n}").into(),
                )
            })
            .collect();
        sink.accept(Arc::new(events.into()), ack)
            .await
            .expect("writes");
        assert_eq!(*seen.lock().expect("lock"), [BatchStatus::Delivered]);
        let text = std::fs::read_to_string(&path).expect("reads");
        let actions: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("json")["action"].to_string()
            })
            .collect();
        assert_eq!(actions, ["\"E0\"", "\"E1\"", "\"E2\""]);
    }
}
