//! The `[grpc]` configuration section and what it builds.
//!
//! [`GrpcConfig`] is read from the configuration file; [`GrpcConfig::validate`]
//! checks it without touching the file system, [`GrpcConfig::build`] also
//! reads the TLS files and the token variable and prepares the connection
//! settings, giving a [`GrpcForwarder`] that
//! [`start`](GrpcForwarder::start)s the [`GrpcSink`](crate::GrpcSink) inside
//! a Tokio runtime. Building spawns nothing and opens no connection, so the
//! binary can build once at load time just to validate.
//!
//! The bearer token is held in a [`Secret`], whose `Debug` form is redacted:
//! printing the configuration never shows it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// Largest accepted `batch_max_bytes`: 4 MiB, the default largest message
/// of gRPC servers (tonic, grpc-go, grpc-java).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Settings of the gRPC sink (the `[grpc]` section).
///
/// ```
/// use keytrail_sink_grpc::GrpcConfig;
///
/// let config: GrpcConfig = serde_json::from_str(
///     r#"{ "endpoint": "https://siem.example:4443", "compression": "zstd",
///          "token_env": "SIEM_TOKEN", "tls": { "ca_file": "ca.pem" } }"#,
/// )?;
/// config.validate()?;
/// assert_eq!(config.batch_max_events, 500);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcConfig {
    /// The receiver: `http://host:port` (plaintext) or `https://host:port`
    /// (TLS). Required.
    pub endpoint: String,
    /// The wire protocol: `keytrail` (the acknowledged feed of
    /// `proto/keytrail/v1/forward.proto`) or `otlp` (OpenTelemetry logs,
    /// `LogsService/Export`). Default `keytrail`.
    #[serde(default)]
    pub protocol: Protocol,
    /// A batch is sent when it holds this many events. Default 500.
    #[serde(default = "defaults::batch_max_events")]
    pub batch_max_events: usize,
    /// A batch is sent before its encoded events would pass this many bytes
    /// (a single larger event goes alone). At most 4 MiB. Default 1 MiB.
    #[serde(default = "defaults::batch_max_bytes")]
    pub batch_max_bytes: usize,
    /// A batch that is not full is sent this long after its first event.
    /// Default 200.
    #[serde(default = "defaults::linger_ms")]
    pub linger_ms: u64,
    /// How many batches may be sent and not yet acknowledged. When the
    /// window is full the sink stops taking events (backpressure). It also
    /// bounds the duplicates a reconnection can cause. Default 8.
    #[serde(default = "defaults::max_in_flight_batches")]
    pub max_in_flight_batches: usize,
    /// How long a sent batch may wait for its acknowledgement (an `Export`
    /// call, for OTLP), and how long a health check may take, before the
    /// attempt counts as failed and is retried. Default 10000.
    #[serde(default = "defaults::request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// How long opening a connection (TCP and TLS) may take. Default 5000.
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// The first wait before a retry; it doubles on every failure in a row
    /// (with random jitter) up to `retry_max_backoff_ms`. Default 100.
    #[serde(default = "defaults::retry_initial_backoff_ms")]
    pub retry_initial_backoff_ms: u64,
    /// The longest wait between retries. Default 30000.
    #[serde(default = "defaults::retry_max_backoff_ms")]
    pub retry_max_backoff_ms: u64,
    /// HTTP/2 keepalive ping interval; 0 turns pings off. Receivers refuse
    /// pings that come too often (grpc-go and grpc-java servers allow one
    /// per 5 minutes unless configured otherwise). Default 300000.
    #[serde(default = "defaults::keepalive_interval_ms")]
    pub keepalive_interval_ms: u64,
    /// Compression of the batches: `none`, `gzip` or `zstd`. The receiver
    /// must accept it. Default `none`.
    #[serde(default)]
    pub compression: Compression,
    /// TLS settings; only with an `https://` endpoint. Without them an
    /// `https://` endpoint is verified against the system's trusted roots.
    #[serde(default)]
    pub tls: Option<GrpcTlsConfig>,
    /// A bearer token sent as `authorization: Bearer <token>`. Prefer
    /// `token_env`; never logged.
    #[serde(default)]
    pub token: Option<Secret>,
    /// The name of an environment variable holding the bearer token, read
    /// when the sink is built.
    #[serde(default)]
    pub token_env: Option<String>,
}

