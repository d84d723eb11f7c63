//! Runtime-agnostic cancellation tokens for async and threaded Rust.
//!
//! A [`CancelToken`] is a cheap handle that any library can accept and any application can
//! trigger, from a task, a plain thread, a timer or a signal-watching thread. It records *why* it was
//! triggered (a [`Reason`]), wakes async and blocking waiters on any executor (or none),
//! propagates to [children](CancelToken::child) and [linked tokens](CancelToken::chain),
//! runs [callbacks](CancelToken::on_cancel), and turns into a [`Cancelled`] error for `?`.
//!
//! # Quick start
//!
//! ```
//! use std::thread;
//! use cancel_token::{CancelToken, Cancelled};
//!
//! // Library code takes a token and stops when it is triggered.
//! fn copy_chunks(chunks: &[&str], token: &CancelToken) -> Result<usize, Cancelled> {
//!     let mut copied = 0;
//!     for chunk in chunks {
//!         token.raise_if_triggered()?; // Err(Cancelled) once triggered
//!         copied += chunk.len();
//!     }
//!     Ok(copied)
//! }
//!
//! let shutdown = CancelToken::named("shutdown");
//! let user = CancelToken::named("user");
//! let request = user.chain(&shutdown); // triggered by either
//!
//! // A plain thread waits without any runtime...
//! let watcher = {
//!     let request = request.clone();
//!     thread::spawn(move || {
//!         request.wait_blocking();
//!         request.reason().unwrap().to_string()
//!     })
//! };
//! // ...and async code awaits the same token on any executor.
//! let task = {
//!     let request = request.clone();
//!     thread::spawn(move || futures_lite::future::block_on(request.wait_owned()))
//! };
//! // Callbacks run once, on the triggering thread.
//! let _cleanup = request.on_cancel(|reason| println!("cleaning up: {reason}"));
//!
//! assert_eq!(copy_chunks(&["a", "bc"], &request), Ok(3));
//! shutdown.trigger_with("maintenance window");
//!
//! assert_eq!(watcher.join().unwrap(), "maintenance window");
//! task.join().unwrap();
//! let err = copy_chunks(&["a"], &request).unwrap_err();
//! assert_eq!(err.token(), &shutdown);
//! assert_eq!(err.to_string(), "cancellation requested by token shutdown: maintenance window");
//! ```
//!
//! # Guarantees
//!
//! - [`trigger`](CancelToken::trigger) is idempotent and thread-safe: exactly one call returns
//!   `true`, and its reason is the one every observer sees. Flag and reason are published
//!   together.
//! - [`is_triggered`](CancelToken::is_triggered) is one atomic load; `clone` and `drop` are one
//!   reference-count operation.
//! - Propagation is push-based and iterative: when the `trigger` call that returned `true`
//!   returns, descendants are triggered at any depth, without recursion, except below one that
//!   another concurrent trigger reached first (that trigger finishes it).
//! - Nothing leaks: dropped children, waits and callback guards unregister in O(1).
//! - No async runtime is required; waits work on tokio, smol, async-std, any `block_on`, or a
//!   plain thread with [`wait_blocking`](CancelToken::wait_blocking). Deadline tokens
//!   ([`with_timeout`](CancelToken::with_timeout)) fire from the crate's own timer threads.
//! - Adapters ([`run`](CancelToken::run), [`stream`](CancelToken::stream),
//!   [`cancellable_wait`](CancelToken::cancellable_wait)) check the token before the wrapped
//!   work at every poll: cancellation wins ties, and wrapped work is dropped as soon as the
//!   trigger is seen.
//!
//! # Feature flags
//!
//! The core needs none. `http` adds the `http` module (adapters for any HTTP client's
//! request futures, borrowed and owned, and retries with a cancellable back-off); `http-body`
//! adds `http::CancelBody` for `http_body::Body` and `http::scope_response`, a handler token
//! that covers the response body; `tower` adds `http::CancelLayer` (which can answer a
//! cancelled request with a status, as axum needs) and `http::ScopeLayer` (a token per
//! request). `signal`
//! adds the `signal` module: SIGINT, SIGTERM (and on request SIGHUP, SIGQUIT), or Ctrl-C and
//! Ctrl-Break on Windows, trigger a token, through signal-hook. `tokio-util` adds bridges to and
//! from tokio-util's `CancellationToken` (`CancelToken::from_tokio_util`, `to_tokio_util`,
//! `link_tokio_util`), for moving from it one module at a time: see
//! `docs/migrating-from-tokio-util.md`. `grpc` adds the `grpc` module, for tonic: a caller's token
//! sent as the call's `grpc-timeout` (and cutting the call in flight), a token per call on the
//! server, triggered by the caller's deadline or by the caller going away, and `Cancelled` as a
//! `tonic::Status`. `tracing` gives every [`Operation`] a `tracing` span (`Operation::span`)
//! and logs its start, its progress (DEBUG, throttled to whole percents) and its finish
//! (failures as WARN, cancellations with their reason). `serde` makes [`OperationSnapshot`]
//! and its parts `Serialize` and `Deserialize`, with times as milliseconds, so that a service
//! can expose its operations as JSON.
//!
//! # Patterns
//!
//! - Scope-bound work: [`drop_guard`](CancelToken::drop_guard) triggers on early return or panic;
//!   [`scope()`] gives a future a token that triggers if the future is dropped unfinished (a
//!   request handler whose client went away).
//! - Latest wins: [`CancelSlot`] supersedes the previous request when a new one starts.
//! - Cancel by id: [`CancelRegistry`] maps keys to the tokens of running operations.
//! - Progress and monitoring: an [`Operation`] is a named unit of work with its own token, a
//!   status and a progress cheap enough for a hot loop; an [`OperationRegistry`] lists them,
//!   cancels one, a subtree or all, keeps a bounded history and streams their changes.
//! - Pauses a trigger cuts short: [`sleep`](CancelToken::sleep) and
//!   [`sleep_blocking`](CancelToken::sleep_blocking).
//! - A thread blocked in a channel's `recv`: see [`wait_blocking`](CancelToken::wait_blocking).

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod all;
#[cfg(feature = "tokio-util")]
mod bridge;
mod callback;
mod deadline;
mod error;
#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub mod grpc;
mod guard;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod link;
mod node;
mod operation;
mod reason;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod registrations;
mod registry;
mod run;
mod scope;
mod shutdown;
#[cfg(feature = "signal")]
#[cfg_attr(docsrs, doc(cfg(feature = "signal")))]
pub mod signal;
mod slab;
mod sleep;
mod slot;
mod sync;
mod time;
mod token;
mod wait;
mod walk;
mod weak;
mod when;

