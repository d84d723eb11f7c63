//! Overlapping triggers: several threads trigger tokens of one graph at once.
//!
//! The contract (DESIGN.md, Semantics): exactly one of concurrent triggers on a token returns
//! `true`; when that call returns, the token and every descendant report triggered, their
//! waiters have been woken and their callbacks have run, *except below a descendant that
//! another concurrent trigger reached first*, which the other trigger finishes. Every token
//! ends triggered once, with its origin's reason, and `triggered_token()` names itself or a
//! token it descends from. No trigger waits on another trigger's progress, so two triggers
//! whose user code waits on each other cannot hang each other.

mod common;

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::task::{Context, Wake, Waker};
use std::thread;

use cancel_token::{CallbackGuard, CancelToken, WaitOwned};
use common::{poll_with, within, CountingWaker, LIMIT};

/// Rounds of the race between two triggers whose user code waits on each other. On two cores
/// today's core hangs in roughly one round in fifty to a hundred (measured: 13 of 16 runs of
/// 200 rounds hung, and 9 of 9 runs of 2,000, the first hang between round 3 and round 194),
/// so this many makes a pass by luck very unlikely; a round takes about a millisecond when
/// nothing hangs.
const HANG_ROUNDS: usize = 2000;

/// Rounds of the other races; each takes about two milliseconds.
const ROUNDS: usize = 2000;

/// A waker that, when woken or dropped, drops the callback guard it holds (which waits for
/// that callback if it is running on another thread, as the guard documents).
struct DropsGuardWhenWoken {
    guard: Mutex<Option<CallbackGuard>>,
    woken: AtomicUsize,
}

impl DropsGuardWhenWoken {
    fn release(&self) {
        let guard = self
            .guard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        drop(guard);
    }
}

impl Wake for DropsGuardWhenWoken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.fetch_add(1, Ordering::SeqCst);
        self.release();
    }
}

impl Drop for DropsGuardWhenWoken {
    fn drop(&mut self) {
        self.release();
    }
}

/// Runs one round under [`within`], naming the round if it fails or hangs.
fn within_round(round: usize, rounds: usize, f: impl FnOnce() + Send + 'static) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| within(LIMIT, f))) {
        let message = common::panic_message(&*payload).unwrap_or("a panic");
        panic!("round {round} of {rounds}: {message}");
    }
}

/// One round of the scenario from the issue; see the test.
fn two_triggers_that_wait_on_each_other_round(round: usize) {
    let root = CancelToken::named("root");
    let z = CancelToken::named("z");
    let other = CancelToken::named("other");
    let n = CancelToken::any([&root, &z]);
    let callback_ran = Arc::new(AtomicUsize::new(0));
    let guard = other.on_cancel({
        let z = z.clone();
        let ran = Arc::clone(&callback_ran);
        move |_| {
            ran.fetch_add(1, Ordering::SeqCst);
            z.trigger();
        }
    });
    let waker = Arc::new(DropsGuardWhenWoken {
        guard: Mutex::new(Some(guard)),
        woken: AtomicUsize::new(0),
    });
    let mut wait: WaitOwned = n.clone().wait_owned();
    {
        let waker = Waker::from(Arc::clone(&waker));
        let polled = Pin::new(&mut wait).poll(&mut Context::from_waker(&waker));
        assert!(polled.is_pending());
    }

    let barrier = Arc::new(Barrier::new(2));
    let first = thread::spawn({
        let barrier = Arc::clone(&barrier);
        let other = other.clone();
        move || {
            barrier.wait();
            other.trigger()
        }
    });
    let second = thread::spawn({
        let barrier = Arc::clone(&barrier);
        let root = root.clone();
        move || {
            barrier.wait();
            root.trigger()
        }
    });
    assert!(
        first.join().unwrap(),
        "round {round}: other was triggered once"
    );
    assert!(
        second.join().unwrap(),
        "round {round}: root was triggered once"
    );

    assert!(n.is_triggered());
    assert_eq!(waker.woken.load(Ordering::SeqCst), 1, "round {round}");
    let ran = callback_ran.load(Ordering::SeqCst);
    assert!(ran <= 1, "round {round}: the callback ran {ran} times");
    assert_eq!(
        z.is_triggered(),
        ran == 1,
        "round {round}: z is triggered exactly when the callback ran"
    );
    let origin = n.triggered_token().expect("n is triggered");
    assert!(
        origin == root || origin == z,
        "round {round}: n was triggered by {origin:?}"
    );
    assert!(common::poll_once(&mut wait).is_ready());
}

