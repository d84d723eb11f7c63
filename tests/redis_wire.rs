//! `RedisRegistry`'s wire format: what it publishes, byte for byte (`v1 <id> <kind>
//! <message>`, percent-escaped), ids and reasons that need escaping arriving unchanged, and
//! malformed messages published by hand (every class, and a huge one) ignored and counted
//! without disturbing the messages after them; a reason's message cut to `MAX_MESSAGE_LEN`.

#![cfg(feature = "redis")]

mod common;
mod support_redis;

use std::time::Duration;

use cancel_token::redis::{RedisRegistry, MAX_MESSAGE_LEN};
use cancel_token::{Reason, ReasonKind};

use common::{wait_until, within, LIMIT};
use support_redis::{record_key, RedisServer, CHANNEL};

/// The bound on things that take milliseconds.
const SOON: Duration = Duration::from_secs(10);

const KINDS: [(ReasonKind, &str); 6] = [
    (ReasonKind::Manual, "manual"),
    (ReasonKind::Timeout, "timeout"),
    (ReasonKind::Dropped, "dropped"),
    (ReasonKind::Superseded, "superseded"),
    (ReasonKind::Signal, "signal"),
    (ReasonKind::Condition, "condition"),
];

#[test]
fn what_a_cancel_publishes_and_records_byte_for_byte() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let mut connection = redis.connection();
        let mut listener = connection.as_pubsub();
        listener.subscribe(CHANNEL).unwrap();
        listener.set_read_timeout(Some(SOON)).unwrap();
        let registry = RedisRegistry::connect(&redis.url()).unwrap();
        redis.wait_subscribers(CHANNEL, 2, SOON);

        let mut cases: Vec<(&str, Reason, &str)> = vec![
            ("job-1", Reason::from("plain"), "v1 job-1 manual plain"),
            (
                "a b%c",
                Reason::from("50% of it\r\nleft\t\u{1}\u{7f}"),
                "v1 a%20b%25c manual 50%25%20of%20it%0D%0Aleft%09%01%7F",
            ),
            ("x", Reason::from("-"), "v1 x manual %2D"),
            ("-", Reason::from("-x- y"), "v1 - manual -x-%20y"),
            ("ünï", Reason::from("café ☕"), "v1 ünï manual café%20☕"),
            ("k", Reason::from("%2D"), "v1 k manual %252D"),
        ];
        let expected_kinds: Vec<String> = KINDS
            .iter()
            .map(|(_, name)| format!("v1 kind {name} -"))
            .collect();
        for ((kind, _), wire) in KINDS.iter().zip(&expected_kinds) {
            cases.push(("kind", Reason::new(*kind), wire.as_str()));
        }

        for (id, reason, wire) in &cases {
            let delivery = registry.cancel(id, reason.clone()).unwrap();
            let message = listener.get_message().expect("the registry's message");
            assert_eq!(message.get_channel_name(), CHANNEL);
            assert_eq!(
                String::from_utf8_lossy(message.get_payload_bytes()),
                *wire,
                "published for id {id:?}, reason {reason:?}"
            );
            assert!(delivery.wait_blocking_timeout(SOON));
        }
        // The record holds `<kind> <message>`, escaped the same way.
        assert_eq!(
            redis.get(&record_key("job-1")).as_deref(),
            Some("manual plain")
        );
        assert_eq!(redis.get(&record_key("x")).as_deref(), Some("manual %2D"));
        assert_eq!(
            redis.get(&record_key("kind")).as_deref(),
            Some("condition -"),
            "the last cancel's record"
        );
        assert_eq!(registry.stats().published(), cases.len() as u64);
    });
    drop(server);
}

