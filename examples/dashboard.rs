//! A dashboard for an [`OperationRegistry`]: an axum server that lists the running operations
//! with their progress as JSON, cancels one by id, and serves a small HTML page with live
//! progress bars and a Cancel button per operation.
//!
//! Run it with `cargo run --example dashboard` and open the address it prints. The port comes
//! from the first argument, else the `DASHBOARD_PORT` environment variable, else 3000; `0`
//! picks a free one. The first line printed is `listening on http://ADDR`.
//!
//! At start it runs three demo operations in tokio tasks, each under
//! [`Operation::run`], which finishes the operation as completed when its work ends, or as
//! cancelled (with the token's reason) as soon as its token is triggered:
//! `import users` (600 steps of 100 ms), `reindex` (no known total: it runs until cancelled)
//! and its child `reindex shard 1` (300 steps of 200 ms; cancelling `reindex` cancels it too,
//! through its token).
//!
//! # Routes
//!
//! Every `/api` answer is JSON; an error is `{"error": "..."}` with the status below.
//!
//! - `GET /api/operations`: the live operations, oldest first, each
//!   `{"id", "name", "parent", "status", "reason_kind", "message", "progress": {"done",
//!   "total", "fraction", "message"}, "started_at_ms", "elapsed_ms", "finished_at_ms"}`
//!   (`parent`, `total`, `fraction`, the messages, `reason_kind` and `finished_at_ms` may be
//!   `null`; times are milliseconds, wall-clock ones since the Unix epoch). `status` is
//!   `running`, `completed`, `failed` or `cancelled`; a cancelled operation's `message` is its
//!   reason.
//! - `GET /api/operations/{id}`: one operation, live or finished and still in the history;
//!   `404` if the registry does not know it, `400` if `{id}` is not an operation id.
//! - `POST /api/operations/{id}/cancel`, with an optional body `{"reason": "..."}` (default
//!   `cancelled from the dashboard`): triggers the operation's token. `200`
//!   `{"id", "cancelled": true}` when this request cancelled it; the operation reads
//!   `cancelled` once its work has stopped (at once for the demo's work). `409` if it has
//!   finished already, or its cancellation was already asked for; `404` if unknown, `400` if
//!   `{id}` is malformed.
//! - `POST /api/operations` with a body `{"name": "...", "total": 100, "step_ms": 100}`
//!   (`total` optional: without one the work runs until cancelled; `step_ms` defaults to 100,
//!   at least 1): starts a demo operation that advances by one every `step_ms`. `201` with
//!   its JSON.
//! - `GET /api/history`: the finished operations the registry keeps, oldest first.
//! - `GET /api/counts`: `{"running", "completed", "failed", "cancelled", "total"}`.
//! - `GET /`: the page. Plain HTML, inline CSS and JavaScript, no external files. It polls
//!   `/api/operations` and `/api/history` every 250 ms and shows a row per operation
//!   (`tr[data-op-id][data-status]`, and `data-parent` for a child; with `.name`, a `progress` bar, `.percent`, `.status` and
//!   a `button.cancel`); finished operations follow the running ones, with their status and
//!   reason.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use cancel_token::{
    CancelToken, Filter, Operation, OperationId, OperationRegistry, OperationSnapshot, StatusKind,
};
use serde_json::{json, Value};

/// The reason of a cancel request without one.
const DEFAULT_REASON: &str = "cancelled from the dashboard";

#[derive(Clone)]
struct App {
    registry: OperationRegistry,
    /// The token every operation starts under (nothing triggers it in this example).
    root: CancelToken,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DASHBOARD_PORT").ok())
        .map(|port| port.parse().expect("the port is a number from 0 to 65535"))
        .unwrap_or(3000);

    let app = App {
        registry: OperationRegistry::new(),
        root: CancelToken::new(),
    };
    let import = app.registry.start("import users", &app.root);
    spawn_work(import, Some(600), Duration::from_millis(100));
    let reindex = app.registry.start("reindex", &app.root);
    spawn_work(
        reindex.child("reindex shard 1"),
        Some(300),
        Duration::from_millis(200),
    );
    spawn_work(reindex, None, Duration::from_millis(50));

    let router = Router::new()
        .route("/", get(page))
        .route("/api/operations", get(list).post(start))
        .route("/api/operations/{id}", get(one))
        .route("/api/operations/{id}/cancel", post(cancel))
        .route("/api/history", get(history))
        .route("/api/counts", get(counts))
        .with_state(app);

    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let addr = listener.local_addr()?;
    // A test reads this line to find the server: flush it even when stdout is a pipe.
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    axum::serve(listener, router).await
}

