//! A small HTTP/1.1 test server for the real-network tests of the `http` feature.
//!
//! It listens on `127.0.0.1:0` (a random port), runs one plain OS thread per connection (so it
//! serves tokio and smol clients alike and needs no runtime), and records what a client did to
//! it: every accepted connection, every request (target, connection, time), every socket close
//! (EOF, reset or failed write, with the time it was seen), and every upload with the bytes that
//! arrived. Endpoints:
//!
//! - `/fast`: 200 with [`FAST_BODY`] (`Content-Length`).
//! - `/never`: reads the request, never answers, keeps the socket open until the client closes
//!   it (or the server shuts down).
//! - `/stream`: 200 with chunked transfer encoding, one chunk every ~10 ms until the client goes
//!   away.
//! - `/flaky`: the first `flaky_failures` requests (across connections) get 503 with
//!   `Retry-After: 0` and an empty body, the rest 200 with [`FLAKY_OK_BODY`].
//! - `/upload`: reads a request body (`Content-Length` or chunked) and records it as complete
//!   only if every declared byte (or the terminating chunk) arrives; answers 200 then.
//! - anything else: 404.
//!
//! Every loop is bounded: it ends when the client goes away or when the server is dropped
//! (dropping it sets a shutdown flag, wakes the accept loop and joins every thread).

// Each test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use cancel_token::http::{CancelBody, CancelError};
use cancel_token::CancelToken;

/// The exact body of `/fast`.
pub const FAST_BODY: &[u8] =
    b"fast: 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\n";
/// The exact body of a successful `/flaky`.
pub const FLAKY_OK_BODY: &[u8] = b"flaky: ok at last\n";
/// Interval between two `/stream` chunks.
pub const STREAM_INTERVAL: Duration = Duration::from_millis(10);
/// How often a blocked server thread looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(20);
/// Hard cap on the chunks of one `/stream` response (10 minutes' worth): a safety net only.
const STREAM_MAX_CHUNKS: usize = 60_000;
/// Upper bound on a request head, so a broken client cannot make the server buffer forever.
const MAX_HEAD: usize = 64 * 1024;

/// The `/stream` chunk number `i` (its payload, without chunk framing).
pub fn stream_chunk(i: usize) -> String {
    format!("stream chunk {i:06}\n")
}

/// How the server saw a connection end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseKind {
    /// The client closed its side (read returned 0).
    Eof,
    /// The client reset the connection.
    Reset,
    /// A write failed (broken pipe or reset).
    WriteFailed,
    /// The server was shutting down; not the client's doing.
    Shutdown,
    /// A malformed request; the server closed the connection.
    BadRequest,
}

/// One accepted connection.
#[derive(Clone, Debug)]
pub struct ConnRecord {
    pub id: usize,
    pub accepted_at: Instant,
    /// When the server saw the socket close, and how.
    pub closed: Option<(Instant, CloseKind)>,
}

/// One request head the server read.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub conn: usize,
    pub method: String,
    /// The request target as sent, e.g. `/never?id=3`.
    pub target: String,
    /// The path alone, e.g. `/never`.
    pub path: String,
    pub at: Instant,
}

/// One request to `/upload`.
#[derive(Clone, Debug)]
pub struct UploadRecord {
    pub conn: usize,
    pub target: String,
    /// The declared `Content-Length`; `None` for a chunked body.
    pub declared: Option<u64>,
    /// Body bytes received so far (updated while the upload runs).
    pub received: u64,
    /// Whether every declared byte (or the terminating chunk) arrived.
    pub complete: bool,
    /// Whether the server stopped reading this body (complete or not).
    pub finished: bool,
}

#[derive(Debug, Default)]
struct Log {
    conns: Vec<ConnRecord>,
    requests: Vec<RequestRecord>,
    uploads: Vec<UploadRecord>,
}

