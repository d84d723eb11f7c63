//! `RedisRegistry` when Redis goes away and comes back: the subscription's state follows the
//! server (Connected, Reconnecting, Connected), a cancel sent while the server is down is
//! queued without blocking and delivered after the restart, a worker that was away when a
//! cancel was published catches it from the record after it reconnects, and a server that
//! stops answering without closing its connections is noticed by the heartbeat.

#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::time::{Duration, Instant};

use cancel_token::redis::{ConnectionState, RedisRegistry};
use cancel_token::ReasonKind;

use common::{wait_until, within, LIMIT};
use support_redis::{record_key, RedisServer, CHANNEL};

/// The bound on things that take milliseconds: a reconnect with the default back-off, a
/// trip through Redis.
const SOON: Duration = Duration::from_secs(10);
/// What "never blocks" means for `cancel` and `register` while the server is down.
const INSTANT: Duration = Duration::from_millis(50);

#[test]
fn state_follows_the_server_down_and_back_up() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let registry = RedisRegistry::connect(&redis.url()).unwrap();
        // `connect` returns once the subscription is in place: a cancel published right after
        // it is heard.
        assert_eq!(registry.state(), ConnectionState::Connected);
        assert_eq!(redis.subscribers(CHANNEL), 1);

        // A state that is not coming: `wait_state` gives up after its timeout, no sooner.
        let started = Instant::now();
        assert!(!registry.wait_state(ConnectionState::Reconnecting, Duration::from_millis(200)));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
            "wait_state(.., 200ms) returned after {waited:?}"
        );
        // The state it is in: at once.
        assert!(registry.wait_state(ConnectionState::Connected, Duration::ZERO));

        redis.kill();
        assert!(
            registry.wait_state(ConnectionState::Reconnecting, SOON),
            "still {:?} with the server killed",
            registry.state()
        );
        assert_eq!(registry.state(), ConnectionState::Reconnecting);

        redis.restart();
        assert!(
            registry.wait_state(ConnectionState::Connected, SOON),
            "still {:?} after the server restarted",
            registry.state()
        );
        assert!(registry.stats().reconnects() >= 1);
        redis.wait_subscribers(CHANNEL, 1, SOON);

        // The new subscription works: a cancel from another registry arrives by pub/sub.
        let (token, _registration) = registry.register("after the restart").unwrap();
        let other = RedisRegistry::connect(&redis.url()).unwrap();
        other.cancel("after the restart", "hello again").unwrap();
        assert!(token.wait_blocking_timeout(SOON));
        assert_eq!(token.reason().unwrap().message(), Some("hello again"));
        // The record (written before the message) may have won the race; the message still
        // arrives and counts.
        wait_until("the message to be counted", SOON, || {
            registry.stats().received() == 1
        });
    });
    drop(server);
}

#[test]
fn a_cancel_sent_while_redis_is_down_is_delivered_after_the_restart() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let worker = RedisRegistry::connect(&redis.url()).unwrap();
        let canceller = RedisRegistry::connect(&redis.url()).unwrap();
        let (token, _registration) = worker.register("job").unwrap();
        redis.wait_subscribers(CHANNEL, 2, SOON);
        // The registration's record check is done: the token can only come from the cancel
        // sent while the server is down.
        redis.wait_calls("mget", 1, SOON);

        redis.kill();
        assert!(canceller.wait_state(ConnectionState::Reconnecting, SOON));
        let started = Instant::now();
        let delivery = canceller
            .cancel("job", "sent while redis was down")
            .unwrap();
        let unknown = canceller
            .cancel("nobody's job", ReasonKind::Timeout)
            .unwrap();
        let took = started.elapsed();
        assert!(
            took < INSTANT,
            "cancel blocked for {took:?} with the server down"
        );
        assert_eq!(delivery.local(), 0);
        assert!(!delivery.is_delivered());
        assert_eq!(canceller.stats().pending(), 2);
        // Nothing can acknowledge it while the server is down.
        assert!(!delivery.wait_blocking_timeout(Duration::from_millis(200)));
        assert!(!token.is_triggered());

        redis.restart();
        assert!(
            delivery.wait_blocking_timeout(SOON),
            "the queued cancel was not delivered after the restart"
        );
        // The async form, on no runtime at all.
        futures_lite::future::block_on(unknown.delivered());
        assert!(unknown.is_delivered());
        assert!(
            token.wait_blocking_timeout(SOON),
            "the worker's token never triggered"
        );
        let reason = token.reason().unwrap();
        assert_eq!(reason.kind(), ReasonKind::Manual);
        assert_eq!(reason.message(), Some("sent while redis was down"));
        assert!(
            redis.exists(&record_key("job")),
            "the record was not written"
        );

        let stats = canceller.stats();
        assert_eq!(stats.pending(), 0);
        assert_eq!(stats.published(), 2);
        // The subscriptions come back on their own back-off, maybe after the commands.
        for registry in [&canceller, &worker] {
            assert!(registry.wait_state(ConnectionState::Connected, SOON));
            assert!(registry.stats().reconnects() >= 1);
        }
    });
    drop(server);
}

