//! Stress tests: one token tree hammered at once from OS threads, a tokio multi-thread runtime
//! and a smol executor, and adversarial callbacks and drops (triggers from inside callbacks and
//! from `Drop` impls, callbacks that register callbacks or drop their own guard, panicking
//! callbacks and wakers).
//!
//! The heavy tests are `#[ignore]`d; CI runs them in release:
//!
//! ```text
//! cargo test --release --test stress -- --ignored
//! ```
//!
//! `CANCEL_TOKEN_STRESS_SCALE` (default 1) multiplies their round counts. Every round draws its
//! randomness from one seed; a failing round prints it, and `CANCEL_TOKEN_STRESS_SEED=<seed>`
//! replays that round alone (thread interleavings differ from run to run, the operations do
//! not). The adversarial cases also run once each, single-threaded, with the normal suite.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, Once};
use std::task::{Poll, Wake};
use std::thread;
use std::time::{Duration, Instant};

use cancel_token::{CallbackGuard, CancelToken, Reason, ReasonKind};
use common::{panic_message, poll_once, poll_with, wait_until, within, CountingWaker, LIMIT};
use futures_lite::future::{self as lite, FutureExt as _};

// ---------------------------------------------------------------------------------------------
// Scale, seeds, panics

/// `CANCEL_TOKEN_STRESS_SCALE`, default 1, never below 1.
fn stress_scale() -> usize {
    std::env::var("CANCEL_TOKEN_STRESS_SCALE")
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .max(1)
}

/// `CANCEL_TOKEN_STRESS_SEED`, decimal or `0x` hex: replay one round.
fn replay_seed() -> Option<u64> {
    let value = std::env::var("CANCEL_TOKEN_STRESS_SEED").ok()?;
    let value = value.trim();
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("CANCEL_TOKEN_STRESS_SEED={value} is not a number")))
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Runs `base_rounds * scale` rounds of `round`, each with its own seed (or only the replayed
/// seed), and prints the seed of a round that fails before resuming its panic.
fn run_rounds(name: &str, salt: u64, base_rounds: usize, mut round: impl FnMut(u64)) {
    let seeds: Vec<u64> = match replay_seed() {
        Some(seed) => vec![seed],
        None => (0..base_rounds * stress_scale())
            .map(|k| splitmix64(salt.wrapping_mul(0x1000_0000_01B3) ^ k as u64))
            .collect(),
    };
    let start = Instant::now();
    for (k, &seed) in seeds.iter().enumerate() {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| round(seed))) {
            eprintln!(
                "{name}: round {k} failed; replay it with CANCEL_TOKEN_STRESS_SEED={seed:#x}"
            );
            panic::resume_unwind(payload);
        }
    }
    eprintln!("{name}: {} rounds in {:?}", seeds.len(), start.elapsed());
}

/// Prefix of the panics these tests cause on purpose; the panic hook keeps them quiet.
const EXPECTED_PANIC: &str = "expected panic";

fn silence_expected_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let expected =
                panic_message(info.payload()).is_some_and(|m| m.starts_with(EXPECTED_PANIC));
            if !expected {
                default(info);
            }
        }));
    });
}

/// Awaits `future` from a plain thread, failing if it takes longer than [`LIMIT`].
fn finish<T>(what: &str, future: impl Future<Output = T>) -> T {
    lite::block_on(lite::or(async { Some(future.await) }, async {
        smol::Timer::after(LIMIT).await;
        None
    }))
    .unwrap_or_else(|| panic!("{what} did not finish within {LIMIT:?}"))
}

/// Triggers `token` with `reason` when dropped.
struct TriggerOnDrop {
    token: CancelToken,
    reason: &'static str,
}

impl Drop for TriggerOnDrop {
    fn drop(&mut self) {
        self.token.trigger_with(self.reason);
    }
}

/// A callback that counts its runs.
fn counting(counter: &Arc<AtomicUsize>) -> impl FnOnce(&Reason) + Send + 'static {
    let counter = Arc::clone(counter);
    move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

fn count(counter: &AtomicUsize) -> usize {
    counter.load(Ordering::SeqCst)
}

/// Everything a token must still do after something went wrong around it: report its state,
/// make children, run callbacks, resolve waits.
fn assert_usable(token: &CancelToken) {
    let triggered = token.is_triggered();
    assert_eq!(token.reason().is_some(), triggered);
    assert_eq!(token.triggered_token().is_some(), triggered);
    assert_eq!(token.raise_if_triggered().is_err(), triggered);
    let child = token.child();
    assert_eq!(child.is_triggered(), triggered);
    let ran = Arc::new(AtomicUsize::new(0));
    let guard = token.on_cancel(counting(&ran));
    assert_eq!(count(&ran), usize::from(triggered));
    let mut wait = token.wait();
    assert_eq!(poll_once(&mut wait).is_ready(), triggered);
    if !triggered {
        let waker = CountingWaker::new();
        assert!(poll_with(&mut wait, &waker).is_pending());
        assert!(child.trigger_with("usable child"));
        assert!(!token.is_triggered(), "a child never triggers its parent");
        assert!(token.trigger_with("usable"));
        assert_eq!(waker.count(), 1);
        assert!(poll_with(&mut wait, &waker).is_ready());
        assert_eq!(count(&ran), 1);
    }
    drop(guard);
}

// ---------------------------------------------------------------------------------------------
// (a) One tree, three kinds of participants

/// Pool of handles the participants share.
const POOL: usize = 24;
/// Operations per participant per round.
const OPS: usize = 40;
const THREADS: usize = 2;
const TOKIO_TASKS: usize = 2;
const SMOL_TASKS: usize = 2;
/// Long-lived wait futures per round, resolved by the final trigger.
const LONG_WAITS: usize = 8;

#[derive(Clone, Copy, Debug)]
enum Flavor {
    Tokio,
    Smol,
}

enum LongWait {
    Tokio(tokio::task::JoinHandle<()>),
    Smol(smol::Task<()>),
}

/// Possible origins: every token something was asked to trigger, with the reasons it was
/// asked to use. Recorded before the trigger, so a trigger still running on another thread
/// (the timer thread, a callback) is never missing.
type Origins = Arc<Mutex<HashMap<CancelToken, Vec<Reason>>>>;

fn record(origins: &Origins, token: &CancelToken, reason: Reason) {
    origins
        .lock()
        .unwrap()
        .entry(token.clone())
        .or_default()
        .push(reason);
}

/// Runtimes shared by every round of a test.
struct Executors {
    tokio: tokio::runtime::Runtime,
    smol: Arc<smol::Executor<'static>>,
    smol_stop: Option<smol::channel::Sender<()>>,
    smol_thread: Option<thread::JoinHandle<()>>,
}

impl Executors {
    fn new() -> Executors {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let smol = Arc::new(smol::Executor::new());
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let executor = Arc::clone(&smol);
        let smol_thread = thread::Builder::new()
            .name("smol".into())
            .spawn(move || {
                let _ = smol::block_on(executor.run(stopped.recv()));
            })
            .expect("spawn the smol thread");
        Executors {
            tokio,
            smol,
            smol_stop: Some(stop),
            smol_thread: Some(smol_thread),
        }
    }
}

