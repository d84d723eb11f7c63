//! The cleanup recipe (docs/shutdown.md, "Cleanup after cancellation"): work cancelled by one
//! token runs its cleanup under a *fresh* token with a short timeout, optionally chained to a
//! harder stop. A child of the cancelled token would be born triggered and cancel the cleanup
//! before it starts; a fresh token lets it run, and its timeout bounds it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cancel_token::{CancelToken, Cancelled, ReasonKind};
use common::LIMIT;

type Log = Arc<Mutex<Vec<String>>>;

/// A job that works until cancelled, then cleans up for `cleanup_takes` under a fresh token
/// with a `budget` timeout, chained to `hard`.
async fn job(
    token: CancelToken,
    hard: CancelToken,
    cleanup_takes: Duration,
    budget: Duration,
    log: Log,
) -> Result<(), Cancelled> {
    let cancelled = match token.run(std::future::pending::<()>()).await {
        Ok(()) => unreachable!("the work never ends on its own"),
        Err(cancelled) => cancelled,
    };
    log.lock().unwrap().push(format!("cancelled: {cancelled}"));
    let cleanup = CancelToken::with_timeout(budget).chain(&hard);
    let flushed = cleanup
        .run(async {
            tokio::time::sleep(cleanup_takes).await;
            log.lock().unwrap().push("flushed".to_owned());
        })
        .await;
    match flushed {
        Ok(()) => log.lock().unwrap().push("cleanup done".to_owned()),
        Err(cut) => log
            .lock()
            .unwrap()
            .push(format!("cleanup cut: {:?}", cut.reason().kind())),
    }
    Err(cancelled)
}

#[test]
fn cleanup_under_a_fresh_token_runs_after_the_work_is_cancelled() {
    let runtime = common::current_thread_runtime();
    let log: Log = Arc::default();
    let token = CancelToken::named("request");
    let task = runtime.spawn(job(
        token.clone(),
        CancelToken::new(),
        Duration::from_millis(20),
        Duration::from_secs(5),
        log.clone(),
    ));
    token.trigger_with("client left");
    let result = runtime.block_on(async { tokio::time::timeout(LIMIT, task).await });
    assert!(
        result.unwrap().unwrap().is_err(),
        "the job still reports its cancellation"
    );
    assert_eq!(
        *log.lock().unwrap(),
        [
            "cancelled: cancellation requested by token request: client left",
            "flushed",
            "cleanup done"
        ]
    );
}

#[test]
fn a_cleanup_that_hangs_is_cut_off_by_its_timeout() {
    let runtime = common::current_thread_runtime();
    let log: Log = Arc::default();
    let token = CancelToken::new();
    token.trigger();
    let start = Instant::now();
    let result = runtime.block_on(job(
        token,
        CancelToken::new(),
        Duration::from_secs(3600),
        Duration::from_millis(30),
        log.clone(),
    ));
    assert!(result.is_err());
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert!(start.elapsed() < LIMIT);
    assert_eq!(log.lock().unwrap()[1], "cleanup cut: Timeout");
}

#[test]
fn a_harder_stop_cuts_the_cleanup_too() {
    let runtime = common::multi_thread_runtime();
    let log: Log = Arc::default();
    let (soft, hard) = (CancelToken::new(), CancelToken::new());
    soft.trigger();
    let task = runtime.spawn(job(
        soft,
        hard.clone(),
        Duration::from_secs(3600),
        Duration::from_secs(3600),
        log.clone(),
    ));
    std::thread::sleep(Duration::from_millis(20));
    hard.trigger();
    runtime
        .block_on(async { tokio::time::timeout(LIMIT, task).await })
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(log.lock().unwrap()[1], "cleanup cut: Manual");
}

#[test]
fn a_child_of_the_cancelled_token_would_never_let_the_cleanup_run() {
    let token = CancelToken::new();
    token.trigger();
    let wrong = token.child_with_timeout(Duration::from_secs(5));
    assert!(
        wrong.is_triggered(),
        "born triggered: this is why the recipe uses a fresh token"
    );
    let ran = futures_lite::future::block_on(wrong.run(async { "cleanup" }));
    assert!(
        ran.is_err(),
        "cancellation wins: the cleanup is never polled"
    );
    let right = CancelToken::with_timeout(Duration::from_secs(5));
    assert_eq!(
        futures_lite::future::block_on(right.run(async { "cleanup" })),
        Ok("cleanup")
    );
    assert_eq!(wrong.reason().unwrap().kind(), ReasonKind::Manual);
}
