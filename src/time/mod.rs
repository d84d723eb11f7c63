//! Deadlines: a lazily started dispatcher thread that keeps every pending deadline in order and,
//! when one comes due, hands it to a firer thread (`fire.rs`) that runs its trigger.
//!
//! The dispatcher owns an ordered map from `(deadline, id)` to a weak reference to what expires.
//! Registering is one lock and one map insert, plus a wake-up of the dispatcher only when the new
//! deadline is the earliest. A target triggered or dropped before its deadline removes its entry,
//! so nothing outlives it. The dispatcher never runs user code: a trigger wakes wakers and runs
//! callbacks, any of which may block, and one that did so on the dispatcher would hold back every
//! deadline behind it. This module knows nothing of tokens; a node registers itself as an
//! [`Expire`]. See `docs/timers.md` for why this is not built on async-io's timers.

mod fire;

use std::collections::BTreeMap;
// The timer lives in statics, which loom's primitives cannot; it is outside the models.
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::thread;
use std::time::Instant;

use self::fire::Pool;

/// Something the timer fires at its deadline.
pub(crate) trait Expire: Send + Sync {
    /// Called at most once, at or after the deadline, on a thread that holds none of the timer's
    /// locks and that no other deadline waits for: it may run user code, and that may block.
    fn expire(self: Arc<Self>);
}

/// Identifies one registration; removal by key is O(log n).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    deadline: Instant,
    id: u64,
}

impl TimerKey {
    /// When the registration comes due.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }
}

// The timer's locks guard only its own bookkeeping and never run user code, so a poisoned lock
// still holds consistent data; refusing to go on would stop every deadline in the process.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Timers {
    state: Mutex<State>,
    /// Signalled when the earliest deadline changes.
    wake: Condvar,
    firers: Arc<Pool>,
}

#[derive(Default)]
struct State {
    entries: BTreeMap<TimerKey, Weak<dyn Expire>>,
    next_id: u64,
    started: bool,
}

fn timers() -> &'static Timers {
    static TIMERS: OnceLock<Timers> = OnceLock::new();
    TIMERS.get_or_init(|| Timers {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
        firers: Pool::new(fire::IDLE_EXIT),
    })
}

/// Schedules `target` to expire at `deadline`, unless it is gone by then or the returned key is
/// cancelled first.
pub(crate) fn register(deadline: Instant, target: Weak<dyn Expire>) -> TimerKey {
    let timers = timers();
    let mut state = lock(&timers.state);
    let key = TimerKey {
        deadline,
        id: state.next_id,
    };
    state.next_id += 1;
    let earliest = state
        .entries
        .first_key_value()
        .is_none_or(|(first, _)| key < *first);
    state.entries.insert(key, target);
    if !state.started {
        state.started = true;
        // If the thread cannot be spawned (resource exhaustion), deadlines cannot fire; the
        // alternative, panicking inside an unrelated constructor, would be worse. The next
        // registration tries again.
        if thread::Builder::new()
            .name("cancel-token-timer".into())
            .spawn(move || dispatch(timers))
            .is_err()
        {
            state.started = false;
        }
    } else if earliest {
        timers.wake.notify_one();
    }
    key
}

/// Removes a registration; a no-op if it already came due.
pub(crate) fn cancel(key: TimerKey) {
    let timers = timers();
    let removed = lock(&timers.state).entries.remove(&key);
    // Dropped outside the lock: nothing of the target's is released under it.
    drop(removed);
}

/// Number of pending registrations, for the no-leak tests.
#[cfg(test)]
pub(crate) fn pending() -> usize {
    lock(&timers().state).entries.len()
}

/// The dispatcher's loop: hand over everything due, then sleep until the next deadline or until
/// the firers must be looked at again.
fn dispatch(timers: &'static Timers) {
    // Kept across rounds so that a steady stream of deadlines does not allocate.
    let mut due: Vec<Weak<dyn Expire>> = Vec::new();
    let mut look_again: Option<Instant> = None;
    let mut state = lock(&timers.state);
    loop {
        let now = Instant::now();
        while let Some(entry) = state.entries.first_entry() {
            if entry.key().deadline > now {
                break;
            }
            due.push(entry.remove());
        }
        if !due.is_empty() || look_again.is_some_and(|at| at <= now) {
            // Registrations and cancellations go on while the firers take over.
            drop(state);
            look_again = timers.firers.hand_over(&mut due);
            state = lock(&timers.state);
            continue;
        }
        let next_deadline = state.entries.first_key_value().map(|(key, _)| key.deadline);
        let wake_at = match (next_deadline, look_again) {
            (Some(deadline), Some(at)) => Some(deadline.min(at)),
            (one, other) => one.or(other),
        };
        state = match wake_at {
            None => timers
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner),
            Some(at) => {
                timers
                    .wake
                    .wait_timeout(state, at.saturating_duration_since(now))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        };
    }
}