/// Runs `op`'s demo work on a tokio task: one unit every `step`, up to `total` (forever
/// without one). [`Operation::run`] finishes the operation with the work, or as cancelled
/// the moment its token is triggered.
fn spawn_work(op: Operation, total: Option<u64>, step: Duration) {
    if let Some(total) = total {
        op.set_total(total);
    }
    tokio::spawn(async move {
        let work = async {
            let mut interval = tokio::time::interval(step);
            interval.tick().await; // the first tick is immediate
            while total.is_none_or(|total| op.progress().done < total) {
                interval.tick().await;
                op.advance(1);
                let done = op.progress().done;
                if done % 10 == 0 {
                    op.set_message(format!("{done} items"));
                }
            }
        };
        // Cancelled is an outcome the registry records: nothing else to do with it here.
        let _ = op.run(work).await;
    });
}

/// The JSON of a snapshot; see the routes in the module's docs.
fn snapshot_json(snapshot: &OperationSnapshot) -> Value {
    let ms = |time: SystemTime| {
        time.duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64)
    };
    json!({
        "id": snapshot.id.as_u64(),
        "name": snapshot.name,
        "parent": snapshot.parent.map(OperationId::as_u64),
        "status": snapshot.status.as_str(),
        "reason_kind": snapshot.reason_kind.map(|kind| kind.as_str()),
        "message": snapshot.message,
        "progress": {
            "done": snapshot.progress.done,
            "total": snapshot.progress.total,
            "fraction": snapshot.progress.fraction(),
            "message": snapshot.progress.message,
        },
        "started_at_ms": ms(snapshot.started_at),
        "elapsed_ms": snapshot.elapsed.as_millis() as u64,
        "finished_at_ms": snapshot.finished_at.map(ms),
    })
}

/// A JSON answer with `status`.
fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// An error answer: `{"error": message}` with its status.
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        reply(self.status, json!({ "error": self.message }))
    }
}

type ApiResult = Result<Response, ApiError>;

/// Parses `{id}` with `OperationId`'s `FromStr`, whose error says what is wrong.
fn parse_id(text: &str) -> Result<OperationId, ApiError> {
    text.parse()
        .map_err(|err| ApiError::bad_request(format!("{err}: {text:?}")))
}

/// Parses an optional JSON object body: `{}` when empty.
fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(ApiError::bad_request("the body is not a JSON object")),
        Err(err) => Err(ApiError::bad_request(format!(
            "the body is not JSON: {err}"
        ))),
    }
}

/// Field `name` of `body` as a whole number: `None` if absent.
fn whole_number(body: &Value, name: &str) -> Result<Option<u64>, ApiError> {
    match &body[name] {
        Value::Null => Ok(None),
        value => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("\"{name}\" is a whole number"))),
    }
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn list(State(app): State<App>) -> Response {
    let live = app.registry.list(&Filter::new());
    reply(StatusCode::OK, live.iter().map(snapshot_json).collect())
}

async fn history(State(app): State<App>) -> Response {
    let finished = app.registry.history();
    reply(StatusCode::OK, finished.iter().map(snapshot_json).collect())
}

async fn counts(State(app): State<App>) -> Response {
    let counts = app.registry.counts();
    reply(
        StatusCode::OK,
        json!({
            "running": counts.running,
            "completed": counts.completed,
            "failed": counts.failed,
            "cancelled": counts.cancelled,
            "total": counts.total(),
        }),
    )
}

async fn one(State(app): State<App>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id(&id)?;
    match app.registry.snapshot(id) {
        Some(snapshot) => Ok(reply(StatusCode::OK, snapshot_json(&snapshot))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no operation {id}"),
        )),
    }
}

async fn cancel(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let id = parse_id(&id)?;
    let reason = match &parse_body(&body)?["reason"] {
        Value::Null => DEFAULT_REASON.to_owned(),
        Value::String(reason) => reason.clone(),
        _ => return Err(ApiError::bad_request("\"reason\" is not a string")),
    };
    if app.registry.cancel(id, reason) {
        return Ok(reply(
            StatusCode::OK,
            json!({ "id": id.as_u64(), "cancelled": true }),
        ));
    }
    // Not cancelled by this call: say why.
    Err(match app.registry.snapshot(id) {
        None => ApiError::new(StatusCode::NOT_FOUND, format!("no operation {id}")),
        Some(snapshot) if snapshot.status == StatusKind::Running => ApiError::new(
            StatusCode::CONFLICT,
            format!("operation {id} is already being cancelled"),
        ),
        Some(snapshot) => ApiError::new(
            StatusCode::CONFLICT,
            format!("operation {id} already finished: {}", snapshot.status()),
        ),
    })
}

async fn start(State(app): State<App>, body: Bytes) -> ApiResult {
    let body = parse_body(&body)?;
    let Some(name) = body["name"].as_str().filter(|name| !name.is_empty()) else {
        return Err(ApiError::bad_request("\"name\" is a non-empty string"));
    };
    let total = whole_number(&body, "total")?;
    let step_ms = whole_number(&body, "step_ms")?.unwrap_or(100).max(1);
    let op = app.registry.start(name.to_owned(), &app.root);
    let id = op.id();
    spawn_work(op, total, Duration::from_millis(step_ms));
    // The work has only just started: the snapshot is there (or the work already finished,
    // and it is in the history).
    let snapshot = app.registry.snapshot(id).ok_or_else(|| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the operation vanished")
    })?;
    Ok(reply(StatusCode::CREATED, snapshot_json(&snapshot)))
}

