//! The at-least-once spine against a real Kafka-protocol broker (librdkafka's
//! mock cluster, in process): nothing lost, no offset skipped, offsets never
//! past an unacknowledged event, backpressure without rebalances, rebalances
//! and restarts that lose nothing. Every test counts events by unique id.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keytrail::config::Config;
use keytrail::topology::Topology;
use keytrail_core::{AckToken, Event, Prepare, SharedEvents, Sink, SinkError};
use keytrail_source_kafka::SourceStats;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::support::kafka::MockKafka;
use crate::support::{self, event_ids, pipeline_config, read_lines, record_id, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A running in-process pipeline.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow_result::Result>,
    stats: Arc<SourceStats>,
}

mod anyhow_result {
    pub type Result = std::result::Result<(), String>;
}

fn start(config_text: &str, sinks: Vec<Box<dyn FnOnce(Topology) -> Topology + Send>>) -> Running {
    let config: Config = toml::from_str(config_text).expect("test config parses");
    let mut topology = Topology::new(config);
    for add in sinks {
        topology = add(topology);
    }
    let stats = topology.source_stats();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        topology
            .run(async {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| format!("{e:#}"))
    });
    Running {
        stop: Some(stop),
        task,
        stats,
    }
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("pipeline stops in time")
            .expect("pipeline task does not panic");
        result.expect("pipeline ran without error");
    }
}

/// What a test sink saw: (partition, offset, event id) per delivered event.
#[derive(Default)]
struct Seen {
    delivered: Mutex<Vec<(i32, i64, String)>>,
    batches: AtomicUsize,
}

impl Seen {
    fn ids(&self) -> Vec<String> {
        self.delivered
            .lock()
            .expect("lock")
            .iter()
            .map(|d| d.2.clone())
            .collect()
    }

    fn unique(&self) -> usize {
        self.ids().into_iter().collect::<HashSet<_>>().len()
    }

    fn record(&self, events: &SharedEvents) {
        let mut delivered = self.delivered.lock().expect("lock");
        for e in events.iter() {
            let origin = e.origin.as_ref().expect("kafka events have an origin");
            delivered.push((
                origin.partition,
                origin.offset,
                e.event_id.as_deref().unwrap_or_default().to_owned(),
            ));
        }
    }

    fn offsets(&self) -> HashMap<i32, HashSet<i64>> {
        let mut out: HashMap<i32, HashSet<i64>> = HashMap::new();
        for (p, o, _) in self.delivered.lock().expect("lock").iter() {
            out.entry(*p).or_default().insert(*o);
        }
        out
    }
}

/// Acknowledges everything, except that it fails the batches whose
/// sequence number is in `fail` (the sink "fails and recovers").
struct FlakySink {
    seen: Arc<Seen>,
    fail: std::ops::Range<usize>,
}

