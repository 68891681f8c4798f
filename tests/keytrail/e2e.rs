//! End to end on loopback: Kafka (mock cluster) → the pipeline →
//! `keytrail receive` over gRPC, with the receiver killed and restarted,
//! rejecting and stalling batches, and the keytrail process itself killed
//! with SIGKILL and restarted. Every test counts events by unique id and
//! checks order per partition and the committed offsets.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use keytrail::config::Config;
use keytrail::topology::Topology;
use keytrail_sink_grpc::receiver::{Receiver, ReceiverConfig};
use tokio::sync::oneshot;

use crate::support::kafka::MockKafka;
use crate::support::process::{Proc, free_port, keytrail_bin, keytrail_run, wait_listening};
use crate::support::{self, read_lines, wait_for};

const TIMEOUT: Duration = Duration::from_secs(90);

fn spawn_receiver(listen: SocketAddr, out: &Path, faults: &[&str]) -> Proc {
    let child = Command::new(keytrail_bin())
        .args(["receive", "--listen", &listen.to_string(), "--out"])
        .arg(out)
        .args(faults)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("receiver starts");
    Proc(child)
}

/// Received events: (partition, offset, id) in file order.
fn received(out: &Path) -> Vec<(i32, i64, String)> {
    read_lines(out)
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            Some((
                i32::try_from(v["origin"]["partition"].as_i64()?).ok()?,
                v["origin"]["offset"].as_i64()?,
                v["event_id"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// (partition, offset) of every dead letter written so far.
fn dead_offsets(path: &Path) -> Vec<(i32, i64)> {
    read_lines(path)
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            Some((
                i32::try_from(v["partition"].as_i64()?).ok()?,
                v["offset"].as_i64()?,
            ))
        })
        .collect()
}

fn unique_ids(events: &[(i32, i64, String)]) -> HashSet<String> {
    events.iter().map(|e| e.2.clone()).collect()
}

/// Per partition, the offsets in order of first arrival must increase.
fn assert_in_order_per_partition(events: &[(i32, i64, String)]) {
    let mut seen: HashSet<(i32, i64)> = HashSet::new();
    let mut last: HashMap<i32, i64> = HashMap::new();
    for (p, o, _) in events {
        if !seen.insert((*p, *o)) {
            continue;
        }
        if let Some(prev) = last.insert(*p, *o) {
            assert!(*o > prev, "partition {p}: offset {o} arrived after {prev}");
        }
    }
}

fn grpc_config(bootstrap: &str, topic: &str, group: &str, dir: &Path, endpoint: &str) -> String {
    let dead = dir.join("dead.jsonl");
    format!(
        r#"
[kafka]
bootstrap_servers = "{bootstrap}"
topics = ["{topic}"]
group_id = "{group}"
batch_max_records = 100
batch_linger_ms = 5
commit_interval_ms = 100
drain_timeout_ms = 20000

[kafka.librdkafka]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"

[dead_letter]
path = "{dead}"

[pipeline]
# More than the CI machine's cores: batches overtake each other in the
# transforms, and order per partition must still hold.
transform_concurrency = 4

[grpc]
endpoint = "{endpoint}"
batch_max_events = 100
linger_ms = 5
max_in_flight_batches = 4
request_timeout_ms = 300
connect_timeout_ms = 2000
retry_initial_backoff_ms = 20
retry_max_backoff_ms = 300
"#,
        dead = dead.display()
    )
}

fn assert_committed_to_end(kafka: &MockKafka, group: &str, topic: &str, partitions: i32) {
    let end: BTreeMap<i32, i64> = kafka.end_offsets(topic, partitions);
    assert_eq!(
        kafka.committed(group, topic, partitions),
        end,
        "committed offsets reach the end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_reaches_the_receiver_through_restarts_rejections_and_stalls() {
    let (topic, partitions, group) = ("audit", 3, "siem");
    let kafka = MockKafka::start(topic, partitions);
    let records = support::records(21, 3000, 1.0);
    let (expected, _) = support::valid_ids(&records);
    kafka.produce(topic, partitions, &records).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("received.jsonl");
    let listen = free_port();
    // Every 7th batch rejected (retryable), every 13th stalled past the
    // 300 ms deadline.
    let faults = [
        "--reject-every",
        "7",
        "--pause-after",
        "13",
        "--pause-ms",
        "600",
    ];
    let mut receiver = spawn_receiver(listen, &out, &faults);
    wait_listening(listen, TIMEOUT).await;

    let config: Config = toml::from_str(&grpc_config(
        kafka.bootstrap(),
        topic,
        group,
        dir.path(),
        &format!("http://{listen}"),
    ))
    .expect("config parses");
    let topology = Topology::new(config);
    let stats = topology.source_stats();
    let (stop, stopped) = oneshot::channel::<()>();
    let pipeline = tokio::spawn(async move {
        topology
            .run(async {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| format!("{e:#}"))
    });

    // While it runs, no committed offset may pass a record that is neither
    // stored by the receiver nor dead-lettered.
    let checker = {
        let (bootstrap, out) = (kafka.bootstrap().to_owned(), out.clone());
        let dead = dir.path().join("dead.jsonl");
        let total = expected.len();
        tokio::task::spawn_blocking(move || {
            let mut violations = Vec::new();
            loop {
                let committed =
                    crate::support::kafka::committed(&bootstrap, group, topic, partitions);
                let stored = received(&out);
                let dead_letters = dead_offsets(&dead);
                for (p, c) in committed {
                    let have: HashSet<i64> = stored
                        .iter()
                        .map(|e| (e.0, e.1))
                        .chain(dead_letters.iter().copied())
                        .filter(|e| e.0 == p)
                        .map(|e| e.1)
                        .collect();
                    if let Some(missing) = (0..c).find(|o| !have.contains(o)) {
                        violations.push((p, c, missing));
                    }
                }
                if unique_ids(&stored).len() >= total {
                    return violations;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    // Kill and restart the receiver three times while events flow.
    for round in 1..=3usize {
        let target = expected.len() * round / 4;
        wait_for("progress before a receiver restart", TIMEOUT, || {
            unique_ids(&received(&out)).len() >= target
        })
        .await;
        drop(receiver);
        receiver = spawn_receiver(listen, &out, &faults);
        wait_listening(listen, TIMEOUT).await;
    }
    wait_for("every event at the receiver", TIMEOUT, || {
        unique_ids(&received(&out)).len() >= expected.len()
    })
    .await;
    let violations = checker.await.expect("checker ran");
    assert!(
        violations.is_empty(),
        "committed past events the receiver did not store: {violations:?}"
    );
    let _ = stop.send(());
    tokio::time::timeout(TIMEOUT, pipeline)
        .await
        .expect("pipeline stops in time")
        .expect("no panic")
        .expect("pipeline ran");
    drop(receiver);

    let events = received(&out);
    assert_eq!(unique_ids(&events), expected, "every event arrived, by id");
    assert_in_order_per_partition(&events);
    let duplicates = events.len() - expected.len();
    // Duplicates come only from re-sent in-flight batches: at most the
    // window (4 batches of 100) per reconnect.
    let reconnects_bound = 3 + 3000 / 100 / 7 + 3000 / 100 / 13 + 8;
    eprintln!(
        "receiver restarts: {} events, {duplicates} duplicates, {} kafka replays",
        expected.len(),
        stats.replays.load(Ordering::SeqCst)
    );
    assert!(
        duplicates <= 400 * reconnects_bound,
        "{duplicates} duplicates"
    );
    assert_committed_to_end(&kafka, group, topic, partitions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_keytrail_replays_from_the_last_commit() {
    let (topic, partitions, group) = ("audit", 2, "restart");
    let kafka = MockKafka::start(topic, partitions);
    let records = support::records(22, 4000, 1.0);
    let (expected, _) = support::valid_ids(&records);
    kafka.produce(topic, partitions, &records).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("received.jsonl");
    // A receiver that takes 20 ms per batch, so the kill lands mid-stream.
    let mut receiver_config =
        ReceiverConfig::new("127.0.0.1:0".parse().expect("addr"), out.clone());
    receiver_config.pause_after = Some(1);
    receiver_config.pause_ms = 20;
    let receiver = Receiver::bind(receiver_config)
        .await
        .expect("receiver binds");
    let endpoint = format!("http://{}", receiver.local_addr());
    let (stop_receiver, receiver_stopped) = oneshot::channel::<()>();
    let receiver_task = tokio::spawn(receiver.serve(async {
        let _ = receiver_stopped.await;
    }));

    let config_path = dir.path().join("keytrail.toml");
    // Commits far apart, so the kill lands after deliveries that were not
    // committed yet: the restart must replay them.
    let config = grpc_config(kafka.bootstrap(), topic, group, dir.path(), &endpoint)
        .replace("commit_interval_ms = 100", "commit_interval_ms = 3000");
    std::fs::write(&config_path, config).expect("config written");
    let run = || keytrail_run(&config_path);

    let first = run();
    wait_for("some events before the kill", TIMEOUT, || {
        unique_ids(&received(&out)).len() >= expected.len() / 3
    })
    .await;
    drop(first); // SIGKILL: no drain, no final commit.
    let before_restart = received(&out).len();
    assert!(
        unique_ids(&received(&out)).len() < expected.len(),
        "the kill must land before the end for the replay to be tested"
    );

    let mut second = run();
    wait_for("every event after the restart", TIMEOUT, || {
        unique_ids(&received(&out)).len() >= expected.len()
    })
    .await;
    // SIGTERM: drain, commit, exit 0.
    let pid = second.0.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || second.0.wait().expect("exit status"));
    let exit = tokio::time::timeout(TIMEOUT, exit)
        .await
        .expect("exits in time")
        .expect("waiter");
    assert!(exit.success(), "graceful shutdown exits 0, got {exit}");

    let _ = stop_receiver.send(());
    receiver_task
        .await
        .expect("receiver task")
        .expect("receiver ran");
    let events = received(&out);
    assert_eq!(unique_ids(&events), expected, "every event arrived, by id");
    assert_in_order_per_partition(&events[..before_restart]);
    let duplicates = events.len() - expected.len();
    eprintln!(
        "SIGKILL restart: {} events, {duplicates} duplicates replayed from the last commit",
        expected.len()
    );
    assert!(
        duplicates > 0,
        "events delivered after the last commit are delivered again"
    );
    assert_committed_to_end(&kafka, group, topic, partitions);
}

/// `keytrail` turns transparent huge pages off for itself (see `main.rs`);
/// the kernel reports the flag in `/proc/<pid>/status` since Linux 5.0.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn keytrail_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listen = free_port();
    let mut receiver = spawn_receiver(listen, &dir.path().join("out.jsonl"), &[]);
    wait_listening(listen, TIMEOUT).await;
    // Another listener on a reused port would pass the wait; an exited
    // receiver's status has no THP line.
    assert!(
        matches!(receiver.0.try_wait(), Ok(None)),
        "the receiver is running"
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", receiver.0.id()))
        .expect("the process's status");
    let Some(thp) = status
        .lines()
        .find_map(|line| line.strip_prefix("THP_enabled:"))
    else {
        eprintln!("this kernel does not report THP_enabled; nothing to check");
        return;
    };
    // Always 0 on a kernel built without transparent huge pages.
    assert_eq!(thp.trim(), "0", "THP_enabled in /proc/<pid>/status");
}
