//! The `[prometheus]` configuration section and what it builds.
//!
//! [`PrometheusConfig`] is what the operator writes; [`PrometheusConfig::build`]
//! validates it into [`Prometheus`], which installs the process-wide
//! recorder ([`Prometheus::install`]) and makes the counter sink
//! ([`Prometheus::sink`]). Errors found at build time are
//! [`ConfigError`]; installing can fail only if a recorder is already
//! installed ([`InstallError`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};

use crate::server::Exporter;
use crate::sink::PrometheusSink;
use crate::telemetry::{self, names};

/// The default listen address: loopback only, so nothing is exposed until
/// the operator says so.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9898);

/// The default cap on series with a catalog action label.
pub const DEFAULT_MAX_ACTION_SERIES: usize = 4096;

/// The largest cap accepted: beyond this the cap no longer protects
/// Prometheus.
pub const MAX_MAX_ACTION_SERIES: usize = 100_000;

/// Default buckets of `keytrail_grpc_round_trip_seconds`: 5 ms to 30 s.
pub const DEFAULT_ROUND_TRIP_BUCKETS_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The `[prometheus]` section: the scrape endpoint and the audit counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Address of the HTTP listener serving `/metrics`, `/health` and
    /// `/ready`. Default `127.0.0.1:9898`; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The most series with a catalog action label the audit counters may
    /// create (both counters together); past it, new series count under
    /// `action="other"`. 1 to 100000, default 4096.
    pub max_action_series: usize,
    /// Upper bounds, in seconds, of the `keytrail_grpc_round_trip_seconds`
    /// histogram buckets: positive, finite, strictly increasing.
    pub round_trip_buckets_seconds: Vec<f64>,
    /// How often the recorder's upkeep runs (drains histogram samples
    /// between scrapes), in milliseconds. Default 5000.
    pub upkeep_interval_ms: u64,
}

impl Default for PrometheusConfig {
    fn default() -> PrometheusConfig {
        PrometheusConfig {
            listen: DEFAULT_LISTEN,
            max_action_series: DEFAULT_MAX_ACTION_SERIES,
            round_trip_buckets_seconds: DEFAULT_ROUND_TRIP_BUCKETS_SECONDS.to_vec(),
            upkeep_interval_ms: 5000,
        }
    }
}

/// Why a [`PrometheusConfig`] was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `max_action_series` outside 1..=100000.
    #[error("prometheus.max_action_series must be between 1 and {MAX_MAX_ACTION_SERIES}, got {0}")]
    MaxActionSeries(usize),
    /// No bucket.
    #[error("prometheus.round_trip_buckets_seconds must not be empty")]
    NoBuckets,
    /// A bucket bound that is not a positive finite number.
    #[error("prometheus.round_trip_buckets_seconds: {0} is not a positive finite number")]
    BadBucket(f64),
    /// Bounds out of order or repeated.
    #[error("prometheus.round_trip_buckets_seconds must increase strictly: {previous} then {next}")]
    BucketsNotIncreasing {
        /// The earlier bound.
        previous: f64,
        /// The bound that is not above it.
        next: f64,
    },
    /// A zero upkeep interval.
    #[error("prometheus.upkeep_interval_ms must be positive")]
    UpkeepInterval,
}

/// Why the recorder could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The exporter refused the histogram buckets.
    #[error("cannot configure the histogram buckets")]
    Buckets(#[source] metrics_exporter_prometheus::BuildError),
    /// Another recorder is already the process's global recorder.
    #[error("cannot install the prometheus recorder")]
    Recorder(#[source] metrics_exporter_prometheus::BuildError),
}

impl PrometheusConfig {
    /// Validates the section.
    pub fn build(&self) -> Result<Prometheus, ConfigError> {
        if !(1..=MAX_MAX_ACTION_SERIES).contains(&self.max_action_series) {
            return Err(ConfigError::MaxActionSeries(self.max_action_series));
        }
        let buckets = &self.round_trip_buckets_seconds;
        if buckets.is_empty() {
            return Err(ConfigError::NoBuckets);
        }
        if let Some(&bad) = buckets.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            return Err(ConfigError::BadBucket(bad));
        }
        if let Some(pair) = buckets.windows(2).find(|w| w[0] >= w[1]) {
            return Err(ConfigError::BucketsNotIncreasing {
                previous: pair[0],
                next: pair[1],
            });
        }
        if self.upkeep_interval_ms == 0 {
            return Err(ConfigError::UpkeepInterval);
        }
        Ok(Prometheus {
            config: self.clone(),
        })
    }
}

/// A validated `[prometheus]` section. See the module docs.
#[derive(Debug, Clone)]
pub struct Prometheus {
    config: PrometheusConfig,
}

impl Prometheus {
    /// The validated configuration.
    pub fn config(&self) -> &PrometheusConfig {
        &self.config
    }

