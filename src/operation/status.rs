//! The plain data an operation reports: its [`OperationStatus`] (and the fieldless
//! [`StatusKind`] used by filters and counts), its [`Progress`], and the [`OperationSnapshot`]
//! that lists and events hand out.
//!
//! These are values, not handles: they own std types only (no token, no lock), so that they
//! can be cloned into events, kept in a registry's history and, later, serialized.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use super::OperationId;
use crate::reason::{Reason, ReasonKind};

/// Where an operation is in its life: running, or finished in one of three ways.
///
/// A status changes once at most, from `Running` to one of the others, and never back: the
/// first finish wins.
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, Operation, OperationStatus, StatusKind};
///
/// let op = Operation::new("import", &CancelToken::new());
/// assert_eq!(op.status(), OperationStatus::Running);
/// op.fail("bad header in line 3");
/// assert_eq!(op.status(), OperationStatus::Failed("bad header in line 3".into()));
/// assert_eq!(op.status().kind(), StatusKind::Failed);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum OperationStatus {
    /// The work has not finished yet (even if its token is triggered: it has not stopped).
    Running,
    /// The work finished successfully.
    Completed,
    /// The work failed, with this message.
    Failed(Cow<'static, str>),
    /// The work stopped because its token was triggered, for this reason.
    Cancelled(Reason),
}

impl OperationStatus {
    /// The status without its data, for filters and counts.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{OperationStatus, StatusKind};
    ///
    /// assert_eq!(OperationStatus::Completed.kind(), StatusKind::Completed);
    /// ```
    pub fn kind(&self) -> StatusKind {
        match self {
            OperationStatus::Running => StatusKind::Running,
            OperationStatus::Completed => StatusKind::Completed,
            OperationStatus::Failed(_) => StatusKind::Failed,
            OperationStatus::Cancelled(_) => StatusKind::Cancelled,
        }
    }

    /// Whether the operation has finished (any status but `Running`).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::OperationStatus;
    ///
    /// assert!(!OperationStatus::Running.is_finished());
    /// assert!(OperationStatus::Cancelled("stop".into()).is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        !matches!(self, OperationStatus::Running)
    }
}

impl fmt::Display for OperationStatus {
    /// `running`, `completed`, `failed: <message>` or `cancelled: <reason>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OperationStatus::Failed(message) => write!(f, "failed: {message}"),
            OperationStatus::Cancelled(reason) => write!(f, "cancelled: {reason}"),
            other => f.write_str(other.kind().as_str()),
        }
    }
}

impl fmt::Debug for OperationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OperationStatus::Running => f.write_str("Running"),
            OperationStatus::Completed => f.write_str("Completed"),
            OperationStatus::Failed(message) => f.debug_tuple("Failed").field(message).finish(),
            OperationStatus::Cancelled(reason) => f.debug_tuple("Cancelled").field(reason).finish(),
        }
    }
}

/// An [`OperationStatus`] without its data: what filters select and counts count.
///
/// # Examples
///
/// ```
/// use cancel_token::StatusKind;
///
/// assert_eq!(StatusKind::Cancelled.to_string(), "cancelled");
/// assert!(StatusKind::Failed.is_finished());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
// The names of `as_str` (feature `serde`).
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum StatusKind {
    /// Not finished yet.
    Running,
    /// Finished successfully.
    Completed,
    /// Finished with an error.
    Failed,
    /// Stopped by a cancellation.
    Cancelled,
}

impl StatusKind {
    /// The lowercase name: `running`, `completed`, `failed` or `cancelled`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::StatusKind;
    ///
    /// assert_eq!(StatusKind::Running.as_str(), "running");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Running => "running",
            StatusKind::Completed => "completed",
            StatusKind::Failed => "failed",
            StatusKind::Cancelled => "cancelled",
        }
    }

    /// Whether this is a final status (anything but `Running`).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::StatusKind;
    ///
    /// assert!(!StatusKind::Running.is_finished());
    /// ```
    pub fn is_finished(self) -> bool {
        self != StatusKind::Running
    }
}

impl fmt::Display for StatusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for StatusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StatusKind::Running => "Running",
            StatusKind::Completed => "Completed",
            StatusKind::Failed => "Failed",
            StatusKind::Cancelled => "Cancelled",
        })
    }
}

