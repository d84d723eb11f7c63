//! Regression tests. The defect they caught (found in review, now fixed; the names and this text
//! say what went wrong): settings the builder accepts without a word that make a helper thread panic
//! (`Instant` overflow, `Duration` overflow): a "no timeout" `connect_timeout(Duration::MAX)`
//! and a huge back-off. STYLE.md: an `Instant` overflow means "never", not a panic; the crate
//! never panics on bad input.

#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::time::Duration;

use cancel_token::redis::{ConnectionState, RedisRegistry};

use common::{within, LIMIT};
use support_redis::RedisServer;

#[test]
fn connect_timeout_duration_max_connects_to_a_live_server() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let outcome = RedisRegistry::builder(&redis.url())
            .connect_timeout(Duration::MAX)
            .connect();
        assert!(
            outcome.is_ok(),
            "a live server, and: {}",
            outcome.unwrap_err()
        );
    });
    drop(server);
}

#[test]
fn a_huge_back_off_does_not_kill_the_helper_threads() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let registry = RedisRegistry::builder(&redis.url())
            .backoff(Duration::MAX, Duration::MAX)
            .connect()
            .unwrap();
        let observer = registry.clone();
        redis.kill();
        assert!(registry.wait_state(ConnectionState::Reconnecting, Duration::from_secs(10)));
        // The subscriber thread computes its pause now; close must find it alive and stop it.
        std::thread::sleep(Duration::from_millis(300));
        registry.close();
        assert_eq!(
            observer.state(),
            ConnectionState::Closed,
            "the subscriber thread died before it could say Closed"
        );
    });
    drop(server);
}