/// TLS settings of the connection to the receiver (`[grpc.tls]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcTlsConfig {
    /// PEM file of the certificate authorities that sign the receiver's
    /// certificate; the system's trusted roots when absent.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM file of keytrail's client certificate (mutual TLS); set together
    /// with `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The name to verify the receiver's certificate against, when it is
    /// not the endpoint's host.
    #[serde(default)]
    pub domain_name: Option<String>,
}

/// The wire protocol of the sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// `keytrail.v1.ForwardService`: sequence numbers, per-batch
    /// acknowledgements, go-back-N on retry; strict order.
    #[default]
    Keytrail,
    /// OpenTelemetry logs over OTLP/gRPC: one `Export` call per batch.
    Otlp,
}

/// Compression of the requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Uncompressed.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    pub(crate) fn encoding(self) -> Option<tonic::codec::CompressionEncoding> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some(tonic::codec::CompressionEncoding::Gzip),
            Compression::Zstd => Some(tonic::codec::CompressionEncoding::Zstd),
        }
    }
}

/// A secret string (a token): its `Debug` form is redacted.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself; do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Debug for GrpcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcConfig")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("batch_max_events", &self.batch_max_events)
            .field("batch_max_bytes", &self.batch_max_bytes)
            .field("linger_ms", &self.linger_ms)
            .field("max_in_flight_batches", &self.max_in_flight_batches)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("retry_initial_backoff_ms", &self.retry_initial_backoff_ms)
            .field("retry_max_backoff_ms", &self.retry_max_backoff_ms)
            .field("keepalive_interval_ms", &self.keepalive_interval_ms)
            .field("compression", &self.compression)
            .field("tls", &self.tls)
            .field("token", &self.token)
            .field("token_env", &self.token_env)
            .finish()
    }
}

mod defaults {
    pub(super) fn batch_max_events() -> usize {
        500
    }
    pub(super) fn batch_max_bytes() -> usize {
        1024 * 1024
    }
    pub(super) fn linger_ms() -> u64 {
        200
    }
    pub(super) fn max_in_flight_batches() -> usize {
        8
    }
    pub(super) fn request_timeout_ms() -> u64 {
        10_000
    }
    pub(super) fn connect_timeout_ms() -> u64 {
        5_000
    }
    pub(super) fn retry_initial_backoff_ms() -> u64 {
        100
    }
    pub(super) fn retry_max_backoff_ms() -> u64 {
        30_000
    }
    pub(super) fn keepalive_interval_ms() -> u64 {
        300_000
    }
}

/// Why a [`GrpcConfig`] is refused. Messages name the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrpcConfigError {
    /// `endpoint` is not an `http://` or `https://` address.
    #[error("grpc.endpoint `{endpoint}` is invalid: {reason}")]
    Endpoint {
        /// The value given.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A number outside its range.
    #[error("grpc.{key} must be between {min} and {max}, got {value}")]
    OutOfRange {
        /// The key.
        key: &'static str,
        /// The value given.
        value: u64,
        /// The smallest accepted value.
        min: u64,
        /// The largest accepted value.
        max: u64,
    },
    /// `retry_max_backoff_ms` below `retry_initial_backoff_ms`.
    #[error(
        "grpc.retry_max_backoff_ms ({max}) must not be below grpc.retry_initial_backoff_ms ({initial})"
    )]
    BackoffOrder {
        /// `retry_initial_backoff_ms`.
        initial: u64,
        /// `retry_max_backoff_ms`.
        max: u64,
    },
    /// `[grpc.tls]` with a plaintext endpoint.
    #[error("grpc.tls is set but grpc.endpoint is not https://")]
    TlsWithoutHttps,
    /// Only one of `cert_file` and `key_file`.
    #[error("grpc.tls.cert_file and grpc.tls.key_file must be set together")]
    HalfIdentity,
    /// An empty `tls.domain_name`.
    #[error("grpc.tls.domain_name must not be empty")]
    EmptyDomainName,
    /// Both `token` and `token_env`.
    #[error("set grpc.token or grpc.token_env, not both")]
    TokenTwice,
    /// A `token_env` that is not a variable name.
    #[error("grpc.token_env `{name}` is not an environment variable name")]
    TokenEnvName {
        /// The value given.
        name: String,
    },
    /// The variable named by `token_env` is not set.
    #[error("environment variable {name} (grpc.token_env) is not set")]
    TokenEnvUnset {
        /// The variable.
        name: String,
    },
    /// A token that cannot travel in a header (empty, or not visible
    /// ASCII). The token itself is never in the message.
    #[error("grpc.token must be non-empty visible ascii")]
    TokenInvalid,
    /// A TLS file that cannot be read.
    #[error("cannot read grpc.tls.{key} {path}")]
    ReadFile {
        /// The key (`ca_file`, …).
        key: &'static str,
        /// The path given.
        path: PathBuf,
        /// The reading error.
        #[source]
        source: std::io::Error,
    },
    /// tonic refused the TLS settings (for example a malformed PEM file).
    #[error("grpc.tls settings are invalid")]
    Tls(#[source] tonic::transport::Error),
}

