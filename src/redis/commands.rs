//! The command thread of a [`RedisRegistry`](super::RedisRegistry): it writes the records and
//! publishes the messages of this process's cancels, and reads the records of ids that
//! register or, after the subscription comes back, of every id registered.
//!
//! Each round sends the cancels waiting (up to [`BATCH`]: records in one pipeline, then
//! messages in another, see `publish.rs`), then reads the records of the ids waiting for a
//! check, so a burst costs two round trips per batch. What cannot be sent stays for the next
//! round:
//!
//! - **Redis unreachable** (no connection, a broken one, no answer in time, or an answer that
//!   says "not now": loading its data, no master, try again): everything waits for a back-off
//!   and is tried again for as long as the registry lives. A connection found broken is made
//!   again at once, once, before the round counts as failed: Redis closes idle clients, and
//!   the first cancel after a quiet spell should not wait for a back-off.
//! - **Redis refusing** (an error answer: out of memory, a read-only replica, a missing
//!   permission): refused cancels are handled one at a time (`publish.rs`); a refused check
//!   stays, since checks are what make a cancel reach a process that was away. The thread then
//!   waits for the back-off or the next job, whichever comes first, so that what Redis accepts
//!   is never held up behind what it refuses.
//!
//! Checks are kept as a set of ids (or "all"), so registrations while Redis is away grow it by
//! at most one entry per id, and ids no longer registered are not read. When the registry
//! stops, the cancels waiting get one last try, on a fresh connection if need be.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::reason::{Reason, ReasonKind};
use crate::CancelToken;

use super::link::{Failure, Link};
use super::publish::{give_up, send_batch, Outcome, Publish, MAX_REFUSALS};
use super::shared::{Job, Shared};
use super::wire;

/// The most cancels sent in one pipeline.
const BATCH: usize = 1024;

/// The most keys read by one `MGET`.
const MGET_KEYS: usize = 512;

/// Ids waiting for checks beyond which they become one check of every id registered.
const MAX_CHECK_IDS: usize = 4096;

/// The records waiting to be read.
#[derive(Default)]
struct Checks {
    ids: HashSet<String>,
    all: bool,
    /// Tokens a record armed whose trigger (on a firer) may not have run yet: a second read
    /// of the same record (a registration's check, then a reconnect's) leaves them be.
    armed: HashSet<CancelToken>,
}

/// The thread's body: runs until the registry stops.
pub(crate) fn run(shared: Arc<Shared>, connection: Option<redis::Connection>) {
    let mut link = Link::new(connection);
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
        let outcome = round(&shared, &mut link, &mut publishes, &mut checks);
        if outcome == Outcome::Done {
            attempt = 0;
            continue;
        }
        shared.counters.errors.fetch_add(1, Ordering::Relaxed);
        let delay = shared.backoff(attempt);
        attempt = attempt.saturating_add(1);
        // Out of reach, Redis is left alone for the pause (jobs queued meanwhile join the
        // next round). Refusing, it is reachable: a new job is sent at once.
        let until_job = outcome == Outcome::Refused;
        shared.mailbox.sleep(delay, until_job);
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
        } => publishes.push(Publish::new(key, record, message, done)),
        Job::Check(id) => {
            checks.ids.insert(id);
        }
        Job::CheckAll => checks.all = true,
    }
}

/// One round: the cancels waiting, then the checks.
fn round(
    shared: &Shared,
    link: &mut Link,
    publishes: &mut Vec<Publish>,
    checks: &mut Checks,
) -> Outcome {
    let mut outcome = Outcome::Done;
    if !publishes.is_empty() {
        outcome = send_batch(shared, link, publishes, BATCH);
        if outcome == Outcome::Unreachable {
            return outcome;
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
                Err(Failure::Unreachable) => return Outcome::Unreachable,
                Err(Failure::Refused(_)) => return Outcome::Refused,
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
    outcome
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
        // Armed here, triggered, or due (armed by a message, or by a deadline of its own): its
        // trigger is on its way already.
        let due = || token.deadline().is_some_and(|at| at <= Instant::now());
        if armed.contains(&token) || token.is_triggered() || due() {
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

/// The last try when the registry stops: the cancels waiting, on a fresh connection if the
/// one held is broken, each refused one until it is given up; the rest are given up.
fn last_try(shared: &Shared, link: &mut Link, mut publishes: Vec<Publish>) {
    let mut refused = 0;
    while !publishes.is_empty() && refused <= MAX_REFUSALS {
        match send_batch(shared, link, &mut publishes, BATCH) {
            Outcome::Done => refused = 0,
            Outcome::Refused => refused += 1,
            Outcome::Unreachable => break,
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