impl Drop for Executors {
    fn drop(&mut self) {
        drop(self.smol_stop.take());
        if let Some(thread) = self.smol_thread.take() {
            let _ = thread.join();
        }
    }
}

/// One round's tree and bookkeeping.
struct Tree {
    seed: u64,
    root: CancelToken,
    pool: Mutex<Vec<Option<CancelToken>>>,
    origins: Origins,
    /// Run counters of every callback registered this round.
    counters: Mutex<Vec<Arc<AtomicUsize>>>,
    /// Guards kept to the end of the round: their callbacks must run exactly once.
    guards: Mutex<Vec<(CallbackGuard, usize)>>,
    long_waits: Mutex<Vec<LongWait>>,
    next_reason: AtomicUsize,
    /// Triggers (direct, not from callbacks) that returned `true`.
    won: AtomicUsize,
    smol: Arc<smol::Executor<'static>>,
}

impl Tree {
    fn new(seed: u64, smol: Arc<smol::Executor<'static>>) -> Tree {
        let root = CancelToken::named("root");
        let pool = (0..POOL)
            .map(|k| (k % 2 == 0).then(|| root.child()))
            .collect();
        Tree {
            seed,
            root,
            pool: Mutex::new(pool),
            origins: Origins::default(),
            counters: Mutex::default(),
            guards: Mutex::default(),
            long_waits: Mutex::default(),
            next_reason: AtomicUsize::new(0),
            won: AtomicUsize::new(0),
            smol,
        }
    }

    /// A handle of a random token of the tree.
    fn pick(&self, rng: &mut fastrand::Rng) -> CancelToken {
        let pool = self.pool.lock().unwrap();
        let start = rng.usize(..POOL);
        (0..POOL)
            .find_map(|k| pool[(start + k) % POOL].clone())
            .unwrap_or_else(|| self.root.clone())
    }

    /// Puts `token` in a random slot; the handle it replaces is dropped outside the lock
    /// (dropping a handle can free nodes and run the `Drop` of unrun callbacks).
    fn put(&self, rng: &mut fastrand::Rng, token: Option<CancelToken>) {
        let old = std::mem::replace(&mut self.pool.lock().unwrap()[rng.usize(..POOL)], token);
        drop(old);
    }

    fn reason(&self, who: &str) -> String {
        let n = self.next_reason.fetch_add(1, Ordering::Relaxed);
        format!("{:x}/{who}/{n}", self.seed)
    }

    /// Triggers `token` with a fresh reason; when it was this call that triggered, checks that
    /// the descendants made just before report triggered.
    fn trigger(&self, rng: &mut fastrand::Rng, who: &str, token: &CancelToken) {
        let message = self.reason(who);
        let reason = if rng.bool() {
            Reason::from(message)
        } else {
            Reason::with_message(ReasonKind::Signal, message)
        };
        let child = token.child();
        let other = self.pick(rng);
        let linked = CancelToken::any([&other, token]);
        record(&self.origins, token, reason.clone());
        if token.trigger_with(reason) {
            self.won.fetch_add(1, Ordering::Relaxed);
            assert!(
                child.is_triggered(),
                "a child of a token whose trigger returned"
            );
            assert!(
                linked.is_triggered(),
                "an any() of a token whose trigger returned"
            );
            assert!(token.reason().is_some());
        }
    }

    /// One operation that needs no runtime. Returns `false` (doing nothing) for the share of
    /// operations left to the participant's own kind.
    fn sync_op(&self, rng: &mut fastrand::Rng, who: &str) -> bool {
        match rng.u32(0..100) {
            0..=17 => {
                let child = self.pick(rng).child();
                self.put(rng, Some(child));
            }
            18..=24 => {
                let chained = self.pick(rng).chain(&self.pick(rng));
                self.put(rng, Some(chained));
            }
            25..=31 => {
                let sources: Vec<CancelToken> =
                    (0..rng.usize(1..=4)).map(|_| self.pick(rng)).collect();
                let any = CancelToken::any(&sources);
                drop(sources);
                self.put(rng, Some(any));
            }
            32..=34 => {
                let timeout = Duration::from_micros(rng.u64(0..3000));
                let child = self.pick(rng).child_with_timeout(timeout);
                let message = format!("deadline of {timeout:?} elapsed");
                record(
                    &self.origins,
                    &child,
                    Reason::with_message(ReasonKind::Timeout, message),
                );
                self.put(rng, Some(child));
            }
            35..=41 => {
                let token = self.pick(rng);
                self.trigger(rng, who, &token);
            }
            42..=55 => self.register(rng, who),
            56..=60 => {
                let guard = {
                    let mut guards = self.guards.lock().unwrap();
                    let len = guards.len();
                    (len > 0).then(|| guards.swap_remove(rng.usize(..len)))
                };
                drop(guard);
            }
            61..=66 => self.put(rng, None),
            67..=69 => {
                let token = self.pick(rng);
                let guard = token.clone().drop_guard();
                if rng.bool() {
                    record(&self.origins, &token, Reason::new(ReasonKind::Dropped));
                    drop(guard);
                } else {
                    drop(guard.disarm());
                }
            }
            70..=74 => {
                // Flag and reason are published together, and the origin agrees.
                let token = self.pick(rng);
                if token.is_triggered() {
                    let reason = token.reason().expect("a triggered token has its reason");
                    let origin = token.triggered_token().expect("and its origin");
                    assert_eq!(origin.reason(), Some(reason));
                }
            }
            _ => return false,
        }
        true
    }

