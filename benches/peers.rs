//! cancel-token side by side with its peers, operation by operation, in one process.
//!
//! Peers: tokio-util `CancellationToken`, stop-token, triggered, futures-util
//! `AbortHandle`/`Abortable`, and a "floor": a bare `AtomicBool` plus an `event_listener::Event`
//! in an `Arc`, the least any async-aware flag can cost. A peer appears in a group only where it
//! has the operation. `docs/benchmarks.md` is generated from this benchmark's output by
//! `benches/report.py`.
//!
//! Run: `cargo bench --bench peers`, then `python3 benches/report.py`.

use std::future::{ready, Future};
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

mod common;

use common::{
    ours_chain, ours_children, ours_waiting, poll, tokio_chain, tokio_children, tokio_waiting,
    two_threads, waker,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use event_listener::Event;

use cancel_token::CancelToken;
use tokio_util::sync::CancellationToken;

/// The floor: what an async-aware flag costs with nothing else.
struct Floor {
    flag: AtomicBool,
    event: Event,
}

impl Floor {
    fn new() -> Arc<Floor> {
        Arc::new(Floor {
            flag: AtomicBool::new(false),
            event: Event::new(),
        })
    }

    fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

/// A wait on the floor: register, re-check, sleep.
struct FloorWait {
    floor: Arc<Floor>,
    listener: Option<event_listener::EventListener>,
}

impl Future for FloorWait {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.floor.is_triggered() {
                return Poll::Ready(());
            }
            match &mut self.listener {
                None => {
                    let listener = self.floor.event.listen();
                    self.listener = Some(listener);
                }
                Some(listener) => {
                    if Pin::new(listener).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.listener = None;
                }
            }
        }
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
        .configure_from_args()
}

fn new_drop(c: &mut Criterion) {
    let mut g = c.benchmark_group("new+drop");
    g.bench_function("cancel-token", |b| b.iter(|| black_box(CancelToken::new())));
    g.bench_function("tokio-util", |b| {
        b.iter(|| black_box(CancellationToken::new()))
    });
    g.bench_function("stop-token", |b| {
        b.iter(|| black_box(stop_token::StopSource::new()))
    });
    g.bench_function("triggered", |b| b.iter(|| black_box(triggered::trigger())));
    g.bench_function("futures-abortable", |b| {
        b.iter(|| black_box(futures_util::future::AbortHandle::new_pair()))
    });
    g.bench_function("floor", |b| b.iter(|| black_box(Floor::new())));
    g.finish();
}

fn clone_drop(c: &mut Criterion) {
    let mut g = c.benchmark_group("clone+drop");
    let ours = CancelToken::new();
    g.bench_function("cancel-token", |b| b.iter(|| black_box(ours.clone())));
    let tokio = CancellationToken::new();
    g.bench_function("tokio-util", |b| b.iter(|| black_box(tokio.clone())));
    let source = stop_token::StopSource::new();
    let stop = source.token();
    g.bench_function("stop-token", |b| b.iter(|| black_box(stop.clone())));
    let (_trigger, listener) = triggered::trigger();
    g.bench_function("triggered", |b| b.iter(|| black_box(listener.clone())));
    let (abort, _registration) = futures_util::future::AbortHandle::new_pair();
    g.bench_function("futures-abortable", |b| b.iter(|| black_box(abort.clone())));
    let floor = Floor::new();
    g.bench_function("floor", |b| b.iter(|| black_box(floor.clone())));
    g.finish();
}

fn is_triggered(c: &mut Criterion) {
    for triggered in [false, true] {
        let name = if triggered {
            "is_triggered/triggered"
        } else {
            "is_triggered/untriggered"
        };
        let mut g = c.benchmark_group(name);
        let ours = CancelToken::new();
        let tokio = CancellationToken::new();
        let (trigger, listener) = triggered::trigger();
        let (abort, _registration) = futures_util::future::AbortHandle::new_pair();
        let floor = Floor::new();
        if triggered {
            ours.trigger();
            tokio.cancel();
            trigger.trigger();
            abort.abort();
            floor.trigger();
        }
        g.bench_function("cancel-token", |b| {
            b.iter(|| black_box(&ours).is_triggered())
        });
        g.bench_function("tokio-util", |b| {
            b.iter(|| black_box(&tokio).is_cancelled())
        });
        g.bench_function("triggered", |b| {
            b.iter(|| black_box(&listener).is_triggered())
        });
        g.bench_function("futures-abortable", |b| {
            b.iter(|| black_box(&abort).is_aborted())
        });
        g.bench_function("floor", |b| b.iter(|| black_box(&floor).is_triggered()));
        g.finish();
    }
}

fn child_drop(c: &mut Criterion) {
    for siblings in [0usize, 10_000] {
        let mut g = c.benchmark_group(format!("child+drop/{siblings}-siblings"));
        let ours = CancelToken::new();
        let _ours_siblings: Vec<_> = (0..siblings).map(|_| ours.child()).collect();
        g.bench_function("cancel-token", |b| {
            b.iter(|| black_box(black_box(&ours).child()))
        });
        let tokio = CancellationToken::new();
        let _tokio_siblings: Vec<_> = (0..siblings).map(|_| tokio.child_token()).collect();
        g.bench_function("tokio-util", |b| {
            b.iter(|| black_box(black_box(&tokio).child_token()))
        });
        g.finish();
    }
}

fn trigger_wake(c: &mut Criterion) {
    for waiters in [0usize, 1, 100, 10_000] {
        let mut g = c.benchmark_group(format!("trigger+wake/{waiters}-waiters"));
        let size = if waiters >= 100 {
            BatchSize::PerIteration
        } else {
            BatchSize::SmallInput
        };
        let waker = waker();
        let mut cx = Context::from_waker(&waker);

        g.bench_function("cancel-token", |b| {
            b.iter_batched(
                || ours_waiting(waiters, &waker),
                |(token, mut waits)| {
                    token.trigger();
                    for wait in &mut waits {
                        assert!(poll(wait, &mut cx).is_ready());
                    }
                    (token, waits)
                },
                size,
            )
        });
        let mut cx = Context::from_waker(&waker);
        g.bench_function("tokio-util", |b| {
            b.iter_batched(
                || tokio_waiting(waiters, &waker),
                |(token, mut waits)| {
                    token.cancel();
                    for wait in &mut waits {
                        assert!(wait.as_mut().poll(&mut cx).is_ready());
                    }
                    (token, waits)
                },
                size,
            )
        });
        let mut cx = Context::from_waker(&waker);
        g.bench_function("triggered", |b| {
            b.iter_batched(
                || {
                    let (trigger, listener) = triggered::trigger();
                    let mut waits: Vec<_> = (0..waiters).map(|_| listener.clone()).collect();
                    for wait in &mut waits {
                        assert!(poll(wait, &mut Context::from_waker(&waker)).is_pending());
                    }
                    (trigger, waits)
                },
                |(trigger, mut waits)| {
                    trigger.trigger();
                    for wait in &mut waits {
                        assert!(poll(wait, &mut cx).is_ready());
                    }
                    (trigger, waits)
                },
                size,
            )
        });
        let mut cx = Context::from_waker(&waker);
        g.bench_function("floor", |b| {
            b.iter_batched(
                || {
                    let floor = Floor::new();
                    let mut waits: Vec<_> = (0..waiters)
                        .map(|_| FloorWait {
                            floor: floor.clone(),
                            listener: None,
                        })
                        .collect();
                    for wait in &mut waits {
                        assert!(poll(wait, &mut Context::from_waker(&waker)).is_pending());
                    }
                    (floor, waits)
                },
                |(floor, mut waits)| {
                    floor.trigger();
                    for wait in &mut waits {
                        assert!(poll(wait, &mut cx).is_ready());
                    }
                    (floor, waits)
                },
                size,
            )
        });
        g.finish();
    }
}

fn trigger_tree(c: &mut Criterion) {
    let mut g = c.benchmark_group("trigger/1000-deep-chain");
    g.bench_function("cancel-token", |b| {
        b.iter_batched(
            || ours_chain(1000),
            |chain| {
                chain[0].trigger();
                chain
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("tokio-util", |b| {
        b.iter_batched(
            || tokio_chain(1000),
            |chain| {
                chain[0].cancel();
                chain
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("trigger/10000-children");
    g.bench_function("cancel-token", |b| {
        b.iter_batched(
            || ours_children(10_000),
            |(root, children)| {
                root.trigger();
                (root, children)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("tokio-util", |b| {
        b.iter_batched(
            || tokio_children(10_000),
            |(root, children)| {
                root.cancel();
                (root, children)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn run_ready(c: &mut Criterion) {
    let mut g = c.benchmark_group("run/ready-future");
    let waker = waker();
    let mut cx = Context::from_waker(&waker);
    let ours = CancelToken::new();
    g.bench_function("cancel-token", |b| {
        b.iter(|| {
            let mut run = std::pin::pin!(ours.run(ready(black_box(7))));
            black_box(run.as_mut().poll(&mut cx))
        })
    });
    let tokio = CancellationToken::new();
    g.bench_function("tokio-util", |b| {
        b.iter(|| {
            let mut run = std::pin::pin!(tokio.run_until_cancelled(ready(black_box(7))));
            black_box(run.as_mut().poll(&mut cx))
        })
    });
    let source = stop_token::StopSource::new();
    let stop = source.token();
    g.bench_function("stop-token", |b| {
        use stop_token::future::FutureExt as _;
        b.iter(|| {
            let mut run = std::pin::pin!(ready(black_box(7)).timeout_at(stop.clone()));
            black_box(run.as_mut().poll(&mut cx))
        })
    });
    g.bench_function("futures-abortable", |b| {
        b.iter(|| {
            let (_handle, registration) = futures_util::future::AbortHandle::new_pair();
            let mut run = futures_util::future::Abortable::new(ready(black_box(7)), registration);
            black_box(Pin::new(&mut run).poll(&mut cx))
        })
    });
    let floor = Floor::new();
    g.bench_function("floor", |b| {
        b.iter(|| {
            if black_box(&floor).is_triggered() {
                return Poll::Ready(None);
            }
            let mut fut = ready(black_box(7));
            black_box(Pin::new(&mut fut).poll(&mut cx).map(Some))
        })
    });
    g.finish();
}

fn first_poll_wait(c: &mut Criterion) {
    let mut g = c.benchmark_group("wait/first-poll-pending");
    let waker = waker();
    let mut cx = Context::from_waker(&waker);
    let ours = CancelToken::new();
    g.bench_function("cancel-token", |b| {
        b.iter(|| {
            let mut wait = ours.wait();
            black_box(poll(&mut wait, &mut cx).is_pending())
        })
    });
    let tokio = CancellationToken::new();
    g.bench_function("tokio-util", |b| {
        b.iter(|| {
            let mut wait = std::pin::pin!(tokio.cancelled());
            black_box(wait.as_mut().poll(&mut cx).is_pending())
        })
    });
    let source = stop_token::StopSource::new();
    let stop = source.token();
    g.bench_function("stop-token", |b| {
        b.iter(|| {
            let mut wait = stop.clone();
            black_box(poll(&mut wait, &mut cx).is_pending())
        })
    });
    let (_trigger, listener) = triggered::trigger();
    g.bench_function("triggered", |b| {
        b.iter(|| {
            let mut wait = listener.clone();
            black_box(poll(&mut wait, &mut cx).is_pending())
        })
    });
    let floor = Floor::new();
    g.bench_function("floor", |b| {
        b.iter(|| {
            let mut wait = FloorWait {
                floor: floor.clone(),
                listener: None,
            };
            black_box(poll(&mut wait, &mut cx).is_pending())
        })
    });
    g.finish();
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("two-threads/clone+check+child");
    let ours = CancelToken::new();
    g.bench_function("cancel-token", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &ours, |parent| {
                let handle = parent.clone();
                black_box(handle.is_triggered());
                black_box(handle.child());
            })
        })
    });
    let tokio = CancellationToken::new();
    g.bench_function("tokio-util", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &tokio, |parent| {
                let handle = parent.clone();
                black_box(handle.is_cancelled());
                black_box(handle.child_token());
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = new_drop, clone_drop, is_triggered, child_drop, trigger_wake, trigger_tree,
        run_ready, first_poll_wait, contended
}
criterion_main!(benches);
