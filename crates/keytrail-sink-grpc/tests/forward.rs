//! The gRPC sink against real servers on 127.0.0.1: the reference receiver
//! (plaintext, TLS, mutual TLS, token, faults) and an OTLP logs server
//! built from `opentelemetry-proto`.
//!
//! No sleep synchronizes anything: tests wait on conditions (a file
//! reaching a line count, a flush completing, a channel message) with
//! timeouts.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keytrail_core::{
    AckToken, BatchStatus, DeadLetterBatch, DeadLetterReason, Event, Events, Origin, Prepare,
    Prepared, Severity, Sink as _, Source, Timestamp,
};
use keytrail_sink_grpc::receiver::{
    Receiver, ReceiverConfig, ReceiverError, ReceiverStats, ReceiverTlsConfig,
};
use keytrail_sink_grpc::{
    Compression, GrpcConfig, GrpcSink, GrpcSinkError, GrpcTlsConfig, Protocol, Secret,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

const PARTITIONS: usize = 3;

// ---------------------------------------------------------------- helpers

/// Event `i` of a run: a unique `event_id` and a Kafka origin spread over
/// [`PARTITIONS`] partitions, offsets increasing with `i`.
fn event(i: usize) -> Event {
    let mut event = Event::new(
        Timestamp::from_millis(1_774_375_218_000 + i as i64),
        Source::IbmHpcs,
        "hs-crypto.secrets.create".into(),
    );
    event.event_id = Some(format!("evt-{i:06}").into());
    event.severity = Severity::ALL[i % Severity::ALL.len()];
    event.actor.user = Some(format!("user-{}", i % 7).into());
    event.message = Some("create key".into());
    event.details.insert("n", &serde_json::json!(i));
    event.origin = Some(Origin {
        topic: keytrail_core::Topic::from("audit"),
        partition: (i % PARTITIONS) as i32,
        offset: (i / PARTITIONS) as i64,
    });
    event
}

fn event_id(event: &Event) -> String {
    event
        .event_id
        .as_deref()
        .expect("test events have ids")
        .to_owned()
}

/// Input batches of `size` events, numbered from 0.
fn inputs(count: usize, size: usize) -> Vec<Vec<Event>> {
    (0..count)
        .map(|b| (b * size..(b + 1) * size).map(event).collect())
        .collect()
}

/// How each input batch's acknowledgement ended, and whether its events
/// were already delivered at that moment.
#[derive(Clone, Default)]
struct Tracker(Arc<Mutex<Vec<(usize, BatchStatus, bool)>>>);

type Delivered = Arc<dyn Fn(&[String]) -> bool + Send + Sync>;

impl Tracker {
    /// A token for input `input`; when it resolves, `delivered` is asked
    /// whether the input's events really are at the receiver.
    fn token(&self, input: usize, events: &[Event], delivered: Delivered) -> AckToken {
        let seen = Arc::clone(&self.0);
        let ids: Vec<String> = events.iter().map(event_id).collect();
        AckToken::new(move |status| {
            let there = delivered(&ids);
            seen.lock().expect("lock").push((input, status, there));
        })
    }

    fn resolved(&self) -> Vec<(usize, BatchStatus, bool)> {
        let mut all = self.0.lock().expect("lock").clone();
        all.sort_by_key(|(input, _, _)| *input);
        all
    }

    /// Every input resolved once, delivered, and only after its events
    /// arrived.
    fn assert_all_delivered(&self, inputs: usize) {
        let resolved = self.resolved();
        assert_eq!(resolved.len(), inputs, "every share resolved exactly once");
        for (input, status, there) in resolved {
            assert_eq!(status, BatchStatus::Delivered, "input {input}");
            assert!(there, "input {input} acked before its events were stored");
        }
    }
}

/// True when every id is a line of the NDJSON file.
fn stored_in(path: PathBuf) -> Delivered {
    Arc::new(move |ids: &[String]| {
        let stored: HashSet<String> = read_lines(&path)
            .iter()
            .map(|line| line["event_id"].as_str().unwrap_or_default().to_owned())
            .collect();
        ids.iter().all(|id| stored.contains(id))
    })
}

/// The complete lines of an NDJSON file. The receiver may be appending the
/// next batch while a check reads: a last line without its newline is not
/// written yet, and is left out.
fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|line| serde_json::from_str(line).expect("each complete line is json"))
        .collect()
}

