//! Redis answering a cancel with an error (here out of memory under `noeviction`): the batch
//! is tried a few times, then given up with a delivery that says why, so that later cancels
//! are not stuck behind it; the message itself still goes out, since a pipeline runs on past
//! an error.

#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::time::Duration;

use cancel_token::redis::RedisRegistry;

use common::{within, LIMIT};
use support_redis::RedisServer;

/// The bound on things that take milliseconds (here a few back-off pauses too).
const SOON: Duration = Duration::from_secs(10);

fn config_set(redis: &RedisServer, name: &str, value: &str) {
    let mut con = redis.connection();
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(&mut con)
        .unwrap();
}

#[test]
fn a_cancel_redis_keeps_refusing_is_abandoned_and_blocks_no_later_one() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let worker = RedisRegistry::connect(&redis.url()).unwrap();
        let canceller = RedisRegistry::builder(&redis.url())
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
            .connect()
            .unwrap();
        let (refused_token, _refused) = worker.register("refused").unwrap();
        let (later_token, _later) = worker.register("later").unwrap();

        config_set(&redis, "maxmemory-policy", "noeviction");
        config_set(&redis, "maxmemory", "1");
        let refused = canceller.cancel("refused", "no room").unwrap();
        assert!(
            !refused.wait_blocking_timeout(SOON),
            "Redis could not write it"
        );
        assert!(refused.is_abandoned() && !refused.is_delivered());
        let failure = refused.failure().unwrap();
        assert!(
            failure.starts_with("Redis refused the cancel's record (OOM")
                && failure.ends_with("its message went out"),
            "{failure}"
        );
        assert!(canceller.stats().errors() >= 3);
        assert_eq!(canceller.stats().pending(), 0);
        // The message went out though the record did not.
        assert!(refused_token.wait_blocking_timeout(SOON));

        config_set(&redis, "maxmemory", "0");
        let later = canceller.cancel("later", "room again").unwrap();
        assert!(later.wait_blocking_timeout(SOON), "{later:?}");
        assert!(later_token.wait_blocking_timeout(SOON));
        assert!(redis.exists(&support_redis::record_key("later")));
        assert!(!redis.exists(&support_redis::record_key("refused")));
    });
    drop(server);
}