#[derive(Debug)]
struct Shared {
    log: Mutex<Log>,
    shutdown: AtomicBool,
    flaky_failures: usize,
    flaky_seen: AtomicUsize,
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, Log> {
        // A panicking server thread must not hide the records from the test.
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    fn record_close(&self, conn: usize, kind: CloseKind) {
        let mut log = self.log();
        let record = &mut log.conns[conn];
        if record.closed.is_none() {
            record.closed = Some((Instant::now(), kind));
        }
    }
}

/// The test server; dropping it stops it and joins its threads.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TestServer {
    /// Starts a server whose `/flaky` fails 3 times before it succeeds.
    pub fn start() -> TestServer {
        TestServer::with_flaky_failures(3)
    }

    /// Starts a server whose `/flaky` fails `failures` times before it succeeds.
    pub fn with_flaky_failures(failures: usize) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let shared = Arc::new(Shared {
            log: Mutex::new(Log::default()),
            shutdown: AtomicBool::new(false),
            flaky_failures: failures,
            flaky_seen: AtomicUsize::new(0),
        });
        let workers = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let shared = Arc::clone(&shared);
            let workers = Arc::clone(&workers);
            thread::Builder::new()
                .name("test-http-accept".into())
                .spawn(move || accept_loop(listener, shared, workers))
                .unwrap()
        };
        TestServer {
            addr,
            shared,
            accept: Some(accept),
            workers,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.shared.log().conns.len()
    }

    /// Connections accepted and not yet seen closed.
    pub fn open_connections(&self) -> usize {
        self.shared
            .log()
            .conns
            .iter()
            .filter(|conn| conn.closed.is_none())
            .count()
    }

    pub fn conns(&self) -> Vec<ConnRecord> {
        self.shared.log().conns.clone()
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.log().requests.clone()
    }

    /// Requests seen so far, all paths.
    pub fn request_count(&self) -> usize {
        self.shared.log().requests.len()
    }

    /// Requests seen so far whose path is `path`.
    pub fn requests_to(&self, path: &str) -> usize {
        self.shared
            .log()
            .requests
            .iter()
            .filter(|request| request.path == path)
            .count()
    }

    /// The first request whose target is exactly `target`.
    pub fn request(&self, target: &str) -> Option<RequestRecord> {
        self.shared
            .log()
            .requests
            .iter()
            .find(|request| request.target == target)
            .cloned()
    }

    /// When and how connection `conn` was seen closed.
    pub fn closed(&self, conn: usize) -> Option<(Instant, CloseKind)> {
        self.shared.log().conns.get(conn).and_then(|c| c.closed)
    }

    /// The connection that carried the request with this exact target, once it is seen closed.
    pub fn closed_for(&self, target: &str) -> Option<(Instant, CloseKind)> {
        let conn = self.request(target)?.conn;
        self.closed(conn)
    }

    pub fn uploads(&self) -> Vec<UploadRecord> {
        self.shared.log().uploads.clone()
    }

    pub fn upload(&self, target: &str) -> Option<UploadRecord> {
        self.shared
            .log()
            .uploads
            .iter()
            .find(|upload| upload.target == target)
            .cloned()
    }

    /// Uploads recorded as complete so far.
    pub fn completed_uploads(&self) -> usize {
        self.shared
            .log()
            .uploads
            .iter()
            .filter(|upload| upload.complete)
            .count()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        // Wake the blocking accept; the loop sees the flag and does not record this one.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let workers = std::mem::take(&mut *self.workers.lock().unwrap());
        for worker in workers {
            let _ = worker.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    for stream in listener.incoming() {
        if shared.stopping() {
            return;
        }
        let Ok(stream) = stream else { continue };
        let id = {
            let mut log = shared.log();
            let id = log.conns.len();
            log.conns.push(ConnRecord {
                id,
                accepted_at: Instant::now(),
                closed: None,
            });
            id
        };
        let worker = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("test-http-conn-{id}"))
                .spawn(move || {
                    let mut conn = Conn {
                        id,
                        stream,
                        buf: Vec::new(),
                        shared: &shared,
                    };
                    let kind = conn.serve();
                    let _ = conn.stream.shutdown(Shutdown::Both);
                    shared.record_close(id, kind);
                })
                .unwrap()
        };
        let mut workers = workers.lock().unwrap();
        // Keep the list short: forget the threads that are done.
        workers.retain(|worker| !worker.is_finished());
        workers.push(worker);
    }
}

/// Why a connection loop stopped.
type Closed = CloseKind;

