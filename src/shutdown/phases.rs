//! The state behind a [`Shutdown`](super::Shutdown) and its phases: beginning (close the
//! tracker, watch it drain, start the grace period), forcing (count what is left, trigger the
//! hard token), and deciding the outcome once, into the report.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::report::{ShutdownOutcome, ShutdownReport};
use super::tracker::TaskTracker;
use crate::reason::{Reason, ReasonKind};
use crate::sync::Arc;
use crate::CancelToken;

pub(super) struct Inner {
    pub(super) soft: CancelToken,
    pub(super) hard: CancelToken,
    pub(super) tracker: TaskTracker,
    pub(super) grace: Duration,
    /// Fires at the end of the grace period, and forces the shutdown.
    pub(super) grace_timer: CancelToken,
    /// The reason of the first request; set before anything else of the request happens.
    pub(super) requested: OnceLock<Reason>,
    /// Set by the first `begin`, which does the rest only once.
    pub(super) begun: OnceLock<()>,
    /// When the grace period ends (`None` inside: a grace too long to represent).
    pub(super) grace_ends: OnceLock<Option<Instant>>,
    /// When the shutdown began (first request or force), and how many tasks ran then.
    pub(super) started: OnceLock<(Instant, usize)>,
    /// Tasks tracked just before this shutdown triggered the hard token.
    pub(super) forced_with: OnceLock<usize>,
    pub(super) report: OnceLock<ShutdownReport>,
    /// Triggered once the report is set.
    pub(super) done: CancelToken,
}

impl Inner {
    pub(super) fn report(&self) -> Option<ShutdownReport> {
        self.report.get().cloned()
    }

    pub(super) fn start(&self) -> (Instant, usize) {
        *self
            .started
            .get_or_init(|| (Instant::now(), self.tracker.len()))
    }

    /// Begins the shutdown, once: closes the tracker, watches it drain and starts the grace
    /// period. Called by the first request *before* it triggers the soft token (whose
    /// callbacks are the user's, and may block or panic), and by the soft token's own first
    /// callback, for a soft token triggered some other way.
    pub(super) fn begin(self: &Arc<Self>) {
        if self.begun.set(()).is_err() {
            return;
        }
        self.start();
        self.tracker.close();
        let weak = Arc::downgrade(self);
        // Runs at once if the tracker is empty already.
        self.tracker
            .event()
            .on_cancel(move |_| {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                // Tasks leaving because they were cancelled are the hard token's outcome.
                if !inner.hard.is_triggered() {
                    inner.decide(ShutdownOutcome::Drained, None, 0);
                }
            })
            .detach();
        if self.hard.is_triggered() {
            return;
        }
        let _ = self.grace_ends.set(Instant::now().checked_add(self.grace));
        let message = format!("grace period of {:?} elapsed", self.grace);
        self.grace_timer.trigger_after_with(
            self.grace,
            Reason::with_message(ReasonKind::Timeout, message),
        );
    }

    pub(super) fn force(&self, reason: Reason) -> bool {
        self.start();
        self.tracker.close();
        let _ = self.forced_with.set(self.tracker.len());
        self.hard.trigger_with(reason)
    }

    pub(super) fn decide(
        &self,
        outcome: ShutdownOutcome,
        forced_by: Option<&Reason>,
        remaining: usize,
    ) {
        let (started, in_flight) = self.start();
        let report = ShutdownReport {
            outcome,
            reason: self
                .requested
                .get()
                .cloned()
                .or_else(|| self.soft.reason())
                .unwrap_or(Reason::new(ReasonKind::Manual)),
            forced_by: forced_by.cloned(),
            in_flight,
            remaining,
            elapsed: started.elapsed(),
        };
        if self.report.set(report).is_ok() {
            self.done.trigger();
        }
    }
}
