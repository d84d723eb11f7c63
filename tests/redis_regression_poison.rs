//! Regression tests. The defect they caught (found in review, now fixed; the names and this text
//! say what went wrong): a batch Redis answers with an error is sent again whole, then given up whole after
//! three answers (commit 9b66f9f). Everything that joined the batch meanwhile goes with it:
//! other cancels Redis would have taken, and the record checks of registrations (`Check`,
//! `CheckAll`), which are dropped silently (reads Redis would answer), so a cancel whose
//! record is on the server is never honoured. The refused messages are published once per
//! try, and `state()` says `Connected` throughout.

#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::thread;
use std::time::Duration;

use cancel_token::redis::RedisRegistry;

use common::{within, LIMIT};
use support_redis::{record_key, RedisServer, CHANNEL};

const SOON: Duration = Duration::from_secs(10);
const PATIENCE: Duration = Duration::from_secs(3);

#[test]
fn record_ttl_duration_max_makes_every_cancel_fail_and_drops_record_checks() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let mut raw = redis.connection();
        let _: () = redis::cmd("SET")
            .arg(record_key("old"))
            .arg("manual -")
            .query(&mut raw)
            .unwrap();
        let listener = RedisRegistry::connect(&redis.url()).unwrap();
        // "Keep records forever": accepted by the builder without a word.
        let registry = RedisRegistry::builder(&redis.url())
            .record_ttl(Duration::MAX)
            .backoff(Duration::from_millis(50), Duration::from_millis(200))
            .connect()
            .unwrap();
        redis.wait_subscribers(CHANNEL, 2, SOON);
        let delivery = registry.cancel("job", "stop").unwrap();
        // A registration after it: its record exists, MGET would find it.
        let (old, _registration) = registry.register("old").unwrap();
        let delivered = delivery.wait_blocking_timeout(PATIENCE);
        let checked = old.wait_blocking_timeout(PATIENCE);
        thread::sleep(Duration::from_millis(500));
        let (stats, heard, state) = (
            registry.stats(),
            listener.stats().received(),
            registry.state(),
        );
        assert!(
            delivered && checked,
            "record_ttl(Duration::MAX) accepted by the builder; delivered {delivered} \
             (failure {:?}); a registration's record (on the server) checked {checked}; one \
             cancel heard {heard} times by another registry; state {state:?}; stats {stats:?}",
            delivery.failure()
        );
    });
    drop(server);
}

#[test]
fn a_server_turned_read_only_replica_drops_record_checks_and_repeats_publishes() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let mut raw = redis.connection();
        let _: () = redis::cmd("SET")
            .arg(record_key("old"))
            .arg("manual -")
            .query(&mut raw)
            .unwrap();
        let listener = RedisRegistry::connect(&redis.url()).unwrap();
        let registry = RedisRegistry::builder(&redis.url())
            .backoff(Duration::from_millis(50), Duration::from_millis(200))
            .connect()
            .unwrap();
        redis.wait_subscribers(CHANNEL, 2, SOON);
        // A failover demotes the server: writes answer READONLY, reads, PUBLISH and SUBSCRIBE
        // still work (replica-serve-stale-data yes, the default).
        let _: () = redis::cmd("REPLICAOF")
            .arg("127.0.0.1")
            .arg("1")
            .query(&mut raw)
            .unwrap();
        let delivery = registry.cancel("job", "stop").unwrap();
        let (old, _registration) = registry.register("old").unwrap();
        let checked = old.wait_blocking_timeout(PATIENCE);
        let (stats, heard, state) = (
            registry.stats(),
            listener.stats().received(),
            registry.state(),
        );
        let _: () = redis::cmd("REPLICAOF")
            .arg("NO")
            .arg("ONE")
            .query(&mut raw)
            .unwrap();
        // Writable again: the dropped check is never made again.
        let checked = checked || old.wait_blocking_timeout(PATIENCE);
        assert!(
            checked && heard <= 1,
            "a registration's record (readable all along) checked: {checked}; one cancel heard \
             {heard} times by another registry; delivery {delivery:?} ({:?}); state \
             {state:?}; stats {stats:?}",
            delivery.failure()
        );
    });
    drop(server);
}

/// One cancel Redis refuses (here an ACL that allows the records of some ids only) takes the
/// cancels queued behind it down with it: they join its batch while it is retried, and are
/// abandoned with it, though Redis takes each of them alone.
#[test]
fn a_refused_cancel_takes_the_innocent_cancels_of_its_batch_down_with_it() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let url = redis.acl_user("tenant", &["~cancel-token:cancelled:ok-*"]);
        let registry = RedisRegistry::connect(&url).unwrap();
        let alone = registry.cancel("ok-alone", "fine").unwrap();
        assert!(
            alone.wait_blocking_timeout(SOON),
            "Redis takes an ok-* cancel: {alone:?}"
        );

        let refused = registry.cancel("forbidden", "not allowed").unwrap();
        let innocent: Vec<_> = (0..5)
            .map(|i| registry.cancel(&format!("ok-{i}"), "fine").unwrap())
            .collect();
        for delivery in &innocent {
            delivery.wait_blocking_timeout(SOON);
        }
        let lost: Vec<_> = innocent
            .iter()
            .enumerate()
            .filter(|(_, delivery)| !delivery.is_delivered())
            .map(|(i, delivery)| format!("ok-{i}: {:?}", delivery.failure()))
            .collect();
        assert!(
            lost.is_empty(),
            "the refused cancel ({:?}) took {} innocent ones down: {lost:?}",
            refused.failure(),
            lost.len()
        );
    });
    drop(server);
}
