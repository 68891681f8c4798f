//! The full path on loopback, end to end with acknowledgements: a Kafka
//! backlog (librdkafka's mock cluster, in this process) → `keytrail run`
//! (the release binary, a child process) → gRPC → the reference receiver
//! (in this process, output discarded to `/dev/null`).
//!
//! Not a criterion bench: one run over a large backlog is the measurement.
//! It prints
//! - events/s at the receiver, from the first stored event to the last
//!   (events count once they are stored and acknowledged; `startup` adds
//!   the process start and the consumer-group join);
//! - the peak resident memory (VmHWM) of the `keytrail run` process, which
//!   starts with the whole backlog waiting in Kafka;
//! - the CPU seconds of `keytrail run` and of this process (mock broker and
//!   receiver) up to the last event, per event: on a shared machine the
//!   events/s move with the load, the CPU per event much less.
//!
//! The backlog is the bench corpus repeated up to `KEYTRAIL_LOOPBACK_EVENTS`
//! records (default 1 000 000), spread round-robin over one partition per
//! 3 MiB (at least 4): librdkafka's mock cluster keeps only the last few MB
//! of each partition and deletes older records, which a backlog crammed into
//! 4 partitions loses before it is read. The malformed lines go to the
//! dead-letter file. Needs `target/release/keytrail`
//! (`make bench` builds it; `KEYTRAIL_BIN` overrides). The pipeline uses
//! the configuration defaults (source batches of 1000, transforms on one
//! thread per CPU, gRPC batches of 500, 8 in flight), plaintext gRPC; `KEYTRAIL_LOOPBACK_GRPC_TOML` adds `[grpc]`
//! keys for experiments, `KEYTRAIL_LOOPBACK_TIMEOUT_S` bounds the run
//! (default 300 s; the child's log is printed when it fails),
//! `KEYTRAIL_LOOPBACK_TOML` appends tables (`[kafka.librdkafka]`,
//! `[prometheus]`), `KEYTRAIL_LOOPBACK_KEEP` keeps the configuration and the
//! child's log (`RUST_LOG` reaches the child).

#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keytrail_core::RecordMeta;
use keytrail_sink_grpc::receiver::{Receiver, ReceiverConfig, ReceiverStats};
use keytrail_transform_normalize::Normalizer;
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::util::Timeout;

/// The allocator of the `keytrail` binary, so that the receiver in this
/// process runs as `keytrail receive` would.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOPIC: &str = "audit";
/// The mock cluster keeps only the last few MB of each partition (older
/// records are deleted as if by size retention), so the backlog is spread
/// over enough partitions to hold all of it: one per this many bytes.
const BYTES_PER_PARTITION: usize = 3 << 20;
const GROUP: &str = "loopback-bench";
/// Longest the run may take before it is called failed (seconds;
/// `KEYTRAIL_LOOPBACK_TIMEOUT_S` overrides).
const DEFAULT_TIMEOUT_S: u64 = 300;

