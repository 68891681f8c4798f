//! The running pipeline: stages joined by bounded channels.
//!
//! ```text
//! KafkaSource ─raw─► transforms ─classified─► fan-out ─┬─► sink tasks (one per sink)
//!                    (normalize,                       └─► dead-letter task
//!                     enrich, classify)
//! ```
//!
//! The transforms work on up to `pipeline.transform_concurrency` batches at
//! once, each on a thread of their own (`keytrail-transform-N`, not tokio's
//! workers, which keep serving the source and the sinks), and hand them on
//! in the order they came. A sink's work that reads every event (the gRPC
//! feed's encoding, its [`Prepare`] step) is done there too, while the
//! events are in that core's cache. When the sinks are done with a batch,
//! its events go back to the thread that made them to be freed.
//!
//! Every channel holds at most `pipeline.channel_capacity_batches` batches;
//! a full channel makes the stage before it wait, and the source pauses its
//! partitions. The fan-out takes each classified batch apart: its dead
//! letters go to the dead-letter output with one share of the batch's
//! acknowledgement, its events to every sink with one share each. The
//! source commits a batch's offsets only when every share is resolved.
//!
//! Shutdown follows the data: the source stops on the signal, sends what it
//! holds and drops its sender; each stage drains until its input closes;
//! the sinks flush; the source waits (bounded) for the last
//! acknowledgements and commits.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use keytrail_core::{
    AckToken, Batch, DeadLetterBatch, Event, Events, Home, Prepare, Prepared, RawBatch,
    SharedEvents, Sink,
};
use keytrail_sink_file::FileSink;
use keytrail_sink_prometheus::{Exporter, Prometheus, Readiness};
use keytrail_source_kafka::{DeadLetterWriter, KafkaSource, SourceStats, dead_letter};
use metrics::{counter, gauge};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::transforms::Transforms;

/// One sink's share of a batch.
pub struct SinkInput {
    /// The events, shared with the other sinks.
    pub events: SharedEvents,
    /// This sink's acknowledgement share.
    pub ack: AckToken,
}

type SinkSpawner = Box<dyn FnOnce(mpsc::Receiver<SinkInput>) -> JoinHandle<()> + Send>;

/// A sink not yet started, and its work on the transform threads.
struct SinkEntry {
    name: &'static str,
    spawn: SinkSpawner,
    prepare: Option<Arc<dyn Prepare>>,
}

/// The sinks' [`Prepare`] steps, set once the sinks are built.
type Steps = Arc<OnceLock<Vec<Arc<dyn Prepare>>>>;

/// What a transform thread does with a batch: the transforms, then the
/// sinks' steps (none until they are set). A step that panics costs the
/// batch its steps' results, not its events: the sinks then work from the
/// events alone, as they do without steps.
fn thread_work(
    transforms: Transforms,
    steps: Steps,
) -> impl Fn(RawBatch) -> Transformed + Send + Sync + 'static {
    move |raw| {
        let batch = transforms.batch(raw);
        let steps = steps.get().map_or(&[][..], Vec::as_slice);
        let run = std::panic::AssertUnwindSafe(|| Prepared::run(steps, &batch.events));
        let prepared = std::panic::catch_unwind(run).unwrap_or_else(|panic| {
            tracing::error!(
                steps = ?steps,
                panic = panic_message(&*panic),
                "a sink's step panicked; the sinks work from the batch's events alone"
            );
            Prepared::default()
        });
        Transformed { batch, prepared }
    }
}

/// A transformed batch and what the sinks' [`Prepare`] steps made of its
/// events.
struct Transformed {
    batch: Batch,
    prepared: Prepared,
}

impl From<Batch> for Transformed {
    fn from(batch: Batch) -> Transformed {
        Transformed {
            batch,
            prepared: Prepared::default(),
        }
    }
}

/// A pipeline about to run. Sinks come from the configuration and from
/// [`Topology::with_sink`] (embedders and tests).
pub struct Topology {
    config: Config,
    sinks: Vec<SinkEntry>,
    source_stats: Arc<SourceStats>,
}

