//! [`Filter`], what [`OperationRegistry::list`](super::OperationRegistry::list) selects, and
//! [`StatusCounts`], what [`OperationRegistry::counts`](super::OperationRegistry::counts)
//! returns.

use std::borrow::Cow;
use std::fmt;

use super::{OperationId, StatusKind};

/// Which operations [`OperationRegistry::list`](super::OperationRegistry::list) returns: every condition set must hold.
///
/// # Examples
///
/// ```
/// use cancel_token::{Filter, OperationId, StatusKind};
///
/// let filter = Filter::new()
///     .status(StatusKind::Running)
///     .name("upload")
///     .parent(OperationId::from_u64(1));
/// assert_eq!(format!("{filter:?}"), r#"Filter { status: Some(Running), name: Some("upload"), parent: Some(OperationId(1)) }"#);
/// ```
#[derive(Clone, Default)]
pub struct Filter {
    pub(super) status: Option<StatusKind>,
    name: Option<Cow<'static, str>>,
    parent: Option<OperationId>,
}

impl Filter {
    /// Selects the live operations (any status they have at the moment).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Filter, OperationRegistry};
    ///
    /// let registry = OperationRegistry::new();
    /// let _op = registry.start("job", &CancelToken::new());
    /// assert_eq!(registry.list(&Filter::new()).len(), 1);
    /// ```
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Only operations with this status; a finished status selects from the history too.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Filter, OperationRegistry, StatusKind};
    ///
    /// let registry = OperationRegistry::new();
    /// registry.start("job", &CancelToken::new()).complete();
    /// assert_eq!(registry.list(&Filter::new().status(StatusKind::Completed)).len(), 1);
    /// assert!(registry.list(&Filter::new().status(StatusKind::Running)).is_empty());
    /// ```
    pub fn status(mut self, status: StatusKind) -> Filter {
        self.status = Some(status);
        self
    }

    /// Only operations with exactly this name.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Filter, OperationRegistry};
    ///
    /// let registry = OperationRegistry::new();
    /// let _a = registry.start("a", &CancelToken::new());
    /// let _b = registry.start("b", &CancelToken::new());
    /// assert_eq!(registry.list(&Filter::new().name("b"))[0].name, "b");
    /// ```
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Filter {
        self.name = Some(name.into());
        self
    }

    /// Only the direct children of operation `parent`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Filter, OperationRegistry};
    ///
    /// let registry = OperationRegistry::new();
    /// let parent = registry.start("parent", &CancelToken::new());
    /// let child = parent.child("child");
    /// let _grandchild = child.child("grandchild");
    /// let children = registry.list(&Filter::new().parent(parent.id()));
    /// assert_eq!(children.len(), 1);
    /// assert_eq!(children[0].id, child.id());
    /// ```
    pub fn parent(mut self, parent: OperationId) -> Filter {
        self.parent = Some(parent);
        self
    }

    pub(super) fn selects(&self, parent: Option<OperationId>, name: &str) -> bool {
        self.parent.is_none_or(|wanted| parent == Some(wanted))
            && self.name.as_deref().is_none_or(|wanted| wanted == name)
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("status", &self.status)
            .field("name", &self.name.as_deref())
            .field("parent", &self.parent)
            .finish()
    }
}

/// How many operations of a registry are in each status, from
/// [`OperationRegistry::counts`](super::OperationRegistry::counts).
///
/// `running` is the live set now; the finished counts are totals since the registry was made.
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, OperationRegistry};
///
/// let registry = OperationRegistry::new();
/// registry.start("job", &CancelToken::new()).fail("no space left");
/// let counts = registry.counts();
/// assert_eq!(counts.failed, 1);
/// assert_eq!(format!("{counts:?}"), "StatusCounts { running: 0, completed: 0, failed: 1, cancelled: 0 }");
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq)]
// `{"running": 0, "completed": 0, "failed": 1, "cancelled": 0}` (feature `serde`).
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StatusCounts {
    /// Operations running now.
    pub running: u64,
    /// Operations that completed, in all.
    pub completed: u64,
    /// Operations that failed, in all.
    pub failed: u64,
    /// Operations that were cancelled, in all.
    pub cancelled: u64,
}

impl StatusCounts {
    /// Every operation started in the registry: running plus finished.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::StatusCounts;
    ///
    /// assert_eq!(StatusCounts::default().total(), 0);
    /// ```
    pub fn total(&self) -> u64 {
        self.running + self.completed + self.failed + self.cancelled
    }
}

impl fmt::Debug for StatusCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusCounts")
            .field("running", &self.running)
            .field("completed", &self.completed)
            .field("failed", &self.failed)
            .field("cancelled", &self.cancelled)
            .finish()
    }
}