    /// Registers a callback on a random token: one that counts, or one that counts and then
    /// triggers another random token of the tree. The guard is kept, detached or dropped.
    fn register(&self, rng: &mut fastrand::Rng, who: &str) {
        let token = self.pick(rng);
        let counter = Arc::new(AtomicUsize::new(0));
        let id = {
            let mut counters = self.counters.lock().unwrap();
            counters.push(Arc::clone(&counter));
            counters.len() - 1
        };
        let guard = if rng.bool() {
            token.on_cancel(counting(&counter))
        } else {
            let target = self.pick(rng);
            let reason = Reason::from(self.reason(who));
            let origins = Arc::clone(&self.origins);
            token.on_cancel(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
                record(&origins, &target, reason.clone());
                target.trigger_with(reason);
            })
        };
        match rng.u32(0..3) {
            0 => self.guards.lock().unwrap().push((guard, id)),
            1 => guard.detach(),
            _ => drop(guard),
        }
    }

    fn spawn_long_wait(&self, token: CancelToken, flavor: Flavor) {
        let mut waits = self.long_waits.lock().unwrap();
        if waits.len() >= LONG_WAITS {
            return;
        }
        waits.push(match flavor {
            Flavor::Tokio => LongWait::Tokio(tokio::spawn(token.wait_owned())),
            Flavor::Smol => LongWait::Smol(self.smol.spawn(token.wait_owned())),
        });
    }

    /// The end of a round, after the root's trigger returned.
    // The lint sees the token's interior state; `Hash` and `Eq` only use its identity.
    #[allow(clippy::mutable_key_type)]
    fn check(&self) {
        let origins = self.origins.lock().unwrap().clone();
        let mut survivors: Vec<CancelToken> = self
            .pool
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect();
        survivors.extend(
            self.guards
                .lock()
                .unwrap()
                .iter()
                .map(|(guard, _)| guard.token().clone()),
        );
        survivors.extend(origins.keys().cloned());
        survivors.push(self.root.clone());
        for token in &survivors {
            // A subtree a short deadline's trigger reached first is that trigger's to finish,
            // and it runs on a timer thread that may still be walking it.
            assert!(
                token.wait_blocking_timeout(Duration::from_secs(10)),
                "{token:?} is untriggered after the root's trigger and any deadline's"
            );
            let reason = token.reason().expect("a triggered token has its reason");
            let origin = token.triggered_token().expect("and its origin");
            let asked = origins.get(&origin).unwrap_or_else(|| {
                panic!("{token:?} names {origin:?}, which nobody asked to trigger")
            });
            assert!(
                asked.contains(&reason),
                "{token:?} has reason {reason:?}, never given to its origin {origin:?} ({asked:?})"
            );
            assert_eq!(
                origin.triggered_token().as_ref(),
                Some(&origin),
                "an origin fired itself"
            );
            assert_eq!(
                origin.reason().as_ref(),
                Some(&reason),
                "a descendant has its origin's reason"
            );
            let cancelled = token.raise_if_triggered().unwrap_err();
            assert_eq!(cancelled.token(), &origin);
            assert_eq!(cancelled.reason(), &reason);
        }
        drop(survivors);

        // Callbacks of nodes another trigger published (a timer's, a callback's) may still be
        // running on that thread.
        let counters = self.counters.lock().unwrap().clone();
        let kept: Vec<usize> = self
            .guards
            .lock()
            .unwrap()
            .iter()
            .map(|&(_, id)| id)
            .collect();
        for id in kept {
            wait_until("a kept callback to run", LIMIT, || count(&counters[id]) > 0);
        }
        for (id, counter) in counters.iter().enumerate() {
            assert!(
                count(counter) <= 1,
                "callback {id} ran {} times",
                count(counter)
            );
        }
        for id in self.guards.lock().unwrap().iter().map(|&(_, id)| id) {
            assert_eq!(count(&counters[id]), 1, "kept callback {id}");
        }
    }
}

fn thread_participant(tree: Arc<Tree>, mut rng: fastrand::Rng, who: String, go: Arc<AtomicBool>) {
    while !go.load(Ordering::Acquire) {
        thread::yield_now();
    }
    for _ in 0..OPS {
        if tree.sync_op(&mut rng, &who) {
            continue;
        }
        let token = tree.pick(&mut rng);
        match rng.u32(0..3) {
            0 => {
                let timeout = Duration::from_micros(rng.u64(0..50));
                if token.wait_blocking_timeout(timeout) {
                    assert!(token.is_triggered());
                }
            }
            1 => {
                let waker = CountingWaker::new();
                let mut wait = token.wait();
                let first = poll_with(&mut wait, &waker);
                thread::yield_now();
                if first.is_pending() && waker.count() > 0 {
                    assert!(
                        poll_with(&mut wait, &waker).is_ready(),
                        "woken means triggered"
                    );
                }
            }
            _ => thread::yield_now(),
        }
    }
}

async fn async_participant(
    tree: Arc<Tree>,
    mut rng: fastrand::Rng,
    who: String,
    go: Arc<AtomicBool>,
    flavor: Flavor,
) {
    while !go.load(Ordering::Acquire) {
        lite::yield_now().await;
    }
    for _ in 0..OPS {
        if tree.sync_op(&mut rng, &who) {
            continue;
        }
        let token = tree.pick(&mut rng);
        let pause = Duration::from_micros(rng.u64(0..100));
        match rng.u32(0..5) {
            0 => {
                let woken = match flavor {
                    Flavor::Tokio => tokio::time::timeout(pause, token.wait()).await.is_ok(),
                    Flavor::Smol => {
                        lite::or(
                            async {
                                token.wait().await;
                                true
                            },
                            async {
                                smol::Timer::after(pause).await;
                                false
                            },
                        )
                        .await
                    }
                };
                if woken {
                    assert!(token.is_triggered());
                }
            }
            1 => {
                if lite::poll_once(token.wait()).await.is_some() {
                    assert!(token.is_triggered());
                }
            }
            2 => tree.spawn_long_wait(token, flavor),
            3 => {
                let result = match flavor {
                    Flavor::Tokio => token.run(tokio::time::sleep(pause)).await,
                    Flavor::Smol => token.run(smol::Timer::after(pause)).await.map(drop),
                };
                if let Err(cancelled) = result {
                    assert!(token.is_triggered());
                    assert_eq!(Some(cancelled.token().clone()), token.triggered_token());
                }
            }
            _ => lite::yield_now().await,
        }
    }
}

/// What the rounds of the hammer test did, summed.
#[derive(Debug, Default)]
struct HammerStats {
    triggers_won: usize,
    callbacks: usize,
    callbacks_ran: usize,
    kept_guards: usize,
    long_waits: usize,
}

fn hammer_round(executors: &Executors, seed: u64, stats: &mut HammerStats) {
    let tree = Arc::new(Tree::new(seed, Arc::clone(&executors.smol)));
    let mut rng = fastrand::Rng::with_seed(seed);
    let go = Arc::new(AtomicBool::new(false));

    let waited = tree.pick(&mut rng);
    let (waited_tx, waited_rx) = mpsc::channel();
    let blocking_waiter = thread::spawn(move || {
        waited.wait_blocking();
        let _ = waited_tx.send(());
    });

    let threads: Vec<_> = (0..THREADS)
        .map(|k| {
            let (tree, go) = (Arc::clone(&tree), Arc::clone(&go));
            let rng = fastrand::Rng::with_seed(rng.u64(..));
            thread::spawn(move || thread_participant(tree, rng, format!("thread{k}"), go))
        })
        .collect();
    let tokio_tasks: Vec<_> = (0..TOKIO_TASKS)
        .map(|k| {
            let (tree, go) = (Arc::clone(&tree), Arc::clone(&go));
            let rng = fastrand::Rng::with_seed(rng.u64(..));
            let who = format!("tokio{k}");
            executors.tokio.spawn(
                AssertUnwindSafe(async_participant(tree, rng, who, go, Flavor::Tokio))
                    .catch_unwind(),
            )
        })
        .collect();
    let smol_tasks: Vec<_> = (0..SMOL_TASKS)
        .map(|k| {
            let (tree, go) = (Arc::clone(&tree), Arc::clone(&go));
            let rng = fastrand::Rng::with_seed(rng.u64(..));
            let who = format!("smol{k}");
            executors.smol.spawn(
                AssertUnwindSafe(async_participant(tree, rng, who, go, Flavor::Smol))
                    .catch_unwind(),
            )
        })
        .collect();
    go.store(true, Ordering::Release);

    for thread in threads {
        if let Err(payload) = thread.join() {
            panic::resume_unwind(payload);
        }
    }
    for task in tokio_tasks {
        let joined = finish("a tokio participant", task).expect("the tokio task was not aborted");
        if let Err(payload) = joined {
            panic::resume_unwind(payload);
        }
    }
    for task in smol_tasks {
        if let Err(payload) = finish("a smol participant", task) {
            panic::resume_unwind(payload);
        }
    }

    let reason = Reason::from("root");
    record(&tree.origins, &tree.root, reason.clone());
    tree.root.trigger_with(reason);
    tree.check();

    waited_rx
        .recv_timeout(LIMIT)
        .expect("a blocking waiter returns after the root's trigger");
    blocking_waiter.join().unwrap();
    let long_waits = std::mem::take(&mut *tree.long_waits.lock().unwrap());
    let counters = tree.counters.lock().unwrap();
    stats.triggers_won += tree.won.load(Ordering::Relaxed);
    stats.callbacks += counters.len();
    stats.callbacks_ran += counters.iter().map(|counter| count(counter)).sum::<usize>();
    stats.kept_guards += tree.guards.lock().unwrap().len();
    stats.long_waits += long_waits.len();
    drop(counters);
    for wait in long_waits {
        match wait {
            LongWait::Tokio(task) => finish("a tokio wait", task).expect("wait task"),
            LongWait::Smol(task) => finish("a smol wait", task),
        }
    }
}

