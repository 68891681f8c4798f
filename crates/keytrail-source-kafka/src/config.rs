//! `[kafka]` and `[dead_letter]` configuration.
//!
//! Kafka users configure keytrail the way they configure any librdkafka
//! client: the few keys keytrail needs are named, and every other client
//! property passes through the `[kafka.librdkafka]` table (SASL, TLS, fetch
//! sizes). Values of secret properties never appear in `Debug` output, logs
//! or errors.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rdkafka::ClientConfig;
use serde::Deserialize;

/// Properties keytrail sets itself; the pass-through table may not.
const OWNED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
];

/// librdkafka consumer properties whose defaults keytrail changes; the
/// `[kafka.librdkafka]` table overrides them.
///
/// - `fetch.queue.backoff.ms`: librdkafka waits this long before fetching
///   again once its prefetch queue was full (default 1000 ms). A pipeline
///   that drains the queue faster than that idles until the next fetch:
///   with the default, a 2-core loopback stalled at ~80 k events/s.
/// - `fetch.wait.max.ms`: how long the broker may hold a fetch that finds
///   no new data (default 500 ms). librdkafka keeps one fetch in flight per
///   broker; as far as we can tell, a fetch that names only partitions
///   already read to their end then holds up the ones that still have a
///   backlog. With the default, a 2-core loopback on librdkafka's
///   one-broker mock cluster (301 partitions) idled in both processes for
///   250–400 ms one to four times a run; with 100 ms (Vector's default
///   too), it did not. A consumer with nothing new to read then fetches
///   ten times a second per broker.
/// - `queued.max.messages.kbytes`: the prefetch queue's size (default
///   64 MiB). With fetching resumed promptly, 32 MiB keeps the pipeline fed
///   and the process smaller.
/// - `statistics.interval.ms`: the lag gauges come from these statistics.
pub const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("fetch.queue.backoff.ms", "10"),
    ("fetch.wait.max.ms", "100"),
    ("queued.max.messages.kbytes", "32768"),
    ("statistics.interval.ms", "5000"),
];

/// `[kafka]`: the consumer group.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list of brokers.
    pub bootstrap_servers: String,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Consumer group; replicas with the same group share the partitions.
    pub group_id: String,
    /// Most records per batch handed to the pipeline.
    #[serde(default = "defaults::batch_max_records")]
    pub batch_max_records: usize,
    /// Longest a partly filled batch waits for more records, in milliseconds.
    #[serde(default = "defaults::batch_linger_ms")]
    pub batch_linger_ms: u64,
    /// How long the pipeline may stay full before the partitions are
    /// paused, in milliseconds. Until then the source only stops taking
    /// records (librdkafka's bounded prefetch holds the rest); pausing
    /// drops the prefetched records and costs about a second to refetch
    /// after the resume, so it is kept for real stalls.
    #[serde(default = "defaults::pause_after_ms")]
    pub pause_after_ms: u64,
    /// How often delivered offsets are committed, in milliseconds.
    #[serde(default = "defaults::commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// Longest a revocation (rebalance) waits for in-flight batches of the
    /// revoked partitions before committing and letting them go, in
    /// milliseconds.
    #[serde(default = "defaults::revocation_timeout_ms")]
    pub revocation_timeout_ms: u64,
    /// Longest shutdown waits for in-flight batches, in milliseconds.
    #[serde(default = "defaults::drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    /// Where a new consumer group starts: `earliest` or `latest`.
    #[serde(default = "defaults::auto_offset_reset")]
    pub auto_offset_reset: String,
    /// Any other librdkafka property (`security.protocol`, `sasl.*`,
    /// `ssl.*`, `fetch.max.bytes`, …), passed through as is.
    #[serde(default)]
    pub librdkafka: BTreeMap<String, String>,
}

mod defaults {
    pub(super) fn batch_max_records() -> usize {
        1000
    }
    pub(super) fn batch_linger_ms() -> u64 {
        20
    }
    pub(super) fn pause_after_ms() -> u64 {
        1000
    }
    pub(super) fn commit_interval_ms() -> u64 {
        1000
    }
    pub(super) fn revocation_timeout_ms() -> u64 {
        10_000
    }
    pub(super) fn drain_timeout_ms() -> u64 {
        30_000
    }
    pub(super) fn auto_offset_reset() -> String {
        "earliest".into()
    }
}

