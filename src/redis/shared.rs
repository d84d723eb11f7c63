//! What a [`RedisRegistry`](super::RedisRegistry) shares with its two threads: the local
//! tokens, the job queue of the command thread, the connection state and the counters.
//!
//! Two locks, never held together and never around user code: the mailbox's (jobs and the stop
//! flag; its condvar also paces the subscriber's back-off) and the state's (its condvar wakes
//! [`wait_state`](super::RedisRegistry::wait_state)). Triggers of tokens, whose callbacks are
//! user code, happen with neither held.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::reason::Reason;
use crate::{CancelRegistry, CancelToken};

use super::mailbox::{time_left, Mailbox};
use super::wire;

/// The state of a registry's subscription, which decides whether cancels from other processes
/// reach it right now.
///
/// While it is not [`Connected`](Self::Connected), cancels sent by others are not lost: each
/// leaves a record that the registry reads for all its ids when it is connected again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Subscribed: cancels from other processes arrive as they are sent.
    Connected,
    /// The connection broke; the registry is trying again, with back-off.
    Reconnecting,
    /// The registry was dropped or closed; its threads stopped.
    Closed,
}

/// Counters of a [`RedisRegistry`](super::RedisRegistry), from
/// [`stats`](super::RedisRegistry::stats): a snapshot, each counter read on its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub(crate) received: u64,
    pub(crate) malformed: u64,
    pub(crate) published: u64,
    pub(crate) reconnects: u64,
    pub(crate) record_hits: u64,
    pub(crate) errors: u64,
    pub(crate) pending: usize,
}

impl Stats {
    /// Well-formed cancels heard on the channel, this registry's own included.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Messages on the channel that were not a well-formed cancel, ignored.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Cancels of this registry that Redis acknowledged (record written and published).
    pub fn published(&self) -> u64 {
        self.published
    }

    /// Times the subscription was made again after it broke.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// Tokens registered here that a record triggered rather than a message: a cancel sent
    /// before they registered, or while this registry was disconnected. Counted before they
    /// trigger.
    pub fn record_hits(&self) -> u64 {
        self.record_hits
    }

    /// Round trips to Redis that failed (and were retried): broken connections, errors
    /// Redis answered, timeouts.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// Cancels of this registry not yet acknowledged by Redis.
    pub fn pending(&self) -> usize {
        self.pending
    }
}

/// Work for the command thread.
pub(crate) enum Job {
    /// Write the record and publish the message of a cancel.
    Publish {
        key: String,
        record: String,
        message: String,
        done: CancelToken,
    },
    /// Read the record of one id that just registered.
    Check(String),
    /// Read the records of every id registered (after the subscription was made again).
    CheckAll,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) record_hits: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) pending: AtomicUsize,
}

/// The settings the threads need.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) channel: String,
    pub(crate) key_prefix: String,
    pub(crate) record_ttl: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) heartbeat: Duration,
}

pub(crate) struct Shared {
    pub(crate) tokens: CancelRegistry<String>,
    pub(crate) client: redis::Client,
    pub(crate) settings: Settings,
    /// The command thread's jobs, and the stop flag of both threads.
    pub(crate) mailbox: Mailbox<Job>,
    state: Mutex<ConnectionState>,
    state_changed: Condvar,
    pub(crate) counters: Counters,
}

/// Locks, ignoring poison: every critical section here leaves its data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(
        tokens: CancelRegistry<String>,
        client: redis::Client,
        settings: Settings,
    ) -> Shared {
        Shared {
            tokens,
            client,
            settings,
            mailbox: Mailbox::new(),
            state: Mutex::new(ConnectionState::Connected),
            state_changed: Condvar::new(),
            counters: Counters::default(),
        }
    }

    /// Queues a job; gives it back if the registry stopped.
    pub(crate) fn push(&self, job: Job) -> Result<(), Job> {
        self.mailbox.push(job)
    }

    pub(crate) fn stopping(&self) -> bool {
        self.mailbox.is_stopping()
    }

    /// Tells both threads to stop.
    pub(crate) fn stop(&self) {
        self.mailbox.stop();
    }

    /// Sleeps for `delay` or until the registry stops; `true` if it stopped.
    pub(crate) fn pause(&self, delay: Duration) -> bool {
        self.mailbox.pause(delay)
    }

    pub(crate) fn state(&self) -> ConnectionState {
        *lock(&self.state)
    }

    pub(crate) fn set_state(&self, state: ConnectionState) {
        *lock(&self.state) = state;
        self.state_changed.notify_all();
    }

    pub(crate) fn wait_state(&self, wanted: ConnectionState, timeout: Duration) -> bool {
        let until = Instant::now().checked_add(timeout);
        let mut state = lock(&self.state);
        loop {
            if *state == wanted {
                return true;
            }
            let Some(wait) = time_left(until) else {
                return false;
            };
            state = self
                .state_changed
                .wait_timeout(state, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            received: c.received.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            published: c.published.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            record_hits: c.record_hits.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            pending: c.pending.load(Ordering::Relaxed),
        }
    }

    /// The key of the record of `id`.
    pub(crate) fn record_key(&self, id: &str) -> String {
        let mut key = self.settings.key_prefix.clone();
        key.push_str(&wire::escape(id));
        key
    }

    /// Triggers this process's tokens under `id`, each on one of the crate's timer firer
    /// threads: their callbacks and wakers are user code, which must not hold up the helper
    /// thread that serves every other cancel (nor take it down with a panic).
    pub(crate) fn trigger(&self, id: &str, reason: Reason) {
        for token in self.tokens.tokens_of(id) {
            token.trigger_on_firer(reason.clone());
        }
    }

    /// The delay before reconnect attempt `attempt` (from 0): a step doubling from the minimum
    /// to the maximum, and a random point in the step's upper half (never under the minimum),
    /// so that many processes do not come back at once.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let Settings {
            backoff_min: min,
            backoff_max: max,
            ..
        } = self.settings;
        let full = min
            .checked_mul(1u32 << attempt.min(20))
            .unwrap_or(max)
            .min(max)
            .max(min);
        let noise = RandomState::new().hash_one((Instant::now(), attempt)) % 1000;
        (full / 2 + full / 2 * noise as u32 / 1000).max(min)
    }
}
