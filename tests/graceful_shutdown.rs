//! Runs `examples/graceful_shutdown.rs` (axum on tokio, `Shutdown` on SIGTERM/SIGINT, a
//! tracker, the report at exit) as a child process, with real requests over TCP and a real
//! SIGTERM from `kill`:
//!
//! - a short request completes with 200, a long one is cancelled at the grace deadline with
//!   the reason in its 503 response;
//! - new connections are refused once the signal came;
//! - the process exits within the grace period plus 200 ms of the signal;
//! - a second SIGTERM exits at once.
#![cfg(all(unix, feature = "signal"))]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The example's grace period in these tests.
const GRACE: Duration = Duration::from_millis(1000);
/// How long a line of the example's output may take to come (a loaded machine).
const PATIENCE: Duration = Duration::from_secs(20);

/// The running example: its process, its address and its output, line by line.
struct Server {
    child: Child,
    addr: SocketAddr,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(common::example("graceful_shutdown"))
            .arg(GRACE.as_millis().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the example");
        let lines = forward(child.stdout.take().unwrap());
        let mut server = Server {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
            lines,
            seen: Vec::new(),
        };
        let line = server.expect_line("listening on ");
        server.addr = line["listening on ".len()..].parse().unwrap();
        server
    }

    /// Waits for the next line that starts with `prefix`, and returns it.
    fn expect_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => panic!("no line starting with {prefix:?}; saw {:?}", self.seen),
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for the process to exit; returns when it did.
    fn wait_exit(&mut self) -> Instant {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status}");
                return Instant::now();
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// `GET path` on a new connection, on its own thread: the status code and the body.
fn get(addr: SocketAddr, path: &str) -> JoinHandle<(u16, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    })
}

#[test]
fn sigterm_drains_short_work_cancels_long_work_at_the_grace_deadline_and_exits() {
    let mut server = Server::start();
    let short = get(server.addr, "/work/300");
    server.expect_line("started /work/300");
    let long = get(server.addr, "/work/60000");
    server.expect_line("started /work/60000");

    server.signal("TERM");
    let signalled = Instant::now();

    // New connections are refused once the listener is closed.
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        match TcpStream::connect_timeout(&server.addr, Duration::from_millis(100)) {
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => break,
            _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            outcome => panic!("a new connection was not refused: {outcome:?}"),
        }
    }

    let (status, body) = short.join().unwrap();
    assert_eq!((status, body.as_str()), (200, "done after 300 ms\n"));

    let (status, body) = long.join().unwrap();
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "cancelled: cancellation requested by token shutdown-forced: grace period of 1s elapsed\n"
    );
    let answered = signalled.elapsed();
    assert!(
        answered >= GRACE,
        "cancelled before the grace period ended: {answered:?}"
    );

    let exited = server.wait_exit();
    let took = exited - signalled;
    assert!(
        took <= GRACE + Duration::from_millis(200),
        "exited {took:?} after the signal"
    );
    let report = server.expect_line("shutdown ");
    assert!(report.starts_with("shutdown forced after 1."), "{report}");
    assert!(
        report.ends_with("with 1 task left: grace period of 1s elapsed"),
        "{report}"
    );
}

#[test]
fn sigterm_with_nothing_in_flight_drains_at_once() {
    let mut server = Server::start();
    server.signal("TERM");
    let signalled = Instant::now();
    let exited = server.wait_exit();
    assert!(exited - signalled < GRACE, "{:?}", exited - signalled);
    let report = server.expect_line("shutdown ");
    assert!(report.starts_with("shutdown drained in "), "{report}");
}

#[test]
fn a_second_sigterm_exits_at_once() {
    let mut server = Server::start();
    let long = get(server.addr, "/work/60000");
    server.expect_line("started /work/60000");
    server.signal("TERM");
    thread::sleep(Duration::from_millis(100));
    server.signal("TERM");
    let second = Instant::now();
    let exited = server.wait_exit();
    assert!(
        exited - second < Duration::from_millis(500),
        "the second signal took {:?}",
        exited - second
    );
    let (status, body) = long.join().unwrap();
    assert_eq!(status, 503);
    assert!(
        body.ends_with("shutdown requested again: SIGTERM\n"),
        "{body}"
    );
    let report = server.expect_line("shutdown ");
    assert!(
        report.ends_with("with 1 task left: shutdown requested again: SIGTERM"),
        "{report}"
    );
}

#[test]
fn sigint_works_the_same_way() {
    let mut server = Server::start();
    let long = get(server.addr, "/work/60000");
    server.expect_line("started /work/60000");
    server.signal("INT");
    let (status, body) = long.join().unwrap();
    assert_eq!(status, 503);
    assert!(body.ends_with("grace period of 1s elapsed\n"), "{body}");
    server.wait_exit();
}