fn line_count(path: &Path) -> usize {
    std::fs::read(path)
        .map(|bytes| bytes.iter().filter(|b| **b == b'\n').count())
        .unwrap_or(0)
}

/// Unique event ids and duplicate lines of a receiver file; panics when
/// the first occurrences are out of order within a partition.
fn check_order(lines: &[serde_json::Value]) -> (HashSet<String>, usize) {
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    let mut last_offset: HashMap<i64, i64> = HashMap::new();
    for line in lines {
        let id = line["event_id"].as_str().expect("event_id").to_owned();
        if !seen.insert(id.clone()) {
            duplicates += 1;
            continue;
        }
        let partition = line["origin"]["partition"].as_i64().expect("partition");
        let offset = line["origin"]["offset"].as_i64().expect("offset");
        if let Some(previous) = last_offset.insert(partition, offset) {
            assert!(
                offset > previous,
                "partition {partition}: offset {offset} ({id}) stored after {previous}"
            );
        }
    }
    (seen, duplicates)
}

/// Polls `condition` until it holds, at most `limit`.
async fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A receiver serving on its own task.
struct Running {
    addr: SocketAddr,
    stats: Arc<ReceiverStats>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ReceiverError>>,
}

async fn run_receiver(config: ReceiverConfig) -> Running {
    let receiver = Receiver::bind(config).await.expect("receiver binds");
    let addr = receiver.local_addr();
    let stats = receiver.stats();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(receiver.serve(async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stats,
        stop,
        task,
    }
}

impl Running {
    async fn stop(self) -> Arc<ReceiverStats> {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("receiver stops in time")
            .expect("receiver task joins")
            .expect("receiver served without error");
        self.stats
    }
}

fn receiver_config(out: &Path) -> ReceiverConfig {
    ReceiverConfig::new("127.0.0.1:0".parse().expect("addr"), out.to_owned())
}

fn forwarder_config(endpoint: String) -> GrpcConfig {
    let mut config = GrpcConfig::new(endpoint);
    config.batch_max_events = 50;
    config.linger_ms = 5;
    config.max_in_flight_batches = 4;
    config.request_timeout_ms = 2_000;
    config.connect_timeout_ms = 1_000;
    config.retry_initial_backoff_ms = 10;
    config.retry_max_backoff_ms = 200;
    config
}

fn start(config: &GrpcConfig) -> (GrpcSink, mpsc::Receiver<DeadLetterBatch>) {
    let (dead_letters, dead_letter_rx) = mpsc::channel(16);
    let sink = config.build().expect("config builds").start(dead_letters);
    (sink, dead_letter_rx)
}

async fn send_all(
    sink: &mut GrpcSink,
    inputs: &[Vec<Event>],
    tracker: &Tracker,
    delivered: &Delivered,
) {
    // Even batches come prepared by the sink's own step, as the topology
    // hands them on; odd ones without, encoded by the forwarding task.
    let steps: Vec<Arc<dyn Prepare>> = sink.prepare().into_iter().collect();
    assert_eq!(steps.len(), 1, "both protocols prepare");
    for (n, events) in inputs.iter().enumerate() {
        let token = tracker.token(n, events, Arc::clone(delivered));
        let mut batch = Events::from(events.clone());
        if n % 2 == 0 {
            batch = batch.with_prepared(Prepared::run(&steps, events));
        }
        sink.accept(Arc::new(batch), token)
            .await
            .expect("sink takes the batch");
    }
}

async fn flush(sink: &mut GrpcSink, limit: Duration) {
    tokio::time::timeout(limit, sink.flush())
        .await
        .expect("flush completes in time")
        .expect("flush succeeds");
}

// ------------------------------------------------------------------ tests

/// Plain delivery, once per compression: every event arrives once, in
/// order, as exactly the JSON of the original event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_every_event_in_order_with_each_compression() {
    let started = Instant::now();
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("events.ndjson");
        let receiver = run_receiver(receiver_config(&out)).await;
        let mut config = forwarder_config(format!("http://{}", receiver.addr));
        config.compression = compression;
        let (mut sink, _dead_letters) = start(&config);
        sink.wait_ready(Duration::from_secs(5))
            .await
            .expect("receiver ready");

        let inputs = inputs(30, 70);
        let tracker = Tracker::default();
        send_all(&mut sink, &inputs, &tracker, &stored_in(out.clone())).await;
        flush(&mut sink, Duration::from_secs(20)).await;

        let lines = read_lines(&out);
        let (unique, duplicates) = check_order(&lines);
        assert_eq!(unique.len(), 2_100, "{compression:?}");
        assert_eq!(duplicates, 0, "no faults, no duplicates");
        let expected: HashMap<String, String> = inputs
            .iter()
            .flatten()
            .map(|e| (event_id(e), serde_json::to_string(e).expect("json")))
            .collect();
        for line in std::fs::read_to_string(&out).expect("reads").lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("json");
            let id = value["event_id"].as_str().expect("id");
            assert_eq!(line, expected[id], "the receiver writes the normalize JSON");
        }
        tracker.assert_all_delivered(30);
        sink.shutdown(Duration::from_secs(5))
            .await
            .expect("drained");
        let stats = receiver.stop().await;
        assert_eq!(stats.stored_events(), 2_100);
    }
    println!("three deliveries in {:?}", started.elapsed());
}