/// True for librdkafka property names whose values are secrets.
pub fn is_secret_property(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "key.pem",
        "private",
        "oauthbearer.config",
    ]
    .iter()
    .any(|s| name.contains(s))
        || name == "ssl.key.password"
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let props: BTreeMap<&str, &str> = self
            .librdkafka
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_property(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("topics", &self.topics)
            .field("group_id", &self.group_id)
            .field("batch_max_records", &self.batch_max_records)
            .field("batch_linger_ms", &self.batch_linger_ms)
            .field("pause_after_ms", &self.pause_after_ms)
            .field("commit_interval_ms", &self.commit_interval_ms)
            .field("librdkafka", &props)
            .finish_non_exhaustive()
    }
}

/// A configuration that cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KafkaConfigError {
    /// An empty required value.
    #[error("kafka.{0} must not be empty")]
    Empty(&'static str),
    /// A number out of range.
    #[error("kafka.{key} must be between {min} and {max}")]
    Range {
        /// The key.
        key: &'static str,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// `auto_offset_reset` is neither `earliest` nor `latest`.
    #[error("kafka.auto_offset_reset must be \"earliest\" or \"latest\", got {0:?}")]
    OffsetReset(String),
    /// The pass-through table sets a property keytrail owns.
    #[error("kafka.librdkafka.\"{0}\" is set by keytrail itself; use the [kafka] key instead")]
    Owned(String),
    /// `pause_after_ms` must stay well below librdkafka's
    /// `max.poll.interval.ms`: the source does not poll while it waits.
    #[error(
        "kafka.pause_after_ms ({pause_after_ms}) must be less than half of kafka.librdkafka.\"max.poll.interval.ms\" ({max_poll_interval_ms})"
    )]
    PauseAfterPoll {
        /// The configured pause delay.
        pause_after_ms: u64,
        /// The configured poll interval.
        max_poll_interval_ms: u64,
    },
    /// `[dead_letter]` needs exactly one of `topic` and `path`.
    #[error("dead_letter needs exactly one of `topic` or `path`")]
    DeadLetterTarget,
}

impl KafkaConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), KafkaConfigError> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(KafkaConfigError::Empty("bootstrap_servers"));
        }
        if self.group_id.trim().is_empty() {
            return Err(KafkaConfigError::Empty("group_id"));
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            return Err(KafkaConfigError::Empty("topics"));
        }
        let ranges: [(&'static str, u64, u64, u64); 6] = [
            (
                "batch_max_records",
                self.batch_max_records as u64,
                1,
                1_000_000,
            ),
            ("batch_linger_ms", self.batch_linger_ms, 0, 60_000),
            ("pause_after_ms", self.pause_after_ms, 0, 60_000),
            ("commit_interval_ms", self.commit_interval_ms, 10, 3_600_000),
            (
                "revocation_timeout_ms",
                self.revocation_timeout_ms,
                0,
                600_000,
            ),
            ("drain_timeout_ms", self.drain_timeout_ms, 0, 3_600_000),
        ];
        for (key, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(KafkaConfigError::Range { key, min, max });
            }
        }
        if !matches!(self.auto_offset_reset.as_str(), "earliest" | "latest") {
            return Err(KafkaConfigError::OffsetReset(
                self.auto_offset_reset.clone(),
            ));
        }
        // Until it pauses, a source whose pipeline is full does not poll
        // the consumer; librdkafka leaves the group after
        // max.poll.interval.ms without a poll.
        if let Some(max_poll_interval_ms) = self
            .librdkafka
            .get("max.poll.interval.ms")
            .and_then(|v| v.trim().parse::<u64>().ok())
            && self.pause_after_ms.saturating_mul(2) >= max_poll_interval_ms
        {
            return Err(KafkaConfigError::PauseAfterPoll {
                pause_after_ms: self.pause_after_ms,
                max_poll_interval_ms,
            });
        }
        if let Some(owned) = self
            .librdkafka
            .keys()
            .find(|k| OWNED_PROPERTIES.contains(&k.as_str()))
        {
            return Err(KafkaConfigError::Owned(owned.clone()));
        }
        Ok(())
    }

    /// The librdkafka consumer properties.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in &self.librdkafka {
            config.set(key, value);
        }
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", &self.auto_offset_reset);
        for (key, value) in CONSUMER_DEFAULTS {
            if !self.librdkafka.contains_key(*key) {
                config.set(*key, *value);
            }
        }
        config
    }

    /// The librdkafka producer properties for the dead-letter topic: the
    /// same brokers and security settings, idempotent delivery.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in &self.librdkafka {
            if is_shared_property(key) {
                config.set(key, value);
            }
        }
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5");
        config
    }
}

