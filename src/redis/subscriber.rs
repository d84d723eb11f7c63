//! The subscriber thread of a [`RedisRegistry`](super::RedisRegistry): it listens on the
//! channel, triggers this process's tokens for each well-formed cancel and counts the rest,
//! and makes the subscription again, with back-off, whenever it breaks.
//!
//! A broken connection shows as a read error, or as a heartbeat `PING` that gets no answer
//! (a peer that vanished without closing the socket). Each time the subscription is made again,
//! the command thread reads the records of every id registered, so that a cancel sent while
//! the subscription was down still reaches its tokens. The order matters: subscribed first,
//! records read after, so that a cancel is either heard or already recorded.
//!
//! Reads wait at most [`POLL`] at a time, so that the thread notices a stop within that.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::shared::{ConnectionState, Job, Shared};
use super::wire;

/// The longest a read waits before the thread looks at the stop flag and the heartbeat.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// The longest the thread waits for Redis to confirm the `UNSUBSCRIBE` it sends when it stops
/// or gives up a connection.
const UNSUBSCRIBE_WAIT: Duration = Duration::from_millis(20);

/// Why [`listen`] returned.
enum Ended {
    Stopped,
    Broken,
}

/// A connection for the subscription, with what is left of the connect timeout on every
/// read and write until the subscription is confirmed: connecting and subscribing together
/// take at most about the connect timeout.
fn connect(shared: &Shared) -> redis::RedisResult<redis::Connection> {
    let timeout = shared.settings.connect_timeout;
    let started = Instant::now();
    let con = shared.client.get_connection_with_timeout(timeout)?;
    let left = timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    con.set_write_timeout(Some(left))?;
    con.set_read_timeout(Some(left))?;
    Ok(con)
}

/// The thread's body: runs until the registry stops.
///
/// The first subscription's outcome goes to `ready` (the caller of `connect` waits for it);
/// if it fails, the thread ends there. Later ones are retried with back-off.
pub(crate) fn run(shared: Arc<Shared>, ready: mpsc::Sender<redis::RedisResult<()>>) {
    let mut ready = Some(ready);
    let mut attempt = 0u32;
    loop {
        let subscribed = connect(&shared).and_then(|mut con| {
            // The subscription lasts as long as this `PubSub`: dropping it unsubscribes, and
            // waits for Redis to confirm, so whatever returns first shortens the wait.
            let mut pubsub = con.as_pubsub();
            if let Err(error) = pubsub.subscribe(&shared.settings.channel) {
                let _ = pubsub.set_read_timeout(Some(UNSUBSCRIBE_WAIT));
                return Err(error);
            }
            pubsub.set_read_timeout(Some(POLL))?;
            match ready.take() {
                Some(ready) => {
                    let _ = ready.send(Ok(()));
                }
                None => {
                    shared.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                    // Subscribed before the records are read: nothing sent meanwhile slips
                    // between them.
                    shared.set_state(ConnectionState::Connected);
                    let _ = shared.push(Job::CheckAll);
                }
            }
            let since = Instant::now();
            let ended = listen(&shared, &mut pubsub);
            // The back-off starts over only after a subscription that lasted: one dropped as
            // soon as it is made (a proxy, a client output limit) would otherwise be made
            // again, and every record read again, every `min` pause.
            if since.elapsed() >= shared.settings.heartbeat.max(shared.settings.backoff_max) {
                attempt = 0;
            }
            // The `UNSUBSCRIBE` of the drop waits for its answer at most this long: a frozen
            // or vanished server must not hold up a stop or a reconnect.
            let _ = pubsub.set_read_timeout(Some(UNSUBSCRIBE_WAIT));
            Ok(ended)
        });
        match subscribed {
            Ok(Ended::Stopped) => break,
            Ok(Ended::Broken) => {}
            Err(error) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Err(error));
                    return;
                }
            }
        }
        shared.set_state(ConnectionState::Reconnecting);
        if shared.pause(shared.backoff(attempt)) {
            break;
        }
        attempt = attempt.saturating_add(1);
    }
    shared.set_state(ConnectionState::Closed);
}

/// Handles messages until the registry stops or the connection breaks.
fn listen(shared: &Shared, pubsub: &mut redis::PubSub<'_>) -> Ended {
    let mut last_heard = Instant::now();
    loop {
        if shared.stopping() {
            return Ended::Stopped;
        }
        match pubsub.get_message() {
            Ok(message) => {
                last_heard = Instant::now();
                handle(shared, message.get_payload_bytes());
            }
            Err(error) if error.is_timeout() => {
                if last_heard.elapsed() >= shared.settings.heartbeat {
                    // PING waits for its answer with the connect timeout, not the poll.
                    let answered = pubsub
                        .set_read_timeout(Some(shared.settings.connect_timeout))
                        .and_then(|()| pubsub.ping::<redis::Value>())
                        .and_then(|_| pubsub.set_read_timeout(Some(POLL)));
                    if answered.is_err() {
                        return Ended::Broken;
                    }
                    last_heard = Instant::now();
                }
            }
            Err(_) => return Ended::Broken,
        }
    }
}

/// One message off the channel.
fn handle(shared: &Shared, payload: &[u8]) {
    match wire::decode_message(payload) {
        Some(message) => {
            shared.counters.received.fetch_add(1, Ordering::Relaxed);
            shared.trigger(&message.id, message.reason);
        }
        None => {
            shared.counters.malformed.fetch_add(1, Ordering::Relaxed);
        }
    }
}