#[cfg(test)]
mod tests;

/// The README's examples, compiled and run as doctests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The recipes in `docs/threads.md`, run as doctests for the same reason.
#[cfg(doctest)]
#[doc = include_str!("../docs/threads.md")]
struct ThreadsDoctests;

/// The example in `docs/signals.md`, run as a doctest for the same reason.
#[cfg(all(doctest, feature = "signal"))]
#[doc = include_str!("../docs/signals.md")]
struct SignalsDoctests;

/// The axum example in `docs/http.md` (its other recipes need a client or a server and are
/// `ignore`d), compiled and run as a doctest for the same reason.
#[cfg(all(doctest, feature = "tower"))]
#[doc = include_str!("../docs/http.md")]
struct HttpDoctests;

/// The example in `docs/distributed.md` (its other snippets need a client or a server and
/// are `ignore`d), run as a doctest for the same reason.
#[cfg(all(doctest, feature = "http"))]
#[doc = include_str!("../docs/distributed.md")]
struct DistributedDoctests;

/// The example in `docs/operations.md`, run as a doctest for the same reason.
#[cfg(doctest)]
#[doc = include_str!("../docs/operations.md")]
struct OperationsDoctests;

/// The examples in `docs/migrating-from-tokio-util.md`, run as doctests for the same reason.
#[cfg(all(doctest, feature = "tokio-util"))]
#[doc = include_str!("../docs/migrating-from-tokio-util.md")]
struct MigratingDoctests;

pub use callback::CallbackGuard;
pub use error::{Cancelled, TimedOut, WaitError};
pub use guard::{DropGuard, DropGuardRef};
pub use operation::{
    Filter, Operation, OperationEvent, OperationId, OperationRegistry, OperationRun,
    OperationRunOwned, OperationSnapshot, OperationStatus, ParseOperationIdError, Progress,
    StatusCounts, StatusKind, Subscription, TrackStream, TrackStreamOwned,
};
pub use reason::{Reason, ReasonKind};
pub use registry::{CancelRegistry, Registration};
pub use run::{
    CancelStream, CancelStreamOwned, CancellableWait, ResultCancelStream, ResultCancelStreamOwned,
    Run, RunOwned, TokenFutureExt, TryCancelStream, TryCancelStreamOwned,
};
pub use scope::{scope, Scope};
pub use shutdown::{
    Shutdown, ShutdownOutcome, ShutdownReport, ShutdownWait, TaskTracker, TrackedFuture,
    TrackerGuard, TrackerWait, TrackerWaitOwned,
};
pub use sleep::{Sleep, SleepOwned};
pub use slot::{CancelSlot, SlotGuard};
pub use token::CancelToken;
pub use wait::{Wait, WaitOwned};
pub use weak::WeakCancelToken;