impl Topology {
    /// A topology for a configuration that passed
    /// [`Config::validate_for_run`].
    pub fn new(config: Config) -> Topology {
        Topology {
            config,
            sinks: Vec::new(),
            source_stats: Arc::default(),
        }
    }

    /// The source's counters (records consumed, pauses, rebalances,
    /// commits), readable while the pipeline runs.
    pub fn source_stats(&self) -> Arc<SourceStats> {
        Arc::clone(&self.source_stats)
    }

    /// Adds a sink that is not in the configuration.
    pub fn with_sink<S: Sink + 'static>(mut self, sink: S) -> Topology {
        self.sinks.push(entry(sink, DEFAULT_SINK_GRACE));
        self
    }

    /// Runs until `shutdown` resolves, then drains (see the module docs).
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.config.validate_for_run()?;
        let config = self.config;
        let transforms = Transforms::build(&config)?;
        let concurrency = config.pipeline.transform_concurrency();
        // The sinks' steps are known once every sink is built, below, and
        // before the first batch can reach a thread.
        let steps = Steps::default();
        let work = thread_work(transforms, Arc::clone(&steps));
        let transform_threads = TransformThreads::start(concurrency, Arc::new(work), drop)
            .context("starting the transform threads")?;
        let capacity = config.pipeline.channel_capacity_batches;
        let grace = Duration::from_millis(config.pipeline.shutdown_timeout_ms);
        let kafka = config.kafka.as_ref().context("missing [kafka]")?;
        let dead_letter_config = config
            .dead_letter
            .as_ref()
            .context("missing [dead_letter]")?;

        // The recorder first: metric handles taken before it record nowhere.
        let readiness = Readiness::new();
        let metrics_server = match &config.prometheus {
            Some(prometheus) => {
                let prometheus = prometheus.build()?;
                let server = exporter(&prometheus)?.serve(readiness.clone()).await?;
                tracing::info!(listen = %server.local_addr(), "serving /metrics, /health and /ready");
                self.sinks.push(entry(prometheus.sink(), grace));
                Some(server)
            }
            None => None,
        };

        let source = KafkaSource::with_stats(kafka, self.source_stats)?;
        let writer = DeadLetterWriter::open(dead_letter_config, kafka).await?;
        let (dead_tx, dead_rx) = mpsc::channel::<DeadLetterBatch>(capacity);
        if let Some(file) = &config.file {
            let sink = FileSink::open(file).await?;
            self.sinks.push(entry(sink, grace));
        }
        if let Some(grpc) = &config.grpc {
            keytrail_sink_grpc::describe_metrics();
            let sink = grpc.build()?.start(dead_tx.clone());
            let wait = Duration::from_millis(grpc.connect_timeout_ms);
            if let Err(error) = sink.wait_ready(wait).await {
                tracing::warn!(%error, endpoint = %grpc.endpoint, "SIEM receiver not ready yet; events wait until it is");
            }
            self.sinks.push(entry(sink, grace));
        }

        let mut tasks: Vec<(&'static str, JoinHandle<()>)> = vec![(
            "dead_letter",
            tokio::spawn(dead_letter::run(writer, dead_rx)),
        )];
        let named = self.sinks.iter().filter_map(|s| s.prepare.clone());
        steps
            .set(named.collect())
            .expect("the sinks' steps are set once, here");
        let mut sink_txs = Vec::new();
        for SinkEntry { name, spawn, .. } in self.sinks {
            let (tx, rx) = mpsc::channel::<SinkInput>(capacity);
            sink_txs.push((name, tx));
            tasks.push((name, spawn(rx)));
        }

        let (raw_tx, raw_rx) = mpsc::channel::<RawBatch>(capacity);
        let (classified_tx, classified_rx) = mpsc::channel::<(Transformed, Home)>(capacity);
        tasks.push((
            "transforms",
            tokio::spawn(transform_task(transform_threads, raw_rx, classified_tx)),
        ));
        tasks.push((
            "fan_out",
            tokio::spawn(fan_out_task(classified_rx, dead_tx, sink_txs)),
        ));
        let stopping = readiness.clone();
        let source_task = tokio::spawn(source.run(raw_tx, async move {
            shutdown.await;
            stopping.set_ready(false);
        }));
        readiness.set_ready(true);
        tracing::info!(topics = ?kafka.topics, group = %kafka.group_id, transform_concurrency = concurrency, "pipeline running");

        source_task.await.context("source task panicked")?;
        for (name, task) in tasks {
            match tokio::time::timeout(grace, task).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(stage = name, %error, "stage task failed"),
                Err(_) => {
                    tracing::warn!(
                        stage = name,
                        "stage did not finish within the shutdown timeout"
                    )
                }
            }
        }
        if let Some(server) = metrics_server {
            server.shutdown().await;
        }
        tracing::info!("pipeline stopped");
        Ok(())
    }
}

