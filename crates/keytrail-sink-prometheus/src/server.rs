//! The HTTP listener: `/metrics`, `/health` and `/ready` on one port.
//!
//! Where: beside the pipeline, not in it. The binary starts it once the
//! recorder is installed ([`crate::Prometheus::install`] gives the
//! [`Exporter`]) and flips the [`Readiness`] handle when the pipeline is
//! up; Prometheus scrapes `/metrics`, the orchestrator probes `/health`
//! (liveness) and `/ready` (readiness).
//!
//! Why our own server: the exporter's built-in listener answers every path
//! with the exposition, so it cannot serve the probes, and running a second
//! listener for them would mean two ports to configure and secure. This
//! one is hyper 1's HTTP/1.1 connection driver (already compiled for the
//! exporter's `http-listener` feature, so it adds no crate) behind a
//! handful of routes: a correct HTTP/1.1 parser with keep-alive, header
//! size limits and a header read timeout, without writing one.
//!
//! What it guarantees:
//! - `GET /metrics`: 200 with the text exposition (format 0.0.4), rendered
//!   off the async workers; `GET /health`: 200 while the process runs;
//!   `GET /ready`: 200 when the pipeline said it is ready, 503 otherwise;
//!   `HEAD` as `GET` without a body; any other path 404, any other method
//!   405; query strings are ignored;
//! - bounded: at most [`MAX_CONNECTIONS`] connections at once (more are
//!   closed at accept), [`HEADER_READ_TIMEOUT`] to send a request's
//!   headers;
//! - the recorder's upkeep runs on the server's task every
//!   `upkeep_interval_ms`;
//! - [`MetricsServer::shutdown`] stops accepting, lets requests under way
//!   finish for at most [`SHUTDOWN_GRACE`], then closes everything.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 64;

/// Time a client has to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Time requests under way get to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The content type of the Prometheus text exposition.
pub const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether the pipeline is ready; cloned freely, shared by the server and
/// whoever knows (the topology). Starts not ready.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// A handle that says "not ready" until [`Readiness::set_ready`].
    pub fn new() -> Readiness {
        Readiness::default()
    }

    /// Sets the state `/ready` reports (true once every stage runs; false
    /// again while shutting down).
    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    /// What `/ready` reports now.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// The installed recorder's handle and where to serve it.
#[derive(Debug, Clone)]
pub struct Exporter {
    handle: PrometheusHandle,
    listen: SocketAddr,
    upkeep_interval: Duration,
}

impl Exporter {
    pub(crate) fn new(
        handle: PrometheusHandle,
        listen: SocketAddr,
        upkeep_interval: Duration,
    ) -> Exporter {
        Exporter {
            handle,
            listen,
            upkeep_interval,
        }
    }

    /// The recorder's handle.
    pub fn handle(&self) -> &PrometheusHandle {
        &self.handle
    }

    /// The exposition as a scrape would get it now.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// The configured listen address.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// Binds the configured address and serves on a task of the current
    /// Tokio runtime until [`MetricsServer::shutdown`].
    pub async fn serve(&self, readiness: Readiness) -> Result<MetricsServer, ServeError> {
        self.serve_on(self.listen, readiness).await
    }

    /// As [`Exporter::serve`], on another address (tests use
    /// `127.0.0.1:0`).
    pub async fn serve_on(
        &self,
        addr: SocketAddr,
        readiness: Readiness,
    ) -> Result<MetricsServer, ServeError> {
        let bind_error = |source| ServeError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let (stop, stopped) = watch::channel(false);
        let state = Arc::new(State {
            handle: self.handle.clone(),
            readiness,
        });
        let task = tokio::spawn(accept_loop(listener, state, self.upkeep_interval, stopped));
        tracing::info!(%local_addr, "serving /metrics, /health and /ready");
        Ok(MetricsServer {
            local_addr,
            stop,
            task,
        })
    }
}

/// A running listener. Dropping it stops the listener too, without
/// waiting for it; [`MetricsServer::shutdown`] waits.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The bound address (the real port when the configured one was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets requests under way finish (at most
    /// [`SHUTDOWN_GRACE`]) and waits for the server's task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(err) = self.task.await {
            tracing::error!(error = %err, "metrics server task ended abnormally");
        }
    }
}

struct State {
    handle: PrometheusHandle,
    readiness: Readiness,
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    upkeep_interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let mut upkeep = tokio::time::interval(upkeep_interval);
    upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    loop {
        while connections.try_join_next().is_some() {}
        tokio::select! {
            _ = stopped.changed() => break,
            _ = upkeep.tick() => state.handle.run_upkeep(),
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning.
                        tracing::warn!(error = %err, "metrics listener cannot accept");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    tracing::warn!(%peer, limit = MAX_CONNECTIONS, "metrics listener full, closing connection");
                    continue;
                };
                let state = Arc::clone(&state);
                let service = service_fn(move |req| respond(req, Arc::clone(&state)));
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let mut stopped = stopped.clone();
                connections.spawn(async move {
                    let _permit = permit;
                    tokio::pin!(connection);
                    let result = tokio::select! {
                        result = connection.as_mut() => result,
                        _ = stopped.changed() => {
                            connection.as_mut().graceful_shutdown();
                            connection.await
                        }
                    };
                    if let Err(err) = result {
                        tracing::debug!(%peer, error = %err, "metrics connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        connections.abort_all();
    }
}

async fn respond(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(response);
    }
    let response = match req.uri().path() {
        "/metrics" => {
            let handle = state.handle.clone();
            match tokio::task::spawn_blocking(move || handle.render()).await {
                Ok(body) => {
                    let mut response = Response::new(Full::new(Bytes::from(body)));
                    response.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static(EXPOSITION_CONTENT_TYPE),
                    );
                    response
                }
                Err(err) => {
                    tracing::error!(error = %err, "rendering the exposition failed");
                    text(StatusCode::INTERNAL_SERVER_ERROR, "render failed\n")
                }
            }
        }
        "/health" => text(StatusCode::OK, "ok\n"),
        "/ready" if state.readiness.is_ready() => text(StatusCode::OK, "ready\n"),
        "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /health or /ready\n",
        ),
    };
    Ok(response)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
