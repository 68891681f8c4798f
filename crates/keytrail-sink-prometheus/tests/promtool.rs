//! promtool checks under `cargo test`: the exposition of a recorder with
//! real counts passes `promtool check metrics`, and the alert rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`).
//!
//! Each test skips with a note when `promtool` is missing, and fails
//! instead when `KEYTRAIL_REQUIRE_PROMTOOL=1`. No global recorder is
//! installed here: the exposition comes from a local recorder.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use keytrail_sink_prometheus::{
    METRICS, MetricKind, PrometheusConfig, PrometheusSink, describe_metrics, record_build_info,
};

fn show(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// An exposition with every metric keytrail exposes, as a busy process
/// would render it.
fn busy_exposition() -> String {
    let prometheus = PrometheusConfig::default().build().expect("defaults");
    let recorder = prometheus
        .recorder_builder()
        .expect("buckets accepted")
        .build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        describe_metrics();
        record_build_info("0.1.0");
        let mut sink: PrometheusSink = prometheus.sink();
        sink.count(&common::sample_events());
        for m in METRICS {
            let labels: Vec<(&'static str, &'static str)> =
                m.labels.iter().map(|&k| (k, "test")).collect();
            match m.kind {
                MetricKind::Counter if !m.name.contains("events_total") => {
                    metrics::counter!(m.name, &labels).increment(3)
                }
                MetricKind::Counter => {}
                MetricKind::Gauge if m.name.ends_with("_info") => {}
                MetricKind::Gauge => metrics::gauge!(m.name, &labels).set(0.25),
                MetricKind::Histogram => {
                    for v in [0.003, 0.042, 0.2, 7.0, 45.0] {
                        metrics::histogram!(m.name, &labels).record(v);
                    }
                }
            }
        }
    });
    handle.render()
}

#[test]
fn exposition_passes_promtool_check_metrics() {
    let exposition = busy_exposition();
    for m in METRICS {
        assert!(
            exposition.contains(&format!("# HELP {} ", m.name)),
            "{} has no HELP line",
            m.name
        );
        assert!(
            exposition.contains(&format!("# TYPE {} {}", m.name, m.kind.as_str())),
            "{} has no TYPE line",
            m.name
        );
    }
    assert!(exposition.contains("keytrail_grpc_round_trip_seconds_bucket{le=\"0.005\"} 1"));
    assert!(!exposition.contains("alice") && !exposition.contains("192.0.2."));

    let Some(promtool) = common::promtool("exposition_passes_promtool_check_metrics") else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(exposition.as_bytes())
        .expect("exposition written");
    let output = child.wait_with_output().expect("promtool ends");
    assert!(
        output.status.success(),
        "promtool check metrics refused the exposition:\n{}\n--- exposition\n{exposition}",
        show(&output)
    );
}

fn promtool_on(args: &[&str], file: &Path, test: &str) {
    let Some(promtool) = common::promtool(test) else {
        return;
    };
    let output = Command::new(promtool)
        .args(args)
        .arg(file)
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool {} {} failed:\n{}",
        args.join(" "),
        file.display(),
        show(&output)
    );
}

#[test]
fn alert_rules_pass_promtool_check_rules() {
    promtool_on(
        &["check", "rules"],
        &common::deploy_file("alerts.yml"),
        "alert_rules_pass_promtool_check_rules",
    );
}

#[test]
fn alert_rules_pass_their_promtool_unit_tests() {
    promtool_on(
        &["test", "rules"],
        &common::deploy_file("alerts.test.yml"),
        "alert_rules_pass_their_promtool_unit_tests",
    );
}

/// Every alert has a unit test, and every alert named by the tests exists
/// (promtool itself does not notice an alert nobody tests).
#[test]
fn every_alert_has_a_unit_test() {
    let rules = std::fs::read_to_string(common::deploy_file("alerts.yml")).expect("alerts.yml");
    let tests =
        std::fs::read_to_string(common::deploy_file("alerts.test.yml")).expect("alerts.test.yml");
    let names = |text: &str, key: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix(key))
            .map(|n| n.trim().to_owned())
            .collect()
    };
    let alerts = names(&rules, "- alert:");
    let tested = names(&tests, "alertname:");
    assert!(!alerts.is_empty());
    assert_eq!(alerts, tested);
    for alert in &alerts {
        let firing = tests
            .split("alertname: ")
            .skip(1)
            .any(|chunk| chunk.starts_with(&format!("{alert}\n")) && chunk.contains("exp_labels:"));
        assert!(firing, "{alert} is never tested firing");
    }
}
