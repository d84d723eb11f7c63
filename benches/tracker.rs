//! `TaskTracker` against tokio-util's `TaskTracker`, measured in pairs (see
//! `common/pairs.rs`): tracking a future that completes at its first poll, a guard for a
//! thread, and a shutdown wait over 10,000 tasks. Issue 11 asks for "at or below its cost".
//!
//! Run: `cargo bench --bench tracker` (about a minute).

mod common;

use std::future::{ready, Future};
use std::hint::black_box;
use std::pin::pin;
use std::task::Context;

use cancel_token::TaskTracker;
use common::pairs::{self, batched, stretch, Target};
use common::waker;

type TheirTracker = tokio_util::task::TaskTracker;

const TASKS: usize = 10_000;

fn targets() -> Vec<Target> {
    let waker = waker();
    let (w1, w2, w3, w4) = (waker.clone(), waker.clone(), waker.clone(), waker.clone());
    let ours = TaskTracker::new();
    let theirs = TheirTracker::new();
    vec![
        Target {
            name: "track + complete",
            target: 1.0,
            ours: Box::new({
                let tracker = ours.clone();
                move || {
                    let mut cx = Context::from_waker(&w1);
                    stretch(20_000, || {
                        let task = pin!(tracker.track(ready(black_box(1))));
                        let _ = black_box(task.poll(&mut cx));
                    })
                }
            }),
            theirs: Box::new({
                let tracker = theirs.clone();
                move || {
                    let mut cx = Context::from_waker(&w2);
                    stretch(20_000, || {
                        let task = pin!(tracker.track_future(ready(black_box(1))));
                        let _ = black_box(task.poll(&mut cx));
                    })
                }
            }),
        },
        Target {
            name: "guard: enter + drop",
            target: 1.0,
            ours: Box::new({
                let tracker = ours.clone();
                move || stretch(20_000, || drop(black_box(tracker.enter())))
            }),
            theirs: Box::new({
                let tracker = theirs.clone();
                move || stretch(20_000, || drop(black_box(tracker.token())))
            }),
        },
        Target {
            name: "wait with 10,000 tasks",
            target: 1.0,
            // Track 10,000 tasks, start waiting, close, finish every task, see the wait end.
            ours: Box::new(move || {
                batched(
                    20,
                    || (TaskTracker::new(), Context::from_waker(&w3).waker().clone()),
                    |(tracker, waker)| {
                        let mut cx = Context::from_waker(&waker);
                        let tasks: Vec<_> = (0..TASKS).map(|_| tracker.track(ready(()))).collect();
                        let mut wait = pin!(tracker.wait());
                        assert!(wait.as_mut().poll(&mut cx).is_pending());
                        tracker.close();
                        for task in tasks {
                            let _ = black_box(pin!(task).poll(&mut cx));
                        }
                        assert!(wait.poll(&mut cx).is_ready());
                    },
                )
            }),
            theirs: Box::new(move || {
                batched(
                    20,
                    || {
                        (
                            TheirTracker::new(),
                            Context::from_waker(&w4).waker().clone(),
                        )
                    },
                    |(tracker, waker)| {
                        let mut cx = Context::from_waker(&waker);
                        let tasks: Vec<_> = (0..TASKS)
                            .map(|_| tracker.track_future(ready(())))
                            .collect();
                        let mut wait = pin!(tracker.wait());
                        assert!(wait.as_mut().poll(&mut cx).is_pending());
                        tracker.close();
                        for task in tasks {
                            let _ = black_box(pin!(task).poll(&mut cx));
                        }
                        assert!(wait.poll(&mut cx).is_ready());
                    },
                )
            }),
        },
    ]
}

fn main() {
    pairs::run("tokio-util", targets);
}
