//! Batches and acknowledgements: how at-least-once is carried through the
//! pipeline.
//!
//! A [`Batch`] is what flows through the bounded channels: the events (and
//! dead letters) made from a run of Kafka records, plus one [`AckToken`]
//! standing for those records. The token is cloned once per sink that must
//! confirm the batch. Each clone is resolved exactly once: [`AckToken::ack`]
//! when the sink has delivered (the SIEM acknowledged, the dead letter was
//! written), [`AckToken::fail`] when it has given up. A clone dropped without
//! either counts as a failure, so a bug or a panic can never look like a
//! delivery. When the last clone is gone the source is told the batch's
//! status once; only a delivered batch lets its offsets be committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use crate::dead_letter::DeadLetter;
use crate::event::{Event, Origin};
use crate::time::Timestamp;

/// The final status of a batch, reported to the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStatus {
    /// Every sink confirmed it.
    Delivered,
    /// At least one sink gave up or dropped it; its offsets must not be
    /// committed (the records are replayed after a restart or rebalance).
    Failed,
}

type Notify = Box<dyn FnOnce(BatchStatus) + Send + Sync>;

struct AckState {
    failed: AtomicBool,
    notify: Option<Notify>,
}

impl Drop for AckState {
    fn drop(&mut self) {
        if let Some(notify) = self.notify.take() {
            let status = if self.failed.load(Ordering::Acquire) {
                BatchStatus::Failed
            } else {
                BatchStatus::Delivered
            };
            notify(status);
        }
    }
}

/// One sink's share of a batch's acknowledgement. See the module docs.
pub struct AckToken {
    state: Arc<AckState>,
    resolved: bool,
}

impl AckToken {
    /// A token whose final status is passed to `notify` once every clone is
    /// resolved or dropped.
    pub fn new(notify: impl FnOnce(BatchStatus) + Send + Sync + 'static) -> AckToken {
        AckToken {
            state: Arc::new(AckState {
                failed: AtomicBool::new(false),
                notify: Some(Box::new(notify)),
            }),
            resolved: false,
        }
    }

    /// A token nobody waits for (tests, the `normalize` command).
    pub fn detached() -> AckToken {
        AckToken {
            state: Arc::new(AckState {
                failed: AtomicBool::new(false),
                notify: None,
            }),
            resolved: false,
        }
    }

    /// This share was delivered.
    pub fn ack(mut self) {
        self.resolved = true;
    }

    /// This share was not delivered and will not be.
    pub fn fail(mut self) {
        self.state.failed.store(true, Ordering::Release);
        self.resolved = true;
    }
}

impl Clone for AckToken {
    /// Another share that must be resolved on its own.
    fn clone(&self) -> AckToken {
        AckToken {
            state: Arc::clone(&self.state),
            resolved: false,
        }
    }
}

impl Drop for AckToken {
    fn drop(&mut self) {
        if !self.resolved {
            self.state.failed.store(true, Ordering::Release);
        }
    }
}

impl std::fmt::Debug for AckToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckToken")
            .field("shares", &Arc::strong_count(&self.state))
            .finish()
    }
}

/// What the source knows about a record besides its bytes.
#[derive(Debug, Clone, Default)]
pub struct RecordMeta {
    /// Topic, partition and offset, when the record came from Kafka.
    pub origin: Option<Origin>,
    /// The Kafka record timestamp (used when the event carries no time).
    pub timestamp: Option<Timestamp>,
    /// The `account` header set by IBM Event Routing.
    pub account: Option<String>,
    /// The `region` header set by IBM Event Routing.
    pub region: Option<String>,
}

/// One Kafka record (or file line) before normalization.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// The record value, as produced. The Kafka source copies the values
    /// of many records into one buffer, which this shares.
    pub payload: Bytes,
    /// Origin, timestamp and routing headers.
    pub meta: RecordMeta,
}

/// Records on their way from the source to the normalizer, with the
/// acknowledgement that stands for them.
#[derive(Debug)]
pub struct RawBatch {
    /// The records, in consumption order.
    pub records: Vec<RawRecord>,
    /// Resolved by the sinks downstream.
    pub ack: AckToken,
}

/// The unit that flows between stages.
#[derive(Debug)]
pub struct Batch {
    /// Normalized events, in record order.
    pub events: Vec<Event>,
    /// Records (or lines) that did not normalize, in record order.
    pub dead_letters: Vec<DeadLetter>,
    /// Acknowledgement of the records the batch was made from.
    pub ack: AckToken,
}

impl Batch {
    /// An empty batch standing for the records behind `ack`.
    pub fn new(ack: AckToken) -> Batch {
        Batch {
            events: Vec::new(),
            dead_letters: Vec::new(),
            ack,
        }
    }

    /// Events plus dead letters.
    pub fn len(&self) -> usize {
        self.events.len() + self.dead_letters.len()
    }

    /// True when the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn tracked() -> (AckToken, Arc<Mutex<Vec<BatchStatus>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let token = AckToken::new(move |s| sink.lock().expect("lock").push(s));
        (token, seen)
    }

    #[test]
    fn delivered_only_when_every_share_acks() {
        let (token, seen) = tracked();
        let second = token.clone();
        token.ack();
        assert!(
            seen.lock().expect("lock").is_empty(),
            "one share still open"
        );
        second.ack();
        assert_eq!(*seen.lock().expect("lock"), [BatchStatus::Delivered]);
    }

    #[test]
    fn one_failed_share_fails_the_batch() {
        let (token, seen) = tracked();
        let second = token.clone();
        second.fail();
        token.ack();
        assert_eq!(*seen.lock().expect("lock"), [BatchStatus::Failed]);
    }

    #[test]
    fn a_dropped_share_counts_as_failure() {
        let (token, seen) = tracked();
        let second = token.clone();
        token.ack();
        drop(second);
        assert_eq!(*seen.lock().expect("lock"), [BatchStatus::Failed]);
    }
}