    /// The exporter builder with this configuration's histogram buckets,
    /// for callers that build their own recorder (tests use
    /// [`PrometheusBuilder::build_recorder`] with a local recorder).
    pub fn recorder_builder(&self) -> Result<PrometheusBuilder, InstallError> {
        Ok(PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(names::GRPC_ROUND_TRIP.to_owned()),
                &self.config.round_trip_buckets_seconds,
            )
            .map_err(InstallError::Buckets)?
            .upkeep_timeout(self.upkeep_interval()))
    }

    /// Installs the process-wide recorder, registers every metric's
    /// description ([`telemetry::describe_metrics`]) and sets
    /// `keytrail_build_info`. Call it before anything emits metrics: a
    /// metric handle taken earlier records nowhere.
    pub fn install(&self) -> Result<Exporter, InstallError> {
        let handle = self
            .recorder_builder()?
            .install_recorder()
            .map_err(InstallError::Recorder)?;
        telemetry::describe_metrics();
        telemetry::record_build_info(env!("CARGO_PKG_VERSION"));
        Ok(self.exporter(handle))
    }

    /// An exporter over a recorder installed elsewhere (a local recorder in
    /// tests, or a global one installed by other means).
    pub fn exporter(&self, handle: PrometheusHandle) -> Exporter {
        Exporter::new(handle, self.config.listen, self.upkeep_interval())
    }

    /// The counter sink, with this configuration's series cap. Build it
    /// after [`Prometheus::install`].
    pub fn sink(&self) -> PrometheusSink {
        PrometheusSink::new(self.config.max_action_series)
    }

    fn upkeep_interval(&self) -> Duration {
        Duration::from_millis(self.config.upkeep_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PrometheusConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn defaults_are_valid_and_loopback() {
        let config = parse("").expect("empty section parses");
        assert_eq!(config, PrometheusConfig::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:9898");
        assert_eq!(config.max_action_series, 4096);
        config.build().expect("defaults validate");
    }

    #[test]
    fn fields_are_read_and_unknown_ones_refused() {
        let config = parse(
            "listen = \"0.0.0.0:9100\"\nmax_action_series = 10\nround_trip_buckets_seconds = [0.1, 1]\nupkeep_interval_ms = 100\n",
        )
        .expect("parses");
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.max_action_series, 10);
        assert_eq!(config.round_trip_buckets_seconds, [0.1, 1.0]);
        assert!(parse("listen_addr = \"127.0.0.1:1\"").is_err());
        assert!(parse("listen = \"not an address\"").is_err());
    }

    #[test]
    fn the_round_trip_histogram_gets_the_configured_buckets() {
        let config = PrometheusConfig {
            round_trip_buckets_seconds: vec![0.1, 2.0],
            ..PrometheusConfig::default()
        };
        let prometheus = config.build().expect("valid");
        let recorder = prometheus
            .recorder_builder()
            .expect("buckets accepted")
            .build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            telemetry::describe_metrics();
            metrics::histogram!(names::GRPC_ROUND_TRIP).record(0.5);
            metrics::histogram!("keytrail_other_seconds").record(0.5);
        });
        let text = handle.render();
        assert!(
            text.contains("# TYPE keytrail_grpc_round_trip_seconds histogram"),
            "{text}"
        );
        assert!(text.contains("keytrail_grpc_round_trip_seconds_bucket{le=\"0.1\"} 0"));
        assert!(text.contains("keytrail_grpc_round_trip_seconds_bucket{le=\"2\"} 1"));
        assert!(text.contains("keytrail_grpc_round_trip_seconds_bucket{le=\"+Inf\"} 1"));
    }

    #[test]
    fn invalid_values_are_refused_with_clear_errors() {
        let with = |f: fn(&mut PrometheusConfig)| {
            let mut c = PrometheusConfig::default();
            f(&mut c);
            c.build().expect_err("invalid")
        };
        assert_eq!(
            with(|c| c.max_action_series = 0),
            ConfigError::MaxActionSeries(0)
        );
        assert_eq!(
            with(|c| c.max_action_series = MAX_MAX_ACTION_SERIES + 1),
            ConfigError::MaxActionSeries(MAX_MAX_ACTION_SERIES + 1)
        );
        assert_eq!(
            with(|c| c.round_trip_buckets_seconds.clear()),
            ConfigError::NoBuckets
        );
        assert_eq!(
            with(|c| c.round_trip_buckets_seconds = vec![0.1, f64::INFINITY]),
            ConfigError::BadBucket(f64::INFINITY)
        );
        assert_eq!(
            with(|c| c.round_trip_buckets_seconds = vec![-1.0]),
            ConfigError::BadBucket(-1.0)
        );
        let err = with(|c| c.round_trip_buckets_seconds = vec![0.5, 0.5]);
        assert_eq!(
            err.to_string(),
            "prometheus.round_trip_buckets_seconds must increase strictly: 0.5 then 0.5"
        );
        assert_eq!(
            with(|c| c.upkeep_interval_ms = 0),
            ConfigError::UpkeepInterval
        );
    }
}