impl GrpcConfig {
    /// A configuration with the given endpoint and every other key at its
    /// default.
    pub fn new(endpoint: impl Into<String>) -> GrpcConfig {
        GrpcConfig {
            endpoint: endpoint.into(),
            protocol: Protocol::default(),
            batch_max_events: defaults::batch_max_events(),
            batch_max_bytes: defaults::batch_max_bytes(),
            linger_ms: defaults::linger_ms(),
            max_in_flight_batches: defaults::max_in_flight_batches(),
            request_timeout_ms: defaults::request_timeout_ms(),
            connect_timeout_ms: defaults::connect_timeout_ms(),
            retry_initial_backoff_ms: defaults::retry_initial_backoff_ms(),
            retry_max_backoff_ms: defaults::retry_max_backoff_ms(),
            keepalive_interval_ms: defaults::keepalive_interval_ms(),
            compression: Compression::default(),
            tls: None,
            token: None,
            token_env: None,
        }
    }

    /// Checks every key, without reading files or the environment.
    pub fn validate(&self) -> Result<(), GrpcConfigError> {
        let https = endpoint_is_https(&self.endpoint)?;
        range("batch_max_events", self.batch_max_events as u64, 1, 100_000)?;
        range(
            "batch_max_bytes",
            self.batch_max_bytes as u64,
            1024,
            MAX_BATCH_BYTES as u64,
        )?;
        range("linger_ms", self.linger_ms, 0, 60_000)?;
        range(
            "max_in_flight_batches",
            self.max_in_flight_batches as u64,
            1,
            1024,
        )?;
        range("request_timeout_ms", self.request_timeout_ms, 1, 3_600_000)?;
        range("connect_timeout_ms", self.connect_timeout_ms, 1, 600_000)?;
        range(
            "retry_initial_backoff_ms",
            self.retry_initial_backoff_ms,
            1,
            3_600_000,
        )?;
        range(
            "retry_max_backoff_ms",
            self.retry_max_backoff_ms,
            1,
            3_600_000,
        )?;
        if self.retry_max_backoff_ms < self.retry_initial_backoff_ms {
            return Err(GrpcConfigError::BackoffOrder {
                initial: self.retry_initial_backoff_ms,
                max: self.retry_max_backoff_ms,
            });
        }
        if self.keepalive_interval_ms != 0 {
            range(
                "keepalive_interval_ms",
                self.keepalive_interval_ms,
                1_000,
                86_400_000,
            )?;
        }
        if let Some(tls) = &self.tls {
            if !https {
                return Err(GrpcConfigError::TlsWithoutHttps);
            }
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                return Err(GrpcConfigError::HalfIdentity);
            }
            if tls.domain_name.as_deref().is_some_and(str::is_empty) {
                return Err(GrpcConfigError::EmptyDomainName);
            }
        }
        match (&self.token, &self.token_env) {
            (Some(_), Some(_)) => return Err(GrpcConfigError::TokenTwice),
            (Some(token), None) => bearer(token.expose()).map(drop)?,
            (None, Some(name)) if !is_env_name(name) => {
                return Err(GrpcConfigError::TokenEnvName { name: name.clone() });
            }
            _ => {}
        }
        Ok(())
    }

    /// Validates, reads the TLS files and the token variable, and prepares
    /// the connection settings. Opens no connection and spawns nothing.
    pub fn build(&self) -> Result<crate::GrpcForwarder, GrpcConfigError> {
        self.validate()?;
        let token = match (&self.token, &self.token_env) {
            (Some(token), _) => Some(bearer(token.expose())?),
            (None, Some(name)) => {
                let token = std::env::var(name)
                    .map_err(|_| GrpcConfigError::TokenEnvUnset { name: name.clone() })?;
                Some(bearer(&token)?)
            }
            (None, None) => None,
        };
        if token.is_some() && !endpoint_is_https(&self.endpoint)? {
            crate::telemetry::token_over_plaintext();
        }
        let endpoint = self.endpoint()?;
        Ok(crate::GrpcForwarder::new(
            self.settings(),
            endpoint,
            token,
            self.compression,
        ))
    }

    fn endpoint(&self) -> Result<Endpoint, GrpcConfigError> {
        let invalid = |reason| GrpcConfigError::Endpoint {
            endpoint: self.endpoint.clone(),
            reason,
        };
        let mut endpoint = Endpoint::from_shared(self.endpoint.clone())
            .map_err(|_| invalid("not a valid uri"))?
            .connect_timeout(Duration::from_millis(self.connect_timeout_ms))
            .tcp_nodelay(true)
            .user_agent(concat!("keytrail/", env!("CARGO_PKG_VERSION")))
            .map_err(|_| invalid("not a valid uri"))?;
        if self.keepalive_interval_ms > 0 {
            let interval = Duration::from_millis(self.keepalive_interval_ms);
            endpoint = endpoint
                .http2_keep_alive_interval(interval)
                .keep_alive_timeout(Duration::from_millis(self.request_timeout_ms))
                .keep_alive_while_idle(true)
                .tcp_keepalive(Some(interval));
        }
        if endpoint_is_https(&self.endpoint)? {
            let tls = self.client_tls()?;
            endpoint = endpoint.tls_config(tls).map_err(GrpcConfigError::Tls)?;
        }
        Ok(endpoint)
    }

    fn client_tls(&self) -> Result<ClientTlsConfig, GrpcConfigError> {
        let settings = self.tls.clone().unwrap_or_default();
        let mut tls = ClientTlsConfig::new();
        tls = match &settings.ca_file {
            Some(path) => tls.ca_certificate(Certificate::from_pem(read("ca_file", path)?)),
            None => tls.with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&settings.cert_file, &settings.key_file) {
            tls = tls.identity(Identity::from_pem(
                read("cert_file", cert)?,
                read("key_file", key)?,
            ));
        }
        if let Some(name) = &settings.domain_name {
            tls = tls.domain_name(name.clone());
        }
        Ok(tls)
    }

    fn settings(&self) -> crate::forwarder::Settings {
        crate::forwarder::Settings {
            protocol: self.protocol,
            limits: crate::queue::Limits {
                max_events: self.batch_max_events,
                max_bytes: self.batch_max_bytes,
                linger: Duration::from_millis(self.linger_ms),
                max_in_flight: self.max_in_flight_batches,
            },
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            backoff: crate::backoff::BackoffSettings {
                initial: Duration::from_millis(self.retry_initial_backoff_ms),
                max: Duration::from_millis(self.retry_max_backoff_ms),
            },
        }
    }
}

