//! The command thread of a [`RedisRegistry`](super::RedisRegistry): it writes the records and
//! publishes the messages of this process's cancels, and reads the records of ids that
//! register or, after the subscription comes back, of every id registered.
//!
//! Each round sends the cancels waiting (up to [`BATCH`]) in one pipeline, then reads the
//! records of the ids waiting for a check, so a burst costs a round trip per batch. What cannot
//! be sent stays for the next round, after a back-off:
//!
//! - **Redis unreachable** (no connection, a broken one, no answer in time, or an answer that
//!   says "not now": loading its data, no master, try again): everything waits and is tried
//!   again for as long as the registry lives. A connection found broken is made again at once,
//!   once, before the round counts as failed: Redis closes idle clients, and the first cancel
//!   after a quiet spell should not wait for a back-off.
//! - **Redis refusing** (an error answer: out of memory, a read-only replica, a missing
//!   permission): the batch is sent again one cancel at a time, record then message, so that
//!   one refused cancel takes no other down. A cancel refused [`MAX_REFUSALS`] times in a row
//!   is given up, its message sent anyway, and its delivery says why. A refused check stays:
//!   checks are what make a cancel reach a process that was away.
//!
//! Checks are kept as a set of ids (or "all"), so registrations while Redis is away grow it by
//! at most one entry per id, and ids no longer registered are not read. When the registry
//! stops, the cancels waiting get one last try, on a fresh connection if need be.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::reason::{Reason, ReasonKind};
use crate::CancelToken;

use super::shared::{Job, Shared};
use super::wire;

/// The most cancels sent in one pipeline.
const BATCH: usize = 1024;

/// The most keys read by one `MGET`.
const MGET_KEYS: usize = 512;

/// How many times in a row Redis may refuse one cancel before it is given up.
const MAX_REFUSALS: u32 = 3;

/// Ids waiting for checks beyond which they become one check of every id registered.
const MAX_CHECK_IDS: usize = 4096;

/// A cancel waiting to be sent.
struct Publish {
    key: String,
    record: String,
    message: String,
    done: CancelToken,
    refusals: u32,
}

/// The records waiting to be read.
#[derive(Default)]
struct Checks {
    ids: HashSet<String>,
    all: bool,
    /// Tokens a record armed whose trigger (on a firer) may not have run yet: a second read
    /// of the same record (a registration's check, then a reconnect's) leaves them be.
    armed: HashSet<CancelToken>,
}

/// Why a round trip failed.
enum Failure {
    /// Try again later, the same way.
    Unreachable,
    /// Redis answered with an error.
    Refused(redis::RedisError),
}

/// The thread's body: runs until the registry stops.
pub(crate) fn run(shared: Arc<Shared>, connection: Option<redis::Connection>) {
    let mut link = Link { con: connection };
    let mut publishes: Vec<Publish> = Vec::new();
    let mut checks = Checks::default();
    let mut attempt = 0u32;
    loop {
        let mut jobs = Vec::new();
        let idle = publishes.is_empty() && !checks.all && checks.ids.is_empty();
        let stopping = shared.mailbox.take(&mut jobs, BATCH, idle);
        for job in jobs {
            file(job, &mut publishes, &mut checks);
        }
        if checks.all || checks.ids.len() > MAX_CHECK_IDS {
            checks.all = true;
            checks.ids.clear();
        }
        if stopping {
            // Once stopped, nothing more can be queued: these are all.
            for job in shared.mailbox.drain() {
                file(job, &mut publishes, &mut checks);
            }
            last_try(&shared, &mut link, publishes);
            return;
        }
        if round(&shared, &mut link, &mut publishes, &mut checks) {
            attempt = 0;
            continue;
        }
        shared.counters.errors.fetch_add(1, Ordering::Relaxed);
        // Jobs queued meanwhile join the next round after the pause.
        if !shared.pause(shared.backoff(attempt)) {
            attempt = attempt.saturating_add(1);
        }
    }
}

/// Files a job with the cancels or the checks waiting.
fn file(job: Job, publishes: &mut Vec<Publish>, checks: &mut Checks) {
    match job {
        Job::Publish {
            key,
            record,
            message,
            done,
        } => publishes.push(Publish {
            key,
            record,
            message,
            done,
            refusals: 0,
        }),
        Job::Check(id) => {
            checks.ids.insert(id);
        }
        Job::CheckAll => checks.all = true,
    }
}

