//! Process signals as cancellation (feature `signal`): [`trigger_on`] triggers a token and
//! [`on_signal`] calls a handler when the process receives SIGINT, SIGTERM, SIGHUP or SIGQUIT on
//! Unix, Ctrl-C or Ctrl-Break on Windows. This module owns the [`Signal`] names, the
//! registration with signal-hook, the one thread each registration watches from, and the
//! [`SignalGuard`] that takes it all down again.
//!
//! ```
//! use std::time::Duration;
//! use cancel_token::signal::{self, SHUTDOWN_SIGNALS};
//! use cancel_token::{CancelToken, ReasonKind};
//!
//! let shutdown = CancelToken::named("shutdown");
//! let _guard = signal::trigger_on(&shutdown, &SHUTDOWN_SIGNALS)?;
//!
//! // Here the user presses Ctrl-C; the example sends the signal to itself.
//! signal_hook::low_level::raise(signal_hook::consts::SIGINT)?;
//!
//! assert!(shutdown.wait_blocking_timeout(Duration::from_secs(30)));
//! let reason = shutdown.reason().unwrap();
//! assert_eq!(reason.kind(), ReasonKind::Signal);
//! assert_eq!(reason.message(), Some("SIGINT"));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Where the code runs
//!
//! No code of this crate, and none of yours, runs inside the signal handler. Each registration
//! adds two actions to signal-hook's handler for each of its signals: one sets an `AtomicBool`,
//! the next writes one byte into a socket pair that the registration owns (signal-hook's
//! `flag::register` and `low_level::pipe::register`: an atomic store and a non-blocking `send`,
//! both async-signal-safe). The registration's own thread, named `cancel-token-signal`, sleeps
//! in a blocking read on the other end of the socket; when it wakes it clears the flags and
//! calls the handler (for [`trigger_on`]: triggers the token, running its callbacks) once for
//! each signal it found set. So callbacks may take locks, allocate and block, and one slow
//! registration never delays another.
//!
//! # Coalescing
//!
//! The handler runs once per delivery the thread *sees*. Deliveries of the same signal that
//! arrive before the thread has taken the previous one are seen as one (the OS also merges a
//! signal that is already pending, and the flag is a plain "seen" bit). A delivery that arrives
//! after the thread took the previous one is always seen again, so "press Ctrl-C twice" works.
//! Several different signals seen in one wake-up are handed over in the order of the `signals`
//! slice, not in the order they arrived.
//!
//! # Several registrations
//!
//! Registrations are independent: each has its own actions, socket and thread, and every
//! registration for a signal sees every delivery of it. Dropping a [`SignalGuard`] removes that
//! registration's actions only (signal-hook's `unregister` takes the one action it is given out
//! of the signal's list and leaves the others in place), so the remaining registrations keep
//! firing.
//!
//! # Dropping the guard
//!
//! Dropping the guard unregisters its actions (when `unregister` returns, signal-hook has waited
//! for any signal handler still running them and closed the write ends), then wakes its thread
//! and joins it. The thread is parked in a read, so joining never waits on a signal; it waits
//! only for a handler call that is already running. Dropping the guard from inside its own
//! handler does not join (a thread cannot wait for itself): the thread ends when the handler
//! returns, and the handler is not called again.
//!
//! Removing the last action does **not** give the signal its default action back. signal-hook
//! installs its OS-level handler once per signal and never uninstalls it; its handler first
//! calls whatever handler was installed before it (nothing, when that was the default), then the
//! remaining actions. So once the last registration for SIGTERM is dropped, SIGTERM is
//! *ignored* by the process, not fatal, until something registers for it again. Keep a guard
//! alive for as long as the process should react to its signals; to make a later signal fatal,
//! exit from the handler (or [`std::process::exit`] once shutdown is done).
//!
//! # Windows
//!
//! [`Signal::Interrupt`] is Ctrl-C and [`Signal::Terminate`] is Ctrl-Break (the C runtime's
//! `SIGINT` and `SIGBREAK`, named `"SIGINT"` and `"SIGBREAK"`), so [`SHUTDOWN_SIGNALS`]
//! covers both console keys; Ctrl-Break is also what a parent process sends a console process
//! group to ask it to stop. [`Signal::Hangup`] and [`Signal::Quit`] have no Windows
//! counterpart: registering them fails with [`io::ErrorKind::Unsupported`]. Without `unsafe`,
//! signal-hook offers Windows only its flag actions, so the thread checks the flags every 50 ms
//! instead of sleeping on a socket: a signal is seen within 50 ms. This path is small; it is
//! compile-checked for `x86_64-pc-windows-gnu` but not run by this crate's test suite, which
//! runs on Unix.