fn endpoint_is_https(endpoint: &str) -> Result<bool, GrpcConfigError> {
    let invalid = |reason| GrpcConfigError::Endpoint {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let uri: http::Uri = endpoint.parse().map_err(|_| invalid("not a valid uri"))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(invalid("must start with http:// or https://")),
    };
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("has no host"));
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Err(invalid("must not have a path or query"));
    }
    Ok(https)
}

fn range(key: &'static str, value: u64, min: u64, max: u64) -> Result<(), GrpcConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(GrpcConfigError::OutOfRange {
            key,
            value,
            min,
            max,
        })
    }
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `authorization` header value for a token, marked sensitive so the
/// HTTP layer never prints it.
fn bearer(token: &str) -> Result<MetadataValue<Ascii>, GrpcConfigError> {
    let token = token.trim();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(GrpcConfigError::TokenInvalid);
    }
    let mut value: MetadataValue<Ascii> = format!("Bearer {token}")
        .parse()
        .map_err(|_| GrpcConfigError::TokenInvalid)?;
    value.set_sensitive(true);
    Ok(value)
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, GrpcConfigError> {
    std::fs::read(path).map_err(|source| GrpcConfigError::ReadFile {
        key,
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> GrpcConfig {
        serde_json::from_str(json).expect("parses")
    }

    fn error(config: &GrpcConfig) -> String {
        config.validate().expect_err("refused").to_string()
    }

    #[test]
    fn defaults_are_valid() {
        let config = parse(r#"{"endpoint": "http://127.0.0.1:4317"}"#);
        config.validate().expect("valid");
        assert_eq!(config, GrpcConfig::new("http://127.0.0.1:4317"));
        assert_eq!(config.protocol, Protocol::Keytrail);
        assert_eq!(config.compression, Compression::None);
    }

    #[test]
    fn unknown_keys_and_missing_endpoint_are_refused() {
        let err =
            serde_json::from_str::<GrpcConfig>(r#"{"endpoint": "http://a:1", "lingr_ms": 1}"#)
                .expect_err("refused");
        assert!(err.to_string().contains("lingr_ms"), "{err}");
        let err = serde_json::from_str::<GrpcConfig>("{}").expect_err("refused");
        assert!(err.to_string().contains("endpoint"), "{err}");
        let err =
            serde_json::from_str::<GrpcConfig>(r#"{"endpoint": "http://a:1", "tls": {"ca": "x"}}"#)
                .expect_err("refused");
        assert!(err.to_string().contains("ca"), "{err}");
        let err =
            serde_json::from_str::<GrpcConfig>(r#"{"endpoint": "http://a:1", "protocol": "http"}"#)
                .expect_err("refused");
        assert!(err.to_string().contains("http"), "{err}");
    }

    #[test]
    fn endpoints_must_be_http_or_https_with_a_host() {
        for bad in [
            "127.0.0.1:4317",
            "ftp://host:1",
            "http://",
            "http://host:1/path",
        ] {
            let message = error(&GrpcConfig::new(bad));
            assert!(message.starts_with("grpc.endpoint"), "{bad}: {message}");
        }
    }

    #[test]
    fn errors_name_the_key() {
        let mut config = GrpcConfig::new("http://h:1");
        config.batch_max_bytes = 10 * 1024 * 1024;
        assert_eq!(
            error(&config),
            "grpc.batch_max_bytes must be between 1024 and 4194304, got 10485760"
        );
        let mut config = GrpcConfig::new("http://h:1");
        config.max_in_flight_batches = 0;
        assert!(error(&config).contains("grpc.max_in_flight_batches"));
        let mut config = GrpcConfig::new("http://h:1");
        config.retry_max_backoff_ms = 10;
        assert!(error(&config).contains("grpc.retry_max_backoff_ms"));
        let mut config = GrpcConfig::new("http://h:1");
        config.keepalive_interval_ms = 10;
        assert!(error(&config).contains("grpc.keepalive_interval_ms"));
        config.keepalive_interval_ms = 0;
        config.validate().expect("0 turns keepalive off");
    }

    #[test]
    fn tls_needs_https_and_a_whole_identity() {
        let mut config = GrpcConfig::new("http://h:1");
        config.tls = Some(GrpcTlsConfig::default());
        assert_eq!(
            error(&config),
            "grpc.tls is set but grpc.endpoint is not https://"
        );
        config.endpoint = "https://h:1".into();
        config.validate().expect("valid");
        config.tls = Some(GrpcTlsConfig {
            cert_file: Some("c.pem".into()),
            ..GrpcTlsConfig::default()
        });
        assert!(error(&config).contains("grpc.tls.cert_file"));
    }

    #[test]
    fn tokens_are_checked_and_never_printed() {
        let mut config = GrpcConfig::new("https://h:1");
        config.token = Some(Secret::new("s3cret-value"));
        config.validate().expect("valid");
        assert!(!format!("{config:?}").contains("s3cret"));
        config.token_env = Some("SIEM_TOKEN".into());
        assert_eq!(error(&config), "set grpc.token or grpc.token_env, not both");
        config.token = Some(Secret::new("has space"));
        config.token_env = None;
        let message = error(&config);
        assert_eq!(message, "grpc.token must be non-empty visible ascii");
        config.token = None;
        config.token_env = Some("1BAD-NAME".into());
        assert!(error(&config).contains("grpc.token_env"));
    }

    #[test]
    fn build_reads_the_token_variable_and_names_it_when_unset() {
        let mut config = GrpcConfig::new("https://h:1");
        config.token_env = Some("KEYTRAIL_TEST_SURELY_UNSET_TOKEN".into());
        let err = config.build().expect_err("unset");
        assert_eq!(
            err.to_string(),
            "environment variable KEYTRAIL_TEST_SURELY_UNSET_TOKEN (grpc.token_env) is not set"
        );
        config.token_env = None;
        config.tls = Some(GrpcTlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..GrpcTlsConfig::default()
        });
        let err = config.build().expect_err("missing file");
        assert_eq!(
            err.to_string(),
            "cannot read grpc.tls.ca_file /nonexistent/ca.pem"
        );
    }
}