/// Client properties that apply to the producer too (connection and
/// security), as opposed to consumer-only ones.
fn is_shared_property(name: &str) -> bool {
    [
        "security.",
        "sasl.",
        "ssl.",
        "client.",
        "socket.",
        "broker.",
        "metadata.",
        "reconnect.",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// `[dead_letter]`: where records that cannot be normalized go.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// A Kafka topic on the same cluster: the original bytes as value, the
    /// reason, origin and line as headers.
    pub topic: Option<String>,
    /// A file: one JSON object per dead letter, appended and synced.
    pub path: Option<PathBuf>,
}

impl DeadLetterConfig {
    /// Checks that exactly one target is set.
    pub fn validate(&self) -> Result<(), KafkaConfigError> {
        match (&self.topic, &self.path) {
            (Some(t), None) if !t.trim().is_empty() => Ok(()),
            (None, Some(p)) if !p.as_os_str().is_empty() => Ok(()),
            _ => Err(KafkaConfigError::DeadLetterTarget),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<KafkaConfig, toml::de::Error> {
        toml::from_str(&format!(
            "bootstrap_servers = \"127.0.0.1:9092\"\ntopics = [\"audit\"]\ngroup_id = \"g\"\n{extra}"
        ))
    }

    #[test]
    fn defaults_and_validation() {
        let c = config("").expect("parses");
        assert_eq!(c.batch_max_records, 1000);
        assert!(c.validate().is_ok());
        let bad = config("batch_max_records = 0").expect("parses");
        assert!(matches!(
            bad.validate(),
            Err(KafkaConfigError::Range {
                key: "batch_max_records",
                ..
            })
        ));
        let owned = config("[librdkafka]\n\"enable.auto.commit\" = \"true\"").expect("parses");
        assert_eq!(
            owned.validate(),
            Err(KafkaConfigError::Owned("enable.auto.commit".into()))
        );
        assert!(config("bogus = 1").is_err(), "unknown keys are refused");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c =
            config("[librdkafka]\n\"sasl.password\" = \"hunter2\"\n\"sasl.username\" = \"svc\"")
                .expect("parses");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("svc"));
    }

    #[test]
    fn consumer_properties_are_manual_commit() {
        let c = config("[librdkafka]\n\"fetch.max.bytes\" = \"1048576\"").expect("parses");
        let props = c.consumer_config();
        assert_eq!(props.get("enable.auto.commit"), Some("false"));
        assert_eq!(props.get("fetch.max.bytes"), Some("1048576"));
        assert_eq!(c.producer_config().get("fetch.max.bytes"), None);
    }

    #[test]
    fn pause_after_must_stay_below_the_poll_interval() {
        let c = config("pause_after_ms = 5000\n[librdkafka]\n\"max.poll.interval.ms\" = \"8000\"")
            .expect("parses");
        assert_eq!(
            c.validate(),
            Err(KafkaConfigError::PauseAfterPoll {
                pause_after_ms: 5000,
                max_poll_interval_ms: 8000
            })
        );
        let c = config("pause_after_ms = 1000\n[librdkafka]\n\"max.poll.interval.ms\" = \"8000\"")
            .expect("parses");
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn consumer_defaults_apply_unless_the_table_sets_them() {
        let props = config("").expect("parses").consumer_config();
        assert_eq!(props.get("fetch.queue.backoff.ms"), Some("10"));
        assert_eq!(props.get("fetch.wait.max.ms"), Some("100"));
        assert_eq!(props.get("queued.max.messages.kbytes"), Some("32768"));
        let c = config("[librdkafka]\n\"fetch.wait.max.ms\" = \"500\"").expect("parses");
        assert_eq!(c.consumer_config().get("fetch.wait.max.ms"), Some("500"));
        assert_eq!(c.producer_config().get("fetch.wait.max.ms"), None);
        let c = config("[librdkafka]\n\"fetch.queue.backoff.ms\" = \"500\"").expect("parses");
        assert_eq!(
            c.consumer_config().get("fetch.queue.backoff.ms"),
            Some("500")
        );
        assert_eq!(
            c.consumer_config().get("queued.max.messages.kbytes"),
            Some("32768")
        );
    }

    #[test]
    fn dead_letter_needs_one_target() {
        assert!(
            DeadLetterConfig {
                topic: Some("dlq".into()),
                path: None
            }
            .validate()
            .is_ok()
        );
        assert!(DeadLetterConfig::default().validate().is_err());
        assert!(
            DeadLetterConfig {
                topic: Some("a".into()),
                path: Some("b".into())
            }
            .validate()
            .is_err()
        );
    }
}