struct Conn<'a> {
    id: usize,
    stream: TcpStream,
    /// Bytes read from the socket and not consumed yet.
    buf: Vec<u8>,
    shared: &'a Shared,
}

struct Head {
    method: String,
    target: String,
    path: String,
    content_length: Option<u64>,
    chunked: bool,
}

enum Wait {
    /// Some bytes were appended to the buffer.
    Data,
    /// Nothing arrived within the wait.
    Idle,
}

impl Conn<'_> {
    /// Serves requests until the connection ends; returns how it ended.
    fn serve(&mut self) -> Closed {
        self.stream.set_nodelay(true).ok();
        self.stream
            .set_write_timeout(Some(Duration::from_secs(1)))
            .ok();
        loop {
            let head = match self.read_head() {
                Ok(head) => head,
                Err(kind) => return kind,
            };
            {
                let mut log = self.shared.log();
                log.requests.push(RequestRecord {
                    conn: self.id,
                    method: head.method.clone(),
                    target: head.target.clone(),
                    path: head.path.clone(),
                    at: Instant::now(),
                });
            }
            let result = match head.path.as_str() {
                "/fast" => self
                    .skip_body(&head)
                    .and_then(|()| self.respond("200 OK", &[], FAST_BODY)),
                "/never" => Err(self.never()),
                "/stream" => self.skip_body(&head).and_then(|()| self.stream_forever()),
                "/flaky" => self.skip_body(&head).and_then(|()| {
                    let seen = self.shared.flaky_seen.fetch_add(1, Ordering::SeqCst);
                    if seen < self.shared.flaky_failures {
                        self.respond("503 Service Unavailable", &["Retry-After: 0"], b"")
                    } else {
                        self.respond("200 OK", &[], FLAKY_OK_BODY)
                    }
                }),
                "/upload" => self.upload(&head),
                _ => self
                    .skip_body(&head)
                    .and_then(|()| self.respond("404 Not Found", &[], b"")),
            };
            if let Err(kind) = result {
                return kind;
            }
        }
    }

    /// Waits up to `timeout` for bytes from the client and appends them to the buffer.
    fn wait_data(&mut self, timeout: Duration) -> Result<Wait, Closed> {
        if self.shared.stopping() {
            return Err(CloseKind::Shutdown);
        }
        self.stream.set_read_timeout(Some(timeout)).ok();
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(CloseKind::Eof),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(Wait::Data)
            }
            Err(err) => match err.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => Ok(Wait::Idle),
                _ => Err(CloseKind::Reset),
            },
        }
    }

    /// Reads more bytes, blocking until some arrive, the client goes away or shutdown.
    fn fill(&mut self) -> Result<(), Closed> {
        loop {
            if let Wait::Data = self.wait_data(POLL)? {
                return Ok(());
            }
        }
    }

    fn read_head(&mut self) -> Result<Head, Closed> {
        let end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(CloseKind::BadRequest);
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let mut parts = lines.next().unwrap_or("").split(' ');
        let method = parts.next().unwrap_or("").to_owned();
        let target = parts.next().ok_or(CloseKind::BadRequest)?.to_owned();
        let path = target.split('?').next().unwrap_or("").to_owned();
        let mut content_length = None;
        let mut chunked = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = Some(value.parse().map_err(|_| CloseKind::BadRequest)?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            }
        }
        Ok(Head {
            method,
            target,
            path,
            content_length,
            chunked,
        })
    }

    /// Reads a request body, calling `progress` with the bytes received so far: `Ok` once it
    /// arrived complete (every declared byte, or the terminating chunk), `Err` if the client
    /// went away first.
    fn read_body(&mut self, head: &Head, mut progress: impl FnMut(u64)) -> Result<(), Closed> {
        if head.chunked {
            let mut received = 0;
            loop {
                let line_end = loop {
                    if let Some(pos) = find(&self.buf, b"\r\n") {
                        break pos;
                    }
                    self.fill()?;
                };
                let line = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                self.buf.drain(..line_end + 2);
                let size_text = line.split(';').next().unwrap_or("").trim();
                let size =
                    usize::from_str_radix(size_text, 16).map_err(|_| CloseKind::BadRequest)?;
                if size == 0 {
                    // Trailers (none expected), then the empty line.
                    loop {
                        let end = loop {
                            if let Some(pos) = find(&self.buf, b"\r\n") {
                                break pos;
                            }
                            self.fill()?;
                        };
                        self.buf.drain(..end + 2);
                        if end == 0 {
                            return Ok(());
                        }
                    }
                }
                while self.buf.len() < size + 2 {
                    self.fill()?;
                }
                if &self.buf[size..size + 2] != b"\r\n" {
                    return Err(CloseKind::BadRequest);
                }
                self.buf.drain(..size + 2);
                received += size as u64;
                progress(received);
            }
        } else {
            let declared = head.content_length.unwrap_or(0);
            let mut received: u64 = 0;
            loop {
                let take = (declared - received).min(self.buf.len() as u64) as usize;
                self.buf.drain(..take);
                received += take as u64;
                progress(received);
                if received == declared {
                    return Ok(());
                }
                self.fill()?;
            }
        }
    }

    fn skip_body(&mut self, head: &Head) -> Result<(), Closed> {
        self.read_body(head, |_| {})
    }

    fn upload(&mut self, head: &Head) -> Result<(), Closed> {
        let index = {
            let mut log = self.shared.log();
            log.uploads.push(UploadRecord {
                conn: self.id,
                target: head.target.clone(),
                declared: if head.chunked {
                    None
                } else {
                    head.content_length
                },
                received: 0,
                complete: false,
                finished: false,
            });
            log.uploads.len() - 1
        };
        let shared = self.shared;
        let result = self.read_body(head, |received| {
            shared.log().uploads[index].received = received;
        });
        {
            let mut log = shared.log();
            let upload = &mut log.uploads[index];
            upload.complete = result.is_ok();
            upload.finished = true;
        }
        result?;
        let received = shared.log().uploads[index].received;
        self.respond("200 OK", &[], format!("received {received}\n").as_bytes())
    }

    /// `/never`: no answer; waits for the client to go away. Always returns how it ended.
    fn never(&mut self) -> Closed {
        loop {
            match self.wait_data(POLL) {
                // Whatever the client sends now is ignored.
                Ok(_) => self.buf.clear(),
                Err(kind) => return kind,
            }
        }
    }

    /// `/stream`: a chunk every [`STREAM_INTERVAL`] until the client goes away. Waiting for
    /// the next tick is a read with a timeout, so a close is seen at once.
    fn stream_forever(&mut self) -> Result<(), Closed> {
        self.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
        )?;
        for i in 0..STREAM_MAX_CHUNKS {
            let chunk = stream_chunk(i);
            let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
            self.write(framed.as_bytes())?;
            let next = Instant::now() + STREAM_INTERVAL;
            while let Some(left) = next.checked_duration_since(Instant::now()) {
                if left.is_zero() {
                    break;
                }
                // The client sends nothing while it reads a response; anything it does send
                // (a pipelined request) is kept for later.
                self.wait_data(left)?;
            }
        }
        self.write(b"0\r\n\r\n")
    }

    fn respond(&mut self, status: &str, headers: &[&str], body: &[u8]) -> Result<(), Closed> {
        let mut response = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
        for header in headers {
            response.push_str(header);
            response.push_str("\r\n");
        }
        response.push_str("\r\n");
        let mut bytes = response.into_bytes();
        bytes.extend_from_slice(body);
        self.write(&bytes)
    }

    fn write(&mut self, mut bytes: &[u8]) -> Result<(), Closed> {
        while !bytes.is_empty() {
            if self.shared.stopping() {
                return Err(CloseKind::Shutdown);
            }
            match self.stream.write(bytes) {
                Ok(0) => return Err(CloseKind::WriteFailed),
                Ok(n) => bytes = &bytes[n..],
                Err(err) => match err.kind() {
                    io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::Interrupted => {}
                    _ => return Err(CloseKind::WriteFailed),
                },
            }
        }
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A port on 127.0.0.1 with nothing listening: bound, then released.
pub fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

/// Polls `condition` every 2 ms until it holds or `limit` passes; returns whether it held.
/// Uses smol's timer, which runs on its own thread, so it works under any executor.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return condition();
        }
        smol::Timer::after(Duration::from_millis(2)).await;
    }
}

