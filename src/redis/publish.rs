//! How the command thread sends this process's cancels: the records of a batch first, then its
//! messages, so that a registry that hears a message, or reads a record after a reconnect,
//! never misses a cancel whose other half went out.
//!
//! Each half goes in one pipeline. When Redis refuses a pipeline (out of memory, a read-only
//! replica, a missing permission), the half is sent again one cancel at a time, so that one
//! refused cancel takes no other down: records can be written again (a `SET` is idempotent),
//! and messages are sent one at a time only when their pipeline was refused, so a cancel whose
//! message went out is not published twice. A cancel refused [`MAX_REFUSALS`] times in a row is
//! given up: its message still goes out if only its record was refused, and its delivery says
//! why.

use std::sync::atomic::Ordering;

use crate::reason::{Reason, ReasonKind};
use crate::CancelToken;

use super::link::{Failure, Link};
use super::shared::Shared;

/// How many times in a row Redis may refuse one cancel before it is given up.
pub(crate) const MAX_REFUSALS: u32 = 3;

/// A cancel waiting to be sent.
pub(crate) struct Publish {
    pub(crate) key: String,
    pub(crate) record: String,
    pub(crate) message: String,
    pub(crate) done: CancelToken,
    refusals: u32,
    /// Its record is written: only the message is left.
    recorded: bool,
}

impl Publish {
    pub(crate) fn new(key: String, record: String, message: String, done: CancelToken) -> Publish {
        Publish {
            key,
            record,
            message,
            done,
            refusals: 0,
            recorded: false,
        }
    }
}

/// What became of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every cancel of the batch was delivered or given up.
    Done,
    /// Redis refused some, which wait for another try.
    Refused,
    /// Redis could not be reached; the rest wait.
    Unreachable,
}

/// Sends up to `max` of the cancels waiting, records then messages; removes those delivered
/// or given up.
pub(crate) fn send_batch(
    shared: &Shared,
    link: &mut Link,
    publishes: &mut Vec<Publish>,
    max: usize,
) -> Outcome {
    let count = publishes.len().min(max);
    let rest = publishes.split_off(count);
    let mut batch = std::mem::take(publishes);
    let outcome =
        records(shared, link, &mut batch).and_then(|()| messages(shared, link, &mut batch));
    let refused = batch.iter().any(|publish| publish.refusals > 0);
    batch.extend(rest);
    *publishes = batch;
    match outcome {
        Err(Failure::Unreachable) => Outcome::Unreachable,
        _ if refused => Outcome::Refused,
        _ => Outcome::Done,
    }
}

/// Writes the records not yet written. `Err(Unreachable)` leaves the rest for later.
fn records(shared: &Shared, link: &mut Link, batch: &mut Vec<Publish>) -> Result<(), Failure> {
    let mut pipe = redis::pipe();
    let mut any = false;
    for publish in batch.iter().filter(|publish| !publish.recorded) {
        add_record(shared, &mut pipe, publish);
        any = true;
    }
    if !any {
        return Ok(());
    }
    // Cancels refused before go one at a time: they would be refused together again.
    let together = if batch.iter().any(|publish| publish.refusals > 0) {
        None
    } else {
        Some(link.query::<()>(shared, &pipe))
    };
    match together {
        Some(Ok(())) => {
            batch.iter_mut().for_each(|publish| publish.recorded = true);
            return Ok(());
        }
        Some(Err(Failure::Unreachable)) => return Err(Failure::Unreachable),
        Some(Err(Failure::Refused(_))) | None => {}
    }
    let mut index = 0;
    while index < batch.len() {
        if batch[index].recorded {
            index += 1;
            continue;
        }
        let mut alone = redis::pipe();
        add_record(shared, &mut alone, &batch[index]);
        match link.query::<()>(shared, &alone) {
            Ok(()) => batch[index].recorded = true,
            Err(Failure::Unreachable) => return Err(Failure::Unreachable),
            Err(Failure::Refused(error)) => {
                batch[index].refusals += 1;
                if batch[index].refusals >= MAX_REFUSALS {
                    // What Redis refuses is the record: the message may still go.
                    let publish = batch.remove(index);
                    shared.counters.errors.fetch_add(1, Ordering::Relaxed);
                    let sent = link.query::<()>(shared, &message(shared, &publish)).is_ok();
                    let why = if sent {
                        format!("Redis refused the cancel's record ({error}); its message went out")
                    } else {
                        format!("Redis refused the cancel: {error}")
                    };
                    give_up(shared, publish, &why);
                    continue;
                }
            }
        }
        index += 1;
    }
    Ok(())
}