/// OS threads, tokio tasks and smol tasks share one tree per round: they make children,
/// chains, `any` and deadline tokens, trigger random nodes with distinct reasons, register and
/// drop callbacks (some of which trigger other nodes), poll and drop waits, wait with tiny
/// timeouts, drop handles and drop guards. Then the root is triggered and every surviving
/// token must be triggered, with a reason that was given to its origin, every callback must
/// have run at most once (exactly once if its guard was kept) and every wait must complete.
#[test]
#[ignore = "stress: run in release with --ignored"]
fn one_tree_hammered_from_threads_tokio_and_smol() {
    let executors = Executors::new();
    let mut stats = HammerStats::default();
    run_rounds("one_tree_hammered", 1, 2_000, |seed| {
        hammer_round(&executors, seed, &mut stats);
    });
    eprintln!("one_tree_hammered: {stats:?}");
}

/// Two triggers meet at a shared descendant: `x` and `p` are triggered at the same moment
/// from two threads and `y = any(x, p)` is a descendant of both. `x` has many children, so
/// its walk reaches `y` late, usually after `p`'s walk has triggered `y` and taken its
/// callbacks and waiters; a slow waker registered on `y` first widens that window.
///
/// Asserted: when `x.trigger()` returns `true`, `y` reports triggered, with the reason of
/// whichever trigger reached it first and that trigger's token. If that was `x`, `y`'s waiter
/// has been woken and its callback has run before `x.trigger()` returned; if it was `p`, they
/// are `p`'s trigger's to finish (the rule tokio-util and .NET give), and they are done once
/// `p.trigger()` returned. The test prints how often `p` won.
#[test]
#[ignore = "stress: run in release with --ignored"]
fn concurrent_triggers_meet_at_a_shared_descendant() {
    struct SlowWaker;
    impl std::task::Wake for SlowWaker {
        fn wake(self: Arc<Self>) {
            thread::sleep(Duration::from_millis(2));
        }
    }
    let mut p_first = 0;
    let mut rounds = 0;
    run_rounds("shared_descendant", 4, 300, |_| {
        rounds += 1;
        let p = CancelToken::named("p");
        let x = CancelToken::named("x");
        let y = CancelToken::any([&x, &p]);
        // Made after `y`: `x`'s walk visits them before `y`.
        let children: Vec<CancelToken> = (0..500).map(|_| x.child()).collect();
        let _slow = p.on_cancel(|_| thread::sleep(Duration::from_millis(1)));
        let ran = Arc::new(AtomicUsize::new(0));
        let _on_y = y.on_cancel(counting(&ran));
        let mut slow_wait = y.wait();
        let slow_waker = std::task::Waker::from(Arc::new(SlowWaker));
        let mut slow_cx = std::task::Context::from_waker(&slow_waker);
        assert!(std::pin::Pin::new(&mut slow_wait)
            .poll(&mut slow_cx)
            .is_pending());
        let waker = CountingWaker::new();
        let mut wait = y.wait();
        assert!(poll_with(&mut wait, &waker).is_pending());

        let barrier = Arc::new(std::sync::Barrier::new(2));
        let other = thread::spawn({
            let (p, barrier) = (p.clone(), Arc::clone(&barrier));
            move || {
                barrier.wait();
                assert!(p.trigger_with("p"));
            }
        });
        barrier.wait();
        assert!(x.trigger_with("x"));
        assert!(
            y.is_triggered(),
            "a descendant of a token whose trigger returned"
        );
        let origin = y.triggered_token().unwrap();
        assert!(origin == x || origin == p);
        assert_eq!(y.reason().unwrap().message(), origin.name());
        assert!(children.iter().all(CancelToken::is_triggered));
        if origin == x {
            assert_eq!(waker.count(), 1, "x claimed y: y's waiters were woken");
            assert_eq!(count(&ran), 1, "x claimed y: y's callback ran");
        } else {
            p_first += 1;
        }
        other.join().unwrap();
        assert_eq!(count(&ran), 1);
        assert_eq!(waker.count(), 1);
        assert!(poll_with(&mut wait, &waker).is_ready());
    });
    eprintln!("shared_descendant: in {p_first} of {rounds} rounds p's trigger reached y first");
}

/// Triggers overlap inside one random graph: three threads trigger three nested nodes (an
/// ancestor, a node in its subtree, a node in that one's subtree) at the same moment. A
/// trigger that returns `true` leaves triggered every node it could reach without passing a
/// node another trigger reached first: a node below it still untriggered when it returned must
/// end up with another trigger as its origin. Every node names one of the three as its origin,
/// with that one's reason, and carries what one of its parents carries; every callback runs
/// once with its own token's reason.
#[test]
#[ignore = "stress: run in release with --ignored"]
fn overlapping_triggers_leave_whole_subtrees_triggered() {
    run_rounds("overlapping_triggers", 5, 2_000, overlapping_round);
}

/// Nodes of an overlapping-triggers graph.
const GRAPH: usize = 120;

