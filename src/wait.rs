//! Waiting for a token: the [`Wait`] and [`WaitOwned`] futures and the blocking waits.
//!
//! Every wait registers its listener first and checks the flag second, and the trigger sets
//! the flag first and notifies second, so a trigger can never slip between the check and the
//! registration (the lost wake-up).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use event_listener::{EventListener, Listener};

use crate::node::Node;
use crate::CancelToken;

/// The state shared by every future that waits on a token: at most one registration, made on the first pending
/// poll, replaced never, dropped when the future completes or is dropped.
///
/// It resolves only once the node's flag has been seen set.
#[derive(Default)]
pub(crate) struct Waiter {
    listener: Option<EventListener>,
}

impl Waiter {
    pub(crate) fn poll(&mut self, node: &Node, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if node.is_triggered() {
                self.listener = None;
                return Poll::Ready(());
            }
            match &mut self.listener {
                // Register, then loop to check the flag again before sleeping.
                None => self.listener = Some(node.event().listen()),
                Some(listener) => {
                    if Pin::new(listener).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.listener = None;
                }
            }
        }
    }

    /// Drops the registration, if any.
    pub(crate) fn release(&mut self) {
        self.listener = None;
    }
}

/// Future for the [`CancelToken::wait()`] method.
///
/// Resolves once the token is triggered; at the first poll if it already is.
///
/// # Cancellation safety
///
/// Dropping the future before it resolves has no effect on the token and removes its
/// registration at once. It can be used in `select!` loops and re-created freely.
///
/// # Fairness
///
/// A trigger wakes every waiting future (broadcast), whatever executor or thread each runs
/// on. The future registers a single waker and replaces it on each poll; it never accumulates
/// registrations.
///
/// # Examples
///
/// ```
/// use cancel_token::CancelToken;
///
/// # futures_lite::future::block_on(async {
/// let token = CancelToken::new();
/// token.trigger();
/// token.wait().await; // already triggered: ready at once
/// # });
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Wait<'a> {
    token: &'a CancelToken,
    waiter: Waiter,
}

impl<'a> Wait<'a> {
    pub(crate) fn new(token: &'a CancelToken) -> Self {
        Wait {
            token,
            waiter: Waiter::default(),
        }
    }

    /// The token this future waits on.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let wait = token.wait();
    /// assert_eq!(wait.token(), &token);
    /// ```
    pub fn token(&self) -> &'a CancelToken {
        self.token
    }
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.waiter.poll(this.token.node(), cx)
    }
}

impl fmt::Debug for Wait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("token", self.token)
            .field("registered", &self.waiter.listener.is_some())
            .finish()
    }
}

/// Future for the [`CancelToken::wait_owned()`] method.
///
/// Like [`Wait`], but it owns a handle of the token, so it is `Send + 'static` and can be
/// spawned or stored in a struct.
///
/// # Cancellation safety
///
/// Dropping the future before it resolves has no effect on the token and removes its
/// registration at once.
///
/// # Fairness
///
/// A trigger wakes every waiting future (broadcast).
///
/// # Examples
///
/// ```
/// use cancel_token::CancelToken;
///
/// let token = CancelToken::new();
/// let waiting = token.clone().wait_owned();
/// let task = std::thread::spawn(move || futures_lite::future::block_on(waiting));
/// token.trigger();
/// task.join().unwrap();
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct WaitOwned {
    token: CancelToken,
    waiter: Waiter,
}

impl WaitOwned {
    pub(crate) fn new(token: CancelToken) -> Self {
        WaitOwned {
            token,
            waiter: Waiter::default(),
        }
    }

    /// The token this future waits on.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let wait = token.clone().wait_owned();
    /// assert_eq!(wait.token(), &token);
    /// ```
    pub fn token(&self) -> &CancelToken {
        &self.token
    }

    /// Gives back the token handle, dropping the registration.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let back = token.clone().wait_owned().into_token();
    /// assert_eq!(back, token);
    /// ```
    pub fn into_token(self) -> CancelToken {
        self.token
    }
}

impl Future for WaitOwned {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.waiter.poll(this.token.node(), cx)
    }
}

impl fmt::Debug for WaitOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitOwned")
            .field("token", &self.token)
            .field("registered", &self.waiter.listener.is_some())
            .finish()
    }
}

/// Blocks until `node` is triggered or `deadline` passes (`None`: no deadline). Returns whether
/// the node is triggered.
pub(crate) fn block(node: &Node, deadline: Option<Instant>) -> bool {
    loop {
        if node.is_triggered() {
            return true;
        }
        let listener = node.event().listen();
        if node.is_triggered() {
            return true;
        }
        match deadline {
            None => listener.wait(),
            Some(deadline) => {
                if listener.wait_deadline(deadline).is_none() {
                    return node.is_triggered();
                }
            }
        }
    }
}