/// Publishes the messages of the cancels whose records are written, and delivers them.
fn messages(shared: &Shared, link: &mut Link, batch: &mut Vec<Publish>) -> Result<(), Failure> {
    let ready: Vec<usize> = (0..batch.len()).filter(|&i| batch[i].recorded).collect();
    if ready.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for &i in &ready {
        pipe.cmd("PUBLISH")
            .arg(&shared.settings.channel)
            .arg(&batch[i].message)
            .ignore();
    }
    // For each cancel: `Some(None)` delivered, `Some(Some(why))` given up, `None` kept.
    let mut ended: Vec<Option<Option<String>>> = vec![None; batch.len()];
    let mut unreachable = false;
    match link.query::<()>(shared, &pipe) {
        Ok(()) => ready.iter().for_each(|&i| ended[i] = Some(None)),
        Err(Failure::Unreachable) => return Err(Failure::Unreachable),
        Err(Failure::Refused(_)) => {
            // Redis refused a message (a permission on the channel, say): one at a time.
            for &i in &ready {
                match link.query::<()>(shared, &message(shared, &batch[i])) {
                    Ok(()) => ended[i] = Some(None),
                    Err(Failure::Unreachable) => {
                        unreachable = true;
                        break;
                    }
                    Err(Failure::Refused(error)) => {
                        batch[i].refusals += 1;
                        if batch[i].refusals >= MAX_REFUSALS {
                            shared.counters.errors.fetch_add(1, Ordering::Relaxed);
                            ended[i] =
                                Some(Some(format!("Redis refused the cancel's message: {error}")));
                        }
                    }
                }
            }
        }
    }
    let mut kept = Vec::with_capacity(batch.len());
    for (publish, end) in batch.drain(..).zip(ended) {
        match end {
            Some(None) => deliver(shared, publish),
            Some(Some(why)) => give_up(shared, publish, &why),
            None => kept.push(publish),
        }
    }
    *batch = kept;
    if unreachable {
        Err(Failure::Unreachable)
    } else {
        Ok(())
    }
}

fn ttl_millis(shared: &Shared) -> u64 {
    // Redis takes at most a signed 64-bit number of milliseconds, and at least one.
    let millis = shared.settings.record_ttl.as_millis();
    millis.clamp(1, i64::MAX as u128 / 2) as u64
}

fn add_record(shared: &Shared, pipe: &mut redis::Pipeline, publish: &Publish) {
    pipe.cmd("SET")
        .arg(&publish.key)
        .arg(&publish.record)
        .arg("PX")
        .arg(ttl_millis(shared))
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

fn deliver(shared: &Shared, publish: Publish) {
    shared.counters.published.fetch_add(1, Ordering::Relaxed);
    shared.counters.pending.fetch_sub(1, Ordering::Relaxed);
    resolve(
        &publish.done,
        Reason::with_message(ReasonKind::Manual, "delivered"),
    );
}

/// Ends the delivery of a cancel Redis never acknowledged, saying why.
pub(crate) fn give_up(shared: &Shared, publish: Publish, why: &str) {
    shared.counters.pending.fetch_sub(1, Ordering::Relaxed);
    resolve(
        &publish.done,
        Reason::with_message(ReasonKind::Dropped, why.to_owned()),
    );
}

/// Ends a delivery here, at once, so that `close` returns with every delivery ended; the only
/// user code it runs is the wakers of `Delivery::delivered`, and a panicking one must not take
/// the thread down.
fn resolve(done: &CancelToken, reason: Reason) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| done.trigger_with(reason)));
}
