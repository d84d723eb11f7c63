//! A token's deadline: setting its own, reading the effective one (the earliest among the
//! token and its ancestors), and firing it from the timer.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::node::Node;
use crate::reason::{Reason, ReasonKind};
use crate::sync::{lock, Arc, Weak};
use crate::time::{self, Expire};

/// What a deadline triggers its token with, kept in the token's cold state until it fires.
///
/// A timeout's message is built only when it fires: making a deadline token that never fires
/// (the common case: the work finished first) formats nothing and allocates nothing for it.
#[derive(Default)]
pub(crate) enum DeadlineReason {
    /// [`ReasonKind::Timeout`] with no message (`Display`: "deadline elapsed"): a deadline
    /// given as an [`Instant`], which has no readable form.
    #[default]
    Plain,
    /// [`ReasonKind::Timeout`] with the message "deadline of {duration:?} elapsed": a deadline
    /// given as a duration from now.
    After(Duration),
    /// The caller's own reason (`trigger_after_with`, `trigger_at_with`).
    Custom(Box<Reason>),
}

impl DeadlineReason {
    /// The caller's reason, kept as a plain timeout when that is what it is.
    pub(crate) fn custom(reason: Reason) -> DeadlineReason {
        if reason == Reason::new(ReasonKind::Timeout) {
            DeadlineReason::Plain
        } else {
            DeadlineReason::Custom(Box::new(reason))
        }
    }

    /// The reason the token is triggered with.
    pub(crate) fn into_reason(self) -> Reason {
        match self {
            DeadlineReason::Plain => Reason::new(ReasonKind::Timeout),
            DeadlineReason::After(timeout) => Reason::with_message(
                ReasonKind::Timeout,
                format!("deadline of {timeout:?} elapsed"),
            ),
            DeadlineReason::Custom(reason) => *reason,
        }
    }
}

/// The earlier of two optional deadlines, `None` meaning "never".
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Node {
    /// Gives `this` its own deadline, triggering it with `reason`, unless an earlier one (its
    /// own or an ancestor's) already applies or it is triggered. A deadline that has passed
    /// triggers at once. Returns whether the deadline was set (or, for one that has passed,
    /// whether this call triggered the token).
    pub(crate) fn set_deadline(
        this: &Arc<Node>,
        deadline: Instant,
        reason: DeadlineReason,
    ) -> bool {
        if deadline <= Instant::now() {
            return Node::trigger(this, reason.into_reason());
        }
        Node::arm(this, deadline, reason)
    }

    /// Triggers `this` with `reason` from one of the timer's firer threads instead of the
    /// caller's: a deadline of now, handed to a firer at once. For a thread that serves many
    /// tokens (the `redis` feature's listener), so that a callback or waker that blocks holds
    /// up only its own token's trigger. Returns `false` if the token is triggered already or
    /// an earlier deadline (its own or an ancestor's) applies, which fires first anyway.
    #[cfg(feature = "redis")]
    pub(crate) fn trigger_on_firer(this: &Arc<Node>, reason: Reason) -> bool {
        Node::arm(this, Instant::now(), DeadlineReason::custom(reason))
    }

    /// Registers `deadline` with the timer, unless the token is triggered or an earlier
    /// deadline applies; see [`set_deadline`](Self::set_deadline).
    fn arm(this: &Arc<Node>, deadline: Instant, reason: DeadlineReason) -> bool {
        if this.is_triggered() || this.deadline().is_some_and(|current| current <= deadline) {
            return false;
        }
        let (stale, replaced) = {
            let mut links = this.links();
            if this.is_triggered() || links.timer.is_some_and(|key| key.deadline() <= deadline) {
                return false;
            }
            // Registered under the node's lock, which is allowed: the timer never locks a node
            // while it holds a lock of its own. A timer that fires meanwhile waits for this lock
            // to read the reason.
            let target: Weak<dyn Expire> = Arc::downgrade(this) as Weak<Node>;
            let key = time::register(deadline, target);
            let replaced = std::mem::replace(&mut links.deadline_reason, reason);
            (links.timer.replace(key), replaced)
        };
        if let Some(stale) = stale {
            time::cancel(stale);
        }
        // The previous reason (user data) is dropped with no lock held.
        drop(replaced);
        true
    }

    /// The effective deadline: the earliest of this token's own and every ancestor's.
    ///
    /// Computed from the parent links, which never change, so a child of a deadline token
    /// stores nothing and an ancestor's later deadline is seen at once.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let mut found = None;
        let mut stack = vec![self];
        // Two paths up can meet only below a node with several parents: until one is seen,
        // the walk is a single line and needs no record of where it has been.
        let mut seen: Option<HashSet<*const Node>> = None;
        while let Some(node) = stack.pop() {
            let cold = node.cold.get();
            if let Some(cold) = cold {
                found = earliest(found, lock(&cold.links).timer.map(|key| key.deadline()));
                if cold.is_all() {
                    // Its deadline is the latest of its sources': the general case.
                    return effective(self);
                }
                if cold.parents().nth(1).is_some() && seen.is_none() {
                    seen = Some(HashSet::new());
                }
            }
            let parents = node
                .parent
                .iter()
                .chain(cold.into_iter().flat_map(|cold| cold.parents()));
            for link in parents {
                let first_visit = match &mut seen {
                    Some(seen) => seen.insert(Arc::as_ptr(&link.node)),
                    None => true,
                };
                if first_visit {
                    stack.push(&link.node);
                }
            }
        }
        found
    }
}

