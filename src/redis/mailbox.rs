//! [`Mailbox`]: the job queue between a [`RedisRegistry`](super::RedisRegistry)'s callers and
//! its command thread, with the stop flag both helper threads obey.
//!
//! One mutex guards the jobs and the flag together, so that the three promises the registry
//! rests on hold: a job pushed is taken by the thread (never stranded behind a sleeping one);
//! once `stop` returns, no push is accepted, and every push accepted before it is still handed
//! out by [`drain`](Mailbox::drain); a thread pausing for back-off wakes when the registry
//! stops. The condvar is notified after the lock is released. No user code runs under the
//! lock: jobs are moved in and out, and dropped by the callers.
//!
//! It is built on `crate::sync`, so the loom models in `tests/loom_redis.rs` check it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::sync::{lock, Condvar, Mutex, MutexGuard};

pub(crate) struct Mailbox<T> {
    inner: Mutex<Inner<T>>,
    /// Signalled when a job is pushed or the mailbox stops.
    signal: Condvar,
}

struct Inner<T> {
    jobs: VecDeque<T>,
    stopping: bool,
}

impl<T> Mailbox<T> {
    pub(crate) fn new() -> Mailbox<T> {
        Mailbox {
            inner: Mutex::new(Inner {
                jobs: VecDeque::new(),
                stopping: false,
            }),
            signal: Condvar::new(),
        }
    }

    /// Queues a job; gives it back if the mailbox has stopped.
    pub(crate) fn push(&self, job: T) -> Result<(), T> {
        let mut inner = lock(&self.inner);
        if inner.stopping {
            return Err(job);
        }
        inner.jobs.push_back(job);
        drop(inner);
        self.signal.notify_all();
        Ok(())
    }

    /// Stops the mailbox: no push is accepted from now on, and waiting threads wake.
    pub(crate) fn stop(&self) {
        lock(&self.inner).stopping = true;
        self.signal.notify_all();
    }

    pub(crate) fn is_stopping(&self) -> bool {
        lock(&self.inner).stopping
    }

    /// Moves up to `max` jobs into `into`, first waiting for one if `block` and none is queued;
    /// returns whether the mailbox has stopped (then it does not wait).
    pub(crate) fn take(&self, into: &mut Vec<T>, max: usize, block: bool) -> bool {
        let mut inner = lock(&self.inner);
        while block && inner.jobs.is_empty() && !inner.stopping {
            inner = wait(&self.signal, inner, None);
        }
        let count = inner.jobs.len().min(max.saturating_sub(into.len()));
        into.extend(inner.jobs.drain(..count));
        inner.stopping
    }

    /// Every job still queued. Once the mailbox has stopped, nothing can follow them.
    pub(crate) fn drain(&self) -> Vec<T> {
        lock(&self.inner).jobs.drain(..).collect()
    }

    /// Sleeps for `delay`, or less if the mailbox stops; returns whether it has.
    pub(crate) fn pause(&self, delay: Duration) -> bool {
        self.sleep(delay, false)
    }

    /// Sleeps for `delay`, or less if the mailbox stops or, with `until_job`, a job is
    /// queued; returns whether it has stopped.
    pub(crate) fn sleep(&self, delay: Duration, until_job: bool) -> bool {
        let until = Instant::now().checked_add(delay);
        let mut inner = lock(&self.inner);
        loop {
            if inner.stopping {
                return true;
            }
            if until_job && !inner.jobs.is_empty() {
                return false;
            }
            let Some(left) = time_left(until) else {
                return false;
            };
            inner = wait(&self.signal, inner, Some(left));
        }
    }
}

/// How long a timed wait until `until` may still sleep: `None` once it has passed, an hour at a
/// time when it never comes (`Instant` overflow).
pub(crate) fn time_left(until: Option<Instant>) -> Option<Duration> {
    match until {
        None => Some(Duration::from_secs(3600)),
        Some(until) => until
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero()),
    }
}

/// Waits on `signal`, ignoring poison (the data is consistent after every critical section).
fn wait<'a, T>(
    signal: &Condvar,
    guard: MutexGuard<'a, Inner<T>>,
    timeout: Option<Duration>,
) -> MutexGuard<'a, Inner<T>> {
    match timeout {
        None => signal
            .wait(guard)
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        Some(timeout) => {
            signal
                .wait_timeout(guard, timeout)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0
        }
    }
}

/// Entry points for the loom models (`tests/loom_redis.rs`), which see only the public API.
#[cfg(cancel_token_loom)]
#[doc(hidden)]
pub mod loom_access {
    use std::time::Duration;

    /// A mailbox of numbers, as the models use it.
    #[allow(missing_debug_implementations)]
    pub struct Mailbox(super::Mailbox<u32>);

    impl Mailbox {
        pub fn new() -> Mailbox {
            Mailbox(super::Mailbox::new())
        }
        pub fn push(&self, job: u32) -> bool {
            self.0.push(job).is_ok()
        }
        pub fn stop(&self) {
            self.0.stop();
        }
        pub fn take(&self, into: &mut Vec<u32>, max: usize) -> bool {
            self.0.take(into, max, true)
        }
        pub fn drain(&self) -> Vec<u32> {
            self.0.drain()
        }
        pub fn pause(&self, delay: Duration) -> bool {
            self.0.pause(delay)
        }
        pub fn sleep_until_job(&self, delay: Duration) -> bool {
            self.0.sleep(delay, true)
        }
    }

    impl Default for Mailbox {
        fn default() -> Mailbox {
            Mailbox::new()
        }
    }
}
