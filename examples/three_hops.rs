//! A request that crosses three services (edge, middle and leaf, each an axum server on
//! 127.0.0.1, talking HTTP with reqwest), cancelled at the edge three ways: by its deadline,
//! by its client hanging up, and by the edge shutting down. Each time the leaf's work stops,
//! and every hop can say why.
//!
//! Run it with `cargo run --example three_hops --features tower` (all three scenarios), or name
//! one: `cargo run --example three_hops --features tower -- disconnect`.
//!
//! At every hop, `ScopeLayer::new(server).deadline(DeadlinePolicy::new().max(30 s))` gives the
//! request a token of its own, named `request`: a child of the hop's server token, carrying the
//! deadline its caller sent (`grpc-timeout`, `connect-timeout-ms`; at most 30 s), and
//! triggered with `ReasonKind::Dropped` if the caller goes away before the answer is sent.
//!
//! - **edge** and **middle** call the next hop with
//!   `send(&token, || client.get(url).headers(..).send())`: the call carries the time the
//!   request has left (less a 20 ms margin for the trip, see [`HOP_ALLOWANCE`]), and a trigger drops
//!   it, which closes its connection, which the next hop sees as its caller going away.
//! - **leaf** does the work, 10 ms steps for up to 10 s, on a task of its own under
//!   `token.run(..)`: the task outlives the handler if the handler is dropped, and only the
//!   token stops it.
//!
//! The scenarios:
//!
//! - `deadline`: the client asks for 500 ms (`connect-timeout-ms: 500`) and waits. The leaf's
//!   deadline is the earliest, so the leaf stops first (`Timeout`) and answers `504`; a hop
//!   whose callee answers `504` knows its own deadline is all but spent, triggers its token
//!   with `Timeout` too, and answers `504`. The client gets `504` with the whole story.
//! - `disconnect`: the client sends its request on a raw socket and hangs up 150 ms later.
//!   The edge's server drops the handler, its token fires `Dropped`, which drops the call to
//!   middle: middle fires `Dropped`, and so does the leaf.
//! - `manual`: 150 ms in, the edge's server token is triggered (a shutdown). The edge's
//!   request token fires with that reason, its handler answers `503`, and the call it drops
//!   makes middle and leaf fire `Dropped`.
//!
//! # Output
//!
//! Narration lines start with the scenario in brackets. For each scenario, once every hop's
//! token has triggered, one machine-readable line per hop, in the order edge, middle, leaf:
//!
//! ```text
//! event scenario=deadline hop=leaf triggered_ms=463.93 deadline_ms=461.38 kind=Timeout reason="the caller's deadline of 458ms elapsed"
//! ```
//!
//! `triggered_ms` is when the hop's request token triggered (when a callback on it ran, on the
//! triggering thread, just after the token's waiters were woken) and `deadline_ms` its deadline
//! (`none` without one), both in milliseconds since the process started: one clock for all
//! three services. `kind` is the reason's `ReasonKind` and `reason` its message, with any `"`
//! turned into `'`. After the events, a `gap` line gives the leaf's trigger time minus the
//! edge's. The example exits with status 0 once every scenario is done, or 1 with a message if
//! some hop did not report within 10 s. `tests/three_hops.rs` runs it and checks the events.

use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Extension, Router};
use cancel_token::http::{send, DeadlineHeaders, DeadlinePolicy, ScopeLayer};
use cancel_token::{CancelToken, Reason, ReasonKind};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// The most time any request may take at any hop, whatever its caller asks.
const CAP: Duration = Duration::from_secs(30);

/// Taken off the time a hop passes on to its callee, for the trip.
///
/// The headers carry a duration, which the callee counts from when it reads the request: the
/// time the request spends in between (connecting, writing, being scheduled) would otherwise
/// be granted twice, and the callee's deadline could end up later than its caller's. On an
/// idle machine the trip takes well under a millisecond, but on two busy cores a first
/// request (a new connection) was seen to take 9 ms; 20 ms keeps the callee's deadline
/// first with room to spare.
const HOP_ALLOWANCE: Duration = Duration::from_millis(20);

/// What the client asks for in the `deadline` scenario.
const CLIENT_TIMEOUT_MS: u64 = 500;

/// When the client hangs up (`disconnect`) or the edge shuts down (`manual`).
const CANCEL_AFTER: Duration = Duration::from_millis(150);

/// The leaf's work: this many steps of `STEP`, ten seconds in all.
const STEPS: u32 = 1000;
const STEP: Duration = Duration::from_millis(10);

