//! Runs `examples/worker_pool.rs` (plain threads, `TaskTracker::enter`, `Shutdown`) as a child
//! process and checks what it reports: a pool of short jobs drains; a job that outlives the
//! grace period is abandoned with the grace period in its reason, and the report says forced.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> (String, Duration) {
    let start = Instant::now();
    let output = common::within(common::LIMIT, {
        let binary = common::example("worker_pool");
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        move || {
            Command::new(binary)
                .args(args)
                .output()
                .expect("run the example")
        }
    });
    assert!(output.status.success(), "{output:?}");
    (String::from_utf8(output.stdout).unwrap(), start.elapsed())
}

#[test]
fn short_jobs_drain() {
    let (stdout, _) = run(&["40", "5", "2000"]);
    let report = stdout
        .lines()
        .find(|line| line.starts_with("shutdown "))
        .unwrap();
    assert!(report.starts_with("shutdown drained in "), "{stdout}");
    assert!(
        report.ends_with("(4 tasks in flight at the request)"),
        "{stdout}"
    );
    assert!(!stdout.contains("abandoned"), "{stdout}");
    assert!(stdout.contains("job 0 done"), "{stdout}");
}

#[test]
fn a_job_that_outlives_the_grace_period_is_abandoned_and_the_report_says_forced() {
    let (stdout, elapsed) = run(&["20", "5000", "100"]);
    assert!(
        stdout.contains("job 0 abandoned: grace period of 100ms elapsed"),
        "{stdout}"
    );
    let report = stdout
        .lines()
        .find(|line| line.starts_with("shutdown "))
        .unwrap();
    assert!(report.starts_with("shutdown forced after "), "{stdout}");
    assert!(
        report.ends_with("with 1 task left: grace period of 100ms elapsed"),
        "{stdout}"
    );
    assert!(
        elapsed < Duration::from_secs(4),
        "the 5 s job was cut: {elapsed:?}"
    );
}
