//! Adapters that race work against a token: [`Run`] for futures, [`CancelStream`] (ends),
//! [`TryCancelStream`] and [`ResultCancelStream`] (end with an error) for streams, and
//! [`CancellableWait`] for "the first of these futures, unless cancelled or timed out"; and
//! [`TokenFutureExt`], `run` written from the future's side.
//!
//! All of them follow one tie rule: the token is checked before the wrapped work is polled,
//! and once the token is seen triggered the wrapped work is dropped and never polled again.

mod ext;
mod first;
mod future;
mod stream;
mod try_stream;

pub use ext::TokenFutureExt;
pub use first::CancellableWait;
pub use future::{Run, RunOwned};
pub use stream::{CancelStream, CancelStreamOwned};
pub use try_stream::{
    ResultCancelStream, ResultCancelStreamOwned, TryCancelStream, TryCancelStreamOwned,
};
