//! Regression tests. The defect they caught (found in review, now fixed; this text says what
//! went wrong): A check Redis refuses (no permission to read the records) makes every round fail, so the
//! command thread backs off further and further and every other cancel waits for it.
#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::time::{Duration, Instant};

use cancel_token::redis::RedisRegistry;
use common::{within, LIMIT};
use support_redis::RedisServer;

#[test]
fn a_refused_check_delays_every_later_cancel() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let url = redis.acl_user("nomget", &["~*", "-mget"]);
        let registry = RedisRegistry::connect(&url).unwrap(); // default back-off 50 ms .. 5 s
        let (_t, _r) = registry.register("someone").unwrap();
        std::thread::sleep(Duration::from_secs(4));
        let errors_before = registry.stats().errors();
        let started = Instant::now();
        let delivery = registry.cancel("other", "go").unwrap();
        assert!(delivery.wait_blocking_timeout(Duration::from_secs(20)));
        let took = started.elapsed();
        eprintln!("errors so far: {errors_before}; cancel delivered after {took:?}");
        assert!(
            took < Duration::from_millis(500),
            "a cancel Redis accepts waited {took:?} behind a refused check ({errors_before} failed rounds)"
        );
    });
}
