//! `RedisRegistry` across processes: a cancel by id in this process reaches the token
//! registered under that id in another process within 50 ms, with its reason intact, and a
//! burst of 10,000 cancels loses none. The other process is this test binary again, running
//! the ignored test `peer` in the role the test gives it (`support_redis::Peer`).

#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use cancel_token::redis::{ConnectionState, RedisRegistry};
use cancel_token::{Reason, ReasonKind};

use common::{within, LIMIT};
use support_redis::{peer_role, tell, unix_nanos, Peer, RedisServer, CHANNEL};

/// The bound on a cancel's trip from this process to a token in the other one.
const LATENCY: Duration = Duration::from_millis(50);
/// How many jobs the latency test cancels, one after the other.
const ROUNDS: usize = 3;
/// How many ids the burst test cancels at once.
const BURST: usize = 10_000;
/// The bound on the whole burst: generous, for a loaded machine.
const BURST_LIMIT: Duration = Duration::from_secs(60);

/// Held by each test for its whole run: the burst loads both processes, Redis and the
/// machine, and would be measured by the latency test if they ran together.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A message that needs every kind of escaping on the wire: spaces, `%`, a newline, a tab,
/// a `-`, and characters outside ASCII.
fn tricky_message(round: usize) -> String {
    format!("round {round}: 100% done,\nthen\tstopped - by Zoë ☕ 日本")
}

fn latency_job(round: usize) -> String {
    format!("latency job {round}")
}

fn burst_id(i: usize) -> String {
    format!("burst-{i}")
}

/// The reason of the burst's cancel number `i`: every kind, with and without a message.
fn burst_reason(i: usize) -> Reason {
    const KINDS: [ReasonKind; 6] = [
        ReasonKind::Manual,
        ReasonKind::Timeout,
        ReasonKind::Dropped,
        ReasonKind::Superseded,
        ReasonKind::Signal,
        ReasonKind::Condition,
    ];
    let kind = KINDS[i % KINDS.len()];
    if i % 7 == 0 {
        Reason::new(kind)
    } else {
        Reason::with_message(kind, format!("burst {i}"))
    }
}

/// How a reason is printed between the processes (`Debug` keeps a newline on one line).
fn show(reason: &Reason) -> String {
    format!("{} {:?}", reason.kind().as_str(), reason.message())
}

/// The second process of the tests below; does nothing unless one of them spawned it.
#[test]
#[ignore = "the second process of the other tests of this file, which run it themselves"]
fn peer() {
    let Some((role, url)) = peer_role() else {
        return;
    };
    match role.as_str() {
        "latency" => latency_worker(&url),
        "burst" => burst_worker(&url),
        other => panic!("unknown peer role {other:?}"),
    }
}

/// Registers the latency jobs, then prints, for each in turn, when its token triggered and
/// with what reason.
fn latency_worker(url: &str) {
    let registry = RedisRegistry::connect(url).expect("the worker connects");
    assert!(registry.wait_state(ConnectionState::Connected, LIMIT));
    let (fired, times) = mpsc::channel();
    let mut jobs = Vec::new();
    for round in 0..ROUNDS {
        let (token, registration) = registry.register(&latency_job(round)).unwrap();
        // The callback runs on the thread that triggers the token, the moment it does (a
        // thread woken by the token may run before it).
        let fired = fired.clone();
        let guard = token.on_cancel(move |reason| {
            let _ = fired.send((round, SystemTime::now(), show(reason)));
        });
        jobs.push((token, registration, guard));
    }
    tell("ready");
    for expected in 0..ROUNDS {
        let (round, at, reason) = times.recv_timeout(LIMIT).expect("a job was cancelled");
        assert_eq!(round, expected, "the jobs were cancelled out of order");
        tell(format!("triggered {} {reason}", unix_nanos(at)));
    }
    tell(format!("received {}", registry.stats().received()));
}

/// Registers the burst's ids, then waits for all of them and prints what it got.
fn burst_worker(url: &str) {
    let registry = RedisRegistry::connect(url).expect("the worker connects");
    assert!(registry.wait_state(ConnectionState::Connected, LIMIT));
    let jobs: Vec<_> = (0..BURST)
        .map(|i| registry.register(&burst_id(i)).unwrap())
        .collect();
    assert_eq!(registry.len(), BURST);
    tell("ready");
    let deadline = Instant::now() + BURST_LIMIT;
    let (mut lost, mut wrong) = (Vec::new(), Vec::new());
    for (i, (token, _registration)) in jobs.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if !token.wait_blocking_timeout(left) {
            lost.push(i);
        } else if token.reason() != Some(burst_reason(i)) {
            wrong.push((i, token.reason()));
        }
    }
    // A token's entry leaves the registry in its trigger's callback, which runs on a timer
    // firer thread and may still be running when a waiter sees the token triggered.
    while !registry.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let stats = registry.stats();
    tell(format!(
        "done lost={} wrong={} received={} malformed={} len={}",
        lost.len(),
        wrong.len(),
        stats.received(),
        stats.malformed(),
        registry.len()
    ));
    tell(format!(
        "first lost {:?}, first wrong {:?}",
        lost.iter().take(5).collect::<Vec<_>>(),
        wrong.iter().take(5).collect::<Vec<_>>()
    ));
}

