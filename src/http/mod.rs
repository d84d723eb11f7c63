//! Cancelling HTTP requests, bodies and retries with a token (feature `http`).
//!
//! No HTTP client is a dependency: everything here works on the futures and streams that
//! clients already return, because dropping a request future is how every Rust HTTP client
//! aborts a request. One token then stops the request in flight ([`send`],
//! [`CancelFutureExt::with_cancel`]), the retry loop and its back-off ([`retry`]) and the body
//! (the core [`CancelToken::stream`](crate::CancelToken::stream) adapter for byte streams),
//! and the error keeps the reason ([`CancelError`]). `docs/http.md` has recipes for reqwest, hyper, tower and blocking
//! clients.

mod error;
mod retry;
mod send;

pub use error::{find_cancelled, CancelError};
pub use retry::{retry, Retry};
pub use send::{send, CancelFutureExt, SendRequest, WithCancel};
