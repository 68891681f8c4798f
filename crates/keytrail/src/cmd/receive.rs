//! `keytrail receive --listen ADDR --out FILE`: the reference SIEM receiver.
//!
//! Implements `keytrail.v1.ForwardService`: appends each accepted batch to
//! FILE as NDJSON (one normalized event per line), flushes, and only then
//! acknowledges. It serves the gRPC health service. The fault options make
//! it reject or stall batches, for testing a pipeline's guarantees.

use std::net::SocketAddr;
use std::path::PathBuf;

use keytrail_sink_grpc::Secret;
use keytrail_sink_grpc::receiver::{ReceiverConfig, ReceiverTlsConfig, serve};

/// Arguments of `keytrail receive`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (`127.0.0.1:50051`; port 0 picks a free port).
    #[arg(long)]
    pub listen: SocketAddr,
    /// NDJSON file the accepted events are appended to.
    #[arg(long)]
    pub out: PathBuf,
    /// Answer every N-th batch "rejected, retry later" (fault testing).
    #[arg(long, value_name = "N")]
    pub reject_every: Option<u64>,
    /// Answer every N-th batch "rejected for good" (fault testing).
    #[arg(long, value_name = "N")]
    pub reject_permanently_every: Option<u64>,
    /// Stall before every N-th batch (fault testing), see --pause-ms.
    #[arg(long, value_name = "N")]
    pub pause_after: Option<u64>,
    /// How long a stall lasts, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub pause_ms: u64,
    /// PEM certificate (chain) to serve TLS with.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM authorities of accepted client certificates (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// Environment variable holding the bearer token senders must present.
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
}

/// Runs the command until SIGINT/SIGTERM.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut config = ReceiverConfig::new(args.listen, args.out.clone());
    config.reject_every = args.reject_every;
    config.reject_permanently_every = args.reject_permanently_every;
    config.pause_after = args.pause_after;
    config.pause_ms = args.pause_ms;
    if let (Some(cert_file), Some(key_file)) = (&args.tls_cert, &args.tls_key) {
        config.tls = Some(ReceiverTlsConfig {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            client_ca_file: args.client_ca.clone(),
        });
    }
    if let Some(var) = &args.token_env {
        let token = std::env::var(var)
            .map_err(|_| anyhow::anyhow!("environment variable {var} is not set"))?;
        config.token = Some(Secret::new(token));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tracing::info!(listen = %args.listen, out = %args.out.display(), "receiver starting");
        serve(config, super::run::shutdown_signal()).await
    })?;
    Ok(())
}