/// The receiver rejects every 5th batch, stalls past the deadline every
/// 11th, and is stopped and restarted three times mid-stream: nothing is
/// lost, order holds, every share is acked once and only after delivery,
/// and duplicates stay within the in-flight window per reconnection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_restarts_rejections_and_stalls() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("events.ndjson");
    let faults = |listen: SocketAddr| {
        let mut config = receiver_config(&out);
        config.listen = listen;
        config.reject_every = Some(5);
        config.pause_after = Some(11);
        config.pause_ms = 400;
        config
    };
    let mut receiver = run_receiver(faults("127.0.0.1:0".parse().expect("addr"))).await;
    let addr = receiver.addr;

    let mut config = forwarder_config(format!("http://{addr}"));
    config.batch_max_events = 20;
    config.max_in_flight_batches = 4;
    config.request_timeout_ms = 150;
    config.retry_max_backoff_ms = 100;
    let (mut sink, _dead_letters) = start(&config);

    let inputs = inputs(60, 25);
    let total = 60 * 25;
    let tracker = Tracker::default();
    let sender = {
        let tracker = tracker.clone();
        let delivered = stored_in(out.clone());
        tokio::spawn(async move {
            send_all(&mut sink, &inputs, &tracker, &delivered).await;
            flush(&mut sink, Duration::from_secs(40)).await;
            sink.shutdown(Duration::from_secs(5))
                .await
                .expect("drained");
        })
    };

    let (mut streams, mut retryable, mut restarts_mid_stream) = (0, 0, 0);
    for threshold in [total / 5, total / 2, total * 3 / 4] {
        eventually(Duration::from_secs(30), "events to arrive", || {
            line_count(&out) >= threshold
        })
        .await;
        if line_count(&out) < total {
            restarts_mid_stream += 1;
        }
        let stats = receiver.stop().await;
        streams += stats.streams();
        retryable += stats.retryable_rejections();
        receiver = run_receiver(faults(addr)).await;
    }
    tokio::time::timeout(Duration::from_secs(45), sender)
        .await
        .expect("sender finishes in time")
        .expect("sender succeeds");
    let stats = receiver.stop().await;
    streams += stats.streams();
    retryable += stats.retryable_rejections();
    assert_eq!(restarts_mid_stream, 3, "every restart hit a running stream");
    assert!(retryable > 0, "the receiver asked for retries");

    let (unique, duplicates) = check_order(&read_lines(&out));
    assert_eq!(unique.len(), total, "every event stored");
    tracker.assert_all_delivered(60);
    // A duplicate is a batch stored whose answer was lost: at most the
    // window (4 batches of 20) per stream that ended early.
    let bound = (streams as usize - 1) * 4 * 20;
    println!(
        "{total} events, {duplicates} duplicates (bound {bound}), {streams} streams, \
         {retryable} retryable rejections, {:?}",
        started.elapsed()
    );
    assert!(duplicates <= bound, "{duplicates} duplicates > {bound}");
}

