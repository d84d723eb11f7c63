//! [`PropagateDeadlineLayer`]: tower middleware for HTTP clients that writes a token's
//! remaining time into every outgoing request's deadline headers.

use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use super::tower::Source;
use super::DeadlineHeaders;
use crate::CancelToken;

/// A tower layer for clients that writes the time left before a token's deadline into each
/// request's [`DeadlineHeaders`], measured when the request is sent.
///
/// The token is fixed ([`new`](Self::new): typically the token of the server request this
/// client call serves) or taken from each request's extensions
/// ([`from_extensions`](Self::from_extensions)); a request whose token has no deadline is
/// sent unchanged. The layer only writes headers: to also stop the call when the token
/// triggers, put a [`CancelLayer`](super::CancelLayer) beside it.
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use tower_layer::Layer;
/// use tower_service::Service;
/// use cancel_token::http::PropagateDeadlineLayer;
/// use cancel_token::CancelToken;
///
/// # futures_lite::future::block_on(async {
/// // A stand-in for a client: answers with the timeout it was given.
/// let client = tower::service_fn(|request: http::Request<()>| async move {
///     let asked = request.headers().get("connect-timeout-ms").cloned();
///     Ok::<_, Infallible>(asked)
/// });
/// let token = CancelToken::with_timeout(Duration::from_secs(2));
/// let mut client = PropagateDeadlineLayer::new(token).layer(client);
///
/// let asked = client.call(http::Request::new(())).await.unwrap().unwrap();
/// let millis: u64 = asked.to_str().unwrap().parse().unwrap();
/// assert!(millis <= 2000);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct PropagateDeadlineLayer {
    source: Source,
    headers: DeadlineHeaders,
}

impl PropagateDeadlineLayer {
    /// Writes `token`'s remaining time into every request, in [`DeadlineHeaders::new`]'s
    /// headers.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::PropagateDeadlineLayer;
    /// use cancel_token::CancelToken;
    ///
    /// let layer = PropagateDeadlineLayer::new(CancelToken::new());
    /// # drop(layer);
    /// ```
    pub fn new(token: CancelToken) -> Self {
        PropagateDeadlineLayer {
            source: Source::Fixed(token),
            headers: DeadlineHeaders::new(),
        }
    }

    /// Writes the remaining time of the `CancelToken` in each request's extensions, if it has
    /// one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::Duration;
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    /// use cancel_token::http::PropagateDeadlineLayer;
    /// use cancel_token::CancelToken;
    ///
    /// # futures_lite::future::block_on(async {
    /// let client = tower::service_fn(|request: http::Request<()>| async move {
    ///     Ok::<_, Infallible>(request.headers().contains_key("grpc-timeout"))
    /// });
    /// let mut client = PropagateDeadlineLayer::from_extensions().layer(client);
    ///
    /// let mut request = http::Request::new(());
    /// request.extensions_mut().insert(CancelToken::with_timeout(Duration::from_secs(1)));
    /// assert!(client.call(request).await.unwrap());
    /// assert!(!client.call(http::Request::new(())).await.unwrap());
    /// # });
    /// ```
    pub fn from_extensions() -> Self {
        PropagateDeadlineLayer {
            source: Source::Extension,
            headers: DeadlineHeaders::new(),
        }
    }

    /// Writes these headers instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancel_token::http::{DeadlineHeaders, PropagateDeadlineLayer};
    ///
    /// let grpc_only = DeadlineHeaders::new().millis(None);
    /// let layer = PropagateDeadlineLayer::from_extensions().headers(grpc_only);
    /// # drop(layer);
    /// ```
    pub fn headers(mut self, headers: DeadlineHeaders) -> Self {
        self.headers = headers;
        self
    }
}

impl<S> Layer<S> for PropagateDeadlineLayer {
    type Service = PropagateDeadline<S>;

    fn layer(&self, inner: S) -> PropagateDeadline<S> {
        PropagateDeadline {
            inner,
            source: self.source.clone(),
            headers: self.headers.clone(),
        }
    }
}

/// The service made by [`PropagateDeadlineLayer`].
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use tower_layer::Layer;
/// use cancel_token::http::{PropagateDeadline, PropagateDeadlineLayer};
///
/// let client = tower::service_fn(|_request: http::Request<()>| async { Ok::<_, Infallible>(()) });
/// let service: PropagateDeadline<_> = PropagateDeadlineLayer::from_extensions().layer(client);
/// # drop(service);
/// ```
#[derive(Clone, Debug)]
pub struct PropagateDeadline<S> {
    inner: S,
    source: Source,
    headers: DeadlineHeaders,
}

impl<S, ReqBody> Service<http::Request<ReqBody>> for PropagateDeadline<S>
where
    S: Service<http::Request<ReqBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> S::Future {
        if let Some(token) = self.source.find(&request) {
            self.headers.insert(&token, request.headers_mut());
        }
        self.inner.call(request)
    }
}
