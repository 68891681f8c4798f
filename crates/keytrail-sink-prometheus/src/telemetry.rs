//! Every metric keytrail exposes, as data.
//!
//! One row per metric name: its kind, unit, label keys and the one-line
//! help text that becomes the `# HELP` line of the exposition. The rest of
//! the pipeline emits these names through the `metrics` facade macros
//! (stage crates do not depend on this crate, so they spell the names out);
//! this table is the single place that says what each name means.
//! [`describe_metrics`] registers the descriptions with the installed
//! recorder, and `METRICS.md` beside the crate documents the same rows for
//! operators (a test keeps the two in step).
//!
//! Names follow the project's habit `keytrail_<what>_<unit>_total` for
//! counters; every label value comes from a closed set or from the vendor
//! catalogs, never from a user name, a key id, an IP address or a CRN.

use metrics::Unit;

/// The Prometheus metric type a name is exported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic counter (`_total`).
    Counter,
    /// Value that goes up and down.
    Gauge,
    /// Distribution with configured buckets.
    Histogram,
}

impl MetricKind {
    /// The exposition `# TYPE` word.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// The full metric name.
    pub name: &'static str,
    /// How it is exported.
    pub kind: MetricKind,
    /// The unit handed to the recorder with the description.
    pub unit: Option<Unit>,
    /// The label keys every series of the metric carries.
    pub labels: &'static [&'static str],
    /// The one-line help text.
    pub help: &'static str,
}