/// Runs `fut`, panicking if it takes longer than `limit`: a bug fails the test instead of
/// hanging it. Works under any executor (smol's timer thread).
pub async fn bounded<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    futures_lite::future::or(fut, expire(limit, what)).await
}

async fn expire<T>(limit: Duration, what: &str) -> T {
    smol::Timer::after(limit).await;
    panic!("{what}: still running after {limit:?}");
}

/// Generous bound that only turns a hang into a failure.
pub const LIMIT: Duration = Duration::from_secs(60);

/// How soon after a trigger the server must see the request's socket close: the bound the
/// http feature promises (measured latencies are a few milliseconds).
pub const CLOSE_WITHIN: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------------------------
// Waiting for what the server saw, checking it, and the steps that the reqwest and the hyper
// tests share. Each wait is bounded by [`LIMIT`] and fails the test when the awaited thing
// never happens; a step that needs a timer takes the test's own (tokio's or smol's).

impl TestServer {
    /// Waits until the server sees the connection that carried `target` close; returns how
    /// long after `since` that was (zero if before), and how it closed.
    pub async fn wait_closed(&self, target: &str, since: Instant) -> (Duration, CloseKind) {
        assert!(
            eventually(LIMIT, || self.closed_for(target).is_some()).await,
            "{target}: the server never saw the socket close"
        );
        let (closed_at, kind) = self.closed_for(target).unwrap();
        (closed_at.saturating_duration_since(since), kind)
    }

