//! The listener and a real Prometheus scraping it.
//!
//! This binary installs the process-wide recorder once (a `OnceLock`), as
//! `keytrail run` does, and serves it on `127.0.0.1:0`:
//! - `probes_and_routes`: `/health`, `/ready` following the [`Readiness`]
//!   handle, `/metrics`, 404, 405, `HEAD`, shutdown;
//! - `prometheus_scrapes_the_counts`: a `prometheus` server on loopback
//!   (free port, TSDB in a temp dir, 1 s scrapes, the project's alert
//!   rules loaded) scrapes the listener while known events go through the
//!   sink; the test polls the query API until `sum(keytrail_events_total)`
//!   equals the number sent and checks the per-label counts and that the
//!   pre-registered series let a first key deletion fire `IbmKeyDeleted`.
//!   Skipped without `prometheus` on PATH (failed instead with
//!   `KEYTRAIL_REQUIRE_PROMETHEUS=1` or `KEYTRAIL_REQUIRE_PROMTOOL=1`).

mod common;

use common::PrometheusProcess;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use keytrail_core::{AckToken, BatchStatus, Sink};
use keytrail_sink_prometheus::{Exporter, Prometheus, PrometheusConfig, Readiness};
use serde_json::Value;

/// The recorder can be installed once per process.
fn installed() -> &'static (Prometheus, Exporter) {
    static INSTALLED: OnceLock<(Prometheus, Exporter)> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let config = PrometheusConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            upkeep_interval_ms: 500,
            ..PrometheusConfig::default()
        };
        let prometheus = config.build().expect("valid config");
        let exporter = prometheus.install().expect("first and only install");
        (prometheus, exporter)
    })
}