fn main() {
    // `cargo bench` passes `--bench`; a filter that does not name this
    // bench skips it (like criterion's filters).
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    if !"loopback".contains(filter.as_str()) {
        return;
    }
    let total: usize = std::env::var("KEYTRAIL_LOOPBACK_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let deadline = Duration::from_secs(
        std::env::var("KEYTRAIL_LOOPBACK_TIMEOUT_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_TIMEOUT_S),
    );
    let corpus = keytrail_benches::corpus();
    let normalizer = Normalizer::default();
    let good: Vec<bool> = corpus
        .iter()
        .map(|r| normalizer.normalize_line(r, &RecordMeta::default()).is_ok())
        .collect();
    let expected = (0..total).filter(|i| good[i % corpus.len()]).count() as u64;
    let bytes: usize = (0..total).map(|i| corpus[i % corpus.len()].len()).sum();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");

    let partitions = i32::try_from(bytes.div_ceil(BYTES_PER_PARTITION).max(4)).unwrap_or(i32::MAX);
    let (producer, bootstrap) = mock_cluster(partitions);
    let started = Instant::now();
    produce(&producer, &corpus, total, partitions);
    let stored = end_offsets(&bootstrap, partitions);
    println!(
        "loopback: backlog of {total} records ({:.0} MB, {expected} valid events, {partitions} \
         partitions) produced in {:.1} s; the broker holds {stored}",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(stored, total as i64, "every record is in the topic");

    let dir = scratch_dir();
    let receiver = runtime
        .block_on(Receiver::bind(ReceiverConfig::new(
            "127.0.0.1:0".parse().expect("address"),
            PathBuf::from("/dev/null"),
        )))
        .expect("receiver binds");
    let endpoint = format!("http://{}", receiver.local_addr());
    let stats = receiver.stats();
    let (stop_receiver, receiver_stopped) = tokio::sync::oneshot::channel::<()>();
    let receiver_task = runtime.spawn(receiver.serve(async {
        let _ = receiver_stopped.await;
    }));

    let config = dir.join("keytrail.toml");
    std::fs::write(&config, config_text(&bootstrap, &endpoint, &dir)).expect("config written");
    let spawned = Instant::now();
    let bench_cpu_at_spawn = cpu_seconds("self");
    let log_path = dir.join("keytrail.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = Command::new(keytrail_bin())
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("keytrail run starts");
    let log_tail = || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };
    let pid = child.id();

    let mut first: Option<(Instant, u64)> = None;
    let mut peak_rss_kib = 0u64;
    loop {
        let stored = stats.stored_events();
        if first.is_none() && stored > 0 {
            first = Some((Instant::now(), stored));
        }
        peak_rss_kib = peak_rss_kib.max(status_kib(pid, "VmHWM:").unwrap_or(0));
        if stored >= expected {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "keytrail run exited early ({status}) after {stored} of {expected} events:\n{}",
                log_tail()
            );
        }
        if spawned.elapsed() > deadline {
            let committed = committed_offsets(&bootstrap, partitions);
            let _ = child.kill();
            panic!(
                "only {stored} of {expected} events within {deadline:?}; committed offsets \
                 per partition {committed:?}; receiver: {}:\n{}",
                receiver_summary(&stats),
                log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let done = Instant::now();
    peak_rss_kib = peak_rss_kib.max(status_kib(pid, "VmHWM:").unwrap_or(0));
    let keytrail_cpu = cpu_seconds(&pid.to_string());
    let bench_cpu = cpu_seconds("self") - bench_cpu_at_spawn;
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let exit = child.wait().expect("keytrail run exits");
    let _ = stop_receiver.send(());
    let _ = runtime.block_on(receiver_task);
    if std::env::var_os("KEYTRAIL_LOOPBACK_KEEP").is_some() {
        println!("loopback: configuration and log kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }

    let (first_at, first_count) = first.expect("events arrived");
    let steady = (stats.stored_events() - first_count) as f64
        / done.duration_since(first_at).as_secs_f64().max(1e-9);
    let overall = expected as f64 / done.duration_since(spawned).as_secs_f64();
    println!(
        "loopback: {expected} events stored and acknowledged; {steady:.0} events/s \
         (first to last event), {overall:.0} events/s including startup ({:.2} s); \
         keytrail run peak RSS {:.0} MiB; exit {exit}",
        first_at.duration_since(spawned).as_secs_f64(),
        peak_rss_kib as f64 / 1024.0
    );
    println!(
        "loopback: CPU from start to the last event: keytrail run {keytrail_cpu:.1} s \
         ({:.2} us per event), bench process (mock broker, receiver) {bench_cpu:.1} s \
         ({:.2} us per event)",
        keytrail_cpu * 1e6 / expected as f64,
        bench_cpu * 1e6 / expected as f64,
    );
    // A slow run with the usual CPU per event waited on something: a
    // second stream means the sender reconnected (a timeout or an error)
    // and resent its window. Stores beyond the expected count are resent
    // batches stored again (the wait above ends at the expected count, so
    // this is a lower bound).
    println!(
        "loopback: receiver: {}; {} stores beyond the expected count",
        receiver_summary(&stats),
        stats.stored_events().saturating_sub(expected)
    );
}

/// The receiver's counters, in words.
fn receiver_summary(stats: &ReceiverStats) -> String {
    format!(
        "{} streams, {} batches accepted, {} refused for now, {} refused for good",
        stats.streams(),
        stats.accepted_batches(),
        stats.retryable_rejections(),
        stats.permanent_rejections()
    )
}

/// A producer owning a one-broker mock cluster with the bench topic.
fn mock_cluster(partitions: i32) -> (ThreadedProducer<DefaultProducerContext>, String) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("test.mock.num.brokers", "1")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "200000")
        .create()
        .expect("mock cluster starts");
    let bootstrap = {
        let cluster = producer
            .client()
            .mock_cluster()
            .expect("producer owns a mock cluster");
        cluster
            .create_topic(TOPIC, partitions, 1)
            .expect("topic created");
        cluster.bootstrap_servers()
    };
    no_initial_rebalance_delay(&producer);
    (producer, bootstrap)
}

/// Produces `total` records, the corpus repeated, round-robin over the
/// partitions, and waits until every one is delivered.
fn produce(
    producer: &ThreadedProducer<DefaultProducerContext>,
    corpus: &[Vec<u8>],
    total: usize,
    partitions: i32,
) {
    for i in 0..total {
        let payload = &corpus[i % corpus.len()];
        let partition = i32::try_from(i % partitions as usize).unwrap_or(0);
        let mut record: BaseRecord<'_, (), [u8]> = BaseRecord::to(TOPIC)
            .payload(&payload[..])
            .partition(partition);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((error, _)) => panic!("cannot produce: {error}"),
            }
        }
    }
    producer
        .flush(Timeout::After(Duration::from_secs(120)))
        .expect("every record delivered");
}

/// Records in the topic: the sum of the partitions' high watermarks.
fn end_offsets(bootstrap: &str, partitions: i32) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer for watermarks");
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(TOPIC, p, Timeout::After(Duration::from_secs(10)))
                .map_or(0, |(_, high)| high)
        })
        .sum()
}