/// How long a scenario may take before the example gives up on it.
const PATIENCE: Duration = Duration::from_secs(10);

const SCENARIOS: [&str; 3] = ["deadline", "disconnect", "manual"];
const HOPS: [&str; 3] = ["edge", "middle", "leaf"];

/// What a hop reports to `main`.
enum Report {
    /// The hop's request token triggered.
    Triggered(Event),
    /// The leaf's work task ended.
    WorkEnded,
}

/// One hop's request token, as it triggered.
struct Event {
    hop: &'static str,
    triggered: Instant,
    deadline: Option<Instant>,
    reason: Reason,
}

/// One service of a chain, as its handler sees it.
#[derive(Clone)]
struct Hop {
    scenario: &'static str,
    name: &'static str,
    /// The next hop's name and the URL of its `/work`; `None` at the leaf.
    callee: Option<(&'static str, String)>,
    client: reqwest::Client,
    reports: mpsc::UnboundedSender<Report>,
}

impl Hop {
    fn say(&self, what: impl std::fmt::Display) {
        println!("[{}] {}: {what}", self.scenario, self.name);
    }

    /// Reports the request's token when it triggers.
    ///
    /// A callback rather than a task awaiting the token: it runs on the thread that triggers
    /// the token, so the time is not that of whenever a task got to run. Detached, because the handler's future may be dropped
    /// (that is how its token fires when the caller leaves) and the callback must outlive it.
    fn watch(&self, token: &CancelToken) {
        let deadline = token.deadline();
        match deadline {
            Some(deadline) => self.say(format_args!(
                "got the request, deadline in {:.1?}",
                deadline.saturating_duration_since(Instant::now())
            )),
            None => self.say("got the request, no deadline"),
        }
        let (hop, reports) = (self.name, self.reports.clone());
        token
            .on_cancel(move |reason| {
                let event = Event {
                    hop,
                    triggered: Instant::now(),
                    deadline,
                    reason: reason.clone(),
                };
                let _ = reports.send(Report::Triggered(event));
            })
            .detach();
    }
}

/// The deadline headers for a call made now under `token`: the time it has left, less
/// [`HOP_ALLOWANCE`] (the headers' margin), rounded down. Empty if it has no deadline.
fn deadline_headers(token: &CancelToken) -> HeaderMap {
    DeadlineHeaders::new()
        .margin(HOP_ALLOWANCE)
        .header_map(token)
}

/// The answer of a hop whose token triggered: `504` for a deadline, `499` (nginx's "client
/// closed request", which nobody will read) for a caller gone, `503` otherwise.
fn stopped(hop: &str, reason: &Reason) -> Response {
    let status = match reason.kind() {
        ReasonKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ReasonKind::Dropped => StatusCode::from_u16(499).expect("a valid status code"),
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = format!("{hop} stopped ({:?}): {reason}", reason.kind());
    (status, body).into_response()
}

/// The edge's and the middle's handler: calls the next hop under the request's token.
async fn call_next(State(hop): State<Hop>, Extension(token): Extension<CancelToken>) -> Response {
    hop.watch(&token);
    let (callee, url) = hop.callee.clone().expect("edge and middle have a callee");
    // `send` builds the request at its first poll, so the time left is measured as late as it
    // can be; a trigger drops the request, closing its connection.
    let answer = send(&token, || {
        let headers = deadline_headers(&token);
        match headers.get("connect-timeout-ms") {
            Some(ms) => hop.say(format_args!(
                "calling {callee} with connect-timeout-ms: {}",
                ms.to_str().unwrap_or("?")
            )),
            None => hop.say(format_args!("calling {callee}")),
        }
        hop.client.get(&url).headers(headers).send()
    })
    .await;
    let response = match answer {
        Ok(response) => response,
        Err(err) => {
            return match err.reason() {
                Some(reason) => stopped(hop.name, reason),
                None => {
                    let body = format!("{}: calling {callee} failed: {err}", hop.name);
                    (StatusCode::BAD_GATEWAY, body).into_response()
                }
            }
        }
    };
    let status = response.status();
    let body = match token.run(response.text()).await {
        Ok(Ok(body)) => body,
        Ok(Err(err)) => format!("(unreadable: {err})"),
        Err(cancelled) => return stopped(hop.name, cancelled.reason()),
    };
    if status == StatusCode::GATEWAY_TIMEOUT {
        // The callee's deadline was ours less the allowance: ours is all but spent too. Say so
        // on our token now, which stops anything else this request still runs.
        token.trigger_with(Reason::with_message(
            ReasonKind::Timeout,
            format!("the deadline ran out downstream: {callee} answered {status}"),
        ));
    }
    let body = format!("{}: {callee} answered {status}: {body}", hop.name);
    (status, body).into_response()
}

/// The leaf's handler: runs the work on a task of its own, under the request's token.
async fn work(State(hop): State<Hop>, Extension(token): Extension<CancelToken>) -> Response {
    hop.watch(&token);
    hop.say(format_args!("working: up to {STEPS} steps of {STEP:?}"));
    let job = {
        let (hop, token) = (hop.clone(), token.clone());
        async move {
            let mut done = 0;
            let work = async {
                for _ in 0..STEPS {
                    tokio::time::sleep(STEP).await;
                    done += 1;
                }
            };
            let outcome = token.run(work).await;
            if let Err(cancelled) = &outcome {
                hop.say(format_args!(
                    "work stopped after {done} of {STEPS} steps: {cancelled}"
                ));
            }
            let _ = hop.reports.send(Report::WorkEnded);
            outcome
        }
    };
    // Spawned, as a query or a job would be: if the handler is dropped, the task runs on, and
    // the token is what stops it.
    match tokio::spawn(job).await {
        Ok(Ok(())) => (StatusCode::OK, format!("leaf: done, {STEPS} steps")).into_response(),
        Ok(Err(cancelled)) => stopped(hop.name, cancelled.reason()),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, format!("leaf: {err}")).into_response(),
    }
}

/// Starts one hop's server: `route` at `/work`, every request scoped under `server`.
async fn serve(hop: Hop, route: MethodRouter<Hop>, server: &CancelToken) -> io::Result<String> {
    let scope = ScopeLayer::new(server.clone()).deadline(DeadlinePolicy::new().max(CAP));
    let app = Router::new()
        .route("/work", get(route))
        .layer(scope)
        .with_state(hop);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/work", listener.local_addr()?);
    tokio::spawn(axum::serve(listener, app).into_future());
    Ok(url)
}

/// A scenario's three services, started leaf first so each knows its callee's address.
struct Chain {
    edge: SocketAddr,
    edge_server: CancelToken,
    reports: mpsc::UnboundedReceiver<Report>,
}

async fn start_chain(scenario: &'static str) -> io::Result<Chain> {
    let (reports, received) = mpsc::unbounded_channel();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(io::Error::other)?;
    let hop = |name, callee| Hop {
        scenario,
        name,
        callee,
        client: client.clone(),
        reports: reports.clone(),
    };
    let leaf = serve(hop("leaf", None), get(work), &CancelToken::named("leaf")).await?;
    let middle = hop("middle", Some(("leaf", leaf)));
    let middle = serve(middle, get(call_next), &CancelToken::named("middle")).await?;
    let edge_server = CancelToken::named("edge");
    let edge = serve(
        hop("edge", Some(("middle", middle))),
        get(call_next),
        &edge_server,
    )
    .await?;
    let edge = edge
        .trim_start_matches("http://")
        .trim_end_matches("/work")
        .parse()
        .map_err(io::Error::other)?;
    Ok(Chain {
        edge,
        edge_server,
        reports: received,
    })
}

/// The user's side of a scenario.
async fn client(scenario: &str, chain: &Chain) -> Result<(), Box<dyn std::error::Error>> {
    let url = format!("http://{}/work", chain.edge);
    let say = |what: String| println!("[{scenario}] client: {what}");
    let client = reqwest::Client::builder().no_proxy().build()?;
    match scenario {
        "deadline" => {
            say(format!(
                "asks the edge with connect-timeout-ms: {CLIENT_TIMEOUT_MS}, and waits"
            ));
            let response = client
                .get(&url)
                .header("connect-timeout-ms", CLIENT_TIMEOUT_MS.to_string())
                .send()
                .await?;
            let status = response.status();
            say(format!("got {status}: {}", response.text().await?));
        }
        "disconnect" => {
            let mut socket = tokio::net::TcpStream::connect(chain.edge).await?;
            let request = format!("GET /work HTTP/1.1\r\nhost: {}\r\n\r\n", chain.edge);
            socket.write_all(request.as_bytes()).await?;
            say("sent its request on a raw socket".to_owned());
            tokio::time::sleep(CANCEL_AFTER).await;
            say(format!("hangs up, {CANCEL_AFTER:?} later"));
            drop(socket);
        }
        "manual" => {
            let request = tokio::spawn(client.get(&url).send());
            say("sent its request".to_owned());
            tokio::time::sleep(CANCEL_AFTER).await;
            println!("[{scenario}] edge server: shutting down");
            chain
                .edge_server
                .trigger_with("the edge server is shutting down");
            let response = request.await??;
            let status = response.status();
            say(format!("got {status}: {}", response.text().await?));
        }
        other => unreachable!("no scenario {other}"),
    }
    Ok(())
}

/// Waits until the three hops reported their tokens and the leaf's work ended; the events in
/// the order edge, middle, leaf.
async fn collect(chain: &mut Chain, give_up: tokio::time::Instant) -> Result<Vec<Event>, String> {
    let mut events: Vec<Event> = Vec::new();
    let mut work_ended = false;
    while events.len() < HOPS.len() || !work_ended {
        match tokio::time::timeout_at(give_up, chain.reports.recv()).await {
            Ok(Some(Report::Triggered(event))) => events.push(event),
            Ok(Some(Report::WorkEnded)) => work_ended = true,
            Ok(None) => return Err("the services stopped reporting".to_owned()),
            Err(_) => {
                let missing: Vec<&str> = HOPS
                    .into_iter()
                    .filter(|&hop| events.iter().all(|event| event.hop != hop))
                    .collect();
                return Err(format!(
                    "after {PATIENCE:?}, no trigger reported by {missing:?}, leaf's work ended: {work_ended}"
                ));
            }
        }
    }
    events.sort_by_key(|event| HOPS.iter().position(|&hop| hop == event.hop));
    Ok(events)
}

fn millis(start: Instant, at: Instant) -> f64 {
    at.duration_since(start).as_secs_f64() * 1000.0
}

/// Runs one scenario to the end: every hop's token triggered and the leaf's work ended.
async fn run(scenario: &'static str, start: Instant) -> Result<f64, String> {
    let give_up = tokio::time::Instant::now() + PATIENCE;
    let mut chain = start_chain(scenario)
        .await
        .map_err(|err| format!("starting the services: {err}"))?;
    match tokio::time::timeout_at(give_up, client(scenario, &chain)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(format!("the client failed: {err}")),
        Err(_) => return Err(format!("the client had no answer after {PATIENCE:?}")),
    }
    let events = collect(&mut chain, give_up).await?;
    for event in &events {
        let deadline = event.deadline.map_or("none".to_owned(), |deadline| {
            format!("{:.2}", millis(start, deadline))
        });
        println!(
            "event scenario={scenario} hop={} triggered_ms={:.2} deadline_ms={deadline} kind={:?} reason=\"{}\"",
            event.hop,
            millis(start, event.triggered),
            event.reason.kind(),
            event.reason.to_string().replace('"', "'"),
        );
    }
    let at = |hop| {
        events
            .iter()
            .find(|event| event.hop == hop)
            .map(|event| millis(start, event.triggered))
            .expect("every hop reported")
    };
    let gap = at("leaf") - at("edge");
    println!("gap scenario={scenario} leaf_minus_edge_ms={gap:.2}");
    Ok(gap)
}

#[tokio::main]
async fn main() {
    let start = Instant::now();
    let scenarios: Vec<&'static str> = match std::env::args().nth(1) {
        None => SCENARIOS.to_vec(),
        Some(name) => match SCENARIOS.iter().find(|&&known| known == name) {
            Some(&scenario) => vec![scenario],
            None => {
                eprintln!("no scenario {name:?}; the scenarios are {SCENARIOS:?}");
                std::process::exit(2);
            }
        },
    };
    let mut gaps = Vec::new();
    for scenario in scenarios {
        println!("[{scenario}] starting edge, middle and leaf");
        match run(scenario, start).await {
            Ok(gap) => gaps.push((scenario, gap)),
            Err(err) => {
                eprintln!("scenario {scenario} failed: {err}");
                std::process::exit(1);
            }
        }
    }
    println!(
        "every hop stopped in every scenario, in {:.1?}",
        start.elapsed()
    );
    for (scenario, gap) in gaps {
        let (gap, order) = if gap < 0.0 {
            (-gap, "before")
        } else {
            (gap, "after")
        };
        println!("  {scenario}: the leaf's token triggered {gap:.2} ms {order} the edge's");
    }
}