#[test]
fn ids_and_reasons_that_need_escaping_round_trip() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let worker = RedisRegistry::connect(&redis.url()).unwrap();
        let canceller = RedisRegistry::connect(&redis.url()).unwrap();
        redis.wait_subscribers(CHANNEL, 2, SOON);

        let cases: Vec<(String, Reason)> = vec![
            (
                "job with spaces".into(),
                Reason::from("100% done, see\nthe log\ttab"),
            ),
            ("100%".into(), Reason::from("-")),
            ("-".into(), Reason::new(ReasonKind::Timeout)),
            ("line\nbreak\r".into(), Reason::from("%2D literal %")),
            ("ünïcødé ☕ 日本".into(), Reason::from("\u{7f}\u{1} ctl")),
            ("%41".into(), Reason::from("%41 stays %41")),
            ("x".repeat(1024), Reason::from("the longest id")),
            (
                "signal".into(),
                Reason::with_message(ReasonKind::Signal, "SIGTERM"),
            ),
            (
                "condition".into(),
                Reason::with_message(ReasonKind::Condition, "disk full - 99%"),
            ),
            ("dropped".into(), Reason::new(ReasonKind::Dropped)),
            (
                "superseded".into(),
                Reason::with_message(ReasonKind::Superseded, "v2"),
            ),
        ];
        // Two tokens under each id in the worker.
        let tokens: Vec<_> = cases
            .iter()
            .map(|(id, _)| [worker.register(id).unwrap(), worker.register(id).unwrap()])
            .collect();
        assert_eq!(worker.len(), 2 * cases.len());

        for (id, reason) in &cases {
            let delivery = canceller.cancel(id, reason.clone()).unwrap();
            assert_eq!(delivery.local(), 0);
        }
        for ((id, reason), pair) in cases.iter().zip(&tokens) {
            for (token, _registration) in pair {
                assert!(token.wait_blocking_timeout(SOON), "{id:?} never arrived");
                assert_eq!(token.reason().as_ref(), Some(reason), "for id {id:?}");
            }
        }
        wait_until("every message to be counted", SOON, || {
            worker.stats().received() == cases.len() as u64
        });
        assert_eq!(worker.stats().malformed(), 0);
        // The entries leave in the triggers' callbacks, on timer firer threads.
        wait_until("the triggered jobs to leave the registry", SOON, || {
            worker.is_empty()
        });
    });
    drop(server);
}

#[test]
fn malformed_messages_are_ignored_and_counted() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let registry = RedisRegistry::connect(&redis.url()).unwrap();
        redis.wait_subscribers(CHANNEL, 1, SOON);
        let (job, _registration) = registry.register("job").unwrap();
        let long_id = "x".repeat(1025);
        let (long, _long_registration) = registry.register(&"x".repeat(1024)).unwrap();

        let mut malformed: Vec<(&str, Vec<u8>)> = vec![
            ("empty", b"".to_vec()),
            ("three fields", b"v1 job manual".to_vec()),
            ("five fields", b"v1 job manual two words".to_vec()),
            ("a trailing space", b"v1 job manual - ".to_vec()),
            ("two spaces", b"v1 job  manual -".to_vec()),
            ("tabs for spaces", b"v1\tjob\tmanual\t-".to_vec()),
            ("bad version", b"v2 job manual -".to_vec()),
            ("no version", b"job manual - -".to_vec()),
            ("unknown kind", b"v1 job cancelled -".to_vec()),
            ("kind Manual", b"v1 job Manual -".to_vec()),
            ("bad escape", b"v1 job manual 100%zz".to_vec()),
            ("cut escape", b"v1 job manual 100%4".to_vec()),
            ("lone percent", b"v1 job manual 100%".to_vec()),
            ("bad escape in id", b"v1 j%G0b manual -".to_vec()),
            ("invalid UTF-8 raw", b"v1 job manual \xff\xfe".to_vec()),
            ("invalid UTF-8 in id", b"v1 j\xc3b manual -".to_vec()),
            ("invalid UTF-8 escaped", b"v1 job manual %FF%FE".to_vec()),
            ("empty id", b"v1  manual -".to_vec()),
            (
                "id of 1025 bytes",
                format!("v1 {long_id} manual -").into_bytes(),
            ),
            (
                "huge id",
                format!("v1 {} manual -", "j".repeat(4 << 20)).into_bytes(),
            ),
            ("huge garbage", vec![b'#'; 4 << 20]),
        ];
        malformed.push(("nul bytes", b"v1\0job\0manual\0-".to_vec()));
        for (class, payload) in &malformed {
            assert_eq!(
                redis.publish_raw(CHANNEL, payload),
                1,
                "the registry stopped listening before {class}"
            );
        }
        // A valid message after them all still works.
        redis.publish_raw(CHANNEL, b"v1 job timeout after%20the%20junk");
        assert!(
            job.wait_blocking_timeout(SOON),
            "the valid message was lost"
        );
        let reason = job.reason().unwrap();
        assert_eq!(reason.kind(), ReasonKind::Timeout);
        assert_eq!(reason.message(), Some("after the junk"));
        wait_until("every malformed message to be counted", SOON, || {
            registry.stats().malformed() == malformed.len() as u64
        });
        assert_eq!(
            registry.stats().malformed(),
            malformed.len() as u64,
            "one count per malformed message: {:?}",
            malformed.iter().map(|(class, _)| class).collect::<Vec<_>>()
        );
        assert!(
            !long.is_triggered(),
            "an id of 1025 bytes reached one of 1024"
        );

        // An id of exactly 1024 bytes is valid; a message the sender left out is `-`.
        let (dash, _dash_registration) = registry.register("dash").unwrap();
        redis.publish_raw(
            CHANNEL,
            format!("v1 {} signal -", "x".repeat(1024)).as_bytes(),
        );
        redis.publish_raw(CHANNEL, b"v1 dash condition %2D");
        assert!(long.wait_blocking_timeout(SOON));
        assert_eq!(long.reason(), Some(Reason::new(ReasonKind::Signal)));
        assert!(dash.wait_blocking_timeout(SOON));
        assert_eq!(
            dash.reason(),
            Some(Reason::with_message(ReasonKind::Condition, "-"))
        );
        wait_until("the valid messages to be counted", SOON, || {
            registry.stats().received() == 3
        });
        assert_eq!(registry.stats().malformed(), malformed.len() as u64);
    });
    drop(server);
}

