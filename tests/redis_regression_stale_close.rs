//! Regression tests. The defect they caught (found in review, now fixed; the names and this text
//! say what went wrong): the command thread finds out that its connection died (killed by the server, a
//! restart, Redis's idle `timeout`, which spares pub/sub clients) only by failing a batch on
//! it. A cancel queued just before `close` gets its "one last try" on that dead connection and
//! is abandoned although Redis is up; in normal running the first cancel after the connection
//! died pays a failed round trip and a back-off pause.

#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use cancel_token::redis::{ConnectionState, RedisRegistry};

use common::{within, LIMIT};
use support_redis::{record_key, RedisServer};

const SOON: Duration = Duration::from_secs(10);

#[test]
fn a_cancel_queued_before_close_is_abandoned_on_a_stale_command_connection() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let registry = RedisRegistry::connect(&redis.url()).unwrap();
        let observer = registry.clone();

        // Hold the command thread in a callback (a record hit) so that the stop is seen
        // before the cancel is taken: deterministic, the same as a close right after cancel.
        let mut raw = redis.connection();
        let _: () = redis::cmd("SET")
            .arg(record_key("blocker"))
            .arg("manual -")
            .query(&mut raw)
            .unwrap();
        let (entered_tx, entered) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let (token, _registration) = registry.register("blocker").unwrap();
        let _guard = token.on_cancel(move |_| {
            let _ = entered_tx.send(());
            let _ = released.recv_timeout(Duration::from_secs(50));
        });
        entered
            .recv_timeout(SOON)
            .expect("the record hit's callback runs");

        // The command connection dies (CLIENT KILL; a restart or an idle timeout does the
        // same); the subscription (type pubsub) is untouched and Redis stays up.
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .query(&mut raw)
            .unwrap();
        assert_eq!(killed, 1, "the registry's command connection");

        let delivery = registry.cancel("job", "shutting down").unwrap();
        let closing = thread::spawn(move || registry.close());
        assert!(observer.wait_state(ConnectionState::Closed, SOON));
        let _ = release.send(());
        closing.join().unwrap();

        let pong: String = redis::cmd("PING").query(&mut raw).unwrap();
        assert_eq!(pong, "PONG", "Redis is up");
        assert!(
            delivery.is_delivered() && redis.exists(&record_key("job")),
            "Redis is up, yet the queued cancel was {delivery:?}; record written: {}; stats: {:?}",
            redis.exists(&record_key("job")),
            observer.stats()
        );
    });
    drop(server);
}

/// The same without any callback: `cancel` then `close` right away, as a service does on
/// shutdown, after its command connection went stale. Counts the rounds that lost the cancel.
#[test]
fn cancel_then_close_after_the_command_connection_went_stale_loses_the_cancel() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let mut raw = redis.connection();
        let rounds = 20;
        let mut lost = Vec::new();
        for round in 0..rounds {
            let registry = RedisRegistry::connect(&redis.url()).unwrap();
            let _: i64 = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("normal")
                .arg("SKIPME")
                .arg("yes")
                .query(&mut raw)
                .unwrap();
            thread::sleep(Duration::from_millis(20));
            let id = format!("job-{round}");
            let delivery = registry.cancel(&id, "shutting down").unwrap();
            registry.close();
            if !delivery.is_delivered() || !redis.exists(&record_key(&id)) {
                lost.push(round);
            }
        }
        assert!(
            lost.is_empty(),
            "Redis was up all along, yet {} of {rounds} cancels made just before close were \
             abandoned (rounds {lost:?})",
            lost.len()
        );
    });
    drop(server);
}

/// Redis's `timeout` setting closes idle normal clients (pub/sub ones are spared): the first
/// cancel after an idle period fails once and waits out the back-off before it goes out.
#[test]
fn the_first_cancel_after_redis_closed_the_idle_command_connection_waits_out_a_back_off() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let mut raw = redis.connection();
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("timeout")
            .arg("1")
            .query(&mut raw)
            .unwrap();
        let registry = RedisRegistry::connect(&redis.url()).unwrap();
        // Idle for longer than the server's timeout (its cron checks a few times a second).
        thread::sleep(Duration::from_millis(2_500));
        let before = registry.stats().errors();
        let started = std::time::Instant::now();
        let delivery = registry.cancel("job", "after a quiet spell").unwrap();
        assert!(delivery.wait_blocking_timeout(Duration::from_secs(10)));
        let took = started.elapsed();
        let errors = registry.stats().errors() - before;
        assert!(
            took < Duration::from_millis(50) && errors == 0,
            "the first cancel after an idle spell took {took:?} to reach a healthy Redis, \
             with {errors} failed round trip(s)"
        );
    });
    drop(server);
}
