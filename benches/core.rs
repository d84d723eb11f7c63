//! Micro-benchmarks of the token's own hot paths. The side-by-side comparison with the peer
//! crates lives in its own benchmark; this one tracks the crate against itself.

use std::hint::black_box;
use std::time::Duration;

use cancel_token::CancelToken;
use criterion::{criterion_group, criterion_main, Criterion};

fn hot_paths(c: &mut Criterion) {
    let token = CancelToken::new();
    c.bench_function("is_triggered/untriggered", |b| {
        b.iter(|| black_box(&token).is_triggered())
    });
    c.bench_function("clone+drop", |b| b.iter(|| drop(black_box(&token).clone())));
    c.bench_function("new+drop", |b| {
        b.iter(|| drop(black_box(CancelToken::new())))
    });
    c.bench_function("child+drop", |b| b.iter(|| drop(black_box(&token).child())));
    // A deadline token that never fires: its timer entry is registered and removed again.
    let hour = Duration::from_secs(3600);
    c.bench_function("with_timeout+drop", |b| {
        b.iter(|| drop(black_box(CancelToken::with_timeout(black_box(hour)))))
    });
    c.bench_function("trigger", |b| {
        b.iter_with_large_drop(|| {
            let token = CancelToken::new();
            token.trigger();
            token
        })
    });

    let triggered = CancelToken::new();
    triggered.trigger();
    c.bench_function("raise_if_triggered/triggered", |b| {
        b.iter(|| black_box(&triggered).raise_if_triggered().is_err())
    });
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
