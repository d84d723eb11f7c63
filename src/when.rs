//! Condition tokens ([`CancelToken::when`](crate::CancelToken::when)): the poller that runs a
//! user's predicate on the timer's threads, one interval after the last evaluation returned,
//! until it returns `true` or the token is triggered or dropped.
//!
//! Ownership: the token owns its poller (as what its node keeps, and, until the token is
//! triggered, as one of its callbacks); the poller knows the token only through a `Weak`, and
//! the timer knows the poller only through a `Weak`. So dropping the token's last handle drops
//! the poller, which releases its pending timer entry and drops the predicate. The callback is
//! how a trigger from anywhere stops the polling at once: it releases the timer entry and drops
//! the predicate on the triggering thread, with no lock held.
//!
//! The predicate is `FnMut`, so it lives in a cell it is taken out of to run, with no lock
//! held, and put back afterwards. Only one evaluation is ever pending or running (the next is
//! registered after the previous returns), so the cell is never found empty by an expiry.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
// The poller is timer machinery, which lives outside the loom models (see `time/mod.rs`).
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::callback::{self, Callback};
use crate::node::{Keep, Node};
use crate::reason::{Reason, ReasonKind};
use crate::sync::{Arc, Weak};
use crate::time::{self, Expire, TimerKey};
use crate::walk::{drop_payload, FollowUp};

/// The shortest interval between two evaluations: a zero interval would re-register a
/// predicate that is already due, and spin a timer thread on it.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// The prefix of the message a token is triggered with when its predicate panics.
const PANICKED: &str = "condition predicate panicked";

/// The poller of one condition token.
struct Poller<F> {
    /// The token; weak, since the token owns the poller.
    node: Weak<Node>,
    interval: Duration,
    /// Position among the token's callbacks (it is registered before any of the user's).
    seq: u64,
    slot: Mutex<Slot<F>>,
}

/// What the poller's lock guards. It is never held while user code runs.
struct Slot<F> {
    /// `None` while an evaluation runs, and for good once the polling is over.
    predicate: Option<F>,
    /// The pending evaluation's registration with the timer.
    timer: Option<TimerKey>,
    /// Set when the token is triggered: nothing is evaluated or registered after that.
    done: bool,
}

// The lock guards only the poller's own bookkeeping and user code never runs under it, so a
// poisoned lock still holds consistent data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Node {
    /// A new token triggered with [`ReasonKind::Condition`] by the first evaluation of
    /// `predicate` that returns `true`, evaluated on a timer thread every `interval` (at least
    /// [`MIN_INTERVAL`]), the first time one interval from now. An interval that overflows
    /// an `Instant` means the predicate is never evaluated.
    pub(crate) fn when<F>(interval: Duration, predicate: F) -> Arc<Node>
    where
        F: FnMut() -> bool + Send + 'static,
    {
        let mut made = None;
        let node = Arc::new_cyclic(|node: &Weak<Node>| {
            let poller = Arc::new(Poller {
                node: node.clone(),
                interval: interval.max(MIN_INTERVAL),
                seq: callback::next_seq(),
                slot: Mutex::new(Slot {
                    predicate: Some(predicate),
                    timer: None,
                    done: false,
                }),
            });
            made = Some(Arc::clone(&poller));
            Node::keeping(
                None,
                &[],
                Keep::Other {
                    _owned: Box::new(poller),
                },
            )
        });
        if let Some(poller) = made {
            let stop: Arc<dyn Callback> = poller.clone();
            // Nobody else has the token yet, so it cannot be triggered: this always registers.
            let _ = node.register_callback(&stop);
            poller.schedule(&mut lock(&poller.slot));
        }
        node
    }
}