fn overlapping_round(seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut tokens = vec![CancelToken::new()];
    let mut children: Vec<Vec<usize>> = vec![Vec::new()];
    let mut parents: Vec<Vec<usize>> = vec![Vec::new()];
    for k in 1..GRAPH {
        // Sources among the last few nodes make the graph deep as well as wide.
        let arity = match rng.u32(0..4) {
            0 | 1 => 1,
            2 => 2,
            _ => 3,
        };
        let sources: Vec<usize> = (0..arity)
            .map(|_| rng.usize(k.saturating_sub(6)..k))
            .collect();
        let token = match sources.len() {
            1 => tokens[sources[0]].child(),
            2 => tokens[sources[0]].chain(&tokens[sources[1]]),
            _ => CancelToken::any(sources.iter().map(|&s| &tokens[s])),
        };
        for &s in &sources {
            children[s].push(k);
        }
        tokens.push(token);
        children.push(Vec::new());
        parents.push(sources);
    }
    let descendants = |from: usize| {
        let mut seen = [false; GRAPH];
        let mut stack = vec![from];
        while let Some(k) = stack.pop() {
            for &c in &children[k] {
                if !std::mem::replace(&mut seen[c], true) {
                    stack.push(c);
                }
            }
        }
        (0..GRAPH).filter(|&k| seen[k]).collect::<Vec<usize>>()
    };
    // Three nested triggerers, each in the subtree of the one before when there is one.
    let mut picked = vec![rng.usize(..GRAPH / 4)];
    for _ in 0..2 {
        let below = descendants(*picked.last().unwrap());
        picked.push(if below.is_empty() {
            rng.usize(..GRAPH)
        } else {
            below[rng.usize(..below.len())]
        });
    }
    // Callbacks on a third of the nodes: whichever walk runs one, it gets its own token's
    // reason.
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    let guards: Vec<_> = (0..GRAPH)
        .filter(|k| k % 3 == 0)
        .map(|k| {
            let heard = Arc::clone(&heard);
            tokens[k].on_cancel(move |reason| heard.lock().unwrap().push((k, reason.clone())))
        })
        .collect();
    let tokens = Arc::new(tokens);
    let barrier = Arc::new(std::sync::Barrier::new(picked.len()));
    let threads: Vec<_> = picked
        .iter()
        .enumerate()
        .map(|(j, &k)| {
            let (tokens, barrier) = (Arc::clone(&tokens), Arc::clone(&barrier));
            let below = descendants(k);
            thread::spawn(move || {
                barrier.wait();
                let won = tokens[k].trigger_with(format!("t{j}"));
                let untriggered: Vec<usize> = below
                    .into_iter()
                    .filter(|&d| won && !tokens[d].is_triggered())
                    .collect();
                (k, untriggered)
            })
        })
        .collect();
    let mut left = Vec::new();
    for thread in threads {
        match thread.join() {
            Ok(result) => left.push(result),
            Err(payload) => panic::resume_unwind(payload),
        }
    }
    for (k, untriggered) in left {
        for d in untriggered {
            assert_ne!(
                tokens[d].triggered_token().as_ref(),
                Some(&tokens[k]),
                "node {d} was left untriggered by node {k}'s trigger, which it names"
            );
        }
    }
    let origins: Vec<&CancelToken> = picked.iter().map(|&k| &tokens[k]).collect();
    for token in tokens.iter().filter(|token| token.is_triggered()) {
        let origin = token.triggered_token().unwrap();
        assert!(origins.contains(&&origin), "{token:?} names {origin:?}");
        assert_eq!(token.reason(), origin.reason());
    }
    // A node that did not fire itself carries what one of its parents carries, even below a
    // node two triggers reached at once.
    for (k, token) in tokens.iter().enumerate() {
        let Some(origin) = token.triggered_token() else {
            continue;
        };
        if &origin != token {
            assert!(
                parents[k]
                    .iter()
                    .any(|&p| tokens[p].triggered_token().as_ref() == Some(&origin)),
                "node {k} names {origin:?}, which none of its parents carries"
            );
        }
    }
    // Everything below a triggerer is triggered once all three returned.
    for &k in &picked {
        assert!(descendants(k).iter().all(|&d| tokens[d].is_triggered()));
    }
    let mut heard = heard.lock().unwrap().clone();
    heard.sort_by_key(|(k, _)| *k);
    let expected: Vec<usize> = (0..GRAPH)
        .filter(|k| k % 3 == 0 && tokens[*k].is_triggered())
        .collect();
    let ran: Vec<usize> = heard.iter().map(|(k, _)| *k).collect();
    assert_eq!(ran, expected, "each triggered node's callback ran once");
    for (k, reason) in heard {
        assert_eq!(Some(reason), tokens[k].reason(), "the callback of node {k}");
    }
    drop(guards);
}

// ---------------------------------------------------------------------------------------------
// (b) Adversarial callbacks and drops, single-threaded

/// A callback triggers a token of another tree: that tree is fully triggered, its callbacks
/// have run and its waiters are woken when the outer trigger returns.
#[test]
fn a_callback_triggers_another_tree() {
    let a = CancelToken::named("a");
    let b = CancelToken::named("b");
    let b_child = b.child();
    let ran = Arc::new(AtomicUsize::new(0));
    let _b_callback = b_child.on_cancel(counting(&ran));
    let waker = CountingWaker::new();
    let mut wait = b_child.wait();
    assert!(poll_with(&mut wait, &waker).is_pending());
    let _trigger_b = a.on_cancel({
        let b = b.clone();
        move |_| assert!(b.trigger_with("from a's callback"))
    });

    assert!(a.trigger());
    assert_eq!(
        b_child.reason().unwrap().message(),
        Some("from a's callback")
    );
    assert_eq!(b_child.triggered_token(), Some(b.clone()));
    assert_eq!(count(&ran), 1);
    assert_eq!(waker.count(), 1);
    assert!(poll_with(&mut wait, &waker).is_ready());
}

/// Callbacks trigger tokens of their own tree: a child's callback triggers the root (which
/// reaches the siblings), a callback re-triggers a token whose trigger is running, and a
/// callback triggers its own token.
#[test]
fn a_callback_triggers_its_own_tree() {
    let root = CancelToken::named("root");
    let c1 = root.child_named("c1");
    let c2 = root.child_named("c2");
    let c2_grandchild = c2.child();
    let c2_ran = Arc::new(AtomicUsize::new(0));
    let _on_c2 = c2_grandchild.on_cancel(counting(&c2_ran));
    let results = Arc::new(Mutex::new(Vec::new()));
    let _c1_triggers_root = c1.on_cancel({
        let (root, c1, results) = (root.clone(), c1.clone(), Arc::clone(&results));
        move |reason| {
            assert_eq!(reason.message(), Some("c1 itself"));
            // No lock held across the triggers: c2's callback runs inside the second.
            let again = c1.trigger_with("again");
            results.lock().unwrap().push(again);
            let fired = root.trigger_with("from c1's callback");
            results.lock().unwrap().push(fired);
        }
    });
    let _c2_retriggers_root = c2.on_cancel({
        let (root, results) = (root.clone(), Arc::clone(&results));
        move |_| {
            results
                .lock()
                .unwrap()
                .push(root.trigger_with("from c2's callback"))
        }
    });

    assert!(c1.trigger_with("c1 itself"));
    // c1's callback triggered the root, whose trigger ran c2's callback inside it.
    assert_eq!(*results.lock().unwrap(), [false, false, true]);
    assert_eq!(c1.reason().unwrap().message(), Some("c1 itself"));
    assert_eq!(root.reason().unwrap().message(), Some("from c1's callback"));
    assert_eq!(c2_grandchild.triggered_token(), Some(root.clone()));
    assert_eq!(count(&c2_ran), 1);
    for token in [&root, &c1, &c2, &c2_grandchild] {
        assert_usable(token);
    }
}

