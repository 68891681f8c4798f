//! The running pipeline: stages joined by bounded channels.
//!
//! ```text
//! KafkaSource ─raw─► transforms ─classified─► fan-out ─┬─► sink tasks (one per sink)
//!                    (normalize,                       └─► dead-letter task
//!                     enrich, classify)
//! ```
//!
//! The transforms work on up to `pipeline.transform_concurrency` batches at
//! once, on tokio's blocking threads (not its workers, which keep serving
//! the source and the sinks), and hand them on in the order they came.
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
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use keytrail_core::{AckToken, Batch, DeadLetterBatch, RawBatch, SharedEvents, Sink};
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

/// A pipeline about to run. Sinks come from the configuration and from
/// [`Topology::with_sink`] (embedders and tests).
pub struct Topology {
    config: Config,
    sinks: Vec<(&'static str, SinkSpawner)>,
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
        self.sinks
            .push((sink.name(), spawner(sink, DEFAULT_SINK_GRACE)));
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
                self.sinks
                    .push(("prometheus", spawner(prometheus.sink(), grace)));
                Some(server)
            }
            None => None,
        };

        let source = KafkaSource::with_stats(kafka, self.source_stats)?;
        let writer = DeadLetterWriter::open(dead_letter_config, kafka).await?;
        let (dead_tx, dead_rx) = mpsc::channel::<DeadLetterBatch>(capacity);
        if let Some(file) = &config.file {
            let sink = FileSink::open(file).await?;
            self.sinks.push(("file", spawner(sink, grace)));
        }
        if let Some(grpc) = &config.grpc {
            keytrail_sink_grpc::describe_metrics();
            let sink = grpc.build()?.start(dead_tx.clone());
            let wait = Duration::from_millis(grpc.connect_timeout_ms);
            if let Err(error) = sink.wait_ready(wait).await {
                tracing::warn!(%error, endpoint = %grpc.endpoint, "SIEM receiver not ready yet; events wait until it is");
            }
            self.sinks.push(("grpc", spawner(sink, grace)));
        }

        let mut tasks: Vec<(&'static str, JoinHandle<()>)> = vec![(
            "dead_letter",
            tokio::spawn(dead_letter::run(writer, dead_rx)),
        )];
        let mut sink_txs = Vec::new();
        for (name, spawn) in self.sinks {
            let (tx, rx) = mpsc::channel::<SinkInput>(capacity);
            sink_txs.push((name, tx));
            tasks.push((name, spawn(rx)));
        }

        let (raw_tx, raw_rx) = mpsc::channel::<RawBatch>(capacity);
        let (classified_tx, classified_rx) = mpsc::channel::<Batch>(capacity);
        tasks.push((
            "transforms",
            tokio::spawn(transform_task(
                Arc::new(move |raw| transforms.batch(raw)),
                concurrency,
                raw_rx,
                classified_tx,
            )),
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

fn spawner<S: Sink + 'static>(sink: S, grace: Duration) -> SinkSpawner {
    Box::new(move |rx| tokio::spawn(sink_task(sink, rx, grace)))
}

/// How long an added sink may take to flush at shutdown.
const DEFAULT_SINK_GRACE: Duration = Duration::from_secs(30);

/// Takes raw batches in order and transforms (normalize, enrich, classify:
/// [`Transforms::batch`]) up to `concurrency` of them at once, each on a
/// blocking thread; hands them on in the order they came.
/// A batch holds its permit until it is handed on, so finished batches
/// waiting behind a slower one count against `concurrency` too: the stage
/// never holds more than `concurrency` batches.
async fn transform_task<F>(
    transform: Arc<F>,
    concurrency: usize,
    mut input: mpsc::Receiver<RawBatch>,
    output: mpsc::Sender<Batch>,
) where
    F: Fn(RawBatch) -> Batch + Send + Sync + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency));
    let (started_tx, mut started) =
        mpsc::channel::<JoinHandle<(Batch, OwnedSemaphorePermit)>>(concurrency);
    let dispatch = async move {
        // The permit first: a batch waiting for one stays in the channel,
        // where backpressure sees it.
        while let Ok(permit) = Arc::clone(&permits).acquire_owned().await {
            let Some(raw) = input.recv().await else {
                break;
            };
            counter!("keytrail_stage_events_in_total", "stage" => "normalize")
                .increment(raw.records.len() as u64);
            counter!("keytrail_stage_batches_total", "stage" => "normalize").increment(1);
            let transform = Arc::clone(&transform);
            let handle = tokio::task::spawn_blocking(move || (transform(raw), permit));
            if started_tx.send(handle).await.is_err() {
                break;
            }
        }
    };
    let hand_on = async move {
        while let Some(handle) = started.recv().await {
            let (batch, permit) = match handle.await {
                Ok(done) => done,
                Err(error) => {
                    // Its acknowledgement was dropped unresolved: the source
                    // replays the batch.
                    counter!("keytrail_stage_errors_total", "stage" => "normalize").increment(1);
                    tracing::error!(%error, "a transform failed; its batch will be replayed");
                    continue;
                }
            };
            counter!("keytrail_stage_events_out_total", "stage" => "normalize")
                .increment(batch.events.len() as u64);
            fill("classified", &output);
            if output.send(batch).await.is_err() {
                break;
            }
            drop(permit);
        }
    };
    tokio::join!(dispatch, hand_on);
}

