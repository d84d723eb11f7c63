//! A worker pool on plain threads, shut down gracefully: no async runtime anywhere.
//!
//! Four workers take jobs from a queue until the shutdown's soft token fires, then finish the
//! job in hand; a job still running when the grace period ends is abandoned between two of
//! its steps, because the hard token fired. Every worker counts in the shutdown's tracker
//! through a guard (`TaskTracker::enter`), and the report says how it went.
//!
//! ```text
//! cargo run --example worker_pool                 # short jobs: the pool drains
//! cargo run --example worker_pool -- 20 400 100   # a 400-step job outlives a 100 ms grace
//! ```
//!
//! Arguments: the number of jobs, the steps of the first job (every other job has 5), and the
//! grace period in milliseconds. A step takes 1 ms. `tests/worker_pool.rs` runs this example.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use cancel_token::{CancelToken, Shutdown};

const WORKERS: usize = 4;
const STEP: Duration = Duration::from_millis(1);

/// What a worker did with one job.
enum Outcome {
    Done,
    Abandoned(String),
}

/// Runs `steps` steps of a job, checking the hard token between them.
fn work(steps: u32, hard: &CancelToken) -> Outcome {
    for _ in 0..steps {
        if let Err(cancelled) = hard.raise_if_triggered() {
            return Outcome::Abandoned(cancelled.reason().to_string());
        }
        thread::sleep(STEP);
    }
    Outcome::Done
}

fn argument(index: usize, default: u64) -> u64 {
    std::env::args()
        .nth(index)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let jobs = argument(1, 40);
    let first_steps = argument(2, 5) as u32;
    let grace = Duration::from_millis(argument(3, 500));

    let shutdown = Shutdown::new(grace);
    let (queue, jobs_in) = mpsc::channel::<(u64, u32)>();
    let jobs_in = Arc::new(Mutex::new(jobs_in));

    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let soft = shutdown.soft().clone();
            let hard = shutdown.hard().clone();
            let jobs_in = Arc::clone(&jobs_in);
            // Counted from now until the thread returns.
            let guard = shutdown.tracker().enter();
            thread::spawn(move || {
                let _guard = guard;
                // Stop taking jobs once the soft token fires; finish the one in hand.
                while !soft.is_triggered() {
                    let next = jobs_in
                        .lock()
                        .unwrap()
                        .recv_timeout(Duration::from_millis(5));
                    let Ok((job, steps)) = next else { continue };
                    match work(steps, &hard) {
                        Outcome::Done => println!("worker {worker}: job {job} done"),
                        Outcome::Abandoned(reason) => {
                            println!("worker {worker}: job {job} abandoned: {reason}")
                        }
                    }
                }
            })
        })
        .collect();

    for job in 0..jobs {
        let steps = if job == 0 { first_steps } else { 5 };
        queue.send((job, steps)).unwrap();
    }
    // Let the pool start on the queue, then ask it to stop.
    thread::sleep(Duration::from_millis(30));
    shutdown.request_with("the operator asked to stop");
    let report = shutdown.wait_blocking();
    println!("{report}");
    for worker in workers {
        worker.join().unwrap();
    }
    println!(
        "jobs left in the queue: {}",
        jobs_in.lock().unwrap().try_iter().count()
    );
}
