//! Waiting for a token: the futures and the blocking waits, and sleeps that a trigger cuts
//! short.

use std::time::{Duration, Instant};

use crate::error::Cancelled;
use crate::sleep::{Sleep, SleepOwned};
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
    ///
    /// tokio-util's `cancelled().await` is this method; this crate's
    /// [`cancelled`](Self::cancelled) gives the error of a triggered token instead.
    #[doc(alias = "cancelled")]
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
    #[doc(alias = "cancelled_owned")]
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
    ///
    /// # A worker blocked in a channel
    ///
    /// A thread blocked in `std::sync::mpsc::Receiver::recv` (or any blocking call that knows
    /// nothing of tokens) cannot wait on a token at the same time. Two ways out:
    ///
    /// - **Close the channel from a callback.** `recv` returns `Err` once every `Sender` is
    ///   gone, so let an [`on_cancel`](Self::on_cancel) callback drop the last one. The worker
    ///   wakes at once, on the trigger; messages already sent are still received first, so
    ///   check the token in the loop if they must be skipped.
    /// - **Poll with a timeout**: `recv_timeout(interval)` and [`is_triggered`](Self::is_triggered)
    ///   between the waits (a job is taken at once, a trigger is seen within the interval), or
    ///   `try_recv` and [`wait_blocking_timeout(interval)`](Self::wait_blocking_timeout) (a
    ///   trigger is seen at once, a job within the interval). No callback, no shared `Sender`.
    ///
    /// `docs/threads.md` has both in full. The first one:
    ///
    /// ```
    /// use std::sync::{mpsc, Arc, Mutex};
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let (tx, rx) = mpsc::channel::<u32>();
    /// // Producers send through the shared slot; the callback empties it.
    /// let tx = Arc::new(Mutex::new(Some(tx)));
    /// let _close = token.on_cancel({
    ///     let tx = Arc::clone(&tx);
    ///     move |_| drop(tx.lock().unwrap().take()) // the last Sender: `recv` returns Err
    /// });
    ///
    /// let worker = std::thread::spawn(move || rx.iter().sum::<u32>()); // ends with the channel
    /// if let Some(tx) = &*tx.lock().unwrap() {
    ///     tx.send(2).unwrap();
    /// }
    /// token.trigger();
    /// assert_eq!(worker.join().unwrap(), 2);
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

    /// A future that sleeps for `duration` unless the token is triggered first: `Ok(())` once
    /// the duration has passed, `Err(Cancelled)` the moment the token is triggered.
    ///
    /// For back-offs, polling intervals and pauses between steps that must end at once on a
    /// cancellation. It needs no runtime: the crate's own timer threads wake it, as they fire
    /// [`with_timeout`](Self::with_timeout) tokens. The duration counts from this call.
    ///
    /// - A token already triggered gives `Err` at the first poll.
    /// - `Duration::ZERO` gives `Ok(())` at the first poll, unless the token is triggered:
    ///   cancellation wins ties, here as in [`run`](Self::run).
    /// - A duration too large to represent as an [`Instant`] (`Duration::MAX`) sleeps until
    ///   the token is triggered.
    /// - A deadline of the token's own (or of a parent's) that passes first ends the sleep with
    ///   `Err`, with that deadline's [`ReasonKind::Timeout`](crate::ReasonKind::Timeout).
    ///
    /// See [`Sleep`]; [`sleep_owned`](Self::sleep_owned) is the `'static` form and
    /// [`sleep_blocking`](Self::sleep_blocking) the one for plain threads.
    ///
    /// # Errors
    ///
    /// The future resolves to [`Cancelled`] if the token is triggered before the duration has
    /// passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let token = CancelToken::named("poller");
    /// assert_eq!(token.sleep(Duration::from_millis(1)).await, Ok(()));
    ///
    /// let stopper = token.clone();
    /// std::thread::spawn(move || stopper.trigger_with("shutting down"));
    /// let err = token.sleep(Duration::from_secs(3600)).await.unwrap_err();
    /// assert_eq!(err.reason().message(), Some("shutting down"));
    /// # });
    /// ```
    pub fn sleep(&self, duration: Duration) -> Sleep<'_> {
        Sleep::new(self, duration)
    }

    /// Like [`sleep`](Self::sleep), but the future owns a handle of the token, so it is
    /// `Send + 'static` and can be spawned or stored. See [`SleepOwned`].
    ///
    /// # Errors
    ///
    /// The future resolves to [`Cancelled`] if the token is triggered before the duration has
    /// passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// token.trigger();
    /// let sleep = token.clone().sleep_owned(Duration::ZERO);
    /// assert!(futures_lite::future::block_on(sleep).is_err(), "cancellation wins the tie");
    /// ```
    pub fn sleep_owned(self, duration: Duration) -> SleepOwned {
        SleepOwned::new(self, duration)
    }

    /// Blocks the current thread for `duration` unless the token is triggered first: `Ok(())`
    /// once the duration has passed, `Err(Cancelled)` as soon as the token is triggered.
    ///
    /// The blocking twin of [`sleep`](Self::sleep), with the same rules: a token already
    /// triggered returns `Err` at once, `Duration::ZERO` returns `Ok(())` at once unless the
    /// token is triggered, and a duration too large to represent as an [`Instant`] blocks
    /// until the token is triggered. A trigger that lands as the duration ends is a
    /// cancellation.
    ///
    /// # Blocking
    ///
    /// This parks the calling thread. Don't call it from an async task: use
    /// [`sleep`](Self::sleep) there.
    ///
    /// # Errors
    ///
    /// Returns [`Cancelled`] if the token is triggered before the duration has passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// let worker = {
    ///     let token = token.clone();
    ///     std::thread::spawn(move || {
    ///         let mut rounds = 0;
    ///         // Poll something every 10 ms until told to stop.
    ///         while token.sleep_blocking(Duration::from_millis(10)).is_ok() {
    ///             rounds += 1;
    ///         }
    ///         rounds
    ///     })
    /// };
    /// token.trigger_with("done");
    /// let _rounds = worker.join().unwrap();
    /// assert_eq!(token.sleep_blocking(Duration::ZERO).unwrap_err().reason().message(), Some("done"));
    /// ```
    pub fn sleep_blocking(&self, duration: Duration) -> Result<(), Cancelled> {
        if self.wait_blocking_timeout(duration) {
            Err(self.expect_cancelled())
        } else {
            Ok(())
        }
    }
}
