//! Child processes of the tests: the `keytrail` binary and outside brokers.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use super::wait_for;

/// The `keytrail` binary built next to this test binary.
pub fn keytrail_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let bin = dir.join("keytrail");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p keytrail` (make test does)",
        bin.display()
    );
    bin
}

/// `keytrail run --config <config>` as a child process, output discarded.
pub fn keytrail_run(config: &Path) -> Proc {
    let child = std::process::Command::new(keytrail_bin())
        .args(["run", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("keytrail run starts");
    Proc(child)
}

/// A loopback address with a port nobody listens on right now.
pub fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("free port");
    listener.local_addr().expect("address")
}

/// Waits until something accepts connections on `addr`.
pub async fn wait_listening(addr: SocketAddr, timeout: Duration) {
    wait_for("a listener", timeout, || TcpStream::connect(addr).is_ok()).await;
}

/// A child process, killed (SIGKILL) when dropped.
pub struct Proc(pub Child);

impl Proc {
    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM delivered");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