/// A batch rejected for good goes to the dead-letter channel with the
/// receiver's reason; its share is resolved by the dead-letter output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_rejections_go_to_the_dead_letter_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("events.ndjson");
    let mut receiver_settings = receiver_config(&out);
    receiver_settings.reject_permanently_every = Some(3);
    let receiver = run_receiver(receiver_settings).await;
    let mut config = forwarder_config(format!("http://{}", receiver.addr));
    config.batch_max_events = 10;
    config.max_in_flight_batches = 2;
    let (mut sink, mut dead_letters) = start(&config);

    // The dead-letter output: records the letters, then acks.
    let written: Arc<Mutex<Vec<keytrail_core::DeadLetter>>> = Arc::default();
    let output = {
        let written = Arc::clone(&written);
        tokio::spawn(async move {
            while let Some(batch) = dead_letters.recv().await {
                written.lock().expect("lock").extend(batch.letters);
                batch.ack.ack();
            }
        })
    };
    // Delivered means: in the receiver's file or written as a dead letter.
    let delivered: Delivered = {
        let out = out.clone();
        let written = Arc::clone(&written);
        Arc::new(move |ids: &[String]| {
            let mut known: HashSet<String> = read_lines(&out)
                .iter()
                .map(|l| l["event_id"].as_str().unwrap_or_default().to_owned())
                .collect();
            for letter in written.lock().expect("lock").iter() {
                let event: serde_json::Value =
                    serde_json::from_slice(&letter.payload).expect("payload is json");
                known.insert(event["event_id"].as_str().unwrap_or_default().to_owned());
            }
            ids.iter().all(|id| known.contains(id))
        })
    };

    let inputs = inputs(12, 15);
    let tracker = Tracker::default();
    send_all(&mut sink, &inputs, &tracker, &delivered).await;
    flush(&mut sink, Duration::from_secs(20)).await;
    sink.shutdown(Duration::from_secs(5))
        .await
        .expect("drained");
    output.await.expect("dead-letter output ends");

    let letters = written.lock().expect("lock").clone();
    assert!(!letters.is_empty(), "some batches were rejected");
    let all: HashMap<String, &Event> = inputs.iter().flatten().map(|e| (event_id(e), e)).collect();
    let mut rejected = HashSet::new();
    for letter in &letters {
        assert_eq!(letter.reason, DeadLetterReason::Rejected);
        assert_eq!(
            letter.detail.as_deref(),
            Some("rejected for testing (reject_permanently_every)")
        );
        assert_eq!(letter.line, 1);
        let value: serde_json::Value = serde_json::from_slice(&letter.payload).expect("json");
        let id = value["event_id"].as_str().expect("id").to_owned();
        let original = all[&id];
        assert_eq!(letter.payload, serde_json::to_vec(original).expect("json"));
        assert_eq!(letter.origin, original.origin);
        rejected.insert(id);
    }
    let (stored, duplicates) = check_order(&read_lines(&out));
    assert_eq!(duplicates, 0);
    assert!(stored.is_disjoint(&rejected), "a rejected event was stored");
    assert_eq!(stored.len() + rejected.len(), all.len(), "nothing lost");
    tracker.assert_all_delivered(12);
    let stats = receiver.stop().await;
    println!(
        "{} events stored, {} dead-lettered in {} rejected batches",
        stored.len(),
        rejected.len(),
        stats.permanent_rejections()
    );
}

/// Certificates for one test: a CA, the receiver's certificate for
/// `receiver.test`, a client certificate from the same CA and one from a
/// CA the receiver does not trust.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
            IsCa, KeyPair, KeyUsagePurpose,
        };

        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: String| {
            std::fs::write(dir.path().join(name), text).expect("writes pem");
        };
        let authority = |name: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca")
        };
        let leaf = |issuer: &CertifiedIssuer<'_, KeyPair>, name: &str, client: bool| {
            let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![if client {
                ExtendedKeyUsagePurpose::ClientAuth
            } else {
                ExtendedKeyUsagePurpose::ServerAuth
            }];
            let key = KeyPair::generate().expect("key");
            let cert = params.signed_by(&key, issuer).expect("signs");
            (cert.pem(), key.serialize_pem())
        };

        let ca = authority("keytrail test ca");
        write("ca.pem", ca.pem());
        let (cert, key) = leaf(&ca, "receiver.test", false);
        write("server.pem", cert);
        write("server.key", key);
        let (cert, key) = leaf(&ca, "keytrail.test", true);
        write("client.pem", cert);
        write("client.key", key);
        let rogue = authority("rogue ca");
        let (cert, key) = leaf(&rogue, "keytrail.test", true);
        write("rogue.pem", cert);
        write("rogue.key", key);
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn receiver_tls(&self, mutual: bool) -> ReceiverTlsConfig {
        ReceiverTlsConfig {
            cert_file: self.path("server.pem"),
            key_file: self.path("server.key"),
            client_ca_file: mutual.then(|| self.path("ca.pem")),
        }
    }

    fn forwarder_tls(&self, client: Option<&str>) -> GrpcTlsConfig {
        GrpcTlsConfig {
            ca_file: Some(self.path("ca.pem")),
            cert_file: client.map(|c| self.path(&format!("{c}.pem"))),
            key_file: client.map(|c| self.path(&format!("{c}.key"))),
            domain_name: Some("receiver.test".into()),
        }
    }
}

