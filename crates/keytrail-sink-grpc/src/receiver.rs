//! The reference receiver: the SIEM side of the keytrail feed, in one file.
//!
//! `keytrail receive` runs it. It is both a tool (a file sink for demos and
//! tests, a fault injector for resilience tests) and the example a SIEM
//! integrator reads: it implements every rule of the contract at the top of
//! `proto/keytrail/v1/forward.proto`, and nothing more.
//!
//! What it does with a stream:
//! 1. The first message must be a hello; the expected sequence is then
//!    `hello.first_sequence`. The hello registers the stream as the
//!    sender's current one (rule 7): an older stream of the same sender
//!    stops storing.
//! 2. For each batch, in order: a sequence other than the expected one is
//!    answered `REJECTED_RETRYABLE` "out of order" and not stored (rule 3).
//! 3. The events arrive as [`keytrail_core::Event`]s, decoded straight from
//!    the request by [`keytrail_proto::ForwardMessage`]; one that keytrail
//!    would never send (an unknown enum value, a `details` value that is
//!    not JSON) makes the batch `REJECTED_PERMANENT` with the reason
//!    (rule 6), and the expected sequence advances.
//! 4. The batch is appended to the output file as NDJSON, one event per
//!    line, exactly the JSON `keytrail normalize` prints; the file is
//!    written (handed to the system, not synced to disk), and only then is
//!    the batch answered `ACCEPTED` (rule 4).
//!    A write error answers `REJECTED_RETRYABLE`.
//!
//! It serves the gRPC health service (`keytrail.v1.ForwardService` is
//! SERVING), optionally requires a bearer token, and speaks TLS or mutual
//! TLS. A real SIEM replaces step 4 with its own store (and should commit
//! it durably before answering); everything else carries over.
//!
//! For fault testing, [`ReceiverConfig`] can reject every n-th batch for a
//! while (`reject_every`), for good (`reject_permanently_every`), or stall
//! before answering (`pause_after`, `pause_ms`); these count the batches
//! that arrive in order, over the receiver's lifetime.
//!
//! ```no_run
//! use keytrail_sink_grpc::receiver::{Receiver, ReceiverConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let receiver = Receiver::bind(ReceiverConfig::new(
//!     "127.0.0.1:0".parse()?,
//!     "events.ndjson".into(),
//! ))
//! .await?;
//! println!("listening on {}", receiver.local_addr());
//! receiver.serve(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keytrail_proto::incoming::forward_service_server::{ForwardService, ForwardServiceServer};
use keytrail_proto::{ForwardMessage, IncomingBatch, Refused, v1};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::CompressionEncoding;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};
use tonic_health::ServingStatus;

use crate::config::Secret;
use crate::telemetry::receiver as log;

/// Largest request message accepted: a 4 MiB batch (the sender's limit)
/// plus room for one oversized event.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Answers buffered per stream before the receiver waits for the sender to
/// read them.
const ANSWER_CAPACITY: usize = 64;

/// The HTTP/2 flow-control window the receiver advertises, per stream and
/// per connection: 16 MiB, room for a window of eight 1 MiB batches twice.
const FLOW_CONTROL_WINDOW: u32 = 16 * 1024 * 1024;

/// The largest HTTP/2 frame the receiver accepts: 1 MiB instead of the
/// protocol's 16 KiB default. A 500-event batch (about 500 KB) went out as
/// about 30 frames in about 20 write calls, and both ends paid for them:
/// in the loopback bench, 41,600 `writev` calls of `keytrail run` became
/// 2,000, and the bench process's CPU per event fell from 2.11 to 1.94 µs
/// (medians of eight runs each; BENCHMARKS.md, eighteenth round).
const MAX_FRAME_BYTES: u32 = 1024 * 1024;

