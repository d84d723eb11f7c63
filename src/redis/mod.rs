//! Cancel by id across processes and machines, through Redis (feature `redis`).
//!
//! A [`RedisRegistry`] is a [`CancelRegistry`](crate::CancelRegistry) of string ids whose
//! [`cancel`](RedisRegistry::cancel) reaches every process connected to the same Redis: the
//! tokens registered under that id, anywhere, trigger with the reason given. Each cancel goes
//! two ways at once:
//!
//! - **a message on a pub/sub channel**, heard at once by every registry subscribed;
//! - **a record** (a key with a time to live), read by a registry for each id that registers
//!   and for all its ids whenever its subscription comes back after a break. A cancel sent
//!   while a worker was disconnected, or before the job registered, is still honoured.
//!
//! The registry is runtime-agnostic: two helper threads use the `redis` crate's synchronous
//! client, and nothing of it ever blocks an async task. `register` and `cancel` return at once
//! (the record check and the publish happen on the command thread); only
//! [`connect`](RedisRegistry::connect) waits, for the first connection.
//!
//! # Examples
//!
//! A worker registers its job; any process (here a second registry) cancels it by id. (Not run
//! here: it needs a Redis server on localhost. `examples/redis_workers.rs` starts one and runs
//! the same steps across three processes.)
//!
//! ```no_run
//! use std::time::Duration;
//! use cancel_token::redis::RedisRegistry;
//!
//! let worker = RedisRegistry::connect("redis://127.0.0.1:6379/")?;
//! let (token, _registration) = worker.register("export-42")?;
//!
//! // Elsewhere: another process, another machine.
//! let dashboard = RedisRegistry::connect("redis://127.0.0.1:6379/")?;
//! let delivery = dashboard.cancel("export-42", "cancelled by alice")?;
//! assert!(delivery.wait_blocking_timeout(Duration::from_secs(5)), "Redis has it");
//!
//! assert!(token.wait_blocking_timeout(Duration::from_secs(5)));
//! assert_eq!(token.reason().unwrap().message(), Some("cancelled by alice"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See `docs/distributed.md` for what is and is not guaranteed, and the wire format.

mod builder;
mod commands;
mod error;
mod link;
mod mailbox;
mod publish;
mod shared;
mod subscriber;
mod wire;

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::reason::{Reason, ReasonKind};
use crate::registry::Registration;
use crate::{CancelToken, Wait};

pub use builder::Builder;
pub use error::{ConnectError, IdError};
pub use shared::{ConnectionState, Stats};
pub use wire::{MAX_ID_LEN, MAX_MESSAGE_LEN};

#[cfg(cancel_token_loom)]
#[doc(hidden)]
pub use mailbox::loom_access as __loom_mailbox;

use shared::{lock, Job, Shared};

/// A registry of cancellable operations by id, shared by every process connected to the same
/// Redis: [`cancel`](Self::cancel) anywhere triggers the tokens registered under the id
/// everywhere.
///
/// Ids are any text of 1 to 1024 bytes ([`MAX_ID_LEN`]); spaces, `%`, line breaks and non-ASCII
/// are escaped on the wire. Reasons keep their kind and message (cut to [`MAX_MESSAGE_LEN`]
/// bytes). A cancelled id stays cancelled for the record's time to live
/// ([`Builder::record_ttl`], one hour by default): an operation that registers under it in that
/// time is cancelled at once, so ids should name one job each.
///
/// Cloning gives another handle to the same registry. When the last handle is dropped, the
/// threads stop without blocking the drop (within about 100 ms, or the connect timeout while
/// Redis does not answer); [`close`](Self::close) stops them and waits. Either way, cancels
/// already queued get one last try to reach Redis.
///
/// Tokens triggered by a cancel from elsewhere, or by a record, are triggered on the crate's
/// timer threads (as deadlines are): a callback or waker that blocks holds up its own token
/// only, never the cancels of other ids.
///
/// # Examples
///
/// (Not run here: it needs a Redis server on localhost; see `examples/redis_workers.rs`.)
///
/// ```no_run
/// use cancel_token::redis::{ConnectionState, RedisRegistry};
///
/// let jobs = RedisRegistry::connect("redis://127.0.0.1:6379/")?;
/// let (token, registration) = jobs.register("report-7")?;
/// std::thread::spawn(move || {
///     while !token.is_triggered() {
///         // ... a slice of the work ...
///     }
///     drop(registration);
/// });
/// assert_eq!(jobs.state(), ConnectionState::Connected);
/// jobs.cancel("report-7", "the user left")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RedisRegistry {
    owner: Arc<Owner>,
}