impl Sink for FlakySink {
    fn name(&self) -> &'static str {
        "flaky"
    }

    async fn accept(&mut self, events: SharedEvents, ack: AckToken) -> Result<(), SinkError> {
        let n = self.seen.batches.fetch_add(1, Ordering::SeqCst);
        if self.fail.contains(&n) {
            ack.fail();
            return Ok(());
        }
        self.seen.record(&events);
        ack.ack();
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A sink that names a step ([`CountAndWhere`]) and checks that every
/// batch it takes carries the step's result for exactly its events.
#[derive(Default)]
struct PreparedSink {
    /// Batches with events, and those of them that came prepared.
    batches: Arc<AtomicUsize>,
    prepared: Arc<AtomicUsize>,
    /// Events counted by the step, and the threads it ran on.
    events: Arc<AtomicUsize>,
    threads: Arc<Mutex<HashSet<String>>>,
    /// Events whose origin names the topic `audit`, interned.
    interned: Arc<AtomicUsize>,
}

/// Counts a batch's events and names the thread it runs on.
#[derive(Debug)]
struct CountAndWhere;

impl Prepare for CountAndWhere {
    fn prepare(&self, events: &[Event]) -> Box<dyn std::any::Any + Send + Sync> {
        let thread = std::thread::current().name().unwrap_or_default().to_owned();
        Box::new((events.len(), thread))
    }
}

impl Sink for PreparedSink {
    fn name(&self) -> &'static str {
        "prepared"
    }

    fn prepare(&self) -> Option<Arc<dyn Prepare>> {
        Some(Arc::new(CountAndWhere))
    }

    async fn accept(&mut self, events: SharedEvents, ack: AckToken) -> Result<(), SinkError> {
        if !events.is_empty() {
            self.batches.fetch_add(1, Ordering::SeqCst);
            let interned = events
                .iter()
                .filter_map(|e| e.origin.as_ref())
                .filter(|o| o.topic == "audit" && o.topic.is_interned())
                .count();
            self.interned.fetch_add(interned, Ordering::SeqCst);
            if let Some((count, thread)) = events.prepared::<CountAndWhere, (usize, String)>() {
                if *count == events.len() {
                    self.prepared.fetch_add(1, Ordering::SeqCst);
                }
                self.events.fetch_add(*count, Ordering::SeqCst);
                self.threads.lock().expect("lock").insert(thread.clone());
            }
        }
        ack.ack();
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Holds every batch until released (a SIEM that stopped answering).
struct StallSink {
    seen: Arc<Seen>,
    released: watch::Receiver<bool>,
}

impl Sink for StallSink {
    fn name(&self) -> &'static str {
        "stall"
    }

    async fn accept(&mut self, events: SharedEvents, ack: AckToken) -> Result<(), SinkError> {
        if self.released.wait_for(|released| *released).await.is_err() {
            ack.fail();
            return Ok(());
        }
        self.seen.record(&events);
        ack.ack();
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

fn assert_committed_to_end(kafka: &MockKafka, group: &str, topic: &str, partitions: i32) {
    let end = kafka.end_offsets(topic, partitions);
    let committed = kafka.committed(group, topic, partitions);
    assert_eq!(
        committed, end,
        "committed offsets reach the end of every partition"
    );
}

fn dead_reasons(path: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in read_lines(path) {
        let v: serde_json::Value = serde_json::from_str(&line).expect("dead letters are JSON");
        *out.entry(v["reason"].as_str().expect("reason").to_owned())
            .or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_record_becomes_an_event_or_a_dead_letter_and_offsets_reach_the_end() {
    let (topic, partitions, group) = ("audit", 3, "spine");
    let kafka = MockKafka::start(topic, partitions);
    let records = support::records(11, 3000, 3.0);
    let (valid, bad) = support::valid_ids(&records);
    assert!(bad > 0, "the corpus has malformed records");
    kafka.produce(topic, partitions, &records).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let (config, events, dead) = pipeline_config(kafka.bootstrap(), topic, group, dir.path(), "");
    // Beside the file output, a sink with a step on the transform threads.
    let checked = PreparedSink::default();
    let (batches, prepared) = (Arc::clone(&checked.batches), Arc::clone(&checked.prepared));
    let (stepped, threads) = (Arc::clone(&checked.events), Arc::clone(&checked.threads));
    let interned = Arc::clone(&checked.interned);
    let running = start(&config, vec![Box::new(move |t| t.with_sink(checked))]);
    wait_for("every event and dead letter", TIMEOUT, || {
        event_ids(&events).len() >= valid.len() && read_lines(&dead).len() >= bad
    })
    .await;
    // Stopping drains every sink of what the fan-out handed it.
    running.stop().await;

    let batches = batches.load(Ordering::SeqCst);
    assert!(batches > 1, "several batches reached the stepped sink");
    assert_eq!(
        prepared.load(Ordering::SeqCst),
        batches,
        "every batch came with its step's result, for its own events"
    );
    assert_eq!(stepped.load(Ordering::SeqCst), valid.len());
    assert_eq!(
        interned.load(Ordering::SeqCst),
        valid.len(),
        "every event names its topic with the source's interned copy"
    );
    let threads = threads.lock().expect("lock");
    assert!(
        threads.iter().all(|t| t.starts_with("keytrail-transform-")),
        "the step ran on the transform threads: {threads:?}"
    );

    let ids = event_ids(&events);
    let unique: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique, valid, "every valid record arrived, by id");
    assert_eq!(ids.len(), unique.len(), "no duplicates without failures");
    let reasons = dead_reasons(&dead);
    assert_eq!(
        reasons.values().sum::<usize>(),
        bad,
        "every bad record dead-lettered: {reasons:?}"
    );
    assert!(reasons.keys().all(|r| !r.is_empty()));
    assert_committed_to_end(&kafka, group, topic, partitions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_sink_recovers_and_offsets_never_pass_an_unacknowledged_event() {
    let (topic, partitions, group) = ("audit", 2, "flaky");
    let kafka = Arc::new(MockKafka::start(topic, partitions));
    let records = support::records(12, 4000, 0.0);
    let (valid, _) = support::valid_ids(&records);
    kafka.produce(topic, partitions, &records).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let (config, _events, _dead) = pipeline_config(kafka.bootstrap(), topic, group, dir.path(), "");
    let seen = Arc::new(Seen::default());
    let sink_seen = Arc::clone(&seen);
    let running = start(
        &config,
        vec![Box::new(move |t| {
            t.with_sink(FlakySink {
                seen: sink_seen,
                fail: 2..5,
            })
        })],
    );

    // While it runs, every committed offset must be covered: each record
    // below it was delivered to the sink.
    let violations = Arc::new(Mutex::new(Vec::new()));
    let checker = {
        let (kafka, seen, violations) = (
            Arc::clone(&kafka),
            Arc::clone(&seen),
            Arc::clone(&violations),
        );
        let valid = valid.len();
        tokio::spawn(async move {
            while seen.unique() < valid {
                let committed =
                    tokio::task::block_in_place(|| kafka.committed(group, topic, partitions));
                let delivered = seen.offsets();
                for (p, c) in committed {
                    let have = delivered.get(&p).cloned().unwrap_or_default();
                    if let Some(missing) = (0..c).find(|o| !have.contains(o)) {
                        violations.lock().expect("lock").push((p, c, missing));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    wait_for("every event after the sink recovered", TIMEOUT, || {
        seen.unique() >= valid.len()
    })
    .await;
    checker.await.expect("checker ran");
    let replays = running.stats.replays.load(Ordering::SeqCst);
    running.stop().await;

    assert!(
        violations.lock().expect("lock").is_empty(),
        "committed past undelivered offsets: {:?}",
        violations.lock().expect("lock")
    );
    assert_eq!(seen.ids().into_iter().collect::<HashSet<_>>(), valid);
    assert!(replays >= 1, "the failed batches were replayed");
    let duplicates = seen.ids().len() - seen.unique();
    eprintln!(
        "flaky sink: {} events, {duplicates} duplicates after 3 failed batches",
        seen.unique()
    );
    assert_committed_to_end(&kafka, group, topic, partitions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backpressure_pauses_the_consumer_without_a_rebalance() {
    stalled_sink("stalled-pause", 200, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn brief_backpressure_stops_taking_records_without_pausing() {
    // With a minute before pausing, the source must bound what it takes by
    // not polling for records; librdkafka keeps its prefetch bounded.
    stalled_sink("stalled-no-pause", 60_000, false).await;
}

/// 20 000 records wait in Kafka and the only sink stalls: the source takes
/// a bounded number of records, pauses (or not) as `pause_after_ms` says,
/// keeps its group membership, and delivers everything once released.
async fn stalled_sink(group: &str, pause_after_ms: u64, expect_paused: bool) {
    // Six partitions keep each under the mock broker's 5 MiB retention.
    let (topic, partitions) = ("audit", 6);
    let kafka = MockKafka::start(topic, partitions);
    let records = support::records(13, 20_000, 0.0);
    kafka.produce(topic, partitions, &records).await;

    let dir = tempfile::tempdir().expect("temp dir");
    // Two batches in the transforms' hands, whatever the machine's cores.
    let (config, _events, _dead) = pipeline_config(
        kafka.bootstrap(),
        topic,
        group,
        dir.path(),
        "[pipeline]\ntransform_concurrency = 2\n",
    );
    let config = config.replace(
        "batch_linger_ms = 5\n",
        &format!("batch_linger_ms = 5\npause_after_ms = {pause_after_ms}\n"),
    );
    let seen = Arc::new(Seen::default());
    let (release, released) = watch::channel(false);
    let sink = StallSink {
        seen: Arc::clone(&seen),
        released,
    };
    let running = start(&config, vec![Box::new(move |t| t.with_sink(sink))]);
    let stats = Arc::clone(&running.stats);
    // Every channel full and the next batch pending: the source is stuck.
    let bound = 200 * (3 * 4 + 5) as u64;
    let stuck_at = 200 * (3 * 4 + 3) as u64;
    if expect_paused {
        wait_for("the source to pause", TIMEOUT, || {
            stats.paused.load(Ordering::SeqCst)
        })
        .await;
    } else {
        wait_for("the pipeline to fill", TIMEOUT, || {
            stats.records.load(Ordering::SeqCst) >= stuck_at
        })
        .await;
    }

    // Watch for longer than the session timeout (3 s): a consumer that
    // left the group would show a rebalance. This is an observation
    // window, not synchronization: nothing is expected to happen in it.
    let consumed_at_start = stats.records.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        stats.paused.load(Ordering::SeqCst),
        expect_paused,
        "paused while the sink stalls (pause_after_ms = {pause_after_ms})"
    );
    let consumed = stats.records.load(Ordering::SeqCst);
    // 200 records a batch; 3 channels of 4 batches, two batches in the
    // transforms' hands, one in the fan-out's and the sink's each, and one
    // pending in the source: everything else stays in Kafka.
    assert!(
        consumed <= bound,
        "consumed {consumed} records while stalled (bound {bound})"
    );
    assert!(consumed >= consumed_at_start);
    assert_eq!(
        stats.revocations.load(Ordering::SeqCst),
        0,
        "no rebalance while stalled"
    );
    assert_eq!(stats.assignments.load(Ordering::SeqCst), 1);
    if !expect_paused {
        assert_eq!(stats.pauses.load(Ordering::SeqCst), 0, "never paused");
    }

    release.send(true).expect("sink is listening");
    let all = records.len();
    wait_for("every event once released", TIMEOUT, || {
        seen.unique() >= all
    })
    .await;
    running.stop().await;
    assert_committed_to_end(&kafka, group, topic, partitions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_consumer_joining_the_group_loses_nothing() {
    let (topic, partitions, group) = ("audit", 4, "shared");
    let kafka = MockKafka::start(topic, partitions);
    let first = support::records(14, 4000, 0.0);
    kafka.produce(topic, partitions, &first).await;

    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (config_a, events_a, _) =
        pipeline_config(kafka.bootstrap(), topic, group, dir_a.path(), "");
    let (config_b, events_b, _) =
        pipeline_config(kafka.bootstrap(), topic, group, dir_b.path(), "");
    let a = start(&config_a, vec![]);
    wait_for("the first consumer to deliver", TIMEOUT, || {
        event_ids(&events_a).len() >= 1000
    })
    .await;
    let b = start(&config_b, vec![]);
    let b_stats = Arc::clone(&b.stats);
    wait_for("the second consumer to get partitions", TIMEOUT, || {
        b_stats.assignments.load(Ordering::SeqCst) >= 1
    })
    .await;
    let second = support::records(15, 4000, 0.0);
    kafka.produce(topic, partitions, &second).await;

    let expected: HashSet<String> = first
        .iter()
        .chain(&second)
        .filter_map(|r| record_id(r))
        .collect();
    let union = || {
        event_ids(&events_a)
            .into_iter()
            .chain(event_ids(&events_b))
            .collect::<HashSet<_>>()
    };
    wait_for("every event across both consumers", TIMEOUT, || {
        union().len() >= expected.len()
    })
    .await;
    a.stop().await;
    b.stop().await;

    assert_eq!(union(), expected);
    let total = event_ids(&events_a).len() + event_ids(&events_b).len();
    eprintln!(
        "rebalance: {} events, {} by the second consumer, {} duplicates",
        expected.len(),
        event_ids(&events_b).len(),
        total - expected.len()
    );
    assert!(
        !event_ids(&events_b).is_empty(),
        "the second consumer took partitions"
    );
    assert_committed_to_end(&kafka, group, topic, partitions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letters_go_to_a_kafka_topic_with_their_reasons() {
    let (topic, partitions, group) = ("audit", 1, "dlq");
    let kafka = MockKafka::start(topic, partitions);
    let records = support::records(16, 500, 10.0);
    let (valid, bad) = support::valid_ids(&records);
    kafka.produce(topic, partitions, &records).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let (config, events, _) = pipeline_config(kafka.bootstrap(), topic, group, dir.path(), "");
    let config = config.replace(
        &format!(
            "[dead_letter]\npath = \"{}\"",
            dir.path().join("dead.jsonl").display()
        ),
        "[dead_letter]\ntopic = \"audit-dead\"",
    );
    let running = start(&config, vec![]);
    wait_for("every valid event", TIMEOUT, || {
        event_ids(&events).len() >= valid.len()
    })
    .await;
    running.stop().await;
    assert_committed_to_end(&kafka, group, topic, partitions);

    let dead = tokio::task::spawn_blocking({
        let bootstrap = kafka.bootstrap().to_owned();
        move || read_dead_letter_topic(&bootstrap, "audit-dead", bad)
    })
    .await
    .expect("reader");
    assert_eq!(dead.len(), bad);
    for (payload, reason, offset) in &dead {
        assert!(!reason.is_empty() && *offset >= 0);
        let original = &records[usize::try_from(*offset).expect("offset")];
        assert_eq!(payload, original, "the original bytes are the value");
    }
}

fn read_dead_letter_topic(
    bootstrap: &str,
    topic: &str,
    want: usize,
) -> Vec<(Vec<u8>, String, i64)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "dlq-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("reader");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut out = Vec::new();
    while out.len() < want && std::time::Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("dead letter readable");
        let header = |name: &str| {
            message
                .headers()
                .and_then(|h| h.iter().find(|x| x.key == name).and_then(|x| x.value))
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let offset = header("keytrail.offset").parse().unwrap_or(-1);
        out.push((
            message.payload().unwrap_or_default().to_vec(),
            header("keytrail.reason"),
            offset,
        ));
    }
    out
}
