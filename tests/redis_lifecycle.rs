//! `RedisRegistry`'s life: connecting fails fast and cleanly (nothing listening, an address
//! that never answers, a bad URL); dropping or closing a registry stops its helper threads and
//! releases its connections, even while it waits to reconnect; a parent token cancels every
//! job; ids are checked; local tokens trigger at once.

#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::thread;
use std::time::{Duration, Instant};

use cancel_token::redis::{
    Builder, ConnectError, ConnectionState, Delivery, IdError, RedisRegistry, Stats,
};
use cancel_token::{CancelToken, ReasonKind};

use common::{wait_until, within, LIMIT};
use support_redis::{free_port, RedisServer, CHANNEL};

/// The bound on things that take milliseconds.
const SOON: Duration = Duration::from_secs(10);
/// How soon the helper threads of a dropped or closed registry must be gone (they exit
/// within about 200 ms).
const THREADS_GONE: Duration = Duration::from_secs(1);

fn is_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}

/// Whether `T` is `Clone`, found at run time so that a missing impl fails one test instead of
/// the build of the whole file (method resolution prefers the impl on `Probe<T>` when it
/// applies, and falls back to the one on `&Probe<T>`).
struct Probe<T>(std::marker::PhantomData<T>);
trait Cloneable {
    fn is_clone(&self) -> bool {
        true
    }
}
impl<T: Clone> Cloneable for Probe<T> {}
trait NotCloneable {
    fn is_clone(&self) -> bool {
        false
    }
}
impl<T> NotCloneable for &Probe<T> {}

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
    assert!((&Probe::<IdError>(std::marker::PhantomData)).is_clone());
    assert!(
        (&Probe::<ConnectError>(std::marker::PhantomData)).is_clone(),
        "ConnectError is not Clone"
    );
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