use std::ffi::c_int;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use signal_hook::SigId;

use crate::{CancelToken, Reason, ReasonKind};

mod wake;

/// A signal that can ask the process to stop.
///
/// On Unix each variant is the signal of the same name; on Windows, see the
/// [module docs](self#windows).
///
/// # Examples
///
/// ```
/// use cancel_token::signal::Signal;
///
/// assert_eq!(Signal::Hangup.name(), "SIGHUP");
/// assert_eq!(Signal::Quit.to_string(), "SIGQUIT");
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// `SIGINT`: Ctrl-C in a terminal. On Windows: Ctrl-C.
    Interrupt,
    /// `SIGTERM`: a polite request to stop, the default of `kill`, systemd and container
    /// runtimes. On Windows: Ctrl-Break (the C runtime's `SIGBREAK`).
    Terminate,
    /// `SIGHUP`: the controlling terminal went away (or, by convention, "reload"). Unix only.
    Hangup,
    /// `SIGQUIT`: Ctrl-\ in a terminal; its default action also dumps core. Unix only.
    Quit,
}

/// The signals that ask a service to shut down: [`Signal::Interrupt`] and
/// [`Signal::Terminate`] (on Windows: Ctrl-C and Ctrl-Break).
///
/// # Examples
///
/// ```
/// use cancel_token::signal::{Signal, SHUTDOWN_SIGNALS};
///
/// assert!(SHUTDOWN_SIGNALS.contains(&Signal::Terminate));
/// assert!(!SHUTDOWN_SIGNALS.contains(&Signal::Hangup));
/// ```
pub const SHUTDOWN_SIGNALS: [Signal; 2] = [Signal::Interrupt, Signal::Terminate];

impl Signal {
    /// The signal's conventional name, used as the message of the [`Reason`] that
    /// [`trigger_on`] records: `"SIGINT"`, `"SIGTERM"`, `"SIGHUP"` or `"SIGQUIT"` (on Windows,
    /// [`Signal::Terminate`] is `"SIGBREAK"`). `Display` prints the same name.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::signal::Signal;
    ///
    /// assert_eq!(Signal::Interrupt.name(), "SIGINT");
    /// # #[cfg(unix)]
    /// assert_eq!(Signal::Terminate.name(), "SIGTERM");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            #[cfg(not(windows))]
            Signal::Terminate => "SIGTERM",
            #[cfg(windows)]
            Signal::Terminate => "SIGBREAK",
            Signal::Hangup => "SIGHUP",
            Signal::Quit => "SIGQUIT",
        }
    }

    /// The number signal-hook knows this signal by on this platform.
    #[cfg(unix)]
    fn number(self) -> io::Result<c_int> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
        Ok(match self {
            Signal::Interrupt => SIGINT,
            Signal::Terminate => SIGTERM,
            Signal::Hangup => SIGHUP,
            Signal::Quit => SIGQUIT,
        })
    }

    /// The number signal-hook knows this signal by on this platform.
    #[cfg(windows)]
    fn number(self) -> io::Result<c_int> {
        use signal_hook::consts::{SIGBREAK, SIGINT};
        match self {
            Signal::Interrupt => Ok(SIGINT),
            Signal::Terminate => Ok(SIGBREAK),
            Signal::Hangup | Signal::Quit => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{} has no counterpart on Windows", self.name()),
            )),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A registration made by [`trigger_on`] or [`on_signal`]; dropping it removes the
