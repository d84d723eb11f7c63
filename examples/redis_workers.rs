//! Cancelling jobs that run in other processes, by id, through Redis.
//!
//! This binary plays two roles. With no arguments it is the canceller: it starts a
//! `redis-server` of its own on a free port of 127.0.0.1, starts two workers (this binary again,
//! as `redis_workers worker <url> <name>`), cancels one job on each worker and one id that no
//! worker runs, and prints what each worker saw: the reason's kind and message, and how long
//! after the cancel the worker's token fired. Each worker runs three jobs, registered by id in a
//! `RedisRegistry`; a job works in steps and stops at the first step after its token fires.
//!
//! ```text
//! cargo run --example redis_workers --features redis
//! cargo run --example redis_workers --features redis -- worker redis://127.0.0.1:6379/ mine
//! ```
//!
//! The second line runs one worker against a Redis you already have; cancel its jobs from
//! anywhere with `RedisRegistry::cancel("mine-job-1", ..)`, or by hand:
//! `redis-cli PUBLISH cancel-token:cancel "v1 mine-job-1 manual stop%20it"`.
//!
//! `redis-server` must be installed (Debian: `apt-get install redis-server`).
//! `tests/redis_example.rs` runs this example.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cancel_token::redis::RedisRegistry;
use cancel_token::{CancelToken, Reason, ReasonKind};

const WORKERS: [&str; 2] = ["alpha", "beta"];
const JOBS_PER_WORKER: usize = 3;
/// A job is 40 steps of 50 ms: it runs for two seconds unless it is cancelled.
const STEPS: u32 = 40;
const STEP: Duration = Duration::from_millis(50);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => canceller(),
        [role, url, name] if role == "worker" => worker(url, name),
        _ => {
            eprintln!("usage: redis_workers [worker <redis url> <name>]");
            ExitCode::FAILURE
        }
    }
}

// ---- The worker ----

