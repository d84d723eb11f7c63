//! `RedisRegistry`'s cancelled-id records: a cancel leaves a record with a time to live, so a
//! job that registers after the cancel was published is cancelled at registration; the record
//! expires after `record_ttl` and is then forgotten; namespaces keep registries apart.

#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::thread;
use std::time::{Duration, Instant};

use cancel_token::redis::RedisRegistry;
use cancel_token::{Reason, ReasonKind};

use common::{wait_until, within, LIMIT};
use support_redis::{record_key, RedisServer, CHANNEL};

/// The bound on things that take milliseconds.
const SOON: Duration = Duration::from_secs(10);
/// How long a check that must not trigger a token is given after a witness was triggered.
const GRACE: Duration = Duration::from_millis(200);

#[test]
fn a_cancel_sent_before_the_job_registers_is_honoured_at_registration() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let canceller = RedisRegistry::connect(&redis.url()).unwrap();
        let reason = Reason::with_message(ReasonKind::Superseded, "a newer upload replaced it");
        let delivery = canceller.cancel("upload-7", reason.clone()).unwrap();
        assert!(delivery.wait_blocking_timeout(SOON));
        assert!(redis.exists(&record_key("upload-7")));
        assert_eq!(
            redis.get(&record_key("upload-7")).as_deref(),
            Some("superseded a%20newer%20upload%20replaced%20it")
        );

        // The worker starts after the message was published: only the record can tell it.
        let worker = RedisRegistry::connect(&redis.url()).unwrap();
        let started = Instant::now();
        let (token, registration) = worker.register("upload-7").unwrap();
        let (other, _other_registration) = worker.register("upload-8").unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "register waited for Redis"
        );
        assert!(
            token.wait_blocking_timeout(SOON),
            "the record was not checked at registration"
        );
        assert_eq!(token.reason(), Some(reason.clone()));
        drop(registration);

        // A second job under the same id is cancelled too, as long as the record lives.
        let (again, _again_registration) = worker.register("upload-7").unwrap();
        assert!(again.wait_blocking_timeout(SOON));
        assert_eq!(again.reason(), Some(reason));

        wait_until("both record hits to be counted", SOON, || {
            worker.stats().record_hits() == 2
        });
        assert_eq!(worker.stats().received(), 0);
        // The other id has no record: its check found nothing.
        thread::sleep(GRACE);
        assert!(!other.is_triggered());
        // The others' entries leave in their triggers' callbacks, on timer firer threads.
        wait_until("the triggered jobs to leave the registry", SOON, || {
            worker.len() == 1
        });
    });
    drop(server);
}

#[test]
fn the_default_record_lives_one_hour() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let registry = RedisRegistry::connect(&redis.url()).unwrap();
        let delivery = registry.cancel("report", ReasonKind::Timeout).unwrap();
        assert!(delivery.wait_blocking_timeout(SOON));
        let ttl = redis.pttl(&record_key("report"));
        assert!(
            (3_590_000..=3_600_000).contains(&ttl),
            "PTTL of the record: {ttl} ms, expected about one hour"
        );
        // No message: the record says so with `-`.
        assert_eq!(
            redis.get(&record_key("report")).as_deref(),
            Some("timeout -")
        );
    });
    drop(server);
}

#[test]
fn a_record_expires_after_its_ttl_and_is_forgotten() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let ttl = Duration::from_secs(1);
        let canceller = RedisRegistry::builder(&redis.url())
            .record_ttl(ttl)
            .connect()
            .unwrap();
        let delivery = canceller.cancel("short", "gone soon").unwrap();
        assert!(delivery.wait_blocking_timeout(SOON));
        let written = Instant::now();
        let left = redis.pttl(&record_key("short"));
        assert!(
            left > 0 && left <= 1_000,
            "PTTL {left} ms, expected at most the 1 s record_ttl"
        );
        wait_until("the record to expire", SOON, || {
            !redis.exists(&record_key("short"))
        });
        let lived = written.elapsed();
        assert!(
            lived >= Duration::from_millis(500),
            "the record was gone after {lived:?} with a 1 s ttl"
        );

        // A fresh record beside it is the witness that checks have run.
        let delivery = canceller.cancel("witness", "still here").unwrap();
        assert!(delivery.wait_blocking_timeout(SOON));
        let worker = RedisRegistry::connect(&redis.url()).unwrap();
        let (expired, _registration) = worker.register("short").unwrap();
        let (witness, _witness_registration) = worker.register("witness").unwrap();
        assert!(witness.wait_blocking_timeout(SOON));
        thread::sleep(GRACE);
        assert!(
            !expired.is_triggered(),
            "a record past its ttl still cancelled a job: {:?}",
            expired.reason()
        );
        wait_until("the witness's record hit to be counted", SOON, || {
            worker.stats().record_hits() == 1
        });
        thread::sleep(GRACE);
        assert_eq!(worker.stats().record_hits(), 1);
    });
    drop(server);
}