/// The bench group's committed offset per partition (-1: none).
fn committed_offsets(bootstrap: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", GROUP)
        .create()
        .expect("consumer for offsets");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(TOPIC, p);
    }
    consumer
        .committed_offsets(list, Timeout::After(Duration::from_secs(10)))
        .map(|l| {
            l.elements()
                .iter()
                .map(|e| match e.offset() {
                    Offset::Offset(o) => o,
                    _ => -1,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Lowers the mock cluster's consumer-group initial rebalance delay (3 s)
/// to zero, as the integration tests do; the safe API has no call for it.
#[allow(unsafe_code)]
fn no_initial_rebalance_delay(producer: &ThreadedProducer<DefaultProducerContext>) {
    let client = producer.client().native_ptr();
    // SAFETY: `client` is the live handle of `producer`, which owns the mock
    // cluster; the cluster pointer is valid while the producer lives, and
    // the call only stores an integer in the cluster's settings.
    unsafe {
        let cluster = rdkafka::bindings::rd_kafka_handle_mock_cluster(client);
        assert!(!cluster.is_null(), "producer has a mock cluster");
        rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0);
    }
}

fn config_text(bootstrap: &str, endpoint: &str, dir: &Path) -> String {
    format!(
        r#"
[kafka]
bootstrap_servers = "{bootstrap}"
topics = ["{TOPIC}"]
group_id = "{GROUP}"

[dead_letter]
path = "{dead}"

[grpc]
endpoint = "{endpoint}"
{grpc_extra}
{extra}
"#,
        dead = dir.join("dead.jsonl").display(),
        // Extra `[grpc]` keys for experiments (`max_in_flight_batches = 32`).
        grpc_extra = std::env::var("KEYTRAIL_LOOPBACK_GRPC_TOML").unwrap_or_default(),
        // Further tables for experiments (`[kafka.librdkafka]`, `[pipeline]`).
        extra = std::env::var("KEYTRAIL_LOOPBACK_TOML").unwrap_or_default()
    )
}

/// `target/<profile>/keytrail`, beside the directory of this bench binary.
fn keytrail_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("KEYTRAIL_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("bench binary path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir")
        .join("keytrail");
    assert!(
        bin.exists(),
        "{} is missing: run `make bench` (it builds the release binary)",
        bin.display()
    );
    bin
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keytrail-loopback-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// User and system CPU seconds of a process so far (`self` or a pid), from
/// `/proc/<pid>/stat`; 0 when it cannot be read.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The fields after the command name (which may hold spaces) start with
    // the state; utime and stime are the 12th and 13th of them.
    let Some((_, after)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / clock_ticks_per_second()
}

/// `getconf CLK_TCK` (100 on Linux unless configured otherwise).
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A `kB` line of `/proc/<pid>/status` (`VmHWM:`, `VmRSS:`).
fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