impl<F: FnMut() -> bool + Send + 'static> Poller<F> {
    /// Registers the next evaluation, one interval from now, unless that overflows.
    ///
    /// Called under the poller's lock, which is allowed: the timer never takes it, and holds
    /// only a `Weak` of the poller, whose drop runs no code.
    fn schedule(self: &Arc<Self>, slot: &mut Slot<F>) {
        if let Some(at) = Instant::now().checked_add(self.interval) {
            // The concrete `Weak` is made first: unsizing coerces it to the trait object.
            let this: Weak<Poller<F>> = Arc::downgrade(self);
            let target: Weak<dyn Expire> = this;
            slot.timer = Some(time::register(at, target));
        }
    }

    /// Triggers the token with `reason` if it is still there. A panic of one of its callbacks
    /// is the user's, on a timer thread, where nobody can receive it: like the firer, this
    /// drops it (the panic hook has reported it).
    fn trigger(&self, reason: Reason) {
        if let Some(node) = self.node.upgrade() {
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| Node::trigger(&node, reason)));
            if let Err(payload) = outcome {
                drop_payload(payload);
            }
        }
    }
}

impl<F: FnMut() -> bool + Send + 'static> Expire for Poller<F> {
    /// One evaluation, on a firer thread with no lock held.
    fn expire(self: Arc<Self>) {
        let mut predicate = {
            let mut slot = lock(&self.slot);
            // The registration came due: there is nothing left to cancel.
            slot.timer = None;
            if slot.done {
                return;
            }
            match slot.predicate.take() {
                Some(predicate) => predicate,
                None => return,
            }
        };
        // The token is not kept alive while the predicate runs: dropping its last handle meanwhile
        // frees it at once, and this poller with it once the evaluation is over.
        let live = self.node.upgrade().is_some_and(|node| !node.is_triggered());
        if !live {
            // A trigger that is still running its callbacks will find the cell empty.
            lock(&self.slot).done = true;
            drop(predicate);
            return;
        }
        match panic::catch_unwind(AssertUnwindSafe(&mut predicate)) {
            Ok(false) => {
                let mut slot = lock(&self.slot);
                if slot.done {
                    // Triggered while the predicate ran: the trigger found the cell empty.
                    drop(slot);
                    drop(predicate);
                    return;
                }
                slot.predicate = Some(predicate);
                self.schedule(&mut slot);
            }
            Ok(true) => {
                self.trigger(Reason::new(ReasonKind::Condition));
                // After the trigger, so that a slow or panicking drop cannot hold it back.
                drop(predicate);
            }
            Err(payload) => {
                let reason = Reason::with_message(ReasonKind::Condition, panicked(&*payload));
                drop_payload(payload);
                self.trigger(reason);
                drop(predicate);
            }
        }
    }
}

impl<F: FnMut() -> bool + Send + 'static> Callback for Poller<F> {
    fn seq(&self) -> u64 {
        self.seq
    }

    /// The token was triggered, by its condition or anything else: stop polling at once.
    fn fire(&self, _: &Reason) -> Option<FollowUp> {
        let (timer, predicate) = {
            let mut slot = lock(&self.slot);
            slot.done = true;
            (slot.timer.take(), slot.predicate.take())
        };
        if let Some(key) = timer {
            time::cancel(key);
        }
        // The user's closure, dropped with no lock held. If an evaluation is running, the cell
        // is empty and the evaluation drops it when it returns.
        drop(predicate);
        None
    }

    fn cancel(&self) {
        // Registered without a guard: the registration lives until the token is triggered or
        // dropped, so nothing ever cancels it.
    }
}

impl<F> Drop for Poller<F> {
    /// The token is gone: its pending evaluation goes too. (The predicate drops with the
    /// poller, on the thread that dropped the token's last handle, or on the timer thread if it
    /// was evaluating then; no lock is held on either.)
    fn drop(&mut self) {
        let slot = self.slot.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = slot.timer.take() {
            time::cancel(key);
        }
    }
}

/// The message for a predicate that panicked with `payload`: its text too, if it is text.
fn panicked(payload: &(dyn Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
    match text {
        Some(text) => format!("{PANICKED}: {text}"),
        None => PANICKED.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_message_is_quoted_when_it_is_text() {
        let owned: Box<dyn Any + Send> = Box::new(String::from("disk gone"));
        assert_eq!(panicked(&*owned), "condition predicate panicked: disk gone");
        let borrowed: Box<dyn Any + Send> = Box::new("no route");
        assert_eq!(
            panicked(&*borrowed),
            "condition predicate panicked: no route"
        );
        let other: Box<dyn Any + Send> = Box::new(42_u32);
        assert_eq!(panicked(&*other), "condition predicate panicked");
    }
}
