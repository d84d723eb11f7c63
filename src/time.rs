//! Deadlines: one lazily started timer thread that triggers deadline tokens on time.
//!
//! The thread owns an ordered map from `(deadline, id)` to a weak reference to the token's
//! node. Registering is one lock and one map insert, plus a wake-up of the thread only when the
//! new deadline is the earliest. A token triggered or dropped before its deadline removes its
//! entry, so nothing outlives the token. The thread triggers expired tokens with no lock held,
//! so their callbacks run on it without blocking other deadlines' bookkeeping. See
//! `docs/timers.md` for why this is not built on async-io's timers.

use std::collections::BTreeMap;
// The timer lives in statics, which loom's primitives cannot; it is outside the models.
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::Instant;

use std::sync::{Arc, Weak};

/// Something the timer fires at its deadline.
pub(crate) trait Expire: Send + Sync {
    fn expire(self: Arc<Self>);
}

fn lock(mutex: &Mutex<State>) -> MutexGuard<'_, State> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Identifies one registration; removal by key is O(log n).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    deadline: Instant,
    id: u64,
}

struct Timers {
    state: Mutex<State>,
    /// Signalled when the earliest deadline changes or work arrives.
    wake: Condvar,
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
    })
}

/// Schedules `node` to be triggered with [`ReasonKind::Timeout`] at `deadline`.
pub(crate) fn register(deadline: Instant, node: Weak<dyn Expire>) -> TimerKey {
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
        .map_or(true, |(first, _)| key < *first);
    state.entries.insert(key, node);
    if !state.started {
        state.started = true;
        // If the thread cannot be spawned (resource exhaustion), deadlines cannot fire; the
        // alternative, panicking inside an unrelated constructor, would be worse. The next
        // registration tries again.
        if thread::Builder::new()
            .name("cancel-token-timer".into())
            .spawn(run)
            .is_err()
        {
            state.started = false;
        }
    } else if earliest {
        timers.wake.notify_one();
    }
    key
}

/// Removes a registration; a no-op if it already fired.
pub(crate) fn cancel(key: TimerKey) {
    let timers = timers();
    let removed = lock(&timers.state).entries.remove(&key);
    // The weak reference is dropped outside the lock.
    drop(removed);
}

/// Number of pending registrations, for the no-leak tests.
#[cfg(test)]
pub(crate) fn pending() -> usize {
    lock(&timers().state).entries.len()
}

/// The timer thread's loop: fire everything due, then sleep until the next deadline.
fn run() {
    let timers = timers();
    let mut due: Vec<Weak<dyn Expire>> = Vec::new();
    let mut state = lock(&timers.state);
    loop {
        let now = Instant::now();
        while let Some(entry) = state.entries.first_entry() {
            if entry.key().deadline > now {
                break;
            }
            due.push(entry.remove());
        }
        if !due.is_empty() {
            drop(state);
            for node in due.drain(..) {
                if let Some(node) = node.upgrade() {
                    // A callback panic must not kill the only timer thread.
                    let _ =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.expire()));
                }
            }
            state = lock(&timers.state);
            continue;
        }
        state = match state.entries.first_key_value() {
            None => timers
                .wake
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            Some((first, _)) => {
                let timeout = first.deadline.saturating_duration_since(now);
                timers
                    .wake
                    .wait_timeout(state, timeout)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0
            }
        };
    }
}
