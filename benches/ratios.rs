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

use cancel_token::CancelToken;
use common::pairs::{self, batched, per, stretch, Target};
use common::{
    ours_chain, ours_children, ours_waiting, poll, tokio_chain, tokio_children, tokio_waiting,
    two_threads, waker,
};
use tokio_util::sync::CancellationToken;

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

fn main() {
    pairs::run("tokio-util", targets);
}
