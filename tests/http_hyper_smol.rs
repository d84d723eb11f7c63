//! The `http` feature against a real server with a real client: hyper's HTTP/1.1 client on
//! smol (no tokio anywhere in these tests).
//!
//! Every test starts its own HTTP/1.1 server on 127.0.0.1 (tests/support_http), drives hyper
//! through `cancel_token::http`, and checks what the server saw: accepts, requests, socket
//! closes and the time they happened, and whether uploads arrived complete. The client is a
//! one-connection pool over `hyper::client::conn::http1` (reused while hyper says it is ready,
//! replaced otherwise), the way pooling clients treat a connection. Latencies are printed
//! (`--nocapture`); bounds are generous and only catch hangs and gross regressions.
#![cfg(all(feature = "http", feature = "http-body"))]

mod support_http;

use std::error::Error;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cancel_token::http::{find_cancelled, retry, scope, send, CancelBody, CancelFutureExt, Retry};
use cancel_token::{CancelToken, ReasonKind};

use futures_lite::future::zip;
use futures_lite::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, BodyStream, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use smol_hyper::rt::FuturesIo;
use support_http::{
    assert_stopped_by_error, bounded, cut_upload_body, eventually, ms, race_trigger, refused_port,
    stream_chunk, stream_prefix_ok, BodyEvent, SlowBody, TestServer, CLOSE_WITHIN, FAST_BODY,
    FLAKY_OK_BODY, LIMIT,
};

type BoxError = Box<dyn Error + Send + Sync>;
type ReqBody = BoxBody<Bytes, BoxError>;

/// The error of [`Client`]: the connect failed, or hyper did.
#[derive(Debug)]
enum ClientError {
    Connect(io::Error),
    Hyper(hyper::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(err) => write!(f, "connect failed: {err}"),
            ClientError::Hyper(err) => write!(f, "request failed: {err}"),
        }
    }
}

impl Error for ClientError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ClientError::Connect(err) => Some(err),
            ClientError::Hyper(err) => Some(err),
        }
    }
}

/// A hyper HTTP/1.1 client on smol with a pool of one connection.
struct Client {
    addr: SocketAddr,
    sender: Option<SendRequest<ReqBody>>,
    connects: usize,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            sender: None,
            connects: 0,
        }
    }

    async fn request(
        &mut self,
        request: http::Request<ReqBody>,
    ) -> Result<http::Response<Incoming>, ClientError> {
        if let Some(sender) = self.sender.as_mut() {
            // Ready once the previous exchange is over; an error once the connection is gone
            // (hyper closes one whose response was cut short).
            if sender.ready().await.is_ok() {
                return sender
                    .send_request(request)
                    .await
                    .map_err(ClientError::Hyper);
            }
            self.sender = None;
        }
        let stream = smol::net::TcpStream::connect(self.addr)
            .await
            .map_err(ClientError::Connect)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(FuturesIo::new(stream))
                .await
                .map_err(ClientError::Hyper)?;
        smol::spawn(async move {
            let _ = connection.await;
        })
        .detach();
        self.connects += 1;
        let response = sender.send_request(request);
        self.sender = Some(sender);
        response.await.map_err(ClientError::Hyper)
    }

    fn build(&self, method: &str, target: &str, body: ReqBody) -> http::Request<ReqBody> {
        http::Request::builder()
            .method(method)
            .uri(target)
            .header(http::header::HOST, self.addr.to_string())
            .body(body)
            .unwrap()
    }

    async fn get(&mut self, target: &str) -> Result<http::Response<Incoming>, ClientError> {
        let request = self.build("GET", target, empty());
        self.request(request).await
    }
}

fn empty() -> ReqBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

fn boxed<B>(body: B) -> ReqBody
where
    B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Error + Send + Sync + 'static,
{
    body.map_err(|err| Box::new(err) as BoxError).boxed()
}

/// GETs `/fast` (tagged) and checks the body byte for byte.
async fn fast_exact(client: &mut Client, tag: &str) {
    let target = format!("/fast?{tag}");
    let response = bounded(LIMIT, "GET /fast", client.get(&target))
        .await
        .unwrap_or_else(|err| panic!("GET {target}: {err}"));
    assert_eq!(response.status(), 200);
    let body = bounded(LIMIT, "read /fast", response.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], FAST_BODY, "{target}: stale or truncated bytes");
}

