//! The stage traits.
//!
//! Transforms (enrich, classify) are plain synchronous functions over an
//! event; the topology runs them over whole batches on its own tasks.
//! Normalization is not a [`Transform`]: its input is raw bytes, not events.
//! Sinks are asynchronous: they receive the classified events of a batch,
//! shared with the other sinks, and a share of the batch's acknowledgement,
//! and resolve that share once the events are delivered (or given up, in
//! which case they go to the dead-letter output first).
//!
//! The fan-out is the topology's: it takes a classified [`Batch`] apart,
//! sends its dead letters to the dead-letter output with one share of the
//! token, wraps the events in a [`SharedEvents`] and hands each sink its
//! own share. Offsets move only when every share is resolved.

use std::future::Future;
use std::sync::Arc;

use crate::batch::{AckToken, Batch};
use crate::dead_letter::DeadLetter;
use crate::event::Event;

/// The events of one batch, shared read-only by every sink.
pub type SharedEvents = Arc<Vec<Event>>;

/// What a stage gives up on for good, with the acknowledgement share that
/// the dead-letter output resolves once the letters are written.
#[derive(Debug)]
pub struct DeadLetterBatch {
    /// The letters, in order.
    pub letters: Vec<DeadLetter>,
    /// Resolved by the dead-letter output after a confirmed write.
    pub ack: AckToken,
}

/// A synchronous, in-place event transform.
pub trait Transform: Send + Sync {
    /// Transforms one event.
    fn apply(&self, event: &mut Event);

    /// Transforms every event of a batch.
    fn transform(&self, batch: &mut Batch) {
        for event in &mut batch.events {
            self.apply(event);
        }
    }
}

/// Why a sink stopped.
#[derive(Debug, thiserror::Error)]
#[error("sink {sink} failed")]
pub struct SinkError {
    /// The sink's name.
    pub sink: &'static str,
    /// What went wrong.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A destination for events.
pub trait Sink: Send {
    /// A short name for logs and metrics (`grpc`, `prometheus`).
    fn name(&self) -> &'static str;

    /// Takes the events of a batch. The sink resolves `ack` once they are
    /// delivered (or handed to the dead-letter output); it may hold the
    /// token while it waits, and the source's offsets wait with it.
    /// Returning means the sink has taken the events, not delivered them;
    /// a sink that is full waits here, which is the pipeline's
    /// backpressure.
    fn accept(
        &mut self,
        events: SharedEvents,
        ack: AckToken,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Delivers what is buffered; called at shutdown.
    fn flush(&mut self) -> impl Future<Output = Result<(), SinkError>> + Send;
}