    /// Waits until at most `n` connections are open; fails the test, saying they were still
    /// open `when`, if more stay open. Returns the number open then.
    pub async fn wait_open_at_most(&self, n: usize, when: &str) -> usize {
        let settled = eventually(LIMIT, || self.open_connections() <= n).await;
        let open = self.open_connections();
        assert!(settled, "{open} connections still open {when}");
        open
    }

    /// Waits until at least `bytes` of the upload to `target` have arrived.
    pub async fn wait_upload_received(&self, target: &str, bytes: u64) {
        assert!(
            eventually(LIMIT, || self
                .upload(target)
                .is_some_and(|u| u.received >= bytes))
            .await,
            "{target}: the upload never started"
        );
    }

    /// Waits until the server stopped reading the upload to `target` (complete or not);
    /// returns its record.
    pub async fn wait_upload_finished(&self, target: &str) -> UploadRecord {
        assert!(
            eventually(LIMIT, || self.upload(target).is_some_and(|u| u.finished)).await,
            "{target}: the server never stopped reading"
        );
        self.upload(target).unwrap()
    }

    /// Awaits `adapter` (a request adapter that `target` was sent through) without dropping
    /// it, then checks that the connection that carried `target` closes while the completed
    /// adapter still exists: the request inside was dropped when the adapter completed, not
    /// when it is dropped. Returns the adapter's output and when it came.
    pub async fn await_then_closed<F: Future>(
        &self,
        target: &str,
        adapter: F,
    ) -> (F::Output, Instant) {
        let mut adapter = std::pin::pin!(adapter);
        let output = std::future::poll_fn(|cx| adapter.as_mut().poll(cx)).await;
        let returned_at = Instant::now();
        let closed = eventually(LIMIT, || self.closed_for(target).is_some()).await;
        assert!(
            closed,
            "{target}: the socket stayed open while the adapter lived"
        );
        (output, returned_at)
    }

    /// Runs `upload` (a request whose body goes to `target`) to its end, triggering `token`
    /// with `reason` once `bytes` of the body have arrived. Returns the output of `upload`,
    /// when it came and when the trigger came.
    pub async fn trigger_mid_upload<T>(
        &self,
        target: &str,
        bytes: u64,
        token: &CancelToken,
        reason: &'static str,
        upload: impl Future<Output = T>,
    ) -> (T, Instant, Instant) {
        let upload = async {
            let output = upload.await;
            (output, Instant::now())
        };
        let trigger = async {
            self.wait_upload_received(target, bytes).await;
            let at = Instant::now();
            token.trigger_with(reason);
            at
        };
        let ((output, returned_at), triggered_at) =
            bounded(LIMIT, "upload", futures_lite::future::zip(upload, trigger)).await;
        (output, returned_at, triggered_at)
    }