fn run<F: std::future::Future>(test: F) -> F::Output {
    smol::block_on(bounded(Duration::from_secs(120), "test", test))
}

// ---------------------------------------------------------------------------------------------

#[test]
fn pre_triggered_token_never_reaches_the_server() {
    run(async {
        let server = TestServer::start();
        let mut client = Client::new(server.addr());
        let token = CancelToken::named("request");
        token.trigger_with("user navigated away");

        let mut called = false;
        let err = send(&token, || {
            called = true;
            client.get("/fast?pre")
        })
        .await
        .unwrap_err();
        assert!(!called, "send called the closure of a triggered token");
        assert!(err.is_cancelled());
        assert_eq!(err.reason().unwrap().message(), Some("user navigated away"));

        // Built but never polled: no connect, no request.
        let err = client
            .get("/fast?pre-built")
            .with_cancel(&token)
            .await
            .unwrap_err();
        assert!(err.is_cancelled());

        smol::Timer::after(Duration::from_millis(200)).await;
        assert_eq!(server.accepts(), 0, "a connection reached the server");
        assert_eq!(server.request_count(), 0, "a request reached the server");

        // Control: the same client with a live token does reach this server.
        fast_exact(&mut client, "live").await;
        assert_eq!(server.accepts(), 1);
    });
}

#[test]
fn trigger_mid_flight_from_a_thread_returns_cancelled_and_closes_the_socket() {
    run(async {
        let server = TestServer::start();
        let mut client = Client::new(server.addr());
        let token = CancelToken::named("page");
        let target = "/never?case=mid-flight";

        // The request inside `send` must be gone at the trigger, not when `send` is dropped.
        let request = server.await_then_closed(target, send(&token, || client.get(target)));
        let remote = token.clone();
        let trigger = async {
            assert!(eventually(LIMIT, || server.request(target).is_some()).await);
            smol::Timer::after(Duration::from_millis(20)).await;
            // From a plain OS thread: no executor there.
            let thread = std::thread::spawn(move || {
                let at = Instant::now();
                remote.trigger_with("user clicked stop");
                at
            });
            smol::unblock(move || thread.join().unwrap()).await
        };
        let ((result, returned_at), triggered_at) = zip(request, trigger).await;

        let err = result.unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
        assert_eq!(err.reason().unwrap().message(), Some("user clicked stop"));
        assert_eq!(err.reason().unwrap().kind(), ReasonKind::Manual);
        assert!(find_cancelled(&err).is_some());
        let returned = returned_at.saturating_duration_since(triggered_at);
        assert!(returned < Duration::from_secs(1), "{returned:?}");

        let (close, kind) = server.wait_closed(target, triggered_at).await;
        eprintln!(
            "hyper/smol mid-flight: send returned {:.2} ms after the trigger, server saw the socket close ({kind:?}) after {:.2} ms",
            ms(returned),
            ms(close)
        );
        assert!(close < CLOSE_WITHIN, "{close:?}");

        // The client replaces the dead connection and carries on.
        fast_exact(&mut client, "after=mid-flight").await;
        assert_eq!(client.connects, 2);
    });
}