/// Guards: two triggers on two threads whose user code waits on each other do not hang.
///
/// `n = any(root, z)` has a waiter whose waker, when woken, drops the guard of a callback on
/// `other`; that callback triggers `z`. One thread triggers `other`, another `root`, at once.
/// If `root`'s trigger wakes `n`'s waiter while `other`'s callback is running, the waker waits
/// for the callback (as a guard drop must), and the callback's trigger of `z` reaches `n`.
/// Today a trigger meeting a token another trigger published spins until that trigger's wake
/// loop ends, which here never happens: both threads hang. The contract forbids a trigger to
/// wait on another's progress (the other trigger finishes what it reached first).
#[test]
fn two_triggers_whose_user_code_waits_on_each_other_do_not_hang() {
    for round in 0..HANG_ROUNDS {
        within_round(round, HANG_ROUNDS, move || {
            two_triggers_that_wait_on_each_other_round(round)
        });
    }
}

/// Guards: exactly one of several concurrent triggers of one token returns `true`, its reason
/// is the one recorded, and each call, winner or not, returns only once the token reports
/// triggered.
#[test]
fn exactly_one_of_concurrent_triggers_on_a_token_returns_true() {
    const THREADS: usize = 4;
    for round in 0..ROUNDS {
        within_round(round, ROUNDS, move || {
            let token = CancelToken::new();
            let child = token.child();
            let barrier = Arc::new(Barrier::new(THREADS));
            let handles: Vec<_> = (0..THREADS)
                .map(|i| {
                    let token = token.clone();
                    let barrier = Arc::clone(&barrier);
                    thread::spawn(move || {
                        barrier.wait();
                        let won = token.trigger_with(format!("thread {i}"));
                        assert!(token.is_triggered(), "a returned trigger sees the flag");
                        won
                    })
                })
                .collect();
            let won: Vec<usize> = handles
                .into_iter()
                .enumerate()
                .filter_map(|(i, handle)| handle.join().unwrap().then_some(i))
                .collect();
            assert_eq!(won.len(), 1, "round {round}: winners {won:?}");
            let expected = format!("thread {}", won[0]);
            assert_eq!(token.reason().unwrap().message(), Some(&*expected));
            assert_eq!(child.reason().unwrap().message(), Some(&*expected));
            assert_eq!(child.triggered_token(), Some(token.clone()));
        });
    }
}

/// A token of the graph of [`a_winning_trigger_finishes_what_it_reached_first`], with what
/// was registered on it.
struct Vertex {
    label: &'static str,
    token: CancelToken,
    /// Indexes of the vertices this one was made from.
    parents: Vec<usize>,
    waker: Arc<CountingWaker>,
    /// The messages of the reasons its callback ran with.
    callback_reasons: Arc<Mutex<Vec<Option<String>>>>,
}

struct Graph {
    vertices: Vec<Vertex>,
    /// Kept registered until the round ends.
    _waits: Vec<WaitOwned>,
    _guards: Vec<CallbackGuard>,
}

impl Graph {
    /// Two roots, chains, an `any` with three parents and a diamond:
    ///
    /// ```text
    /// r1 -> a ---------> c = a.chain(b) -> d
    /// r2 -> b ---------^                  |
    /// a, d, r2 -> e = any(a, d, r2) -> f -+-> h = f.chain(g)
    /// b -> g ---------------------------/
    /// ```
    fn new() -> Graph {
        let mut vertices: Vec<Vertex> = Vec::new();
        let mut add = |label, token: CancelToken, parents: Vec<usize>| {
            vertices.push(Vertex {
                label,
                token,
                parents,
                waker: CountingWaker::new(),
                callback_reasons: Arc::new(Mutex::new(Vec::new())),
            });
        };
        let r1 = CancelToken::new();
        let r2 = CancelToken::new();
        let a = r1.child();
        let b = r2.child();
        let c = a.chain(&b);
        let d = c.child();
        let e = CancelToken::any([&a, &d, &r2]);
        let f = e.child();
        let g = b.child();
        let h = f.chain(&g);
        add("r1", r1, vec![]);
        add("r2", r2, vec![]);
        add("a", a, vec![0]);
        add("b", b, vec![1]);
        add("c", c, vec![2, 3]);
        add("d", d, vec![4]);
        add("e", e, vec![2, 5, 1]);
        add("f", f, vec![6]);
        add("g", g, vec![3]);
        add("h", h, vec![7, 8]);
        let mut waits = Vec::new();
        let mut guards = Vec::new();
        for vertex in &vertices {
            let mut wait = vertex.token.clone().wait_owned();
            assert!(poll_with(&mut wait, &vertex.waker).is_pending());
            waits.push(wait);
            let reasons = Arc::clone(&vertex.callback_reasons);
            guards.push(vertex.token.on_cancel(move |reason| {
                reasons
                    .lock()
                    .unwrap()
                    .push(reason.message().map(str::to_string));
            }));
        }
        Graph {
            vertices,
            _waits: waits,
            _guards: guards,
        }
    }