/// `run` sees the trigger and drops the wrapped future, whose `Drop` triggers other tokens:
/// another tree, the token's own parent, and a sibling. Each is triggered (with its callbacks
/// run) by the time `run` returns `Err`, and the future is dropped exactly then.
#[test]
fn the_drop_of_a_future_run_drops_on_cancellation_triggers_tokens() {
    let other = CancelToken::named("other");
    let parent = CancelToken::named("parent");
    let token = parent.child_named("token");
    let sibling = parent.child_named("sibling");
    let sibling_ran = Arc::new(AtomicUsize::new(0));
    let _on_sibling = sibling.on_cancel(counting(&sibling_ran));
    let future = {
        let guards = (
            TriggerOnDrop {
                token: other.clone(),
                reason: "dropped future",
            },
            TriggerOnDrop {
                token: parent.clone(),
                reason: "dropped future (parent)",
            },
        );
        async move {
            let _guards = guards;
            std::future::pending::<()>().await;
        }
    };
    let mut run = pin!(token.run(future));
    assert!(poll_once(&mut run).is_pending());
    assert!(!other.is_triggered() && !parent.is_triggered());

    assert!(token.trigger_with("stop"));
    assert!(
        !other.is_triggered(),
        "the future is dropped when run sees the trigger"
    );
    let Poll::Ready(Err(cancelled)) = poll_once(&mut run) else {
        panic!("run resolves with Err once its token is triggered");
    };
    assert_eq!(cancelled.token(), &token);
    assert_eq!(other.reason().unwrap().message(), Some("dropped future"));
    assert_eq!(
        parent.reason().unwrap().message(),
        Some("dropped future (parent)")
    );
    assert_eq!(sibling.triggered_token(), Some(parent.clone()));
    assert_eq!(count(&sibling_ran), 1);
    assert_eq!(
        token.reason().unwrap().message(),
        Some("stop"),
        "the first reason stays"
    );

    // Pre-triggered: the future is dropped, never polled, at the first poll.
    let late = CancelToken::new();
    let polled = Arc::new(AtomicBool::new(false));
    let future = {
        let guard = TriggerOnDrop {
            token: late.clone(),
            reason: "dropped unpolled",
        };
        let polled = Arc::clone(&polled);
        async move {
            let _guard = guard;
            polled.store(true, Ordering::SeqCst);
        }
    };
    let mut run = pin!(token.run(future));
    assert!(matches!(poll_once(&mut run), Poll::Ready(Err(_))));
    assert!(!polled.load(Ordering::SeqCst));
    assert_eq!(late.reason().unwrap().message(), Some("dropped unpolled"));
    for token in [&other, &parent, &token, &sibling, &late] {
        assert_usable(token);
    }
}

/// `run_owned` on tokio, cancelled from a plain thread: the wrapped future's `Drop` triggers
/// another token on the executor's thread.
#[test]
fn the_drop_of_a_future_run_owned_drops_on_an_executor_triggers_a_token() {
    within(LIMIT, || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let token = CancelToken::new();
        let other = CancelToken::new();
        let guard = TriggerOnDrop {
            token: other.clone(),
            reason: "dropped on tokio",
        };
        let task = runtime.spawn(token.clone().run_owned(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }));
        thread::spawn({
            let token = token.clone();
            move || token.trigger()
        })
        .join()
        .unwrap();
        let result = runtime.block_on(task).unwrap();
        assert!(result.is_err());
        assert_eq!(other.reason().unwrap().message(), Some("dropped on tokio"));
    });
}

/// A value captured by a callback closure triggers tokens from its `Drop` when the closure is
/// dropped unrun: when the guard is dropped (triggering another token, or the very token the
/// callback was registered on), and when the node of a detached callback is freed (triggering
/// the freed node's parent, or a sibling).
#[test]
fn the_drop_of_a_callback_capture_triggers_tokens() {
    // Guard dropped: another token.
    let token = CancelToken::new();
    let other = CancelToken::new();
    let other_child = other.child();
    let ran = Arc::new(AtomicUsize::new(0));
    let guard = token.on_cancel({
        let capture = TriggerOnDrop {
            token: other.clone(),
            reason: "capture dropped",
        };
        let ran = Arc::clone(&ran);
        move |_| {
            let _capture = capture;
            ran.fetch_add(1, Ordering::SeqCst);
        }
    });
    drop(guard);
    assert_eq!(
        other_child.reason().unwrap().message(),
        Some("capture dropped")
    );
    token.trigger();
    assert_eq!(count(&ran), 0);

    // Guard dropped: the capture triggers the callback's own token; the callback does not
    // run, the token's other callbacks do.
    let token = CancelToken::new();
    let others_ran = Arc::new(AtomicUsize::new(0));
    let _before = token.on_cancel(counting(&others_ran));
    let guard = token.on_cancel({
        let capture = TriggerOnDrop {
            token: token.clone(),
            reason: "own capture dropped",
        };
        let ran = Arc::clone(&ran);
        move |_| {
            let _capture = capture;
            ran.fetch_add(1, Ordering::SeqCst);
        }
    });
    let _after = token.on_cancel(counting(&others_ran));
    drop(guard);
    assert_eq!(
        token.reason().unwrap().message(),
        Some("own capture dropped")
    );
    assert_eq!(count(&ran), 0);
    assert_eq!(count(&others_ran), 2);
    assert_usable(&token);

    // Detached on a node that is freed: the capture triggers the freed node's parent, and a
    // sibling through another capture.
    let parent = CancelToken::named("parent");
    let sibling = parent.child();
    let sibling_ran = Arc::new(AtomicUsize::new(0));
    let _on_sibling = sibling.on_cancel(counting(&sibling_ran));
    let doomed = parent.child();
    let ran = Arc::new(AtomicUsize::new(0));
    doomed
        .on_cancel({
            let capture = TriggerOnDrop {
                token: parent.clone(),
                reason: "freed node's capture",
            };
            let ran = Arc::clone(&ran);
            move |_| {
                let _capture = capture;
                ran.fetch_add(1, Ordering::SeqCst);
            }
        })
        .detach();
    let lonely = CancelToken::new();
    let lonely_child = lonely.child();
    lonely_child
        .on_cancel({
            let capture = TriggerOnDrop {
                token: sibling.clone(),
                reason: "sibling's capture",
            };
            move |_| drop(capture)
        })
        .detach();
    drop(lonely_child);
    assert_eq!(
        sibling.reason().unwrap().message(),
        Some("sibling's capture")
    );
    assert_eq!(count(&sibling_ran), 1);
    assert!(!parent.is_triggered());
    drop(doomed);
    assert_eq!(
        parent.reason().unwrap().message(),
        Some("freed node's capture")
    );
    assert_eq!(count(&ran), 0);
    for token in [&parent, &sibling, &lonely] {
        assert_usable(token);
    }
}

/// A callback registers callbacks: on its own (triggered) token and a triggered descendant,
/// which run at once, nested; and on an untriggered token, which runs once when that one
/// triggers.
#[test]
fn callbacks_register_callbacks() {
    let token = CancelToken::named("token");
    let descendant = token.child().child();
    let later = CancelToken::named("later");
    let log = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::new(Mutex::new(Vec::<CallbackGuard>::new()));
    let _outer = token.on_cancel({
        let (token, descendant, later) = (token.clone(), descendant.clone(), later.clone());
        let (log, kept) = (Arc::clone(&log), Arc::clone(&kept));
        move |_| {
            log.lock().unwrap().push("outer");
            let nested = |name: &'static str| {
                let log = Arc::clone(&log);
                move |_: &Reason| log.lock().unwrap().push(name)
            };
            let on_self = token.on_cancel(nested("on self"));
            let on_descendant = descendant.on_cancel(nested("on descendant"));
            let on_later = later.on_cancel(nested("on later"));
            assert!(!on_self.is_pending() && !on_descendant.is_pending());
            assert!(on_later.is_pending());
            kept.lock()
                .unwrap()
                .extend([on_self, on_descendant, on_later]);
            log.lock().unwrap().push("outer done");
        }
    });
    token.trigger();
    assert_eq!(
        *log.lock().unwrap(),
        ["outer", "on self", "on descendant", "outer done"]
    );
    later.trigger();
    later.trigger();
    assert_eq!(log.lock().unwrap().last(), Some(&"on later"));
    assert_eq!(log.lock().unwrap().len(), 5);
}

