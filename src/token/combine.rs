//! Tokens made from other tokens: a child, a chain, `any` and `all` of several.

use std::borrow::Cow;

use crate::node::Node;
use crate::sync::Arc;
use crate::CancelToken;

impl CancelToken {
    /// A new token that is triggered when this one is, with this one's reason (unless it is
    /// triggered first by a trigger of its own).
    ///
    /// Triggering the child does not affect this token or its other children. A child of a
    /// triggered token is born triggered. The link lives as long as the child (or one of its
    /// own descendants) does; dropping the child's last handle unlinks it in O(1).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let parent = CancelToken::new();
    /// let child = parent.child();
    ///
    /// child.trigger();
    /// assert!(!parent.is_triggered(), "children never trigger their parent");
    ///
    /// let other = parent.child();
    /// parent.trigger_with("shutdown");
    /// assert_eq!(other.triggered_token(), Some(parent.clone()));
    /// assert!(parent.child().is_triggered(), "born triggered");
    /// ```
    #[inline]
    #[doc(alias = "child_token")]
    pub fn child(&self) -> CancelToken {
        CancelToken::from_arc(Node::child(&self.node, None))
    }

    /// Like [`child`](Self::child), with a name.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let server = CancelToken::named("server");
    /// let request = server.child_named("request 7");
    /// assert_eq!(request.name(), Some("request 7"));
    /// ```
    pub fn child_named(&self, name: impl Into<Cow<'static, str>>) -> CancelToken {
        CancelToken::from_arc(Node::child(&self.node, Some(name.into())))
    }

    /// A new token that is triggered when this one **or** `other` is.
    ///
    /// Neither source is affected by triggering the new token. If both sources are named, the
    /// new token is named `"self:other"`; if one is, it takes that name. If a source is already
    /// triggered, the new token is born triggered with its reason (this token's first).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let a = CancelToken::named("a");
    /// let b = CancelToken::named("b");
    /// let both = a.chain(&b);
    /// assert_eq!(both.name(), Some("a:b"));
    ///
    /// b.trigger_with("b gave up");
    /// assert!(both.is_triggered());
    /// assert_eq!(both.triggered_token(), Some(b));
    /// assert!(!a.is_triggered());
    /// ```
    pub fn chain(&self, other: &CancelToken) -> CancelToken {
        let name = joined_name([self.name(), other.name()].into_iter().flatten());
        CancelToken::from_arc(Node::any(&[&self.node, &other.node], name))
    }

    /// A new token that is triggered when any of `tokens` is (JavaScript's `AbortSignal.any`).
    ///
    /// The new token is named after the named sources, joined by `:`. If a source is already
    /// triggered, the new token is born triggered with the reason of the first such source.
    /// With no sources at all the new token is only ever triggered directly.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let user = CancelToken::named("user");
    /// let shutdown = CancelToken::named("shutdown");
    /// let quota = CancelToken::named("quota");
    ///
    /// let any = CancelToken::any([&user, &shutdown, &quota]);
    /// assert_eq!(any.name(), Some("user:shutdown:quota"));
    ///
    /// quota.trigger_with("over budget");
    /// assert_eq!(any.reason().unwrap().message(), Some("over budget"));
    /// assert_eq!(any.triggered_token(), Some(quota));
    /// ```
    pub fn any<'a>(tokens: impl IntoIterator<Item = &'a CancelToken>) -> CancelToken {
        let tokens: Vec<&CancelToken> = tokens.into_iter().collect();
        let name = joined_name(tokens.iter().filter_map(|token| token.name()));
        let parents: Vec<&Arc<Node>> = tokens.iter().map(|token| &token.node).collect();
        CancelToken::from_arc(Node::any(&parents, name))
    }

    /// A new token that is triggered once **every one** of `tokens` is, with the reason and
    /// origin of the last to fire.
    ///
    /// Sources already triggered count as fired, in iteration order: if all are, the new token
    /// is born triggered with the reason of the last. With no sources at all it is born
    /// triggered (every one of none is), with [`ReasonKind::Manual`] and the message
    /// `"all() of no tokens"`. A token given twice counts twice, and its one trigger counts
    /// off both.
    /// The new token is named after the named sources, joined by `:`.
    ///
    /// A source's trigger costs one atomic decrement, however many sources there are. The new
    /// token is not a descendant of its sources: a source's `trigger` call returns with the
    /// new token triggered (when it was the last) because it runs as one of that source's
    /// callbacks, on the triggering thread. It holds its sources alive, as a chain does, and
    /// removes its registrations from them when its last handle is dropped. A source whose
    /// handles are all dropped before it fired is kept alive but can no longer be triggered by
    /// anyone (unless through its own sources), so the new token then triggers only directly.
    /// Under concurrent triggers, "the last to fire" is the source whose count came last.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let db = CancelToken::named("db");
    /// let cache = CancelToken::named("cache");
    /// let both_gone = CancelToken::all([&db, &cache]);
    ///
    /// db.trigger_with("connection lost");
    /// assert!(!both_gone.is_triggered());
    ///
    /// cache.trigger_with("evicted");
    /// assert!(both_gone.is_triggered());
    /// assert_eq!(both_gone.reason().unwrap().message(), Some("evicted"));
    /// assert_eq!(both_gone.triggered_token(), Some(cache));
    /// ```
    ///
    /// [`ReasonKind::Manual`]: crate::ReasonKind::Manual
    pub fn all<'a>(tokens: impl IntoIterator<Item = &'a CancelToken>) -> CancelToken {
        let tokens: Vec<&CancelToken> = tokens.into_iter().collect();
        let name = joined_name(tokens.iter().filter_map(|token| token.name()));
        let sources: Vec<&Arc<Node>> = tokens.iter().map(|token| &token.node).collect();
        CancelToken::from_arc(Node::all(&sources, name))
    }
}

/// The names of a linked token's sources joined by `:`; `None` if none is named.
fn joined_name<'a>(mut names: impl Iterator<Item = &'a str>) -> Option<Cow<'static, str>> {
    let first = names.next()?;
    let mut joined = first.to_owned();
    for name in names {
        joined.push(':');
        joined.push_str(name);
    }
    Some(Cow::Owned(joined))
}
