//! Everything the gRPC sink reports: metrics (through the `metrics` facade;
//! the binary installs the Prometheus recorder) and logs (through
//! `tracing`). This module is the only place of the crate that emits
//! either, one function per thing that happened.
//!
//! | metric | kind | meaning |
//! |---|---|---|
//! | `keytrail_grpc_batches_sent_total` | counter | batches written to the receiver, resends included |
//! | `keytrail_grpc_batches_acked_total` | counter | batches the receiver accepted |
//! | `keytrail_grpc_batches_retried_total` | counter | resends (after a retryable rejection, a timeout or a lost connection) |
//! | `keytrail_grpc_batches_rejected_total{kind}` | counter | rejections, `kind` = `retryable` or `permanent` |
//! | `keytrail_grpc_events_delivered_total` | counter | events in accepted batches |
//! | `keytrail_grpc_in_flight_batches` | gauge | batches sent (or waiting to be resent) and not yet answered |
//! | `keytrail_grpc_round_trip_seconds` | histogram | from sending a batch to its acceptance |
//! | `keytrail_grpc_reconnects_total` | counter | feed streams re-opened, or OTLP exports retried, after a failure |
//!
//! Label values come from closed sets; no event content, endpoint or token
//! is ever a label or a log field.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

const BATCHES_SENT: &str = "keytrail_grpc_batches_sent_total";
const BATCHES_ACKED: &str = "keytrail_grpc_batches_acked_total";
const BATCHES_RETRIED: &str = "keytrail_grpc_batches_retried_total";
const BATCHES_REJECTED: &str = "keytrail_grpc_batches_rejected_total";
const EVENTS_DELIVERED: &str = "keytrail_grpc_events_delivered_total";
const IN_FLIGHT: &str = "keytrail_grpc_in_flight_batches";
const ROUND_TRIP: &str = "keytrail_grpc_round_trip_seconds";
const RECONNECTS: &str = "keytrail_grpc_reconnects_total";

/// Registers the descriptions (Prometheus `# HELP`) of the sink's metrics
/// and sets them to zero, so they are exported before the first batch.
/// Call once, after the recorder is installed.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

    describe_counter!(
        BATCHES_SENT,
        Unit::Count,
        "Batches written to the gRPC receiver, resends included."
    );
    describe_counter!(
        BATCHES_ACKED,
        Unit::Count,
        "Batches the gRPC receiver accepted."
    );
    describe_counter!(
        BATCHES_RETRIED,
        Unit::Count,
        "Batches resent after a retryable rejection, a timeout or a lost connection."
    );
    describe_counter!(
        BATCHES_REJECTED,
        Unit::Count,
        "Batches the gRPC receiver rejected, by kind (retryable, permanent)."
    );
    describe_counter!(
        EVENTS_DELIVERED,
        Unit::Count,
        "Events in batches the gRPC receiver accepted."
    );
    describe_gauge!(
        IN_FLIGHT,
        Unit::Count,
        "Batches sent, or waiting to be resent, and not yet answered."
    );
    describe_histogram!(
        ROUND_TRIP,
        Unit::Seconds,
        "Time from sending a batch to its acceptance."
    );
    describe_counter!(
        RECONNECTS,
        Unit::Count,
        "Feed streams re-opened, or OTLP exports retried, after a failure."
    );
    counter!(BATCHES_SENT).absolute(0);
    counter!(BATCHES_ACKED).absolute(0);
    counter!(BATCHES_RETRIED).absolute(0);
    for kind in [RejectKind::Retryable, RejectKind::Permanent] {
        counter!(BATCHES_REJECTED, "kind" => kind.label()).absolute(0);
    }
    counter!(EVENTS_DELIVERED).absolute(0);
    counter!(RECONNECTS).absolute(0);
    gauge!(IN_FLIGHT).set(0.0);
}

/// The two ways a receiver says no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RejectKind {
    /// "Not yet".
    Retryable,
    /// "Never": the events go to the dead-letter output.
    Permanent,
}

impl RejectKind {
    fn label(self) -> &'static str {
        match self {
            RejectKind::Retryable => "retryable",
            RejectKind::Permanent => "permanent",
        }
    }
}

/// A batch was written to the receiver; `resend` when it had been sent
/// before.
pub(crate) fn batch_sent(sequence: u64, events: usize, resend: bool) {
    counter!(BATCHES_SENT).increment(1);
    if resend {
        counter!(BATCHES_RETRIED).increment(1);
    }
    tracing::trace!(sequence, events, resend, "grpc batch sent");
}