/// A callback drops its own guard (no deadlock, runs once), the guard of a later callback on
/// the same trigger (which then never runs) and the guard of an earlier one (no effect).
#[test]
fn callbacks_drop_guards_during_the_trigger() {
    within(LIMIT, || {
        let root = CancelToken::new();
        let child = root.child();
        let first = Arc::new(AtomicUsize::new(0));
        let own = Arc::new(AtomicUsize::new(0));
        let victim = Arc::new(AtomicUsize::new(0));
        let last = Arc::new(AtomicUsize::new(0));
        let first_slot = Arc::new(Mutex::new(Some(root.on_cancel(counting(&first)))));
        let own_slot: Arc<Mutex<Option<CallbackGuard>>> = Arc::default();
        let victim_slot: Arc<Mutex<Option<CallbackGuard>>> = Arc::default();
        *own_slot.lock().unwrap() = Some(root.on_cancel({
            let slots = (
                Arc::clone(&first_slot),
                Arc::clone(&own_slot),
                Arc::clone(&victim_slot),
            );
            let own = Arc::clone(&own);
            move |_| {
                own.fetch_add(1, Ordering::SeqCst);
                let guards = (
                    slots.0.lock().unwrap().take(),
                    slots.1.lock().unwrap().take(),
                    slots.2.lock().unwrap().take(),
                );
                drop(guards);
            }
        }));
        // On a child: collected by the same trigger, after the dropper in registration order.
        *victim_slot.lock().unwrap() = Some(child.on_cancel(counting(&victim)));
        let _last = child.on_cancel(counting(&last));

        assert!(root.trigger());
        assert_eq!(
            [count(&first), count(&own), count(&victim), count(&last)],
            [1, 1, 0, 1]
        );
        assert!(own_slot.lock().unwrap().is_none());
        assert_usable(&root);
        assert_usable(&child);
    });
}

/// Panicking callbacks: the others still run, waiters are woken, the first panic is resumed,
/// and afterwards the token, its tree and its siblings are fully usable.
#[test]
fn panicking_callbacks_leave_the_tree_usable() {
    silence_expected_panics();
    within(LIMIT, || {
        let parent = CancelToken::named("parent");
        let token = parent.child_named("token");
        let sibling = parent.child_named("sibling");
        let grandchild = token.child();
        let ran = Arc::new(AtomicUsize::new(0));
        let _a = token.on_cancel(counting(&ran));
        let _b = token.on_cancel(|_| panic!("{EXPECTED_PANIC}: first"));
        let _c = grandchild.on_cancel(counting(&ran));
        let _d = grandchild.on_cancel(|_| panic!("{EXPECTED_PANIC}: second"));
        let _e = token.on_cancel(counting(&ran));
        let waker = CountingWaker::new();
        let mut wait = grandchild.wait();
        assert!(poll_with(&mut wait, &waker).is_pending());

        let payload = panic::catch_unwind(|| token.trigger_with("boom")).unwrap_err();
        assert_eq!(panic_message(&*payload), Some("expected panic: first"));
        assert_eq!(count(&ran), 3);
        assert_eq!(waker.count(), 1);
        assert!(poll_with(&mut wait, &waker).is_ready());
        assert_eq!(grandchild.reason().unwrap().message(), Some("boom"));

        // A panicking callback registered on a triggered token panics out of `on_cancel`.
        let payload = panic::catch_unwind(|| token.on_cancel(|_| panic!("{EXPECTED_PANIC}: late")))
            .unwrap_err();
        assert_eq!(panic_message(&*payload), Some("expected panic: late"));

        // A drop guard whose trigger panics, outside of unwinding: the panic propagates.
        let guarded = sibling.child();
        let _f = guarded.on_cancel(|_| panic!("{EXPECTED_PANIC}: drop guard"));
        let guard = guarded.clone().drop_guard();
        assert!(panic::catch_unwind(AssertUnwindSafe(|| drop(guard))).is_err());
        assert_eq!(guarded.reason().unwrap().kind(), ReasonKind::Dropped);

        for token in [&token, &grandchild, &guarded, &sibling, &parent] {
            assert_usable(token);
        }
    });
}

/// A waker that panics when woken, and one that panics when its last clone is dropped (which
/// the token does under its lock when a wait is polled with a new waker): propagation goes on,
/// other waiters are woken, and no poisoned lock gets in the way of later calls.
#[test]
fn panicking_wakers_leave_the_token_usable() {
    silence_expected_panics();
    struct PanicOnWake;
    impl Wake for PanicOnWake {
        fn wake(self: Arc<Self>) {
            panic!("{EXPECTED_PANIC}: wake");
        }
    }
    struct PanicOnDrop(Arc<AtomicBool>);
    impl Wake for PanicOnDrop {
        fn wake(self: Arc<Self>) {}
    }
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            if self.0.load(Ordering::SeqCst) {
                panic!("{EXPECTED_PANIC}: waker drop");
            }
        }
    }
    within(LIMIT, || {
        let token = CancelToken::new();
        let child = token.child();

        let armed = Arc::new(AtomicBool::new(false));
        let mut poisoning = child.wait();
        {
            let waker = std::task::Waker::from(Arc::new(PanicOnDrop(Arc::clone(&armed))));
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(pin!(&mut poisoning).poll(&mut cx).is_pending());
        }
        armed.store(true, Ordering::SeqCst);
        // Re-polled with another waker: the old one is replaced (and dropped) under the lock.
        let replaced = panic::catch_unwind(AssertUnwindSafe(|| poll_once(&mut poisoning)));
        assert!(replaced.is_err(), "the waker's drop panicked");
        armed.store(false, Ordering::SeqCst);

        let mut panicking = child.wait();
        let waker = std::task::Waker::from(Arc::new(PanicOnWake));
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(pin!(&mut panicking).poll(&mut cx).is_pending());
        let counting_waker = CountingWaker::new();
        let mut counted = child.wait();
        assert!(poll_with(&mut counted, &counting_waker).is_pending());
        let ran = Arc::new(AtomicUsize::new(0));
        let _callback = child.on_cancel(counting(&ran));
        let grandchild = child.child();

        assert!(token.trigger());
        assert!(grandchild.is_triggered());
        assert_eq!(counting_waker.count(), 1);
        assert_eq!(count(&ran), 1);
        assert!(poll_with(&mut counted, &counting_waker).is_ready());
        drop((poisoning, panicking, counted));
        for token in [&token, &child, &grandchild] {
            assert_usable(token);
        }
        assert_usable(&CancelToken::new());
    });
}

// ---------------------------------------------------------------------------------------------
// (b) Adversarial callbacks and drops, concurrently

/// Tokens per adversarial round.
const ADVERSARIAL_TOKENS: usize = 16;

