//! A response body that ended normally never fires its request's token, even where hyper
//! drops the body without polling it to its end: after a trailers frame, and once a streamed
//! body has sent its `Content-Length` (a real hyper server, a reqwest client that reads the
//! whole body and stays connected). Responses without a body (HEAD through `ScopeLayer`, 204,
//! 304) leave the token alone too.
#![cfg(all(feature = "http", feature = "http-body", feature = "tower"))]

mod support_http;
mod support_server;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use cancel_token::http::scope_response;
use cancel_token::CancelToken;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use tokio::sync::mpsc;

async fn serve() -> (std::net::SocketAddr, mpsc::UnboundedReceiver<CancelToken>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let server = CancelToken::named("server");
    let service =
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let tx = tx.clone();
            scope_response(&server, move |token| async move {
                tx.send(token.clone()).unwrap();
                let mut response = match request.uri().path() {
                    "/trailers" => {
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("x-checksum", http::HeaderValue::from_static("abc"));
                        let frames = futures_lite::stream::iter(vec![
                            Ok::<_, Infallible>(Frame::data(Bytes::from("hello"))),
                            Ok(Frame::trailers(trailers)),
                        ]);
                        http::Response::new(StreamBody::new(frames).boxed())
                    }
                    "/content-length" => {
                        let frames = futures_lite::stream::iter(vec![Ok::<_, Infallible>(
                            Frame::data(Bytes::from("hello")),
                        )]);
                        let mut r = http::Response::new(StreamBody::new(frames).boxed());
                        r.headers_mut().insert(
                            http::header::CONTENT_LENGTH,
                            http::HeaderValue::from_static("5"),
                        );
                        r
                    }
                    _ => http::Response::new(
                        Full::new(Bytes::from("hello"))
                            .map_err(|e| match e {})
                            .boxed(),
                    ),
                };
                let _: &mut http::Response<BoxBody<Bytes, Infallible>> = &mut response;
                Ok::<_, Infallible>(response)
            })
        });
    (support_server::serve_hyper(service).await, rx)
}

async fn check(method: reqwest::Method, path: &str) -> Option<cancel_token::Reason> {
    let (addr, mut tokens) = serve().await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        client
            .request(method, format!("http://{addr}{path}"))
            .header("te", "trailers")
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(5), response.bytes())
        .await
        .unwrap()
        .unwrap();
    eprintln!("{path}: body {:?}", body);
    let token = tokens.recv().await.unwrap();
    // keep the client (and its pooled connection) alive: the client did not go away
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reason = token.reason();
    drop(client);
    reason
}

#[tokio::test]
async fn a_body_ended_by_trailers_leaves_the_token_alone() {
    let reason = check(reqwest::Method::GET, "/trailers").await;
    assert!(
        reason.is_none(),
        "token fired after a complete body: {reason:?}"
    );
}

#[tokio::test]
async fn a_body_of_its_content_length_leaves_the_token_alone() {
    let reason = check(reqwest::Method::GET, "/content-length").await;
    assert!(
        reason.is_none(),
        "token fired after a complete body: {reason:?}"
    );
}

#[test]
fn a_response_to_head_through_the_scope_layer_guards_nothing() {
    use tower::{Service, ServiceExt};
    use tower_layer::Layer;

    let server = CancelToken::named("server");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let handler = tower::service_fn({
        let seen = seen.clone();
        move |request: http::Request<()>| {
            *seen.lock().unwrap() = request.extensions().get::<CancelToken>().cloned();
            async { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("hello")))) }
        }
    });
    let mut service = cancel_token::http::ScopeLayer::new(server).layer(handler);
    let head = http::Request::head("/").body(()).unwrap();
    let response = futures_lite::future::block_on(async {
        service.ready().await.unwrap().call(head).await.unwrap()
    });
    drop(response); // hyper drops a HEAD response's body unpolled
    let token = seen.lock().unwrap().clone().unwrap();
    assert!(!token.is_triggered(), "{:?}", token.reason());

    let get = http::Request::get("/").body(()).unwrap();
    let response = futures_lite::future::block_on(async {
        service.ready().await.unwrap().call(get).await.unwrap()
    });
    drop(response); // a GET's body dropped unread: the client left
    let token = seen.lock().unwrap().clone().unwrap();
    assert!(token.is_triggered());
}

#[test]
fn no_content_and_not_modified_responses_guard_nothing() {
    for status in [http::StatusCode::NO_CONTENT, http::StatusCode::NOT_MODIFIED] {
        let (tx, rx) = std::sync::mpsc::channel();
        let response = futures_lite::future::block_on(scope_response(
            &CancelToken::new(),
            move |token| async move {
                tx.send(token).unwrap();
                let mut response = http::Response::new(Full::new(Bytes::from("ignored")));
                *response.status_mut() = status;
                Ok::<_, Infallible>(response)
            },
        ))
        .unwrap();
        drop(response);
        assert!(!rx.recv().unwrap().is_triggered(), "{status}");
    }
}