async fn fan_out_task(
    mut input: mpsc::Receiver<Batch>,
    dead_letters: mpsc::Sender<DeadLetterBatch>,
    sinks: Vec<(&'static str, mpsc::Sender<SinkInput>)>,
) {
    while let Some(Batch {
        events,
        dead_letters: letters,
        ack,
    }) = input.recv().await
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
            let events: SharedEvents = Arc::new(events);
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, mpsc as std_mpsc};

    use keytrail_core::{Origin, RawRecord, RecordMeta};

    use super::*;
    use crate::generate::{Args, Generator};

    /// Batches of the given sizes; record offsets count up from 0 across
    /// them, and record `o` is line `o` (wrapping).
    fn raw_batches(lines: &[Vec<u8>], sizes: &[usize]) -> Vec<RawBatch> {
        let mut next = 0;
        let mut batches = Vec::new();
        for &size in sizes {
            let records = (next..next + size)
                .map(|o| RawRecord {
                    payload: lines[o % lines.len()].clone(),
                    meta: RecordMeta {
                        origin: Some(Origin {
                            topic: Arc::from("audit"),
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
        let lines = Generator::new(&Args {
            events: 0,
            seed: 11,
            ibm_percent: 70.0,
            malformed_percent: 5.0,
            rate: 0.0,
            kafka: None,
            topic: String::new(),
        })
        .records(300);
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
            // The first batch (the largest) finishes only after the second
            // has: with more than one at a time it is overtaken, and must
            // still leave first.
            let (second_done, first_may_finish) = std_mpsc::channel::<()>();
            let first_may_finish = Mutex::new(first_may_finish);
            let transform = {
                let (running, most) = (Arc::clone(&running), Arc::clone(&most));
                let transforms = Transforms::build(&Config::default()).expect("default transforms");
                move |raw: RawBatch| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let first = raw.records[0].meta.origin.as_ref().map(|o| o.offset);
                    let batch = transforms.batch(raw);
                    if concurrency > 1 {
                        match first {
                            Some(0) => first_may_finish
                                .lock()
                                .expect("not poisoned")
                                .recv_timeout(Duration::from_secs(30))
                                .expect("the second batch finished while the first ran"),
                            Some(300) => second_done.send(()).expect("first batch waits"),
                            _ => {}
                        }
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                    batch
                }
            };
            let (raw_tx, raw_rx) = mpsc::channel(2);
            let (out_tx, mut out_rx) = mpsc::channel(2);
            let task = tokio::spawn(transform_task(
                Arc::new(transform),
                concurrency,
                raw_rx,
                out_tx,
            ));
            let batches = raw_batches(&lines, &sizes);
            let feed = tokio::spawn(async move {
                for raw in batches {
                    raw_tx.send(raw).await.expect("stage takes batches");
                }
            });
            let mut got = Vec::new();
            while let Some(batch) = out_rx.recv().await {
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
            if concurrency > 1 {
                assert!(
                    most >= 2,
                    "concurrency {concurrency}: batches ran one at a time"
                );
            }
        }
    }
}
