//! The stage traits.
//!
//! Transforms (enrich, classify) are plain synchronous functions over an
//! event; the topology runs them over whole batches on its own tasks.
//! Normalization is not a [`Transform`]: its input is raw bytes, not events.
//! Sinks are asynchronous: they receive a shared batch and a share of its
//! acknowledgement, and resolve that share when the batch is delivered.

use std::future::Future;
use std::sync::Arc;

use crate::batch::{AckToken, Batch};
use crate::event::Event;

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

    /// Takes a batch. The sink resolves `ack` once the batch is delivered or
    /// given up; it may hold it while it waits (the source then waits too).
    fn accept(
        &mut self,
        batch: Arc<Batch>,
        ack: AckToken,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Delivers what is buffered; called at shutdown.
    fn flush(&mut self) -> impl Future<Output = Result<(), SinkError>> + Send;
}