/// The process-wide Prometheus recorder: installed by the first pipeline
/// of the process, shared by later ones (tests and embedders run several).
fn exporter(prometheus: &Prometheus) -> anyhow::Result<Exporter> {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(prometheus.exporter(handle.clone()));
    }
    let exporter = prometheus.install()?;
    let _ = HANDLE.set(exporter.handle().clone());
    Ok(exporter)
}

fn entry<S: Sink + 'static>(sink: S, grace: Duration) -> SinkEntry {
    SinkEntry {
        name: sink.name(),
        prepare: sink.prepare(),
        spawn: Box::new(move |rx| tokio::spawn(sink_task(sink, rx, grace))),
    }
}

/// How long an added sink may take to flush at shutdown.
const DEFAULT_SINK_GRACE: Duration = Duration::from_secs(30);

/// Takes raw batches in order and transforms them (normalize, enrich,
/// classify: [`Transforms::batch`]) on the stage's threads, up to one batch
/// each; hands them on in the order they came, each with the [`Home`] of
/// the thread that made its events.
///
/// A batch holds its permit until it is handed on, so finished batches
/// waiting behind a slower one count against the thread count too: the
/// stage never holds more batches than it has threads.
///
/// The events come back to their thread to be freed once the sinks are
/// done with them: memory freed on another thread costs the allocator a
/// hand-over and the thread that made it a collection later (about a
/// tenth of `keytrail run`'s CPU, measured in BENCHMARKS.md).
async fn transform_task(
    threads: TransformThreads,
    mut input: mpsc::Receiver<RawBatch>,
    output: mpsc::Sender<(Transformed, Home)>,
) {
    let TransformThreads {
        threads,
        idle: mut idle_threads,
    } = threads;
    let permits = Arc::new(Semaphore::new(threads.len()));
    let (started_tx, mut started) = mpsc::channel::<Started>(threads.len());
    let dispatch = async move {
        // The permit first, then a free thread: a batch waiting for either
        // stays in the channel, where backpressure sees it.
        while let Ok(permit) = Arc::clone(&permits).acquire_owned().await {
            let Some(index) = idle_threads.recv().await else {
                break;
            };
            let Some(raw) = input.recv().await else {
                break;
            };
            counter!("keytrail_stage_events_in_total", "stage" => "normalize")
                .increment(raw.records.len() as u64);
            counter!("keytrail_stage_batches_total", "stage" => "normalize").increment(1);
            let Some(thread) = threads.get(index) else {
                break;
            };
            let (reply, done) = tokio::sync::oneshot::channel();
            if thread.work.send(Work::Batch(raw, reply)).is_err() {
                // The thread has ended, which only a panic outside a
                // transform can do. The batch is dropped here, unresolved:
                // the source replays it. The thread is not asked again.
                counter!("keytrail_stage_errors_total", "stage" => "normalize").increment(1);
                tracing::error!(
                    thread = index,
                    "a transform thread is gone; its batch will be replayed"
                );
                continue;
            }
            let started = Started {
                done,
                home: thread.home.clone(),
                permit,
            };
            if started_tx.send(started).await.is_err() {
                break;
            }
        }
    };
    let hand_on = async move {
        while let Some(Started { done, home, permit }) = started.recv().await {
            let Ok(batch) = done.await else {
                // The transform panicked (logged on its thread) and its
                // acknowledgement was dropped unresolved: the source
                // replays the batch.
                counter!("keytrail_stage_errors_total", "stage" => "normalize").increment(1);
                continue;
            };
            counter!("keytrail_stage_events_out_total", "stage" => "normalize")
                .increment(batch.batch.events.len() as u64);
            fill("classified", &output);
            if output.send((batch, home)).await.is_err() {
                break;
            }
            drop(permit);
        }
    };
    tokio::join!(dispatch, hand_on);
}