/// A thread woken by a token that a record triggered, and asking why, finds it counted:
/// `record_hits` as `received` is for a message.
#[test]
fn a_record_hit_is_counted_by_the_time_its_token_triggers() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let canceller = RedisRegistry::connect(&redis.url()).unwrap();
        let worker = RedisRegistry::connect(&redis.url()).unwrap();
        for round in 0..20 {
            let id = format!("job {round}");
            assert!(canceller
                .cancel(&id, "recorded")
                .unwrap()
                .wait_blocking_timeout(SOON));
            // The message reached the worker before the job registers, so only the record
            // can trigger its token (a message heard late would do it first).
            wait_until("the worker to hear the message", SOON, || {
                worker.stats().received() == round + 1
            });
            let (token, _registration) = worker.register(&id).unwrap();
            assert!(token.wait_blocking_timeout(SOON));
            let stats = worker.stats();
            assert_eq!(
                stats.record_hits(),
                round + 1,
                "round {round}: a token triggered by a record, not yet counted: {stats:?}"
            );
        }
        // A message is counted before its tokens trigger.
        let checks = redis.calls("mget");
        let (token, _registration) = worker.register("by message").unwrap();
        redis.wait_calls("mget", checks + 1, SOON);
        canceller.cancel("by message", "published").unwrap();
        assert!(token.wait_blocking_timeout(SOON));
        assert!(worker.stats().received() >= 1);
    });
    drop(server);
}

#[test]
fn a_namespace_names_the_channel_and_the_records_and_keeps_registries_apart() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let jobs = RedisRegistry::builder(&redis.url())
            .namespace("jobs")
            .connect()
            .unwrap();
        let default = RedisRegistry::connect(&redis.url()).unwrap();
        assert_eq!(redis.subscribers("jobs:cancel"), 1);
        assert_eq!(redis.subscribers(CHANNEL), 1);

        let (in_jobs, _jobs_registration) = jobs.register("same-id").unwrap();
        let (in_default, _default_registration) = default.register("same-id").unwrap();
        let (witness, _witness_registration) = jobs.register("witness").unwrap();

        let delivery = default.cancel("same-id", "default namespace").unwrap();
        assert_eq!(delivery.local(), 1);
        assert!(delivery.wait_blocking_timeout(SOON));
        assert!(redis.exists(&record_key("same-id")));
        assert!(!redis.exists("jobs:cancelled:same-id"));
        assert!(in_default.is_triggered());

        let delivery = default.cancel("witness", "default namespace").unwrap();
        assert!(delivery.wait_blocking_timeout(SOON));
        let other = RedisRegistry::builder(&redis.url())
            .namespace("jobs")
            .connect()
            .unwrap();
        let delivery = other.cancel("witness2", "jobs namespace").unwrap();
        assert!(delivery.wait_blocking_timeout(SOON));
        assert!(redis.exists("jobs:cancelled:witness2"));
        assert!(!redis.exists(&record_key("witness2")));

        // `jobs` heard nothing of the default namespace, by message or by record.
        let (witness2, _registration) = jobs.register("witness2").unwrap();
        assert!(witness2.wait_blocking_timeout(SOON));
        thread::sleep(GRACE);
        assert!(!in_jobs.is_triggered());
        assert!(!witness.is_triggered());
        // Only the jobs namespace's message counts (the one its registration caught first).
        wait_until("the jobs namespace's message", SOON, || {
            jobs.stats().received() == 1
        });
        assert_eq!(jobs.stats().received(), 1);
        assert_eq!(default.stats().malformed() + jobs.stats().malformed(), 0);
    });
    drop(server);
}
