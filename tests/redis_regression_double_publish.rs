//! Regression tests. The defect they caught (found in review, now fixed; this text says what
//! went wrong): A batch where Redis refuses one cancel's record is sent again one at a time, so every
//! other cancel of that batch, already written and published, is published a second time.
#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::time::{Duration, Instant};

use cancel_token::redis::RedisRegistry;
use common::{within, LIMIT};
use support_redis::{RedisServer, CHANNEL};

#[test]
fn an_accepted_cancel_in_a_refused_batch_is_published_twice() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let url = redis.acl_user("limited", &["~cancel-token:cancelled:ok*"]);
        let canceller = RedisRegistry::builder(&url)
            .backoff(Duration::from_millis(200), Duration::from_millis(400))
            .connect()
            .unwrap();
        // Listener on the channel.
        let mut con = redis.connection();
        let mut pubsub = con.as_pubsub();
        pubsub.subscribe(CHANNEL).unwrap();
        pubsub
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        // A check this user may not read keeps the command thread in back-off, so the next
        // two cancels are taken together as one fresh batch.
        let (_t, _r) = canceller.register("zzz").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let ok = canceller.cancel("ok", "fine").unwrap();
        let _bad = canceller.cancel("bad", "refused").unwrap();
        assert!(ok.wait_blocking_timeout(Duration::from_secs(10)));
        let mut ok_messages = 0;
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            if let Ok(msg) = pubsub.get_message() {
                let payload: String = msg.get_payload().unwrap();
                if payload.starts_with("v1 ok ") {
                    ok_messages += 1;
                }
            }
        }
        assert_eq!(
            ok_messages, 1,
            "the cancel of \"ok\" was published {ok_messages} times"
        );
    });
}
