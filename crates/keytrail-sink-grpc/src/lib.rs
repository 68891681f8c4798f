//! keytrail's gRPC sink: forwards classified events to a SIEM, at least
//! once and in order, and the reference receiver for the other end.
//!
//! # Where it sits
//!
//! Last stage of the pipeline, beside the Prometheus sink: the topology
//! hands [`GrpcSink`] (a [`keytrail_core::Sink`]) the events of each batch
//! with one share of the batch's [`keytrail_core::AckToken`]. The Kafka
//! offsets of a batch are committed only once every sink resolved its
//! share, and this sink resolves it only when the receiver has answered.
//!
//! # Guarantees
//!
//! - **At least once.** An event counts as delivered only when the receiver
//!   accepted its batch; only then is its share acked. A batch the receiver
//!   rejects for good goes to the dead-letter output (the
//!   [`keytrail_core::DeadLetterBatch`] channel given to
//!   [`GrpcForwarder::start`]) with the receiver's reason and the share,
//!   which the output acks once written. Nothing is dropped silently: when
//!   the forwarder stops with batches unanswered, their shares fail and the
//!   events are replayed after a restart.
//! - **In order per partition** (keytrail protocol). Batches carry sequence
//!   numbers; the receiver stores only the one it expects, and after any
//!   failure the forwarder resends from the oldest unanswered batch
//!   (go-back-N). Duplicates are possible only for batches whose answer was
//!   lost, at most `max_in_flight_batches` per reconnection.
//! - **Bounded.** At most `max_in_flight_batches` batches of at most
//!   `batch_max_events` events and `batch_max_bytes` bytes are held, plus
//!   one input batch being cut ([`INPUT_CAPACITY`]); when full,
//!   [`GrpcSink`]'s `accept` waits, which pauses the source.
//!
//! # Protocols
//!
//! - `keytrail`: `keytrail.v1.ForwardService`,
//!   a bidirectional stream of sequenced batches, each answered accepted,
//!   rejected-retryable ("not yet") or rejected-permanent, with a reason.
//!   The contract a SIEM implements is documented at the top of
//!   `proto/keytrail/v1/forward.proto`; [`receiver`] implements it.
//! - `otlp`: OpenTelemetry log records over OTLP/gRPC
//!   (`LogsService/Export`), with the same batching, window, retries and
//!   dead-lettering; see [`otlp`] for the mapping and its limits.
//!
//! Both retry transport errors, timeouts and retryable rejections with
//! exponential backoff and jitter, reconnect by themselves, speak TLS or
//! mutual TLS (rustls), send a bearer token, compress with gzip or zstd,
//! and wait for the receiver's gRPC health service before sending.
//!
//! # Use
//!
//! ```no_run
//! use std::sync::Arc;
//! use keytrail_core::{AckToken, Events, Sink as _};
//! use keytrail_sink_grpc::GrpcConfig;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config: GrpcConfig = serde_json::from_str(r#"{"endpoint": "http://127.0.0.1:4317"}"#)?;
//! let forwarder = config.build()?; // validates, reads files; no I/O on the network
//! let (dead_letters, mut dead_letter_rx) = tokio::sync::mpsc::channel(16);
//! let mut sink = forwarder.start(dead_letters); // spawns the forwarding task
//! sink.accept(Arc::new(Events::new(Vec::new())), AckToken::detached()).await?;
//! sink.flush().await?;
//! sink.shutdown(std::time::Duration::from_secs(5)).await?;
//! # drop(dead_letter_rx.try_recv());
//! # Ok(())
//! # }
//! ```
//!
//! Metrics are listed in [`telemetry`]; call [`describe_metrics`] once
//! after installing the recorder.

mod backoff;
mod codec;
mod config;
mod feed;
mod forwarder;
pub mod otlp;
mod queue;
pub mod receiver;
pub mod telemetry;

pub use config::{
    Compression, GrpcConfig, GrpcConfigError, GrpcTlsConfig, MAX_BATCH_BYTES, Protocol, Secret,
};
pub use forwarder::{GrpcForwarder, GrpcSink, GrpcSinkError, INPUT_CAPACITY};
pub use telemetry::describe_metrics;