const fn def(
    name: &'static str,
    kind: MetricKind,
    unit: Option<Unit>,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDef {
    MetricDef {
        name,
        kind,
        unit,
        labels,
        help,
    }
}

/// Metric names used by this crate itself.
pub mod names {
    /// Audit events counted by the Prometheus sink.
    pub const EVENTS: &str = "keytrail_events_total";
    /// Actionable audit events counted by the Prometheus sink.
    pub const ACTIONABLE_EVENTS: &str = "keytrail_actionable_events_total";
    /// Audit counter increments whose action label was folded to `other`.
    pub const LABEL_CARDINALITY_FOLDED: &str = "keytrail_label_cardinality_folded_total";
    /// Build information, always 1.
    pub const BUILD_INFO: &str = "keytrail_build_info";
    /// The gRPC round-trip histogram, whose buckets the builder sets.
    pub const GRPC_ROUND_TRIP: &str = "keytrail_grpc_round_trip_seconds";
}

use MetricKind::{Counter, Gauge, Histogram};

/// Every metric keytrail exposes, grouped as in `METRICS.md`: audit
/// counters, stages, Kafka, gRPC, process.
pub const METRICS: &[MetricDef] = &[
    // Audit counters (this crate's sink).
    def(
        names::EVENTS,
        Counter,
        Some(Unit::Count),
        &["source", "category", "action", "outcome", "severity"],
        "Audit events counted, by source, category, action (catalog name or other), outcome and severity.",
    ),
    def(
        names::ACTIONABLE_EVENTS,
        Counter,
        Some(Unit::Count),
        &["source", "action", "severity"],
        "Audit events the vendor rules call actionable, by source, action (catalog name or other) and severity.",
    ),
    def(
        names::LABEL_CARDINALITY_FOLDED,
        Counter,
        Some(Unit::Count),
        &["reason"],
        "Events counted under action=\"other\": not_in_catalog (unknown action) or series_cap (max_action_series reached).",
    ),
    // Stages.
    def(
        "keytrail_stage_events_in_total",
        Counter,
        Some(Unit::Count),
        &["stage"],
        "Events (or records, for the source) a stage received.",
    ),
    def(
        "keytrail_stage_events_out_total",
        Counter,
        Some(Unit::Count),
        &["stage"],
        "Events a stage passed on.",
    ),
    def(
        "keytrail_stage_batches_total",
        Counter,
        Some(Unit::Count),
        &["stage"],
        "Batches a stage processed.",
    ),
    def(
        "keytrail_stage_errors_total",
        Counter,
        Some(Unit::Count),
        &["stage"],
        "Errors a stage met (each also logged).",
    ),
    def(
        "keytrail_dead_letters_total",
        Counter,
        Some(Unit::Count),
        &["reason"],
        "Records routed to the dead-letter output, by reason.",
    ),
    def(
        "keytrail_channel_fill_ratio",
        Gauge,
        None,
        &["channel"],
        "How full a bounded channel between stages is, from 0 (empty) to 1 (full: the sender waits).",
    ),
    // Kafka source.
    def(
        "keytrail_kafka_records_consumed_total",
        Counter,
        Some(Unit::Count),
        &["topic"],
        "Kafka records consumed.",
    ),
    def(
        "keytrail_kafka_commits_total",
        Counter,
        Some(Unit::Count),
        &["result"],
        "Kafka offset commits, by result (ok or error).",
    ),
    def(
        "keytrail_kafka_committed_offset",
        Gauge,
        None,
        &["topic", "partition"],
        "Last offset committed for a partition (the next record to read).",
    ),
    def(
        "keytrail_kafka_consumer_lag",
        Gauge,
        Some(Unit::Count),
        &["topic", "partition"],
        "Records between the partition's high watermark and the committed offset.",
    ),
    def(
        "keytrail_kafka_rebalances_total",
        Counter,
        Some(Unit::Count),
        &["kind"],
        "Consumer group rebalances, by kind (assign, revoke or lost).",
    ),
    def(
        "keytrail_kafka_paused_partitions",
        Gauge,
        Some(Unit::Count),
        &[],
        "Partitions currently paused because the pipeline stayed full for pause_after_ms.",
    ),
    def(
        "keytrail_kafka_replays_total",
        Counter,
        Some(Unit::Count),
        &[],
        "Partitions sought back to replay a batch a sink did not deliver.",
    ),
    def(
        "keytrail_kafka_offset_gaps_total",
        Counter,
        Some(Unit::Count),
        &["topic"],
        "Records skipped by the broker (compaction, transaction markers, retention overtaking the group).",
    ),
    // gRPC sink.
    def(
        "keytrail_grpc_batches_sent_total",
        Counter,
        Some(Unit::Count),
        &[],
        "Batches sent to the SIEM receiver, retries included.",
    ),
    def(
        "keytrail_grpc_batches_acked_total",
        Counter,
        Some(Unit::Count),
        &[],
        "Batches the SIEM receiver acknowledged.",
    ),
    def(
        "keytrail_grpc_batches_retried_total",
        Counter,
        Some(Unit::Count),
        &[],
        "Batch sends retried after a transient error or a timeout.",
    ),
    def(
        "keytrail_grpc_batches_rejected_total",
        Counter,
        Some(Unit::Count),
        &["kind"],
        "Batches the SIEM receiver refused for good, by kind of refusal; their events go to the dead-letter output.",
    ),
    def(
        "keytrail_grpc_events_delivered_total",
        Counter,
        Some(Unit::Count),
        &[],
        "Events in batches the SIEM receiver acknowledged.",
    ),
    def(
        "keytrail_grpc_in_flight_batches",
        Gauge,
        Some(Unit::Count),
        &[],
        "Batches sent and not yet acknowledged.",
    ),
    def(
        names::GRPC_ROUND_TRIP,
        Histogram,
        Some(Unit::Seconds),
        &[],
        "Time from sending a batch to its acknowledgement.",
    ),
    def(
        "keytrail_grpc_reconnects_total",
        Counter,
        Some(Unit::Count),
        &[],
        "Reconnections to the SIEM receiver.",
    ),
    // Process.
    def(
        names::BUILD_INFO,
        Gauge,
        None,
        &["version"],
        "Always 1; the version label is the keytrail release.",
    ),
];

/// Registers the description and unit of every metric in [`METRICS`] with
/// the current recorder (the global one, or a local one inside
/// [`metrics::with_local_recorder`]), so the exposition carries `# HELP`
/// lines. Idempotent; the exporter writes a metric's help only once it has
/// a series.
pub fn describe_metrics() {
    for m in METRICS {
        match (m.kind, m.unit) {
            (MetricKind::Counter, Some(unit)) => metrics::describe_counter!(m.name, unit, m.help),
            (MetricKind::Counter, None) => metrics::describe_counter!(m.name, m.help),
            (MetricKind::Gauge, Some(unit)) => metrics::describe_gauge!(m.name, unit, m.help),
            (MetricKind::Gauge, None) => metrics::describe_gauge!(m.name, m.help),
            (MetricKind::Histogram, Some(unit)) => {
                metrics::describe_histogram!(m.name, unit, m.help)
            }
            (MetricKind::Histogram, None) => metrics::describe_histogram!(m.name, m.help),
        }
    }
}

/// Sets `keytrail_build_info{version}` to 1 in the current recorder.
pub fn record_build_info(version: &'static str) {
    metrics::gauge!(names::BUILD_INFO, "version" => version).set(1.0);
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_and_follow_the_conventions() {
        let mut seen = HashSet::new();
        for m in METRICS {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            assert!(m.name.starts_with("keytrail_"), "{}", m.name);
            assert!(
                m.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                m.name
            );
            assert_eq!(
                m.kind == MetricKind::Counter,
                m.name.ends_with("_total"),
                "{}: only counters end in _total",
                m.name
            );
            assert!(!m.help.is_empty() && !m.help.contains('\n'), "{}", m.name);
            for label in m.labels {
                assert!(
                    !["user", "key_id", "ip", "crn", "instance_id"].contains(label),
                    "{}: label {label} is unbounded",
                    m.name
                );
            }
        }
    }

    #[test]
    fn metrics_md_documents_every_metric_and_nothing_else() {
        let doc = include_str!("../METRICS.md");
        let documented: HashSet<&str> = doc
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split(['`', '{']).next())
            .filter(|name| name.starts_with("keytrail_"))
            .collect();
        let defined: HashSet<&str> = METRICS.iter().map(|m| m.name).collect();
        assert_eq!(documented, defined);
        for m in METRICS {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}", m.name)))
                .expect("row exists");
            assert!(
                row.contains(&format!("| {} |", m.kind.as_str())),
                "{}: METRICS.md gives another type",
                m.name
            );
            for label in m.labels {
                assert!(
                    row.contains(label),
                    "{}: label {label} undocumented",
                    m.name
                );
            }
        }
    }
}
