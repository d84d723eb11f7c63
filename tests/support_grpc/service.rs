//! The `canceltest.Worker` gRPC service, written by hand: its messages, a client and the server
//! plumbing, the same pieces `tonic-build` would generate from this `.proto`:
//!
//! ```text
//! service Worker {
//!   rpc Work(WorkRequest) returns (Done);                   // unary
//!   rpc Ticks(TicksRequest) returns (stream Tick);         // server streaming
//! }
//! message WorkRequest  { uint64 millis = 1; }
//! message Done         { uint64 millis = 1; }
//! message TicksRequest { uint32 count = 1; uint64 interval_millis = 2; }
//! message Tick         { uint32 index = 1; }
//! ```
//!
//! Hand-written so that the tests and examples build on a clean machine: code generation would
//! need `protoc` installed and a build script, for two methods and four messages.
//! `examples/three_hops.rs` includes this file with
//! `#[path = "../tests/support_grpc/service.rs"] mod service;`, so it depends on nothing of the
//! tests.

// Each test binary and example uses a different subset of it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use tonic::body::Body;
use tonic::codec::ProstCodec;
use tonic::server::{NamedService, ServerStreamingService, UnaryService};
use tonic::{Request, Response, Status};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// `Work`'s request: work for `millis` milliseconds.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct WorkRequest {
    #[prost(uint64, tag = "1")]
    pub millis: u64,
}

/// `Work`'s answer: how long the work took.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Done {
    #[prost(uint64, tag = "1")]
    pub millis: u64,
}

/// `Ticks`'s request: `count` ticks (0: no end), one every `interval_millis`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct TicksRequest {
    #[prost(uint32, tag = "1")]
    pub count: u32,
    #[prost(uint64, tag = "2")]
    pub interval_millis: u64,
}

/// One item of `Ticks`'s stream.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Tick {
    #[prost(uint32, tag = "1")]
    pub index: u32,
}

const SERVICE: &str = "canceltest.Worker";
const WORK: &str = "/canceltest.Worker/Work";
const TICKS: &str = "/canceltest.Worker/Ticks";

/// What a `Worker` server does: one method per RPC.
pub trait Worker: Send + Sync + 'static {
    /// The stream `ticks` answers with.
    type TicksStream: Stream<Item = Result<Tick, Status>> + Send + 'static;

    fn work(
        &self,
        request: Request<WorkRequest>,
    ) -> impl Future<Output = Result<Response<Done>, Status>> + Send;

    fn ticks(
        &self,
        request: Request<TicksRequest>,
    ) -> impl Future<Output = Result<Response<Self::TicksStream>, Status>> + Send;
}

/// A `Worker` as a tonic service, for `Server::builder().add_service(..)`.
#[derive(Debug)]
pub struct WorkerServer<T> {
    inner: Arc<T>,
}

impl<T> WorkerServer<T> {
    pub fn new(worker: T) -> Self {
        WorkerServer {
            inner: Arc::new(worker),
        }
    }
}

impl<T> Clone for WorkerServer<T> {
    fn clone(&self) -> Self {
        WorkerServer {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> NamedService for WorkerServer<T> {
    const NAME: &'static str = SERVICE;
}

/// `Work` as tonic's server sees it.
struct WorkMethod<T>(Arc<T>);

impl<T: Worker> UnaryService<WorkRequest> for WorkMethod<T> {
    type Response = Done;
    type Future = BoxFuture<Result<Response<Done>, Status>>;

    fn call(&mut self, request: Request<WorkRequest>) -> Self::Future {
        let worker = Arc::clone(&self.0);
        Box::pin(async move { worker.work(request).await })
    }
}

/// `Ticks` as tonic's server sees it.
struct TicksMethod<T>(Arc<T>);

impl<T: Worker> ServerStreamingService<TicksRequest> for TicksMethod<T> {
    type Response = Tick;
    type ResponseStream = T::TicksStream;
    type Future = BoxFuture<Result<Response<T::TicksStream>, Status>>;

    fn call(&mut self, request: Request<TicksRequest>) -> Self::Future {
        let worker = Arc::clone(&self.0);
        Box::pin(async move { worker.ticks(request).await })
    }
}

impl<T, B> tower_service::Service<http::Request<B>> for WorkerServer<T>
where
    T: Worker,
    B: http_body::Body + Send + 'static,
    B::Error: Into<BoxError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let worker = Arc::clone(&self.inner);
        match request.uri().path() {
            WORK => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::<Done, WorkRequest>::new());
                Ok(grpc.unary(WorkMethod(worker), request).await)
            }),
            TICKS => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::<Tick, TicksRequest>::new());
                Ok(grpc.server_streaming(TicksMethod(worker), request).await)
            }),
            path => {
                let status = Status::unimplemented(format!("no method {path}"));
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

/// A `Worker` client over any tonic channel (a `Channel`, or one wrapped in layers).
#[derive(Clone, Debug)]
pub struct WorkerClient<T> {
    inner: tonic::client::Grpc<T>,
}

impl<T> WorkerClient<T>
where
    T: tonic::client::GrpcService<Body>,
    T::Error: Into<BoxError>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<BoxError> + Send,
{
    pub fn new(channel: T) -> Self {
        WorkerClient {
            inner: tonic::client::Grpc::new(channel),
        }
    }

    /// A client over an HTTP/2 client that needs absolute URIs (`http://127.0.0.1:port`).
    pub fn with_origin(client: T, origin: http::Uri) -> Self {
        WorkerClient {
            inner: tonic::client::Grpc::with_origin(client, origin),
        }
    }

    async fn ready(&mut self) -> Result<(), Status> {
        self.inner
            .ready()
            .await
            .map_err(|err| Status::unavailable(format!("channel not ready: {}", err.into())))
    }

    pub async fn work(
        &mut self,
        request: impl tonic::IntoRequest<WorkRequest>,
    ) -> Result<Response<Done>, Status> {
        self.ready().await?;
        let path = http::uri::PathAndQuery::from_static(WORK);
        let codec = ProstCodec::<WorkRequest, Done>::new();
        self.inner.unary(request.into_request(), path, codec).await
    }

    pub async fn ticks(
        &mut self,
        request: impl tonic::IntoRequest<TicksRequest>,
    ) -> Result<Response<tonic::Streaming<Tick>>, Status> {
        self.ready().await?;
        let path = http::uri::PathAndQuery::from_static(TICKS);
        let codec = ProstCodec::<TicksRequest, Tick>::new();
        self.inner
            .server_streaming(request.into_request(), path, codec)
            .await
    }
}
