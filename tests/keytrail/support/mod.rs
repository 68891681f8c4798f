//! Shared helpers of the integration tests: a real Kafka-protocol broker
//! (librdkafka's mock cluster) in process, generated events with unique ids,
//! configuration files, and waiting on conditions with a deadline.

pub mod kafka;
pub mod process;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keytrail::generate;

/// Generated vendor records `0..n` of `seed` (one per line), with their ids.
pub fn records(seed: u64, n: u64, malformed_percent: f64) -> Vec<Vec<u8>> {
    generate::mixed_records(seed, n, malformed_percent)
}

/// The ids of the records that normalize (the others must be
/// dead-lettered), and how many do not.
pub fn valid_ids(records: &[Vec<u8>]) -> (HashSet<String>, usize) {
    let normalizer = keytrail_transform_normalize::Normalizer::default();
    let meta = keytrail_core::RecordMeta::default();
    let mut valid = HashSet::new();
    let mut bad = 0;
    for record in records {
        match normalizer.normalize_line(record, &meta) {
            Ok(_) => {
                valid.insert(record_id(record).expect("generated records carry ids"));
            }
            Err(_) => bad += 1,
        }
    }
    (valid, bad)
}

/// The generator id (`kt-<seed>-<n>`) a record carries.
pub fn record_id(record: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(record);
    let at = text.find("kt-")?;
    let id: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Some(id)
}

/// Polls `condition` until it holds or `timeout` passes; panics with `what`
/// on timeout. The polling interval is short; the deadline is generous.
pub async fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Lines of a file that may not exist yet.
pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The `event_id` of every event line of an NDJSON sink file.
pub fn event_ids(path: &Path) -> Vec<String> {
    read_lines(path)
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["event_id"].as_str().map(str::to_owned))
        .collect()
}

/// A pipeline configuration for `bootstrap` with file sink and dead-letter
/// file in `dir`.
pub fn pipeline_config(
    bootstrap: &str,
    topic: &str,
    group: &str,
    dir: &Path,
    extra: &str,
) -> (String, PathBuf, PathBuf) {
    let events = dir.join("events.jsonl");
    let dead = dir.join("dead.jsonl");
    let text = format!(
        r#"
[kafka]
bootstrap_servers = "{bootstrap}"
topics = ["{topic}"]
group_id = "{group}"
batch_max_records = 200
batch_linger_ms = 5
commit_interval_ms = 100
revocation_timeout_ms = 5000
drain_timeout_ms = 10000

[kafka.librdkafka]
"session.timeout.ms" = "3000"
"heartbeat.interval.ms" = "500"
"topic.metadata.refresh.interval.ms" = "1000"

[dead_letter]
path = "{dead}"

[file]
path = "{events}"
sync = false

{extra}
"#,
        dead = dead.display(),
        events = events.display()
    );
    (text, events, dead)
}