#[test]
fn a_worker_away_when_the_cancel_is_published_catches_it_from_the_record() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        // The worker waits 2 s before it tries again; the canceller, 50 ms.
        let worker = RedisRegistry::builder(&redis.url())
            .backoff(Duration::from_secs(2), Duration::from_secs(2))
            .connect()
            .unwrap();
        let canceller = RedisRegistry::connect(&redis.url()).unwrap();
        let (token, _registration) = worker.register("job").unwrap();
        redis.wait_subscribers(CHANNEL, 2, SOON);
        // The registration's record check is done: only the check after the reconnect can
        // find the record.
        redis.wait_calls("mget", 1, SOON);

        redis.kill();
        assert!(worker.wait_state(ConnectionState::Reconnecting, SOON));
        assert!(canceller.wait_state(ConnectionState::Reconnecting, SOON));
        redis.restart();
        assert!(canceller.wait_state(ConnectionState::Connected, SOON));

        let at_send = worker.state();
        let delivery = canceller
            .cancel("job", "published while you were away")
            .unwrap();
        assert_ne!(at_send, ConnectionState::Connected);
        assert!(delivery.wait_blocking_timeout(SOON));
        // The premise: the worker missed the message itself.
        assert_ne!(
            worker.state(),
            ConnectionState::Connected,
            "the worker came back before the cancel was published; the test proves nothing"
        );
        assert!(!token.is_triggered());

        assert!(
            token.wait_blocking_timeout(SOON),
            "the worker reconnected ({:?}) but did not find the record",
            worker.state()
        );
        assert_eq!(
            token.reason().unwrap().message(),
            Some("published while you were away")
        );
        // `record_hits` is counted before the trigger (`tests/redis_records.rs`).
        let stats = worker.stats();
        assert!(stats.reconnects() >= 1, "{stats:?}");
        assert_eq!(stats.record_hits(), 1, "{stats:?}");
        assert_eq!(
            stats.received(),
            0,
            "the message itself cannot have reached it"
        );
        assert_eq!(worker.state(), ConnectionState::Connected);
        // The entry leaves in the trigger's callback, on a timer firer thread.
        wait_until("the triggered job to leave the registry", SOON, || {
            worker.is_empty()
        });
    });
    drop(server);
}

/// A job that registers while the subscription is down queues no check of its own (the
/// queue would grow for as long as Redis is away): the check after the reconnect reads it.
#[test]
fn a_job_registered_while_disconnected_is_checked_after_the_reconnect() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let worker = RedisRegistry::builder(&redis.url())
            .backoff(Duration::from_secs(2), Duration::from_secs(2))
            .connect()
            .unwrap();
        let canceller = RedisRegistry::connect(&redis.url()).unwrap();
        redis.kill();
        assert!(worker.wait_state(ConnectionState::Reconnecting, SOON));
        let (tokens, _registrations): (Vec<_>, Vec<_>) = (0..100)
            .map(|i| worker.register(&format!("away {i}")).unwrap())
            .unzip();
        redis.restart();
        assert!(canceller.wait_state(ConnectionState::Connected, SOON));
        let deliveries: Vec<_> = (0..100)
            .step_by(2)
            .map(|i| {
                canceller
                    .cancel(&format!("away {i}"), "while away")
                    .unwrap()
            })
            .collect();
        for delivery in &deliveries {
            assert!(delivery.wait_blocking_timeout(SOON));
        }
        assert_ne!(
            worker.state(),
            ConnectionState::Connected,
            "the worker came back before the cancels; the test proves nothing"
        );
        for (i, token) in tokens.iter().enumerate() {
            if i % 2 == 0 {
                assert!(
                    token.wait_blocking_timeout(SOON),
                    "away {i} never triggered"
                );
                assert_eq!(token.reason().unwrap().message(), Some("while away"));
            }
        }
        assert_eq!(worker.stats().record_hits(), 50);
        assert_eq!(worker.stats().received(), 0);
        assert!(tokens
            .iter()
            .skip(1)
            .step_by(2)
            .all(|token| !token.is_triggered()));
        // The entries leave in the triggers' callbacks, on timer firer threads.
        wait_until("the triggered jobs to leave the registry", SOON, || {
            worker.len() == 50
        });
        assert_eq!(worker.stats().record_hits(), 50, "counted once each");
    });
    drop(server);
}

