//! `RedisRegistry`'s start and its local side: connecting fails fast and cleanly (nothing
//! listening, an address that never answers, a frozen server, a bad URL); a parent token
//! cancels every job; ids are checked; local tokens trigger at once. Stopping a registry is
//! `tests/redis_close.rs`'s.

#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::time::{Duration, Instant};

use cancel_token::redis::{
    Builder, ConnectError, ConnectionState, Delivery, IdError, RedisRegistry, Stats,
};
use cancel_token::{CancelToken, ReasonKind};

use common::{within, LIMIT};
use support_redis::{free_port, RedisServer};

/// The bound on things that take milliseconds.
const SOON: Duration = Duration::from_secs(10);

fn is_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}

#[test]
fn the_types_are_shareable_and_debuggable() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<RedisRegistry>();
    send_sync::<Delivery>();
    send_sync::<Stats>();
    send_sync::<ConnectError>();
    send_sync::<IdError>();
    fn debug<T: std::fmt::Debug>() {}
    debug::<RedisRegistry>();
    debug::<Builder>();
    debug::<Delivery>();
    debug::<Stats>();
    debug::<ConnectionState>();
    // Small error types are `Clone` (STYLE.md, habit 15), like the crate's other errors.
    fn clone<T: Clone>() {}
    clone::<IdError>();
    clone::<ConnectError>();
}

#[test]
fn connecting_to_a_port_where_nothing_listens_fails_within_the_timeout() {
    within(LIMIT, || {
        let url = format!("redis://127.0.0.1:{}/", free_port());
        let started = Instant::now();
        let err = RedisRegistry::connect(&url).expect_err("nothing listens there");
        let took = started.elapsed();
        // The default connect_timeout is 5 s.
        assert!(took < Duration::from_secs(6), "connect took {took:?}");
        is_error(&err);
        assert!(!err.to_string().is_empty());
        assert!(!err.to_string().ends_with('.'), "{err}");

        let started = Instant::now();
        let result = RedisRegistry::builder(&url)
            .connect_timeout(Duration::from_millis(300))
            .connect();
        assert!(result.is_err());
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1_300), "connect took {took:?}");
    });
}

#[test]
fn connecting_to_an_address_that_never_answers_times_out() {
    within(LIMIT, || {
        let started = Instant::now();
        let result = RedisRegistry::builder("redis://10.255.255.1:6379/")
            .connect_timeout(Duration::from_millis(300))
            .connect();
        let took = started.elapsed();
        let err = result.expect_err("10.255.255.1 is not routable");
        assert!(
            took < Duration::from_millis(1_300),
            "connect took {took:?} with connect_timeout 300 ms: {err}"
        );
    });
}

#[test]
fn connecting_to_a_frozen_server_gives_up_within_the_timeout() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        // The kernel still accepts connections for it; nothing answers.
        redis.pause();
        let timeout = Duration::from_millis(300);
        let started = Instant::now();
        let result = RedisRegistry::builder(&redis.url())
            .connect_timeout(timeout)
            .connect();
        let took = started.elapsed();
        redis.resume();
        let err = result.expect_err("a frozen server cannot be subscribed to");
        assert!(
            took < timeout + Duration::from_millis(300),
            "connect took {took:?} with connect_timeout {timeout:?}: {err}"
        );
    });
    drop(server);
}

#[test]
fn a_bad_url_is_an_error() {
    within(LIMIT, || {
        for url in [
            "",
            "not a url",
            "http://127.0.0.1:6379/",
            "redis://127.0.0.1:notaport/",
        ] {
            let started = Instant::now();
            let result = RedisRegistry::connect(url);
            assert!(result.is_err(), "{url:?} was accepted");
            assert!(started.elapsed() < Duration::from_secs(6), "{url:?}");
        }
    });
}

#[test]
fn a_parent_token_cancels_every_job() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let shutdown = CancelToken::named("shutdown");
        let registry = RedisRegistry::builder(&redis.url())
            .parent(&shutdown)
            .connect()
            .unwrap();
        let jobs: Vec<_> = (0..5)
            .map(|i| registry.register(&format!("job {i}")).unwrap())
            .collect();
        assert_eq!(registry.len(), 5);
        shutdown.trigger_with("shutting down");
        for (token, _registration) in &jobs {
            assert!(token.is_triggered());
            assert_eq!(token.reason().unwrap().message(), Some("shutting down"));
            assert_eq!(token.triggered_token(), Some(shutdown.clone()));
        }
        assert!(registry.is_empty());
        // A job that registers afterwards is born cancelled.
        let (late, _registration) = registry.register("late").unwrap();
        assert!(late.is_triggered());
        // The parent does not cancel anything on other processes.
        assert_eq!(registry.stats().published(), 0);
    });
    drop(server);
}

#[test]
fn ids_must_be_between_1_and_1024_bytes() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let registry = RedisRegistry::connect(&redis.url()).unwrap();
        let longest = "é".repeat(512);
        assert_eq!(longest.len(), 1024);
        let too_long = format!("{longest}x");

        for id in ["", too_long.as_str()] {
            let err = registry.register(id).expect_err("a bad id");
            is_error(&err);
            assert!(!err.to_string().is_empty() && !err.to_string().ends_with('.'));
            let err = registry.cancel(id, "no").expect_err("a bad id");
            assert!(!format!("{err:?}").is_empty());
        }
        assert!(registry.is_empty());
        assert_eq!(registry.stats().pending(), 0);
        assert_eq!(registry.stats().published(), 0);

        let (token, _registration) = registry.register(&longest).unwrap();
        let delivery = registry.cancel(&longest, ReasonKind::Condition).unwrap();
        assert_eq!(delivery.local(), 1);
        assert!(token.is_triggered());
        assert!(delivery.wait_blocking_timeout(SOON));
    });
    drop(server);
}

#[test]
fn local_tokens_trigger_before_cancel_returns() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let registry = RedisRegistry::connect(&redis.url()).unwrap();
        let (first, first_registration) = registry.register("job").unwrap();
        let (second, _second_registration) = registry.register("job").unwrap();
        let (other, _other_registration) = registry.register("other job").unwrap();
        assert_eq!(registry.len(), 3);
        drop(first_registration);
        assert_eq!(registry.len(), 2);

        let delivery = registry.cancel("job", "stop").unwrap();
        // The first job ended before the cancel: only the second is triggered.
        assert_eq!(delivery.local(), 1);
        assert!(!first.is_triggered());
        assert!(second.is_triggered());
        assert!(!other.is_triggered());
        assert_eq!(registry.len(), 1);

        let unknown = registry.cancel("nobody", "stop").unwrap();
        assert_eq!(unknown.local(), 0);
        assert!(delivery.wait_blocking_timeout(SOON));
        assert!(unknown.wait_blocking_timeout(SOON));
        assert!(!other.is_triggered());
        assert!(!format!("{delivery:?}").is_empty());
    });
    drop(server);
}
