//! Runs `examples/redis_workers.rs` and checks its report: one job cancelled on each worker
//! process with the reason the canceller gave, within 100 ms, the other jobs finished, the id
//! no worker runs cancelled nowhere, and the example's own redis-server gone when it exits.

#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{build_example, LIMIT};

/// The report's bound on a cancel's trip to a worker process; the tight bound (50 ms) is
/// `tests/redis_processes.rs`'s.
const LATENCY_MS: f64 = 100.0;

#[test]
fn the_example_cancels_one_job_on_each_worker() {
    // Installs redis-server when it is missing, as the example does not.
    support_redis::redis_server_binary();
    let binary = build_example("redis_workers");
    let mut child = Command::new(binary)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the example");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("the example still runs after {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{}\n{stdout}\n{stderr}",
        output.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let has = |line: &str| lines.contains(&line);

    for cancelled in [
        "alpha saw alpha-job-2 cancelled: manual: the customer closed the order (",
        "beta saw beta-job-1 cancelled: superseded: a newer upload replaced it (",
    ] {
        let line = lines
            .iter()
            .find(|line| line.starts_with(cancelled))
            .unwrap_or_else(|| panic!("no {cancelled:?} in:\n{stdout}"));
        let latency: f64 = line[cancelled.len()..]
            .strip_suffix(" ms after the cancel)")
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("no latency in {line:?}"));
        assert!(latency < LATENCY_MS, "{line}");
    }
    for finished in [
        "alpha finished alpha-job-1",
        "alpha finished alpha-job-3",
        "beta finished beta-job-2",
        "beta finished beta-job-3",
    ] {
        assert!(has(finished), "no {finished:?} in:\n{stdout}");
    }
    for id in ["alpha-job-2", "beta-job-1", "gamma-job-1"] {
        assert!(
            has(&format!("cancel {id}: 0 token(s) here, delivered")),
            "{id} not delivered:\n{stdout}"
        );
    }
    assert_eq!(
        lines
            .iter()
            .filter(|line| line.contains(" cancelled: "))
            .count(),
        2,
        "exactly two jobs cancelled:\n{stdout}"
    );
    assert_eq!(lines.last(), Some(&"all workers exited"));

    let url = lines
        .iter()
        .find_map(|line| line.strip_prefix("redis-server listening on "))
        .expect("the example names its server");
    let port = url
        .trim_start_matches("redis://127.0.0.1:")
        .trim_end_matches('/');
    assert!(
        TcpStream::connect(format!("127.0.0.1:{port}")).is_err(),
        "the example's redis-server outlived it"
    );
}

#[test]
fn the_example_refuses_unknown_arguments() {
    let binary = build_example("redis_workers");
    let output = Command::new(binary).arg("bogus").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: redis_workers"));
}
