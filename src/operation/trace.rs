//! The `tracing` feature: a span per operation and events for its start, its progress
//! (throttled) and its finish, so that any `tracing` subscriber shows them.
//!
//! The module owns what is emitted and when; the contract users see is documented on
//! [`Operation::span`]. The hot path (`advance`, `set_done`) pays one inlined check of
//! tracing's global level filter (a relaxed load) for the feature; everything else here runs
//! only when some subscriber could want DEBUG events.

use std::borrow::Cow;
use std::time::Duration;

use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
use tracing::{Level, Span};

use super::state::State;
use super::{Operation, OperationId, OperationStatus};

/// The target of the span and of every event, for filters (`cancel_token::operation=debug`).
const TARGET: &str = "cancel_token::operation";

/// Emits an event in `span` when the span is enabled, else in the current span (a subscriber
/// may want the events and not the span, or may have come after the operation started).
macro_rules! event_in {
    ($span:expr, $level:expr, $($rest:tt)+) => {
        match $span.id() {
            Some(id) => tracing::event!(target: TARGET, parent: id, $level, $($rest)+),
            None => tracing::event!(target: TARGET, $level, $($rest)+),
        }
    };
}

/// The span of a new operation, a child of its parent operation's span if it has one (else of
/// the current span), and its `operation started` event.
pub(super) fn start(
    id: OperationId,
    name: &str,
    parent_id: Option<OperationId>,
    parent_span: Option<&Span>,
) -> Span {
    let span = match parent_span.and_then(Span::id) {
        Some(parent) => tracing::info_span!(
            target: TARGET,
            parent: parent,
            "operation",
            id = id.as_u64(),
            name = name,
            parent_id = parent_id.map(OperationId::as_u64),
        ),
        None => tracing::info_span!(
            target: TARGET,
            "operation",
            id = id.as_u64(),
            name = name,
            parent_id = parent_id.map(OperationId::as_u64),
        ),
    };
    event_in!(span, Level::INFO, "operation started");
    span
}

/// The finish event: `operation completed`, `operation failed` or `operation cancelled`.
pub(super) fn finished(span: &Span, status: &OperationStatus, elapsed: Duration) {
    let elapsed_ms = elapsed.as_secs_f64() * 1e3;
    match status {
        OperationStatus::Running => {}
        OperationStatus::Completed => {
            event_in!(span, Level::INFO, elapsed_ms, "operation completed");
        }
        OperationStatus::Failed(error) => {
            event_in!(
                span,
                Level::WARN,
                elapsed_ms,
                error = &**error,
                "operation failed"
            );
        }
        OperationStatus::Cancelled(reason) => {
            event_in!(
                span,
                Level::INFO,
                elapsed_ms,
                reason_kind = reason.kind().as_str(),
                reason = reason.message(),
                "operation cancelled"
            );
        }
    }
}

/// Whether progress events could be wanted at all: tracing's own cheap pre-check (the
/// compile-time and the global level filter), inlined into the hot path.
#[inline]
pub(super) fn progress_enabled() -> bool {
    Level::DEBUG <= STATIC_MAX_LEVEL && Level::DEBUG <= LevelFilter::current()
}

/// After an update of the count from `before` to `done`: the `operation progress` event, if
/// the update crossed a step of the throttle ([`crosses`]).
#[cold]
#[inline(never)]
pub(super) fn progressed(state: &State, before: u64, done: u64) {
    let total = state.total();
    if !crosses(before, done, total) {
        return;
    }
    let percent = total.filter(|&total| total != 0).map(|t| percent(done, t));
    let detail: Option<Cow<'static, str>> = state.message();
    event_in!(
        state.span,
        Level::DEBUG,
        done,
        total,
        percent,
        detail = detail.as_deref(),
        "operation progress"
    );
}

/// The throttle: with a known total (not 0), an update is logged when it changes the whole
/// percent done (at most 101 events for one pass over the total, whatever the batch sizes);
/// with no total (or 0), when it changes the count's leading digit (1, 2, ..., 9, 10, 20,
/// ..., 90, 100, 200, ...: at most nine events per power of ten). Concurrent `advance`s cover
/// disjoint ranges of the count, so each step is logged once.
pub(super) fn crosses(before: u64, done: u64, total: Option<u64>) -> bool {
    match total {
        Some(total) if total != 0 => percent(before, total) != percent(done, total),
        _ => leading(before) != leading(done),
    }
}