#[tokio::test]
async fn probes_and_routes() {
    let (_, exporter) = installed();
    let readiness = Readiness::new();
    let server = exporter.serve(readiness.clone()).await.expect("serves");
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let health = common::get(addr, "/health").await.expect("health");
    assert_eq!(health.status, 200);
    assert_eq!(health.body, "ok\n");

    assert_eq!(
        common::get(addr, "/ready").await.expect("ready").status,
        503
    );
    readiness.set_ready(true);
    assert_eq!(
        common::get(addr, "/ready").await.expect("ready").status,
        200
    );
    assert_eq!(
        common::get(addr, "/ready?verbose=1")
            .await
            .expect("ready")
            .status,
        200
    );
    readiness.set_ready(false);
    assert_eq!(
        common::get(addr, "/ready").await.expect("ready").status,
        503
    );

    let metrics = common::get(addr, "/metrics").await.expect("metrics");
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        metrics.body.contains(&format!(
            "keytrail_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains("# HELP keytrail_build_info "));

    let head = common::request(addr, "HEAD", "/metrics")
        .await
        .expect("head");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    let missing = common::get(addr, "/").await.expect("root");
    assert_eq!(missing.status, 404);
    let post = common::request(addr, "POST", "/metrics")
        .await
        .expect("post");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    server.shutdown().await;
    assert!(
        common::get(addr, "/health").await.is_err(),
        "still answering after shutdown"
    );
}

fn value_of(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("sample value")
}

fn by_labels(result: &[Value], keys: &[&str]) -> BTreeMap<String, f64> {
    result
        .iter()
        .map(|sample| {
            let mut key = String::new();
            for k in keys {
                let v = sample["metric"][*k].as_str().unwrap_or("");
                let _ = write!(key, "{k}={v},");
            }
            (key, value_of(sample))
        })
        .collect()
}

fn key(pairs: &[(&str, &str)]) -> String {
    pairs.iter().fold(String::new(), |mut acc, (k, v)| {
        let _ = write!(acc, "{k}={v},");
        acc
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_counts() {
    let Some(binary) = common::prometheus("prometheus_scrapes_the_counts") else {
        return;
    };
    let (prometheus, exporter) = installed();
    let mut sink = prometheus.sink();
    let readiness = Readiness::new();
    readiness.set_ready(true);
    let server = exporter.serve(readiness).await.expect("serves");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut prom = PrometheusProcess::start(&binary, dir.path(), server.local_addr());
    let timeout = Duration::from_secs(60);

    // The target is up and its pre-registered zero series are stored
    // before any event is counted.
    prom.wait_for("up{job=\"keytrail\"}", timeout, |r| {
        r.len() == 1 && value_of(&r[0]) == 1.0
    })
    .await;
    prom.wait_for(
        "keytrail_actionable_events_total{source=\"ibm_key_protect\", action=\"kms.secrets.delete\"}",
        timeout,
        |r| r.len() == 1 && value_of(&r[0]) == 0.0,
    )
    .await;

    // Feed the events in three batches, each acknowledged after counting.
    let events = common::sample_events();
    let statuses = Arc::new(Mutex::new(Vec::new()));
    for chunk in events.chunks(events.len() / 3 + 1) {
        let seen = Arc::clone(&statuses);
        let ack = AckToken::new(move |s| seen.lock().expect("lock").push(s));
        sink.accept(Arc::new(chunk.to_vec().into()), ack)
            .await
            .expect("accepted");
    }
    assert_eq!(
        *statuses.lock().expect("lock"),
        [BatchStatus::Delivered; 3],
        "every batch acked"
    );

    let n = common::sample_count();
    prom.wait_for("sum(keytrail_events_total)", timeout, |r| {
        r.len() == 1 && value_of(&r[0]) == n as f64
    })
    .await;

    // Per-label counts, as sent.
    let keys = ["source", "category", "action", "outcome", "severity"];
    let got = prom
        .query("sum by (source, category, action, outcome, severity) (keytrail_events_total)")
        .await
        .expect("query answers");
    let mut want = BTreeMap::new();
    for s in common::SAMPLES {
        *want
            .entry(key(&[
                ("source", s.source.as_str()),
                ("category", s.category.as_str()),
                ("action", s.label),
                ("outcome", s.outcome.as_str()),
                ("severity", s.severity.as_str()),
            ]))
            .or_insert(0.0) += s.count as f64;
    }
    assert_eq!(by_labels(&got, &keys), want);

    let got = prom
        .query("sum by (source, action, severity) (keytrail_actionable_events_total) > 0")
        .await
        .expect("query answers");
    let mut want = BTreeMap::new();
    for s in common::SAMPLES.iter().filter(|s| s.actionable) {
        *want
            .entry(key(&[
                ("source", s.source.as_str()),
                ("action", s.label),
                ("severity", s.severity.as_str()),
            ]))
            .or_insert(0.0) += s.count as f64;
    }
    assert_eq!(by_labels(&got, &["source", "action", "severity"]), want);

    let folded = prom
        .query("keytrail_label_cardinality_folded_total{reason=\"not_in_catalog\"}")
        .await
        .expect("query answers");
    let unknown: usize = common::SAMPLES
        .iter()
        .filter(|s| s.label == "other")
        .map(|s| s.count)
        .sum();
    assert_eq!(folded.len(), 1);
    assert_eq!(value_of(&folded[0]), unknown as f64);

    // No personal data reached the exposition, in any label.
    let scraped = common::get(server.local_addr(), "/metrics")
        .await
        .expect("metrics");
    for needle in ["alice", "192.0.2.", "key-0-", "crn:v1"] {
        assert!(
            !scraped.body.contains(needle),
            "{needle} leaked into a label"
        );
    }

    // The zero series made the very first key deletion visible to
    // increase(): the project's rule fires.
    prom.wait_for(
        "ALERTS{alertname=\"IbmKeyDeleted\", alertstate=\"firing\", action=\"kms.secrets.delete\"}",
        timeout,
        |r| r.len() == 1,
    )
    .await;

    drop(prom);
    server.shutdown().await;
}
