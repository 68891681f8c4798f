//! keytrail's wire format: the generated protobuf and gRPC code of
//! `proto/keytrail/v1` and the conversions between the protobuf event and
//! [`keytrail_core::Event`].
//!
//! This crate sits at the edge of the pipeline, between the classified
//! events and the network: the gRPC sink encodes each event it forwards
//! straight to protobuf with [`encode`], and a receiver decodes the feed
//! straight back into events with [`decode`] (keytrail's reference
//! receiver does; a SIEM written in Rust can) or converts prost's messages
//! with [`convert`]. prost and tonic stay in this crate and the gRPC sink;
//! the transforms never see them.
//!
//! - [`v1`]: the messages of `event.proto` (the normalized event) and
//!   `forward.proto` (the `ForwardService` feed a SIEM implements, with its
//!   tonic client and server), generated at build time by protox and
//!   tonic-prost-build, so no system `protoc` is needed.
//! - [`convert`]: `Event` ↔ `v1::Event`. The conversion is lossless for
//!   every field of the JSON contract: converting an event to protobuf and
//!   back gives an event whose JSON is identical.
//! - [`encode`]: the same protobuf bytes written straight from an `Event`
//!   (no intermediate message), and the feed's outgoing frame of
//!   pre-encoded events — what the gRPC sink sends.
//! - [`decode`]: the feed's incoming requests decoded straight into core
//!   events — what the reference receiver reads.
//! - [`otlp`]: OpenTelemetry log records written straight from an `Event`,
//!   and the export request of pre-encoded records — what the gRPC sink
//!   sends with `protocol = "otlp"`.

pub mod convert;
pub mod decode;
pub mod encode;
pub mod otlp;

/// The generated code of package `keytrail.v1` (`proto/keytrail/v1`).
///
/// The protobuf comments are the reference for each message; the
/// integration contract of the feed is at the top of `forward.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod v1 {
    tonic::include_proto!("keytrail.v1");

    /// The fully qualified name of the feed service, as the gRPC health
    /// service reports it.
    pub const FORWARD_SERVICE_NAME: &str = forward_service_server::SERVICE_NAME;
}

/// The feed's server reading its requests as
/// [`ForwardMessage`]: the same service and route as
/// [`v1::forward_service_server`], events decoded straight into core events.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery)]
pub mod incoming {
    include!(concat!(env!("OUT_DIR"), "/keytrail.v1.ForwardService.rs"));
}

pub use convert::ConvertError;
pub use decode::{ForwardMessage, IncomingBatch, Refused};
pub use encode::{EncodedEvents, EventArena, ForwardFrame, encode_event};
pub use otlp::{LogsFrame, encode_log_record};