/// The receiver accepted a batch.
pub(crate) fn batch_accepted(sequence: u64, events: usize, round_trip: Option<Duration>) {
    counter!(BATCHES_ACKED).increment(1);
    counter!(EVENTS_DELIVERED).increment(events as u64);
    if let Some(round_trip) = round_trip {
        histogram!(ROUND_TRIP).record(round_trip.as_secs_f64());
    }
    tracing::trace!(sequence, events, "grpc batch accepted");
}

/// The receiver rejected a batch.
pub(crate) fn batch_rejected(sequence: u64, events: usize, kind: RejectKind, reason: &str) {
    counter!(BATCHES_REJECTED, "kind" => kind.label()).increment(1);
    match kind {
        RejectKind::Retryable => {
            tracing::info!(
                sequence,
                events,
                reason,
                "grpc receiver asked to retry a batch"
            );
        }
        RejectKind::Permanent => tracing::warn!(
            sequence,
            events,
            reason,
            "grpc receiver rejected a batch for good; its events go to the dead-letter output"
        ),
    }
}

/// The number of unanswered batches changed.
pub(crate) fn in_flight(batches: usize) {
    gauge!(IN_FLIGHT).set(batches as f64);
}

/// The connection to the receiver is up (health check passed, feed open).
pub(crate) fn connected(protocol: &'static str, first_sequence: u64, resending: usize) {
    tracing::info!(
        protocol,
        first_sequence,
        resending,
        "grpc receiver ready, forwarding"
    );
}

/// An attempt failed (receiver unreachable, not ready, timed out, asked to
/// retry); the forwarder waits `retry_in` and tries again.
pub(crate) fn link_failed(reason: &str, retry_in: Duration) {
    tracing::warn!(
        reason,
        retry_in_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
        "grpc forwarding interrupted, retrying"
    );
}

/// A feed stream is re-opened, or an OTLP export retried, after a failure.
pub(crate) fn reconnect() {
    counter!(RECONNECTS).increment(1);
}

/// The dead-letter output is gone: the rejected events' acknowledgement
/// shares fail, so their offsets are not committed and they are replayed.
pub(crate) fn dead_letter_output_closed(events: usize) {
    tracing::error!(
        events,
        "dead-letter output closed; rejected events will be replayed after a restart"
    );
}

/// An event is too large for any gRPC message; it goes to the dead-letter
/// output.
pub(crate) fn oversized_event(index: usize) {
    tracing::warn!(
        index,
        "event too large for a grpc message; it goes to the dead-letter output"
    );
}

/// The forwarder stopped with events it could not deliver; their
/// acknowledgement shares fail.
pub(crate) fn abandoned(batches: usize) {
    tracing::warn!(
        batches,
        "grpc forwarder stopped before every batch was acknowledged; they will be replayed"
    );
}

/// A bearer token is configured with a plaintext endpoint.
pub(crate) fn token_over_plaintext() {
    tracing::warn!("grpc bearer token configured with an http:// endpoint: it travels unencrypted");
}

/// The reference receiver (module `receiver`) logs through these too.
pub(crate) mod receiver {
    use std::net::SocketAddr;

    /// Listening.
    pub(crate) fn listening(addr: SocketAddr, tls: bool, out: &std::path::Path) {
        tracing::info!(%addr, tls, out = %out.display(), "keytrail receiver listening");
    }

    /// A sender opened a stream.
    pub(crate) fn stream_opened(sender_id: &str, agent: &str, first_sequence: u64) {
        tracing::info!(
            sender_id,
            agent,
            first_sequence,
            "keytrail receiver: stream opened"
        );
    }

    /// A stream ended.
    pub(crate) fn stream_closed(sender_id: &str, why: &str) {
        tracing::info!(sender_id, why, "keytrail receiver: stream closed");
    }

    /// A batch was stored.
    pub(crate) fn batch_stored(sequence: u64, events: usize) {
        tracing::debug!(sequence, events, "keytrail receiver: batch stored");
    }

    /// A batch was refused.
    pub(crate) fn batch_refused(sequence: u64, permanent: bool, reason: &str) {
        tracing::debug!(
            sequence,
            permanent,
            reason,
            "keytrail receiver: batch refused"
        );
    }
}