async fn deliver_one_batch(sink: &mut GrpcSink, out: &Path) {
    let inputs = inputs(1, 10);
    let tracker = Tracker::default();
    send_all(sink, &inputs, &tracker, &stored_in(out.to_owned())).await;
    flush(sink, Duration::from_secs(10)).await;
    tracker.assert_all_delivered(1);
}

/// A sender that is not keytrail, on the generated client: an event
/// keytrail would never send refuses its batch for good, naming the event;
/// the stream goes on; a request holding neither a hello nor a batch ends
/// the stream with an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_keytrail_never_sends_are_refused_for_good_by_index() {
    use keytrail_proto::v1;
    use keytrail_proto::v1::forward_request::Kind;

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("events.ndjson");
    let receiver = run_receiver(receiver_config(&out)).await;
    let mut client = v1::forward_service_client::ForwardServiceClient::connect(format!(
        "http://{}",
        receiver.addr
    ))
    .await
    .expect("connects");
    let (requests, outgoing) = mpsc::channel(4);
    let mut answers = client
        .forward(tokio_stream::wrappers::ReceiverStream::new(outgoing))
        .await
        .expect("stream opens")
        .into_inner();
    let send = |kind: Option<Kind>| {
        let requests = requests.clone();
        async move {
            requests
                .send(v1::ForwardRequest { kind })
                .await
                .expect("stream open");
        }
    };
    send(Some(Kind::Hello(v1::Hello {
        sender_id: "not-keytrail".into(),
        first_sequence: 1,
        agent: "test".into(),
    })))
    .await;
    let good = v1::Event::from(&event(0));
    let mut unknown = v1::Event::from(&event(1));
    unknown.category = 99;
    send(Some(Kind::Batch(v1::EventBatch {
        sequence: 1,
        events: vec![good.clone(), unknown],
    })))
    .await;
    let answer = answers.message().await.expect("answered").expect("open");
    assert_eq!(
        (answer.sequence, answer.status()),
        (1, v1::AckStatus::RejectedPermanent)
    );
    assert_eq!(
        answer.reason,
        "event 1: field `category` has unspecified or unknown value 99"
    );

    send(Some(Kind::Batch(v1::EventBatch {
        sequence: 2,
        events: vec![good],
    })))
    .await;
    let answer = answers.message().await.expect("answered").expect("open");
    assert_eq!(
        (answer.sequence, answer.status()),
        (2, v1::AckStatus::Accepted)
    );
    assert_eq!(line_count(&out), 1, "stored before the answer");

    send(None).await;
    let status = answers.message().await.expect_err("the stream ends");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    let stats = receiver.stop().await;
    assert_eq!(stats.permanent_rejections(), 1);
    assert_eq!(stats.stored_events(), 1);
}

