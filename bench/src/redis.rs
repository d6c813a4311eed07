//! The cluster target's `redis-server`: Debian's (`scripts/setup.sh --test` installs it), started
//! on a free port in the target's temp dir — never the system service.
//!
//! Durability is set to match single-node Lantern's default (`--sqlite-sync normal`: a commit
//! survives the process being killed, not a power cut): the append-only file on, written
//! before Redis replies, synced to disk every second (`appendfsync everysec`). So the two
//! rows compare like with like; `appendfsync always` (as `--sqlite-sync full`) is dearer for
//! both.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

use crate::target::Result;

/// How long Redis may take to answer before the target counts as failed to start.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// Start one in `dir`: the process, once it answers `PING`, and its URL.
pub async fn start(dir: &std::path::Path, pin: bool) -> Result<(Child, String)> {
    // A free port, let go for Redis to bind: another process could take it first, in which
    // case Redis exits and the start fails (the row says so; it is not retried).
    let port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let mut command = Command::new("redis-server");
    if pin {
        crate::pin::server_process(&mut command);
    }
    let mut child = command
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .arg("--dir")
        .arg(dir)
        .args(["--save", "", "--protected-mode", "no", "--daemonize", "no"])
        .args(["--appendonly", "yes", "--appendfsync", "everysec"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("cannot run redis-server (scripts/setup.sh --test installs it): {e}")
        })?;
    let deadline = Instant::now() + READY_WITHIN;
    while !answers(port).await {
        if let Some(status) = child.try_wait()? {
            return Err(format!("redis-server exited: {status}").into());
        }
        if Instant::now() > deadline {
            return Err("redis-server did not answer in time".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok((child, format!("redis://127.0.0.1:{port}/")))
}

/// Whether a Redis on `port` answers `PING` (in RESP by hand: one line each way).
async fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if stream.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut reply)).await,
        Ok(Ok(_)) if &reply == b"+PONG\r\n"
    )
}
