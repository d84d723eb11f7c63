//! The dashboard's page in a real browser: runs `examples/dashboard.rs`, starts `chromedriver`
//! with headless chromium (Debian's `chromium` and `chromium-driver` packages), and speaks the
//! W3C WebDriver protocol to it over HTTP. Checks that the page
//!
//! - lists the running operations: its running rows are the ids and names of
//!   `/api/operations`;
//! - advances their bars: a row's `<progress>` value grows between two reads;
//! - cancels one with its Cancel button: the JSON API reports it cancelled with the page's
//!   reason, and the page shows it cancelled, with that reason and without a button, while
//!   its neighbour runs on.
//!
//! Ignored by default, so that `cargo test` needs no browser: `bash .ci/browser` installs the
//! packages if they are missing and runs it
//! (`cargo test --all-features --test dashboard_browser -- --ignored`).
#![cfg(unix)]

mod common;
mod support_dashboard;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support_dashboard::{eventually, Dashboard, KillOnDrop};

/// The whole browser session; only turns a hang into a failure.
const TEST_LIMIT: Duration = Duration::from_secs(120);

/// How long a wait for the page or the demo work may take.
const WAIT: Duration = Duration::from_secs(20);

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// The key of a web element reference in WebDriver's JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The reason the page's Cancel button sends.
const PAGE_REASON: &str = "cancelled from the dashboard";

/// Kills chromedriver's process group (chromedriver and the chromium it started) when dropped.
#[derive(Debug)]
struct KillGroup(KillOnDrop);

impl Drop for KillGroup {
    fn drop(&mut self) {
        // The group was made with chromedriver as its leader: its id is the group's id.
        let group = format!("-{}", self.0 .0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
    }
}

/// A free port on 127.0.0.1, as the system hands one out (free now; nobody else should
/// take it before chromedriver does).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A WebDriver session, spoken over HTTP.
struct Session {
    client: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    url: String,
}

/// Sends a WebDriver command: its `value`, or the error WebDriver reported.
async fn command(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut request = client.request(method.clone(), url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request
        .send()
        .await
        .map_err(|err| format!("{method} {url}: {err}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|err| format!("{method} {url}: {err}"))?;
    let mut reply: Value = serde_json::from_str(&text)
        .map_err(|err| format!("{method} {url}: not JSON ({err}): {text:?}"))?;
    if status.is_success() {
        Ok(reply["value"].take())
    } else {
        Err(format!(
            "{method} {url}: {status}: {} {}",
            reply["value"]["error"], reply["value"]["message"]
        ))
    }
}

impl Session {
    async fn new(client: reqwest::Client, driver: &str) -> Session {
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                             "--disable-gpu", "--no-first-run"],
                },
                "timeouts": { "pageLoad": 30_000, "script": 10_000, "implicit": 0 },
            }}
        });
        let value = command(
            &client,
            reqwest::Method::POST,
            &format!("{driver}/session"),
            Some(capabilities),
        )
        .await
        .unwrap_or_else(|err| panic!("new WebDriver session: {err}"));
        let id = value["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Session {
            client,
            url: format!("{driver}/session/{id}"),
        }
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        command(
            &self.client,
            reqwest::Method::GET,
            &format!("{}{path}", self.url),
            None,
        )
        .await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        command(
            &self.client,
            reqwest::Method::POST,
            &format!("{}{path}", self.url),
            Some(body),
        )
        .await
    }

    async fn navigate(&self, url: &str) {
        self.post("/url", json!({ "url": url }))
            .await
            .unwrap_or_else(|err| panic!("navigate to {url}: {err}"));
    }

    /// The elements matching `css`, under element `within` if given.
    async fn find_all(&self, within: Option<&str>, css: &str) -> Result<Vec<String>, String> {
        let path = match within {
            Some(element) => format!("/element/{element}/elements"),
            None => "/elements".to_owned(),
        };
        let found = self
            .post(&path, json!({ "using": "css selector", "value": css }))
            .await?;
        Ok(found
            .as_array()
            .ok_or_else(|| format!("find {css}: {found}"))?
            .iter()
            .map(|element| element[ELEMENT].as_str().unwrap_or_default().to_owned())
            .collect())
    }

    /// The one element matching `css` under `within`.
    async fn find(&self, within: Option<&str>, css: &str) -> Result<String, String> {
        let mut found = self.find_all(within, css).await?;
        match found.len() {
            1 => Ok(found.pop().unwrap()),
            n => Err(format!("{n} elements match {css:?}")),
        }
    }

    async fn text(&self, element: &str) -> Result<String, String> {
        let text = self.get(&format!("/element/{element}/text")).await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    async fn attribute(&self, element: &str, name: &str) -> Result<Option<String>, String> {
        let value = self
            .get(&format!("/element/{element}/attribute/{name}"))
            .await?;
        Ok(value.as_str().map(str::to_owned))
    }

    async fn property(&self, element: &str, name: &str) -> Result<Value, String> {
        self.get(&format!("/element/{element}/property/{name}"))
            .await
    }

    async fn click(&self, element: &str) -> Result<(), String> {
        self.post(&format!("/element/{element}/click"), json!({}))
            .await
            .map(drop)
    }

    async fn delete(self) {
        let _ = command(&self.client, reqwest::Method::DELETE, &self.url, None).await;
    }
}