/// Settings of the reference receiver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Address to listen on; port 0 picks a free port (see
    /// [`Receiver::local_addr`]).
    pub listen: SocketAddr,
    /// NDJSON file the accepted events are appended to.
    pub out: PathBuf,
    /// Answer every n-th in-order batch `REJECTED_RETRYABLE` (fault
    /// testing); at least 2.
    #[serde(default)]
    pub reject_every: Option<u64>,
    /// Answer every n-th in-order batch `REJECTED_PERMANENT` (fault
    /// testing); at least 1.
    #[serde(default)]
    pub reject_permanently_every: Option<u64>,
    /// Stall `pause_ms` before handling every n-th in-order batch (fault
    /// testing: a receiver slower than the sender's deadline); at least 1.
    #[serde(default)]
    pub pause_after: Option<u64>,
    /// How long a stall lasts.
    #[serde(default)]
    pub pause_ms: u64,
    /// TLS; plaintext when absent.
    #[serde(default)]
    pub tls: Option<ReceiverTlsConfig>,
    /// Require `authorization: Bearer <token>` on the feed.
    #[serde(default)]
    pub token: Option<Secret>,
}

/// TLS settings of the receiver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverTlsConfig {
    /// PEM file of the receiver's certificate (chain).
    pub cert_file: PathBuf,
    /// PEM file of its private key.
    pub key_file: PathBuf,
    /// PEM file of the authorities whose client certificates are accepted;
    /// when set, a client certificate is required (mutual TLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

impl ReceiverConfig {
    /// A plaintext receiver without faults.
    pub fn new(listen: SocketAddr, out: PathBuf) -> ReceiverConfig {
        ReceiverConfig {
            listen,
            out,
            reject_every: None,
            reject_permanently_every: None,
            pause_after: None,
            pause_ms: 0,
            tls: None,
            token: None,
        }
    }
}