/// One round: the cancels waiting, then the checks. `false` if something must wait.
fn round(
    shared: &Shared,
    link: &mut Link,
    publishes: &mut Vec<Publish>,
    checks: &mut Checks,
) -> bool {
    let mut all_sent = true;
    if !publishes.is_empty() {
        let count = publishes.len().min(BATCH);
        // Cancels refused before go one at a time: a batch would publish them again.
        let batched = if publishes[..count].iter().any(|p| p.refusals > 0) {
            Err(Failure::Refused(refusal()))
        } else {
            let mut pipe = redis::pipe();
            for publish in &publishes[..count] {
                add_publish(shared, &mut pipe, publish);
            }
            link.query::<()>(shared, &pipe)
        };
        match batched {
            Ok(()) => publishes.drain(..count).for_each(|p| deliver(shared, p)),
            Err(Failure::Unreachable) => return false,
            Err(Failure::Refused(_)) => match one_by_one(shared, link, publishes, count) {
                Err(Unreachable) => return false,
                Ok(done) => all_sent = done,
            },
        }
    }
    checks.armed.retain(|token| !token.is_triggered());
    if checks.all || !checks.ids.is_empty() {
        let mut ids: Vec<String> = if checks.all {
            shared.tokens.keys()
        } else {
            checks.ids.iter().cloned().collect()
        };
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|id| shared.tokens.contains_key(id.as_str()));
        if !ids.is_empty() {
            let mut pipe = redis::pipe();
            for chunk in ids.chunks(MGET_KEYS) {
                let mut mget = redis::cmd("MGET");
                for id in chunk {
                    mget.arg(shared.record_key(id));
                }
                pipe.add_command(mget);
            }
            let values: Vec<Vec<Option<Vec<u8>>>> = match link.query(shared, &pipe) {
                Ok(values) => values,
                // The checks stay as they are, for the next round.
                Err(_) => return false,
            };
            for (id, value) in ids.iter().zip(values.into_iter().flatten()) {
                if let Some(value) = value {
                    found(shared, id, &value, &mut checks.armed);
                }
            }
        }
        checks.ids.clear();
        checks.all = false;
    }
    all_sent
}

/// Redis could not be reached (the cancels left wait for the next round).
struct Unreachable;

/// A stand-in for a refusal already answered, to send cancels refused before one at a time.
fn refusal() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::ResponseError, "refused before"))
}

/// Sends the first `count` cancels one at a time, record then message, after Redis refused
/// them together (or refused them before); removes those delivered or given up. `Ok(true)`
/// if none of them is left.
fn one_by_one(
    shared: &Shared,
    link: &mut Link,
    publishes: &mut Vec<Publish>,
    count: usize,
) -> Result<bool, Unreachable> {
    let rest = publishes.split_off(count);
    let mut kept = Vec::new();
    let mut unreachable = false;
    for publish in publishes.drain(..) {
        if unreachable {
            kept.push(publish);
            continue;
        }
        let mut record = redis::pipe();
        record
            .cmd("SET")
            .arg(&publish.key)
            .arg(&publish.record)
            .arg("PX")
            .arg(ttl_millis(shared))
            .ignore();
        let sent = link
            .query::<()>(shared, &record)
            .and_then(|()| link.query::<()>(shared, &message(shared, &publish)));
        match sent {
            Ok(()) => deliver(shared, publish),
            Err(Failure::Unreachable) => {
                unreachable = true;
                kept.push(publish);
            }
            Err(Failure::Refused(error)) => refused(shared, link, publish, error, &mut kept),
        }
    }
    let done = kept.is_empty();
    kept.extend(rest);
    *publishes = kept;
    if unreachable {
        Err(Unreachable)
    } else {
        Ok(done)
    }
}

/// A cancel Redis refused: kept for another try, or given up after [`MAX_REFUSALS`] (with
/// its message sent once more, alone, since a record alone may be what Redis refuses).
fn refused(
    shared: &Shared,
    link: &mut Link,
    mut publish: Publish,
    error: redis::RedisError,
    kept: &mut Vec<Publish>,
) {
    publish.refusals += 1;
    if publish.refusals < MAX_REFUSALS {
        kept.push(publish);
        return;
    }
    shared.counters.errors.fetch_add(1, Ordering::Relaxed);
    let sent = link.query::<()>(shared, &message(shared, &publish)).is_ok();
    let why = if sent {
        format!("Redis refused the cancel's record ({error}); its message went out")
    } else {
        format!("Redis refused the cancel: {error}")
    };
    give_up(shared, publish, &why);
}

fn ttl_millis(shared: &Shared) -> u64 {
    // Redis takes at most a signed 64-bit number of milliseconds, and at least one.
    let millis = shared.settings.record_ttl.as_millis();
    millis.clamp(1, i64::MAX as u128 / 2) as u64
}

/// Adds the record and the message of `publish` to `pipe`.
fn add_publish(shared: &Shared, pipe: &mut redis::Pipeline, publish: &Publish) {
    pipe.cmd("SET")
        .arg(&publish.key)
        .arg(&publish.record)
        .arg("PX")
        .arg(ttl_millis(shared))
        .ignore();
    pipe.cmd("PUBLISH")
        .arg(&shared.settings.channel)
        .arg(&publish.message)
        .ignore();
}