#[test]
fn cancel_body_over_incoming_stops_the_download_and_the_next_request_is_exact() {
    run(async {
        let server = TestServer::start();
        let mut client = Client::new(server.addr());
        fast_exact(&mut client, "before").await;

        // `CancelBody` over hyper's `Incoming`.
        let token = CancelToken::named("download");
        let target = "/stream?case=cancel-body";
        let response = send(&token, || client.get(target)).await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = CancelBody::new(token.clone(), response.into_body());
        let mut received = Vec::new();
        while received.len() < 3 * stream_chunk(0).len() {
            let frame = bounded(LIMIT, "frame", body.frame())
                .await
                .expect("ended by itself")
                .expect("error before the trigger");
            if let Ok(data) = frame.into_data() {
                received.extend_from_slice(&data);
            }
        }
        assert!(stream_prefix_ok(&received));
        let triggered_at = Instant::now();
        token.trigger_with("download aborted");
        let err = bounded(LIMIT, "frame after trigger", body.frame())
            .await
            .expect("a clean end after the trigger")
            .expect_err("data after the trigger");
        assert!(err.is_cancelled());
        assert_eq!(err.reason().unwrap().message(), Some("download aborted"));
        assert!(body.frame().await.is_none(), "ends after the error frame");
        assert!(hyper::body::Body::is_end_stream(&body));

        // `Incoming` was dropped at the trigger: the socket closes while `body` still lives.
        let (close, _) = server.wait_closed(target, triggered_at).await;
        eprintln!(
            "hyper/smol CancelBody download: server saw the close after {:.2} ms",
            ms(close)
        );
        assert!(close < CLOSE_WITHIN);
        drop(body);
        fast_exact(&mut client, "after=cancel-body").await;

        // The core `stream` adapter over the same kind of body.
        let token = CancelToken::named("download 2");
        let target = "/stream?case=core-stream";
        let response = send(&token, || client.get(target)).await.unwrap();
        let mut frames = token.stream(BodyStream::new(response.into_body()));
        let mut data = 0;
        while data < 3 {
            let frame = bounded(LIMIT, "frame", frames.next())
                .await
                .unwrap()
                .unwrap();
            data += usize::from(frame.is_data());
        }
        let triggered_at = Instant::now();
        token.trigger();
        assert!(
            frames.next().await.is_none(),
            "the stream went on after the trigger"
        );
        let (close, _) = server.wait_closed(target, triggered_at).await;
        eprintln!(
            "hyper/smol core stream download: server saw the close after {:.2} ms",
            ms(close)
        );
        drop(frames);
        fast_exact(&mut client, "after=core-stream").await;

        // Every cut body cost its connection: nothing was sent on a connection after its
        // `/stream`, so no stale bytes could cross into a `/fast`.
        let requests = server.requests();
        for (i, stream) in requests
            .iter()
            .enumerate()
            .filter(|(_, r)| r.path == "/stream")
        {
            assert!(
                requests[i + 1..]
                    .iter()
                    .all(|later| later.conn != stream.conn),
                "connection {} was reused after a cut body",
                stream.conn
            );
        }
        assert_eq!(client.connects, 3);
    });
}

#[test]
fn cancelled_upload_is_never_recorded_complete() {
    run(async {
        let server = TestServer::start();
        let mut client = Client::new(server.addr());

        for (exact, tag) in [(true, "control-length"), (false, "control-chunked")] {
            let target = format!("/upload?case={tag}");
            let token = CancelToken::new();
            let body = CancelBody::new(
                token.clone(),
                SlowBody::new(16, 1024, Duration::from_millis(1), exact),
            );
            let request = client.build("POST", &target, boxed(body));
            let response = send(&token, || client.request(request)).await.unwrap();
            assert_eq!(response.status(), 200);
            let text = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&text[..], b"received 16384\n");
            server.assert_upload_complete(&target, exact.then_some(16384));
        }

        for (exact, tag) in [(true, "cut-length"), (false, "cut-chunked")] {
            let target = format!("/upload?case={tag}");
            let token = CancelToken::named("upload");
            let (watched, events) = cut_upload_body(&token, exact);
            let request = client.build("POST", &target, boxed(watched));
            let sending = send(&token, || client.request(request));
            let (result, returned_at, triggered_at) = server
                .trigger_mid_upload(&target, 4096, &token, "upload cancelled", sending)
                .await;
            let err = result.unwrap_err();
            assert!(err.is_cancelled(), "{tag}: {err:?}");
            assert_eq!(err.reason().unwrap().message(), Some("upload cancelled"));

            server
                .assert_cut_upload("hyper/smol", &target, triggered_at, returned_at)
                .await;

            // `send` dropped the request (and the connection) at the trigger, so hyper may not
            // have polled the body again; if it did, it read the error. Never a clean end.
            let events = events.lock().unwrap().clone();
            assert!(
                !events.contains(&BodyEvent::End),
                "{tag}: clean end: {events:?}"
            );
            assert!(
                events
                    .iter()
                    .filter(|e| matches!(e, BodyEvent::Error(_)))
                    .count()
                    <= 1,
                "{tag}: {events:?}"
            );
        }

        // The raw hyper error of a cut upload still leads to the `Cancelled`.
        let token = CancelToken::named("raw");
        let target = "/upload?case=raw";
        let (watched, events) = cut_upload_body(&token, false);
        let request = client.build("POST", target, boxed(watched));
        let (result, ..) = server
            .trigger_mid_upload(target, 1, &token, "disk full", client.request(request))
            .await;
        let err = result.unwrap_err();
        assert!(matches!(err, ClientError::Hyper(_)), "{err:?}");
        let found = find_cancelled(&err).unwrap_or_else(|| panic!("no Cancelled in {err:?}"));
        assert_eq!(found.reason().message(), Some("disk full"));
        // Nobody dropped the request here: hyper read the body's one error frame, and it was
        // never told the body ended.
        assert_stopped_by_error(&events.lock().unwrap(), "disk full");
        assert!(!server.wait_upload_finished(target).await.complete);

        assert_eq!(server.completed_uploads(), 2, "only the two controls");
        fast_exact(&mut client, "after=uploads").await;
    });
}