/// TLS, then mutual TLS; a client certificate from an unknown authority
/// is refused, and its events are never acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls() {
    let pki = Pki::new();
    for mutual in [false, true] {
        let out = pki.path(&format!("events-{mutual}.ndjson"));
        let mut settings = receiver_config(&out);
        settings.tls = Some(pki.receiver_tls(mutual));
        let receiver = run_receiver(settings).await;

        let mut config = forwarder_config(format!("https://127.0.0.1:{}", receiver.addr.port()));
        config.tls = Some(pki.forwarder_tls(mutual.then_some("client")));
        let (mut sink, _dead_letters) = start(&config);
        deliver_one_batch(&mut sink, &out).await;
        sink.shutdown(Duration::from_secs(5))
            .await
            .expect("drained");
        assert_eq!(line_count(&out), 10, "mutual: {mutual}");

        if mutual {
            let mut config = config.clone();
            config.tls = Some(pki.forwarder_tls(Some("rogue")));
            let (mut sink, _dead_letters) = start(&config);
            let err = sink
                .wait_ready(Duration::from_millis(1_500))
                .await
                .expect_err("a rogue client certificate is refused");
            println!("rogue client refused: {err}");
            let tracker = Tracker::default();
            let events = inputs(1, 5).remove(0);
            let token = tracker.token(0, &events, Arc::new(|_: &[String]| false));
            sink.accept(Arc::new(events.into()), token)
                .await
                .expect("taken");
            assert_eq!(
                sink.shutdown(Duration::from_millis(200)).await,
                Err(GrpcSinkError::Abandoned)
            );
            assert_eq!(tracker.resolved(), [(0, BatchStatus::Failed, false)]);
            assert_eq!(line_count(&out), 10, "nothing from the rogue client");
        }
        receiver.stop().await;
    }
}

/// A receiver requiring a token refuses a wrong one and accepts the right
/// one, given directly or through `token_env`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_is_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("events.ndjson");
    // Cargo sets CARGO_PKG_NAME for the test process: an environment
    // variable the test can name without setting one.
    let token = std::env::var("CARGO_PKG_NAME").unwrap_or_else(|_| "keytrail-token".into());
    let mut settings = receiver_config(&out);
    settings.token = Some(Secret::new(token.clone()));
    let receiver = run_receiver(settings).await;
    let endpoint = format!("http://{}", receiver.addr);

    let mut wrong = forwarder_config(endpoint.clone());
    wrong.token = Some(Secret::new("wrong-token"));
    let (sink, _dead_letters) = start(&wrong);
    let err = sink
        .wait_ready(Duration::from_millis(1_000))
        .await
        .expect_err("wrong token refused");
    assert!(err.to_string().contains("Unauthenticated"), "{err}");
    assert!(
        !err.to_string().contains("wrong-token"),
        "never shows the token"
    );
    drop(sink);

    let mut right = forwarder_config(endpoint);
    if std::env::var("CARGO_PKG_NAME").is_ok() {
        right.token_env = Some("CARGO_PKG_NAME".into());
    } else {
        right.token = Some(Secret::new(token));
    }
    let (mut sink, _dead_letters) = start(&right);
    deliver_one_batch(&mut sink, &out).await;
    sink.shutdown(Duration::from_secs(5))
        .await
        .expect("drained");
    receiver.stop().await;
}

/// A forwarder whose receiver never answers keeps its shares until it is
/// shut down; they then fail (replayed), never count as delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_receiver_fails_the_shares_at_shutdown() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = free.local_addr().expect("addr");
    drop(free);
    let (mut sink, _dead_letters) = start(&forwarder_config(format!("http://{addr}")));
    let err = sink
        .wait_ready(Duration::from_millis(500))
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, GrpcSinkError::NotReady { .. }), "{err}");
    let tracker = Tracker::default();
    let events = inputs(1, 3).remove(0);
    let token = tracker.token(0, &events, Arc::new(|_: &[String]| false));
    sink.accept(Arc::new(events.into()), token)
        .await
        .expect("taken");
    assert_eq!(
        sink.shutdown(Duration::from_millis(100)).await,
        Err(GrpcSinkError::Abandoned)
    );
    assert_eq!(tracker.resolved(), [(0, BatchStatus::Failed, false)]);
}

