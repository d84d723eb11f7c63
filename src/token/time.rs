//! Tokens the timer triggers: tokens that trigger themselves at a deadline, giving a deadline
//! to an existing token, and condition tokens polled on the timer's threads (`when`).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use crate::deadline::DeadlineReason;
use crate::node::Node;
use crate::reason::Reason;
use crate::CancelToken;

impl CancelToken {
    /// A new token that triggers itself with [`ReasonKind::Timeout`](crate::ReasonKind::Timeout)
    /// once `timeout` has elapsed, with the message `"deadline of 300ms elapsed"` (the
    /// duration as `Debug` prints it).
    ///
    /// The deadline is enforced by the crate's own timer threads, so it fires with no async
    /// runtime anywhere in the process: async and blocking waiters wake and callbacks run at
    /// the deadline. A manual trigger before the deadline keeps its own reason and releases
    /// the timer entry; so does dropping every handle. A timeout too large to represent as an
    /// [`Instant`] means "never". The message is built when the deadline fires, so a token
    /// that never fires pays nothing for it. [`named_with_timeout`](Self::named_with_timeout)
    /// gives the token a name too.
    ///
    /// # Precision
    ///
    /// The token triggers at or after the deadline, usually within a millisecond. Callbacks run
    /// on one of the timer's threads; one that blocks delays the other deadlines by about 2 ms
    /// at most, and deadlines close together may run their callbacks in either order.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let token = CancelToken::with_timeout(Duration::from_millis(20));
    /// assert!(!token.is_triggered());
    /// token.wait_blocking();
    /// let reason = token.reason().unwrap();
    /// assert_eq!(reason.kind(), ReasonKind::Timeout);
    /// assert_eq!(reason.message(), Some("deadline of 20ms elapsed"));
    /// ```
    pub fn with_timeout(timeout: Duration) -> CancelToken {
        CancelToken::new().timing_out_after(timeout)
    }

    /// Like [`with_timeout`](Self::with_timeout), with a name, shown by `Display`, `Debug` and
    /// in [`Cancelled`](crate::Cancelled)'s message.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::named_with_timeout("export", Duration::from_millis(300));
    /// assert_eq!(token.name(), Some("export"));
    /// assert!(token.deadline().is_some());
    ///
    /// let expired = CancelToken::named_with_timeout("probe", Duration::ZERO);
    /// assert_eq!(
    ///     expired.raise_if_triggered().unwrap_err().to_string(),
    ///     "cancellation requested by token probe: deadline of 0ns elapsed"
    /// );
    /// ```
    pub fn named_with_timeout(
        name: impl Into<Cow<'static, str>>,
        timeout: Duration,
    ) -> CancelToken {
        CancelToken::named(name).timing_out_after(timeout)
    }

    /// A new token that triggers itself with [`ReasonKind::Timeout`](crate::ReasonKind::Timeout)
    /// at `deadline`; at once if the deadline has passed. See [`with_timeout`](Self::with_timeout).
    ///
    /// The reason has no message (its `Display` reads `"deadline elapsed"`): an [`Instant`] has
    /// no readable form, and the time left when the token was made would mislead. Use
    /// [`with_timeout`](Self::with_timeout) for a message that says the duration, or
    /// [`trigger_at_with`](Self::trigger_at_with) for one of your own.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let deadline = Instant::now() + Duration::from_secs(3600);
    /// let token = CancelToken::with_deadline(deadline);
    /// assert_eq!(token.deadline(), Some(deadline));
    ///
    /// let past = CancelToken::with_deadline(Instant::now());
    /// assert_eq!(past.reason().unwrap().kind(), ReasonKind::Timeout);
    /// assert_eq!(past.reason().unwrap().to_string(), "deadline elapsed");
    /// ```
    pub fn with_deadline(deadline: Instant) -> CancelToken {
        let token = CancelToken::new();
        Node::set_deadline(&token.node, deadline, DeadlineReason::Plain);
        token
    }

