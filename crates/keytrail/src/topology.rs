//! The running pipeline: stages joined by bounded channels.
//!
//! ```text
//! KafkaSource ─raw─► transforms ─classified─► fan-out ─┬─► sink tasks (one per sink)
//!                    (normalize,                       └─► dead-letter task
//!                     enrich, classify)
//! ```
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
use tokio::sync::mpsc;
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
            tokio::spawn(transform_task(transforms, raw_rx, classified_tx)),
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
        tracing::info!(topics = ?kafka.topics, group = %kafka.group_id, "pipeline running");

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

async fn transform_task(
    transforms: Transforms,
    mut input: mpsc::Receiver<RawBatch>,
    output: mpsc::Sender<Batch>,
) {
    while let Some(raw) = input.recv().await {
        let records = raw.records.len() as u64;
        counter!("keytrail_stage_events_in_total", "stage" => "normalize").increment(records);
        counter!("keytrail_stage_batches_total", "stage" => "normalize").increment(1);
        let batch = transforms.batch(raw);
        counter!("keytrail_stage_events_out_total", "stage" => "normalize")
            .increment(batch.events.len() as u64);
        fill("classified", &output);
        if output.send(batch).await.is_err() {
            break;
        }
    }
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
