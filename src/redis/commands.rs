//! The command thread of a [`RedisRegistry`](super::RedisRegistry): it writes the records and
//! publishes the messages of this process's cancels, and reads records for ids that register
//! or when the subscription comes back.
//!
//! It takes every job queued at once (up to [`BATCH`]) and sends them in one pipeline, in the
//! order they were queued, so a burst of cancels costs one round trip per batch. A batch that
//! fails (Redis went away, answered an error or did not answer in time) is kept and sent again
//! on a new connection after a back-off: a cancel is never dropped while the registry lives.
//! When the registry stops, what is queued gets one more try, so that a cancel sent just before
//! `close` (or a drop) still goes out.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::reason::{Reason, ReasonKind};

use super::shared::{Job, Shared};
use super::wire;

/// The most jobs sent in one pipeline.
const BATCH: usize = 1024;

/// The most keys read by one `MGET`.
const MGET_KEYS: usize = 512;

/// How many times in a row Redis may answer a batch with an error before it is given up.
const MAX_REFUSALS: u32 = 3;

/// Why a batch was not sent.
enum Failure {
    /// No connection, a broken one, or no answer in time: tried again until it works.
    Unreachable,
    /// Redis answered with an error.
    Refused(redis::RedisError),
}

/// The thread's body: runs until the registry stops.
pub(crate) fn run(shared: Arc<Shared>, mut connection: Option<redis::Connection>) {
    let mut batch: Vec<Job> = Vec::new();
    let mut attempt = 0u32;
    // Consecutive error answers to the same batch.
    let mut refusals = 0u32;
    loop {
        let stopping = shared.mailbox.take(&mut batch, BATCH);
        if stopping {
            // One last try for the cancels queued; reads no longer matter.
            batch.retain(|job| matches!(job, Job::Publish { .. }));
            batch.extend(
                shared
                    .mailbox
                    .drain()
                    .into_iter()
                    .filter(|job| matches!(job, Job::Publish { .. })),
            );
            if !batch.is_empty() {
                if connection.is_none() {
                    connection = connect(&shared);
                }
                if let Some(con) = connection.as_mut() {
                    // Its outcome only decides how the deliveries end.
                    let _ = send(&shared, con, &mut batch);
                }
            }
            abandon(
                &shared,
                batch,
                "the registry closed before Redis acknowledged the cancel",
            );
            return;
        }
        if connection.is_none() {
            connection = connect(&shared);
        }
        let sent = match connection.as_mut() {
            Some(con) => send(&shared, con, &mut batch),
            None => Err(Failure::Unreachable),
        };
        match sent {
            Ok(()) => {
                attempt = 0;
                refusals = 0;
                continue;
            }
            Err(Failure::Unreachable) => connection = None,
            Err(Failure::Refused(error)) => {
                refusals += 1;
                if refusals == MAX_REFUSALS {
                    // Redis answers, and keeps saying no (out of memory, a read-only
                    // replica, a missing permission): the batch would block every later
                    // cancel. Its messages have most likely gone out (a pipeline runs on past
                    // an error); the deliveries say what happened.
                    shared.counters.errors.fetch_add(1, Ordering::Relaxed);
                    let why = format!("Redis refused the cancel: {error}");
                    abandon(&shared, std::mem::take(&mut batch), &why);
                    refusals = 0;
                    attempt = 0;
                    continue;
                }
            }
        }
        shared.counters.errors.fetch_add(1, Ordering::Relaxed);
        // Jobs queued meanwhile join the batch after the pause.
        if shared.pause(shared.backoff(attempt)) {
            continue;
        }
        attempt = attempt.saturating_add(1);
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

/// Sends the batch in one pipeline. On success it empties the batch, ends the deliveries and
/// triggers the tokens whose records were found; on failure it leaves the batch as it was.
fn send(shared: &Shared, con: &mut redis::Connection, batch: &mut Vec<Job>) -> Result<(), Failure> {
    let mut pipe = redis::pipe();
    let ttl = shared
        .settings
        .record_ttl
        .as_millis()
        .clamp(1, u64::MAX as u128) as u64;
    // The ids whose records each MGET reads, in order.
    let mut reads: Vec<Vec<String>> = Vec::new();
    let mut wanted: HashSet<String> = HashSet::new();
    for job in batch.iter() {
        match job {
            Job::Publish {
                key,
                record,
                message,
                ..
            } => {
                pipe.cmd("SET")
                    .arg(key)
                    .arg(record)
                    .arg("PX")
                    .arg(ttl)
                    .ignore();
                pipe.cmd("PUBLISH")
                    .arg(&shared.settings.channel)
                    .arg(message)
                    .ignore();
            }
            Job::Check(id) => {
                wanted.insert(id.clone());
            }
            Job::CheckAll => wanted.extend(shared.tokens.keys()),
        }
    }
    let wanted: Vec<String> = wanted.into_iter().collect();
    for ids in wanted.chunks(MGET_KEYS) {
        let mut mget = redis::cmd("MGET");
        for id in ids {
            mget.arg(shared.record_key(id));
        }
        pipe.add_command(mget);
        reads.push(ids.to_vec());
    }
    let publishes = batch
        .iter()
        .filter(|job| matches!(job, Job::Publish { .. }))
        .count();
    if publishes == 0 && reads.is_empty() {
        // Checks with nothing registered: nothing to ask.
        batch.clear();
        return Ok(());
    }
    let records: Vec<Vec<Option<Vec<u8>>>> = match pipe.query(con) {
        Ok(records) => records,
        Err(error) if answered(&error) => return Err(Failure::Refused(error)),
        Err(_) => return Err(Failure::Unreachable),
    };
    for job in batch.drain(..) {
        if let Job::Publish { done, .. } = job {
            shared.counters.published.fetch_add(1, Ordering::Relaxed);
            shared.counters.pending.fetch_sub(1, Ordering::Relaxed);
            done.trigger_with("delivered");
        }
    }
    for (ids, values) in reads.iter().zip(records) {
        for (id, value) in ids.iter().zip(values) {
            let Some(value) = value else { continue };
            // A record this crate did not write still cancels, for a plain reason.
            let reason = wire::decode_reason(&value).unwrap_or_else(|| {
                Reason::with_message(ReasonKind::Manual, "cancelled through Redis")
            });
            // Only ids still registered: a message may have cancelled them since. Counted
            // before the trigger, as `received` is, so that whoever it wakes sees it.
            if shared.tokens.contains_key(id.as_str()) {
                shared.counters.record_hits.fetch_add(1, Ordering::Relaxed);
                shared.trigger(id, reason);
            }
        }
    }
    Ok(())
}

/// Whether Redis itself answered with this error (the connection is fine).
fn answered(error: &redis::RedisError) -> bool {
    !(error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error())
}

/// Ends the deliveries of cancels Redis never acknowledged, saying why.
fn abandon(shared: &Shared, batch: Vec<Job>, why: &str) {
    for job in batch {
        if let Job::Publish { done, .. } = job {
            shared.counters.pending.fetch_sub(1, Ordering::Relaxed);
            done.trigger_with(Reason::with_message(ReasonKind::Dropped, why.to_owned()));
        }
    }
}