/// The part whose drop stops the threads: held by the handles only, never by the threads.
struct Owner {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    addr: String,
}

impl Owner {
    fn new(shared: Arc<Shared>, threads: Vec<JoinHandle<()>>, addr: String) -> Owner {
        Owner {
            shared,
            threads: Mutex::new(threads),
            addr,
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

impl RedisRegistry {
    /// Connects with the default settings; see [`Builder`] for the others.
    ///
    /// # Blocking
    ///
    /// This blocks the calling thread until Redis answers, for at most about five seconds (the
    /// default connect timeout).
    ///
    /// # Errors
    ///
    /// [`ConnectError`] if the URL is invalid or Redis does not answer in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancel_token::redis::RedisRegistry;
    ///
    /// // Nothing listens on port 1.
    /// let error = RedisRegistry::builder("redis://127.0.0.1:1/")
    ///     .connect_timeout(Duration::from_millis(500))
    ///     .connect()
    ///     .unwrap_err();
    /// assert_eq!(error.addr(), Some("127.0.0.1:1"));
    /// ```
    pub fn connect(url: &str) -> Result<RedisRegistry, ConnectError> {
        Builder::new(url).connect()
    }

    /// The settings of a registry, for [`Builder::connect`].
    pub fn builder(url: &str) -> Builder {
        Builder::new(url)
    }

    /// Registers an operation under `id`: returns its token and the [`Registration`] whose
    /// drop removes it (the operation ended).
    ///
    /// The token triggers when any process cancels `id`, when this registry's parent is
    /// triggered, or when the record of an earlier cancel of `id` is found: the command thread
    /// reads it right after this call, so a cancel sent before the registration (within the
    /// record's time to live) triggers the token moments later. The token is named after the
    /// id.
    ///
    /// # Errors
    ///
    /// [`IdError`] if `id` is empty or longer than [`MAX_ID_LEN`] bytes.
    pub fn register(&self, id: &str) -> Result<(CancelToken, Registration<String>), IdError> {
        IdError::check(id)?;
        let shared = &self.owner.shared;
        let (token, registration) = shared.tokens.register_named(id.to_owned());
        // A stopped registry reads no records; its tokens still work locally.
        let _ = shared.push(Job::Check(id.to_owned()));
        Ok((token, registration))
    }

    /// Cancels `id` everywhere: triggers this process's tokens under it at once, and queues
    /// the record and the message for the command thread. It never blocks.
    ///
    /// The returned [`Delivery`] says how many tokens triggered here and tells when Redis has
    /// the cancel. While Redis is unreachable the cancel waits in the queue and is sent after
    /// the reconnect.
    ///
    /// # Errors
    ///
    /// [`IdError`] if `id` is empty or longer than [`MAX_ID_LEN`] bytes.
    ///
    /// # Panics
    ///
    /// If a callback of one of this process's tokens panics: the other tokens are triggered
    /// first and the cancel is queued all the same.
    pub fn cancel(&self, id: &str, reason: impl Into<Reason>) -> Result<Delivery, IdError> {
        IdError::check(id)?;
        let reason = reason.into();
        let shared = &self.owner.shared;
        let done = CancelToken::new();
        let job = Job::Publish {
            key: shared.record_key(id),
            record: wire::encode_reason(&reason),
            message: wire::encode_message(id, &reason),
            done: done.clone(),
        };
        // This process's tokens first, so that `local` counts them all (the message coming
        // back through the subscription finds them triggered); a panicking callback is
        // resumed only once the cancel is queued.
        let local = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            shared.tokens.cancel(id, reason)
        }));
        shared.counters.pending.fetch_add(1, Ordering::Relaxed);
        if shared.push(job).is_err() {
            shared.counters.pending.fetch_sub(1, Ordering::Relaxed);
            done.trigger_with(Reason::with_message(
                ReasonKind::Dropped,
                "the registry is closed",
            ));
        }
        match local {
            Ok(local) => Ok(Delivery { local, done }),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// The state of the subscription: whether cancels from elsewhere arrive right now.
    pub fn state(&self) -> ConnectionState {
        self.owner.shared.state()
    }

    /// Waits until the state is `state` or `timeout` passes; `true` if it is.
    ///
    /// # Blocking
    ///
    /// It blocks the calling thread, for at most `timeout`.
    pub fn wait_state(&self, state: ConnectionState, timeout: Duration) -> bool {
        self.owner.shared.wait_state(state, timeout)
    }

    /// The registry's counters.
    pub fn stats(&self) -> Stats {
        self.owner.shared.stats()
    }

    /// The number of operations registered in this process that can still be cancelled.
    pub fn len(&self) -> usize {
        self.owner.shared.tokens.len()
    }

    /// Whether no operation registered in this process can be cancelled.
    pub fn is_empty(&self) -> bool {
        self.owner.shared.tokens.is_empty()
    }

    /// Stops the registry for every handle and waits for its threads to end: cancels already
    /// queued get one last try to reach Redis first.
    ///
    /// # Blocking
    ///
    /// It returns within about 100 ms when Redis answers, and within about the connect timeout
    /// when it does not (a heartbeat `PING` or that last try waiting for an answer).
    ///
    /// Tokens and registrations keep working in this process; cancels from elsewhere no
    /// longer arrive. Called from a callback that runs on one of the registry's own threads,
    /// it does not wait for that thread; called while another `close` of the same registry
    /// waits, it returns without waiting.
    pub fn close(self) {
        let owner = &self.owner;
        owner.shared.stop();
        let threads = std::mem::take(&mut *lock(&owner.threads));
        let here = std::thread::current().id();
        for thread in threads {
            if thread.thread().id() != here {
                // A panic on a helper thread has been reported already.
                let _ = thread.join();
            }
        }
    }
}

impl fmt::Debug for RedisRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRegistry")
            .field("addr", &self.owner.addr)
            .field("channel", &self.owner.shared.settings.channel)
            .field("state", &self.state())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// What became of a [`cancel`](RedisRegistry::cancel): the tokens it triggered in this
/// process, and whether Redis has it.
///
/// Dropping it changes nothing: the cancel is sent all the same.
pub struct Delivery {
    local: usize,
    /// Triggered with `Manual` when Redis acknowledged, `Dropped` if it never will.
    done: CancelToken,
}

impl Delivery {
    /// How many tokens the cancel triggered in this process, at once.
    pub fn local(&self) -> usize {
        self.local
    }

    /// Whether Redis has acknowledged the record and the message: every registry
    /// subscribed now has been sent the cancel, and any that registers the id later, or comes
    /// back from a break, will find the record.
    pub fn is_delivered(&self) -> bool {
        self.done
            .reason()
            .is_some_and(|reason| reason.kind() == ReasonKind::Manual)
    }

    /// Whether the cancel will never be acknowledged: the registry closed first, or Redis
    /// answered it with an error three times in a row (out of memory, a read-only replica, a
    /// missing permission); [`failure`](Self::failure) says which.
    pub fn is_abandoned(&self) -> bool {
        self.failure().is_some()
    }

    /// Why the cancel was abandoned, if it was.
    pub fn failure(&self) -> Option<String> {
        let reason = self.done.reason()?;
        (reason.kind() == ReasonKind::Dropped).then(|| reason.to_string())
    }

    /// Waits until Redis acknowledges the cancel, for at most `timeout`; `true` if it did.
    /// `false` at once if the cancel was abandoned.
    ///
    /// # Blocking
    ///
    /// It blocks the calling thread; [`delivered`](Self::delivered) is the async form.
    pub fn wait_blocking_timeout(&self, timeout: Duration) -> bool {
        self.done.wait_blocking_timeout(timeout);
        self.is_delivered()
    }

    /// Waits, in any async runtime, until the cancel is acknowledged or abandoned; check
    /// [`is_delivered`](Self::is_delivered) afterwards.
    pub fn delivered(&self) -> Wait<'_> {
        self.done.wait()
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("local", &self.local)
            .field("delivered", &self.is_delivered())
            .field("abandoned", &self.is_abandoned())
            .finish()
    }
}
