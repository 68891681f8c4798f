//! The sink handle and the forwarding task behind it.
//!
//! [`GrpcForwarder::start`] spawns one task that owns the connection, the
//! batches and the window ([`crate::queue`]), and returns a [`GrpcSink`],
//! the [`Sink`] the topology feeds. `accept` only hands the events to the
//! task through a channel of capacity [`INPUT_CAPACITY`]; it waits when the
//! task has no room (the window is full), which is the pipeline's
//! backpressure towards the Kafka source.
//!
//! The task runs the protocol's driver ([`crate::feed`] for the keytrail
//! feed, [`crate::otlp`] for OTLP) until the sink is dropped or shut down
//! and everything taken is resolved. Acknowledgement shares are resolved
//! only by the receiver's answer (or the dead-letter output); if the task
//! stops early, the shares it holds are dropped and so fail, and the Kafka
//! offsets stay uncommitted.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use keytrail_core::{AckToken, DeadLetterBatch, Prepare, SharedEvents, Sink, SinkError};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::backoff::BackoffSettings;
use crate::config::{Compression, Protocol};
use crate::queue::{Command, Encoder, Limits, Queue};

/// Capacity of the channel between [`GrpcSink::accept`] and the forwarding
/// task, in input batches. The task takes the next one only when its window
/// has room, so this is all the buffering in front of the window.
pub const INPUT_CAPACITY: usize = 1;

/// Runtime settings taken from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) protocol: Protocol,
    pub(crate) limits: Limits,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) backoff: BackoffSettings,
}

/// A validated, ready-to-start forwarder, built by
/// [`GrpcConfig::build`](crate::GrpcConfig::build). It holds the connection
/// settings (TLS files already read, token already resolved) and has not
/// connected yet.
pub struct GrpcForwarder {
    settings: Settings,
    endpoint: Endpoint,
    token: Option<MetadataValue<Ascii>>,
    compression: Compression,
}

impl fmt::Debug for GrpcForwarder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcForwarder")
            .field("endpoint", self.endpoint.uri())
            .field("settings", &self.settings)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("compression", &self.compression)
            .finish()
    }
}

impl GrpcForwarder {
    pub(crate) fn new(
        settings: Settings,
        endpoint: Endpoint,
        token: Option<MetadataValue<Ascii>>,
        compression: Compression,
    ) -> GrpcForwarder {
        GrpcForwarder {
            settings,
            endpoint,
            token,
            compression,
        }
    }

    /// Spawns the forwarding task and returns the sink that feeds it.
    /// Events the receiver rejects for good are sent to `dead_letters`,
    /// each part with the acknowledgement share the output must resolve
    /// after writing.
    ///
    /// The task connects at once (waiting for the receiver's health service
    /// to report serving) and reconnects with backoff for as long as it
    /// runs.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn start(self, dead_letters: mpsc::Sender<DeadLetterBatch>) -> GrpcSink {
        let (commands, commands_rx) = mpsc::channel(INPUT_CAPACITY);
        let (link_tx, link) = watch::channel(LinkState::Connecting);
        let connection = Connection {
            channel: self.endpoint.connect_lazy(),
            auth: Auth(self.token),
            compression: self.compression.encoding(),
            settings: self.settings,
            link: link_tx,
        };
        let limits = self.settings.limits;
        let (worker, prepare) = match self.settings.protocol {
            Protocol::Keytrail => {
                let queue = Queue::new(crate::feed::FeedEncoder::default(), limits, dead_letters);
                let worker = tokio::spawn(crate::feed::run(connection, commands_rx, queue));
                (
                    worker,
                    Some(Arc::new(crate::feed::FeedPrepare) as Arc<dyn Prepare>),
                )
            }
            Protocol::Otlp => {
                let queue = Queue::new(crate::otlp::LogEncoder::new(), limits, dead_letters);
                (
                    tokio::spawn(crate::otlp::run(connection, commands_rx, queue)),
                    Some(Arc::new(crate::otlp::OtlpPrepare) as Arc<dyn Prepare>),
                )
            }
        };
        GrpcSink {
            commands: Some(commands),
            link,
            worker: Some(worker),
            prepare,
        }
    }
}

/// Why the gRPC sink could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrpcSinkError {
    /// The forwarding task is gone (it panicked or was shut down).
    #[error("grpc forwarder stopped")]
    Stopped,
    /// The receiver did not become ready in time.
    #[error("grpc receiver not ready: {last_error}")]
    NotReady {
        /// The last connection failure, or `connecting` when none was seen.
        last_error: String,
    },
    /// The grace period of [`GrpcSink::shutdown`] ended with events still
    /// unacknowledged; their shares failed, so their offsets are not
    /// committed.
    #[error("grpc forwarder stopped before every event was acknowledged")]
    Abandoned,
}

/// The state of the connection to the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkState {
    Connecting,
    Ready,
    Down(String),
}

/// The gRPC sink: feeds the forwarding task. See the crate docs.
///
/// Dropping it closes the task's input: the task still delivers what it
/// holds, then ends. [`GrpcSink::shutdown`] bounds that wait.
#[derive(Debug)]
pub struct GrpcSink {
    commands: Option<mpsc::Sender<Command>>,
    link: watch::Receiver<LinkState>,
    worker: Option<JoinHandle<()>>,
    /// The protocol's work on the transform threads, if it has any.
    prepare: Option<Arc<dyn Prepare>>,
}

