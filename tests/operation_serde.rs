//! The `serde` feature: the JSON shape of snapshots and their parts (names, numbers,
//! milliseconds, nulls), round trips through JSON for running, completed, failed and
//! cancelled operations, counts and every status and reason kind, and the errors of
//! malformed input.
#![cfg(feature = "serde")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cancel_token::{
    CancelToken, OperationId, OperationRegistry, OperationSnapshot, Progress, ReasonKind,
    StatusCounts, StatusKind,
};
use serde_json::{json, Value};

fn ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Round-trips `snapshot` through JSON text and checks every field (times to the
/// millisecond, the elapsed time to a microsecond).
fn round_trip(snapshot: &OperationSnapshot) {
    let text = serde_json::to_string(snapshot).unwrap();
    let read: OperationSnapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(read.id, snapshot.id);
    assert_eq!(read.name, snapshot.name);
    assert_eq!(read.parent, snapshot.parent);
    assert_eq!(read.status, snapshot.status);
    assert_eq!(read.reason_kind, snapshot.reason_kind);
    assert_eq!(read.message, snapshot.message);
    assert_eq!(read.progress, snapshot.progress);
    assert_eq!(read.status(), snapshot.status());
    assert_eq!(ms(read.started_at), ms(snapshot.started_at));
    assert_eq!(read.finished_at.map(ms), snapshot.finished_at.map(ms));
    let drift = read.elapsed.abs_diff(snapshot.elapsed);
    assert!(drift < Duration::from_micros(1), "{drift:?}");
    // And the same JSON again.
    assert_eq!(serde_json::to_string(&read).unwrap().len(), text.len());
}

#[test]
fn a_running_snapshot_has_every_field_with_nulls() {
    let registry = OperationRegistry::new();
    let parent = registry.start("batch", &CancelToken::new());
    let op = parent.child("item");
    op.advance(7);
    let snapshot = registry.snapshot(op.id()).unwrap();
    let json = serde_json::to_value(&snapshot).unwrap();
    let object = json.as_object().unwrap();
    let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "elapsed_ms",
            "finished_at_ms",
            "id",
            "message",
            "name",
            "parent",
            "progress",
            "reason_kind",
            "started_at_ms",
            "status"
        ]
    );
    assert_eq!(json["id"], op.id().as_u64());
    assert_eq!(json["parent"], parent.id().as_u64());
    assert_eq!(json["name"], "item");
    assert_eq!(json["status"], "running");
    assert_eq!(json["reason_kind"], Value::Null);
    assert_eq!(json["message"], Value::Null);
    assert_eq!(json["finished_at_ms"], Value::Null);
    assert_eq!(
        json["progress"],
        json!({ "done": 7, "total": null, "fraction": null, "message": null })
    );
    assert_eq!(json["started_at_ms"], ms(snapshot.started_at));
    assert!(json["elapsed_ms"].is_f64());
    round_trip(&snapshot);
}

#[test]
fn finished_snapshots_round_trip() {
    let registry = OperationRegistry::new();
    let done = registry.start("done", &CancelToken::new());
    done.set_total(3);
    done.advance(3);
    done.set_message("all three");
    done.complete();
    registry
        .start("failed", &CancelToken::new())
        .fail("disk full");
    registry
        .start("timed out", &CancelToken::new())
        .abort(ReasonKind::Timeout);
    let dropped = registry.start("dropped", &CancelToken::new());
    drop(dropped);

    let history = registry.history();
    assert_eq!(history.len(), 4);
    for snapshot in &history {
        round_trip(snapshot);
    }
    let json: Vec<Value> = history
        .iter()
        .map(|snapshot| serde_json::to_value(snapshot).unwrap())
        .collect();
    assert_eq!(json[0]["status"], "completed");
    assert_eq!(json[0]["progress"]["fraction"], 1.0);
    assert_eq!(json[0]["progress"]["message"], "all three");
    assert!(
        json[0]["finished_at_ms"].as_u64().unwrap() >= json[0]["started_at_ms"].as_u64().unwrap()
    );
    assert_eq!(json[1]["status"], "failed");
    assert_eq!(json[1]["message"], "disk full");
    assert_eq!(json[1]["reason_kind"], Value::Null);
    assert_eq!(json[2]["status"], "cancelled");
    assert_eq!(json[2]["reason_kind"], "timeout");
    assert_eq!(json[2]["message"], Value::Null);
    assert_eq!(json[3]["reason_kind"], "dropped");
    assert_eq!(
        json[3]["message"],
        "the operation was dropped before it finished"
    );
}