/// Why the receiver could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiverError {
    /// A fault-injection setting out of range.
    #[error("receiver {key} must be at least {min}")]
    Setting {
        /// The key.
        key: &'static str,
        /// The smallest accepted value.
        min: u64,
    },
    /// The output file cannot be opened.
    #[error("cannot open receiver output {path}")]
    Out {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file cannot be read.
    #[error("cannot read receiver tls.{key} {path}")]
    ReadFile {
        /// The key.
        key: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS settings are invalid, or the server failed.
    #[error("receiver server failed")]
    Server(#[source] tonic::transport::Error),
}

/// Counters of a running receiver (for tests and logs).
#[derive(Debug, Default)]
pub struct ReceiverStats {
    streams: AtomicU64,
    accepted_batches: AtomicU64,
    stored_events: AtomicU64,
    retryable_rejections: AtomicU64,
    permanent_rejections: AtomicU64,
}

impl ReceiverStats {
    /// Streams opened (hellos received).
    pub fn streams(&self) -> u64 {
        self.streams.load(Ordering::Relaxed)
    }

    /// Batches answered `ACCEPTED`.
    pub fn accepted_batches(&self) -> u64 {
        self.accepted_batches.load(Ordering::Relaxed)
    }

    /// Events written to the output.
    pub fn stored_events(&self) -> u64 {
        self.stored_events.load(Ordering::Relaxed)
    }

    /// Batches answered `REJECTED_RETRYABLE` (out of order included).
    pub fn retryable_rejections(&self) -> u64 {
        self.retryable_rejections.load(Ordering::Relaxed)
    }

    /// Batches answered `REJECTED_PERMANENT`.
    pub fn permanent_rejections(&self) -> u64 {
        self.permanent_rejections.load(Ordering::Relaxed)
    }
}

/// A bound, not yet serving receiver.
#[derive(Debug)]
pub struct Receiver {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<ServerTlsConfig>,
    token: Option<Secret>,
    out: PathBuf,
    state: Arc<State>,
}

/// Binds `config.listen` and serves until `shutdown` completes.
pub async fn serve(
    config: ReceiverConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ReceiverError> {
    Receiver::bind(config).await?.serve(shutdown).await
}

impl Receiver {
    /// Checks the settings, reads the TLS files, opens the output (append)
    /// and binds the listen address.
    pub async fn bind(config: ReceiverConfig) -> Result<Receiver, ReceiverError> {
        at_least("reject_every", config.reject_every, 2)?;
        at_least(
            "reject_permanently_every",
            config.reject_permanently_every,
            1,
        )?;
        at_least("pause_after", config.pause_after, 1)?;
        let tls = config.tls.as_ref().map(server_tls).transpose()?;
        let out = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.out)
            .await
            .map_err(|source| ReceiverError::Out {
                path: config.out.clone(),
                source,
            })?
            .into_std()
            .await;
        let bind_error = |source| ReceiverError::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let (stop, stopped) = watch::channel(false);
        Ok(Receiver {
            listener,
            local_addr,
            tls,
            token: config.token.clone(),
            out: config.out.clone(),
            state: Arc::new(State {
                faults: Faults {
                    reject_every: config.reject_every,
                    reject_permanently_every: config.reject_permanently_every,
                    pause_after: config.pause_after,
                    pause: Duration::from_millis(config.pause_ms),
                },
                out: Arc::new(tokio::sync::Mutex::new(out)),
                current: Mutex::new(HashMap::new()),
                streams: AtomicU64::new(0),
                in_order: AtomicU64::new(0),
                stats: Arc::new(ReceiverStats::default()),
                stop,
                stopped,
            }),
        })
    }

    /// The address actually bound (the port chosen for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The receiver's counters; they stay readable after it stops.
    pub fn stats(&self) -> Arc<ReceiverStats> {
        Arc::clone(&self.state.stats)
    }

    /// Serves the feed and the health service until `shutdown` completes,
    /// then ends every open stream (status UNAVAILABLE) and returns once
    /// the connections are closed.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), ReceiverError> {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status(v1::FORWARD_SERVICE_NAME, ServingStatus::Serving)
            .await;
        let feed = ForwardServiceServer::new(Feed {
            state: Arc::clone(&self.state),
        })
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let feed = InterceptedService::new(feed, RequireToken(self.token));

        // HTTP/2 starts every stream and connection with a 64 KiB flow-control
        // window: a sender of 500-event batches (~0.5 MB) would stop every
        // 64 KiB to wait for a window update. Advertise room for a whole
        // window of large batches instead.
        let mut server = Server::builder()
            .initial_stream_window_size(Some(FLOW_CONTROL_WINDOW))
            .initial_connection_window_size(Some(FLOW_CONTROL_WINDOW))
            .max_frame_size(Some(MAX_FRAME_BYTES));
        log::listening(self.local_addr, self.tls.is_some(), &self.out);
        if let Some(tls) = self.tls {
            server = server.tls_config(tls).map_err(ReceiverError::Server)?;
        }
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        let state = Arc::clone(&self.state);
        server
            .add_service(health)
            .add_service(feed)
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                reporter
                    .set_service_status(v1::FORWARD_SERVICE_NAME, ServingStatus::NotServing)
                    .await;
                state.stop.send_replace(true);
            })
            .await
            .map_err(ReceiverError::Server)
    }
}

fn at_least(key: &'static str, value: Option<u64>, min: u64) -> Result<(), ReceiverError> {
    match value {
        Some(value) if value < min => Err(ReceiverError::Setting { key, min }),
        _ => Ok(()),
    }
}

fn server_tls(tls: &ReceiverTlsConfig) -> Result<ServerTlsConfig, ReceiverError> {
    let read = |key: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| ReceiverError::ReadFile {
            key,
            path: path.to_owned(),
            source,
        })
    };
    let identity = Identity::from_pem(
        read("cert_file", &tls.cert_file)?,
        read("key_file", &tls.key_file)?,
    );
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &tls.client_ca_file {
        config = config.client_ca_root(Certificate::from_pem(read("client_ca_file", ca)?));
    }
    Ok(config)
}

