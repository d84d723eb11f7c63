//! A real `redis-server` for the tests of the `redis` feature (`tests/redis*.rs`): one per test,
//! on a free port of 127.0.0.1 with no persistence, which a test can kill and restart on the
//! same port; a raw client that publishes hand-made messages and reads what a registry left on
//! the server; and peers (`peer.rs`), copies of the test binary that run one ignored test as
//! a second process.
//!
//! `redis-server` is looked up in `PATH`, then in `/usr/bin` and `/usr/sbin`. When it is
//! missing, `.ci/redis-server` installs Debian's package (as root), so that
//! `cargo test --all-features` works on a fresh machine; a test fails with a message that says
//! how to install it when that fails too.

// Each test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The channel of a registry with the default namespace.
pub const CHANNEL: &str = "cancel-token:cancel";

/// How long a server may take to answer its first `PING`.
const START_LIMIT: Duration = Duration::from_secs(10);

/// The key of the cancelled-id record of `id` in the default namespace.
pub fn record_key(id: &str) -> String {
    format!("cancel-token:cancelled:{id}")
}

mod peer;

// Only the binaries with peers use these.
#[allow(unused_imports)]
pub use peer::{peer_role, tell, Peer};

/// `redis-server`'s path: found, or installed by `.ci/redis-server` (once per test binary).
///
/// # Panics
///
/// When it is missing and cannot be installed, with a message that says how to install it.
pub fn redis_server_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = find_redis_server() {
            return path;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/redis-server");
        eprintln!("redis-server not found: running {}", script.display());
        let outcome = Command::new("bash").arg(&script).status();
        let installed = matches!(&outcome, Ok(status) if status.success());
        match find_redis_server() {
            Some(path) if installed => path,
            _ => panic!(
                "the tests of the redis feature need redis-server, which is not in PATH, \
                 /usr/bin or /usr/sbin, and {} could not install it ({outcome:?}); install it \
                 (Debian: `apt-get install redis-server`, as root) or put it in PATH",
                script.display()
            ),
        }
    })
}

fn find_redis_server() -> Option<PathBuf> {
    let in_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("redis-server"));
    in_path
        .chain(["/usr/bin/redis-server", "/usr/sbin/redis-server"].map(PathBuf::from))
        .find(|path| path.is_file())
}

/// A port of 127.0.0.1 that was free a moment ago (bound to port 0, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A `redis-server` process of this test.
///
/// The value [`start`](Self::start) returns owns the server and kills it when dropped; a
/// [`handle`](Self::handle) controls the same server without owning it, for a closure that
/// runs under a watchdog (`common::within`): if the closure hangs, the test's own thread
/// unwinds, drops the owner and so kills the server, which would otherwise outlive the test.
#[derive(Debug)]
pub struct RedisServer {
    shared: Arc<Shared>,
    owner: bool,
}

#[derive(Debug)]
struct Shared {
    port: u16,
    /// The server's working directory (`--dir`) and its log, `redis.log`.
    dir: PathBuf,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When it does not start within 10 s (with its log in the message).
    pub fn start() -> RedisServer {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let binary = redis_server_binary();
        let dir = std::env::temp_dir().join(format!(
            "cancel-token-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).expect("create the server's directory");
        // Another process may take the port between `free_port` and the server's bind: the
        // server then exits at once, and another port is tried.
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn_and_wait(binary, port, &dir) {
                Ok(child) => {
                    return RedisServer {
                        shared: Arc::new(Shared {
                            port,
                            dir,
                            child: Mutex::new(Some(child)),
                        }),
                        owner: true,
                    }
                }
                Err(why) => failures.push(format!("port {port}: {why}")),
            }
        }
        panic!(
            "redis-server did not start: {failures:?}\nlog:\n{}",
            read_log(&dir)
        );
    }

    /// Another handle to the same server that does not kill it when dropped.
    pub fn handle(&self) -> RedisServer {
        RedisServer {
            shared: Arc::clone(&self.shared),
            owner: false,
        }
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.shared.port)
    }

    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// Whether the server process is running (started and not killed).
    pub fn is_running(&self) -> bool {
        lock(&self.shared.child).is_some()
    }

