//! Helpers shared by the integration tests: finding the Prometheus tools
//! (with the skip-or-require rule), a tiny HTTP/1.0 client, and events.

#![allow(dead_code)]

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use keytrail_core::{Category, Event, Outcome, Severity, Source, Timestamp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Set to 1 to make a missing `promtool` a failure instead of a skip.
pub const REQUIRE_PROMTOOL: &str = "KEYTRAIL_REQUIRE_PROMTOOL";
/// Set to 1 to make a missing `prometheus` a failure instead of a skip
/// (`KEYTRAIL_REQUIRE_PROMTOOL=1` does too: the same Debian package ships
/// both).
pub const REQUIRE_PROMETHEUS: &str = "KEYTRAIL_REQUIRE_PROMETHEUS";

/// The repository root.
pub fn repo_root() -> PathBuf {
    // The nearest ancestor of the package that holds the deploy kit (this
    // file is also compiled into the workspace's end-to-end tests).
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("deploy/prometheus/alerts.yml").is_file())
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
            Path::to_path_buf,
        )
}

/// `deploy/prometheus/<file>`.
pub fn deploy_file(file: &str) -> PathBuf {
    repo_root().join("deploy/prometheus").join(file)
}

fn required(vars: &[&str]) -> Option<&'static str> {
    vars.iter()
        .find(|v| std::env::var(v).is_ok_and(|value| value == "1"))
        .map(|v| match *v {
            REQUIRE_PROMTOOL => REQUIRE_PROMTOOL,
            _ => REQUIRE_PROMETHEUS,
        })
}

/// The path of executable `name` on `PATH`. Absent: panics when one of
/// `require_vars` is `1`, otherwise writes a skip note straight to stderr
/// (past the test harness's capture) and returns `None`.
pub fn tool(name: &str, require_vars: &[&str], test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        if let Some(var) = required(require_vars) {
            panic!(
                "`{name}` is not on PATH and {var}=1 requires it: run scripts/install-prometheus.sh (Debian package `prometheus`)"
            );
        }
        let _ = writeln!(
            std::io::stderr(),
            "SKIP {test}: `{name}` is not on PATH (run scripts/install-prometheus.sh; set {}=1 to fail instead)",
            require_vars.first().copied().unwrap_or(REQUIRE_PROMTOOL)
        );
    }
    found
}

/// `promtool`, or `None` to skip.
pub fn promtool(test: &str) -> Option<PathBuf> {
    tool("promtool", &[REQUIRE_PROMTOOL], test)
}

/// `prometheus`, or `None` to skip.
pub fn prometheus(test: &str) -> Option<PathBuf> {
    tool("prometheus", &[REQUIRE_PROMETHEUS, REQUIRE_PROMTOOL], test)
}

/// One HTTP response.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Header lines, as sent (`Content-Type: text/plain`).
    pub headers: Vec<String>,
    /// Body bytes as text.
    pub body: String,
}

impl Reply {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Sends `METHOD path HTTP/1.0` to `addr` and reads the whole reply (the
/// server closes after one HTTP/1.0 exchange). Errors are I/O errors
/// (connection refused while a server starts).
pub async fn request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<Reply> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let head = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\n\r\n");
        stream.write_all(head.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "http request timed out")
        })??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP reply: {head:?}")))?;
    Ok(Reply {
        status,
        headers: lines.map(str::to_owned).collect(),
        body: body.to_owned(),
    })
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> std::io::Result<Reply> {
    request(addr, "GET", path).await
}

/// Percent-encodes a query parameter value.
pub fn urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One kind of test event and the labels the sink must give it.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Event source.
    pub source: Source,
    /// Event action as the pipeline sets it.
    pub action: &'static str,
    /// Whether the enricher knew the action (it set a description).
    pub described: bool,
    /// Category.
    pub category: Category,
    /// Outcome.
    pub outcome: Outcome,
    /// Severity.
    pub severity: Severity,
    /// Actionable per the vendor rules.
    pub actionable: bool,
    /// The `action` label expected on the counters.
    pub label: &'static str,
    /// How many such events to send.
    pub count: usize,
}

