//! Stopping a `RedisRegistry`: dropping or closing it stops its helper threads and releases its
//! connections, promptly even while it waits to reconnect or while the server is frozen; a
//! cancel queued just before `close` still goes out, one that cannot is abandoned; the other
//! handles of a closed registry say so.

#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::thread;
use std::time::{Duration, Instant};

use cancel_token::redis::{ConnectionState, RedisRegistry};

use common::{wait_until, within, LIMIT};
use support_redis::{RedisServer, CHANNEL};

/// The bound on things that take milliseconds.
const SOON: Duration = Duration::from_secs(10);
/// How soon the helper threads of a dropped or closed registry must be gone (they exit
/// within about 200 ms).
const THREADS_GONE: Duration = Duration::from_secs(1);

#[test]
fn dropping_a_registry_releases_its_connections() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let base = redis.connected_clients();
        let registry = RedisRegistry::connect(&redis.url()).unwrap();
        let delivery = registry
            .cancel("job", "open the publishing side too")
            .unwrap();
        assert!(delivery.wait_blocking_timeout(SOON));
        let open = redis.connected_clients() - base;
        assert!(
            (1..=2).contains(&open),
            "{open} connections for one registry"
        );

        drop(registry);
        wait_until(
            "the dropped registry's connections to close",
            THREADS_GONE,
            || redis.connected_clients() == base,
        );
    });
    drop(server);
}

#[test]
fn close_joins_the_helper_threads_promptly() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let base = redis.connected_clients();
        let registry = RedisRegistry::connect(&redis.url()).unwrap();
        let (token, _registration) = registry.register("job").unwrap();
        assert!(registry
            .cancel("other", "busy")
            .unwrap()
            .wait_blocking_timeout(SOON));
        let started = Instant::now();
        registry.close();
        let took = started.elapsed();
        assert!(took < THREADS_GONE, "close took {took:?}");
        // The threads are joined: their sockets are closed already.
        wait_until(
            "the closed registry's connections to close",
            THREADS_GONE,
            || redis.connected_clients() == base,
        );
        assert_eq!(redis.subscribers(CHANNEL), 0);
        // Closing neither triggers nor poisons the tokens it gave out.
        assert!(!token.is_triggered());
    });
    drop(server);
}

#[test]
fn close_and_drop_do_not_wait_out_a_reconnect_back_off() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let slow = |url: &str| {
            RedisRegistry::builder(url)
                .backoff(Duration::from_secs(30), Duration::from_secs(30))
                .connect()
                .unwrap()
        };
        let closed = slow(&redis.url());
        let dropped = slow(&redis.url());
        // A cancel waits in the queue too.
        let pending = dropped.cancel("job", "never sent").unwrap();
        redis.kill();
        assert!(closed.wait_state(ConnectionState::Reconnecting, SOON));
        assert!(dropped.wait_state(ConnectionState::Reconnecting, SOON));

        let started = Instant::now();
        closed.close();
        let took = started.elapsed();
        assert!(
            took < THREADS_GONE,
            "close took {took:?} during a 30 s back-off"
        );
        drop(dropped);
        assert!(started.elapsed() < THREADS_GONE);
        assert!(!pending.is_delivered());
    });
    drop(server);
}

#[test]
fn a_dropped_registry_does_not_come_back_when_the_server_does() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let base = redis.connected_clients();
        let registry = RedisRegistry::builder(&redis.url())
            .backoff(Duration::from_millis(50), Duration::from_millis(50))
            .connect()
            .unwrap();
        redis.kill();
        assert!(registry.wait_state(ConnectionState::Reconnecting, SOON));
        drop(registry);
        redis.restart();
        // A live registry would be back within about 50 ms.
        thread::sleep(Duration::from_millis(500));
        assert_eq!(redis.connected_clients(), base);
        assert_eq!(redis.subscribers(CHANNEL), 0);
    });
    drop(server);
}

#[test]
fn a_cancel_queued_just_before_close_still_goes_out() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let worker = RedisRegistry::connect(&redis.url()).unwrap();
        let (token, _registration) = worker.register("job").unwrap();
        let closing = RedisRegistry::connect(&redis.url()).unwrap();
        redis.wait_subscribers(CHANNEL, 2, SOON);
        let delivery = closing.cancel("job", "last words").unwrap();
        closing.close();
        assert!(delivery.is_delivered(), "{delivery:?}");
        assert!(token.wait_blocking_timeout(SOON));
        assert_eq!(token.reason().unwrap().message(), Some("last words"));
    });
    drop(server);
}

#[test]
fn the_other_handles_of_a_closed_registry_see_it_closed() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let registry = RedisRegistry::connect(&redis.url()).unwrap();
        let other = registry.clone();
        let (before, _before_registration) = other.register("before").unwrap();
        registry.close();
        assert_eq!(other.state(), ConnectionState::Closed);
        assert!(other.wait_state(ConnectionState::Closed, Duration::ZERO));
        assert_eq!(redis.subscribers(CHANNEL), 0);

        // Tokens keep working in this process; nothing goes to Redis any more.
        let (token, _registration) = other.register("after").unwrap();
        let started = Instant::now();
        let delivery = other.cancel("after", "closed").unwrap();
        assert_eq!(delivery.local(), 1);
        assert!(token.is_triggered());
        assert!(delivery.is_abandoned());
        assert!(!delivery.wait_blocking_timeout(SOON));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(other.stats().pending(), 0);
        assert!(!before.is_triggered());
        assert!(!redis.exists("cancel-token:cancelled:after"));
    });
    drop(server);
}

#[test]
fn close_abandons_at_once_the_cancels_that_cannot_reach_a_dead_server() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let registry = RedisRegistry::connect(&redis.url()).unwrap();
        redis.kill();
        assert!(registry.wait_state(ConnectionState::Reconnecting, SOON));
        let deliveries: Vec<_> = (0..10)
            .map(|i| registry.cancel(&format!("job {i}"), "lost").unwrap())
            .collect();
        let other = registry.clone();
        let started = Instant::now();
        registry.close();
        let took = started.elapsed();
        assert!(took < THREADS_GONE, "close took {took:?}");
        for delivery in &deliveries {
            assert!(delivery.is_abandoned() && !delivery.is_delivered());
        }
        assert_eq!(other.stats().pending(), 0);
        assert_eq!(other.stats().published(), 0);
    });
    drop(server);
}

#[test]
fn close_waits_no_longer_than_the_connect_timeout_while_a_heartbeat_waits_on_a_frozen_server() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        // A 1 s heartbeat; its PING waits for an answer up to the connect timeout, and so
        // may `close` (documented): no longer, and not twice (PING, then UNSUBSCRIBE).
        let timeout = Duration::from_secs(2);
        let registry = RedisRegistry::builder(&redis.url())
            .connect_timeout(timeout)
            .connect()
            .unwrap();
        redis.pause();
        // No state tells that the PING is out; after the heartbeat, it is.
        thread::sleep(Duration::from_millis(1_300));
        let started = Instant::now();
        registry.close();
        let took = started.elapsed();
        redis.resume();
        assert!(
            took < timeout + Duration::from_millis(500),
            "close took {took:?}: more than the PING's wait for the frozen server's answer"
        );
    });
    drop(server);
}