#[test]
fn a_huge_valid_message_neither_panics_nor_stops_the_registry() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        let registry = RedisRegistry::connect(&redis.url()).unwrap();
        redis.wait_subscribers(CHANNEL, 1, SOON);
        let (big, _big_registration) = registry.register("big").unwrap();
        let (after, _after_registration) = registry.register("after").unwrap();
        let message = "m".repeat(4 << 20);
        redis.publish_raw(CHANNEL, format!("v1 big manual {message}").as_bytes());
        redis.publish_raw(CHANNEL, b"v1 after manual fine");
        assert!(after.wait_blocking_timeout(SOON));
        wait_until("both messages to be handled", SOON, || {
            let stats = registry.stats();
            stats.received() + stats.malformed() == 2
        });
        // Taken whole, or refused as too long; never cut short.
        let stats = registry.stats();
        if stats.received() == 2 {
            assert_eq!(big.reason().unwrap().message(), Some(message.as_str()));
        } else {
            assert_eq!(stats.malformed(), 1);
            assert!(!big.is_triggered());
        }
    });
    drop(server);
}

#[test]
fn a_long_message_is_cut_at_a_character_boundary_and_a_longer_one_refused() {
    let server = RedisServer::start();
    let redis = server.handle();
    within(LIMIT, move || {
        assert_eq!(MAX_MESSAGE_LEN, 8192);
        let worker = RedisRegistry::connect(&redis.url()).unwrap();
        let canceller = RedisRegistry::connect(&redis.url()).unwrap();
        redis.wait_subscribers(CHANNEL, 2, SOON);
        let (token, _registration) = worker.register("long").unwrap();
        // 'é' is two bytes: a cut at 8192 bytes falls between two of them, one at 8191
        // would split one.
        let long = format!("x{}", "é".repeat(5_000));
        canceller.cancel("long", long.as_str()).unwrap();
        assert!(token.wait_blocking_timeout(SOON));
        let received = token.reason().unwrap();
        let expected = format!("x{}", "é".repeat(4_095));
        assert_eq!(received.message().map(str::len), Some(8_191));
        assert_eq!(received.message(), Some(expected.as_str()));

        // A message longer than that, published by hand, is malformed.
        let (refused, _refused_registration) = worker.register("refused").unwrap();
        let too_long = format!("v1 refused manual {}", "m".repeat(MAX_MESSAGE_LEN + 1));
        redis.publish_raw(CHANNEL, too_long.as_bytes());
        let exact = format!("v1 refused manual {}", "m".repeat(MAX_MESSAGE_LEN));
        redis.publish_raw(CHANNEL, exact.as_bytes());
        assert!(refused.wait_blocking_timeout(SOON));
        assert_eq!(
            refused.reason().unwrap().message().map(str::len),
            Some(MAX_MESSAGE_LEN)
        );
        assert_eq!(worker.stats().malformed(), 1);
    });
    drop(server);
}