/// Callbacks of every adversarial kind on a random tree, with guards dropped and tokens
/// triggered from three threads at once (each trigger under `catch_unwind`) while a fourth
/// drives `run` futures whose `Drop` triggers tokens. Afterwards every token is triggered,
/// every callback ran at most once (non-panicking kept ones exactly once), and every token is
/// fully usable.
#[test]
#[ignore = "stress: run in release with --ignored"]
fn adversarial_callbacks_under_concurrent_triggers() {
    silence_expected_panics();
    run_rounds("adversarial_callbacks", 2, 3_000, adversarial_round);
}

fn adversarial_round(seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let root = CancelToken::named("root");
    let outsider = CancelToken::named("outsider");
    let mut tokens = vec![root.clone()];
    for _ in 1..ADVERSARIAL_TOKENS {
        let a = tokens[rng.usize(..tokens.len())].clone();
        let token = match rng.u32(0..4) {
            0 | 1 => a.child(),
            2 => a.chain(&tokens[rng.usize(..tokens.len())]),
            _ => CancelToken::any([&a, &tokens[rng.usize(..tokens.len())], &outsider]),
        };
        tokens.push(token);
    }
    let tokens = Arc::new(tokens);

    let mut counters: Vec<Arc<AtomicUsize>> = Vec::new();
    // Callbacks whose guards stay held until they run: each must run exactly once.
    let mut kept: Vec<usize> = Vec::new();
    let mut guards: Vec<CallbackGuard> = Vec::new();
    // Guards the threads drop while others trigger.
    let mut droppable: Vec<CallbackGuard> = Vec::new();
    for _ in 0..ADVERSARIAL_TOKENS * 2 {
        let on = tokens[rng.usize(..tokens.len())].clone();
        let counter = Arc::new(AtomicUsize::new(0));
        let target = tokens[rng.usize(..tokens.len())].clone();
        let id = counters.len();
        counters.push(Arc::clone(&counter));
        let guard = match rng.u32(0..6) {
            // Triggers a token of the tree, or the outsider (both may panic in their
            // callbacks, which then panics out of this one).
            0 => {
                let target = if rng.bool() { target } else { outsider.clone() };
                on.on_cancel(move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    target.trigger_with("from a callback");
                })
            }
            // Registers callbacks, one of which it keeps for later.
            1 => {
                let nested = Arc::new(AtomicUsize::new(0));
                on.on_cancel(move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    target.on_cancel(counting(&nested)).detach();
                    let _dropped_at_once = target.on_cancel(counting(&nested));
                })
            }
            // Drops its own guard.
            2 => {
                let slot: Arc<Mutex<Option<CallbackGuard>>> = Arc::default();
                let guard = on.on_cancel({
                    let slot = Arc::clone(&slot);
                    move |_| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let own = slot.lock().unwrap().take();
                        drop(own);
                    }
                });
                // The slot, captured by the callback, keeps the guard until it runs.
                *slot.lock().unwrap() = Some(guard);
                kept.push(id);
                continue;
            }
            // A capture that triggers a token when the closure is dropped (run or not).
            3 => {
                let capture = TriggerOnDrop {
                    token: target,
                    reason: "capture dropped",
                };
                on.on_cancel(move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    drop(capture);
                })
            }
            // Panics.
            4 => on.on_cancel(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
                panic!("{EXPECTED_PANIC}: adversarial");
            }),
            _ => on.on_cancel(counting(&counter)),
        };
        if rng.u32(0..4) == 0 {
            droppable.push(guard);
        } else {
            guards.push(guard);
            kept.push(id);
        }
    }

    let go = Arc::new(AtomicBool::new(false));
    let droppable = Arc::new(Mutex::new(droppable));
    let mut threads = Vec::new();
    for k in 0..3 {
        let (tokens, go, droppable) =
            (Arc::clone(&tokens), Arc::clone(&go), Arc::clone(&droppable));
        let mut rng = fastrand::Rng::with_seed(rng.u64(..));
        threads.push(thread::spawn(move || {
            while !go.load(Ordering::Acquire) {
                thread::yield_now();
            }
            for _ in 0..6 {
                if rng.bool() {
                    let guard = droppable.lock().unwrap().pop();
                    // Dropping a guard may run a capture's `Drop`, which triggers, whose
                    // callbacks may panic.
                    let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(guard)));
                }
                let token = &tokens[rng.usize(..tokens.len())];
                let reason = format!("thread {k}");
                let _ = panic::catch_unwind(|| token.trigger_with(reason.as_str()));
            }
        }));
    }
    {
        let (tokens, go) = (Arc::clone(&tokens), Arc::clone(&go));
        let mut rng = fastrand::Rng::with_seed(rng.u64(..));
        threads.push(thread::spawn(move || {
            while !go.load(Ordering::Acquire) {
                thread::yield_now();
            }
            for _ in 0..4 {
                let token = &tokens[rng.usize(..tokens.len())];
                let guard = TriggerOnDrop {
                    token: tokens[rng.usize(..tokens.len())].clone(),
                    reason: "dropped run future",
                };
                let future = async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                };
                let result = panic::catch_unwind(AssertUnwindSafe(|| {
                    lite::block_on(lite::or(async { Some(token.run(future).await) }, async {
                        smol::Timer::after(Duration::from_micros(200)).await;
                        None
                    }))
                }));
                if let Ok(Some(result)) = result {
                    assert!(result.is_err(), "a pending future never completes");
                }
            }
        }));
    }
    go.store(true, Ordering::Release);
    for thread in threads {
        if let Err(payload) = thread.join() {
            panic::resume_unwind(payload);
        }
    }

    let _ = panic::catch_unwind(|| root.trigger_with("root"));
    let _ = panic::catch_unwind(|| outsider.trigger_with("outsider"));
    for token in tokens.iter() {
        assert!(token.is_triggered(), "{token:?} after the root's trigger");
        let origin = token.triggered_token().unwrap();
        assert_eq!(origin.reason(), token.reason());
    }
    for (id, counter) in counters.iter().enumerate() {
        assert!(
            count(counter) <= 1,
            "callback {id} ran {} times",
            count(counter)
        );
    }
    for &id in &kept {
        assert_eq!(count(&counters[id]), 1, "kept callback {id}");
    }
    drop(guards);
    drop(droppable);
    for token in tokens.iter() {
        let ran = panic::catch_unwind(AssertUnwindSafe(|| assert_usable(token)));
        if let Err(payload) = ran {
            panic::resume_unwind(payload);
        }
    }
}

/// The single-threaded adversarial tests above, each many times over, in parallel threads.
#[test]
#[ignore = "stress: run in release with --ignored"]
fn adversarial_cases_repeated_in_parallel() {
    silence_expected_panics();
    run_rounds("adversarial_cases", 3, 1_000, |_| {
        let cases: [fn(); 8] = [
            a_callback_triggers_another_tree,
            a_callback_triggers_its_own_tree,
            the_drop_of_a_future_run_drops_on_cancellation_triggers_tokens,
            the_drop_of_a_callback_capture_triggers_tokens,
            callbacks_register_callbacks,
            callbacks_drop_guards_during_the_trigger,
            panicking_callbacks_leave_the_tree_usable,
            panicking_wakers_leave_the_token_usable,
        ];
        let threads: Vec<_> = cases.iter().map(|&case| thread::spawn(case)).collect();
        for thread in threads {
            if let Err(payload) = thread.join() {
                panic::resume_unwind(payload);
            }
        }
    });
}
