//! Operations: named units of cancellable work that report their progress and status, and the
//! opt-in [`OperationRegistry`] that lists them, cancels them by id or by subtree, keeps a
//! bounded history of finished ones, and streams their changes to subscribers.
//!
//! The module owns the [`Operation`] handle (`op.rs`) and its shared state (`state.rs`: the
//! progress atomics, the first-finish-wins status), the adapters that finish an operation with
//! its work (`adapt.rs`, `run.rs`) or count a stream's items (`stream.rs`), the registry
//! (`registry.rs`, its state and locking in `table.rs`, `filter.rs`) and its subscriptions
//! (`subscribe.rs`). Counting updates (`advance`, `set_done`, `set_total`) are atomics; the
//! only lock they may take is the subscribers' one, and only when someone subscribed and no
//! update of this operation is already waiting for them. `set_message` takes the message's
//! lock.

mod adapt;
mod filter;
mod op;
mod registry;
mod run;
#[cfg(feature = "serde")]
mod serial;
mod state;
mod status;
mod stream;
mod subscribe;
mod table;
#[cfg(feature = "tracing")]
mod trace;

use std::error::Error;
use std::fmt;
use std::str::FromStr;

pub use filter::{Filter, StatusCounts};
pub use op::Operation;
pub use registry::OperationRegistry;
pub use run::{OperationRun, OperationRunOwned};
pub use status::{OperationSnapshot, OperationStatus, Progress, StatusKind};
pub use stream::{TrackStream, TrackStreamOwned};
pub use subscribe::{OperationEvent, Subscription};

/// The process-wide counter ids come from. A std atomic even under loom: ids only need to be
/// distinct, which is not what the models check, and a loom atomic cannot be a static.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The id of an [`Operation`]: unique in the process, ordered by start, shown as a number.
///
/// Ids come from one process-wide counter, so operations of different registries (and
/// standalone ones) never share an id. [`from_u64`](Self::from_u64) and
/// [`FromStr`] turn a number from elsewhere (a URL, a command line) back into an id, which
/// a registry may or may not know.
///
/// # Examples
///
/// ```
/// use cancel_token::{CancelToken, Operation, OperationId};
///
/// let a = Operation::new("a", &CancelToken::new());
/// let b = Operation::new("b", &CancelToken::new());
/// assert!(a.id() < b.id());
///
/// let text = a.id().to_string();
/// let parsed: OperationId = text.parse().unwrap();
/// assert_eq!(parsed, a.id());
/// assert_eq!(OperationId::from_u64(parsed.as_u64()), a.id());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
// A plain number in JSON (feature `serde`).
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
pub struct OperationId(u64);

impl OperationId {
    /// A fresh id, never handed out before in this process.
    pub(crate) fn next() -> OperationId {
        // Only uniqueness matters: no other memory is published through the counter. 2^64
        // starts cannot happen, so the counter never wraps in practice.
        OperationId(NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }

    /// The id with this number, as [`as_u64`](Self::as_u64) gave it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::OperationId;
    ///
    /// assert_eq!(OperationId::from_u64(7).as_u64(), 7);
    /// ```
    pub const fn from_u64(id: u64) -> OperationId {
        OperationId(id)
    }

    /// The id's number.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::{CancelToken, Operation};
    ///
    /// let op = Operation::new("job", &CancelToken::new());
    /// assert_eq!(op.id().as_u64().to_string(), op.id().to_string());
    /// ```
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OperationId({})", self.0)
    }
}

impl From<OperationId> for u64 {
    fn from(id: OperationId) -> u64 {
        id.0
    }
}

impl FromStr for OperationId {
    type Err = ParseOperationIdError;

    /// Parses a decimal number, as `Display` prints it (no sign, no spaces).
    ///
    /// # Errors
    ///
    /// [`ParseOperationIdError`] for an empty string, a character that is not a decimal digit,
    /// or a number above `u64::MAX`.
    fn from_str(text: &str) -> Result<OperationId, ParseOperationIdError> {
        // `u64::from_str` accepts a leading `+`; an id printed by us never has one.
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseOperationIdError { overflow: false });
        }
        text.parse()
            .map(OperationId)
            .map_err(|_| ParseOperationIdError { overflow: true })
    }
}

/// The error of parsing an [`OperationId`] from text that is not one.
///
/// # Examples
///
/// ```
/// use cancel_token::OperationId;
///
/// let err = "12a".parse::<OperationId>().unwrap_err();
/// assert_eq!(err.to_string(), "invalid operation id: not a decimal number");
/// assert!(!err.is_overflow());
/// assert!("99999999999999999999".parse::<OperationId>().unwrap_err().is_overflow());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ParseOperationIdError {
    overflow: bool,
}

impl ParseOperationIdError {
    /// Whether the text was a decimal number too large for an id (rather than not a number).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::OperationId;
    ///
    /// assert!(!"".parse::<OperationId>().unwrap_err().is_overflow());
    /// ```
    pub fn is_overflow(&self) -> bool {
        self.overflow
    }
}

impl fmt::Display for ParseOperationIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.overflow {
            "invalid operation id: number too large"
        } else {
            "invalid operation id: not a decimal number"
        })
    }
}

impl fmt::Debug for ParseOperationIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParseOperationIdError")
            .field("overflow", &self.overflow)
            .finish()
    }
}

impl Error for ParseOperationIdError {}