    fn index(&self, label: &str) -> usize {
        self.vertices
            .iter()
            .position(|vertex| vertex.label == label)
            .expect("a vertex of the graph")
    }

    /// The indexes of `index` and every vertex it descends from.
    fn self_and_ancestors(&self, index: usize) -> Vec<usize> {
        let mut found = vec![index];
        let mut next = 0;
        while next < found.len() {
            for &parent in &self.vertices[found[next]].parents {
                if !found.contains(&parent) {
                    found.push(parent);
                }
            }
            next += 1;
        }
        found
    }

    fn label_of(&self, token: &CancelToken) -> &'static str {
        self.vertices
            .iter()
            .find(|vertex| &vertex.token == token)
            .map_or("a token outside the graph", |vertex| vertex.label)
    }

    /// What the winning trigger of `origin` promises when it returns: every vertex it
    /// reached first (whose origin it is) reports triggered, has its waiter woken and its
    /// callback run. Returns the broken promises.
    fn check_finished_by(&self, origin: usize) -> Vec<String> {
        let origin_token = &self.vertices[origin].token;
        let mut broken = Vec::new();
        for vertex in &self.vertices {
            if vertex.token.triggered_token().as_ref() != Some(origin_token) {
                continue;
            }
            let woken = vertex.waker.count();
            if woken != 1 {
                broken.push(format!(
                    "{} (reached by {}'s trigger) woken {woken} times when it returned",
                    vertex.label, self.vertices[origin].label
                ));
            }
            let ran = vertex.callback_reasons.lock().unwrap().len();
            if ran != 1 {
                broken.push(format!(
                    "{} (reached by {}'s trigger) had its callback run {ran} times when it \
                     returned",
                    vertex.label, self.vertices[origin].label
                ));
            }
        }
        broken
    }

    /// What holds once every trigger has returned.
    fn check_final(&self, won: &[usize]) {
        for (index, vertex) in self.vertices.iter().enumerate() {
            let label = vertex.label;
            assert!(vertex.token.is_triggered(), "{label} is triggered");
            let origin = vertex.token.triggered_token().expect("triggered");
            let origin_index = self
                .vertices
                .iter()
                .position(|other| other.token == origin)
                .unwrap_or_else(|| panic!("{label}'s origin is {}", self.label_of(&origin)));
            assert!(
                self.self_and_ancestors(index).contains(&origin_index),
                "{label} was triggered by {}, which it does not descend from",
                self.vertices[origin_index].label
            );
            assert_eq!(
                origin_index == index,
                won.contains(&index),
                "{label} is its own origin exactly when a trigger of it returned true"
            );
            if origin_index != index {
                assert!(
                    vertex.parents.iter().any(|&parent| {
                        self.vertices[parent].token.triggered_token().as_ref() == Some(&origin)
                    }),
                    "{label} has the origin {} of none of its parents",
                    self.vertices[origin_index].label
                );
            }
            let reason = vertex.token.reason().expect("triggered");
            assert_eq!(Some(&reason), origin.reason().as_ref(), "{label}'s reason");
            let expected = format!("by {}", self.vertices[origin_index].label);
            assert_eq!(reason.message(), Some(&*expected), "{label}'s reason");
            assert_eq!(vertex.waker.count(), 1, "{label}'s waiter is woken once");
            assert_eq!(
                *vertex.callback_reasons.lock().unwrap(),
                [Some(expected)],
                "{label}'s callback runs once, with its own reason"
            );
        }
    }
}

