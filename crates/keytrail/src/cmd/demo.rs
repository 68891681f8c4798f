//! `keytrail demo`: the whole pipeline with no outside infrastructure.
//!
//! An in-process Kafka (librdkafka's mock cluster, a real Kafka-protocol
//! broker on loopback), the generator producing vendor events into it, the
//! real `run` topology consuming them, `/metrics` served, and the reference
//! SIEM receiver in process. With `--events N` it stops once all N are
//! acknowledged (delivered to the receiver or dead-lettered) and prints a
//! summary; without it, it generates at `--rate` until Ctrl-C.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::ProgressBar;
use keytrail_sink_grpc::receiver::{Receiver, ReceiverConfig};
use tokio::sync::oneshot;

use crate::config::Config;
use crate::generate;
use crate::topology::Topology;

/// Arguments of `keytrail demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Generate this many events, wait until every one is acknowledged,
    /// print a summary and stop. Without it, run until Ctrl-C.
    #[arg(long)]
    pub events: Option<u64>,
    /// Events per second when running until Ctrl-C.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Where `/metrics`, `/health` and `/ready` are served.
    #[arg(long, default_value = "127.0.0.1:9898")]
    pub metrics_listen: SocketAddr,
    /// Directory for the received events and the dead letters.
    #[arg(long, default_value = "keytrail-demo")]
    pub out_dir: PathBuf,
    /// Seed of the generator.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

const TOPIC: &str = "hsm-audit";
const PARTITIONS: i32 = 3;

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(demo(args))
}

async fn demo(args: &Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    let received = args.out_dir.join("received.jsonl");
    let dead = args.out_dir.join("dead-letters.jsonl");
    for file in [&received, &dead] {
        // A fresh demo starts from empty files.
        let _ = std::fs::remove_file(file);
    }

    let cluster =
        rdkafka::mocking::MockCluster::new(1).context("cannot start the in-process Kafka")?;
    cluster
        .create_topic(TOPIC, PARTITIONS, 1)
        .context("cannot create the demo topic")?;
    let bootstrap = cluster.bootstrap_servers();

    let receiver = Receiver::bind(ReceiverConfig::new(
        "127.0.0.1:0".parse()?,
        received.clone(),
    ))
    .await?;
    let receiver_addr = receiver.local_addr();
    let receiver_stats = receiver.stats();
    let (stop_receiver, receiver_stopped) = oneshot::channel::<()>();
    let receiver_task = tokio::spawn(receiver.serve(async {
        let _ = receiver_stopped.await;
    }));

    let config = demo_config(&bootstrap, receiver_addr, args.metrics_listen, &dead)?;
    let (stop_pipeline, pipeline_stopped) = oneshot::channel::<()>();
    let pipeline = tokio::spawn(Topology::new(config).run(async {
        let _ = pipeline_stopped.await;
    }));

    eprintln!("keytrail demo: Kafka (in process) at {bootstrap}, topic {TOPIC}");
    eprintln!(
        "  SIEM receiver (in process) at {receiver_addr}, events in {}",
        received.display()
    );
    eprintln!(
        "  metrics at http://{}/metrics (also /health, /ready)",
        args.metrics_listen
    );
    let started = Instant::now();
    let gen_args = generate::Args {
        events: args.events.unwrap_or(u64::MAX),
        seed: args.seed,
        ibm_percent: 70.0,
        malformed_percent: 1.0,
        rate: if args.events.is_some() {
            0.0
        } else {
            args.rate
        },
        kafka: Some(bootstrap.clone()),
        topic: TOPIC.to_owned(),
    };

    match args.events {
        Some(total) => {
            let produced = generate::produce(&gen_args, &bootstrap, &ProgressBar::hidden()).await?;
            let progress = generate::progress_bar(produced);
            let deadline = Instant::now() + Duration::from_secs(120 + produced / 1000);
            loop {
                let done = receiver_stats.stored_events() + count_lines(&dead);
                progress.set_position(done.min(produced));
                if done >= total {
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "only {done} of {total} events acknowledged before the deadline"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            progress.finish_and_clear();
        }
        None => {
            eprintln!("  generating {} events/s; Ctrl-C to stop", args.rate);
            let hidden = ProgressBar::hidden();
            tokio::select! {
                result = generate::produce(&gen_args, &bootstrap, &hidden) => { result?; }
                () = crate::cmd::run::shutdown_signal() => {}
            }
        }
    }
    let elapsed = started.elapsed();

    let _ = stop_pipeline.send(());
    pipeline.await.context("pipeline task")??;
    let _ = stop_receiver.send(());
    receiver_task.await.context("receiver task")??;
    print_summary(&received, &dead, elapsed, args.metrics_listen)?;
    Ok(())
}

fn demo_config(
    bootstrap: &str,
    receiver: SocketAddr,
    metrics: SocketAddr,
    dead: &Path,
) -> anyhow::Result<Config> {
    let text = format!(
        r#"
[kafka]
bootstrap_servers = "{bootstrap}"
topics = ["{TOPIC}"]
group_id = "keytrail-demo"
batch_linger_ms = 10
commit_interval_ms = 500

[dead_letter]
path = "{dead}"

[prometheus]
listen = "{metrics}"

[grpc]
endpoint = "http://{receiver}"
"#,
        dead = dead.display()
    );
    Ok(toml::from_str(&text)?)
}

fn count_lines(path: &Path) -> u64 {
    std::fs::read(path)
        .map(|b| b.iter().filter(|c| **c == b'\n').count() as u64)
        .unwrap_or(0)
}

fn print_summary(
    received: &Path,
    dead: &Path,
    elapsed: Duration,
    metrics: SocketAddr,
) -> anyhow::Result<()> {
    let mut by_source: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_severity: BTreeMap<String, u64> = BTreeMap::new();
    let mut actionable: BTreeMap<String, u64> = BTreeMap::new();
    let mut events = 0u64;
    for line in std::fs::read_to_string(received)
        .unwrap_or_default()
        .lines()
    {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        events += 1;
        let text = |key: &str| event[key].as_str().unwrap_or("?").to_owned();
        *by_source.entry(text("source")).or_default() += 1;
        *by_severity.entry(text("severity")).or_default() += 1;
        if event["actionable"] == true {
            *actionable.entry(text("action")).or_default() += 1;
        }
    }
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for line in std::fs::read_to_string(dead).unwrap_or_default().lines() {
        if let Ok(letter) = serde_json::from_str::<serde_json::Value>(line) {
            *reasons
                .entry(letter["reason"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
    }
    let join = |m: &BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let dead_total: u64 = reasons.values().sum();
    let mut top: Vec<(&String, &u64)> = actionable.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = top
        .iter()
        .take(5)
        .map(|(a, n)| format!("{a} ({n})"))
        .collect();
    println!("keytrail demo summary");
    println!(
        "  events delivered to the SIEM: {events} in {:.1} s ({:.0} events/s)",
        elapsed.as_secs_f64(),
        (events + dead_total) as f64 / elapsed.as_secs_f64().max(1e-3)
    );
    println!("  by source:   {}", join(&by_source));
    println!("  by severity: {}", join(&by_severity));
    println!(
        "  actionable:  {} (most frequent: {})",
        actionable.values().sum::<u64>(),
        top.join(", ")
    );
    println!("  dead letters: {dead_total} ({})", join(&reasons));
    println!("  files: {} and {}", received.display(), dead.display());
    println!("  metrics were served at http://{metrics}/metrics");
    Ok(())
}
