//! The state an operation's handles share with its registry: identity, progress atomics, and
//! the status that the first finish sets.
//!
//! Handles hold a [`Handle`], whose `Drop` finishes an operation left unfinished; the registry
//! holds the [`State`] directly, so it never keeps an operation "in use". The state points to
//! its registry (to report finishes and progress), and the registry's live set points back to
//! the state: that cycle is broken by the finish, which removes the operation from the live
//! set, and every operation finishes at the latest when its last handle is dropped.

use std::borrow::Cow;
use std::panic::{self, AssertUnwindSafe};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use super::table::Shared;
use super::{OperationId, OperationSnapshot, OperationStatus, Progress};
use crate::reason::{Reason, ReasonKind};
use crate::sync::{lock, Arc, AtomicBool, AtomicU64, Mutex, Ordering};
use crate::CancelToken;

/// The total of an operation whose total is unknown.
const NO_TOTAL: u64 = u64::MAX;

/// The reason an operation dropped unfinished triggers its token with.
pub(super) const DROPPED_MESSAGE: &str = "the operation was dropped before it finished";

pub(super) struct State {
    pub(super) id: OperationId,
    pub(super) name: Cow<'static, str>,
    pub(super) parent: Option<OperationId>,
    pub(super) token: CancelToken,
    pub(super) started: Instant,
    pub(super) started_at: SystemTime,
    done: AtomicU64,
    /// `NO_TOTAL` until a total is set.
    total: AtomicU64,
    /// Behind a lock: a message is a string, set rarely, not in a hot loop.
    message: Mutex<Option<Cow<'static, str>>>,
    end: Mutex<End>,
    /// Set (after `end`) by the finish: read without the lock by handles' `Drop` and by the
    /// subscribers' queues, which must not queue progress after the finish.
    finished: AtomicBool,
    /// A progress update is queued for the subscribers and not yet taken: further updates
    /// need not queue another (see `subscribe.rs` for the handoff).
    pub(super) dirty: AtomicBool,
    pub(super) registry: Option<Arc<Shared>>,
    /// The operation's span (feature `tracing`): see `trace.rs`. Asserted unwind-safe so
    /// that the feature takes no auto trait away from `Operation`: a span is a handle whose
    /// subscriber keeps its own state consistent, and the crate never mutates it.
    #[cfg(feature = "tracing")]
    pub(super) span: AssertUnwindSafe<tracing::Span>,
}

struct End {
    status: OperationStatus,
    elapsed: Option<Duration>,
    finished_at: Option<SystemTime>,
}

impl State {
    /// A new operation's state, under the operation `parent` if any. With the `tracing`
    /// feature, this opens the operation's span and logs its start.
    pub(super) fn new(
        name: Cow<'static, str>,
        parent: Option<&State>,
        token: CancelToken,
        registry: Option<Arc<Shared>>,
    ) -> State {
        let id = OperationId::next();
        #[cfg(feature = "tracing")]
        let span = super::trace::start(
            id,
            &name,
            parent.map(|parent| parent.id),
            parent.map(|parent| &*parent.span),
        );
        State {
            id,
            name,
            parent: parent.map(|parent| parent.id),
            token,
            started: Instant::now(),
            started_at: SystemTime::now(),
            done: AtomicU64::new(0),
            total: AtomicU64::new(NO_TOTAL),
            message: Mutex::new(None),
            end: Mutex::new(End {
                status: OperationStatus::Running,
                elapsed: None,
                finished_at: None,
            }),
            finished: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            registry,
            #[cfg(feature = "tracing")]
            span: AssertUnwindSafe(span),
        }
    }

    #[inline]
    pub(super) fn advance(self: &Arc<State>, n: u64) {
        // Relaxed: the subscribers' handoff orders it through `dirty` (AcqRel), and readers
        // without a subscription ask for no ordering.
        let before = self.done.fetch_add(n, Ordering::Relaxed);
        #[cfg(feature = "tracing")]
        if super::trace::progress_enabled() {
            super::trace::progressed(self, before, before.wrapping_add(n));
        }
        #[cfg(not(feature = "tracing"))]
        let _ = before;
        self.progressed();
    }

    #[inline]
    pub(super) fn set_done(self: &Arc<State>, done: u64) {
        #[cfg(feature = "tracing")]
        if super::trace::progress_enabled() {
            // A swap rather than a store only when a progress event may be logged: the
            // throttle needs the count before.
            let before = self.done.swap(done, Ordering::Relaxed);
            super::trace::progressed(self, before, done);
            self.progressed();
            return;
        }
        self.done.store(done, Ordering::Relaxed);
        self.progressed();
    }

    #[inline]
    pub(super) fn set_total(self: &Arc<State>, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.progressed();
    }