/// Refuses feed requests without the configured bearer token.
#[derive(Clone)]
struct RequireToken(Option<Secret>);

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = &self.0 else {
            return Ok(request);
        };
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(given) if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) => {
                Ok(request)
            }
            _ => Err(Status::unauthenticated("missing or wrong bearer token")),
        }
    }
}

/// Compares without an early exit, so timing does not reveal how much of
/// a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug)]
struct Faults {
    reject_every: Option<u64>,
    reject_permanently_every: Option<u64>,
    pause_after: Option<u64>,
    pause: Duration,
}

/// Shared by every stream.
#[derive(Debug)]
struct State {
    faults: Faults,
    /// The output; held while a batch is written, so batches never mix.
    out: Arc<tokio::sync::Mutex<std::fs::File>>,
    /// The current stream of each sender with a stream open (rule 7).
    current: Mutex<HashMap<String, u64>>,
    streams: AtomicU64,
    in_order: AtomicU64,
    stats: Arc<ReceiverStats>,
    stop: watch::Sender<bool>,
    stopped: watch::Receiver<bool>,
}

impl State {
    /// Makes a new stream the sender's current one; returns its id.
    fn register(&self, sender_id: &str) -> u64 {
        let stream = self.streams.fetch_add(1, Ordering::Relaxed) + 1;
        self.stats.streams.fetch_add(1, Ordering::Relaxed);
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(sender_id.to_owned(), stream);
        stream
    }

    /// Forgets a sender whose current stream ended.
    fn unregister(&self, sender_id: &str, stream: u64) {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.get(sender_id) == Some(&stream) {
            current.remove(sender_id);
        }
    }

    fn is_current(&self, sender_id: &str, stream: u64) -> bool {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(sender_id)
            == Some(&stream)
    }

    /// Handles one batch (steps 2 to 4 of the module docs).
    async fn batch(
        &self,
        sender_id: &str,
        stream: u64,
        expected: &mut u64,
        batch: IncomingBatch,
        lines: &mut Vec<u8>,
    ) -> Result<v1::ForwardResponse, Status> {
        let sequence = batch.sequence;
        if sequence != *expected {
            return Ok(self.refuse(
                sequence,
                false,
                format!("out of order: expected batch {expected}"),
            ));
        }

        let n = self.in_order.fetch_add(1, Ordering::Relaxed) + 1;
        let every = |setting: Option<u64>| setting.is_some_and(|every| n.is_multiple_of(every));
        if every(self.faults.reject_every) {
            return Ok(self.refuse(
                sequence,
                false,
                "rejected for testing (reject_every)".into(),
            ));
        }
        if every(self.faults.pause_after) {
            let mut stopped = self.stopped.clone();
            tokio::select! {
                () = tokio::time::sleep(self.faults.pause) => {}
                _ = stopped.wait_for(|stop| *stop) => return Err(shutting_down()),
            }
        }
        if every(self.faults.reject_permanently_every) {
            *expected += 1;
            return Ok(self.refuse(
                sequence,
                true,
                "rejected for testing (reject_permanently_every)".into(),
            ));
        }

        if let Some(Refused { index, error }) = batch.refused {
            *expected += 1;
            return Ok(self.refuse(sequence, true, format!("event {index}: {error}")));
        }
        let count = batch.events.len();
        lines.clear();
        // A batch of unusually large events does not pin its buffer for
        // the rest of the stream.
        if lines.capacity() > KEPT_LINES_BYTES {
            *lines = Vec::new();
        }
        for event in &batch.events {
            event.write_json(lines);
            lines.push(b'\n');
        }

        let out = Arc::clone(&self.out).lock_owned().await;
        if !self.is_current(sender_id, stream) {
            return Err(Status::aborted(
                "a newer stream of this sender replaced this one",
            ));
        }
        if let Err(error) = write(out, lines).await {
            return Ok(self.refuse(sequence, false, format!("cannot write the output: {error}")));
        }

        *expected += 1;
        self.stats.accepted_batches.fetch_add(1, Ordering::Relaxed);
        self.stats
            .stored_events
            .fetch_add(count as u64, Ordering::Relaxed);
        log::batch_stored(sequence, count);
        Ok(v1::ForwardResponse {
            sequence,
            status: v1::AckStatus::Accepted.into(),
            reason: String::new(),
        })
    }

