//! The target ratios (cancel-token / tokio-util), measured in pairs: each round times one
//! sample of cancel-token and one of tokio-util back to back, in alternating order, and the
//! ratio is taken per round. A VM whose speed drifts over seconds moves both halves of a pair
//! alike, so the median of the per-round ratios is steadier than a ratio of two medians taken
//! minutes apart (which is what `peers`, run by criterion, reports). Prints one line per
//! target: the median ratio, its 10th and 90th percentiles, and the medians of both sides.
//!
//! Run: `cargo bench --bench ratios` (about a minute).

mod common;

use std::future::{ready, Future};
use std::hint::black_box;
use std::task::Context;
use std::time::{Duration, Instant};

use cancel_token::CancelToken;
use common::{
    ours_chain, ours_children, ours_waiting, poll, tokio_chain, tokio_children, tokio_waiting,
    two_threads, waker,
};
use tokio_util::sync::CancellationToken;

const ROUNDS: usize = 201;

/// Nanoseconds per run of `op`, over `iters` runs in one stretch.
fn stretch(iters: u32, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    per(start.elapsed(), iters)
}

fn per(total: Duration, iters: u32) -> f64 {
    total.as_secs_f64() * 1e9 / f64::from(iters)
}

/// Nanoseconds per run of `op`, over `iters` runs on a fresh input from `setup` each, timing
/// `op` only.
fn batched<T, R>(iters: u32, mut setup: impl FnMut() -> T, mut op: impl FnMut(T) -> R) -> f64 {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let input = setup();
        let start = Instant::now();
        let output = op(input);
        total += start.elapsed();
        drop(black_box(output));
    }
    per(total, iters)
}

/// One target: a sample of each side, and the ratio the issue asks for.
struct Target {
    name: &'static str,
    target: f64,
    ours: Box<dyn FnMut() -> f64>,
    theirs: Box<dyn FnMut() -> f64>,
}