    /// Checks what the server saw of an upload to `target` cut by a trigger at `triggered_at`:
    /// it stopped reading without recording the upload complete, and saw the socket close
    /// within 2 s. Prints the latencies (`send` returned at `returned_at`) under `label`;
    /// returns the upload's record.
    pub async fn assert_cut_upload(
        &self,
        label: &str,
        target: &str,
        triggered_at: Instant,
        returned_at: Instant,
    ) -> UploadRecord {
        let upload = self.wait_upload_finished(target).await;
        assert!(
            !upload.complete,
            "{target}: a cut upload was recorded complete: {upload:?}"
        );
        let (close, _) = self.wait_closed(target, triggered_at).await;
        eprintln!(
            "{label} cut upload ({target}): {} bytes arrived; send returned after {:.2} ms, server saw the close after {:.2} ms",
            upload.received,
            ms(returned_at.saturating_duration_since(triggered_at)),
            ms(close)
        );
        assert!(close < CLOSE_WITHIN, "{target}: {close:?}");
        upload
    }

    /// Checks that the upload to `target` was recorded complete, with `declared` as its
    /// `Content-Length` (`None`: chunked).
    pub fn assert_upload_complete(&self, target: &str, declared: Option<u64>) {
        let upload = self.upload(target).unwrap();
        assert!(upload.complete, "{upload:?}");
        assert_eq!(upload.declared, declared, "{target}");
    }

    /// The `retry` cancelled mid back-off scenario, on a server whose `/flaky` always fails:
    /// `retrying` (a `retry` with a 10 s back-off) is triggered 50 ms after its first attempt
    /// reached the server, and must return the cancellation at once, with no second attempt
    /// sent. `sleep` is the test's own timer; the latencies are printed under `label`.
    pub async fn assert_retry_cancelled_mid_back_off<T: fmt::Debug, E: fmt::Debug, S: Future>(
        &self,
        label: &str,
        token: &CancelToken,
        retrying: impl Future<Output = Result<T, CancelError<E>>>,
        sleep: impl Fn(Duration) -> S,
    ) {
        let started = Instant::now();
        let retrying = async {
            let result = retrying.await;
            (result, Instant::now())
        };
        let trigger = async {
            assert!(eventually(LIMIT, || self.requests_to("/flaky") == 1).await);
            sleep(Duration::from_millis(50)).await;
            let at = Instant::now();
            token.trigger_with("gave up");
            at
        };
        let ((result, returned_at), triggered_at) =
            bounded(LIMIT, "retry", futures_lite::future::zip(retrying, trigger)).await;
        let err = result.unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
        assert_eq!(err.reason().unwrap().message(), Some("gave up"));
        let returned = returned_at.saturating_duration_since(triggered_at);
        let total = returned_at.saturating_duration_since(started);
        eprintln!(
            "{label} retry: returned {:.2} ms after the trigger ({:.2} ms in all) with a 10 s back-off",
            ms(returned),
            ms(total)
        );
        assert!(returned < Duration::from_secs(1), "{returned:?}");
        assert!(total < Duration::from_secs(5), "{total:?}");
        sleep(Duration::from_millis(200)).await;
        assert_eq!(self.requests_to("/flaky"), 1, "a second attempt was sent");
    }
}

/// One round of a random-cancellation loop: runs `request` while `token` is triggered after
/// `delay` (at once if zero), slept with the test's own timer `sleep`; returns what `request`
/// returned.
pub async fn race_trigger<T, S: Future>(
    request: impl Future<Output = T>,
    token: &CancelToken,
    delay: Duration,
    sleep: impl FnOnce(Duration) -> S,
) -> T {
    let trigger = async {
        if !delay.is_zero() {
            sleep(delay).await;
        }
        token.trigger();
    };
    let (output, ()) = bounded(
        LIMIT,
        "random round",
        futures_lite::future::zip(request, trigger),
    )
    .await;
    output
}