/// A batch on a transform thread.
struct Started {
    done: tokio::sync::oneshot::Receiver<Transformed>,
    home: Home,
    permit: OwnedSemaphorePermit,
}

/// What a transform thread is given.
enum Work {
    /// A batch to transform; the result goes back on the sender.
    Batch(RawBatch, tokio::sync::oneshot::Sender<Transformed>),
    /// Events this thread made, back from the sinks to be freed.
    Free(Vec<Event>),
}

/// The transform stage's threads, `keytrail-transform-N`, started with
/// the pipeline. Each takes one batch at a time and frees the events it
/// made when they come back.
///
/// The channels here are unbounded, and bounded by what feeds them:
/// - a thread's inbox holds at most one batch (the dispatcher gives a
///   thread a batch only when it has said it is idle) and the events the
///   sinks have let go of. A sink must never wait to let go of events, so
///   that part cannot be a bounded channel. A thread frees them between
///   batches, so they wait at most one batch.
/// - the idle queue holds at most one entry per thread.
///
/// A thread ends when every sender of its inbox is gone: the dispatcher's,
/// and the homes of the events it made. It can outlive the pipeline while
/// a sink (a gRPC forwarding task still delivering) holds such events, so
/// the pipeline does not wait for it. Its batches are awaited in
/// [`transform_task`].
struct TransformThreads {
    threads: Vec<TransformThread>,
    idle: mpsc::UnboundedReceiver<usize>,
}

/// One transform thread, as the dispatcher sees it.
struct TransformThread {
    work: std::sync::mpsc::Sender<Work>,
    home: Home,
}

impl TransformThreads {
    /// Starts `count` threads running `transform`; `free` disposes of the
    /// events that come back (`drop`; tests observe it).
    fn start<F>(
        count: usize,
        transform: Arc<F>,
        free: fn(Vec<Event>),
    ) -> std::io::Result<TransformThreads>
    where
        F: Fn(RawBatch) -> Transformed + Send + Sync + 'static,
    {
        let (idle_tx, idle) = mpsc::unbounded_channel::<usize>();
        let mut threads = Vec::with_capacity(count);
        for index in 0..count {
            let (work, inbox) = std::sync::mpsc::channel::<Work>();
            let transform = Arc::clone(&transform);
            let idle = idle_tx.clone();
            std::thread::Builder::new()
                .name(format!("keytrail-transform-{index}"))
                .spawn(move || {
                    for work in inbox {
                        match work {
                            Work::Free(events) => free(events),
                            Work::Batch(raw, reply) => {
                                let run = std::panic::AssertUnwindSafe(|| transform(raw));
                                match std::panic::catch_unwind(run) {
                                    Ok(batch) => {
                                        let _ = reply.send(batch);
                                    }
                                    // The reply drops: the dispatcher counts
                                    // the failure and the batch is replayed.
                                    // The thread goes on.
                                    Err(panic) => tracing::error!(
                                        thread = index,
                                        panic = panic_message(&*panic),
                                        "a transform panicked; its batch will be replayed"
                                    ),
                                }
                                let _ = idle.send(index);
                            }
                        }
                    }
                })?;
            let back = work.clone();
            let home = Home::new(move |events| {
                // A thread that is gone frees nothing more; the events are
                // freed here instead.
                let _ = back.send(Work::Free(events));
            });
            threads.push(TransformThread { work, home });
            let _ = idle_tx.send(index);
        }
        Ok(TransformThreads { threads, idle })
    }
}

/// The message a panic was raised with, if it has one.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    match panic.downcast_ref::<&'static str>() {
        Some(message) => message,
        None => panic
            .downcast_ref::<String>()
            .map_or("(not a string)", String::as_str),
    }
}