    /// Kills the server with SIGKILL and waits for it to exit: every connection to it is
    /// reset, and nothing it held survives (no persistence).
    pub fn kill(&self) {
        if let Some(mut child) = lock(&self.shared.child).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): its connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a server frozen by [`pause`](Self::pause) (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let guard = lock(&self.shared.child);
        let pid = guard.as_ref().expect("the server runs").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid}: {status}");
    }

    /// Starts the server again on the same port (killing it first if it runs), retrying for a
    /// few seconds while the port cannot be bound yet, and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When it does not start within 10 s.
    pub fn restart(&self) {
        self.kill();
        let deadline = Instant::now() + START_LIMIT;
        loop {
            match spawn_and_wait(redis_server_binary(), self.shared.port, &self.shared.dir) {
                Ok(child) => {
                    *lock(&self.shared.child) = Some(child);
                    return;
                }
                Err(why) if Instant::now() >= deadline => panic!(
                    "redis-server did not restart on port {}: {why}\nlog:\n{}",
                    self.shared.port,
                    self.log()
                ),
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// The server's log, every start of it.
    pub fn log(&self) -> String {
        read_log(&self.shared.dir)
    }

    /// Creates an ACL user `name` (password `pw`) with `rules` (say `"~ok*"`, `"-mget"`) on
    /// top of all channels and all commands, and returns a URL that logs in as it.
    pub fn acl_user(&self, name: &str, rules: &[&str]) -> String {
        let mut setuser = redis::cmd("ACL");
        setuser
            .arg("SETUSER")
            .arg(name)
            .arg("on")
            .arg(">pw")
            .arg("&*")
            .arg("+@all");
        for rule in rules {
            setuser.arg(*rule);
        }
        let () = setuser.query(&mut self.connection()).unwrap();
        format!("redis://{name}:pw@127.0.0.1:{}/", self.port())
    }

    /// A new raw connection to the server.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(5)))
            .unwrap_or_else(|err| panic!("connect a raw client to {}: {err}", self.url()))
    }

    /// Publishes `payload` on `channel` as it is, and returns how many subscribers got it.
    pub fn publish_raw(&self, channel: &str, payload: &[u8]) -> usize {
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query(&mut self.connection())
            .expect("PUBLISH")
    }

    /// The server's `connected_clients` (`INFO clients`), not counting the connection that
    /// asks.
    pub fn connected_clients(&self) -> usize {
        let info: String = redis::cmd("INFO")
            .arg("clients")
            .query(&mut self.connection())
            .expect("INFO clients");
        let count: usize = info
            .lines()
            .find_map(|line| line.strip_prefix("connected_clients:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no connected_clients in INFO clients: {info:?}"));
        count - 1
    }

    /// How many connections subscribe to `channel` (`PUBSUB NUMSUB`).
    pub fn subscribers(&self, channel: &str) -> usize {
        let (_, count): (String, usize) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query(&mut self.connection())
            .expect("PUBSUB NUMSUB");
        count
    }

    /// Blocks until `channel` has at least `count` subscribers, failing the test after `limit`.
    pub fn wait_subscribers(&self, channel: &str, count: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let now = self.subscribers(channel);
            if now >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{channel} has {now} subscribers after {limit:?}, expected {count}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// How many times the server ran `command` (lowercase) since it started, from
    /// `INFO commandstats`: a way to see that a registry's helper thread has done a round
    /// trip (an `MGET` is a record check) without asking the registry.
    pub fn calls(&self, command: &str) -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut self.connection())
            .expect("INFO commandstats");
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |calls| calls.parse().expect("a count of calls"))
    }

    /// Blocks until the server has run `command` at least `count` times, failing the test
    /// after `limit`.
    pub fn wait_calls(&self, command: &str, count: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let now = self.calls(command);
            if now >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server ran {command} {now} times in {limit:?}, expected {count}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The value of `key` (`GET`), `None` when it does not exist.
    pub fn get(&self, key: &str) -> Option<String> {
        redis::cmd("GET")
            .arg(key)
            .query(&mut self.connection())
            .expect("GET")
    }

    /// `EXISTS key`.
    pub fn exists(&self, key: &str) -> bool {
        redis::cmd("EXISTS")
            .arg(key)
            .query(&mut self.connection())
            .expect("EXISTS")
    }

    /// `PTTL key`: milliseconds left, `-1` without a time to live, `-2` when missing.
    pub fn pttl(&self, key: &str) -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query(&mut self.connection())
            .expect("PTTL")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if self.owner {
            self.kill();
            let _ = fs::remove_dir_all(&self.shared.dir);
        }
    }
}

fn read_log(dir: &Path) -> String {
    fs::read_to_string(dir.join("redis.log")).unwrap_or_default()
}

/// Spawns a server on `port` and waits until it answers `PING`, or returns why not (the
/// process is killed then).
fn spawn_and_wait(binary: &Path, port: u16, dir: &Path) -> Result<Child, String> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("redis.log"))
        .map_err(|err| format!("open the log: {err}"))?;
    let mut child = Command::new(binary)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|err| err.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|err| format!("spawn {}: {err}", binary.display()))?;
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("redis-server exited at start: {status}"));
        }
        // A server that answers must be this one, not another that won the port.
        if ping(port) && server_pid(port) == Some(child.id()) {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no +PONG within {START_LIMIT:?}"));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a raw `PING` on `port` is answered with `+PONG`.
fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut answer = [0; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && answer == *b"+PONG\r\n"
}

fn server_pid(port: u16) -> Option<u32> {
    let mut connection = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(1)))
        .ok()?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(&mut connection)
        .ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
}

/// Nanoseconds since the Unix epoch: a time two processes on one machine can compare.
pub fn unix_nanos(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos()
}

/// Locks, ignoring poison: a test that failed while holding the lock leaves the data whole.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
