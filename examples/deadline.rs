//! One deadline shared by several async tasks and a plain thread.
//!
//! A request has 300 ms in all. Three tasks (on tokio) and a blocking worker thread all work
//! under the same deadline token; one step gets a tighter budget of its own with
//! `child_with_timeout`. Whatever is unfinished at the deadline stops with
//! `ReasonKind::Timeout`, and the thread is woken from its blocking wait without any runtime.
//!
//! Run it with `cargo run --example deadline`.

use std::thread;
use std::time::{Duration, Instant};

use cancel_token::{CancelToken, ReasonKind};

fn main() {
    let started = Instant::now();
    let request =
        CancelToken::named("request").chain(&CancelToken::with_timeout(Duration::from_millis(300)));
    println!(
        "request deadline in {:?}",
        request.deadline().map(|d| d - started)
    );

    // A plain thread doing blocking work in steps, checking the deadline in between.
    let worker = {
        let token = request.clone();
        thread::spawn(move || {
            let mut steps = 0;
            // Each "step" is a blocking wait of 70 ms that the deadline cuts short.
            while !token.wait_blocking_timeout(Duration::from_millis(70)) {
                steps += 1;
            }
            (steps, token.reason().expect("triggered"))
        })
    };

    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let outcomes = runtime.block_on(async {
        let work = |name: &'static str, millis: u64, token: CancelToken| {
            tokio::spawn(async move {
                let outcome = token
                    .run(tokio::time::sleep(Duration::from_millis(millis)))
                    .await;
                (
                    name,
                    millis,
                    outcome.map_err(|cancelled| cancelled.reason().clone()),
                )
            })
        };
        let tasks = [
            work("cache lookup", 20, request.clone()),
            work(
                "database query",
                120,
                request.child_with_timeout(Duration::from_millis(100)),
            ),
            work("render", 150, request.clone()),
            work("slow report", 1_000, request.clone()),
        ];
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("task"));
        }
        outcomes
    });

    for (name, millis, outcome) in outcomes {
        match outcome {
            Ok(()) => println!("{name:<15} ({millis:>4} ms of work) finished"),
            Err(reason) => println!("{name:<15} ({millis:>4} ms of work) stopped: {reason}"),
        }
    }
    let (steps, reason) = worker.join().expect("worker thread");
    println!("worker thread finished {steps} steps, then stopped: {reason}");
    assert_eq!(reason.kind(), ReasonKind::Timeout);
    println!("total {:?}", started.elapsed());
}