async fn fan_out_task(
    mut input: mpsc::Receiver<(Transformed, Home)>,
    dead_letters: mpsc::Sender<DeadLetterBatch>,
    sinks: Vec<(&'static str, mpsc::Sender<SinkInput>)>,
) {
    while let Some((
        Transformed {
            batch:
                Batch {
                    events,
                    dead_letters: letters,
                    ack,
                },
            prepared,
        },
        home,
    )) = input.recv().await
    {
        if !letters.is_empty() {
            let batch = DeadLetterBatch {
                letters,
                ack: ack.clone(),
            };
            if dead_letters.send(batch).await.is_err() {
                tracing::error!("dead-letter output stopped; its batches will be replayed");
            }
        }
        if !events.is_empty() {
            let events: SharedEvents =
                Arc::new(Events::with_home(events, home).with_prepared(prepared));
            for (name, sink) in &sinks {
                fill(name, sink);
                let input = SinkInput {
                    events: Arc::clone(&events),
                    ack: ack.clone(),
                };
                if sink.send(input).await.is_err() {
                    tracing::error!(sink = name, "sink stopped; its batches will be replayed");
                }
            }
        }
        // The fan-out's own share: every other share is now out.
        ack.ack();
    }
}

async fn sink_task<S: Sink>(mut sink: S, mut input: mpsc::Receiver<SinkInput>, grace: Duration) {
    let name = sink.name();
    while let Some(SinkInput { events, ack }) = input.recv().await {
        if let Err(error) = sink.accept(events, ack).await {
            counter!("keytrail_stage_errors_total", "stage" => name).increment(1);
            tracing::error!(sink = name, error = %anyhow::Error::from(error), "sink failed a batch; it will be replayed");
        }
    }
    match tokio::time::timeout(grace, sink.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::error!(sink = name, error = %anyhow::Error::from(error), "sink flush failed")
        }
        Err(_) => tracing::warn!(
            sink = name,
            "sink did not deliver everything within the shutdown timeout; the rest is replayed after restart"
        ),
    }
}