/// Guards the rule for overlapping triggers: four threads trigger `r1`, `r2`, `c` and `e` of
/// one graph at once. Right after a trigger returns `true`, every token it reached first
/// (whose `triggered_token()` it is) has its waiter woken and its callback run; tokens below
/// one another trigger reached first are that trigger's to finish and are not checked. Once
/// all have returned, every token is triggered once, with the reason of a token it descends
/// from, shared with one of its parents, and its callback ran once with that reason.
///
/// Today a trigger that meets a token another trigger reached first walks below it and may
/// claim the tokens there first, taking their callbacks (which it runs only when its own walk
/// ends), so the trigger those tokens belong to can return before their callbacks have run.
/// The race is narrow: measured, 2 of 6 runs of 2,000 rounds failed (e.g. "round 276: f
/// (reached by r2's trigger) had its callback run 0 times when it returned"). The next test
/// pins the same interleaving deterministically.
#[test]
fn a_winning_trigger_finishes_what_it_reached_first() {
    let broken = Arc::new(Mutex::new(Vec::<String>::new()));
    for round in 0..ROUNDS {
        let broken = Arc::clone(&broken);
        within_round(round, ROUNDS, move || {
            let graph = Arc::new(Graph::new());
            let triggered = ["r1", "r2", "c", "e"].map(|label| graph.index(label));
            let barrier = Arc::new(Barrier::new(triggered.len()));
            let handles: Vec<_> = triggered
                .iter()
                .map(|&index| {
                    let graph = Arc::clone(&graph);
                    let barrier = Arc::clone(&barrier);
                    let broken = Arc::clone(&broken);
                    thread::spawn(move || {
                        let token = graph.vertices[index].token.clone();
                        barrier.wait();
                        let won = token.trigger_with(format!("by {}", graph.vertices[index].label));
                        assert!(token.is_triggered());
                        if won {
                            let found = graph.check_finished_by(index);
                            let mut broken = broken.lock().unwrap();
                            broken.extend(
                                found
                                    .into_iter()
                                    .map(|line| format!("round {round}: {line}")),
                            );
                        }
                        won.then_some(index)
                    })
                })
                .collect();
            let won: Vec<usize> = handles
                .into_iter()
                .filter_map(|handle| handle.join().unwrap())
                .collect();
            assert!(
                won.contains(&graph.index("r1")) && won.contains(&graph.index("r2")),
                "round {round}: nothing else triggers a root"
            );
            graph.check_final(&won);
        });
    }
    let broken = broken.lock().unwrap();
    assert!(
        broken.is_empty(),
        "{} broken promises in {ROUNDS} rounds, the first: {:?}",
        broken.len(),
        &broken[..broken.len().min(5)]
    );
}

/// A waker that, when woken, blocks until it is released if its condition holds (and says
/// which it did): it holds the trigger that wakes it at a known point of its walk.
struct Gate {
    hold_if: Box<dyn Fn() -> bool + Send + Sync>,
    reached: Mutex<mpsc::Sender<bool>>,
    release: Mutex<mpsc::Receiver<()>>,
}

/// A gate's other ends: learn whether a trigger is held there, let it go.
struct GateControl {
    reached: mpsc::Receiver<bool>,
    release: mpsc::Sender<()>,
}

impl GateControl {
    /// Waits for a trigger to reach the gate; `true` if the gate holds it.
    fn wait_reached(&self, what: &str) -> bool {
        self.reached
            .recv_timeout(LIMIT)
            .unwrap_or_else(|_| panic!("{what} never reached its gate"))
    }

    fn open(&self) {
        let _ = self.release.send(());
    }
}

fn gate(hold_if: impl Fn() -> bool + Send + Sync + 'static) -> (Waker, GateControl) {
    let (reached_tx, reached_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let waker = Waker::from(Arc::new(Gate {
        hold_if: Box::new(hold_if),
        reached: Mutex::new(reached_tx),
        release: Mutex::new(release_rx),
    }));
    let control = GateControl {
        reached: reached_rx,
        release: release_tx,
    };
    (waker, control)
}

impl Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let hold = (self.hold_if)();
        let _ = self.reached.lock().unwrap().send(hold);
        if hold {
            let _ = self.release.lock().unwrap().recv_timeout(LIMIT);
        }
    }
}

/// What `o`'s trigger left behind in one layout of
/// [`a_trigger_returns_after_the_callbacks_below_what_it_reached_first_have_run`].
struct Held {
    /// `y.triggered_token()` and how many times `y`'s callback had run when `o`'s trigger
    /// returned.
    y_origin: Option<CancelToken>,
    y_ran: usize,
    o: CancelToken,
}

