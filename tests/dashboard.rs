//! Runs `examples/dashboard.rs` as a child process and drives its JSON API with reqwest:
//!
//! - the demo operations are listed running, the child with its parent's id;
//! - operations started with `POST /api/operations` advance across polls, with a consistent
//!   fraction, and one with a small total completes;
//! - `POST /api/operations/{id}/cancel` with a reason cancels one: `GET /api/operations/{id}`
//!   reads `cancelled` with that reason, it leaves the live list and enters the history, and
//!   its neighbour keeps running; cancelling it again is `409`;
//! - cancelling a parent operation cancels its child (their tokens are a tree);
//! - unknown ids are `404`, malformed ones `400` with the parse error, bad bodies `400`;
//! - `/api/counts` adds up.

mod common;
mod support_dashboard;

use std::time::Duration;

use serde_json::{json, Value};
use support_dashboard::{eventually, Dashboard};

/// The whole test, once the example runs; only turns a hang into a failure.
const TEST_LIMIT: Duration = Duration::from_secs(90);

/// How long a wait for the demo work may take (it steps every 10 to 100 ms).
const WAIT: Duration = Duration::from_secs(15);

fn find<'a>(ops: &'a [Value], name: &str) -> &'a Value {
    ops.iter()
        .find(|op| op["name"] == name)
        .unwrap_or_else(|| panic!("no {name:?} in {ops:#?}"))
}

fn done(op: &Value) -> u64 {
    op["progress"]["done"].as_u64().expect("progress.done")
}

#[test]
fn json_api() {
    let dashboard = Dashboard::start();
    common::multi_thread_runtime().block_on(async {
        tokio::time::timeout(TEST_LIMIT, drive(&dashboard))
            .await
            .expect("the test ran over its limit")
    });
}

async fn drive(dashboard: &Dashboard) {
    // The demo operations.
    let live = dashboard.live().await;
    for name in ["import users", "reindex", "reindex shard 1"] {
        assert_eq!(find(&live, name)["status"], "running", "{name}");
    }
    let reindex = find(&live, "reindex")["id"].as_u64().unwrap();
    let shard = find(&live, "reindex shard 1");
    assert_eq!(shard["parent"], reindex);
    assert_eq!(find(&live, "reindex")["progress"]["total"], Value::Null);
    let shard = shard["id"].as_u64().unwrap();

    // Two long operations: their progress advances across polls.
    let doomed = dashboard.start_operation("doomed", 100_000, 10).await;
    let survivor = dashboard.start_operation("survivor", 100_000, 10).await;
    let first = done(&dashboard.operation(doomed).await);
    let later = eventually("doomed to advance", WAIT, || async {
        let op = dashboard.operation(doomed).await;
        (done(&op) > first).then_some(op)
    })
    .await;
    let fraction = later["progress"]["fraction"].as_f64().unwrap();
    assert!(
        (fraction - done(&later) as f64 / 100_000.0).abs() < 1e-9,
        "{later}"
    );
    assert!(later["elapsed_ms"].as_u64().is_some(), "{later}");

    // Cancel one with a reason.
    let (status, body) = dashboard
        .post(
            &format!("/api/operations/{doomed}/cancel"),
            json!({ "reason": "the test says stop" }),
        )
        .await;
    assert_eq!(
        (status, &body),
        (200, &json!({ "id": doomed, "cancelled": true }))
    );
    let cancelled = eventually("doomed to read cancelled", WAIT, || async {
        let op = dashboard.operation(doomed).await;
        (op["status"] != "running").then_some(op)
    })
    .await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["message"], "the test says stop");
    assert_eq!(cancelled["reason_kind"], "manual");
    assert!(cancelled["finished_at_ms"].is_u64(), "{cancelled}");
    let stopped_at = done(&cancelled);
    let live = dashboard.live().await;
    assert!(
        live.iter().all(|op| op["id"] != doomed),
        "still live: {live:#?}"
    );
    let history = dashboard.get_ok("/api/history").await;
    assert!(
        history
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["id"] == doomed && op["status"] == "cancelled"),
        "{history}"
    );
    let (status, body) = dashboard
        .post(&format!("/api/operations/{doomed}/cancel"), Value::Null)
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("already finished"),
        "{body}"
    );

    // Its neighbour runs on; its own progress stopped.
    let survivor_done = done(&dashboard.operation(survivor).await);
    eventually("survivor to advance", WAIT, || async {
        let op = dashboard.operation(survivor).await;
        (op["status"] == "running" && done(&op) > survivor_done).then_some(())
    })
    .await;
    assert_eq!(done(&dashboard.operation(doomed).await), stopped_at);

    // A short one completes.
    let quick = dashboard.start_operation("quick", 3, 10).await;
    let completed = eventually("quick to complete", WAIT, || async {
        let op = dashboard.operation(quick).await;
        (op["status"] == "completed").then_some(op)
    })
    .await;
    assert_eq!(done(&completed), 3);
    assert_eq!(completed["progress"]["fraction"], 1.0);
    assert_eq!(completed["message"], Value::Null);

    // A parent's cancellation reaches its child, with the default reason.
    let (status, body) = dashboard
        .post(&format!("/api/operations/{reindex}/cancel"), Value::Null)
        .await;
    assert_eq!(status, 200, "{body}");
    for id in [reindex, shard] {
        let op = eventually("reindex and its shard to stop", WAIT, || async {
            let op = dashboard.operation(id).await;
            (op["status"] != "running").then_some(op)
        })
        .await;
        assert_eq!(op["status"], "cancelled", "{op}");
        assert_eq!(op["message"], "cancelled from the dashboard", "{op}");
    }

    // Unknown and malformed ids, bad bodies.
    let unknown = u64::MAX;
    let (status, body) = dashboard.get(&format!("/api/operations/{unknown}")).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = dashboard
        .post(&format!("/api/operations/{unknown}/cancel"), Value::Null)
        .await;
    assert_eq!(status, 404, "{body}");
    for malformed in ["abc", "-1", "%2B7", "99999999999999999999"] {
        let (status, body) = dashboard.get(&format!("/api/operations/{malformed}")).await;
        assert_eq!(status, 400, "{malformed}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.starts_with("invalid operation id"), "{error}");
        let (status, body) = dashboard
            .post(&format!("/api/operations/{malformed}/cancel"), Value::Null)
            .await;
        assert_eq!(status, 400, "{malformed}: {body}");
    }
    for bad in [
        json!({}),
        json!({ "name": "" }),
        json!({ "name": "x", "total": -1 }),
    ] {
        let (status, body) = dashboard.post("/api/operations", bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) = dashboard
        .post(
            &format!("/api/operations/{survivor}/cancel"),
            json!({ "reason": 7 }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(dashboard.operation(survivor).await["status"], "running");

    // Counts: doomed, reindex and its shard were cancelled; quick completed; survivor runs,
    // and so does import users unless its minute is up (a very slow run).
    let live = dashboard.live().await;
    let counts = dashboard.get_ok("/api/counts").await;
    let count = |status: &str| counts[status].as_u64().unwrap();
    assert_eq!(count("running"), live.len() as u64, "{counts} {live:#?}");
    assert_eq!(count("cancelled"), 3, "{counts}");
    assert_eq!(count("failed"), 0, "{counts}");
    assert_eq!(count("running") + count("completed"), 3, "{counts}");
    assert_eq!(count("total"), 6, "{counts}");
}