/// Registers its jobs by id, runs each on a thread, and reports on stdout how each ended:
/// `cancelled <id> <micros since the epoch> <kind> <message>` or `finished <id>`.
fn worker(url: &str, name: &str) -> ExitCode {
    let registry = match RedisRegistry::connect(url) {
        Ok(registry) => registry,
        Err(err) => {
            eprintln!("{name}: cannot reach Redis at {url}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let jobs: Vec<_> = (1..=JOBS_PER_WORKER)
        .map(|i| {
            let id = format!("{name}-job-{i}");
            // The registration keeps the job cancellable by id; it is dropped with the thread.
            let (token, registration) = registry.register(&id).expect("a valid id");
            thread::spawn(move || {
                let _registration = registration;
                run_job(&id, &token);
            })
        })
        .collect();
    println!("ready");
    for job in jobs {
        job.join().expect("a job panicked");
    }
    ExitCode::SUCCESS
}

/// Fake work in steps; a step ends early when the token fires.
fn run_job(id: &str, token: &CancelToken) {
    for _ in 0..STEPS {
        if token.wait_blocking_timeout(STEP) {
            let reason = token.reason().expect("a triggered token has a reason");
            let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            println!(
                "cancelled {id} {} {} {}",
                at.as_micros(),
                reason.kind().as_str(),
                reason
            );
            return;
        }
    }
    println!("finished {id}");
}

// ---- The canceller ----

fn canceller() -> ExitCode {
    let Some(redis_server) = find_redis_server() else {
        eprintln!(
            "redis-server is not installed: install it (Debian: `apt-get install redis-server`) \
             or put it in PATH"
        );
        return ExitCode::FAILURE;
    };
    let server = match LocalRedis::start(&redis_server) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("cannot start redis-server: {err}");
            return ExitCode::FAILURE;
        }
    };
    let url = server.url();
    println!("redis-server listening on {url}");

    let me = std::env::current_exe().expect("this binary's path");
    let mut workers: Vec<(&str, Child)> = WORKERS
        .iter()
        .map(|&name| {
            let child = Command::new(&me)
                .args(["worker", &url, name])
                .stdout(Stdio::piped())
                .spawn()
                .expect("start a worker");
            (name, child)
        })
        .collect();
    let mut outputs: Vec<_> = workers
        .iter_mut()
        .map(|(name, child)| {
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let first = lines.next().and_then(Result::ok);
            assert_eq!(
                first.as_deref(),
                Some("ready"),
                "worker {name} did not start"
            );
            println!("{name}: running {name}-job-1 to {name}-job-{JOBS_PER_WORKER}");
            lines
        })
        .collect();

    let registry = RedisRegistry::connect(&url).expect("connect to our own redis-server");
    let cancels = [
        ("alpha-job-2", Reason::from("the customer closed the order")),
        (
            "beta-job-1",
            Reason::with_message(ReasonKind::Superseded, "a newer upload replaced it"),
        ),
        ("gamma-job-1", Reason::from("nobody runs this one")),
    ];
    let mut sent_at = HashMap::new();
    for (id, reason) in cancels {
        sent_at.insert(id.to_owned(), SystemTime::now());
        let delivery = registry.cancel(id, reason).expect("a valid id");
        // `cancel` never blocks; the delivery says when Redis has the record and the message.
        let delivered = delivery.wait_blocking_timeout(Duration::from_secs(5));
        println!(
            "cancel {id}: {} token(s) here, {}",
            delivery.local(),
            if delivered {
                "delivered"
            } else {
                "NOT delivered"
            }
        );
    }

    let mut ok = true;
    for ((name, child), lines) in workers.iter_mut().zip(&mut outputs) {
        for line in lines.map_while(Result::ok) {
            report(name, &line, &sent_at);
        }
        let status = child.wait().expect("wait for a worker");
        ok &= status.success();
    }
    println!("gamma-job-1: no worker runs it; its record keeps it cancelled for an hour, should one start it");
    println!("all workers exited");
    drop(server);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints one line of a worker's report, with the latency of a cancel.
fn report(worker: &str, line: &str, sent_at: &HashMap<String, SystemTime>) {
    let mut fields = line.splitn(5, ' ');
    match (fields.next(), fields.next()) {
        (Some("cancelled"), Some(id)) => {
            let micros: u64 = fields.next().and_then(|t| t.parse().ok()).unwrap_or(0);
            let (kind, message) = (fields.next().unwrap_or("?"), fields.next().unwrap_or(""));
            let fired = UNIX_EPOCH + Duration::from_micros(micros);
            let latency = sent_at
                .get(id)
                .and_then(|sent| fired.duration_since(*sent).ok())
                .map(|latency| format!("{:.1} ms", latency.as_secs_f64() * 1e3))
                .unwrap_or_else(|| "?".into());
            println!("{worker} saw {id} cancelled: {kind}: {message} ({latency} after the cancel)");
        }
        (Some("finished"), Some(id)) => println!("{worker} finished {id}"),
        _ => println!("{worker}: {line}"),
    }
}

// ---- A redis-server of our own ----

/// `redis-server` in PATH, /usr/bin or /usr/sbin.
fn find_redis_server() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .chain(["/usr/bin/redis-server", "/usr/sbin/redis-server"].map(PathBuf::from))
        .find(|candidate| candidate.is_file())
}

/// A `redis-server` on a free port, without persistence, killed when dropped.
struct LocalRedis {
    port: u16,
    child: Child,
    dir: PathBuf,
}

impl LocalRedis {
    fn start(binary: &PathBuf) -> Result<LocalRedis, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|err| err.to_string())?
            .port();
        let dir = std::env::temp_dir().join(format!("redis-workers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|err| err.to_string())?;
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| err.to_string())?;
        let server = LocalRedis { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.answers_ping() {
            if Instant::now() > deadline {
                return Err(format!("no answer on port {port} within 10 s"));
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let mut answer = [0; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && answer == *b"+PONG\r\n"
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
