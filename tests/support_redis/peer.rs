//! Peers: copies of the test binary that run one ignored test as a second process, told
//! their role and the server's URL through the environment, and the lines they print for the
//! test that spawned them.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::lock;

/// The environment variable that tells a peer which role to play; a peer's test returns at
/// once without it, so that `cargo test -- --ignored` runs it harmlessly.
pub const PEER_ROLE: &str = "CANCEL_TOKEN_REDIS_PEER";
/// The environment variable that carries the server's URL to a peer.
pub const PEER_URL: &str = "CANCEL_TOKEN_REDIS_URL";

/// What a peer prints before each line meant for the test that spawned it (libtest prints
/// lines of its own).
pub const PEER_PREFIX: &str = "peer: ";

/// Another process: this test binary, running only the ignored test `test` with
/// `PEER_ROLE=role` and `PEER_URL=url`. It is killed when dropped.
#[derive(Debug)]
pub struct Peer {
    name: String,
    child: Child,
    /// Every line of its stdout that holds [`PEER_PREFIX`], from after it.
    lines: mpsc::Receiver<String>,
    /// Every line of its stdout, for failure messages.
    output: Arc<Mutex<Vec<String>>>,
}

impl Peer {
    pub fn spawn(test: &str, role: &str, url: &str) -> Peer {
        let binary = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(binary)
            .args([
                "--exact",
                test,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(PEER_ROLE, role)
            .env(PEER_URL, url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn a peer");
        let stdout = child.stdout.take().expect("the peer's stdout");
        let (tx, lines) = mpsc::channel();
        let output = Arc::new(Mutex::new(Vec::new()));
        let all = Arc::clone(&output);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                lock(&all).push(line.clone());
                // libtest prints `test peer ... ` with no line break before the test's
                // first line: the prefix may come after it.
                if let Some((_, line)) = line.split_once(PEER_PREFIX) {
                    if tx.send(line.to_owned()).is_err() {
                        return;
                    }
                }
            }
        });
        Peer {
            name: format!("{test} ({role})"),
            child,
            lines,
            output,
        }
    }

    /// The next line the peer printed with [`PEER_PREFIX`], within `limit`.
    ///
    /// # Panics
    ///
    /// When none comes within `limit` or the peer exits first (with its output).
    pub fn next_line(&self, limit: Duration) -> String {
        match self.lines.recv_timeout(limit) {
            Ok(line) => line,
            Err(why) => panic!(
                "peer {} printed no line within {limit:?} ({why}); its output:\n{}",
                self.name,
                self.output()
            ),
        }
    }

    /// Everything it printed on stdout so far.
    fn output(&self) -> String {
        lock(&self.output).join("\n")
    }

    /// The rest of the next line, which must start with `prefix`.
    pub fn expect(&self, prefix: &str, limit: Duration) -> String {
        let line = self.next_line(limit);
        match line.strip_prefix(prefix) {
            Some(rest) => rest.strip_prefix(' ').unwrap_or(rest).to_owned(),
            None => panic!(
                "peer {} printed {line:?}, expected a line starting with {prefix:?}",
                self.name
            ),
        }
    }

    /// Waits until the peer exits, within `limit`, and fails the test unless it succeeded.
    pub fn wait_success(mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the peer") {
                assert!(
                    status.success(),
                    "peer {} failed: {status}; its output:\n{}",
                    self.name,
                    self.output()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "peer {} still runs after {limit:?}",
                self.name
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peer's role and URL, when this process is a peer.
pub fn peer_role() -> Option<(String, String)> {
    let role = std::env::var(PEER_ROLE).ok()?;
    let url = std::env::var(PEER_URL).expect("a peer is given the server's URL");
    Some((role, url))
}

/// Prints a line for the test that spawned this peer.
pub fn tell(line: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{PEER_PREFIX}{line}");
    let _ = out.flush();
}