    /// Like [`with_deadline`](Self::with_deadline), with a name.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::named_with_deadline("nightly batch", Instant::now());
    /// assert_eq!(
    ///     token.raise_if_triggered().unwrap_err().to_string(),
    ///     "cancellation requested by token nightly batch: deadline elapsed"
    /// );
    /// ```
    pub fn named_with_deadline(
        name: impl Into<Cow<'static, str>>,
        deadline: Instant,
    ) -> CancelToken {
        let token = CancelToken::named(name);
        Node::set_deadline(&token.node, deadline, DeadlineReason::Plain);
        token
    }

    /// A [`child`](Self::child) that also triggers itself with
    /// [`ReasonKind::Timeout`](crate::ReasonKind::Timeout) after `timeout`.
    ///
    /// Its effective deadline is the earlier of its own and this token's: a child cannot
    /// outlive its parent's deadline. A timeout too large to represent means "no deadline of
    /// its own". Its own deadline's message says the duration, as
    /// [`with_timeout`](Self::with_timeout)'s does. For a named one, take a
    /// [`child_named`](Self::child_named) and call [`trigger_after`](Self::trigger_after) on it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let request = CancelToken::with_timeout(Duration::from_secs(30));
    /// let query = request.child_with_timeout(Duration::from_millis(10));
    /// assert!(query.deadline() < request.deadline());
    ///
    /// query.wait_blocking();
    /// assert_eq!(query.reason().unwrap().kind(), ReasonKind::Timeout);
    /// assert_eq!(query.reason().unwrap().message(), Some("deadline of 10ms elapsed"));
    /// assert!(!request.is_triggered(), "the child's timeout is its own");
    ///
    /// let long = request.child_with_timeout(Duration::from_secs(3600));
    /// assert_eq!(long.deadline(), request.deadline(), "capped by the parent");
    /// ```
    pub fn child_with_timeout(&self, timeout: Duration) -> CancelToken {
        self.child().timing_out_after(timeout)
    }

    /// A [`child`](Self::child) that also triggers itself at `deadline`, with a plain timeout
    /// as [`with_deadline`](Self::with_deadline) has. See
    /// [`child_with_timeout`](Self::child_with_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cancel_token::CancelToken;
    ///
    /// let parent = CancelToken::new();
    /// let deadline = Instant::now() + Duration::from_secs(60);
    /// let child = parent.child_with_deadline(deadline);
    /// assert_eq!(child.deadline(), Some(deadline));
    /// assert_eq!(parent.deadline(), None);
    /// ```
    pub fn child_with_deadline(&self, deadline: Instant) -> CancelToken {
        let child = self.child();
        Node::set_deadline(&child.node, deadline, DeadlineReason::Plain);
        child
    }

