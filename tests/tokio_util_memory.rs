//! Feature `tokio-util`: the bridges leak nothing. A long-lived token on either side keeps
//! flat memory while short-lived tokens are bridged from it and dropped, 100,000 times, and
//! dropping our side of a bridge gives back everything it took, its registration in the
//! tokio-util token's waiter list included.
//!
//! This binary counts the allocations of the threads that opt in (the measuring thread, for
//! the length of a measurement), so other tests running meanwhile do not disturb the numbers;
//! the measurements still run one at a time.

#![cfg(feature = "tokio-util")]

#[path = "common/alloc.rs"]
mod alloc;
mod common;

use std::sync::{Mutex, MutexGuard, PoisonError};

use cancel_token::CancelToken;
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting::OPTED_IN_THREADS;

/// How far above its baseline the memory may end after the rounds: a vector's spare capacity,
/// not one allocation per round (100,000 rounds of even 8 bytes would be 800,000).
const SLACK_BYTES: isize = 4 * 1024;

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn rounds() -> usize {
    common::scaled(100_000)
}

/// The bytes still allocated after `round` ran `rounds()` times on this thread, once a few
/// warm-up rounds have made whatever is made once.
fn growth(mut round: impl FnMut()) -> isize {
    for _ in 0..100 {
        round();
    }
    alloc::count_this_thread(true);
    let before = alloc::live();
    for _ in 0..rounds() {
        round();
    }
    let after = alloc::live();
    alloc::count_this_thread(false);
    after - before
}

#[test]
fn tokens_bridged_from_a_long_lived_tokio_util_token_and_dropped_leave_it_flat() {
    let _serial = serial();
    let shutdown = CancellationToken::new();
    let _long_lived = CancelToken::from_tokio_util(&shutdown);
    let grown = growth(|| drop(CancelToken::from_tokio_util(&shutdown)));
    assert!(grown <= SLACK_BYTES, "{grown} bytes kept");
    // With a child of ours on each, and triggered before the drop: the same.
    let grown = growth(|| {
        let token = CancelToken::from_tokio_util(&shutdown);
        let child = token.child();
        token.trigger();
        drop((child, token));
    });
    assert!(grown <= SLACK_BYTES, "{grown} bytes kept");
}

#[test]
fn dropping_our_side_gives_back_everything_it_took() {
    let _serial = serial();
    let shutdown = CancellationToken::new();
    // Warm up whatever tokio-util and the crate make once.
    drop(CancelToken::from_tokio_util(&shutdown));
    alloc::count_this_thread(true);
    let before = alloc::live();
    let token = CancelToken::from_tokio_util(&shutdown);
    let held = alloc::live() - before;
    drop(token);
    let after = alloc::live() - before;
    alloc::count_this_thread(false);
    assert!(held > 0, "the bridge allocates its registration");
    assert_eq!(
        after, 0,
        "the registration (the waiter-list entry, its waker, the source handle) is gone"
    );
}

#[test]
fn tokens_bridged_out_of_a_long_lived_token_and_dropped_leave_it_flat() {
    let _serial = serial();
    let shutdown = CancelToken::new();
    let _long_lived = shutdown.to_tokio_util();
    let grown = growth(|| drop(shutdown.to_tokio_util()));
    assert!(grown <= SLACK_BYTES, "{grown} bytes kept");
    // The usual shape: a child per request, bridged out, both dropped.
    let grown = growth(|| {
        let request = shutdown.child();
        let cancel = request.to_tokio_util();
        drop(request);
        drop(cancel);
    });
    assert!(grown <= SLACK_BYTES, "{grown} bytes kept");
}

#[test]
fn links_made_and_dropped_between_long_lived_tokens_leave_both_flat() {
    let _serial = serial();
    let ours = CancelToken::new();
    let theirs = CancellationToken::new();
    let _long_lived = ours.link_tokio_util(&theirs);
    let grown = growth(|| drop(ours.link_tokio_util(&theirs)));
    assert!(grown <= SLACK_BYTES, "{grown} bytes kept");
    let grown = growth(|| {
        let request = CancellationToken::new();
        drop(ours.link_tokio_util(&request));
    });
    assert!(grown <= SLACK_BYTES, "{grown} bytes kept");
}

#[test]
fn round_trips_through_both_bridges_leave_both_long_lived_tokens_flat() {
    let _serial = serial();
    let ours = CancelToken::new();
    let theirs = CancellationToken::new();
    let grown = growth(|| {
        let back = CancelToken::from_tokio_util(&ours.to_tokio_util());
        let out = CancelToken::from_tokio_util(&theirs).to_tokio_util();
        drop((back, out));
    });
    assert!(grown <= SLACK_BYTES, "{grown} bytes kept");
}
