//! Model-based property tests: random programs over a pool of token handles, run against the
//! crate and against a small, naive reference model, compared after every step.
//!
//! The model keeps, per token: its name, the sources it is linked to, its trigger record
//! (reason and origin), its effective deadline and how many handles the harness holds. It
//! triggers with a plain worklist over "tokens that list me as a source", and decides which
//! tokens are still alive by reachability from the held handles, following the strong
//! references the crate keeps: a token holds its sources (so an intermediate token whose
//! handles are gone stays linked while it has descendants), and a triggered token holds the
//! origin of its trigger (`triggered_token`). Liveness is observable: a detached callback on a
//! token that is freed before its trigger never runs, and its closure is dropped.
//!
//! After every step the harness checks, for every handle it holds (slots, callback guards, kept
//! waits, drop guards): `is_triggered`, `reason` (kind and message), `triggered_token` identity,
//! `raise_if_triggered`, `name`, `deadline`; for every callback ever registered: how often it
//! ran (0 or 1), with which reason, in which order, and whether its closure was dropped; for
//! every kept wait future: whether its waker was woken and whether it is ready when polled.

mod common;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cancel_token::{CallbackGuard, CancelToken, DropGuard, Reason, ReasonKind};
use common::{poll_with, CountingWaker, Dropped};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Handle slots of the harness.
const SLOTS: usize = 8;
/// Names for `named` and `child_named`.
const NAMES: [&str; 4] = ["a", "b", "c", "d"];
/// Far enough that no deadline fires while a test runs.
const FAR: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------------------------
// Programs

/// How a `Trigger` op triggers.
#[derive(Clone, Copy, Debug)]
enum How {
    /// `trigger()`: `Manual`, no message.
    Plain,
    /// `trigger_with(String)`: `Manual` with a message unique to the step.
    Message,
    /// `trigger_with(Reason::with_message(Signal, ..))`.
    Signal,
    /// `trigger_with(ReasonKind::Superseded)`: a kind, no message.
    Superseded,
}

/// One step of a program. Slot operands are taken modulo [`SLOTS`]; a source slot that is empty
/// falls through to the next occupied one (the op does nothing if all are empty). Indices into
/// the kept guards and waits are taken modulo how many are kept.
#[derive(Clone, Debug)]
enum Op {
    New {
        dst: u8,
    },
    Named {
        dst: u8,
        name: u8,
    },
    /// `with_timeout(1 hour)`.
    WithTimeout {
        dst: u8,
    },
    /// `with_deadline(start + hours + 1 hour)`.
    WithDeadline {
        dst: u8,
        hours: u8,
    },
    Child {
        src: u8,
        dst: u8,
        name: Option<u8>,
    },
    /// `child_with_timeout(1 hour)`.
    ChildWithTimeout {
        src: u8,
        dst: u8,
    },
    Chain {
        a: u8,
        b: u8,
        dst: u8,
    },
    Any {
        srcs: Vec<u8>,
        dst: u8,
    },
    CloneHandle {
        src: u8,
        dst: u8,
    },
    DropHandle {
        slot: u8,
    },
    Trigger {
        slot: u8,
        how: How,
    },
    RegisterCallback {
        slot: u8,
    },
    DropCallbackGuard {
        i: u8,
    },
    DetachCallbackGuard {
        i: u8,
    },
    /// Creates a `Wait` (borrowing a handle owned by the future) or a `WaitOwned`, polls it once
    /// with a counting waker and keeps it.
    PollWait {
        slot: u8,
        owned: bool,
    },
    DropWait {
        i: u8,
    },
    MakeDropGuard {
        slot: u8,
    },
    DropDropGuard {
        i: u8,
    },
    /// Disarms a kept drop guard and puts the token it gives back into slot `dst`.
    DisarmDropGuard {
        i: u8,
        dst: u8,
    },
    /// `wait_blocking_timeout(Duration::ZERO)`.
    BlockingCheck {
        slot: u8,
    },
}