    fn refuse(&self, sequence: u64, permanent: bool, reason: String) -> v1::ForwardResponse {
        let (status, counter) = if permanent {
            (
                v1::AckStatus::RejectedPermanent,
                &self.stats.permanent_rejections,
            )
        } else {
            (
                v1::AckStatus::RejectedRetryable,
                &self.stats.retryable_rejections,
            )
        };
        counter.fetch_add(1, Ordering::Relaxed);
        log::batch_refused(sequence, permanent, &reason);
        v1::ForwardResponse {
            sequence,
            status: status.into(),
            reason,
        }
    }
}

/// The most output buffer a stream keeps between batches.
const KEPT_LINES_BYTES: usize = 4 << 20;

/// Appends `lines` to the output on tokio's blocking pool. The buffer
/// itself goes there and comes back, where `tokio::fs::File` would copy it
/// (half a megabyte per batch of 500 events). The output stays locked
/// until the write ends, even if the caller stops waiting.
async fn write(
    out: tokio::sync::OwnedMutexGuard<std::fs::File>,
    lines: &mut Vec<u8>,
) -> std::io::Result<()> {
    let buffer = std::mem::take(lines);
    let (buffer, written) = tokio::task::spawn_blocking(move || {
        let written = (&*out).write_all(&buffer);
        (buffer, written)
    })
    .await
    // The task did not run to the end (the runtime is shutting down): the
    // buffer is gone with it, and the next batch starts a new one.
    .map_err(std::io::Error::other)?;
    *lines = buffer;
    written
}

fn shutting_down() -> Status {
    Status::unavailable("receiver shutting down")
}

/// The `ForwardService` implementation.
struct Feed {
    state: Arc<State>,
}

#[tonic::async_trait]
impl ForwardService for Feed {
    type ForwardStream = ReceiverStream<Result<v1::ForwardResponse, Status>>;

