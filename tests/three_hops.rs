//! Runs `examples/three_hops.rs` (edge, middle and leaf axum services on 127.0.0.1, calling
//! each other with reqwest under `ScopeLayer` request tokens and deadline headers) as a child
//! process, and checks the `event` lines it prints, for each scenario:
//!
//! - every hop reported its request token triggering, once;
//! - the leaf's token triggered within 100 ms of the edge's;
//! - the reasons say what happened: `deadline`, a `Timeout` at every hop whose message names
//!   the deadline; `disconnect`, `Dropped` at every hop because the client went away;
//!   `manual`, the edge's shutdown at the edge, then `Dropped` at middle and leaf;
//! - `deadline`: every hop had a deadline, the leaf's no later than the middle's and the
//!   middle's no later than the edge's (one process, one clock), and the leaf's token did not
//!   trigger before its deadline.
#![cfg(feature = "tower")]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// The example gives up on a scenario after 10 s; this only turns a hang into a failure.
const HARD_LIMIT: Duration = Duration::from_secs(30);

/// How far apart the edge's and the leaf's tokens may trigger.
const MAX_GAP_MS: f64 = 100.0;

/// One `event` line.
#[derive(Debug)]
struct Event {
    scenario: String,
    hop: String,
    triggered_ms: f64,
    deadline_ms: Option<f64>,
    kind: String,
    reason: String,
}

/// Parses `event scenario=.. hop=.. triggered_ms=.. deadline_ms=..|none kind=.. reason=".."`.
fn parse(line: &str) -> Event {
    let rest = line.strip_prefix("event ").expect("an event line");
    let (fields, reason) = rest
        .split_once(" reason=\"")
        .unwrap_or_else(|| panic!("no reason in {line:?}"));
    let reason = reason
        .strip_suffix('"')
        .unwrap_or_else(|| panic!("unterminated reason in {line:?}"));
    let fields: BTreeMap<&str, &str> = fields
        .split(' ')
        .map(|field| {
            field
                .split_once('=')
                .unwrap_or_else(|| panic!("{field:?} in {line:?}"))
        })
        .collect();
    let field = |name: &str| {
        *fields
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    let number = |name: &str| -> f64 {
        field(name)
            .parse()
            .unwrap_or_else(|err| panic!("{name} in {line:?}: {err}"))
    };
    Event {
        scenario: field("scenario").to_owned(),
        hop: field("hop").to_owned(),
        triggered_ms: number("triggered_ms"),
        deadline_ms: match field("deadline_ms") {
            "none" => None,
            _ => Some(number("deadline_ms")),
        },
        kind: field("kind").to_owned(),
        reason: reason.to_owned(),
    }
}

/// Runs the example to its end (killing it after [`HARD_LIMIT`]) and returns its output.
fn run_example() -> Vec<String> {
    let mut child = Command::new(common::build_example("three_hops"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let deadline = Instant::now() + HARD_LIMIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the example ran over {HARD_LIMIT:?}; it printed {seen:#?}");
            }
        }
    }
    // Its output is closed: it is exiting.
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the example closed its output but did not exit; it printed {seen:#?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "{status}; the example printed {seen:#?}");
    seen
}

/// The events of `scenario`, by hop; each of the three hops reported once.
fn hops<'a>(
    events: &'a [Event],
    scenario: &str,
    output: &[String],
) -> BTreeMap<&'a str, &'a Event> {
    let mut by_hop = BTreeMap::new();
    for event in events.iter().filter(|event| event.scenario == scenario) {
        let earlier = by_hop.insert(event.hop.as_str(), event);
        assert!(
            earlier.is_none(),
            "{} reported twice in {scenario}",
            event.hop
        );
    }
    let names: Vec<&str> = by_hop.keys().copied().collect();
    assert_eq!(
        names,
        ["edge", "leaf", "middle"],
        "the hops that reported in {scenario}; output: {output:#?}"
    );
    by_hop
}

fn assert_kind(event: &Event, kind: &str, says: &str) {
    assert_eq!(event.kind, kind, "{event:?}");
    assert!(
        event.reason.contains(says),
        "the reason should say {says:?}: {event:?}"
    );
}

#[test]
fn cancelling_at_the_edge_stops_the_leaf_within_100_ms_with_the_reason() {
    let output = run_example();
    for line in &output {
        println!("{line}");
    }
    let events: Vec<Event> = output
        .iter()
        .filter(|line| line.starts_with("event "))
        .map(|line| parse(line))
        .collect();

    for scenario in ["deadline", "disconnect", "manual"] {
        let hops = hops(&events, scenario, &output);
        let (edge, middle, leaf) = (hops["edge"], hops["middle"], hops["leaf"]);
        let gap = leaf.triggered_ms - edge.triggered_ms;
        assert!(
            gap.abs() <= MAX_GAP_MS,
            "{scenario}: the leaf triggered {gap:.2} ms after the edge; {leaf:?} {edge:?}"
        );

        match scenario {
            "deadline" => {
                for event in [edge, middle, leaf] {
                    assert_kind(event, "Timeout", "deadline");
                }
                assert!(
                    leaf.reason.contains("the caller's deadline of"),
                    "the leaf stops at its own deadline: {leaf:?}"
                );
                let deadline = |event: &Event| {
                    event
                        .deadline_ms
                        .unwrap_or_else(|| panic!("no deadline: {event:?}"))
                };
                assert!(
                    deadline(leaf) <= deadline(middle) && deadline(middle) <= deadline(edge),
                    "a callee's deadline is never later than its caller's: {edge:?} {middle:?} {leaf:?}"
                );
                assert!(
                    leaf.triggered_ms >= deadline(leaf),
                    "a deadline never fires early: {leaf:?}"
                );
            }
            "disconnect" => {
                for event in [edge, middle, leaf] {
                    assert_kind(event, "Dropped", "client gone");
                }
            }
            "manual" => {
                assert_kind(edge, "Manual", "shutting down");
                assert_kind(middle, "Dropped", "client gone");
                assert_kind(leaf, "Dropped", "client gone");
            }
            _ => unreachable!(),
        }
    }
}