impl GrpcSink {
    /// Waits until the receiver is ready (health check passed and, for the
    /// keytrail protocol, the feed stream open), at most `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), GrpcSinkError> {
        let mut link = self.link.clone();
        let ready = tokio::time::timeout(timeout, link.wait_for(|s| *s == LinkState::Ready)).await;
        match ready {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(GrpcSinkError::Stopped),
            Err(_) => Err(GrpcSinkError::NotReady {
                last_error: match &*self.link.borrow() {
                    LinkState::Down(reason) => reason.clone(),
                    _ => "connecting".to_owned(),
                },
            }),
        }
    }

    /// Stops taking events, waits up to `grace` for everything taken to be
    /// resolved, then stops the task. What is still unacknowledged then is
    /// dropped, which fails its shares (replayed after a restart).
    pub async fn shutdown(mut self, grace: Duration) -> Result<(), GrpcSinkError> {
        self.commands = None;
        let Some(mut worker) = self.worker.take() else {
            return Ok(());
        };
        match tokio::time::timeout(grace, &mut worker).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(GrpcSinkError::Stopped),
            Err(_) => {
                worker.abort();
                let _ = worker.await;
                Err(GrpcSinkError::Abandoned)
            }
        }
    }

    fn sender(&self) -> Result<&mpsc::Sender<Command>, SinkError> {
        self.commands.as_ref().ok_or_else(stopped)
    }
}

fn stopped() -> SinkError {
    SinkError {
        sink: "grpc",
        source: Box::new(GrpcSinkError::Stopped),
    }
}

impl Sink for GrpcSink {
    fn name(&self) -> &'static str {
        "grpc"
    }

    /// Hands the events to the forwarding task; waits while its window is
    /// full. The share is resolved later, when the receiver answers.
    fn accept(
        &mut self,
        events: SharedEvents,
        ack: AckToken,
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        let sender = self.sender().cloned();
        async move {
            // A refused send drops the token with the command: it fails.
            sender?
                .send(Command::Events { events, ack })
                .await
                .map_err(|_| stopped())
        }
    }

    /// Sends what is batched at once and waits until everything accepted
    /// so far is acknowledged or dead-lettered. It waits as long as the
    /// receiver is unreachable: bound it with a timeout at shutdown.
    fn flush(&mut self) -> impl Future<Output = Result<(), SinkError>> + Send {
        let sender = self.sender().cloned();
        async move {
            let (done, answered) = oneshot::channel();
            sender?
                .send(Command::Flush(done))
                .await
                .map_err(|_| stopped())?;
            answered.await.map_err(|_| stopped())
        }
    }

    fn prepare(&self) -> Option<Arc<dyn Prepare>> {
        self.prepare.clone()
    }
}

/// Adds the bearer token, when configured, to every request.
#[derive(Clone)]
pub(crate) struct Auth(Option<MetadataValue<Ascii>>);

impl Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        Ok(request)
    }
}

/// What a driver needs to talk to the receiver.
pub(crate) struct Connection {
    pub(crate) channel: Channel,
    pub(crate) auth: Auth,
    pub(crate) compression: Option<tonic::codec::CompressionEncoding>,
    pub(crate) settings: Settings,
    link: watch::Sender<LinkState>,
}

impl Connection {
    /// Asks the receiver's health service about `service`; a receiver
    /// without a health service counts as ready.
    pub(crate) async fn check_health(&self, service: &str) -> Result<(), String> {
        let mut client = HealthClient::with_interceptor(self.channel.clone(), self.auth.clone());
        let mut request = Request::new(HealthCheckRequest {
            service: service.to_owned(),
        });
        request.set_timeout(self.settings.request_timeout);
        let limit = self.settings.connect_timeout + self.settings.request_timeout;
        match tokio::time::timeout(limit, client.check(request)).await {
            Err(_) => Err("health check timed out".to_owned()),
            Ok(Ok(response)) => match response.into_inner().status() {
                ServingStatus::Serving => Ok(()),
                status => Err(format!(
                    "receiver health is {} for `{service}`",
                    status.as_str_name()
                )),
            },
            Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => Ok(()),
            Ok(Err(status)) => Err(format!("health check failed: {}", describe(&status))),
        }
    }

    pub(crate) fn link_up(&self) {
        self.link.send_replace(LinkState::Ready);
    }

    pub(crate) fn link_down(&self, reason: &str) {
        self.link.send_replace(LinkState::Down(reason.to_owned()));
    }
}

/// A status as one line: code, message and the transport error chain.
pub(crate) fn describe(status: &Status) -> String {
    let mut text = format!("{:?}", status.code());
    if !status.message().is_empty() {
        text.push_str(": ");
        text.push_str(status.message());
    }
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        let message = error.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = error.source();
    }
    text
}

/// Sleeps until `deadline`, or forever when there is none.
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Waits `delay` before the next attempt, taking input meanwhile (it is
/// batched and sent once the receiver is back). False when the input closed
/// and nothing is left to deliver: the driver stops.
pub(crate) async fn wait_retry<E: Encoder>(
    delay: Duration,
    commands: &mut mpsc::Receiver<Command>,
    queue: &mut Queue<E>,
) -> bool {
    let deadline = Instant::now() + delay;
    loop {
        if queue.is_done() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return true,
            command = commands.recv(), if queue.wants_input() => {
                queue.take(command);
                queue.fill(Instant::now());
                queue.reject_oversized().await;
                queue.check_flushes();
            }
        }
    }
}

/// A seed for jitter and sender ids: the clock and the process id, mixed.
pub(crate) fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut x = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
    // splitmix64 finalizer: spreads nearby seeds apart.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