/// Every parent of `node` (its sources, for an `all` token).
fn parents_of(node: &Node) -> impl Iterator<Item = &Node> {
    let cold = node.cold.get();
    node.parent
        .iter()
        .chain(cold.into_iter().flat_map(|cold| cold.parents()))
        .map(|link| &*link.node)
}

/// The effective deadline of `root` in a graph with `all` tokens: the earliest of a node's own
/// deadline and what its parents give, where an `all` token's sources give the latest of their
/// effective deadlines (if each untriggered one has one) and any other node's parents the
/// earliest. Each node is evaluated once, parents first, with an explicit stack: a tower of
/// `all` tokens a million deep uses no call stack, and diamonds cost no more than their nodes.
fn effective(root: &Node) -> Option<Instant> {
    let mut memo: HashMap<*const Node, Option<Instant>> = HashMap::new();
    let mut stack: Vec<(&Node, bool)> = vec![(root, false)];
    while let Some((node, parents_done)) = stack.pop() {
        if memo.contains_key(&(node as *const Node)) {
            continue;
        }
        if !parents_done {
            stack.push((node, true));
            stack.extend(
                parents_of(node)
                    .filter(|parent| !memo.contains_key(&(*parent as *const Node)))
                    .map(|parent| (parent, false)),
            );
            continue;
        }
        let of = |parent: &Node| memo.get(&(parent as *const Node)).copied().flatten();
        let cold = node.cold.get();
        let from_parents = if cold.is_some_and(|cold| cold.is_all()) {
            let mut latest: Option<Instant> = None;
            let mut every_one_has_one = true;
            for source in parents_of(node).filter(|source| !source.is_triggered()) {
                match of(source) {
                    Some(deadline) => latest = Some(latest.map_or(deadline, |l| l.max(deadline))),
                    None => every_one_has_one = false,
                }
            }
            latest.filter(|_| every_one_has_one)
        } else {
            parents_of(node).filter_map(of).min()
        };
        let own = cold.and_then(|cold| lock(&cold.links).timer.map(|key| key.deadline()));
        memo.insert(node, earliest(own, from_parents));
    }
    memo.get(&(root as *const Node)).copied().flatten()
}

impl Expire for Node {
    fn expire(self: Arc<Self>) {
        let reason = std::mem::take(&mut self.links().deadline_reason);
        // Formatted, if it must be, with no lock held.
        Node::trigger(&self, reason.into_reason());
    }
}