#[test]
fn statuses_and_reason_kinds_are_their_lowercase_names() {
    for kind in [
        StatusKind::Running,
        StatusKind::Completed,
        StatusKind::Failed,
        StatusKind::Cancelled,
    ] {
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        assert_eq!(
            serde_json::from_value::<StatusKind>(json!(kind.as_str())).unwrap(),
            kind
        );
    }
    for kind in [
        ReasonKind::Manual,
        ReasonKind::Timeout,
        ReasonKind::Dropped,
        ReasonKind::Superseded,
        ReasonKind::Signal,
        ReasonKind::Condition,
    ] {
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        assert_eq!(
            serde_json::from_value::<ReasonKind>(json!(kind.as_str())).unwrap(),
            kind
        );
    }
    assert!(serde_json::from_value::<StatusKind>(json!("Running")).is_err());
    assert!(serde_json::from_value::<ReasonKind>(json!("gone")).is_err());
}

#[test]
fn ids_are_numbers_and_counts_an_object() {
    let id = OperationId::from_u64(42);
    assert_eq!(serde_json::to_string(&id).unwrap(), "42");
    assert_eq!(serde_json::from_str::<OperationId>("42").unwrap(), id);
    assert!(serde_json::from_str::<OperationId>("\"42\"").is_err());

    let registry = OperationRegistry::new();
    let _running = registry.start("a", &CancelToken::new());
    registry.start("b", &CancelToken::new()).complete();
    let counts = registry.counts();
    let json = serde_json::to_value(counts).unwrap();
    assert_eq!(
        json,
        json!({ "running": 1, "completed": 1, "failed": 0, "cancelled": 0 })
    );
    assert_eq!(
        serde_json::from_value::<StatusCounts>(json).unwrap(),
        counts
    );
}

#[test]
fn progress_reads_without_its_fraction_and_with_missing_options() {
    let progress: Progress = serde_json::from_value(json!({ "done": 5 })).unwrap();
    assert_eq!(
        progress,
        Progress {
            done: 5,
            ..Progress::default()
        }
    );
    let progress: Progress =
        serde_json::from_value(json!({ "done": 1, "total": 2, "fraction": 0.9, "message": "hi" }))
            .unwrap();
    assert_eq!((progress.total, progress.fraction()), (Some(2), Some(0.5)));
    assert_eq!(progress.message.as_deref(), Some("hi"));
    assert!(serde_json::from_value::<Progress>(json!({ "total": 2 })).is_err());
}

#[test]
fn malformed_times_are_errors() {
    let registry = OperationRegistry::new();
    let op = registry.start("job", &CancelToken::new());
    let mut json = serde_json::to_value(registry.snapshot(op.id()).unwrap()).unwrap();
    json["elapsed_ms"] = json!(-1.0);
    let err = serde_json::from_value::<OperationSnapshot>(json.clone()).unwrap_err();
    assert!(err.to_string().contains("elapsed_ms"), "{err}");
    json["elapsed_ms"] = json!(1.5);
    json["started_at_ms"] = json!("yesterday");
    assert!(serde_json::from_value::<OperationSnapshot>(json.clone()).is_err());
    json["started_at_ms"] = json!(1_700_000_000_000u64);
    let read: OperationSnapshot = serde_json::from_value(json).unwrap();
    assert_eq!(read.elapsed, Duration::from_micros(1500));
    assert_eq!(ms(read.started_at), 1_700_000_000_000);
}
