//! Shared by `tests/dashboard.rs` and `tests/dashboard_browser.rs`: runs
//! `examples/dashboard.rs` as a child process (killed when dropped), and a small JSON client
//! for its API, every request and every wait bounded.

// Each test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;

/// The bound of one HTTP request to the dashboard.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(5);

/// Kills and reaps a child process when dropped, also when the test panics.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The dashboard example, running.
#[derive(Debug)]
pub struct Dashboard {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    pub client: reqwest::Client,
    _child: KillOnDrop,
}

impl Dashboard {
    /// Builds and starts the example on a free port, and reads its address from its first line.
    pub fn start() -> Dashboard {
        let mut child = KillOnDrop(
            Command::new(common::build_example("dashboard"))
                .arg("0")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start the dashboard example"),
        );
        let stdout = child.0.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            // Reads on until the child exits, so that it never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the dashboard printed its address within 30 s");
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_LIMIT)
            .build()
            .unwrap();
        Dashboard {
            url,
            client,
            _child: child,
        }
    }

    /// `GET path`: the status and the JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap_or_else(|err| panic!("GET {path}: {err}"));
        read(path, response).await
    }

    /// `POST path` with a JSON body (none if `body` is `Value::Null`).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let mut request = self.client.post(format!("{}{path}", self.url));
        if !body.is_null() {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|err| panic!("POST {path}: {err}"));
        read(path, response).await
    }

    /// `GET path`, which must answer `200`.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// The live operations.
    pub async fn live(&self) -> Vec<Value> {
        match self.get_ok("/api/operations").await {
            Value::Array(ops) => ops,
            other => panic!("/api/operations is not a list: {other}"),
        }
    }

    /// One operation, which the registry must know.
    pub async fn operation(&self, id: u64) -> Value {
        self.get_ok(&format!("/api/operations/{id}")).await
    }

    /// Starts a demo operation; returns its id.
    pub async fn start_operation(&self, name: &str, total: u64, step_ms: u64) -> u64 {
        let (status, op) = self
            .post(
                "/api/operations",
                serde_json::json!({ "name": name, "total": total, "step_ms": step_ms }),
            )
            .await;
        assert_eq!(status, 201, "start {name}: {op}");
        assert_eq!(op["name"], name);
        assert_eq!(op["status"], "running");
        assert_eq!(op["progress"]["total"], total);
        op["id"].as_u64().expect("an id")
    }
}

async fn read(path: &str, response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .unwrap_or_else(|err| panic!("the body of {path}: {err}"));
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("the body of {path} is not JSON ({err}): {text:?}"));
    (status, body)
}

/// Calls `check` every 50 ms until it returns `Some`, failing the test after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