#[test]
fn a_cancel_reaches_another_process_within_50ms_with_its_reason() {
    let _serial = one_at_a_time();
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT * 2, move || {
        let worker = Peer::spawn("peer", "latency", &redis.url());
        worker.expect("ready", LIMIT);

        let canceller = RedisRegistry::connect(&redis.url()).unwrap();
        assert!(canceller.wait_state(ConnectionState::Connected, LIMIT));
        redis.wait_subscribers(CHANNEL, 2, LIMIT);
        // This process runs the first job too: its token is triggered by the call itself.
        let (here, _registration) = canceller.register(&latency_job(0)).unwrap();

        let mut latencies = Vec::new();
        for round in 0..ROUNDS {
            let message = tricky_message(round);
            let sent = SystemTime::now();
            let delivery = canceller
                .cancel(&latency_job(round), message.as_str())
                .unwrap();
            if round == 0 {
                assert_eq!(delivery.local(), 1, "the token of this process");
                assert!(
                    here.is_triggered(),
                    "a local token triggers before cancel returns"
                );
            } else {
                assert_eq!(delivery.local(), 0);
            }

            let line = worker.expect("triggered", LIMIT);
            let (at, reason) = line.split_once(' ').expect("a time and a reason");
            let at: u128 = at.parse().expect("a time in nanoseconds");
            let latency = at as i128 - unix_nanos(sent) as i128;
            assert!(
                latency >= 0,
                "the token triggered before the cancel was sent"
            );
            let latency = Duration::from_nanos(latency as u64);
            assert_eq!(
                reason,
                show(&Reason::from(message.as_str())),
                "the reason arrived changed"
            );
            assert!(
                latency < LATENCY,
                "round {round}: the token in the other process triggered {latency:?} after \
                 the cancel (bound {LATENCY:?})"
            );
            latencies.push(latency);
            assert!(delivery.wait_blocking_timeout(LIMIT), "never acknowledged");
            assert!(delivery.is_delivered());
        }
        assert_eq!(worker.expect("received", LIMIT), ROUNDS.to_string());
        worker.wait_success(LIMIT);
        assert_eq!(canceller.stats().published(), ROUNDS as u64);
        assert_eq!(canceller.stats().pending(), 0);
        eprintln!("latencies across processes: {latencies:?}");
    });
    drop(server);
}

#[test]
fn a_burst_of_10_000_cancels_loses_none() {
    let _serial = one_at_a_time();
    let server = RedisServer::start();
    let redis = server.handle();
    within(BURST_LIMIT * 2, move || {
        let worker = Peer::spawn("peer", "burst", &redis.url());
        worker.expect("ready", LIMIT);
        let canceller = RedisRegistry::connect(&redis.url()).unwrap();
        assert!(canceller.wait_state(ConnectionState::Connected, LIMIT));
        redis.wait_subscribers(CHANNEL, 2, LIMIT);

        let started = Instant::now();
        let deliveries: Vec<_> = (0..BURST)
            .map(|i| canceller.cancel(&burst_id(i), burst_reason(i)).unwrap())
            .collect();
        let queued = started.elapsed();
        for (i, delivery) in deliveries.iter().enumerate() {
            assert_eq!(delivery.local(), 0);
            let left = BURST_LIMIT.saturating_sub(started.elapsed());
            assert!(
                delivery.wait_blocking_timeout(left),
                "cancel {i} not acknowledged {BURST_LIMIT:?} after the burst began"
            );
        }
        let acknowledged = started.elapsed();

        let done = worker.expect("done", BURST_LIMIT);
        let detail = worker.next_line(LIMIT);
        assert_eq!(
            done,
            format!("lost=0 wrong=0 received={BURST} malformed=0 len=0"),
            "{detail}"
        );
        worker.wait_success(LIMIT);
        let stats = canceller.stats();
        assert_eq!(stats.published(), BURST as u64);
        assert_eq!(stats.pending(), 0);
        eprintln!(
            "{BURST} cancels queued in {queued:?}, acknowledged in {acknowledged:?}, \
             all triggered in the worker in {:?}",
            started.elapsed()
        );
    });
    drop(server);
}
