//! gRPC deadlines and cancellation with tonic (feature `grpc`).
//!
//! A caller's token crosses the wire as the call's `grpc-timeout`: [`request`] and
//! [`set_deadline`] write it into one call, [`DeadlineInterceptor`] into every call of a
//! client, and [`ClientLayer`], a tower layer for a tonic channel, also cuts a call in flight
//! (and its response stream) the moment the token is triggered. On the server,
//! [`ServerLayer`] gives every call a token of its own, a child of the server's token,
//! triggered with [`ReasonKind::Timeout`](crate::ReasonKind::Timeout) when the caller's
//! deadline elapses and with [`ReasonKind::Dropped`](crate::ReasonKind::Dropped) when the
//! caller goes away; the service method gets it with [`call_token`]. A [`Cancelled`] becomes a
//! `tonic::Status` with `From` (`DEADLINE_EXCEEDED` for a timeout, `CANCELLED` otherwise), and
//! [`reason_from_status`] turns a callee's status back into a [`Reason`], so a caller can stop
//! the rest of its work for the same reason.
//!
//! Only tonic's core types are used: no transport, no code generation and no runtime come
//! with this feature; it works with any tonic client or server built on `tonic` 0.13.
//!
//! [`Cancelled`]: crate::Cancelled
//! [`Reason`]: crate::Reason

mod call;
mod client;
mod client_body;
mod client_layer;
mod server;
mod status;

pub use call::{ServerBody, ServerFuture};
pub use client::{request, set_deadline, DeadlineInterceptor};
pub use client_body::ClientBody;
pub use client_layer::{ClientFuture, ClientLayer, ClientService};
pub use server::{call_token, ServerLayer, ServerService};
pub use status::reason_from_status;
