//! The paired measurement of the `ratios` and `tracker` benchmarks: each round times one sample
//! of cancel-token and one of the peer back to back, in alternating order, and the ratio is
//! taken per round. A VM whose speed drifts over seconds moves both halves of a pair alike, so
//! the median of the per-round ratios is steadier than a ratio of two medians taken minutes
//! apart.

use std::hint::black_box;
use std::time::{Duration, Instant};

const ROUNDS: usize = 201;

/// Nanoseconds per run of `op`, over `iters` runs in one stretch.
pub fn stretch(iters: u32, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    per(start.elapsed(), iters)
}

pub fn per(total: Duration, iters: u32) -> f64 {
    total.as_secs_f64() * 1e9 / f64::from(iters)
}

/// Nanoseconds per run of `op`, over `iters` runs on a fresh input from `setup` each, timing
/// `op` only.
pub fn batched<T, R>(iters: u32, mut setup: impl FnMut() -> T, mut op: impl FnMut(T) -> R) -> f64 {
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
pub struct Target {
    pub name: &'static str,
    pub target: f64,
    pub ours: Box<dyn FnMut() -> f64>,
    pub theirs: Box<dyn FnMut() -> f64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Measures every target in pairs and prints one line each; `peer` names the other side.
/// Does nothing unless run by `cargo bench` (which passes `--bench`): `cargo test --benches`
/// runs bench binaries too.
pub fn run(peer: &str, targets: impl FnOnce() -> Vec<Target>) {
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    println!(
        "{:<32} {:>7} {:>7} {:>7} {:>7} {:>13} {:>13}",
        format!("target (cancel-token / {peer})"),
        "limit",
        "median",
        "p10",
        "p90",
        "cancel-token",
        peer
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