    async fn forward(
        &self,
        request: Request<Streaming<ForwardMessage>>,
    ) -> Result<Response<Self::ForwardStream>, Status> {
        let requests = request.into_inner();
        let (answers, stream) = mpsc::channel(ANSWER_CAPACITY);
        let state = Arc::clone(&self.state);
        tokio::spawn(async move {
            if let Err(status) = conversation(&state, requests, &answers).await {
                // The sender may be gone already.
                let _ = answers.send(Err(status)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(stream)))
    }
}

/// One stream, hello to end.
async fn conversation(
    state: &State,
    mut requests: Streaming<ForwardMessage>,
    answers: &mpsc::Sender<Result<v1::ForwardResponse, Status>>,
) -> Result<(), Status> {
    let mut stopped = state.stopped.clone();
    let hello = match next(&mut requests, &mut stopped).await? {
        None => return Ok(()),
        Some(ForwardMessage::Hello(hello)) if !hello.sender_id.is_empty() => hello,
        Some(ForwardMessage::Hello(_)) => {
            return Err(Status::invalid_argument("hello without sender_id"));
        }
        Some(ForwardMessage::Batch(_) | ForwardMessage::Empty) => {
            return Err(Status::invalid_argument(
                "the first message of a stream must be a hello",
            ));
        }
    };
    let stream = state.register(&hello.sender_id);
    log::stream_opened(&hello.sender_id, &hello.agent, hello.first_sequence);
    let mut expected = hello.first_sequence;
    // One buffer for the stream's output lines: a batch of 500 events is
    // about half a megabyte of JSON, and growing a fresh one copies it.
    let mut lines = Vec::new();
    let result = async {
        loop {
            let batch = match next(&mut requests, &mut stopped).await? {
                None => return Ok("sender closed the stream"),
                Some(ForwardMessage::Batch(batch)) => batch,
                Some(ForwardMessage::Hello(_)) => {
                    return Err(Status::invalid_argument("a second hello on one stream"));
                }
                Some(ForwardMessage::Empty) => {
                    return Err(Status::invalid_argument(
                        "a request with neither a hello nor a batch",
                    ));
                }
            };
            let answer = state
                .batch(&hello.sender_id, stream, &mut expected, batch, &mut lines)
                .await?;
            if answers.send(Ok(answer)).await.is_err() {
                return Ok("sender went away");
            }
        }
    }
    .await;
    state.unregister(&hello.sender_id, stream);
    match &result {
        Ok(why) => log::stream_closed(&hello.sender_id, why),
        Err(status) => log::stream_closed(&hello.sender_id, status.message()),
    }
    result.map(drop)
}

/// The next message, or an error when the stream failed or the receiver
/// is shutting down.
async fn next(
    requests: &mut Streaming<ForwardMessage>,
    stopped: &mut watch::Receiver<bool>,
) -> Result<Option<ForwardMessage>, Status> {
    tokio::select! {
        message = requests.message() => Ok(message?),
        _ = stopped.wait_for(|stop| *stop) => Err(shutting_down()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn config_reads_from_toml_like_data_and_refuses_unknown_keys() {
        let config: ReceiverConfig = serde_json::from_str(
            r#"{"listen": "127.0.0.1:0", "out": "x.ndjson", "reject_every": 5,
                "tls": {"cert_file": "c.pem", "key_file": "k.pem"}}"#,
        )
        .expect("parses");
        assert_eq!(config.reject_every, Some(5));
        assert!(
            serde_json::from_str::<ReceiverConfig>(
                r#"{"listen": "127.0.0.1:0", "out": "x", "rejectevery": 5}"#
            )
            .is_err()
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_batch_the_output_cannot_take_is_refused_for_now() {
        // /dev/full takes the open and fails every write (ENOSPC).
        let config = ReceiverConfig::new("127.0.0.1:0".parse().expect("addr"), "/dev/full".into());
        let receiver = Receiver::bind(config).await.expect("binds");
        let state = &receiver.state;
        let stream = state.register("sender");
        let (mut expected, mut lines) = (7, Vec::new());
        let mut batch = IncomingBatch::default();
        batch.sequence = 7;
        batch.events.push(keytrail_core::Event::new(
            keytrail_core::Timestamp::from_millis(0),
            keytrail_core::Source::SecurosysKm,
            "KeyCreate".into(),
        ));
        let answer = state
            .batch("sender", stream, &mut expected, batch, &mut lines)
            .await
            .expect("answered");
        assert_eq!(answer.sequence, 7);
        assert_eq!(answer.status, i32::from(v1::AckStatus::RejectedRetryable));
        assert!(
            answer.reason.starts_with("cannot write the output"),
            "{}",
            answer.reason
        );
        assert_eq!(expected, 7, "the same batch is expected again");
        assert_eq!(receiver.stats().stored_events(), 0);
        assert_eq!(receiver.stats().retryable_rejections(), 1);
    }

    #[tokio::test]
    async fn fault_settings_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = ReceiverConfig::new(
            "127.0.0.1:0".parse().expect("addr"),
            dir.path().join("out.ndjson"),
        );
        config.reject_every = Some(1);
        let err = Receiver::bind(config).await.expect_err("refused");
        assert_eq!(err.to_string(), "receiver reject_every must be at least 2");
    }
}