fn how() -> impl Strategy<Value = How> {
    prop_oneof![
        Just(How::Plain),
        Just(How::Message),
        Just(How::Signal),
        Just(How::Superseded)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let s = || 0..SLOTS as u8;
    let name = || 0..NAMES.len() as u8;
    prop_oneof![
        2 => s().prop_map(|dst| Op::New { dst }),
        1 => (s(), name()).prop_map(|(dst, name)| Op::Named { dst, name }),
        1 => s().prop_map(|dst| Op::WithTimeout { dst }),
        1 => (s(), 0..3u8).prop_map(|(dst, hours)| Op::WithDeadline { dst, hours }),
        8 => (s(), s(), prop::option::weighted(0.3, name()))
            .prop_map(|(src, dst, name)| Op::Child { src, dst, name }),
        1 => (s(), s()).prop_map(|(src, dst)| Op::ChildWithTimeout { src, dst }),
        4 => (s(), s(), s()).prop_map(|(a, b, dst)| Op::Chain { a, b, dst }),
        4 => (prop::collection::vec(s(), 0..5), s()).prop_map(|(srcs, dst)| Op::Any { srcs, dst }),
        2 => (s(), s()).prop_map(|(src, dst)| Op::CloneHandle { src, dst }),
        3 => s().prop_map(|slot| Op::DropHandle { slot }),
        4 => (s(), how()).prop_map(|(slot, how)| Op::Trigger { slot, how }),
        6 => s().prop_map(|slot| Op::RegisterCallback { slot }),
        1 => any::<u8>().prop_map(|i| Op::DropCallbackGuard { i }),
        2 => any::<u8>().prop_map(|i| Op::DetachCallbackGuard { i }),
        3 => (s(), any::<bool>()).prop_map(|(slot, owned)| Op::PollWait { slot, owned }),
        1 => any::<u8>().prop_map(|i| Op::DropWait { i }),
        1 => s().prop_map(|slot| Op::MakeDropGuard { slot }),
        1 => any::<u8>().prop_map(|i| Op::DropDropGuard { i }),
        1 => (any::<u8>(), s()).prop_map(|(i, dst)| Op::DisarmDropGuard { i, dst }),
        1 => s().prop_map(|slot| Op::BlockingCheck { slot }),
    ]
}

/// Ops that trigger nothing: building a graph, registering, dropping.
fn build_op() -> impl Strategy<Value = Op> {
    op().prop_filter("no trigger while building", |op| {
        !matches!(op, Op::Trigger { .. } | Op::DropDropGuard { .. })
    })
}

/// A random program of up to 40 steps.
fn program() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..=40)
}

/// Ops that trigger.
fn trigger_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..SLOTS as u8, how()).prop_map(|(slot, how)| Op::Trigger { slot, how }),
        1 => any::<u8>().prop_map(|i| Op::DropDropGuard { i }),
    ]
}

/// Up to 28 steps that build a graph (with extra callbacks) without triggering anything, then
/// up to 12 steps of which about half trigger: most triggers then reach a populated graph,
/// with callbacks and waits in it.
fn build_then_run() -> impl Strategy<Value = Vec<Op>> {
    let build = prop_oneof![
        4 => build_op(),
        1 => (0..SLOTS as u8).prop_map(|slot| Op::RegisterCallback { slot }),
        1 => (0..SLOTS as u8, 0..SLOTS as u8, 0..SLOTS as u8)
            .prop_map(|(a, b, dst)| Op::Chain { a, b, dst }),
    ];
    let run = prop_oneof![1 => trigger_op(), 1 => op()];
    (
        prop::collection::vec(build, 0..=28),
        prop::collection::vec(run, 1..=12),
    )
        .prop_map(|(mut build, run)| {
            build.extend(run);
            build
        })
}

// ---------------------------------------------------------------------------------------------
// The reference model

#[derive(Clone, Debug, PartialEq, Eq)]
struct MReason {
    kind: ReasonKind,
    message: Option<String>,
}

impl MReason {
    fn of(reason: &Reason) -> MReason {
        MReason {
            kind: reason.kind(),
            message: reason.message().map(str::to_owned),
        }
    }
}

#[derive(Clone, Debug)]
struct MFired {
    reason: MReason,
    /// The token whose trigger fired this one (itself if triggered directly).
    origin: usize,
}

/// A deadline known to lie in `[lo, hi]` (`with_timeout` reads the clock itself).
type Bounds = (Instant, Instant);

#[derive(Debug)]
struct MToken {
    name: Option<String>,
    /// The tokens this one is linked to and triggered by; empty if it was born triggered.
    sources: Vec<usize>,
    fired: Option<MFired>,
    /// Handles the harness holds, directly or inside guards and wait futures.
    handles: usize,
    /// Effective deadline of a token that was not born triggered.
    deadline: Option<Bounds>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CbState {
    /// Registered, guard held.
    Guarded,
    /// Registered, guard detached.
    Detached,
    /// Guard dropped before the trigger.
    Cancelled,
    Ran,
}

#[derive(Debug)]
struct MCallback {
    token: usize,
    state: CbState,
}

#[derive(Debug)]
struct MWait {
    token: usize,
    /// Ready at its first poll, or seen ready by a later poll.
    done: bool,
    /// Woken by a trigger while registered.
    woken: bool,
    dropped: bool,
}

/// One log entry: which callback ran, with which reason.
type LogEntry = (usize, MReason);

#[derive(Debug, Default)]
struct Model {
    tokens: Vec<MToken>,
    callbacks: Vec<MCallback>,
    waits: Vec<MWait>,
    log: Vec<LogEntry>,
}

fn earliest(a: Option<Bounds>, b: Option<Bounds>) -> Option<Bounds> {
    match (a, b) {
        (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.min(b.1))),
        (a, b) => a.or(b),
    }
}

