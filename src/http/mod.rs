//! Cancelling HTTP requests, bodies and retries with a token (feature `http`).
//!
//! No HTTP client is a dependency: everything here works on the futures and streams that
//! clients already return, because dropping a request future is how every Rust HTTP client
//! aborts a request. One token then stops the request in flight ([`send`],
//! [`CancelFutureExt::with_cancel`]), the retry loop and its back-off ([`retry`]) and the body
//! (the core [`CancelToken::stream`](crate::CancelToken::stream) adapter for byte streams,
//! `CancelBody` for an `http_body::Body` with the `http-body` feature), and the error keeps
//! the reason ([`CancelError`]). `docs/http.md` has recipes for reqwest, hyper, tower and blocking
//! clients.

#[cfg(feature = "http-body")]
mod body;
mod error;
mod retry;
mod scope;
mod send;
#[cfg(feature = "tower")]
mod tower;

#[cfg(feature = "http-body")]
#[cfg_attr(docsrs, doc(cfg(feature = "http-body")))]
pub use body::CancelBody;

pub use error::{find_cancelled, CancelError};
pub use retry::{retry, Retry};
pub use scope::{scope, Scope};
pub use send::{send, CancelFutureExt, SendRequest, WithCancel};
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use tower::{BoxError, CancelLayer, CancelService, ResponseFuture};