/// One row of the page, as the browser shows it.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    id: u64,
    status: String,
    name: String,
    /// The `<progress>` bar's value.
    value: f64,
    /// The text of the status cell.
    status_text: String,
    has_cancel: bool,
}

/// Reads the page's rows. An error (an element replaced while it was read) is for the caller
/// to retry.
async fn rows(session: &Session) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for row in session.find_all(None, "#operations tr[data-op-id]").await? {
        let id = session.attribute(&row, "data-op-id").await?;
        let id = id
            .and_then(|id| id.parse().ok())
            .ok_or("a row without an id")?;
        let bar = session.find(Some(&row), "progress").await?;
        rows.push(Row {
            id,
            status: session
                .attribute(&row, "data-status")
                .await?
                .unwrap_or_default(),
            name: session
                .text(&session.find(Some(&row), ".name").await?)
                .await?,
            value: session
                .property(&bar, "value")
                .await?
                .as_f64()
                .unwrap_or(0.0),
            status_text: session
                .text(&session.find(Some(&row), ".status").await?)
                .await?,
            has_cancel: !session
                .find_all(Some(&row), "button.cancel")
                .await?
                .is_empty(),
        });
    }
    Ok(rows)
}

/// The row of operation `id`, once the page shows one for which `ok` holds.
async fn row_when(session: &Session, id: u64, what: &str, ok: impl Fn(&Row) -> bool) -> Row {
    eventually(what, WAIT, || async {
        let rows = rows(session).await.ok()?;
        rows.into_iter().find(|row| row.id == id && ok(row))
    })
    .await
}

#[test]
#[ignore = "needs chromium and chromedriver: run `bash .ci/browser`"]
fn page_in_chromium() {
    for program in [CHROMEDRIVER, CHROMIUM] {
        assert!(
            std::path::Path::new(program).exists(),
            "{program} is missing: `bash .ci/browser` installs it"
        );
    }
    let dashboard = Dashboard::start();
    let port = free_port();
    let _driver = KillGroup(KillOnDrop(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .expect("start chromedriver"),
    ));
    let driver = format!("http://127.0.0.1:{port}");
    common::multi_thread_runtime().block_on(async {
        tokio::time::timeout(TEST_LIMIT, drive(&dashboard, &driver))
            .await
            .expect("the browser test ran over its limit")
    });
}

async fn drive(dashboard: &Dashboard, driver: &str) {
    // Starting chromium can take a while on a busy machine.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    eventually("chromedriver to be ready", WAIT, || async {
        let url = format!("{driver}/status");
        let status = command(&client, reqwest::Method::GET, &url, None)
            .await
            .ok()?;
        (status["ready"] == true).then_some(())
    })
    .await;

    let target = dashboard
        .start_operation("browser job", 1_000_000, 20)
        .await;
    let neighbour = dashboard
        .start_operation("neighbour job", 1_000_000, 20)
        .await;

    let session = Session::new(client, driver).await;
    session.navigate(&format!("{}/", dashboard.url)).await;
    let title = session.get("/title").await.unwrap();
    assert_eq!(title, "Operations");

    // The page lists the running operations: the same ids and names as the JSON API.
    eventually("the page to list the running operations", WAIT, || async {
        let live: Vec<(u64, String)> = dashboard
            .live()
            .await
            .iter()
            .map(|op| {
                (
                    op["id"].as_u64().unwrap(),
                    op["name"].as_str().unwrap().into(),
                )
            })
            .collect();
        let shown: Vec<(u64, String)> = rows(&session)
            .await
            .ok()?
            .into_iter()
            .filter(|row| row.status == "running" && row.has_cancel)
            .map(|row| (row.id, row.name))
            .collect();
        let ours = [target, neighbour].map(|id| live.iter().any(|(live, _)| *live == id));
        (ours == [true, true] && shown == live).then_some(())
    })
    .await;

    // Its bar advances.
    let first = row_when(&session, target, "the job's bar to move", |row| {
        row.value > 0.0
    })
    .await;
    row_when(&session, target, "the job's bar to advance", |row| {
        row.value > first.value
    })
    .await;

    // Its Cancel button cancels it.
    let button = session
        .find(None, &format!("tr[data-op-id=\"{target}\"] button.cancel"))
        .await
        .unwrap();
    session.click(&button).await.unwrap();
    let op = eventually("the API to report the job cancelled", WAIT, || async {
        let op = dashboard.operation(target).await;
        (op["status"] != "running").then_some(op)
    })
    .await;
    assert_eq!(op["status"], "cancelled", "{op}");
    assert_eq!(op["message"], PAGE_REASON, "{op}");
    assert_eq!(op["reason_kind"], "manual", "{op}");
    let row = row_when(
        &session,
        target,
        "the page to show the job cancelled",
        |row| row.status == "cancelled",
    )
    .await;
    assert_eq!(
        row.status_text,
        format!("cancelled: {PAGE_REASON}"),
        "{row:?}"
    );
    assert!(!row.has_cancel, "{row:?}");

    // Its neighbour runs on, in the API and on the page.
    assert_eq!(dashboard.operation(neighbour).await["status"], "running");
    let before = row_when(&session, neighbour, "the neighbour's row", |row| {
        row.status == "running" && row.has_cancel
    })
    .await;
    row_when(
        &session,
        neighbour,
        "the neighbour's bar to advance",
        |row| row.value > before.value,
    )
    .await;

    session.delete().await;
}