#[test]
fn register_and_cancel_never_block_while_redis_is_down() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let worker = RedisRegistry::connect(&redis.url()).unwrap();
        let canceller = RedisRegistry::connect(&redis.url()).unwrap();
        redis.kill();
        assert!(worker.wait_state(ConnectionState::Reconnecting, SOON));
        assert!(canceller.wait_state(ConnectionState::Reconnecting, SOON));

        let started = Instant::now();
        // Registered while the server is down: its record check waits for the reconnect.
        let (token, _registration) = worker.register("late").unwrap();
        let (local, _local_registration) = canceller.register("late").unwrap();
        let deliveries: Vec<_> = (0..100)
            .map(|i| canceller.cancel(&format!("job {i}"), "down").unwrap())
            .collect();
        let delivery = canceller.cancel("late", "queued while down").unwrap();
        let took = started.elapsed();
        assert!(
            took < INSTANT,
            "register/cancel blocked {took:?} while down"
        );
        // The token of this process does not wait for Redis.
        assert_eq!(delivery.local(), 1);
        assert!(local.is_triggered());
        assert_eq!(canceller.stats().pending(), 101);

        redis.restart();
        for delivery in deliveries.iter().chain([&delivery]) {
            assert!(delivery.wait_blocking_timeout(SOON));
        }
        // By pub/sub or by the record, whichever comes first after the worker is back.
        assert!(token.wait_blocking_timeout(SOON));
        assert_eq!(token.reason().unwrap().message(), Some("queued while down"));
        assert_eq!(canceller.stats().pending(), 0);
    });
    drop(server);
}

#[test]
fn a_server_that_stops_answering_is_noticed_by_the_heartbeat() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let (heartbeat, timeout) = (Duration::from_millis(200), Duration::from_millis(500));
        let registry = RedisRegistry::builder(&redis.url())
            .heartbeat(heartbeat)
            .connect_timeout(timeout)
            .connect()
            .unwrap();
        let (token, _registration) = registry.register("job").unwrap();
        // The server freezes with its connections open: only an unanswered PING tells.
        redis.pause();
        let frozen = Instant::now();
        assert!(
            registry.wait_state(ConnectionState::Reconnecting, SOON),
            "a frozen server still counts as connected {SOON:?} later (heartbeat 200 ms)"
        );
        // The builder's promise: about the heartbeat plus the connect timeout (and a read
        // poll of 100 ms).
        let unnoticed = frozen.elapsed();
        redis.resume();
        assert!(
            unnoticed < heartbeat + timeout + Duration::from_millis(300),
            "a frozen server went unnoticed for {unnoticed:?} (heartbeat {heartbeat:?}, \
             connect timeout {timeout:?})"
        );
        assert!(registry.wait_state(ConnectionState::Connected, SOON));
        redis.wait_subscribers(CHANNEL, 1, SOON);
        let canceller = RedisRegistry::connect(&redis.url()).unwrap();
        canceller.cancel("job", "thawed").unwrap();
        assert!(token.wait_blocking_timeout(SOON));
        assert!(registry.stats().reconnects() >= 1);
    });
    drop(server);
}

#[test]
fn reconnect_attempts_wait_at_least_the_minimum_back_off() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let min = Duration::from_secs(1);
        let registry = RedisRegistry::builder(&redis.url())
            .backoff(min, min)
            .connect()
            .unwrap();
        redis.kill();
        assert!(registry.wait_state(ConnectionState::Reconnecting, SOON));
        let broke = Instant::now();
        redis.restart();
        assert!(registry.wait_state(ConnectionState::Connected, SOON));
        let away = broke.elapsed();
        assert!(
            away >= min - Duration::from_millis(20),
            "reconnected {away:?} after the break, with backoff({min:?}, {min:?})"
        );
    });
    drop(server);
}