mod otlp {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
        LogsService, LogsServiceServer,
    };
    use opentelemetry_proto::tonic::collector::logs::v1::{
        ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
    };
    use opentelemetry_proto::tonic::common::v1::any_value;
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use tonic::codec::CompressionEncoding;
    use tonic::transport::Server;
    use tonic::transport::server::TcpIncoming;
    use tonic::{Request, Response, Status};

    use super::*;

    /// A test OTLP logs server: fails the first export with UNAVAILABLE,
    /// reports a partial success for batches holding a `poison` record,
    /// keeps the rest.
    #[derive(Clone, Default)]
    struct Collector {
        records: Arc<Mutex<Vec<LogRecord>>>,
        resources: Arc<Mutex<Vec<String>>>,
        calls: Arc<AtomicUsize>,
    }

    #[tonic::async_trait]
    impl LogsService for Collector {
        async fn export(
            &self,
            request: Request<ExportLogsServiceRequest>,
        ) -> Result<Response<ExportLogsServiceResponse>, Status> {
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(Status::unavailable("warming up"));
            }
            let request = request.into_inner();
            let mut records = Vec::new();
            for resource_logs in request.resource_logs {
                for kv in resource_logs
                    .resource
                    .map(|r| r.attributes)
                    .unwrap_or_default()
                {
                    if let Some(any_value::Value::StringValue(v)) = kv.value.and_then(|v| v.value) {
                        self.resources
                            .lock()
                            .expect("lock")
                            .push(format!("{}={v}", kv.key));
                    }
                }
                for scope_logs in resource_logs.scope_logs {
                    records.extend(scope_logs.log_records);
                }
            }
            if records.iter().any(|r| r.event_name == "poison") {
                return Ok(Response::new(ExportLogsServiceResponse {
                    partial_success: Some(ExportLogsPartialSuccess {
                        rejected_log_records: 1,
                        error_message: "poison record".into(),
                    }),
                }));
            }
            self.records.lock().expect("lock").extend(records);
            Ok(Response::new(ExportLogsServiceResponse::default()))
        }
    }

    fn string_attribute(record: &LogRecord, key: &str) -> Option<String> {
        record
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value)
            .and_then(|v| match v {
                any_value::Value::StringValue(s) => Some(s),
                _ => None,
            })
    }

    /// Events become log records at an OTLP server built from the same
    /// crate; a retry after UNAVAILABLE, a partial success dead-lettered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_are_exported_as_otlp_log_records() {
        let collector = Collector::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(
            Server::builder()
                .add_service(
                    LogsServiceServer::new(collector.clone())
                        .accept_compressed(CompressionEncoding::Gzip),
                )
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                    let _ = stopped.await;
                }),
        );

        let mut config = forwarder_config(format!("http://{addr}"));
        config.protocol = Protocol::Otlp;
        config.compression = Compression::Gzip;
        config.batch_max_events = 10;
        let (mut sink, mut dead_letters) = start(&config);
        let output = tokio::spawn(async move {
            let mut letters = Vec::new();
            while let Some(batch) = dead_letters.recv().await {
                letters.extend(batch.letters);
                batch.ack.ack();
            }
            letters
        });

        let mut inputs = inputs(5, 10);
        let mut poison = event(9_999);
        poison.action = "poison".into();
        inputs.push(vec![poison]);
        let tracker = Tracker::default();
        let exported: Delivered = Arc::new(|_: &[String]| true);
        send_all(&mut sink, &inputs, &tracker, &exported).await;
        flush(&mut sink, Duration::from_secs(20)).await;
        sink.shutdown(Duration::from_secs(5))
            .await
            .expect("drained");
        let letters = output.await.expect("output ends");
        let _ = stop.send(());
        server
            .await
            .expect("server joins")
            .expect("server ran without error");

        let records = collector.records.lock().expect("lock").clone();
        let ids: HashSet<String> = records
            .iter()
            .filter_map(|r| string_attribute(r, "event_id"))
            .collect();
        assert_eq!(records.len(), 50, "every regular event once");
        assert_eq!(ids.len(), 50);
        assert_eq!(letters.len(), 1, "the poisoned batch is dead-lettered");
        assert!(
            letters[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("poison record"))
        );
        assert!(
            collector.calls.load(Ordering::SeqCst) > 6,
            "one export retried"
        );
        tracker.assert_all_delivered(6);

        let first = records
            .iter()
            .find(|r| string_attribute(r, "event_id").as_deref() == Some("evt-000003"))
            .expect("event 3 exported");
        let original = event(3);
        assert_eq!(first.severity_number, 17, "event 3 is high: ERROR");
        assert_eq!(first.severity_text, "high");
        assert_eq!(
            first.time_unix_nano,
            original.time.as_millis() as u64 * 1_000_000
        );
        assert_eq!(
            first.body.clone().and_then(|b| b.value),
            Some(any_value::Value::StringValue("create key".into()))
        );
        assert_eq!(
            string_attribute(first, "actor.user").as_deref(),
            Some("user-3")
        );
        assert!(
            collector
                .resources
                .lock()
                .expect("lock")
                .contains(&"service.name=keytrail".to_owned())
        );
    }
}
