//! Deadline tokens leave nothing behind: the timer entry of a token is released when the token
//! is dropped, and already when it is triggered manually before its deadline.
//!
//! Memory is measured with a counting global allocator, so this binary holds a single test:
//! nothing else may allocate concurrently.

#[path = "common/alloc.rs"]
mod alloc;

use std::time::{Duration, Instant};

use alloc::live;
use cancel_token::CancelToken;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting::ALL_THREADS;

const N: usize = 100_000;
const BATCH: usize = 1_000;
const SLACK: isize = 64 * 1024;
const HOUR: Duration = Duration::from_secs(3600);

fn assert_flat(what: &str, baseline: isize) {
    let grown = live() - baseline;
    assert!(
        grown <= SLACK,
        "{what}: live memory grew by {grown} bytes (more than {SLACK})"
    );
}

/// Live bytes after `tokens` have been triggered, minus before: what the trigger allocates
/// (the reason record) less what it releases (the timer entries, if it does).
fn trigger_delta(tokens: &[CancelToken]) -> isize {
    let before = live();
    for token in tokens {
        assert!(token.trigger());
    }
    live() - before
}

#[test]
fn deadline_tokens_release_their_timer_entries() {
    // Warm up: start the timer thread and let every lazily allocated global settle.
    for _ in 0..3 {
        let warm: Vec<CancelToken> = (0..BATCH)
            .map(|_| CancelToken::with_timeout(HOUR))
            .collect();
        drop(warm);
        CancelToken::with_timeout(HOUR).trigger();
    }
    // Until the timer thread has settled too: live bytes stop changing (at most a second).
    let mut last = live();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(10));
        if live() == last {
            break;
        }
        last = live();
    }

    // 1. Created and dropped, one at a time and in batches.
    let baseline = live();
    for _ in 0..N / 2 {
        drop(CancelToken::with_deadline(Instant::now() + HOUR));
    }
    for _ in 0..N / 2 / BATCH {
        let batch: Vec<CancelToken> = (0..BATCH)
            .map(|_| CancelToken::with_timeout(HOUR))
            .collect();
        drop(batch);
    }
    assert_flat("100,000 deadline tokens created and dropped", baseline);

    // 2. Created, triggered manually, dropped.
    let baseline = live();
    for _ in 0..N / 2 {
        let token = CancelToken::with_timeout(HOUR);
        token.trigger();
        drop(token);
    }
    for _ in 0..N / 2 / BATCH {
        let batch: Vec<CancelToken> = (0..BATCH)
            .map(|_| CancelToken::with_timeout(HOUR))
            .collect();
        for token in &batch {
            token.trigger_with("manual");
        }
        drop(batch);
    }
    assert_flat("100,000 deadline tokens triggered and dropped", baseline);

    // 3. The entry is released by the trigger itself, while the token is still alive: the
    // trigger of a deadline token frees more than the trigger of a named token, which has cold
    // state too (so both triggers allocate the same) but no timer entry to free.
    let baseline = live();
    let plain: Vec<CancelToken> = (0..N).map(|_| CancelToken::named("plain")).collect();
    let plain_delta = trigger_delta(&plain);
    drop(plain);
    let timed: Vec<CancelToken> = (0..N).map(|_| CancelToken::with_timeout(HOUR)).collect();
    let timed_delta = trigger_delta(&timed);
    // A timer entry holds at least a deadline, an id and a weak pointer: 32 bytes. Ask for
    // half of that per token, to allow for the map's node layout.
    let released = plain_delta - timed_delta;
    assert!(
        released >= (N as isize) * 16,
        "triggering {N} live deadline tokens released only {released} bytes more than \
         triggering plain ones (plain: {plain_delta:+}, deadline: {timed_delta:+}): \
         their timer entries are kept until the tokens are dropped"
    );
    drop(timed);
    assert_flat("after the live-trigger comparison", baseline);
}
