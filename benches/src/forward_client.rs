//! The HTTP/1.1 client side of the reference proxies `forward`, `h2forward` and `h2conn`:
//! hyper's client connections to the upstream, kept for reuse, the request in origin form;
//! and what an answer sheds on its way to an HTTP/2 client.

use std::error::Error;
use std::sync::{Arc, Mutex};

use http::uri::PathAndQuery;
use http::{header, HeaderMap, HeaderName, HeaderValue, Request, Response, Uri, Version};
use hyper::body::{Body, Bytes, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What the proxies' failures are.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// Idle connections to the upstream; one may still be finishing its last response.
pub type Pool<B> = Arc<Mutex<Vec<SendRequest<B>>>>;

/// Sends `request` on a kept connection, or a new one.
pub async fn send<B>(
    pool: &Pool<B>,
    upstream: &str,
    request: Request<B>,
) -> Result<Response<Incoming>, BoxError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let idle = {
        let mut idle = pool.lock().unwrap();
        let ready = idle.iter().rposition(SendRequest::is_ready);
        ready.map(|index| idle.swap_remove(index))
    };
    let mut sender = match idle {
        Some(sender) => sender,
        None => connect(upstream).await?,
    };
    let response = sender.send_request(http1_request(request)?).await?;
    pool.lock().unwrap().push(sender);
    Ok(response)
}

/// The request in HTTP/1.1's origin form, with the target in `Host` (HTTP/2 names it in
/// the URI).
fn http1_request<B>(request: Request<B>) -> Result<Request<B>, BoxError> {
    let (mut parts, body) = request.into_parts();
    if parts.version == Version::HTTP_2 {
        if let Some(authority) = parts.uri.authority() {
            let host = HeaderValue::from_str(authority.as_str())?;
            parts.headers.entry(header::HOST).or_insert(host);
        }
        let path = parts.uri.path_and_query().cloned();
        parts.uri = Uri::from(path.unwrap_or_else(|| PathAndQuery::from_static("/")));
    }
    parts.version = Version::HTTP_11;
    Ok(Request::from_parts(parts, body))
}

async fn connect<B>(upstream: &str) -> Result<SendRequest<B>, BoxError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Removes the fields HTTP/2 forbids (RFC 9113, section 8.2.2) from an HTTP/1.1 answer;
/// `h2` refuses to send a head with them.
pub fn strip_connection_fields(headers: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}
