//! Waiting for a token: the futures and the blocking waits.

use std::time::{Duration, Instant};

use crate::wait::{self, Wait, WaitOwned};
use crate::CancelToken;

impl CancelToken {
    /// A future that resolves once the token is triggered.
    ///
    /// It resolves at its first poll if the token is already triggered. Any number of
    /// futures can wait on one token; a trigger wakes all of them. See [`Wait`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let trigger = token.clone();
    /// std::thread::spawn(move || trigger.trigger_with("done"));
    ///
    /// token.wait().await;
    /// assert_eq!(token.reason().unwrap().message(), Some("done"));
    /// # });
    /// ```
    pub fn wait(&self) -> Wait<'_> {
        Wait::new(self)
    }

    /// Like [`wait`](Self::wait), but the future owns a handle of the token, so it is
    /// `Send + 'static` and can be spawned or stored. See [`WaitOwned`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::new();
    /// let waiting = token.clone().wait_owned();
    /// token.trigger();
    /// waiting.await;
    /// # });
    /// ```
    pub fn wait_owned(self) -> WaitOwned {
        WaitOwned::new(self)
    }

    /// Blocks the current thread until the token is triggered.
    ///
    /// Returns at once if it already is.
    ///
    /// # Blocking
    ///
    /// This parks the calling thread. Don't call it from an async task: use
    /// [`wait`](Self::wait) there.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let trigger = token.clone();
    /// std::thread::spawn(move || trigger.trigger());
    ///
    /// token.wait_blocking();
    /// assert!(token.is_triggered());
    /// ```
    pub fn wait_blocking(&self) {
        wait::block(&self.node, None);
    }

    /// Blocks the current thread until the token is triggered or `timeout` has passed.
    ///
    /// Returns `true` if the token is triggered. A timeout too large to represent as an
    /// [`Instant`] means "no timeout".
    ///
    /// # Blocking
    ///
    /// This parks the calling thread. Don't call it from an async task.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// assert!(!token.wait_blocking_timeout(Duration::from_millis(10)));
    /// token.trigger();
    /// assert!(token.wait_blocking_timeout(Duration::from_secs(60)));
    /// ```
    pub fn wait_blocking_timeout(&self, timeout: Duration) -> bool {
        wait::block(&self.node, Instant::now().checked_add(timeout))
    }

    /// Blocks the current thread until the token is triggered or `deadline` is reached.
    ///
    /// Returns `true` if the token is triggered.
    ///
    /// # Blocking
    ///
    /// This parks the calling thread. Don't call it from an async task.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let deadline = Instant::now() + Duration::from_millis(10);
    /// assert!(!token.wait_blocking_deadline(deadline));
    /// ```
    pub fn wait_blocking_deadline(&self, deadline: Instant) -> bool {
        wait::block(&self.node, Some(deadline))
    }
}
