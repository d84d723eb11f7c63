//! Cancelling HTTP requests, bodies and retries with a token (feature `http`).
//!
//! No HTTP client is a dependency: everything here works on the futures and streams that
//! clients already return, because dropping a request future is how every Rust HTTP client
//! aborts a request. One token then stops the request in flight ([`send`],
//! [`CancelFutureExt::with_cancel`], and their owned forms for spawning), the retry loop and its
//! back-off ([`retry`]) and the body (the core [`CancelToken::stream`](crate::CancelToken::stream)
//! adapter for byte streams, `CancelBody` for an `http_body::Body` with the `http-body`
//! feature), and the error keeps the reason ([`CancelError`]).
//!
//! On the server side, [`scope`] gives a handler a token that fires when the client goes away;
//! with `http-body`, `scope_response` keeps it armed while the response body streams, and with
//! `tower`, `ScopeLayer` gives every request such a token and `CancelLayer` cuts requests on a
//! trigger (`CancelLayer::responding` answers them with a status instead, as axum needs).
//!
//! Deadlines cross service boundaries in request headers: [`DeadlineHeaders`] writes a
//! token's remaining time into an outgoing request (`grpc-timeout` and `connect-timeout-ms`,
//! rounded down; `PropagateDeadlineLayer` does it for a tower client), and
//! [`DeadlinePolicy`] reads it back on the server, capped, into the request's token
//! (`ScopeLayer::deadline` does it per request). `docs/distributed.md` has the formats.
//!
//! `docs/http.md` has recipes for reqwest, hyper, axum, tower and blocking clients.

#[cfg(feature = "http-body")]
mod body;
mod deadline;
mod error;
mod policy;
#[cfg(feature = "tower")]
mod propagate;
#[cfg(feature = "tower")]
mod respond;
mod retry;
#[cfg(feature = "tower")]
mod scope_layer;
#[cfg(feature = "http-body")]
mod scoped;
mod send;
mod timeout_header;
#[cfg(feature = "tower")]
mod tower;

#[cfg(feature = "http-body")]
#[cfg_attr(docsrs, doc(cfg(feature = "http-body")))]
pub use body::CancelBody;
#[cfg(feature = "http-body")]
#[cfg_attr(docsrs, doc(cfg(feature = "http-body")))]
pub use scoped::{scope_response, ScopeResponse, ScopedBody};

/// The core [`scope()`](crate::scope()), also here for HTTP servers.
pub use crate::scope::{scope, Scope};
pub use deadline::DeadlineHeaders;
pub use error::{find_cancelled, CancelError};
pub use policy::{DeadlinePolicy, OnInvalid};
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use propagate::{PropagateDeadline, PropagateDeadlineLayer};
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use respond::{RespondBody, RespondFuture, RespondLayer, RespondService};
pub use retry::{retry, Retry};
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use scope_layer::{ScopeLayer, ScopeService};
pub use send::{
    send, send_owned, CancelFutureExt, SendRequest, SendRequestOwned, WithCancel, WithCancelOwned,
};
pub use timeout_header::{
    encode_grpc_timeout, encode_timeout_ms, parse_grpc_timeout, parse_timeout_ms, HeaderError,
    HeaderErrorKind,
};
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use tower::{BoxError, CancelLayer, CancelService, ResponseFuture};
