//! The running pipeline as a Prometheus scrape target: its exposition passes
//! `promtool check metrics`, and a real `prometheus` server on loopback,
//! scraping it, counts exactly the events that flowed. `make test` requires
//! both tools (`KEYTRAIL_REQUIRE_PROMTOOL=1`); elsewhere a missing tool
//! skips with a note.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use keytrail::config::Config;
use keytrail::topology::Topology;
use tokio::sync::oneshot;

#[path = "../../crates/keytrail-sink-prometheus/tests/common/mod.rs"]
mod common;

use crate::support::kafka::MockKafka;
use crate::support::process::free_port;
use crate::support::{self, pipeline_config, read_lines, wait_for};

const TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_scrapes_what_the_pipeline_counted() {
    let Some(promtool) = common::promtool("pipeline exposition") else {
        return;
    };
    let Some(prometheus) = common::prometheus("pipeline scrape") else {
        return;
    };
    let (topic, partitions, group) = ("audit", 2, "metrics");
    let kafka = MockKafka::start(topic, partitions);
    let records = support::records(41, 800, 2.0);
    let (valid, _) = support::valid_ids(&records);
    kafka.produce(topic, partitions, &records).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let metrics_addr = free_port();
    let extra = format!("[prometheus]\nlisten = \"{metrics_addr}\"\nupkeep_interval_ms = 500\n");
    let (config, events, _dead) =
        pipeline_config(kafka.bootstrap(), topic, group, dir.path(), &extra);
    let config: Config = toml::from_str(&config).expect("config parses");
    let (stop, stopped) = oneshot::channel::<()>();
    let pipeline = tokio::spawn(Topology::new(config).run(async {
        let _ = stopped.await;
    }));
    wait_for("every event through the pipeline", TIMEOUT, || {
        support::event_ids(&events).len() >= valid.len()
    })
    .await;

    // What the file sink wrote is what the counter sink counted.
    let mut by_source: BTreeMap<String, f64> = BTreeMap::new();
    for line in read_lines(&events) {
        let event: serde_json::Value = serde_json::from_str(&line).expect("event JSON");
        *by_source
            .entry(event["source"].as_str().expect("source").to_owned())
            .or_default() += 1.0;
    }

    // The dead-letter output and the commits run beside the sinks: their
    // series appear once they have done their first work, which may come
    // after the last event reached the file. Scrape until every series is
    // there (bounded), then check that exposition.
    let names = [
        "keytrail_kafka_records_consumed_total",
        "keytrail_kafka_commits_total",
        "keytrail_stage_events_in_total",
        "keytrail_dead_letters_total",
    ];
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let exposition = loop {
        let exposition = common::get(metrics_addr, "/metrics")
            .await
            .expect("/metrics answers");
        assert_eq!(exposition.status, 200);
        let missing: Vec<&str> = names
            .into_iter()
            .filter(|name| !exposition.body.contains(name))
            .collect();
        if missing.is_empty() {
            break exposition;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing:?} missing from the exposition"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.body.as_bytes())
        .expect("exposition written");
    let output = check.wait_with_output().expect("promtool finishes");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let data = tempfile::tempdir().expect("prometheus dir");
    let mut server = common::PrometheusProcess::start(&prometheus, data.path(), metrics_addr);
    let total = valid.len() as f64;
    server
        .wait_for("sum(keytrail_events_total)", TIMEOUT, |r| {
            r.first()
                .is_some_and(|s| (common_value(s) - total).abs() < 0.5)
        })
        .await;
    let per_source = server
        .wait_for("sum by (source) (keytrail_events_total)", TIMEOUT, |r| {
            !r.is_empty()
        })
        .await;
    let scraped: BTreeMap<String, f64> = per_source
        .iter()
        .map(|s| {
            (
                s["metric"]["source"].as_str().unwrap_or("?").to_owned(),
                common_value(s),
            )
        })
        .filter(|(_, v)| *v > 0.0)
        .collect();
    assert_eq!(
        scraped, by_source,
        "counts by source equal what was delivered"
    );

    let _ = stop.send(());
    tokio::time::timeout(TIMEOUT, pipeline)
        .await
        .expect("pipeline stops")
        .expect("no panic")
        .expect("pipeline ran");
}

fn common_value(sample: &serde_json::Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}