/// How far an operation has come: items done, the total if known, and a message.
///
/// `done` can exceed `total` (a total is an estimate the work may revise);
/// [`fraction`](Self::fraction) caps at 1.
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, Operation};
///
/// let op = Operation::new("copy", &CancelToken::new());
/// op.set_total(200);
/// op.advance(50);
/// op.set_message("copying photos");
/// let progress = op.progress();
/// assert_eq!((progress.done, progress.total), (50, Some(200)));
/// assert_eq!(progress.fraction(), Some(0.25));
/// assert_eq!(progress.message.as_deref(), Some("copying photos"));
/// assert_eq!(progress.to_string(), "50/200 (25%): copying photos");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Units of work done so far.
    pub done: u64,
    /// Units of work in all, if known.
    pub total: Option<u64>,
    /// What the work is doing now, if it said.
    pub message: Option<Cow<'static, str>>,
}

impl Progress {
    /// `done / total`, between 0 and 1: `None` without a total, `Some(1.0)` for a total of 0
    /// (nothing to do is all done).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::Progress;
    ///
    /// let mut progress = Progress::default();
    /// assert_eq!(progress.fraction(), None);
    /// progress.total = Some(4);
    /// progress.done = 1;
    /// assert_eq!(progress.fraction(), Some(0.25));
    /// progress.done = 9;
    /// assert_eq!(progress.fraction(), Some(1.0));
    /// ```
    pub fn fraction(&self) -> Option<f64> {
        let total = self.total?;
        if total == 0 {
            return Some(1.0);
        }
        // Precision loss above 2^53 does not matter for a ratio shown to people.
        Some((self.done as f64 / total as f64).min(1.0))
    }
}

impl fmt::Display for Progress {
    /// `done`, `done/total (percent%)`, and `: message` when there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.total, self.fraction()) {
            (Some(total), Some(fraction)) => {
                write!(f, "{}/{total} ({:.0}%)", self.done, fraction * 100.0)?
            }
            _ => write!(f, "{}", self.done)?,
        }
        match &self.message {
            Some(message) => write!(f, ": {message}"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Progress");
        s.field("done", &self.done).field("total", &self.total);
        if let Some(message) = &self.message {
            s.field("message", &&**message);
        }
        s.finish()
    }
}

