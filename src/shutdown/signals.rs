//! Requesting a [`Shutdown`] on signals (feature `signal`): the first delivery requests it,
//! a later one forces it.

use std::io;

use super::graceful::Shutdown;
use crate::reason::{Reason, ReasonKind};
use crate::signal::{self, Signal, SignalGuard};

impl Shutdown {
    /// Requests this shutdown when one of `signals` arrives, and forces it when one arrives
    /// again: the first SIGTERM (or Ctrl-C) starts the grace period, the second one ends it.
    /// Each request's reason is [`ReasonKind::Signal`] with the signal's name (`"SIGTERM"`);
    /// the forced hard token says `"shutdown requested again: SIGINT"`.
    ///
    /// The requests are made on the registration's own thread, never in the signal handler
    /// (see [`signal::on_signal`]). The registration holds the shutdown weakly: it does not
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
            if let Some(shutdown) = shutdown.upgrade() {
                shutdown.request_with(Reason::with_message(ReasonKind::Signal, signal.name()));
            }
        })
    }
}