fn joined(names: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    let names: Vec<String> = names.into_iter().flatten().collect();
    (!names.is_empty()).then(|| names.join(":"))
}

impl Model {
    /// A new token with one handle, linked to `sources` unless one of them is triggered, in
    /// which case it is born triggered with the first triggered source's record.
    fn new_token(&mut self, name: Option<String>, sources: &[usize], own: Option<Bounds>) -> usize {
        let born = sources.iter().find_map(|&s| {
            self.tokens[s].fired.as_ref().map(|fired| MFired {
                reason: fired.reason.clone(),
                origin: fired.origin,
            })
        });
        let (sources, deadline) = match born {
            Some(_) => (Vec::new(), None),
            None => {
                let inherited = sources
                    .iter()
                    .fold(None, |acc, &s| earliest(acc, self.tokens[s].deadline));
                (sources.to_vec(), earliest(own, inherited))
            }
        };
        self.tokens.push(MToken {
            name,
            sources,
            fired: born,
            handles: 1,
            deadline,
        });
        self.tokens.len() - 1
    }

    fn name(&self, token: usize) -> Option<String> {
        self.tokens[token].name.clone()
    }

    fn triggered(&self, token: usize) -> bool {
        self.tokens[token].fired.is_some()
    }

    /// Tokens reachable from a held handle through source links and origin references: the
    /// strong references the crate keeps (a node holds its parents, and a triggered node holds
    /// the origin `triggered_token` names). A node nothing reaches is freed, and with it the
    /// closures of its detached callbacks; the model only sees that through those closures.
    fn alive(&self) -> Vec<bool> {
        let mut alive = vec![false; self.tokens.len()];
        let mut stack: Vec<usize> = (0..self.tokens.len())
            .filter(|&t| self.tokens[t].handles > 0)
            .collect();
        while let Some(t) = stack.pop() {
            if std::mem::replace(&mut alive[t], true) {
                continue;
            }
            stack.extend(self.tokens[t].sources.iter().copied());
            if let Some(fired) = &self.tokens[t].fired {
                stack.push(fired.origin);
            }
        }
        alive
    }

    /// Naive trigger: every live token reachable through source links from `token` that is
    /// not yet triggered gets `token`'s record; then callbacks run in registration order and
    /// registered waits are woken.
    fn trigger(&mut self, token: usize, reason: MReason) -> bool {
        if self.triggered(token) {
            return false;
        }
        let alive = self.alive();
        let fired = MFired {
            reason,
            origin: token,
        };
        self.tokens[token].fired = Some(fired.clone());
        let mut newly = vec![token];
        let mut seen = vec![false; self.tokens.len()];
        seen[token] = true;
        let mut work = vec![token];
        while let Some(n) = work.pop() {
            for c in 0..self.tokens.len() {
                if alive[c] && !seen[c] && self.tokens[c].sources.contains(&n) {
                    seen[c] = true;
                    if self.tokens[c].fired.is_none() {
                        self.tokens[c].fired = Some(fired.clone());
                        newly.push(c);
                    }
                    work.push(c);
                }
            }
        }
        for id in 0..self.callbacks.len() {
            let cb = &mut self.callbacks[id];
            if newly.contains(&cb.token) && matches!(cb.state, CbState::Guarded | CbState::Detached)
            {
                cb.state = CbState::Ran;
                self.log.push((id, fired.reason.clone()));
            }
        }
        for wait in &mut self.waits {
            if newly.contains(&wait.token) && !wait.done && !wait.dropped {
                wait.woken = true;
            }
        }
        true
    }

    /// `on_cancel`: runs at once on a triggered token. The guard holds a handle.
    fn register_callback(&mut self, token: usize) -> usize {
        let id = self.callbacks.len();
        let state = match &self.tokens[token].fired {
            Some(fired) => {
                self.log.push((id, fired.reason.clone()));
                CbState::Ran
            }
            None => CbState::Guarded,
        };
        self.callbacks.push(MCallback { token, state });
        self.tokens[token].handles += 1;
        id
    }

    fn release_guard(&mut self, id: usize, detach: bool) {
        let cb = &mut self.callbacks[id];
        if cb.state == CbState::Guarded {
            cb.state = if detach {
                CbState::Detached
            } else {
                CbState::Cancelled
            };
        }
        self.tokens[cb.token].handles -= 1;
    }

