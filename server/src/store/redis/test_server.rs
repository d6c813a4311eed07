//! A real `redis-server` for a test: started on a free port of 127.0.0.1 with nothing saved to
//! disk, ready (it answered) when [`RedisServer::start`] returns, killed when dropped. Each test
//! starts its own (it takes milliseconds), so tests running in parallel share nothing.
//!
//! `redis-server` must be on PATH (`scripts/setup.sh --test` installs Debian's): without it
//! the test fails, saying so — it is never skipped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer before the test gives up on it.
const READY_WITHIN: Duration = Duration::from_secs(10);

pub struct RedisServer {
    child: Child,
    port: u16,
    /// Its working dir (nothing is saved there, but Redis wants one); removed after it.
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Start one, and wait until it answers. Panics (failing the test) if it cannot.
    pub fn start() -> Self {
        let mut last_failure = String::new();
        // The free port is found by binding port 0 and letting it go: another process may take
        // it before Redis binds it. Redis then exits (or another server answers there, which
        // `answers_as` tells apart), and a new port is tried.
        for _ in 0..5 {
            match Self::try_start() {
                Ok(server) => return server,
                Err(why) => last_failure = why,
            }
        }
        panic!("could not start a redis-server for the test: {last_failure}");
    }

    fn try_start() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let port = free_port()?;
        let log = dir.path().join("redis.log");
        let spawned = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            // Tests only: no protected mode to trip on, no background saving.
            .args(["--protected-mode", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not on PATH; the Redis store's tests need a real one: \
                 run scripts/setup.sh --test (it installs Debian's redis-server)"
            ),
            Err(e) => panic!("cannot run redis-server: {e}"),
        };
        let mut server = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!(
                    "redis-server on port {port} exited ({status}):\n{tail}"
                ));
            }
            if let Some(pid) = answering_pid(port) {
                if pid == server.child.id() {
                    return Ok(server);
                }
                // Someone else's server took the port first; ours will exit. Try another.
                return Err(format!("port {port} is another redis-server's (pid {pid})"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server on port {port} did not answer in time"
                ));
            }
            // Polling until it listens: each try is a failed connect, so keep them cheap.
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A plain connection, for a test to look at (or spoil) what a store wrote.
    pub async fn connection(&self) -> ::redis::aio::MultiplexedConnection {
        ::redis::Client::open(self.url())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connected")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

/// The process id of the Redis answering on `port`, if one answers yet (`INFO server`, in
/// RESP by hand: this runs before any client would have something to connect to).
fn answering_pid(port: u16) -> Option<u32> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    // The reply is one bulk string; its `process_id:` line is all that is wanted.
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        if let Some((_, rest)) = text.split_once("\r\nprocess_id:") {
            // Only once the whole line is in.
            if let Some((pid, _)) = rest.split_once("\r\n") {
                return pid.trim().parse().ok();
            }
        }
        // A server still loading answers `-LOADING`; not ready yet.
        if text.starts_with('-') {
            return None;
        }
    }
}