/// registration.
///
/// While the guard lives, its signals no longer have their default action (they do not end the
/// process) and each delivery reaches the registration's handler on the registration's own
/// thread. Dropping the guard removes this registration's actions only, then stops and joins its
/// thread; see [Dropping the guard](self#dropping-the-guard) for what the signal does
/// afterwards. `Debug` shows the signals and whether the thread still runs.
///
/// # Examples
///
/// ```
/// use cancel_token::signal::{self, Signal};
/// use cancel_token::CancelToken;
///
/// let token = CancelToken::new();
/// let guard = signal::trigger_on(&token, &[Signal::Hangup])?;
/// assert_eq!(
///     format!("{guard:?}"),
///     "SignalGuard { signals: [Hangup], running: true }",
/// );
/// drop(guard); // unregisters, stops and joins the thread
/// assert!(!token.is_triggered());
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "dropping a SignalGuard removes its registration at once"]
pub struct SignalGuard {
    signals: Vec<Signal>,
    // Declared before `pipe`: unregistered (in `drop`) while the read end is still open.
    actions: Actions,
    stop: Arc<AtomicBool>,
    pipe: wake::Pipe,
    thread: Option<JoinHandle<()>>,
}

/// Triggers `token` at the first delivery of any of `signals`, with a [`Reason`] of kind
/// [`ReasonKind::Signal`] whose message is the signal's [name](Signal::name).
///
/// The token is triggered, and its callbacks run, on the registration's thread. Later
/// deliveries are still caught (they do not end the process) and change nothing while the guard
/// lives. A token tree does the rest: trigger one root token here and give each part of the
/// program a [`child`](CancelToken::child), or [`chain`](CancelToken::chain) a request's token
/// with the root so that either ends the request.
///
/// # Errors
///
/// Fails if `signals` is empty ([`io::ErrorKind::InvalidInput`]), if a signal does not exist on
/// this platform ([`io::ErrorKind::Unsupported`]), if the OS refuses to install the handler or
/// to create the socket pair, or if the thread cannot be spawned. Nothing stays registered after
/// an error.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancel_token::signal::{self, SHUTDOWN_SIGNALS};
/// use cancel_token::{CancelToken, ReasonKind};
///
/// let root = CancelToken::named("root");
/// let _signals = signal::trigger_on(&root, &SHUTDOWN_SIGNALS)?;
/// let worker = root.child();
///
/// signal_hook::low_level::raise(signal_hook::consts::SIGINT)?;
///
/// assert!(worker.wait_blocking_timeout(Duration::from_secs(30)));
/// assert_eq!(worker.reason().unwrap().kind(), ReasonKind::Signal);
/// assert_eq!(worker.triggered_token(), Some(root));
///
/// assert_eq!(
///     signal::trigger_on(&worker, &[]).unwrap_err().kind(),
///     std::io::ErrorKind::InvalidInput,
/// );
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn trigger_on(token: &CancelToken, signals: &[Signal]) -> io::Result<SignalGuard> {
    let token = token.clone();
    on_signal(signals, move |signal| {
        if !token.is_triggered() {
            token.trigger_with(Reason::with_message(ReasonKind::Signal, signal.name()));
        }
    })
}

