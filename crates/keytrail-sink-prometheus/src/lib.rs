//! keytrail as a Prometheus scrape target.
//!
//! Where it sits: the counter sink ([`PrometheusSink`]) is one of the
//! pipeline's two sinks, after classify, beside the gRPC forwarder. The
//! rest of the crate is not in the event path: it installs the
//! process-wide `metrics` recorder that every stage emits its telemetry
//! through, and serves it, with the liveness and readiness probes, from
//! one HTTP listener on `[prometheus] listen`.
//!
//! ```text
//!  classify ──► PrometheusSink ──► keytrail_events_total, keytrail_actionable_events_total
//!  every stage ── metrics::counter!/gauge!/histogram! ──► recorder ◄── GET /metrics
//!                                             Readiness ◄── GET /ready   GET /health
//! ```
//!
//! How the binary wires it:
//! 1. `PrometheusConfig::build()` validates the `[prometheus]` section;
//! 2. [`Prometheus::install`] installs the recorder first thing (metric
//!    handles taken before it record nowhere), describes every metric
//!    ([`describe_metrics`]) and sets `keytrail_build_info`;
//! 3. [`Exporter::serve`] starts the listener with a [`Readiness`] handle
//!    that the topology flips with [`Readiness::set_ready`];
//! 4. [`Prometheus::sink`] makes the counter sink, a [`keytrail_core::Sink`].
//!
//! What it guarantees: audit counters are exact (an event is counted once,
//! and its acknowledgement share is acked after counting), never block the
//! pipeline, and have bounded cardinality: label values come from closed
//! sets or the vendor catalogs ([`labels`]), and a cap folds what would
//! exceed it ([`sink`]). The metric names and their meaning are in
//! [`telemetry::METRICS`] and `METRICS.md`.

pub mod config;
pub mod labels;
pub mod server;
pub mod sink;
pub mod telemetry;

pub use config::{ConfigError, InstallError, Prometheus, PrometheusConfig};
pub use server::{Exporter, MetricsServer, Readiness, ServeError};
pub use sink::PrometheusSink;
pub use telemetry::{METRICS, MetricDef, MetricKind, describe_metrics, record_build_info};
