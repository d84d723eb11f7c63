//! A real tonic server and client on 127.0.0.1 for the tests of the `grpc` feature
//! (`tests/grpc*.rs`): the hand-written `canceltest.Worker` service ([`service`]), a worker that
//! reports every call its methods see, and helpers to start, reach and stop a server.

// Each test binary uses a different subset of it.
#![allow(dead_code)]

pub mod service;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use cancel_token::grpc::{ClientLayer, ClientService, ServerLayer};
use cancel_token::CancelToken;
use futures_core::Stream;
use tokio::sync::{mpsc, oneshot};
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};

pub use service::{Done, Tick, TicksRequest, WorkRequest, Worker, WorkerClient, WorkerServer};

/// The bound on anything a test awaits: it turns a hang into a failure, nothing more.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Awaits `future`, failing the test if it takes longer than [`LIMIT`].
pub async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(LIMIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what}: not done within {LIMIT:?}"),
    }
}

/// What a service method saw of one call.
#[derive(Debug)]
pub struct Call {
    pub method: &'static str,
    /// The call's token, from `cancel_token::grpc::call_token`.
    pub token: Option<CancelToken>,
    /// The call's `grpc-timeout`, as the method's metadata has it.
    pub timeout: Option<String>,
    pub arrived: Instant,
}

impl Call {
    pub fn token(&self) -> &CancelToken {
        self.token.as_ref().expect("the call has a token")
    }
}

/// A worker that sends every call it serves to its test: `Work` sleeps for the asked time,
/// `Ticks` streams the asked ticks.
struct ReportingWorker {
    calls: mpsc::UnboundedSender<Call>,
}

impl ReportingWorker {
    fn report<T>(&self, method: &'static str, request: &Request<T>) {
        let timeout = request
            .metadata()
            .get("grpc-timeout")
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let _ = self.calls.send(Call {
            method,
            token: cancel_token::grpc::call_token(request),
            timeout,
            arrived: Instant::now(),
        });
    }
}

type TickStream = Pin<Box<dyn Stream<Item = Result<Tick, Status>> + Send>>;

impl Worker for ReportingWorker {
    type TicksStream = TickStream;

    async fn work(&self, request: Request<WorkRequest>) -> Result<Response<Done>, Status> {
        self.report("Work", &request);
        let millis = request.get_ref().millis;
        tokio::time::sleep(Duration::from_millis(millis)).await;
        Ok(Response::new(Done { millis }))
    }

    async fn ticks(&self, request: Request<TicksRequest>) -> Result<Response<TickStream>, Status> {
        self.report("Ticks", &request);
        let TicksRequest {
            count,
            interval_millis,
        } = *request.get_ref();
        let ticks = futures_lite::stream::unfold(0u32, move |index| async move {
            if count != 0 && index >= count {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(interval_millis)).await;
            Some((Ok(Tick { index }), index + 1))
        });
        Ok(Response::new(Box::pin(ticks) as TickStream))
    }
}

/// A bare hyper HTTP/2 client, as [`TestServer::raw_client`] makes it.
pub type RawHttp2 = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    tonic::body::Body,
>;

/// A tonic server on 127.0.0.1 serving the reporting worker under a [`ServerLayer`].
pub struct TestServer {
    pub addr: SocketAddr,
    calls: mpsc::UnboundedReceiver<Call>,
    stop: Option<oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(layer: ServerLayer) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (calls_tx, calls) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = Server::builder()
            .layer(layer)
            .add_service(WorkerServer::new(ReportingWorker { calls: calls_tx }))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async move {
                    let _ = stopped.await;
                },
            );
        tokio::spawn(async move {
            if let Err(err) = server.await {
                eprintln!("the test server failed: {err}");
            }
        });
        TestServer {
            addr,
            calls,
            stop: Some(stop),
        }
    }

    /// The next call a method saw.
    pub async fn next_call(&mut self) -> Call {
        bounded("a call reaching its method", self.calls.recv())
            .await
            .expect("the server is running")
    }

    /// Whether no method has seen a call that was not taken with `next_call` yet.
    pub fn no_call(&mut self) -> bool {
        self.calls.try_recv().is_err()
    }

    /// A channel to this server.
    pub async fn channel(&self) -> Channel {
        self.channel_with(|endpoint| endpoint).await
    }

    /// A channel to this server from the endpoint `configure` makes of the plain one (say,
    /// with an `Endpoint::timeout` of its own).
    pub async fn channel_with(&self, configure: impl FnOnce(Endpoint) -> Endpoint) -> Channel {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.addr)).unwrap();
        bounded("connecting", configure(endpoint).connect())
            .await
            .unwrap()
    }

    /// A client on a plain channel.
    pub async fn client(&self) -> WorkerClient<Channel> {
        WorkerClient::new(self.channel().await)
    }

    /// A client on a bare hyper HTTP/2 client, not tonic's channel: it sends the headers it
    /// is given and enforces none of them (tonic's channel times a call's `grpc-timeout`
    /// itself, which would hide what the server does).
    pub fn raw_client(&self) -> WorkerClient<RawHttp2> {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(true)
                .build_http();
        let origin = format!("http://{}", self.addr).parse().unwrap();
        WorkerClient::with_origin(client, origin)
    }

    /// A client on a channel wrapped in `layer`.
    pub async fn layered_client(&self, layer: ClientLayer) -> WorkerClient<ClientService<Channel>> {
        let channel = tower::ServiceBuilder::new()
            .layer(layer)
            .service(self.channel().await);
        WorkerClient::new(channel)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Waits for `token` to be triggered; returns how long after `since` it was seen.
pub async fn fired_after(token: &CancelToken, since: Instant) -> Duration {
    bounded("the call's token firing", token.wait()).await;
    since.elapsed()
}

/// Milliseconds, for reports.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