/// What an operation looked like at one moment: plain data for lists, events and dashboards.
///
/// A running operation's snapshot is taken when asked for; a finished one's is taken when it
/// finished and kept in the registry's history. The status is spread over plain fields
/// (`status`, `reason_kind`, `message`) so that the snapshot holds std types only;
/// [`status()`](Self::status) puts the [`OperationStatus`] back together. The struct is
/// `#[non_exhaustive]`: fields may be added.
///
/// # JSON (feature `serde`)
///
/// With the `serde` feature a snapshot (and each of its parts) is `Serialize` and
/// `Deserialize`, in a shape meant for a service's status page or API: ids are numbers,
/// statuses and reason kinds their lowercase names ([`StatusKind::as_str`],
/// [`ReasonKind::as_str`]), times are milliseconds (`started_at_ms` and `finished_at_ms` since
/// the Unix epoch, rounded down; `elapsed_ms` a float), and every field is always present
/// (`null` when it has no value). The progress adds its `fraction` (read back, it is ignored).
/// Field names and status names are stable; a later version may add fields or reason kinds.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use cancel_token::{CancelToken, OperationRegistry};
///
/// let registry = OperationRegistry::new();
/// let op = registry.start("export", &CancelToken::new());
/// op.set_total(4);
/// op.advance(1);
/// op.token().trigger_with("user gave up");
/// drop(op);
/// let snapshot = registry.history().pop().unwrap();
///
/// let json = serde_json::to_value(&snapshot).unwrap();
/// assert_eq!(json["id"], snapshot.id.as_u64());
/// assert_eq!(json["name"], "export");
/// assert_eq!(json["parent"], serde_json::Value::Null);
/// assert_eq!(json["status"], "cancelled");
/// assert_eq!(json["reason_kind"], "manual");
/// assert_eq!(json["message"], "user gave up");
/// assert_eq!(
///     json["progress"],
///     serde_json::json!({ "done": 1, "total": 4, "fraction": 0.25, "message": null })
/// );
/// assert!(json["started_at_ms"].as_u64().unwrap() > 1_700_000_000_000); // after 2023
/// assert!(json["elapsed_ms"].as_f64().unwrap() >= 0.0);
/// assert!(json["finished_at_ms"].as_u64().unwrap() >= json["started_at_ms"].as_u64().unwrap());
///
/// // A client reads it back (times to the millisecond).
/// let read: cancel_token::OperationSnapshot = serde_json::from_value(json).unwrap();
/// assert_eq!((read.id, read.status, read.progress), (snapshot.id, snapshot.status, snapshot.progress));
/// # }
/// ```
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, OperationRegistry, ReasonKind, StatusKind};
///
/// let registry = OperationRegistry::new();
/// let op = registry.start("export", &CancelToken::new());
/// op.set_total(10);
/// op.advance(3);
/// let snapshot = registry.snapshot(op.id()).unwrap();
/// assert_eq!(snapshot.name, "export");
/// assert_eq!(snapshot.status, StatusKind::Running);
/// assert_eq!(snapshot.progress.done, 3);
/// assert!(snapshot.finished_at.is_none());
///
/// op.token().trigger_with("user gave up");
/// drop(op); // the work stopped: cancelled, with the token's reason
/// let snapshot = registry.history().pop().unwrap();
/// assert_eq!(snapshot.status, StatusKind::Cancelled);
/// assert_eq!(snapshot.reason_kind, Some(ReasonKind::Manual));
/// assert_eq!(snapshot.message.as_deref(), Some("user gave up"));
/// assert!(snapshot.finished_at.is_some());
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct OperationSnapshot {
    /// The operation's id.
    pub id: OperationId,
    /// The operation's name.
    pub name: Cow<'static, str>,
    /// The id of the operation it was started under, if any.
    pub parent: Option<OperationId>,
    /// The status, without its data.
    pub status: StatusKind,
    /// For a cancelled operation, the kind of its token's reason.
    pub reason_kind: Option<ReasonKind>,
    /// For a failed operation, its error; for a cancelled one, its reason's message (if the
    /// reason has one).
    pub message: Option<String>,
    /// The progress at the snapshot (at the finish, for a finished operation).
    pub progress: Progress,
    /// When the operation started, by the wall clock.
    pub started_at: SystemTime,
    /// How long it had been running at the snapshot, or how long it ran in all once finished.
    pub elapsed: Duration,
    /// When it finished, by the wall clock; `None` while running.
    pub finished_at: Option<SystemTime>,
}

impl OperationSnapshot {
    /// The status with its data: the failure's message, or the cancellation's reason.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, OperationRegistry, OperationStatus};
    ///
    /// let registry = OperationRegistry::new();
    /// let op = registry.start("parse", &CancelToken::new());
    /// op.fail("unexpected end of input");
    /// let snapshot = registry.snapshot(op.id()).unwrap();
    /// assert_eq!(snapshot.status(), OperationStatus::Failed("unexpected end of input".into()));
    /// ```
    pub fn status(&self) -> OperationStatus {
        match self.status {
            StatusKind::Running => OperationStatus::Running,
            StatusKind::Completed => OperationStatus::Completed,
            StatusKind::Failed => {
                OperationStatus::Failed(Cow::Owned(self.message.clone().unwrap_or_default()))
            }
            StatusKind::Cancelled => {
                let kind = self.reason_kind.unwrap_or(ReasonKind::Manual);
                OperationStatus::Cancelled(match &self.message {
                    Some(message) => Reason::with_message(kind, message.clone()),
                    None => Reason::new(kind),
                })
            }
        }
    }
}

impl fmt::Debug for OperationSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("OperationSnapshot");
        s.field("id", &self.id)
            .field("name", &&*self.name)
            .field("parent", &self.parent)
            .field("status", &self.status);
        if let Some(kind) = &self.reason_kind {
            s.field("reason_kind", kind);
        }
        if let Some(message) = &self.message {
            s.field("message", message);
        }
        s.field("progress", &self.progress)
            .field("elapsed", &self.elapsed)
            .finish()
    }
}
