//! Waiting for a token: the [`Wait`] and [`WaitOwned`] futures and the blocking waits.
//!
//! A waiter stores its waker in the token's waiter slab under the token's lock and checks the
//! flag under the same lock; a trigger sets the flag first and takes the whole slab second. So
//! a trigger can never slip between the check and the registration (the lost wake-up), and
//! once triggered, completing or dropping a waiter takes no lock at all.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

use crate::node::Node;
use crate::{CancelToken, Cancelled};

/// A handle or a borrow of a token: what the borrowed and owned futures have in common.
pub(crate) trait TokenRef {
    fn token(&self) -> &CancelToken;
}

impl TokenRef for &CancelToken {
    fn token(&self) -> &CancelToken {
        self
    }
}

impl TokenRef for CancelToken {
    fn token(&self) -> &CancelToken {
        self
    }
}

/// A registration on a token's waiter slab: at most one per waiter, made on the first pending
/// poll, refreshed (never duplicated) on later polls, removed when the waiter completes or is
/// dropped. It resolves only once the token's flag has been seen set.
pub(crate) struct Waiter<T: TokenRef> {
    token: T,
    key: Option<usize>,
}

impl<T: TokenRef> Waiter<T> {
    pub(crate) fn new(token: T) -> Self {
        Waiter { token, key: None }
    }

    pub(crate) fn token(&self) -> &CancelToken {
        self.token.token()
    }

    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let node = self.token.token().node();
        if node.is_triggered() {
            self.key = None;
            return Poll::Ready(());
        }
        match node.register_waiter(self.key, cx.waker()) {
            Some(key) => {
                self.key = Some(key);
                Poll::Pending
            }
            None => {
                self.key = None;
                Poll::Ready(())
            }
        }
    }

    /// One poll under the tie rule every adapter of the crate follows: the token first (a
    /// triggered token wins and the wrapped work is not polled at all), then the wrapped work,
    /// then a registration so that a trigger wakes the task. A trigger that lands while the
    /// work is polled still wins at this poll.
    ///
    /// On `Cancelled` the registration is gone; on `Ready` it is kept (a stream keeps it
    /// between items) and the caller releases it when it is done.
    pub(crate) fn race<O>(
        &mut self,
        cx: &mut Context<'_>,
        poll_work: impl FnOnce(&mut Context<'_>) -> Poll<O>,
    ) -> Race<O> {
        if let Err(cancelled) = self.token().raise_if_triggered() {
            self.release();
            return Race::Cancelled(cancelled);
        }
        if let Poll::Ready(output) = poll_work(cx) {
            return Race::Ready(output);
        }
        match self.poll(cx) {
            Poll::Pending => Race::Pending,
            Poll::Ready(()) => Race::Cancelled(self.token().expect_cancelled()),
        }
    }

    /// Drops the registration, if any.
    #[inline]
    pub(crate) fn release(&mut self) {
        if let Some(key) = self.key.take() {
            self.unregister(key);
        }
    }

    /// Out of line, so that dropping an adapter that never registered stays a branch.
    #[inline(never)]
    fn unregister(&self, key: usize) {
        self.token.token().node().unregister_waiter(key);
    }

    pub(crate) fn is_registered(&self) -> bool {
        self.key.is_some()
    }
}

/// The outcome of [`Waiter::race`].
pub(crate) enum Race<O> {
    /// The token is triggered: drop the wrapped work.
    Cancelled(Cancelled),
    /// The wrapped work produced this.
    Ready(O),
    /// Neither yet; the task is registered for both.
    Pending,
}

impl<T: TokenRef> Drop for Waiter<T> {
    fn drop(&mut self) {
        self.release();
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
/// on. The future keeps a single registration and refreshes its waker on each poll; it never
/// accumulates registrations.
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
    waiter: Waiter<&'a CancelToken>,
}

impl<'a> Wait<'a> {
    pub(crate) fn new(token: &'a CancelToken) -> Self {
        Wait {
            waiter: Waiter::new(token),
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
        self.waiter.token
    }
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().waiter.poll(cx)
    }
}

impl fmt::Debug for Wait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("token", self.waiter.token())
            .field("registered", &self.waiter.is_registered())
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
    waiter: Waiter<CancelToken>,
}

impl WaitOwned {
    pub(crate) fn new(token: CancelToken) -> Self {
        WaitOwned {
            waiter: Waiter::new(token),
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
        self.waiter.token()
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
        self.waiter.token().clone()
    }
}

impl Future for WaitOwned {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().waiter.poll(cx)
    }
}

impl fmt::Debug for WaitOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitOwned")
            .field("token", self.waiter.token())
            .field("registered", &self.waiter.is_registered())
            .finish()
    }
}

/// Wakes a thread parked in a blocking wait.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// The current thread's unparking waker, made once per thread.
fn thread_waker() -> Waker {
    thread_local! {
        static WAKER: Waker = Waker::from(Arc::new(Unpark(thread::current())));
    }
    WAKER
        .try_with(Waker::clone)
        // During thread teardown the cached one may be gone already.
        .unwrap_or_else(|_| Waker::from(Arc::new(Unpark(thread::current()))))
}

/// Blocks until `node` is triggered or `deadline` passes (`None`: no deadline). Returns whether
/// the node is triggered.
pub(crate) fn block(node: &Node, deadline: Option<Instant>) -> bool {
    if node.is_triggered() {
        return true;
    }
    let Some(key) = node.register_waiter(None, &thread_waker()) else {
        return true;
    };
    loop {
        // Unparks can be spurious or stale: the flag is the only truth.
        if node.is_triggered() {
            return true;
        }
        match deadline {
            None => thread::park(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    node.unregister_waiter(key);
                    return node.is_triggered();
                }
                thread::park_timeout(deadline - now);
            }
        }
    }
}