/// Whether `received` is the start of the concatenated `/stream` chunks: no garbled, missing
/// or stale bytes.
pub fn stream_prefix_ok(received: &[u8]) -> bool {
    let mut expected = Vec::new();
    let mut i = 0;
    while expected.len() < received.len() {
        expected.extend_from_slice(stream_chunk(i).as_bytes());
        i += 1;
    }
    expected.starts_with(received)
}

/// A duration in milliseconds, for the latencies the tests print.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------------------------
// Client-side helpers shared by the tests: slow request bodies and a body that records what it
// yielded.

/// A request body of `frames` frames of `frame_len` bytes (`b'u'`), one every `interval`, timed
/// by smol's timer so that it runs under any executor. With `exact`, its size hint is exact
/// (the client sends `Content-Length`); otherwise unknown (the client sends it chunked).
#[derive(Debug)]
pub struct SlowBody {
    frames_left: usize,
    frame_len: usize,
    interval: Duration,
    exact: bool,
    timer: Option<smol::Timer>,
}

impl SlowBody {
    pub fn new(frames: usize, frame_len: usize, interval: Duration, exact: bool) -> SlowBody {
        SlowBody {
            frames_left: frames,
            frame_len,
            interval,
            exact,
            timer: None,
        }
    }
}

impl hyper::body::Body for SlowBody {
    type Data = hyper::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.frames_left == 0 {
            return std::task::Poll::Ready(None);
        }
        let interval = this.interval;
        let timer = this
            .timer
            .get_or_insert_with(|| smol::Timer::after(interval));
        std::task::ready!(std::pin::Pin::new(timer).poll(cx));
        this.timer = None;
        this.frames_left -= 1;
        let data = hyper::body::Bytes::from(vec![b'u'; this.frame_len]);
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.frames_left == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        if self.exact {
            hyper::body::SizeHint::with_exact((self.frames_left * self.frame_len) as u64)
        } else {
            hyper::body::SizeHint::default()
        }
    }
}

/// The body of an upload that a trigger cuts: 200 KiB, a KiB every 10 ms (about 2 s in all),
/// under `token`, [`Watch`]ed. With `exact`, the client sends it with `Content-Length`;
/// otherwise chunked.
pub fn cut_upload_body(token: &CancelToken, exact: bool) -> (Watch<CancelBody<SlowBody>>, Events) {
    let slow = SlowBody::new(200, 1024, Duration::from_millis(10), exact);
    Watch::new(CancelBody::new(token.clone(), slow))
}

/// What a [`Watch`]ed body yielded to its reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyEvent {
    Data(usize),
    Error(String),
    End,
}

/// Checks what a [`Watch`]ed body yielded to a reader that was not stopped: it ended with
/// the error of a trigger whose reason contains `message`, never with a clean end.
pub fn assert_stopped_by_error(events: &[BodyEvent], message: &str) {
    assert!(!events.contains(&BodyEvent::End), "clean end: {events:?}");
    assert!(
        matches!(events.last(), Some(BodyEvent::Error(error)) if error.contains(message)),
        "{events:?}"
    );
}

/// A body that passes another through and records every frame, error and end it yields.
#[derive(Debug)]
pub struct Watch<B> {
    inner: B,
    events: Events,
}

/// The events a [`Watch`]ed body recorded, shared with the test.
pub type Events = Arc<Mutex<Vec<BodyEvent>>>;

impl<B> Watch<B> {
    pub fn new(inner: B) -> (Watch<B>, Events) {
        let events = Arc::new(Mutex::new(Vec::new()));
        (
            Watch {
                inner,
                events: Arc::clone(&events),
            },
            events,
        )
    }
}

impl<B> hyper::body::Body for Watch<B>
where
    B: hyper::body::Body + Unpin,
    B::Error: std::fmt::Display,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use hyper::body::Buf;
        let this = self.get_mut();
        let polled = std::task::ready!(std::pin::Pin::new(&mut this.inner).poll_frame(cx));
        let event = match &polled {
            Some(Ok(frame)) => BodyEvent::Data(frame.data_ref().map_or(0, |d| d.remaining())),
            Some(Err(err)) => BodyEvent::Error(err.to_string()),
            None => BodyEvent::End,
        };
        this.events.lock().unwrap().push(event);
        std::task::Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
