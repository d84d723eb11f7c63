//! Graceful shutdown: [`TaskTracker`] counts what is still running, and [`Shutdown`] runs the
//! phases (stop accepting, a grace period, cancel what is left) and reports how it went.
//! Signals that request a shutdown are the `signal` module's (feature `signal`).

mod graceful;
mod tracker;

pub use graceful::{Shutdown, ShutdownOutcome, ShutdownReport, ShutdownWait};
pub use tracker::{TaskTracker, TrackedFuture, TrackerGuard, TrackerWait, TrackerWaitOwned};
