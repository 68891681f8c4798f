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
        let name = sink.name();
        self.sinks
            .push((name, Box::new(move |rx| tokio::spawn(sink_task(sink, rx)))));
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
        let kafka = config.kafka.as_ref().context("missing [kafka]")?;
        let dead_letter_config = config
            .dead_letter
            .as_ref()
            .context("missing [dead_letter]")?;

        let source = KafkaSource::with_stats(kafka, self.source_stats)?;
        let writer = DeadLetterWriter::open(dead_letter_config, kafka).await?;
        if let Some(file) = &config.file {
            let sink = FileSink::open(file).await?;
            self.sinks.push((
                "file",
                Box::new(move |rx| tokio::spawn(sink_task(sink, rx))),
            ));
        }

        let (dead_tx, dead_rx) = mpsc::channel::<DeadLetterBatch>(capacity);
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
        let source_task = tokio::spawn(source.run(raw_tx, shutdown));
        tracing::info!(topics = ?kafka.topics, group = %kafka.group_id, "pipeline running");

        source_task.await.context("source task panicked")?;
        let grace = Duration::from_millis(config.pipeline.shutdown_timeout_ms);
        for (name, task) in tasks {
            match tokio::time::timeout(grace, task).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(stage = name, %error, "stage task failed"),
                Err(_) => tracing::warn!(
                    stage = name,
                    "stage did not finish within the shutdown timeout"
                ),
            }
        }
        tracing::info!("pipeline stopped");
        Ok(())
    }
}

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

async fn sink_task<S: Sink>(mut sink: S, mut input: mpsc::Receiver<SinkInput>) {
    let name = sink.name();
    while let Some(SinkInput { events, ack }) = input.recv().await {
        if let Err(error) = sink.accept(events, ack).await {
            counter!("keytrail_stage_errors_total", "stage" => name).increment(1);
            tracing::error!(sink = name, error = %anyhow::Error::from(error), "sink failed a batch; it will be replayed");
        }
    }
    if let Err(error) = sink.flush().await {
        tracing::error!(sink = name, error = %anyhow::Error::from(error), "sink flush failed");
    }
}

fn fill<T>(channel: &'static str, sender: &mpsc::Sender<T>) {
    let max = sender.max_capacity().max(1);
    let used = max - sender.capacity();
    gauge!("keytrail_channel_fill_ratio", "channel" => channel).set(used as f64 / max as f64);
}