    /// A wait future polled once: ready at once on a triggered token. It holds a handle.
    fn new_wait(&mut self, token: usize) -> usize {
        self.waits.push(MWait {
            token,
            done: self.triggered(token),
            woken: false,
            dropped: false,
        });
        self.tokens[token].handles += 1;
        self.waits.len() - 1
    }

    fn drop_wait(&mut self, id: usize) {
        self.waits[id].dropped = true;
        self.tokens[self.waits[id].token].handles -= 1;
    }

    /// Whether a callback's closure must have been dropped by now.
    fn closure_dropped(&self, id: usize, alive: &[bool]) -> bool {
        let cb = &self.callbacks[id];
        match cb.state {
            CbState::Ran | CbState::Cancelled => true,
            CbState::Guarded => false,
            CbState::Detached => !alive[cb.token],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The harness

struct Callback {
    runs: Arc<AtomicUsize>,
    dropped: Dropped,
}

struct KeptWait {
    id: usize,
    /// A handle of the waited token, dropped together with the future (which holds its own).
    token: CancelToken,
    tid: usize,
    future: Pin<Box<dyn Future<Output = ()> + Send>>,
    waker: Arc<CountingWaker>,
}

struct Harness {
    start: Instant,
    step: usize,
    slots: Vec<Option<(CancelToken, usize)>>,
    guards: Vec<(CallbackGuard, usize)>,
    callbacks: Vec<Callback>,
    waits: Vec<KeptWait>,
    drop_guards: Vec<(DropGuard, usize)>,
    log: Arc<Mutex<Vec<LogEntry>>>,
    model: Model,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            start: Instant::now(),
            step: 0,
            slots: (0..SLOTS).map(|_| None).collect(),
            guards: Vec::new(),
            callbacks: Vec::new(),
            waits: Vec::new(),
            drop_guards: Vec::new(),
            log: Arc::default(),
            model: Model::default(),
        }
    }

    /// A clone of the handle in slot `slot`, or in the next occupied one after it. The model
    /// counts only the slot's handle: every op drops its clone before the step ends, or hands
    /// it on to the model explicitly.
    fn source(&self, slot: u8) -> Option<(CancelToken, usize)> {
        (0..SLOTS)
            .map(|k| (slot as usize + k) % SLOTS)
            .find_map(|k| self.slots[k].clone())
    }

    /// Puts a new handle into slot `dst`, dropping the handle that was there.
    fn place(&mut self, dst: u8, token: CancelToken, tid: usize) {
        let old = self.slots[dst as usize % SLOTS].replace((token, tid));
        if let Some((old, old_tid)) = old {
            drop(old);
            self.model.tokens[old_tid].handles -= 1;
        }
    }

    fn run(&mut self, op: &Op) {
        self.step += 1;
        match op {
            Op::New { dst } => {
                let tid = self.model.new_token(None, &[], None);
                self.place(*dst, CancelToken::new(), tid);
            }
            Op::Named { dst, name } => {
                let name = NAMES[*name as usize % NAMES.len()];
                let tid = self.model.new_token(Some(name.into()), &[], None);
                self.place(*dst, CancelToken::named(name), tid);
            }
            Op::WithTimeout { dst } => {
                let lo = Instant::now() + FAR;
                let token = CancelToken::with_timeout(FAR);
                let hi = Instant::now() + FAR;
                let tid = self.model.new_token(None, &[], Some((lo, hi)));
                self.place(*dst, token, tid);
            }
            Op::WithDeadline { dst, hours } => {
                let at = self.start + FAR * (u32::from(*hours) + 1);
                let tid = self.model.new_token(None, &[], Some((at, at)));
                self.place(*dst, CancelToken::with_deadline(at), tid);
            }
            Op::Child { src, dst, name } => {
                let Some((parent, ptid)) = self.source(*src) else {
                    return;
                };
                let (token, name) = match name {
                    Some(name) => {
                        let name = NAMES[*name as usize % NAMES.len()];
                        (parent.child_named(name), Some(name.to_owned()))
                    }
                    None => (parent.child(), None),
                };
                drop(parent);
                let tid = self.model.new_token(name, &[ptid], None);
                self.place(*dst, token, tid);
            }
            Op::ChildWithTimeout { src, dst } => {
                let Some((parent, ptid)) = self.source(*src) else {
                    return;
                };
                let lo = Instant::now() + FAR;
                let token = parent.child_with_timeout(FAR);
                let hi = Instant::now() + FAR;
                drop(parent);
                let tid = self.model.new_token(None, &[ptid], Some((lo, hi)));
                self.place(*dst, token, tid);
            }
            Op::Chain { a, b, dst } => {
                let (Some((a, atid)), Some((b, btid))) = (self.source(*a), self.source(*b)) else {
                    return;
                };
                let token = a.chain(&b);
                let name = joined([self.model.name(atid), self.model.name(btid)]);
                let tid = self.model.new_token(name, &[atid, btid], None);
                drop((a, b));
                self.place(*dst, token, tid);
            }
            Op::Any { srcs, dst } => {
                let sources: Vec<(CancelToken, usize)> =
                    srcs.iter().filter_map(|&s| self.source(s)).collect();
                let token = CancelToken::any(sources.iter().map(|(token, _)| token));
                let tids: Vec<usize> = sources.iter().map(|&(_, tid)| tid).collect();
                let name = joined(tids.iter().map(|&t| self.model.name(t)));
                let tid = self.model.new_token(name, &tids, None);
                drop(sources);
                self.place(*dst, token, tid);
            }
            Op::CloneHandle { src, dst } => {
                let Some((token, tid)) = self.source(*src) else {
                    return;
                };
                self.model.tokens[tid].handles += 1;
                self.place(*dst, token, tid);
            }
            Op::DropHandle { slot } => {
                if let Some((token, tid)) = self.slots[*slot as usize % SLOTS].take() {
                    drop(token);
                    self.model.tokens[tid].handles -= 1;
                }
            }
            Op::Trigger { slot, how } => {
                let Some((token, tid)) = self.source(*slot) else {
                    return;
                };
                let step = self.step;
                let (fired, reason) = match how {
                    How::Plain => (token.trigger(), Reason::default()),
                    How::Message => {
                        let message = format!("m{step}");
                        (token.trigger_with(message.clone()), Reason::from(message))
                    }
                    How::Signal => {
                        let reason = Reason::with_message(ReasonKind::Signal, format!("s{step}"));
                        (token.trigger_with(reason.clone()), reason)
                    }
                    How::Superseded => (
                        token.trigger_with(ReasonKind::Superseded),
                        Reason::new(ReasonKind::Superseded),
                    ),
                };
                let expected = self.model.trigger(tid, MReason::of(&reason));
                assert_eq!(fired, expected, "trigger's return value for token {tid}");
            }
            Op::RegisterCallback { slot } => {
                let Some((token, tid)) = self.source(*slot) else {
                    return;
                };
                let id = self.callbacks.len();
                let runs = Arc::new(AtomicUsize::new(0));
                let dropped = Dropped::new();
                let flag = dropped.guard();
                let log = Arc::clone(&self.log);
                let counter = Arc::clone(&runs);
                self.callbacks.push(Callback { runs, dropped });
                let guard = token.on_cancel(move |reason| {
                    let _flag = &flag;
                    counter.fetch_add(1, Ordering::SeqCst);
                    log.lock().unwrap().push((id, MReason::of(reason)));
                });
                let model_id = self.model.register_callback(tid);
                assert_eq!(model_id, id);
                self.guards.push((guard, id));
            }
            Op::DropCallbackGuard { i } | Op::DetachCallbackGuard { i } => {
                if self.guards.is_empty() {
                    return;
                }
                let (guard, id) = self.guards.remove(*i as usize % self.guards.len());
                let detach = matches!(op, Op::DetachCallbackGuard { .. });
                if detach {
                    guard.detach();
                } else {
                    drop(guard);
                }
                self.model.release_guard(id, detach);
            }
            Op::PollWait { slot, owned } => {
                let Some((token, tid)) = self.source(*slot) else {
                    return;
                };
                let mut future: Pin<Box<dyn Future<Output = ()> + Send>> = if *owned {
                    Box::pin(token.clone().wait_owned())
                } else {
                    let held = token.clone();
                    Box::pin(async move { held.wait().await })
                };
                let waker = CountingWaker::new();
                let ready = poll_with(&mut future, &waker).is_ready();
                let id = self.model.new_wait(tid);
                assert_eq!(
                    ready, self.model.waits[id].done,
                    "first poll of a wait on token {tid}"
                );
                assert_eq!(waker.count(), 0, "the first poll of a wait wakes nobody");
                self.waits.push(KeptWait {
                    id,
                    token,
                    tid,
                    future,
                    waker,
                });
            }
            Op::DropWait { i } => {
                if self.waits.is_empty() {
                    return;
                }
                let wait = self.waits.remove(*i as usize % self.waits.len());
                let id = wait.id;
                drop(wait);
                self.model.drop_wait(id);
            }
            Op::MakeDropGuard { slot } => {
                let Some((token, tid)) = self.source(*slot) else {
                    return;
                };
                self.drop_guards.push((token.drop_guard(), tid));
                self.model.tokens[tid].handles += 1;
            }
            Op::DropDropGuard { i } => {
                if self.drop_guards.is_empty() {
                    return;
                }
                let (guard, tid) = self
                    .drop_guards
                    .remove(*i as usize % self.drop_guards.len());
                drop(guard);
                self.model
                    .trigger(tid, MReason::of(&Reason::new(ReasonKind::Dropped)));
                self.model.tokens[tid].handles -= 1;
            }
            Op::DisarmDropGuard { i, dst } => {
                if self.drop_guards.is_empty() {
                    return;
                }
                let (guard, tid) = self
                    .drop_guards
                    .remove(*i as usize % self.drop_guards.len());
                let token = guard.disarm();
                // The guard's handle moves into the slot.
                self.place(*dst, token, tid);
            }
            Op::BlockingCheck { slot } => {
                let Some((token, tid)) = self.source(*slot) else {
                    return;
                };
                assert_eq!(
                    token.wait_blocking_timeout(Duration::ZERO),
                    self.model.triggered(tid),
                    "wait_blocking_timeout(0) on token {tid}"
                );
            }
        }
    }

    /// Every handle the harness holds, with its model token.
    fn handles(&self) -> Vec<(&CancelToken, usize)> {
        let mut handles: Vec<(&CancelToken, usize)> = self
            .slots
            .iter()
            .flatten()
            .map(|(t, tid)| (t, *tid))
            .collect();
        for (guard, id) in &self.guards {
            handles.push((guard.token(), self.model.callbacks[*id].token));
        }
        for wait in &self.waits {
            handles.push((&wait.token, wait.tid));
        }
        for (guard, tid) in &self.drop_guards {
            handles.push((guard.token(), *tid));
        }
        handles
    }

    /// Compares the crate with the model.
    fn check(&mut self) {
        let model = &self.model;
        let alive = model.alive();

        // Callbacks: run counts, closures dropped, the log (reasons and order).
        for (id, cb) in self.callbacks.iter().enumerate() {
            let expected = usize::from(model.callbacks[id].state == CbState::Ran);
            assert_eq!(
                cb.runs.load(Ordering::SeqCst),
                expected,
                "run count of callback {id} ({:?})",
                model.callbacks[id]
            );
            assert_eq!(
                cb.dropped.get(),
                model.closure_dropped(id, &alive),
                "closure of callback {id} ({:?}) dropped; token alive: {}",
                model.callbacks[id],
                alive[model.callbacks[id].token]
            );
        }
        assert_eq!(*self.log.lock().unwrap(), model.log, "callback log");
        for (guard, id) in &self.guards {
            let token = model.callbacks[*id].token;
            assert_eq!(
                guard.is_pending(),
                !model.triggered(token),
                "guard {id} pending"
            );
        }

        // Every held handle: state, reason, name, deadline.
        let handles = self.handles();
        for &(token, tid) in &handles {
            let m = &model.tokens[tid];
            assert!(alive[tid], "model: a held token is alive");
            assert_eq!(
                token.is_triggered(),
                m.fired.is_some(),
                "is_triggered of {tid}"
            );
            assert_eq!(token.name(), m.name.as_deref(), "name of {tid}");
            match &m.fired {
                None => {
                    assert_eq!(token.reason(), None, "reason of {tid}");
                    assert_eq!(token.triggered_token(), None, "triggered_token of {tid}");
                    assert!(token.raise_if_triggered().is_ok());
                    match (m.deadline, token.deadline()) {
                        (None, None) => {}
                        (Some((lo, hi)), Some(at)) => {
                            assert!(lo <= at && at <= hi, "deadline of {tid}")
                        }
                        (expected, actual) => {
                            panic!("deadline of {tid}: expected {expected:?}, got {actual:?}")
                        }
                    }
                }
                Some(fired) => {
                    let reason = token.reason().expect("a triggered token has a reason");
                    assert_eq!(MReason::of(&reason), fired.reason, "reason of {tid}");
                    let err = token.raise_if_triggered().unwrap_err();
                    assert_eq!(
                        MReason::of(err.reason()),
                        fired.reason,
                        "Cancelled of {tid}"
                    );
                    assert_eq!(
                        Some(err.token()),
                        token.triggered_token().as_ref(),
                        "Cancelled::token of {tid}"
                    );
                }
            }
        }

        // triggered_token identity: equal to a held handle of the origin when there is one,
        // and equal between two tokens exactly when the model gives them the same origin.
        let origins: Vec<(usize, CancelToken)> = handles
            .iter()
            .filter_map(|&(token, tid)| {
                let origin = model.tokens[tid].fired.as_ref()?.origin;
                Some((origin, token.triggered_token().expect("triggered")))
            })
            .collect();
        for (origin, found) in &origins {
            if let Some(&(held, _)) = handles.iter().find(|&&(_, tid)| tid == *origin) {
                assert_eq!(found, held, "triggered_token should be token {origin}");
            }
            for (other_origin, other) in &origins {
                assert_eq!(
                    found == other,
                    origin == other_origin,
                    "triggered_token identity: origins {origin} and {other_origin}"
                );
            }
        }

        // Waits: woken once by the trigger, ready when polled after it.
        for wait in &mut self.waits {
            let mwait = &mut self.model.waits[wait.id];
            let triggered = self.model.tokens[wait.tid].fired.is_some();
            assert_eq!(
                wait.waker.count(),
                usize::from(mwait.woken),
                "wake count of wait {} on token {} ({mwait:?})",
                wait.id,
                wait.tid
            );
            if !mwait.done {
                let ready = poll_with(&mut wait.future, &wait.waker).is_ready();
                assert_eq!(
                    ready, triggered,
                    "wait {} on token {} ready",
                    wait.id, wait.tid
                );
                mwait.done = ready;
            }
        }
    }
}

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("step", &self.step)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// Runs `program` step by step, comparing after every step. Returns the harness for more
/// assertions (dropping it drops every handle, guard and wait it holds).
fn run_program(program: &[Op]) -> Harness {
    let mut harness = Harness::new();
    for op in program {
        harness.run(op);
        harness.check();
    }
    harness
}

proptest! {
    // Shrunk failures are kept in `proptest-regressions/model.txt` (relative to the package
    // root, where `cargo test` runs) and replayed first on every later run.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/model.txt"
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_crate_agrees_with_the_model(program in program()) {
        drop(run_program(&program));
    }

    #[test]
    fn the_crate_agrees_with_the_model_on_built_graphs(program in build_then_run()) {
        drop(run_program(&program));
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-written programs for tricky shapes

/// A diamond through `any`: `d = any(a, b)` with `a` and `b` children of one root, then
/// `e = any(d, a)`; every intermediate handle dropped before the root triggers. Each token is
/// triggered once, with the root's reason, and each detached callback runs exactly once.
#[test]
fn diamonds_through_any_trigger_once_with_the_roots_reason() {
    use Op::*;
    let program = [
        Named { dst: 0, name: 0 }, // root "a"
        Child {
            src: 0,
            dst: 1,
            name: None,
        }, // a
        Child {
            src: 0,
            dst: 2,
            name: None,
        }, // b
        Any {
            srcs: vec![1, 2],
            dst: 3,
        }, // d = any(a, b)
        Any {
            srcs: vec![3, 1, 3],
            dst: 4,
        }, // e = any(d, a, d)
        RegisterCallback { slot: 3 },
        DetachCallbackGuard { i: 0 },
        RegisterCallback { slot: 1 },
        DetachCallbackGuard { i: 0 },
        RegisterCallback { slot: 4 },
        PollWait {
            slot: 3,
            owned: false,
        },
        DropHandle { slot: 1 },
        DropHandle { slot: 2 },
        DropHandle { slot: 3 },
        Trigger {
            slot: 0,
            how: How::Message,
        },
        Trigger {
            slot: 4,
            how: How::Signal,
        },
    ];
    let harness = run_program(&program);
    let root = harness.slots[0].as_ref().unwrap().0.clone();
    let e = harness.slots[4].as_ref().unwrap().0.clone();
    assert_eq!(e.triggered_token(), Some(root.clone()));
    assert_eq!(e.reason().unwrap().message(), Some("m15"));
    assert_eq!(e.name(), None, "children do not inherit names");
    let runs: Vec<usize> = harness
        .callbacks
        .iter()
        .map(|cb| cb.runs.load(Ordering::SeqCst))
        .collect();
    assert_eq!(runs, [1, 1, 1]);
    // Registration order across the tree.
    let order: Vec<usize> = harness.log.lock().unwrap().iter().map(|e| e.0).collect();
    assert_eq!(order, [0, 1, 2]);
}

/// A chain of children whose intermediate handles are all dropped still propagates; a detached
/// callback on an intermediate runs; one on a token freed before the trigger never runs and its
/// closure is dropped at once; a born-triggered descendant keeps its origin (and so the
/// origin's sources) alive.
#[test]
fn dropped_intermediate_handles_do_not_cut_propagation() {
    use Op::*;
    let program = [
        New { dst: 0 }, // g
        Child {
            src: 0,
            dst: 1,
            name: None,
        }, // p
        Child {
            src: 1,
            dst: 2,
            name: None,
        }, // c
        Child {
            src: 2,
            dst: 3,
            name: None,
        }, // leaf
        RegisterCallback { slot: 1 }, // on p
        DetachCallbackGuard { i: 0 },
        RegisterCallback { slot: 2 }, // on c
        DetachCallbackGuard { i: 0 },
        Child {
            src: 1,
            dst: 4,
            name: None,
        }, // lonely child of p
        RegisterCallback { slot: 4 },
        DetachCallbackGuard { i: 0 },
        DropHandle { slot: 4 }, // freed: its callback is dropped unrun
        Trigger {
            slot: 2,
            how: How::Message,
        }, // c fires on its own
        Child {
            src: 2,
            dst: 5,
            name: None,
        }, // born triggered, origin c
        DropHandle { slot: 1 },
        DropHandle { slot: 2 },
        DropHandle { slot: 3 }, // p stays alive only through the born-triggered token's origin
        Trigger {
            slot: 0,
            how: How::Plain,
        },
    ];
    let harness = run_program(&program);
    let runs: Vec<usize> = harness
        .callbacks
        .iter()
        .map(|cb| cb.runs.load(Ordering::SeqCst))
        .collect();
    assert_eq!(runs, [1, 1, 0]);
    assert!(harness.callbacks[2].dropped.get());
    let born = &harness.slots[5].as_ref().unwrap().0;
    assert_eq!(born.reason().unwrap().message(), Some("m13"));
}

/// A child that triggers itself keeps its own reason (and its subtree keeps it) when the parent
/// triggers later; the parent and a sibling get the parent's reason; the child's callbacks do
/// not run twice.
#[test]
fn self_trigger_then_parent_trigger_keeps_the_first_reason() {
    use Op::*;
    let program = [
        Named { dst: 0, name: 0 }, // p
        Child {
            src: 0,
            dst: 1,
            name: Some(1),
        }, // c
        Child {
            src: 1,
            dst: 2,
            name: None,
        }, // g
        Child {
            src: 0,
            dst: 3,
            name: None,
        }, // sibling
        RegisterCallback { slot: 1 },
        RegisterCallback { slot: 2 },
        PollWait {
            slot: 2,
            owned: true,
        },
        Trigger {
            slot: 1,
            how: How::Message,
        },
        PollWait {
            slot: 0,
            owned: false,
        },
        Trigger {
            slot: 0,
            how: How::Signal,
        },
        Trigger {
            slot: 1,
            how: How::Plain,
        },
    ];
    let harness = run_program(&program);
    let token = |k: usize| harness.slots[k].as_ref().unwrap().0.clone();
    assert_eq!(token(2).triggered_token(), Some(token(1)));
    assert_eq!(token(2).reason().unwrap().message(), Some("m8"));
    assert_eq!(token(3).triggered_token(), Some(token(0)));
    assert_eq!(token(3).reason().unwrap().kind(), ReasonKind::Signal);
    let runs: Vec<usize> = harness
        .callbacks
        .iter()
        .map(|cb| cb.runs.load(Ordering::SeqCst))
        .collect();
    assert_eq!(runs, [1, 1]);
}

/// Drop guards held through a disarm and a drop, deadline tokens in a chain, and `chain` of a
/// token with itself.
#[test]
fn drop_guards_deadlines_and_self_chains() {
    use Op::*;
    let program = [
        WithDeadline { dst: 0, hours: 2 },
        ChildWithTimeout { src: 0, dst: 1 },
        WithTimeout { dst: 2 },
        Chain { a: 1, b: 2, dst: 3 },
        Chain { a: 3, b: 3, dst: 4 },
        MakeDropGuard { slot: 0 },
        DisarmDropGuard { i: 0, dst: 5 },
        MakeDropGuard { slot: 4 },
        RegisterCallback { slot: 4 },
        DropHandle { slot: 4 },
        DropDropGuard { i: 0 },
        BlockingCheck { slot: 3 },
        Trigger {
            slot: 5,
            how: How::Superseded,
        },
    ];
    let harness = run_program(&program);
    let four = harness.guards[0].0.token().clone();
    assert_eq!(four.reason().unwrap().kind(), ReasonKind::Dropped);
    assert_eq!(four.triggered_token(), Some(four.clone()));
    // The chain of a deadline child and a timeout token follows the disarmed root.
    let root = harness.slots[5].as_ref().unwrap().0.clone();
    let chain = harness.slots[3].as_ref().unwrap().0.clone();
    assert_eq!(chain.triggered_token(), Some(root));
    assert_eq!(chain.reason().unwrap().kind(), ReasonKind::Superseded);
}
