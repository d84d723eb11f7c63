//! Graceful shutdown: [`TaskTracker`] counts what is still running, and [`Shutdown`] runs the
//! phases (stop accepting, a grace period, cancel what is left) and reports how it went.
//! Signals that request a shutdown are the `signal` module's (feature `signal`).

mod graceful;
mod phases;
mod report;
#[cfg(feature = "signal")]
mod signals;
mod tracked;
mod tracker;

pub use graceful::Shutdown;
pub use report::{ShutdownOutcome, ShutdownReport, ShutdownWait};
pub use tracked::{TrackedFuture, TrackerWait, TrackerWaitOwned};
pub use tracker::{TaskTracker, TrackerGuard};