/// The page: a table that `refresh()` redraws from the JSON API every 250 ms.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Operations</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
  table { border-collapse: collapse; width: 100%; max-width: 60rem; }
  th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #ddd; }
  progress { width: 14rem; }
  tr[data-parent] .name { padding-left: 1.6rem; }
  tr[data-status="cancelled"] .status, tr[data-status="failed"] .status { color: #a40000; }
  tr[data-status="completed"] .status { color: #1d6b1d; }
  tr:not([data-status="running"]) { color: #666; }
  #error { color: #a40000; }
  .visually-hidden { position: absolute; clip: rect(0 0 0 0); width: 1px; height: 1px; overflow: hidden; }
</style>
</head>
<body>
<h1>Operations</h1>
<p id="summary" aria-live="polite">Loading&hellip;</p>
<p id="error" role="alert"></p>
<table>
  <caption class="visually-hidden">Running operations first, then finished ones</caption>
  <thead><tr><th scope="col">Operation</th><th scope="col">Progress</th><th scope="col">Done</th>
  <th scope="col">Status</th><th scope="col">Elapsed</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
  <tbody id="operations"></tbody>
</table>
<script>
"use strict";
// Rows are kept and updated in place, keyed by id, so that a button being clicked is not
// swapped for a new one by the next refresh.
const tbody = document.getElementById("operations");
const rows = new Map();

function newRow(op) {
  const row = document.createElement("tr");
  row.dataset.opId = op.id;
  for (const cls of ["name", "bar", "percent", "status", "elapsed", "action"]) {
    const td = document.createElement("td");
    td.className = cls;
    row.appendChild(td);
  }
  row.querySelector(".name").textContent = op.name;
  if (op.parent !== null) row.dataset.parent = op.parent;
  const bar = document.createElement("progress");
  bar.setAttribute("aria-label", "Progress of " + op.name);
  row.querySelector(".bar").appendChild(bar);
  const button = document.createElement("button");
  button.type = "button";
  button.className = "cancel";
  button.textContent = "Cancel";
  button.setAttribute("aria-label", "Cancel " + op.name);
  button.addEventListener("click", () => cancel(op.id, button));
  row.querySelector(".action").appendChild(button);
  return row;
}

function update(row, op) {
  row.dataset.status = op.status;
  const bar = row.querySelector("progress");
  if (op.progress.total !== null) {
    bar.max = Math.max(op.progress.total, 1);
    bar.value = Math.min(op.progress.done, bar.max);
  }
  const pct = op.progress.fraction === null ? "" : " (" + Math.floor(op.progress.fraction * 100) + "%)";
  const total = op.progress.total === null ? "" : "/" + op.progress.total;
  row.querySelector(".percent").textContent = op.progress.done + total + pct;
  let status = op.status;
  if (op.message !== null) status += ": " + op.message;
  else if (op.status === "running" && op.progress.message !== null) status += ": " + op.progress.message;
  row.querySelector(".status").textContent = status;
  row.querySelector(".elapsed").textContent = (op.elapsed_ms / 1000).toFixed(1) + " s";
  const button = row.querySelector("button.cancel");
  if (button && op.status !== "running") button.remove();
}

async function cancel(id, button) {
  button.disabled = true;
  try {
    const response = await fetch("/api/operations/" + id + "/cancel", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ reason: "cancelled from the dashboard" }),
    });
    if (!response.ok) {
      document.getElementById("error").textContent = (await response.json()).error;
    }
  } finally {
    refresh();
  }
}

async function refresh() {
  try {
    const [live, finished] = await Promise.all(
      ["/api/operations", "/api/history"].map(url => fetch(url).then(r => r.json())));
    // Running first, then the 20 newest finished ones, newest first.
    const shown = live.concat(finished.reverse().slice(0, 20));
    const keep = new Set();
    let last = null;
    for (const op of shown) {
      const key = String(op.id);
      keep.add(key);
      let row = rows.get(key);
      if (!row) rows.set(key, row = newRow(op));
      update(row, op);
      const next = last === null ? tbody.firstChild : last.nextSibling;
      if (row !== next) tbody.insertBefore(row, next);
      last = row;
    }
    for (const [key, row] of rows) {
      if (!keep.has(key)) { row.remove(); rows.delete(key); }
    }
    document.getElementById("summary").textContent =
      live.length + " running, " + finished.length + " finished";
    document.getElementById("error").textContent = "";
  } catch (err) {
    document.getElementById("error").textContent = "cannot reach the server: " + err;
  }
}

refresh();
setInterval(refresh, 250);
</script>
</body>
</html>
"#;