/// A mix of catalog, `_FAILED`, unknown and non-HSM events across every
/// source, with user names, IPs and key ids that must never become labels.
pub const SAMPLES: &[Sample] = &[
    Sample {
        source: Source::SecurosysKm,
        action: "LOGIN_FAILURE",
        described: true,
        category: Category::Authentication,
        outcome: Outcome::Denied,
        severity: Severity::Medium,
        actionable: true,
        label: "LOGIN_FAILURE",
        count: 7,
    },
    Sample {
        source: Source::SecurosysKm,
        action: "LOGIN_SUCCESS",
        described: true,
        category: Category::Authentication,
        outcome: Outcome::Success,
        severity: Severity::Informational,
        actionable: true,
        label: "LOGIN_SUCCESS",
        count: 11,
    },
    Sample {
        source: Source::SecurosysKm,
        action: "MTLS_FAILED",
        described: true,
        category: Category::System,
        outcome: Outcome::Failure,
        severity: Severity::High,
        actionable: true,
        label: "MTLS_FAILED",
        count: 1,
    },
    Sample {
        source: Source::SecurosysKm,
        action: "KEY_DELETE_FAILED",
        described: false,
        category: Category::KeyManagement,
        outcome: Outcome::Failure,
        severity: Severity::High,
        actionable: true,
        label: "KEY_DELETE_FAILED",
        count: 2,
    },
    Sample {
        source: Source::SecurosysKm,
        action: "KEY_EXPORTED",
        described: false,
        category: Category::KeyManagement,
        outcome: Outcome::Success,
        severity: Severity::Informational,
        actionable: false,
        label: "other",
        count: 3,
    },
    Sample {
        source: Source::IbmHpcs,
        action: "hs-crypto.secrets.wrap",
        described: true,
        category: Category::CryptoOperation,
        outcome: Outcome::Success,
        severity: Severity::Informational,
        actionable: false,
        label: "hs-crypto.secrets.wrap",
        count: 25,
    },
    Sample {
        source: Source::IbmHpcs,
        action: "hs-crypto.secrets.read",
        described: true,
        category: Category::KeyManagement,
        outcome: Outcome::Denied,
        severity: Severity::Critical,
        actionable: true,
        label: "hs-crypto.secrets.read",
        count: 4,
    },
    Sample {
        source: Source::IbmHpcs,
        action: "hs-crypto.tke-cryptounit-master-key-register.commit",
        described: true,
        category: Category::HsmAdministration,
        outcome: Outcome::Success,
        severity: Severity::Critical,
        actionable: true,
        label: "hs-crypto.tke-cryptounit-master-key-register.commit",
        count: 1,
    },
    Sample {
        source: Source::IbmKeyProtect,
        action: "kms.secrets.delete",
        described: true,
        category: Category::KeyManagement,
        outcome: Outcome::Success,
        severity: Severity::Critical,
        actionable: true,
        label: "kms.secrets.delete",
        count: 2,
    },
    Sample {
        source: Source::IbmKeyProtect,
        action: "kms.secrets.brandnew",
        described: false,
        category: Category::KeyManagement,
        outcome: Outcome::Failure,
        severity: Severity::Medium,
        actionable: true,
        label: "other",
        count: 5,
    },
    Sample {
        source: Source::IbmCloud,
        action: "iam-groups.group.create",
        described: false,
        category: Category::Other,
        outcome: Outcome::Success,
        severity: Severity::Informational,
        actionable: false,
        label: "other",
        count: 6,
    },
];

/// The events of `SAMPLES`, each with personal data the labels must drop.
pub fn sample_events() -> Vec<Event> {
    let mut events = Vec::new();
    for (i, s) in SAMPLES.iter().enumerate() {
        for n in 0..s.count {
            let mut e = Event::new(
                Timestamp::from_millis(1_774_375_218_936),
                s.source,
                s.action.into(),
            );
            if s.described {
                e.description = Some("From the catalog.".into());
            }
            e.category = s.category;
            e.outcome = s.outcome;
            e.severity = s.severity;
            e.actionable = s.actionable;
            e.actor.user = Some(format!("alice{i}-{n}@example.com").into());
            e.actor.ip = Some(format!("192.0.2.{n}").into());
            e.key_mut().id = Some(format!("key-{i}-{n}").into());
            e.target.id =
                Some(format!("crn:v1:bluemix:public:kms:us-south:a/acct:inst{i}:key:{n}").into());
            events.push(e);
        }
    }
    events
}

/// Total number of sample events.
pub fn sample_count() -> usize {
    SAMPLES.iter().map(|s| s.count).sum()
}

/// A `prometheus` child process, killed when dropped (also on panic).
pub struct PrometheusProcess {
    child: Child,
    log: PathBuf,
    addr: SocketAddr,
}

impl PrometheusProcess {
    pub fn start(binary: &Path, dir: &Path, target: SocketAddr) -> PrometheusProcess {
        let rules = deploy_file("alerts.yml");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules}\n\
                 scrape_configs:\n  - job_name: keytrail\n    static_configs:\n      - targets: ['{target}']\n",
                rules = rules.display(),
            ),
        )
        .expect("config written");
        // A free port: bind, read, release. Prometheus binds it right after.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = dir.join("prometheus.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file)
            .spawn()
            .expect("prometheus starts");
        PrometheusProcess { child, log, addr }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the server's log if it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("prometheus exited ({status}):\n{}", self.log());
        }
    }

    /// Runs an instant query; `None` while the server is not answering.
    pub async fn query(&mut self, promql: &str) -> Option<Vec<Value>> {
        self.assert_running();
        let path = format!("/api/v1/query?query={}", urlencode(promql));
        let reply = get(self.addr, &path).await.ok()?;
        if reply.status != 200 {
            return None;
        }
        let json: Value = serde_json::from_str(&reply.body).expect("query reply is JSON");
        json["data"]["result"].as_array().cloned()
    }

    /// Polls `promql` until `done` accepts its result, or panics after
    /// `timeout` with the last result and the server log.
    pub async fn wait_for(
        &mut self,
        promql: &str,
        timeout: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            if let Some(result) = self.query(promql).await {
                if done(&result) {
                    return result;
                }
                last = Some(result);
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on `{promql}`; last result {last:?}\n--- prometheus log\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for PrometheusProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
