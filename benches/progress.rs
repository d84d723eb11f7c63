//! A progress update in a hot loop, `Operation::advance(1)`, against the floor: a plain
//! `AtomicU64::fetch_add(1, Relaxed)`. Measured in pairs (see `common/pairs.rs`), each sample
//! 100,000 updates: a standalone operation, one in a registry nobody watches, one whose
//! registry has an open subscription (drained between samples, as a dashboard polling it
//! would), and, built with `--features tracing`, one under a tracing subscriber that wants
//! INFO only (no progress events) and one under a subscriber that wants everything (the
//! throttle's arithmetic on every update, an event per whole percent: none in these samples).
//!
//! Run: `cargo bench --bench progress` and `cargo bench --bench progress --features tracing`
//! (half a minute each). Without `tracing`, the first three rows are the crate as most
//! users build it; with it, they include the feature's check of tracing's level filter with
//! no subscriber at all. The tracing rows come last: a subscriber's level, once registered,
//! stays in tracing's global filter.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cancel_token::{CancelToken, Operation, OperationRegistry};
use common::pairs::{self, stretch, Target};

const UPDATES: u32 = 100_000;

/// The floor: one relaxed atomic add, as a hand-rolled progress counter would do.
fn floor() -> Box<dyn FnMut() -> f64> {
    let counter = Arc::new(AtomicU64::new(0));
    Box::new(move || {
        stretch(UPDATES, || {
            counter.fetch_add(black_box(1), Ordering::Relaxed);
        })
    })
}

fn advancing(op: Operation) -> Box<dyn FnMut() -> f64> {
    Box::new(move || stretch(UPDATES, || op.advance(black_box(1))))
}

fn targets() -> Vec<Target> {
    let registry = OperationRegistry::new();
    let watched = OperationRegistry::new();
    let subscription = watched.subscribe();
    let watched_op = watched.start("watched", &CancelToken::new());
    #[allow(unused_mut)]
    let mut targets = vec![
        Target {
            name: "advance, standalone",
            target: 1.5,
            ours: advancing(Operation::new("standalone", &CancelToken::new())),
            theirs: floor(),
        },
        Target {
            name: "advance, in a registry",
            target: 1.5,
            ours: advancing(registry.start("registered", &CancelToken::new())),
            theirs: floor(),
        },
        Target {
            name: "advance, registry subscribed",
            target: 3.0,
            ours: Box::new(move || {
                while subscription.try_next().is_some() {}
                stretch(UPDATES, || watched_op.advance(black_box(1)))
            }),
            theirs: floor(),
        },
    ];
    #[cfg(feature = "tracing")]
    targets.extend(tracing_targets());
    targets
}

/// Under a subscriber made afresh for each sample (registering it sets tracing's global level
/// filter to what it wants).
#[cfg(feature = "tracing")]
fn traced(
    op: Operation,
    subscriber: impl Fn() -> tracing::Dispatch + 'static,
) -> Box<dyn FnMut() -> f64> {
    Box::new(move || {
        let dispatch = subscriber();
        let _default = tracing::dispatcher::set_default(&dispatch);
        stretch(UPDATES, || op.advance(black_box(1)))
    })
}

#[cfg(feature = "tracing")]
fn tracing_targets() -> Vec<Target> {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::{Identity, Layer, SubscriberExt};

    // A total large enough that no sample crosses a whole percent: the cost measured is the
    // check on every update, not the rare event.
    let total = 1_000_000_000_000;
    let info_op = Operation::new("info", &CancelToken::new());
    info_op.set_total(total);
    let debug_op = Operation::new("debug", &CancelToken::new());
    debug_op.set_total(total);
    vec![
        Target {
            name: "advance, tracing at INFO",
            target: 1.5,
            ours: traced(info_op, || {
                let layer = Identity::new().with_filter(LevelFilter::INFO);
                tracing::Dispatch::new(tracing_subscriber::registry().with(layer))
            }),
            theirs: floor(),
        },
        Target {
            name: "advance, tracing at DEBUG",
            target: 3.0,
            ours: traced(debug_op, || {
                tracing::Dispatch::new(tracing_subscriber::registry())
            }),
            theirs: floor(),
        },
    ]
}

fn main() {
    pairs::run("atomic add", targets);
}
