//! Loom models of the Redis registry's mailbox: the queue between callers and the command
//! thread, and the stop flag both helper threads obey (`src/redis/mailbox.rs`).
//!
//! Run with `RUSTFLAGS="--cfg cancel_token_loom" LOOM_MAX_PREEMPTIONS=6 cargo test --release
//! --features redis --test loom_redis` (`.ci/run` does). Loom's condvar never times out, so a
//! lost notification shows as a deadlock, even for the timed waits of a back-off pause.
#![cfg(all(cancel_token_loom, feature = "redis"))]

mod support_loom;

use std::sync::Arc;
use std::time::Duration;

use cancel_token::redis::__loom_mailbox::Mailbox;
use loom::thread;
use support_loom::model;

/// A job pushed while the command thread waits for work wakes it: never stranded.
#[test]
fn a_job_pushed_while_the_thread_waits_is_taken() {
    model(|| {
        let mailbox = Arc::new(Mailbox::new());
        let consumer = thread::spawn({
            let mailbox = Arc::clone(&mailbox);
            move || {
                let mut got = Vec::new();
                while got.len() < 2 {
                    let mut batch = Vec::new();
                    assert!(!mailbox.take(&mut batch, 8), "never stopped");
                    assert!(!batch.is_empty(), "it waits for a job");
                    got.extend(batch);
                }
                got
            }
        });
        assert!(mailbox.push(1));
        assert!(mailbox.push(2));
        assert_eq!(consumer.join().unwrap(), vec![1, 2], "in order, each once");
    });
}

/// A push racing `stop` is either refused or handed out by the stopping thread's drain: an
/// accepted cancel is never left unsent and undelivered.
#[test]
fn every_push_accepted_before_the_stop_is_handed_out() {
    model(|| {
        let mailbox = Arc::new(Mailbox::new());
        let consumer = thread::spawn({
            let mailbox = Arc::clone(&mailbox);
            move || {
                let mut got = Vec::new();
                loop {
                    let mut batch = Vec::new();
                    let stopping = mailbox.take(&mut batch, 1);
                    got.extend(batch);
                    if stopping {
                        got.extend(mailbox.drain());
                        return got;
                    }
                }
            }
        });
        let pusher = thread::spawn({
            let mailbox = Arc::clone(&mailbox);
            move || {
                [1, 2]
                    .into_iter()
                    .filter(|&job| mailbox.push(job))
                    .collect::<Vec<_>>()
            }
        });
        mailbox.stop();
        let accepted = pusher.join().unwrap();
        let mut got = consumer.join().unwrap();
        got.sort_unstable();
        assert_eq!(got, accepted);
        assert!(!mailbox.push(3), "refused after the stop");
    });
}

/// A thread pausing between reconnect attempts wakes when the registry stops.
#[test]
fn a_back_off_pause_ends_when_the_registry_stops() {
    model(|| {
        let mailbox = Arc::new(Mailbox::new());
        let pausing = thread::spawn({
            let mailbox = Arc::clone(&mailbox);
            move || mailbox.pause(Duration::from_secs(3600))
        });
        mailbox.stop();
        assert!(pausing.join().unwrap(), "it saw the stop");
    });
}

/// After Redis refused something, the command thread sleeps until the back-off ends or a job
/// comes, whichever is first: a job pushed meanwhile wakes it (what Redis accepts is never
/// held up behind what it refuses).
#[test]
fn a_job_pushed_while_the_thread_sleeps_after_a_refusal_wakes_it() {
    model(|| {
        let mailbox = Arc::new(Mailbox::new());
        let sleeping = thread::spawn({
            let mailbox = Arc::clone(&mailbox);
            move || {
                let stopped = mailbox.sleep_until_job(Duration::from_secs(3600));
                let mut batch = Vec::new();
                let _ = mailbox.take(&mut batch, 8);
                (stopped, batch)
            }
        });
        assert!(mailbox.push(7));
        let (stopped, batch) = sleeping.join().unwrap();
        assert!(!stopped);
        assert_eq!(batch, vec![7]);
    });
}