fn fill<T>(channel: &'static str, sender: &mpsc::Sender<T>) {
    let max = sender.max_capacity().max(1);
    let used = max - sender.capacity();
    gauge!("keytrail_channel_fill_ratio", "channel" => channel).set(used as f64 / max as f64);
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, mpsc as std_mpsc};

    use keytrail_core::{BatchStatus, Origin, RawRecord, RecordMeta};

    use super::*;
    use crate::generate::mixed_records;

    /// Batches of the given sizes; record offsets count up from 0 across
    /// them, and record `o` is line `o` (wrapping).
    fn raw_batches(lines: &[Vec<u8>], sizes: &[usize]) -> Vec<RawBatch> {
        let mut next = 0;
        let mut batches = Vec::new();
        for &size in sizes {
            let records = (next..next + size)
                .map(|o| RawRecord {
                    payload: lines[o % lines.len()].clone().into(),
                    meta: RecordMeta {
                        origin: Some(Origin {
                            topic: keytrail_core::Topic::from("audit"),
                            partition: 0,
                            offset: i64::try_from(o).expect("small"),
                        }),
                        ..RecordMeta::default()
                    },
                })
                .collect();
            next += size;
            batches.push(RawBatch {
                records,
                ack: AckToken::new(|_| {}),
            });
        }
        batches
    }

    /// What a batch became, comparable: each event's id and offset, then
    /// each dead letter's offset and reason.
    fn summary(batch: &Batch) -> Vec<String> {
        let offset = |origin: &Option<Origin>| origin.as_ref().map_or(-1, |o| o.offset);
        let events = batch.events.iter().map(|e| {
            let id = e.event_id.as_deref().unwrap_or("-");
            format!("event {id} at {}", offset(&e.origin))
        });
        let dead = (batch.dead_letters.iter())
            .map(|d| format!("dead letter at {}: {:?}", offset(&d.origin), d.reason));
        events.chain(dead).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_leave_in_arrival_order_and_at_most_concurrency_run_at_once() {
        let lines = mixed_records(11, 300, 5.0);
        let transforms = Transforms::build(&Config::default()).expect("default transforms");
        let sizes = [300, 1, 7, 120, 1, 1, 60, 2, 250, 3, 40, 9];
        let expected: Vec<_> = raw_batches(&lines, &sizes)
            .into_iter()
            .map(|raw| summary(&transforms.batch(raw)))
            .collect();
        assert!(
            expected
                .iter()
                .flatten()
                .any(|l| l.starts_with("dead letter")),
            "the lines include malformed ones"
        );

        for concurrency in [1, 3, 8] {
            let running = Arc::new(AtomicUsize::new(0));
            let most = Arc::new(AtomicUsize::new(0));
            let threads = Arc::new(Mutex::new(BTreeSet::new()));
            // The first batch (the largest) finishes only after the second
            // has: with more than one at a time it is overtaken, and must
            // still leave first. The second starts its wait only once the
            // first has started, so the two overlap however the threads
            // are scheduled.
            let (second_done, first_may_finish) = std_mpsc::channel::<()>();
            let first_may_finish = Mutex::new(first_may_finish);
            let (first_started, second_may_go) = std_mpsc::channel::<()>();
            let second_may_go = Mutex::new(second_may_go);
            let transform = {
                let (running, most) = (Arc::clone(&running), Arc::clone(&most));
                let threads = Arc::clone(&threads);
                let transforms = Transforms::build(&Config::default()).expect("default transforms");
                move |raw: RawBatch| {
                    let name = std::thread::current().name().map(str::to_owned);
                    threads.lock().expect("not poisoned").insert(name);
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let first = raw.records[0].meta.origin.as_ref().map(|o| o.offset);
                    let batch = transforms.batch(raw);
                    if concurrency > 1 {
                        match first {
                            Some(0) => {
                                first_started.send(()).expect("second batch waits");
                                first_may_finish
                                    .lock()
                                    .expect("not poisoned")
                                    .recv_timeout(Duration::from_secs(30))
                                    .expect("the second batch finished while the first ran");
                            }
                            Some(300) => {
                                second_may_go
                                    .lock()
                                    .expect("not poisoned")
                                    .recv_timeout(Duration::from_secs(30))
                                    .expect("the first batch started");
                                second_done.send(()).expect("first batch waits");
                            }
                            _ => {}
                        }
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                    Transformed::from(batch)
                }
            };
            let (raw_tx, raw_rx) = mpsc::channel(2);
            let (out_tx, mut out_rx) = mpsc::channel(2);
            let stage_threads = TransformThreads::start(concurrency, Arc::new(transform), drop)
                .expect("threads start");
            let task = tokio::spawn(transform_task(stage_threads, raw_rx, out_tx));
            let batches = raw_batches(&lines, &sizes);
            let feed = tokio::spawn(async move {
                for raw in batches {
                    raw_tx.send(raw).await.expect("stage takes batches");
                }
            });
            let mut got = Vec::new();
            while let Some((Transformed { batch, .. }, _home)) = out_rx.recv().await {
                got.push(summary(&batch));
            }
            feed.await.expect("fed");
            task.await.expect("stage ends when its input closes");
            assert_eq!(
                got, expected,
                "concurrency {concurrency}: same batches, same order"
            );
            let most = most.load(Ordering::SeqCst);
            assert!(
                most <= concurrency,
                "concurrency {concurrency}: {most} batches ran at once"
            );
            let threads = threads.lock().expect("not poisoned").clone();
            assert!(
                threads.len() <= concurrency
                    && threads.iter().all(|name| name
                        .as_deref()
                        .is_some_and(|n| n.starts_with("keytrail-transform-"))),
                "concurrency {concurrency}: transforms ran on {threads:?}"
            );
            if concurrency > 1 {
                assert!(
                    most >= 2,
                    "concurrency {concurrency}: batches ran one at a time"
                );
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_transform_fails_its_batch_and_the_thread_goes_on() {
        let lines = mixed_records(5, 20, 0.0);
        let transforms = Transforms::build(&Config::default()).expect("default transforms");
        let (status_tx, status_rx) = std_mpsc::channel();
        let batches: Vec<RawBatch> = raw_batches(&lines, &[3, 5, 2])
            .into_iter()
            .enumerate()
            .map(|(index, raw)| {
                let status_tx = status_tx.clone();
                RawBatch {
                    records: raw.records,
                    ack: AckToken::new(move |status| {
                        let _ = status_tx.send((index, status));
                    }),
                }
            })
            .collect();
        let transform = move |raw: RawBatch| {
            assert!(raw.records.len() != 5, "a transform bug");
            Transformed::from(transforms.batch(raw))
        };
        let (raw_tx, raw_rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel(4);
        let threads = TransformThreads::start(1, Arc::new(transform), drop).expect("thread starts");
        let task = tokio::spawn(transform_task(threads, raw_rx, out_tx));
        for raw in batches {
            raw_tx.send(raw).await.expect("stage takes batches");
        }
        drop(raw_tx);
        let mut sizes = Vec::new();
        while let Some((Transformed { batch, .. }, _home)) = out_rx.recv().await {
            sizes.push(batch.events.len());
            batch.ack.ack();
        }
        task.await.expect("stage ends when its input closes");
        assert_eq!(
            sizes,
            [3, 2],
            "the batch after the panic was transformed too"
        );
        let mut statuses: Vec<_> = status_rx.try_iter().collect();
        statuses.sort_by_key(|(index, _)| *index);
        assert_eq!(
            statuses,
            [
                (0, BatchStatus::Delivered),
                (1, BatchStatus::Failed),
                (2, BatchStatus::Delivered)
            ],
            "the panicked batch is failed, to be replayed"
        );
    }

    /// Where the test's transform threads freed events: the thread's name
    /// and the offset of the first event of each batch.
    static FREED: Mutex<Vec<(Option<String>, i64)>> = Mutex::new(Vec::new());
    static FREED_MORE: std::sync::Condvar = std::sync::Condvar::new();

    fn record_free(events: Vec<Event>) {
        let first = events[0].origin.as_ref().map_or(-1, |o| o.offset);
        let name = std::thread::current().name().map(str::to_owned);
        FREED.lock().expect("not poisoned").push((name, first));
        FREED_MORE.notify_all();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_are_freed_on_the_thread_that_made_them() {
        let lines = mixed_records(3, 40, 0.0);
        let transforms = Transforms::build(&Config::default()).expect("default transforms");
        let made_by = Arc::new(Mutex::new(BTreeMap::new()));
        let transform = {
            let made_by = Arc::clone(&made_by);
            move |raw: RawBatch| {
                let first = raw.records[0].meta.origin.as_ref().map_or(-1, |o| o.offset);
                let name = std::thread::current().name().map(str::to_owned);
                made_by.lock().expect("not poisoned").insert(first, name);
                Transformed::from(transforms.batch(raw))
            }
        };
        let sizes = [9, 4, 12, 1, 7, 3, 5, 8];
        let threads =
            TransformThreads::start(3, Arc::new(transform), record_free).expect("threads start");
        let (raw_tx, raw_rx) = mpsc::channel(2);
        let (out_tx, mut out_rx) = mpsc::channel(2);
        let task = tokio::spawn(transform_task(threads, raw_rx, out_tx));
        let feed = tokio::spawn(async move {
            for raw in raw_batches(&lines, &sizes) {
                raw_tx.send(raw).await.expect("stage takes batches");
            }
        });
        while let Some((Transformed { batch, .. }, home)) = out_rx.recv().await {
            // What the fan-out does; the last holder lets go on this thread.
            let shared: SharedEvents = Arc::new(Events::with_home(batch.events, home));
            let held = Arc::clone(&shared);
            drop(shared);
            drop(held);
            batch.ack.ack();
        }
        feed.await.expect("fed");
        task.await.expect("stage ends when its input closes");

        let freed = FREED.lock().expect("not poisoned");
        let (freed, waited) = FREED_MORE
            .wait_timeout_while(freed, Duration::from_secs(30), |f| f.len() < sizes.len())
            .expect("not poisoned");
        assert!(
            !waited.timed_out(),
            "only {} batches came home",
            freed.len()
        );
        let made_by = made_by.lock().expect("not poisoned");
        for (thread, first) in freed.iter() {
            assert!(
                thread
                    .as_deref()
                    .is_some_and(|n| n.starts_with("keytrail-transform-")),
                "batch at {first} freed on {thread:?}"
            );
            assert_eq!(
                made_by.get(first),
                Some(thread),
                "batch at {first} freed where it was made"
            );
        }
    }

    /// Names the thread it ran on and counts the events it saw.
    #[derive(Debug)]
    struct WhereAndHowMany;

    impl Prepare for WhereAndHowMany {
        fn prepare(&self, events: &[Event]) -> Box<dyn std::any::Any + Send + Sync> {
            let name = std::thread::current().name().map(str::to_owned);
            Box::new((name, events.len()))
        }
    }

    /// Panics on every batch.
    #[derive(Debug)]
    struct Panics;

    impl Prepare for Panics {
        fn prepare(&self, _: &[Event]) -> Box<dyn std::any::Any + Send + Sync> {
            panic!("a step that fails");
        }
    }

    #[test]
    fn a_panicking_step_leaves_the_batch_its_events() {
        let lines = mixed_records(11, 20, 0.0);
        let steps = Steps::default();
        let step: Arc<dyn Prepare> = Arc::new(Panics);
        steps.set(vec![step]).expect("set once");
        let transforms = Transforms::build(&Config::default()).expect("default transforms");
        let work = thread_work(transforms, steps);
        let raw = raw_batches(&lines, &[20])
            .into_iter()
            .next()
            .expect("a batch");
        let Transformed { batch, prepared } = work(raw);
        assert!(!batch.events.is_empty(), "the events are kept");
        let events = Events::from(batch.events).with_prepared(prepared);
        assert_eq!(events.prepared::<Panics, ()>(), None);
        batch.ack.ack();
    }

    #[tokio::test]
    async fn the_sinks_steps_run_on_the_transform_threads_once_they_are_set() {
        let lines = mixed_records(7, 40, 0.0);
        let steps = Steps::default();
        let transforms = Transforms::build(&Config::default()).expect("default transforms");
        let work = thread_work(transforms, Arc::clone(&steps));
        let threads = TransformThreads::start(2, Arc::new(work), drop).expect("threads start");
        let (raw_tx, raw_rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel(4);
        let task = tokio::spawn(transform_task(threads, raw_rx, out_tx));
        let mut batches = raw_batches(&lines, &[10, 30]).into_iter();

        // Before the sinks are known: nothing is prepared.
        raw_tx
            .send(batches.next().expect("two batches"))
            .await
            .expect("stage takes batches");
        let (Transformed { batch, prepared }, home) = out_rx.recv().await.expect("a batch");
        let events = Events::with_home(batch.events, home).with_prepared(prepared);
        assert_eq!(
            events.prepared::<WhereAndHowMany, (Option<String>, usize)>(),
            None
        );
        batch.ack.ack();

        let step: Arc<dyn Prepare> = Arc::new(WhereAndHowMany);
        steps.set(vec![step]).expect("set once");
        raw_tx
            .send(batches.next().expect("two batches"))
            .await
            .expect("stage takes batches");
        drop(raw_tx);
        let (Transformed { batch, prepared }, home) = out_rx.recv().await.expect("a batch");
        let valid = batch.events.len();
        let events = Events::with_home(batch.events, home).with_prepared(prepared);
        let (thread, seen) = events
            .prepared::<WhereAndHowMany, (Option<String>, usize)>()
            .expect("the step ran");
        assert!(
            thread
                .as_deref()
                .is_some_and(|n| n.starts_with("keytrail-transform-")),
            "ran on {thread:?}"
        );
        assert_eq!(*seen, valid, "over the transformed events");
        assert!(valid > 0, "the corpus has valid events");
        batch.ack.ack();
        task.await.expect("stage ends when its input closes");
    }
}