/// One layout of the test below: `x` is made before `s` or after it. `None` if `o`'s trigger
/// visited `s` before `x`, so that it could not be held with `x` behind it.
fn held_below_a_foreign_walk(x_first: bool) -> Option<Held> {
    let o = CancelToken::named("o");
    let q = CancelToken::named("q");
    let (x, s) = if x_first {
        let x = o.chain(&q);
        (x, o.child())
    } else {
        let s = o.child();
        (o.chain(&q), s)
    };
    let y = x.child();
    let r3 = q.child().child().child();

    let (s_gate, s_control) = gate({
        let (x, o) = (x.clone(), o.clone());
        move || x.triggered_token().as_ref() == Some(&o)
    });
    let (r3_gate, r3_control) = gate(|| true);
    let mut s_wait = s.wait();
    let mut r3_wait = r3.wait();
    assert!(Pin::new(&mut s_wait)
        .poll(&mut Context::from_waker(&s_gate))
        .is_pending());
    assert!(Pin::new(&mut r3_wait)
        .poll(&mut Context::from_waker(&r3_gate))
        .is_pending());
    drop((s_gate, r3_gate));
    let y_waker = CountingWaker::new();
    let mut y_wait = y.clone().wait_owned();
    assert!(poll_with(&mut y_wait, &y_waker).is_pending());
    let y_callback = Arc::new(Mutex::new(Vec::<Option<String>>::new()));
    let _y_guard = y.on_cancel({
        let y_callback = Arc::clone(&y_callback);
        move |reason| {
            y_callback
                .lock()
                .unwrap()
                .push(reason.message().map(str::to_string));
        }
    });

    let o_trigger = thread::spawn({
        let (o, y) = (o.clone(), y.clone());
        let y_callback = Arc::clone(&y_callback);
        move || {
            let won = o.trigger_with("by o");
            // What `o`'s trigger promises, looked at the moment it returns.
            let y_origin = y.triggered_token();
            let y_ran = y_callback.lock().unwrap().len();
            (won, y_origin, y_ran)
        }
    });
    let held = s_control.wait_reached("o's trigger");
    let trigger_q = || {
        thread::spawn({
            let q = q.clone();
            move || q.trigger_with("by q")
        })
    };
    let (q_trigger, (o_won, y_origin, y_ran)) = if held {
        let q_trigger = trigger_q();
        r3_control.wait_reached("q's trigger");
        s_control.open();
        (q_trigger, o_trigger.join().unwrap())
    } else {
        // Not the interleaving under test: let `o`'s trigger finish before `q`'s starts.
        let o_result = o_trigger.join().unwrap();
        let q_trigger = trigger_q();
        r3_control.wait_reached("q's trigger");
        (q_trigger, o_result)
    };
    r3_control.open();
    assert!(q_trigger.join().unwrap(), "q's trigger wins q");
    assert!(o_won, "o's trigger wins o");

    // Whatever happened, everything ends consistent.
    assert_eq!(*y_callback.lock().unwrap(), [Some("by o".to_string())]);
    assert_eq!(y_waker.count(), 1);
    assert!(poll_with(&mut s_wait, &y_waker).is_ready());
    assert!(poll_with(&mut r3_wait, &y_waker).is_ready());
    held.then_some(Held { y_origin, y_ran, o })
}

/// Guards the same rule deterministically, on the interleaving the race above finds only
/// once in a few thousand rounds today.
///
/// `x = chain(o, q)` with a child `y`; `o` has a second child `s`, and `q` a chain
/// `r1 -> r2 -> r3`. The trigger of `o` reaches `x` first and is then held in `s`'s waker.
/// The trigger of `q` meets `x`, which belongs to `o`'s trigger (it reached `x` first), and is
/// then held in `r3`'s waker. Once both are held, `o`'s trigger is let go: when it returns,
/// `y` (below `x`, so `o`'s to finish; `y.triggered_token()` is `o`) must have had its
/// callback run. Both orders of making `x` and `s` are tried, so that whichever child a walk
/// visits first, one layout holds `o`'s trigger at `s` with `x` behind it.
///
/// Today `q`'s trigger walks below `x`, claims `y` and takes its callback, and runs it only at
/// the end of its own walk, still held at `r3`: `o`'s trigger returns before it has run.
#[test]
fn a_trigger_returns_after_the_callbacks_below_what_it_reached_first_have_run() {
    within(LIMIT, || {
        let mut conclusive = 0;
        for x_first in [true, false] {
            let Some(held) = held_below_a_foreign_walk(x_first) else {
                continue;
            };
            conclusive += 1;
            assert_eq!(
                held.y_origin,
                Some(held.o.clone()),
                "(x made first: {x_first}) y is below x, which o's trigger reached first"
            );
            assert_eq!(
                held.y_ran, 1,
                "(x made first: {x_first}) when o's trigger returned, y's callback had run {} \
                 times",
                held.y_ran
            );
        }
        assert!(
            conclusive > 0,
            "in neither layout did o's trigger reach x before s"
        );
    });
}