fn targets() -> Vec<Target> {
    let waker = waker();
    let ours_parent = CancelToken::new();
    let ours_siblings: Vec<_> = (0..10_000).map(|_| ours_parent.child()).collect();
    let tokio_parent = CancellationToken::new();
    let tokio_siblings: Vec<_> = (0..10_000).map(|_| tokio_parent.child_token()).collect();
    let ours_token = CancelToken::new();
    let tokio_token = CancellationToken::new();
    let (w1, w2, w3, w4) = (waker.clone(), waker.clone(), waker.clone(), waker.clone());
    vec![
        Target {
            name: "is_triggered (untriggered)",
            target: 0.4,
            ours: Box::new({
                let token = ours_token.clone();
                move || {
                    stretch(100_000, || {
                        black_box(black_box(&token).is_triggered());
                    })
                }
            }),
            theirs: Box::new({
                let token = tokio_token.clone();
                move || {
                    stretch(100_000, || {
                        black_box(black_box(&token).is_cancelled());
                    })
                }
            }),
        },
        Target {
            name: "clone + drop",
            target: 0.4,
            ours: Box::new({
                let token = ours_token.clone();
                move || stretch(20_000, || drop(black_box(token.clone())))
            }),
            theirs: Box::new({
                let token = tokio_token.clone();
                move || stretch(20_000, || drop(black_box(token.clone())))
            }),
        },
        Target {
            name: "new + drop",
            target: 0.6,
            ours: Box::new(|| stretch(20_000, || drop(black_box(CancelToken::new())))),
            theirs: Box::new(|| stretch(20_000, || drop(black_box(CancellationToken::new())))),
        },
        Target {
            name: "child + drop, 10,000 siblings",
            target: 0.7,
            ours: Box::new(move || {
                let _siblings = &ours_siblings;
                stretch(10_000, || drop(black_box(ours_parent.child())))
            }),
            theirs: Box::new(move || {
                let _siblings = &tokio_siblings;
                stretch(10_000, || drop(black_box(tokio_parent.child_token())))
            }),
        },
        Target {
            name: "trigger + wake 10,000 waiters",
            target: 0.7,
            ours: Box::new(move || {
                let mut cx = Context::from_waker(&w1);
                batched(
                    2,
                    || ours_waiting(10_000, &w1),
                    |(token, mut waits)| {
                        token.trigger();
                        for wait in &mut waits {
                            assert!(poll(wait, &mut cx).is_ready());
                        }
                        (token, waits)
                    },
                )
            }),
            theirs: Box::new(move || {
                let mut cx = Context::from_waker(&w2);
                batched(
                    2,
                    || tokio_waiting(10_000, &w2),
                    |(token, mut waits)| {
                        token.cancel();
                        for wait in &mut waits {
                            assert!(wait.as_mut().poll(&mut cx).is_ready());
                        }
                        (token, waits)
                    },
                )
            }),
        },
        Target {
            name: "trigger a 1,000-deep chain",
            target: 1.0,
            ours: Box::new(|| {
                batched(
                    10,
                    || ours_chain(1000),
                    |chain| {
                        chain[0].trigger();
                        chain
                    },
                )
            }),
            theirs: Box::new(|| {
                batched(
                    10,
                    || tokio_chain(1000),
                    |chain| {
                        chain[0].cancel();
                        chain
                    },
                )
            }),
        },
        Target {
            name: "trigger 10,000 direct children",
            target: 1.0,
            ours: Box::new(|| {
                batched(
                    3,
                    || ours_children(10_000),
                    |(root, children)| {
                        root.trigger();
                        (root, children)
                    },
                )
            }),
            theirs: Box::new(|| {
                batched(
                    3,
                    || tokio_children(10_000),
                    |(root, children)| {
                        root.cancel();
                        (root, children)
                    },
                )
            }),
        },
        Target {
            name: "run around a ready future",
            target: 0.8,
            ours: Box::new({
                let token = ours_token.clone();
                move || {
                    let mut cx = Context::from_waker(&w3);
                    stretch(20_000, || {
                        let mut run = std::pin::pin!(token.run(ready(black_box(7))));
                        let _ = black_box(run.as_mut().poll(&mut cx));
                    })
                }
            }),
            theirs: Box::new({
                let token = tokio_token.clone();
                move || {
                    let mut cx = Context::from_waker(&w4);
                    stretch(20_000, || {
                        let mut run =
                            std::pin::pin!(token.run_until_cancelled(ready(black_box(7))));
                        let _ = black_box(run.as_mut().poll(&mut cx));
                    })
                }
            }),
        },
        Target {
            name: "two threads on one parent",
            target: 0.6,
            ours: Box::new({
                let parent = CancelToken::new();
                move || {
                    let total = two_threads(5_000, &parent, |parent| {
                        let handle = parent.clone();
                        black_box(handle.is_triggered());
                        black_box(handle.child());
                    });
                    per(total, 5_000)
                }
            }),
            theirs: Box::new({
                let parent = CancellationToken::new();
                move || {
                    let total = two_threads(5_000, &parent, |parent| {
                        let handle = parent.clone();
                        black_box(handle.is_cancelled());
                        black_box(handle.child_token());
                    });
                    per(total, 5_000)
                }
            }),
        },
    ]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would run this too, so it only
    // runs when asked to measure.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    println!(
        "{:<32} {:>7} {:>7} {:>7} {:>7} {:>13} {:>13}",
        "target (cancel-token / tokio-util)",
        "limit",
        "median",
        "p10",
        "p90",
        "cancel-token",
        "tokio-util"
    );
    for mut target in targets() {
        // Warm both sides up.
        for _ in 0..3 {
            (target.ours)();
            (target.theirs)();
        }
        let mut ratios = Vec::with_capacity(ROUNDS);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let (a, b) = if round % 2 == 0 {
                let a = (target.ours)();
                (a, (target.theirs)())
            } else {
                let b = (target.theirs)();
                ((target.ours)(), b)
            };
            ratios.push(a / b);
            ours.push(a);
            theirs.push(b);
        }
        ratios.sort_by(f64::total_cmp);
        ours.sort_by(f64::total_cmp);
        theirs.sort_by(f64::total_cmp);
        let median = percentile(&ratios, 0.5);
        println!(
            "{:<32} {:>6.2}x {:>6.2}x {:>6.2}x {:>6.2}x {:>10.1} ns {:>10.1} ns {}",
            target.name,
            target.target,
            median,
            percentile(&ratios, 0.1),
            percentile(&ratios, 0.9),
            ours[ROUNDS / 2],
            theirs[ROUNDS / 2],
            if median <= target.target {
                "met"
            } else {
                "MISSED"
            },
        );
    }
}