    /// The effective deadline: when this token will trigger itself, or be triggered by a
    /// source's deadline, at the latest. `None` if no deadline applies.
    ///
    /// That is the earliest of the token's own deadline and those of its sources (parents,
    /// chained or [`any`](Self::any) tokens); for a token made by [`all`](Self::all), the
    /// latest of its untriggered sources' deadlines, if each of them has one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::CancelToken;
    ///
    /// let parent = CancelToken::with_timeout(Duration::from_secs(5));
    /// assert_eq!(parent.child().deadline(), parent.deadline());
    /// assert_eq!(CancelToken::new().deadline(), None);
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline()
    }

    /// Schedules this token to trigger itself with [`ReasonKind::Timeout`] after `delay`
    /// (.NET's `CancelAfter`), with the message `"deadline of 20ms elapsed"` as
    /// [`with_timeout`](Self::with_timeout) gives. Returns whether the deadline was set.
    ///
    /// The earliest deadline wins: a delay that ends after a deadline already applying to the
    /// token (its own, or a source's) changes nothing and returns `false`, and an earlier one
    /// replaces the token's own. A triggered token returns `false`. A zero delay triggers the
    /// token at once (returning whether this call triggered it); a delay too large to
    /// represent as an [`Instant`] is "never" and returns `false`. A manual trigger before the
    /// deadline keeps its own reason and releases the timer entry. See
    /// [`with_timeout`](Self::with_timeout) for how deadlines fire.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let token = CancelToken::new();
    /// assert!(token.trigger_after(Duration::from_secs(3600)));
    /// assert!(token.trigger_after(Duration::from_millis(20)), "earlier: replaces it");
    /// assert!(!token.trigger_after(Duration::from_secs(60)), "later: the earliest wins");
    ///
    /// token.wait_blocking();
    /// let reason = token.reason().unwrap();
    /// assert_eq!(reason.kind(), ReasonKind::Timeout);
    /// assert_eq!(reason.message(), Some("deadline of 20ms elapsed"));
    /// ```
    ///
    /// [`ReasonKind::Timeout`]: crate::ReasonKind::Timeout
    pub fn trigger_after(&self, delay: Duration) -> bool {
        self.set_deadline_after(delay, DeadlineReason::After(delay))
    }

    /// Like [`trigger_after`](Self::trigger_after), with the reason the deadline triggers the
    /// token with (Go's `WithTimeoutCause`).
    ///
    /// The reason's kind is yours to choose; `Reason::with_message(ReasonKind::Timeout, ..)`
    /// gives a timeout with a message. The reason belongs to the deadline: an earlier deadline set later replaces
    /// both.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::{CancelToken, Reason, ReasonKind};
    ///
    /// let token = CancelToken::new();
    /// let grace = Reason::with_message(ReasonKind::Timeout, "grace period of 10ms elapsed");
    /// token.trigger_after_with(Duration::from_millis(10), grace);
    /// token.wait_blocking();
    /// let reason = token.reason().unwrap();
    /// assert_eq!(reason.kind(), ReasonKind::Timeout);
    /// assert_eq!(reason.message(), Some("grace period of 10ms elapsed"));
    /// ```
    pub fn trigger_after_with(&self, delay: Duration, reason: impl Into<Reason>) -> bool {
        self.set_deadline_after(delay, DeadlineReason::custom(reason.into()))
    }

    /// Schedules this token to trigger itself with [`ReasonKind::Timeout`] at `deadline`; at
    /// once if it has passed. Returns whether the deadline was set; see
    /// [`trigger_after`](Self::trigger_after). The reason has no message, as
    /// [`with_deadline`](Self::with_deadline)'s has none.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let deadline = Instant::now() + Duration::from_secs(60);
    /// assert!(token.trigger_at(deadline));
    /// assert_eq!(token.deadline(), Some(deadline));
    ///
    /// assert!(token.trigger_at(Instant::now()), "a deadline that has passed fires at once");
    /// assert!(token.is_triggered());
    /// ```
    ///
    /// [`ReasonKind::Timeout`]: crate::ReasonKind::Timeout
    pub fn trigger_at(&self, deadline: Instant) -> bool {
        Node::set_deadline(&self.node, deadline, DeadlineReason::Plain)
    }

    /// Like [`trigger_at`](Self::trigger_at), with the reason the deadline triggers the token
    /// with (Go's `WithDeadlineCause`). See [`trigger_after_with`](Self::trigger_after_with).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use cancel_token::{CancelToken, Reason, ReasonKind};
    ///
    /// let token = CancelToken::new();
    /// token.trigger_at_with(Instant::now(), Reason::with_message(ReasonKind::Timeout, "batch window closed"));
    /// assert_eq!(token.reason().unwrap().message(), Some("batch window closed"));
    /// ```
    pub fn trigger_at_with(&self, deadline: Instant, reason: impl Into<Reason>) -> bool {
        Node::set_deadline(&self.node, deadline, DeadlineReason::custom(reason.into()))
    }

    /// A new token that triggers itself with [`ReasonKind::Condition`] once `predicate`
    /// returns `true`, evaluated every `interval` on the crate's timer threads.
    ///
    /// For conditions nothing announces: a file that appears, a disk that fills up, a counter
    /// that crosses a threshold. No async runtime is needed; the predicate is polled by the
    /// same threads that fire deadlines ([`with_timeout`](Self::with_timeout)), and many
    /// condition tokens share them: ten thousand conditions do not need ten thousand threads.
    ///
    /// # Polling
    ///
    /// - The first evaluation happens one interval after this call, on a timer thread, never on
    ///   the caller's thread. Each next one is due one interval after the previous one
    ///   returned, so evaluations of one predicate never overlap (which is why it may be
    ///   `FnMut`).
    ///   Evaluations may run on different threads, one at a time.
    /// - An interval below 1 ms, zero included, counts as 1 ms, so that a zero interval polls
    ///   often without spinning a thread. An interval too large to represent as an [`Instant`]
    ///   means "never": the predicate is never evaluated and the token triggers only directly
    ///   (or never).
    /// - The predicate runs with no lock of this crate held: it may use any token, this one
    ///   included. To name this token from its own predicate, capture a
    ///   [`WeakCancelToken`](crate::WeakCancelToken): the token owns its predicate, so a strong
    ///   handle inside it is a cycle that keeps both alive (and polling) until it is triggered.
    ///
    /// # Triggering and stopping
    ///
    /// When the predicate returns `true`, the token is triggered with
    /// [`ReasonKind::Condition`] and no message (its `Display` reads `"condition met"`); its
    /// waiters wake and its callbacks run on the timer thread. If the predicate panics, the
    /// token is triggered as well (fail safe), with [`ReasonKind::Condition`] and the message
    /// `"condition predicate panicked"`, followed by `": "` and the panic's message when that
    /// is a string. The panic does not escape onto the timer thread (the panic hook still
    /// reports it).
    ///
    /// Once the token is triggered, by its condition or by anything else
    /// ([`trigger`](Self::trigger), ...), no evaluation starts once the trigger is seen (one
    /// that already started when the trigger came finishes, and its result is ignored): the
    /// pending evaluation is released, and the predicate is dropped on the triggering thread (or on the
    /// timer thread once an evaluation that was running then returns). Dropping the token
    /// stops the polling too: once no handle and no descendant (such as a
    /// [`child`](Self::child)) is left, the predicate is dropped, on the thread that let go of
    /// the token last, or on the timer thread after a running evaluation.
    ///
    /// A condition token is a token like any other: it can be a parent of children and a
    /// source of chains, and be triggered directly. Its [`deadline`](Self::deadline) is
    /// `None`: a condition is not a deadline.
    ///
    /// # Blocking
    ///
    /// Keep the predicate quick. One that is slow or blocks delays no deadline and no other
    /// condition by more than about 2 ms, since the timer hands its other work to another
    /// thread, but it holds one timer thread for as long as it runs, and its own token is
    /// polled that much less often. A predicate that never returns holds a thread forever.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use cancel_token::{CancelToken, ReasonKind};
    ///
    /// let disk_used = Arc::new(AtomicUsize::new(10));
    /// let disk_full = CancelToken::when(Duration::from_millis(5), {
    ///     let disk_used = Arc::clone(&disk_used);
    ///     move || disk_used.load(Ordering::Relaxed) > 90
    /// });
    /// let job = disk_full.child();
    /// assert_eq!(disk_full.deadline(), None);
    /// assert!(!job.is_triggered());
    ///
    /// disk_used.store(95, Ordering::Relaxed);
    /// job.wait_blocking();
    /// let reason = job.reason().unwrap();
    /// assert_eq!(reason.kind(), ReasonKind::Condition);
    /// assert_eq!(reason.to_string(), "condition met");
    /// assert_eq!(job.triggered_token(), Some(disk_full));
    /// ```
    ///
    /// [`ReasonKind::Condition`]: crate::ReasonKind::Condition
    pub fn when(
        interval: Duration,
        predicate: impl FnMut() -> bool + Send + 'static,
    ) -> CancelToken {
        CancelToken::from_arc(Node::when(interval, predicate))
    }
}

impl CancelToken {
    /// Gives this new token a deadline `timeout` from now, triggering it with a message that
    /// says the duration; a timeout that overflows an [`Instant`] sets none.
    fn timing_out_after(self, timeout: Duration) -> CancelToken {
        self.set_deadline_after(timeout, DeadlineReason::After(timeout));
        self
    }

    /// Triggers the token with `reason` on a timer firer thread, not this one; see
    /// [`Node::trigger_on_firer`].
    #[cfg(feature = "redis")]
    pub(crate) fn trigger_on_firer(&self, reason: Reason) -> bool {
        Node::trigger_on_firer(&self.node, reason)
    }

    /// Sets a deadline `delay` from now (none if that overflows an [`Instant`]); see
    /// [`Node::set_deadline`].
    pub(crate) fn set_deadline_after(&self, delay: Duration, reason: DeadlineReason) -> bool {
        Instant::now()
            .checked_add(delay)
            .is_some_and(|deadline| Node::set_deadline(&self.node, deadline, reason))
    }
}