/// A pipeline of the message of `publish` alone.
fn message(shared: &Shared, publish: &Publish) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.cmd("PUBLISH")
        .arg(&shared.settings.channel)
        .arg(&publish.message)
        .ignore();
    pipe
}

/// A record found for `id`, registered here: trigger its tokens, counting in `record_hits`
/// each that this call is the one to trigger.
// A token hashes by identity (the `Arc` of its node), which its interior mutability never
// changes.
#[allow(clippy::mutable_key_type)]
fn found(shared: &Shared, id: &str, value: &[u8], armed: &mut HashSet<CancelToken>) {
    // A record this crate did not write still cancels, for a plain reason.
    let reason = wire::decode_reason(value)
        .unwrap_or_else(|| Reason::with_message(ReasonKind::Manual, "cancelled through Redis"));
    let hits = &shared.counters.record_hits;
    for token in shared.tokens.tokens_of(id) {
        if armed.contains(&token) {
            continue;
        }
        // Counted before it is armed, so that whoever the trigger wakes sees it; taken back
        // if it was not (triggered already, say by a message).
        hits.fetch_add(1, Ordering::Relaxed);
        if token.trigger_on_firer(reason.clone()) {
            armed.insert(token);
        } else {
            hits.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn deliver(shared: &Shared, publish: Publish) {
    shared.counters.published.fetch_add(1, Ordering::Relaxed);
    shared.counters.pending.fetch_sub(1, Ordering::Relaxed);
    resolve(
        &publish.done,
        Reason::with_message(ReasonKind::Manual, "delivered"),
    );
}

/// Ends a delivery here, at once, so that `close` returns with every delivery ended; the only
/// user code it runs is the wakers of `Delivery::delivered`, and a panicking one must not take
/// the thread down.
fn resolve(done: &CancelToken, reason: Reason) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| done.trigger_with(reason)));
}

/// Ends the delivery of a cancel Redis never acknowledged, saying why.
fn give_up(shared: &Shared, publish: Publish, why: &str) {
    shared.counters.pending.fetch_sub(1, Ordering::Relaxed);
    resolve(
        &publish.done,
        Reason::with_message(ReasonKind::Dropped, why.to_owned()),
    );
}

/// The last try when the registry stops: the cancels waiting, on a fresh connection if the
/// one held is broken; the rest are given up.
fn last_try(shared: &Shared, link: &mut Link, mut publishes: Vec<Publish>) {
    while !publishes.is_empty() {
        let count = publishes.len().min(BATCH);
        let mut pipe = redis::pipe();
        for publish in &publishes[..count] {
            add_publish(shared, &mut pipe, publish);
        }
        match link.query::<()>(shared, &pipe) {
            Ok(()) => publishes.drain(..count).for_each(|p| deliver(shared, p)),
            Err(_) => break,
        }
    }
    for publish in publishes {
        give_up(
            shared,
            publish,
            "the registry closed before Redis acknowledged the cancel",
        );
    }
}

/// The command connection, made (again) when needed.
struct Link {
    con: Option<redis::Connection>,
}

impl Link {
    /// Runs `pipe`; a connection found broken is made again at once and the pipeline sent
    /// again, once.
    fn query<T: redis::FromRedisValue>(
        &mut self,
        shared: &Shared,
        pipe: &redis::Pipeline,
    ) -> Result<T, Failure> {
        let fresh = self.con.is_none();
        match self.try_query(shared, pipe) {
            Err(Failure::Unreachable) if !fresh => self.try_query(shared, pipe),
            outcome => outcome,
        }
    }

    fn try_query<T: redis::FromRedisValue>(
        &mut self,
        shared: &Shared,
        pipe: &redis::Pipeline,
    ) -> Result<T, Failure> {
        if self.con.is_none() {
            self.con = connect(shared);
        }
        let con = self.con.as_mut().ok_or(Failure::Unreachable)?;
        pipe.query(con).map_err(|error| {
            if answered(&error) {
                Failure::Refused(error)
            } else {
                if !matches!(error.retry_method(), redis::RetryMethod::WaitAndRetry) {
                    self.con = None;
                }
                Failure::Unreachable
            }
        })
    }
}

/// A new command connection, or `None` if Redis does not answer.
fn connect(shared: &Shared) -> Option<redis::Connection> {
    let timeout = shared.settings.connect_timeout;
    let con = shared.client.get_connection_with_timeout(timeout).ok()?;
    con.set_read_timeout(Some(timeout)).ok()?;
    con.set_write_timeout(Some(timeout)).ok()?;
    Some(con)
}

/// Whether Redis answered with this error and means it: not a broken or silent connection,
/// and not "not now" (loading its data, no master, try again), which is waited out.
fn answered(error: &redis::RedisError) -> bool {
    !(error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
        || matches!(error.retry_method(), redis::RetryMethod::WaitAndRetry))
}
