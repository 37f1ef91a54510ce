//! object_store's HTTP client, with a bound on what an error answer may
//! send. object_store reads an error's whole body into a string (for its
//! message), so a server answering 4xx or 5xx with an endless body would
//! have it buffer without end; here such a body ends after its first
//! 4 KiB. Successful bodies are bounded where they are read (the source
//! reads no more than the range it asked for).

use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpResponseBody, HttpService,
    ReqwestConnector,
};
use object_store::ClientOptions;
use std::pin::Pin;
use std::task::{Context, Poll};

/// What is kept of an error answer's body (only its start is shown).
const MAX_ERROR_BODY: usize = 4 << 10;

/// Makes object_store's reqwest client, wrapped.
#[derive(Debug, Default)]
pub(super) struct CappedConnector;

impl HttpConnector for CappedConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(CappedErrors(inner)))
    }
}

#[derive(Debug)]
struct CappedErrors(HttpClient);

#[async_trait::async_trait]
impl HttpService for CappedErrors {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let resp = self.0.execute(req).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let (parts, body) = resp.into_parts();
        let body = HttpResponseBody::new(Truncated {
            inner: body,
            left: MAX_ERROR_BODY,
        });
        Ok(HttpResponse::from_parts(parts, body))
    }
}

/// A body that ends after `left` more bytes, whatever the server sends.
struct Truncated {
    inner: HttpResponseBody,
    left: usize,
}

impl http_body::Body for Truncated {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(mut data) => {
                    data.truncate(self.left);
                    self.left -= data.len();
                    Poll::Ready(Some(Ok(http_body::Frame::data(data))))
                }
                Err(other) => Poll::Ready(Some(Ok(other))),
            },
            other => other,
        }
    }
}