    pub(super) fn set_message(self: &Arc<State>, message: Option<Cow<'static, str>>) {
        let old = std::mem::replace(&mut *lock(&self.message), message);
        drop(old);
        self.progressed();
    }

    /// The hot path's only extra cost: one load of the registry's subscriber count.
    #[inline]
    fn progressed(self: &Arc<State>) {
        if let Some(registry) = &self.registry {
            if registry.watched.load(Ordering::Relaxed) != 0 {
                self.queue_progress(registry);
            }
        }
    }

    /// Someone subscribed: queue this operation's progress for them, unless it is queued
    /// already. The swap is a release of the update made before it, which the subscriber
    /// acquires when it clears the flag, before it reads the progress.
    #[cold]
    fn queue_progress(self: &Arc<State>, registry: &Shared) {
        if !self.dirty.swap(true, Ordering::AcqRel) {
            registry.queue_progress(self);
        }
    }

    /// The total, if one is set.
    pub(super) fn total(&self) -> Option<u64> {
        let total = self.total.load(Ordering::Relaxed);
        (total != NO_TOTAL).then_some(total)
    }

    /// The progress message, if any.
    pub(super) fn message(&self) -> Option<Cow<'static, str>> {
        lock(&self.message).clone()
    }

    pub(super) fn progress(&self) -> Progress {
        let total = self.total();
        Progress {
            done: self.done.load(Ordering::Relaxed),
            total,
            message: self.message(),
        }
    }

    pub(super) fn status(&self) -> OperationStatus {
        lock(&self.end).status.clone()
    }

    pub(super) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Sets the final status if there is none yet; then, with no lock held, moves the
    /// operation from its registry's live set to the history. Returns `true` for the call that
    /// finished it.
    pub(super) fn finish(self: &Arc<State>, status: OperationStatus) -> bool {
        // The finish is logged after the lock: a subscriber is user code.
        #[cfg(feature = "tracing")]
        let logged = status.clone();
        let elapsed = {
            let mut end = lock(&self.end);
            if end.status.is_finished() {
                return false;
            }
            let elapsed = self.started.elapsed();
            end.status = status;
            end.elapsed = Some(elapsed);
            end.finished_at = Some(SystemTime::now());
            // Under the lock, so that whoever sees the flag sees the final status with it.
            self.finished.store(true, Ordering::Release);
            elapsed
        };
        #[cfg(feature = "tracing")]
        super::trace::finished(&self.span, &logged, elapsed);
        #[cfg(not(feature = "tracing"))]
        let _ = elapsed;
        if let Some(registry) = &self.registry {
            registry.finished(self);
        }
        true
    }

    /// Finishes as cancelled with the token's reason, triggering the token with `reason` first
    /// if nothing else has. A callback's panic is resumed after the finish (or, while this
    /// thread is already unwinding, dropped), so the operation never stays in the live set.
    pub(super) fn finish_cancelled(self: &Arc<State>, reason: Reason) -> bool {
        // A finished operation's work is over: its token is left alone. (A finish racing this
        // one may still win below, after the trigger.)
        if self.is_finished() {
            return false;
        }
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| self.token.trigger_with(reason)));
        let reason = self
            .token
            .reason()
            .unwrap_or_else(|| Reason::new(ReasonKind::Manual));
        let finished = self.finish(OperationStatus::Cancelled(reason));
        if let Err(payload) = outcome {
            if thread::panicking() {
                crate::walk::drop_payload(payload);
            } else {
                panic::resume_unwind(payload);
            }
        }
        finished
    }

    pub(super) fn snapshot(&self) -> OperationSnapshot {
        let progress = self.progress();
        let (status, elapsed, finished_at) = {
            let end = lock(&self.end);
            (end.status.clone(), end.elapsed, end.finished_at)
        };
        let (reason_kind, message) = match &status {
            OperationStatus::Failed(message) => (None, Some(message.to_string())),
            OperationStatus::Cancelled(reason) => {
                (Some(reason.kind()), reason.message().map(str::to_owned))
            }
            _ => (None, None),
        };
        OperationSnapshot {
            id: self.id,
            name: self.name.clone(),
            parent: self.parent,
            status: status.kind(),
            reason_kind,
            message,
            progress,
            started_at: self.started_at,
            elapsed: elapsed.unwrap_or_else(|| self.started.elapsed()),
            finished_at,
        }
    }
}

/// What an [`Operation`](super::Operation)'s clones share: finishing the operation as
/// cancelled when the last one goes.
pub(super) struct Handle {
    pub(super) state: Arc<State>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if !self.state.is_finished() {
            // The token's reason if something triggered it, else this one.
            self.state
                .finish_cancelled(Reason::with_message(ReasonKind::Dropped, DROPPED_MESSAGE));
        }
    }
}
