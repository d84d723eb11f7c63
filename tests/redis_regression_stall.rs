//! Regression tests. The defect they caught (found in review, now fixed; the names and this text
//! say what went wrong): user callbacks run on the registry's two shared helper threads, so one slow
//! callback stalls every other cancel of the process (STYLE.md: "One shared thread that runs
//! user callbacks for everyone: a blocking callback stalls them all"), while `state()` keeps
//! saying `Connected`.

#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::sync::mpsc;
use std::time::Duration;

use cancel_token::redis::{ConnectionState, RedisRegistry};

use common::{within, LIMIT};
use support_redis::{record_key, RedisServer};

const SOON: Duration = Duration::from_secs(10);
/// Far more than the 50 ms the feature promises between processes.
const PATIENCE: Duration = Duration::from_secs(2);

#[test]
fn a_slow_callback_on_the_subscriber_thread_stalls_every_other_remote_cancel() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let worker = RedisRegistry::connect(&redis.url()).unwrap();
        let canceller = RedisRegistry::connect(&redis.url()).unwrap();
        let (slow, _slow_registration) = worker.register("slow").unwrap();
        let (fast, _fast_registration) = worker.register("fast").unwrap();
        let (entered_tx, entered) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        // A callback that takes a while (a flush, a lock, a log line to a slow disk).
        let _guard = slow.on_cancel(move |_| {
            let _ = entered_tx.send(());
            let _ = released.recv_timeout(Duration::from_secs(20));
        });
        redis.wait_subscribers(support_redis::CHANNEL, 2, SOON);
        assert!(canceller
            .cancel("slow", "one")
            .unwrap()
            .wait_blocking_timeout(SOON));
        entered.recv_timeout(SOON).unwrap();
        assert!(canceller
            .cancel("fast", "two")
            .unwrap()
            .wait_blocking_timeout(SOON));
        let reached = fast.wait_blocking_timeout(PATIENCE);
        let state = worker.state();
        release.send(()).unwrap();
        assert!(
            reached,
            "another job's cancel did not arrive within {PATIENCE:?} while one callback ran \
             (state said {state:?})"
        );
    });
    drop(server);
}

#[test]
fn a_slow_callback_on_the_command_thread_stalls_every_cancel_of_the_process() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let worker = RedisRegistry::connect(&redis.url()).unwrap();
        let other = RedisRegistry::connect(&redis.url()).unwrap();
        let (remote, _remote_registration) = other.register("elsewhere").unwrap();
        let mut raw = redis.connection();
        let _: () = redis::cmd("SET")
            .arg(record_key("slow"))
            .arg("manual -")
            .query(&mut raw)
            .unwrap();
        let (entered_tx, entered) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let (slow, _slow_registration) = worker.register("slow").unwrap();
        let _guard = slow.on_cancel(move |_| {
            let _ = entered_tx.send(());
            let _ = released.recv_timeout(Duration::from_secs(20));
        });
        entered.recv_timeout(SOON).unwrap();
        // The record hit's callback runs on the command thread: nothing this process cancels
        // leaves it meanwhile.
        let delivery = worker.cancel("elsewhere", "stop").unwrap();
        let delivered = delivery.wait_blocking_timeout(PATIENCE);
        let reached = remote.wait_blocking_timeout(PATIENCE);
        let state = worker.state();
        release.send(()).unwrap();
        assert!(
            delivered && reached,
            "a cancel of an unrelated job was not sent within {PATIENCE:?} while one callback \
             ran: delivered {delivered}, remote token triggered {reached}, state {state:?}"
        );
        assert_eq!(state, ConnectionState::Connected);
    });
    drop(server);
}

/// The same trap, smaller: a callback that cancels a sub-job and waits for the delivery
/// (as `Delivery::wait_blocking_timeout` invites) always times out when the callback happens
/// to run on the command thread (a record hit), and works when it runs on the subscriber
/// thread (a message).
#[test]
fn waiting_for_a_delivery_inside_a_callback_deadlocks_on_the_command_thread() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let worker = RedisRegistry::connect(&redis.url()).unwrap();
        let mut raw = redis.connection();
        let _: () = redis::cmd("SET")
            .arg(record_key("parent"))
            .arg("manual -")
            .query(&mut raw)
            .unwrap();
        let (done_tx, done) = mpsc::channel();
        let handle = worker.clone();
        let (parent, _registration) = worker.register("parent").unwrap();
        let _guard = parent.on_cancel(move |_| {
            let delivered = handle
                .cancel("parent/child", "parent cancelled")
                .unwrap()
                .wait_blocking_timeout(PATIENCE);
            let _ = done_tx.send(delivered);
        });
        let delivered = done.recv_timeout(SOON).unwrap();
        assert!(
            delivered,
            "the sub-job's cancel was not delivered within {PATIENCE:?}: the callback waited \
             on the thread that sends it"
        );
    });
    drop(server);
}
