//! A tour of cancel-token: one token, triggered once with a reason, stops a worker thread, a
//! task on smol, a task on tokio and a chained token, and runs a callback. Each prints what
//! happened and why.
//!
//! Run it with `cargo run --example quickstart`.

use std::thread;
use std::time::{Duration, Instant};

use cancel_token::{CancelToken, Cancelled};

fn main() {
    let started = Instant::now();
    let stamp = move || format!("{:>6.1?}", started.elapsed());

    // The token the application triggers on shutdown.
    let shutdown = CancelToken::named("shutdown");

    // 1. A plain thread, no runtime: it blocks until the token is triggered.
    let worker = {
        let token = shutdown.clone();
        thread::spawn(move || {
            token.wait_blocking();
            let why = token.reason().expect("triggered tokens have a reason");
            format!("worker thread woke from wait_blocking: {why}")
        })
    };

    // 2. A task on smol's executor, waiting on a child token.
    let smol_task = {
        let token = shutdown.child_named("smol-task");
        thread::spawn(move || {
            smol::block_on(async {
                let mut ticks = 0u32;
                loop {
                    let tick = async {
                        smol::Timer::after(Duration::from_millis(20)).await;
                        false
                    };
                    let stop = async {
                        token.wait().await;
                        true
                    };
                    if futures_lite::future::or(stop, tick).await {
                        break;
                    }
                    ticks += 1;
                }
                let err: Cancelled = token.raise_if_triggered().unwrap_err();
                format!("smol task stopped after {ticks} ticks: {err}")
            })
        })
    };

    // 3. A task on tokio's multi-threaded runtime, spawned with an owned wait future.
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let tokio_task = {
        let token = shutdown.child_named("tokio-task");
        runtime.spawn(async move {
            tokio::select! {
                _ = token.clone().wait_owned() => {}
                _ = tokio::time::sleep(Duration::from_secs(60)) => unreachable!("cancelled long before"),
            }
            let origin = token.triggered_token().expect("triggered");
            format!("tokio task cancelled; the trigger came from token {origin}")
        })
    };

    // 4. A request token chained to both the user's "stop" button and shutdown: whichever
    //    fires first cancels the request, and the request knows which one it was.
    let stop_button = CancelToken::named("stop-button");
    let request = stop_button.chain(&shutdown);

    // 5. A callback, run on the triggering thread once the whole tree is triggered.
    let _cleanup = request.on_cancel(|reason| {
        println!("[callback]  request token cancelled ({reason}); closing its files");
    });

    // Let everything start waiting, then trigger once, from this thread.
    thread::sleep(Duration::from_millis(100));
    println!("{} main: triggering `shutdown` with a reason", stamp());
    let triggered = shutdown.trigger_with("maintenance window");
    println!(
        "{} main: trigger returned {triggered}; a second trigger returns {}",
        stamp(),
        shutdown.trigger()
    );

    println!("{} {}", stamp(), worker.join().expect("worker thread"));
    println!("{} {}", stamp(), smol_task.join().expect("smol thread"));
    println!(
        "{} {}",
        stamp(),
        runtime.block_on(tokio_task).expect("tokio task")
    );

    let err = request.raise_if_triggered().unwrap_err();
    println!("{} chained token `{request}`: {err}", stamp());
    assert_eq!(err.token(), &shutdown);
    assert!(
        !stop_button.is_triggered(),
        "a chain never triggers its sources"
    );
    println!(
        "{} stop-button untouched: triggered = {}",
        stamp(),
        stop_button.is_triggered()
    );
}
