//! Runtime-agnostic cancellation tokens for async and threaded Rust.
//!
//! A [`CancelToken`] is a cheap handle that any library can accept and any application can
//! trigger, from a task, a plain thread, a timer or a signal handler. It records *why* it was
//! triggered (a [`Reason`]), wakes async and blocking waiters on any executor (or none),
//! propagates to [children](CancelToken::child) and [linked tokens](CancelToken::chain),
//! runs [callbacks](CancelToken::on_cancel), and turns into a [`Cancelled`] error for `?`.
//!
//! # Quick start
//!
//! ```
//! use std::thread;
//! use cancel_token::{CancelToken, Cancelled, ReasonKind};
//!
//! // A worker thread that checks the token between units of work.
//! fn crunch(token: &CancelToken) -> Result<u64, Cancelled> {
//!     let mut n = 0u64;
//!     loop {
//!         token.raise_if_triggered()?;
//!         n += 1;
//!         thread::yield_now();
//!     }
//! }
//!
//! let shutdown = CancelToken::named("shutdown");
//! let request = shutdown.child_named("request");
//!
//! let worker = {
//!     let request = request.clone();
//!     thread::spawn(move || crunch(&request))
//! };
//! // An async task waiting for the same token, on whatever executor you use.
//! let waiter = {
//!     let request = request.clone();
//!     thread::spawn(move || futures_lite::future::block_on(request.wait_owned()))
//! };
//! let _log = request.on_cancel(|reason| println!("request cancelled: {reason}"));
//!
//! shutdown.trigger_with("server stopping");
//!
//! let err = worker.join().unwrap().unwrap_err();
//! waiter.join().unwrap();
//! assert_eq!(err.token(), &shutdown);
//! assert_eq!(err.reason().kind(), ReasonKind::Manual);
//! assert_eq!(err.to_string(), "cancellation requested by token shutdown: server stopping");
//! ```
//!
//! # Guarantees
//!
//! - [`trigger`](CancelToken::trigger) is idempotent and thread-safe: exactly one call returns
//!   `true`, and its reason is the one every observer sees. Flag and reason are published
//!   together.
//! - [`is_triggered`](CancelToken::is_triggered) is one atomic load; `clone` and `drop` are one
//!   reference-count operation.
//! - Propagation is push-based and iterative: descendants are triggered before `trigger`
//!   returns, at any depth, without recursion.
//! - Nothing leaks: dropped children, waits and callback guards unregister in O(1).
//! - No async runtime is required; waits work on tokio, smol, async-std, any `block_on`, or a
//!   plain thread with [`wait_blocking`](CancelToken::wait_blocking).

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod callback;
mod error;
mod guard;
mod node;
mod reason;
mod slab;
mod sync;
mod token;
mod wait;

#[cfg(test)]
mod tests;

pub use callback::CallbackGuard;
pub use error::Cancelled;
pub use guard::DropGuard;
pub use reason::{Reason, ReasonKind};
pub use token::CancelToken;
pub use wait::{Wait, WaitOwned};