/// The whole percent of `done` out of `total` (not 0), capped at 100.
fn percent(done: u64, total: u64) -> u64 {
    if done >= total {
        return 100;
    }
    match done.checked_mul(100) {
        Some(scaled) => scaled / total,
        None => (u128::from(done) * 100 / u128::from(total)) as u64,
    }
}

/// The count's power of ten and leading digit.
fn leading(count: u64) -> (u32, u64) {
    if count == 0 {
        return (0, 0);
    }
    let power = count.ilog10();
    (power, count / 10u64.pow(power))
}

impl Operation {
    /// The operation's `tracing` span (feature `tracing`), to
    /// [`instrument`](tracing::Instrument::instrument) its work with or to
    /// [`enter`](Span::enter) on a thread, so that the work's own events appear inside it.
    ///
    /// # What is emitted
    ///
    /// The span is named `operation`, at INFO level, with the fields `id`, `name` and
    /// `parent_id` (the parent operation's id, absent for a root operation). It is created
    /// when the operation starts, as a child of the parent operation's span (or of the
    /// current span for a root operation), and closes when the last handle and the registry
    /// let go of the operation. Every event is in the span, with the target
    /// `cancel_token::operation`:
    ///
    /// | message | level | fields |
    /// |---|---|---|
    /// | `operation started` | INFO | |
    /// | `operation progress` | DEBUG | `done`, `total` and `percent` (if a total is set), `detail` (the progress message, if any) |
    /// | `operation completed` | INFO | `elapsed_ms` |
    /// | `operation failed` | WARN | `error`, `elapsed_ms` |
    /// | `operation cancelled` | INFO | `reason_kind` (`timeout`, `manual`, ...), `reason` (its message, if any), `elapsed_ms` |
    ///
    /// A cancellation is INFO, not WARN: stopping on request is the work doing what it should.
    ///
    /// # Progress events
    ///
    /// Progress is DEBUG, and throttled: with a total set, an [`advance`](Self::advance) or
    /// [`set_done`](Self::set_done) is logged only when it changes the whole percent (so a
    /// million advances over a total of a million log 100 events); with no total, only when
    /// the count reaches a new leading digit (1, 2, ..., 9, 10, 20, ..., 100, 200, ...).
    /// [`set_total`](Self::set_total) and [`set_message`](Self::set_message) log nothing by
    /// themselves; the next logged update carries the message.
    ///
    /// With no subscriber that wants DEBUG events, an update pays one relaxed load of
    /// tracing's global level filter; with one, it also reads the total and divides, and
    /// takes the message's lock only for an event it logs.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    /// use tracing::Instrument;
    ///
    /// let op = Operation::new("index", &CancelToken::new());
    /// let work = async {
    ///     tracing::info!("inside the operation's span");
    ///     42
    /// };
    /// let answer = futures_lite::future::block_on(work.instrument(op.span().clone()));
    /// assert_eq!(answer, 42);
    ///
    /// // Or on a thread:
    /// let _entered = op.span().enter();
    /// op.complete();
    /// ```
    pub fn span(&self) -> &Span {
        &self.state().span
    }
}

#[cfg(test)]
mod tests {
    use super::{crosses, leading, percent};

    #[test]
    fn percent_steps() {
        assert_eq!(percent(0, 3), 0);
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(3, 3), 100);
        assert_eq!(percent(7, 3), 100);
        assert_eq!(percent(u64::MAX / 2, u64::MAX), 49);
        assert!(crosses(9_999, 10_000, Some(1_000_000)));
        assert!(!crosses(10_000, 10_001, Some(1_000_000)));
    }

    #[test]
    fn leading_digits() {
        assert_eq!(leading(0), (0, 0));
        assert_eq!(leading(7), (0, 7));
        assert_eq!(leading(10), (1, 1));
        assert_eq!(leading(299), (2, 2));
        assert_eq!(leading(u64::MAX), (19, 1));
        let logged = (0..1_000_000u64)
            .filter(|&n| crosses(n, n + 1, None))
            .count();
        assert_eq!(
            logged,
            9 * 6 + 1,
            "1..=9, 10..=90, ..., 100,000..=900,000, 1,000,000"
        );
    }
}