#[test]
fn connect_refused_passes_through_as_the_clients_error() {
    run(async {
        let mut client = Client::new(SocketAddr::from(([127, 0, 0, 1], refused_port())));
        let token = CancelToken::named("live");
        let err = send(&token, || client.get("/fast")).await.unwrap_err();
        assert!(!err.is_cancelled(), "{err:?}");
        assert!(find_cancelled(&err).is_none());
        match err.into_inner() {
            Some(ClientError::Connect(io)) => {
                assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused, "{io:?}")
            }
            other => panic!("{other:?}"),
        }
        assert!(!token.is_triggered());
    });
}

#[test]
fn retry_on_smol_back_off_of_10s_cancelled_at_50ms_returns_at_once_after_one_attempt() {
    run(async {
        let server = TestServer::with_flaky_failures(1000);
        let client = smol::lock::Mutex::new(Client::new(server.addr()));
        let token = CancelToken::named("retry");
        let attempts = AtomicUsize::new(0);
        let retrying = retry(
            &token,
            std::iter::repeat_n(Duration::from_secs(10), 5),
            |outcome: &Result<http::Response<Incoming>, ClientError>| match outcome {
                Ok(response) if response.status() == 503 => Retry::Retry,
                Ok(_) => Retry::Done,
                Err(_) => Retry::Retry,
            },
            || {
                attempts.fetch_add(1, Ordering::SeqCst);
                async { client.lock().await.get("/flaky").await }
            },
        );
        server
            .assert_retry_cancelled_mid_back_off("hyper/smol", &token, retrying, smol::Timer::after)
            .await;
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn retry_on_smol_without_cancellation_gets_200() {
    run(async {
        let server = TestServer::with_flaky_failures(3);
        let client = smol::lock::Mutex::new(Client::new(server.addr()));
        let token = CancelToken::named("retry");
        let response = retry(
            &token,
            std::iter::repeat_n(Duration::from_millis(20), 5),
            |outcome: &Result<http::Response<Incoming>, ClientError>| match outcome {
                Ok(response) if response.status() == 503 => Retry::Retry,
                Ok(_) => Retry::Done,
                Err(_) => Retry::Retry,
            },
            || async { client.lock().await.get("/flaky").await },
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], FLAKY_OK_BODY);
        assert_eq!(server.requests_to("/flaky"), 4);
    });
}

/// 200 requests to `/stream` or `/never` cut at random points, through `CancelBody` or the
/// core `stream` adapter, each followed by an exact `/fast`; afterwards at most the client's
/// one live connection is open, and none once the client is dropped.
#[test]
fn random_cancellations_leave_no_stale_bytes_and_no_leaked_connections() {
    const ROUNDS: usize = 200;
    run(async {
        let server = TestServer::start();
        let mut client = Client::new(server.addr());
        let mut rng = fastrand::Rng::with_seed(0x5eed_5301);
        let session = CancelToken::named("session");
        let mut outcomes = [0usize; 2];
        let started = Instant::now();
        for round in 0..ROUNDS {
            let token = session.child();
            let path = if rng.bool() { "/stream" } else { "/never" };
            let target = format!("{path}?round={round}");
            let delay = Duration::from_micros(rng.u64(0..15_000));
            let use_cancel_body = rng.bool();
            let request = async {
                match send(&token, || client.get(&target)).await {
                    Err(err) => {
                        assert!(err.is_cancelled(), "round {round}: {err:?}");
                        0
                    }
                    Ok(response) => {
                        let mut received = Vec::new();
                        if use_cancel_body {
                            let mut body = CancelBody::new(token.clone(), response.into_body());
                            loop {
                                match body.frame().await {
                                    Some(Ok(frame)) => {
                                        if let Ok(data) = frame.into_data() {
                                            received.extend_from_slice(&data);
                                        }
                                    }
                                    Some(Err(err)) => {
                                        assert!(err.is_cancelled(), "round {round}: {err:?}");
                                        break;
                                    }
                                    None => panic!("round {round}: clean end of an endless body"),
                                }
                            }
                        } else {
                            let mut frames = token.stream(BodyStream::new(response.into_body()));
                            while let Some(frame) = frames.next().await {
                                if let Ok(data) = frame.expect("body error").into_data() {
                                    received.extend_from_slice(&data);
                                }
                            }
                        }
                        assert!(stream_prefix_ok(&received), "round {round}: garbled");
                        1
                    }
                }
            };
            outcomes[race_trigger(request, &token, delay, smol::Timer::after).await] += 1;
            drop(token);
            fast_exact(&mut client, &format!("round={round}")).await;
        }
        let elapsed = started.elapsed();
        let open = server.wait_open_at_most(1, "after the loop").await;
        let connects = client.connects;
        drop(client);
        server
            .wait_open_at_most(0, "after the client was dropped")
            .await;
        eprintln!(
            "hyper/smol random loop: {ROUNDS} rounds in {:.0} ms ({} cut before the response, {} mid-body), {connects} connects, {} accepted, {open} open afterwards",
            ms(elapsed),
            outcomes[0],
            outcomes[1],
            server.accepts()
        );
        assert!(outcomes[0] > 10 && outcomes[1] > 10, "{outcomes:?}");
        assert_eq!(server.requests_to("/fast"), ROUNDS);
        // A round cut while connecting may leave the server an accept the client never used.
        assert!(server.accepts() >= connects);
    });
}

/// `scope` in a hyper server on smol: the client giving up drops the handler future, which
/// triggers the handler's token with `ReasonKind::Dropped`.
#[test]
fn scope_in_a_hyper_server_on_smol_fires_when_the_client_goes_away() {
    run(async {
        let shutdown = CancelToken::named("server");
        let (tokens_tx, tokens) = smol::channel::unbounded::<CancelToken>();
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handler_shutdown = shutdown.clone();
        let server = smol::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let tokens_tx = tokens_tx.clone();
                let shutdown = handler_shutdown.clone();
                let service =
                    hyper::service::service_fn(move |request: http::Request<Incoming>| {
                        let tokens_tx = tokens_tx.clone();
                        scope(&shutdown, move |token| async move {
                            tokens_tx.send(token.clone()).await.unwrap();
                            if request.uri().path() == "/slow" {
                                token.wait().await;
                            }
                            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                Bytes::from("done"),
                            )))
                        })
                    });
                smol::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(FuturesIo::new(stream), service)
                        .await;
                })
                .detach();
            }
        });

        let mut client = Client::new(addr);
        let response = client.get("/done").await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"done");
        assert!(!tokens.recv().await.unwrap().is_triggered());

        let user = CancelToken::named("user");
        let request = send(&user, || client.get("/slow"));
        let server_side = async {
            let handler_token = tokens.recv().await.unwrap();
            let at = Instant::now();
            user.trigger_with("closed the tab");
            bounded(LIMIT, "handler token", handler_token.wait()).await;
            (handler_token, at.elapsed())
        };
        let (result, (handler_token, latency)) = zip(request, server_side).await;
        assert!(result.unwrap_err().is_cancelled());
        assert_eq!(handler_token.reason().unwrap().kind(), ReasonKind::Dropped);
        assert!(!shutdown.is_triggered());
        eprintln!(
            "hyper server on smol: the handler's token fired {:.2} ms after the client gave up",
            ms(latency)
        );
        assert!(latency < Duration::from_secs(2));
        drop(server);
    });
}
