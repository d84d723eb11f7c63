//! Requesting a [`Shutdown`] on signals (feature `signal`): the first delivery requests it,
//! a later one forces it.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::thread;

use super::graceful::Shutdown;
use crate::reason::{Reason, ReasonKind};
use crate::signal::{self, Signal, SignalGuard};
use crate::walk::drop_payload;

impl Shutdown {
    /// Requests this shutdown when one of `signals` arrives, and forces it when one arrives
    /// again: the first SIGTERM (or Ctrl-C) starts the grace period, the second one ends it.
    /// Each request's reason is [`ReasonKind::Signal`] with the signal's name (`"SIGTERM"`);
    /// the forced hard token says `"shutdown requested again: SIGINT"`.
    ///
    /// The requests are made off the signal handler (see [`signal::on_signal`]): the first on
    /// a thread of its own, since it runs the soft token's callbacks, so that the
    /// registration's thread is free for the next signal; later ones force the shutdown on the
    /// registration's thread. A panic in the tokens' callbacks ends neither thread's watch. The registration holds the shutdown weakly: it does not
    /// keep it alive. Dropping the returned guard removes it; see the [`signal`] module for what
    /// happens to a signal after its last registration is gone (it is ignored).
    ///
    /// # Errors
    ///
    /// As [`signal::on_signal`]: an empty list, a signal the platform does not have, or the
    /// operating system refusing the registration.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::signal::SHUTDOWN_SIGNALS;
    /// use cancel_token::{ReasonKind, Shutdown};
    ///
    /// let shutdown = Shutdown::new(Duration::from_secs(3600));
    /// let _signals = shutdown.on_signals(&SHUTDOWN_SIGNALS)?;
    /// let _busy = shutdown.tracker().enter();
    ///
    /// signal_hook::low_level::raise(signal_hook::consts::SIGTERM)?;
    /// shutdown.soft().wait_blocking();
    /// let reason = shutdown.soft().reason().unwrap();
    /// assert_eq!(reason.kind(), ReasonKind::Signal);
    /// assert_eq!(reason.message(), Some("SIGTERM"));
    ///
    /// signal_hook::low_level::raise(signal_hook::consts::SIGINT)?;
    /// let report = shutdown.wait_blocking(); // forced by the second signal
    /// assert_eq!(report.forced_by().unwrap().message(), Some("shutdown requested again: SIGINT"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_signals(&self, signals: &[Signal]) -> io::Result<SignalGuard> {
        let shutdown = self.downgrade();
        signal::on_signal(signals, move |signal| {
            let Some(shutdown) = shutdown.upgrade() else {
                return;
            };
            let reason = Reason::with_message(ReasonKind::Signal, signal.name());
            if shutdown.was_requested() {
                // Forcing runs the hard token's callbacks here; a panicking one must not end
                // the thread that catches the next signal.
                let forced = panic::catch_unwind(AssertUnwindSafe(|| {
                    shutdown.request_with(reason);
                }));
                if let Err(payload) = forced {
                    drop_payload(payload);
                }
                return;
            }
            // The first request runs the soft token's callbacks, which may take their time:
            // on a thread of their own, so that this one is free to force the shutdown when
            // the next signal comes. (Two signals racing here make two requests: the second
            // forces, as it should.)
            let first = shutdown.clone();
            let spawned = thread::Builder::new()
                .name("cancel-token-shutdown".into())
                .spawn(move || {
                    first.request_with(reason);
                });
            if let Err(error) = spawned {
                // No thread to be had: request from here, which is still correct, only slower
                // to see a second signal.
                drop(error);
                let reason = Reason::with_message(ReasonKind::Signal, signal.name());
                let requested = panic::catch_unwind(AssertUnwindSafe(|| {
                    shutdown.request_with(reason);
                }));
                if let Err(payload) = requested {
                    drop_payload(payload);
                }
            }
        })
    }
}
