//! A token's deadline: setting its own, reading the effective one (the earliest among the
//! token and its ancestors), and firing it from the timer.

use std::collections::HashSet;
use std::time::Instant;

use crate::node::Node;
use crate::reason::{Reason, ReasonKind};
use crate::sync::{lock, Arc, Weak};
use crate::time::{self, Expire};

/// The earlier of two optional deadlines, `None` meaning "never".
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Node {
    /// Gives `this` its own deadline, unless an earlier one (its own or an ancestor's)
    /// already applies. A deadline that has passed triggers at once.
    pub(crate) fn set_deadline(this: &Arc<Node>, deadline: Instant) {
        if deadline <= Instant::now() {
            Node::trigger(this, Reason::new(ReasonKind::Timeout));
            return;
        }
        if this.deadline().is_some_and(|current| current <= deadline) {
            return;
        }
        {
            let mut links = this.links();
            if this.is_triggered() || links.deadline.is_some_and(|current| current <= deadline) {
                return;
            }
            links.deadline = Some(deadline);
        }
        // Registered outside the node's lock: the timer locks nodes (to trigger them) after
        // releasing its own lock, never the other way round.
        let target: Weak<dyn Expire> = Arc::downgrade(this) as Weak<Node>;
        let key = time::register(deadline, target);
        let mut links = this.links();
        let stale = if this.is_triggered() {
            // Triggered meanwhile (possibly by this very timer): nothing to keep.
            Some(key)
        } else {
            links.timer.replace(key)
        };
        drop(links);
        if let Some(stale) = stale {
            time::cancel(stale);
        }
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
                found = earliest(found, lock(&cold.links).deadline);
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

impl Expire for Node {
    fn expire(self: Arc<Self>) {
        Node::trigger(&self, Reason::new(ReasonKind::Timeout));
    }
}