/// Calls `handler` with the signal at each delivery of any of `signals`, on the
/// registration's own thread, never inside the signal handler.
///
/// Every delivery that arrives after the handler was called for the previous one calls it
/// again; deliveries closer together than that may be seen as one (see
/// [Coalescing](self#coalescing)). The handler may block, take locks and trigger tokens; while it
/// runs, new deliveries wait for it. Dropping the guard waits for a call that is running.
///
/// # Errors
///
/// As for [`trigger_on`].
///
/// # Panics
///
/// A panic in `handler` ends the registration's thread (the panic is printed by the panic hook
/// and not propagated anywhere): later deliveries are caught and ignored until the guard is
/// dropped.
///
/// # Examples
///
/// Every delivery reaches the handler, the second Ctrl-C as well as the first (the lead-up to
/// "stop gently, then give up").
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use cancel_token::signal::{self, Signal};
///
/// let (tx, presses) = mpsc::channel();
/// let _guard = signal::on_signal(&[Signal::Interrupt], move |signal| {
///     let _ = tx.send(signal);
/// })?;
///
/// let limit = Duration::from_secs(30);
/// signal_hook::low_level::raise(signal_hook::consts::SIGINT)?;
/// assert_eq!(presses.recv_timeout(limit), Ok(Signal::Interrupt)); // stop gently
/// signal_hook::low_level::raise(signal_hook::consts::SIGINT)?;
/// assert_eq!(presses.recv_timeout(limit), Ok(Signal::Interrupt)); // give up
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn on_signal(
    signals: &[Signal],
    mut handler: impl FnMut(Signal) + Send + 'static,
) -> io::Result<SignalGuard> {
    let mut unique: Vec<Signal> = Vec::with_capacity(signals.len());
    for &signal in signals {
        if !unique.contains(&signal) {
            unique.push(signal);
        }
    }
    if unique.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no signals to register for",
        ));
    }

    // Declared first so that an error below unregisters (`actions` drops) before the socket
    // pair closes: a signal must never find its write end's peer gone.
    let pipe = wake::Pipe::new()?;
    let mut actions = Actions(Vec::with_capacity(unique.len() * 2));
    let mut seen = Vec::with_capacity(unique.len());
    for &signal in &unique {
        let number = signal.number()?;
        let flag = Arc::new(AtomicBool::new(false));
        // signal-hook runs a signal's actions in the order they were registered: the flag is
        // set before the byte is written, so the thread, which reads the byte before it clears
        // the flags, never misses a signal (at worst it wakes once for nothing).
        actions
            .0
            .push(signal_hook::flag::register(number, Arc::clone(&flag))?);
        if let Some(id) = pipe.register(number)? {
            actions.0.push(id);
        }
        seen.push((signal, flag));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut waiter = pipe.waiter();
    let thread = {
        let stop = Arc::clone(&stop);
        thread::Builder::new()
            .name("cancel-token-signal".into())
            .spawn(move || loop {
                // Scan before the first wait too: a signal that came between its flag's and its
                // pipe's registration set the flag without a byte.
                for (signal, flag) in &seen {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if flag.swap(false, Ordering::SeqCst) {
                        handler(*signal);
                    }
                }
                if !waiter.wait() || stop.load(Ordering::SeqCst) {
                    return;
                }
            })?
    };

    Ok(SignalGuard {
        signals: unique,
        actions,
        stop,
        pipe,
        thread: Some(thread),
    })
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        // When this returns no action of ours runs or will run, and their write ends are closed.
        self.actions.unregister();
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            self.pipe.wake(thread.thread());
            // From inside the handler (the guard moved into it and dropped there), joining would
            // wait for this very thread; it sees `stop` as soon as the handler returns.
            if thread.thread().id() != thread::current().id() {
                // A panic in the handler was printed already; a drop must not raise it again.
                let _ = thread.join();
            }
        }
    }
}

impl fmt::Debug for SignalGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let running = self
            .thread
            .as_ref()
            .is_some_and(|thread| !thread.is_finished());
        f.debug_struct("SignalGuard")
            .field("signals", &self.signals)
            .field("running", &running)
            .finish()
    }
}

/// The signal-hook actions of one registration; dropping unregisters them (also on the error
/// paths of [`on_signal`]).
struct Actions(Vec<SigId>);

impl Actions {
    fn unregister(&mut self) {
        for id in self.0.drain(..) {
            // `false` only means the action is already gone, which is what we want.
            signal_hook::low_level::unregister(id);
        }
    }
}

impl Drop for Actions {
    fn drop(&mut self) {
        self.unregister();
    }
}
