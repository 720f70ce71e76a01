//! Every answer the sidecar gives of its own, in one place: the table of `docs/sidecar.md`.
//! Each carries its reason in `x-functrace-reason` and in the body, and marks the span an
//! error. (Malformed request heads, 400, and oversized ones, 431, are answered by the HTTP
//! server before a request reaches the proxy, with [`write_answer`] on the sidecar's own
//! HTTP/1.1 path; heads not received in time, 408, and
//! connections refused at the limit, 503, by `conn.rs` and `limit.rs`.)

use std::borrow::Cow;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::StatusCode;

/// The header that carries the reason of an answer of the sidecar's own.
pub const REASON: HeaderName = HeaderName::from_static("x-functrace-reason");

/// Why a request was answered by the sidecar rather than by its upstream.
#[derive(Debug)]
pub enum Refusal {
    /// An HTTP/1.1 request without exactly one `Host` (RFC 9112 §3.2): 400.
    NoHost,
    /// A transfer coding other than `chunked` (RFC 9112 §6.1): 501.
    UnknownCoding(String),
    /// CONNECT: the sidecar makes no tunnels: 501.
    Tunnel,
    /// The request body's framing is wrong (an invalid chunk size, say): 400.
    MalformedBody,
    /// The request body did not come in time: 408.
    ClientTooSlow,
    /// An outbound request that names no host: 400.
    NoAuthority,
    /// An outbound host with no route, not on the egress allow-list: 502.
    NotRouted(String),
    /// The route's rate limit is exceeded: 429.
    RateLimited,
    /// Fault injection: abort, with the configured status.
    Abort(StatusCode),
    /// The upstream's address cannot make a request: 502.
    BadUpstream(String),
    /// The upstream refused the connection (after retries): 503.
    ConnectFailed(String),
    /// The upstream reset or closed the connection without answering: 502.
    Reset(String),
    /// No response headers within the route's timeout: 504.
    TimedOut(Duration),
    /// The client went away mid-request: 499, for metrics and spans only; on the wire 400,
    /// should anyone still read.
    ClientGone,
}

impl Refusal {
    /// The status of the answer (and of the metrics and the span).
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::NoHost | Refusal::MalformedBody | Refusal::NoAuthority => {
                StatusCode::BAD_REQUEST
            }
            Refusal::UnknownCoding(_) | Refusal::Tunnel => StatusCode::NOT_IMPLEMENTED,
            Refusal::ClientTooSlow => StatusCode::REQUEST_TIMEOUT,
            Refusal::NotRouted(_) | Refusal::BadUpstream(_) | Refusal::Reset(_) => {
                StatusCode::BAD_GATEWAY
            }
            Refusal::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Abort(status) => *status,
            Refusal::ConnectFailed(_) => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
            Refusal::ClientGone => StatusCode::from_u16(499).expect("a valid code"),
        }
    }

    /// The status sent: 499 is not an HTTP status, and never goes on the wire.
    pub fn status_on_the_wire(&self) -> StatusCode {
        match self {
            Refusal::ClientGone => StatusCode::BAD_REQUEST,
            _ => self.status(),
        }
    }

    /// Whether the connection closes after the answer (HTTP/1.1): the rest of the request
    /// is unread, or not to be read as another request (a tunnel's bytes).
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            Refusal::UnknownCoding(_)
                | Refusal::Tunnel
                | Refusal::MalformedBody
                | Refusal::ClientTooSlow
                | Refusal::ClientGone
        )
    }

    /// The reason, for the client, the span's `error` tag and the logs.
    pub fn reason(&self) -> Cow<'_, str> {
        match self {
            Refusal::NoHost => "an HTTP/1.1 request needs exactly one Host header".into(),
            Refusal::UnknownCoding(coding) => {
                format!("transfer coding {coding:?} is not supported").into()
            }
            Refusal::Tunnel => "CONNECT is not supported: the sidecar makes no tunnels".into(),
            Refusal::MalformedBody => "malformed request body".into(),
            Refusal::ClientTooSlow => "client too slow: request body not received in time".into(),
            Refusal::NoAuthority => "no Host or authority".into(),
            Refusal::NotRouted(authority) => {
                format!("no route to {authority} and it is not on the egress allow-list").into()
            }
            Refusal::RateLimited => "rate limit exceeded".into(),
            Refusal::Abort(_) => "fault injected: abort".into(),
            Refusal::BadUpstream(reason) => reason.as_str().into(),
            Refusal::ConnectFailed(error) => format!("upstream connect error: {error}").into(),
            Refusal::Reset(error) => format!("upstream reset: {error}").into(),
            Refusal::TimedOut(timeout) => {
                format!("upstream timed out after {} ms", timeout.as_millis()).into()
            }
            Refusal::ClientGone => "cancelled: the client went away mid-request".into(),
        }
    }
}

/// An HTTP/1.1 answer of the sidecar's own into `out`: `status`, `reason` in
/// `x-functrace-reason` (when it is a valid field value: it may carry a client's bytes),
/// `body` as plain text.
pub fn write_answer(out: &mut Vec<u8>, status: StatusCode, reason: &str, body: &[u8], close: bool) {
    let mut number = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\ndate: ");
    out.extend_from_slice(&crate::date::now());
    out.extend_from_slice(b"\r\ncontent-type: text/plain; charset=utf-8\r\n");
    if HeaderValue::from_str(reason).is_ok() {
        out.extend_from_slice(b"x-functrace-reason: ");
        out.extend_from_slice(reason.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(number.format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_the_status_of_the_documented_table() {
        let table = [
            (Refusal::NoHost, 400),
            (Refusal::UnknownCoding("gzip".into()), 501),
            (Refusal::Tunnel, 501),
            (Refusal::MalformedBody, 400),
            (Refusal::ClientTooSlow, 408),
            (Refusal::NoAuthority, 400),
            (Refusal::RateLimited, 429),
            (Refusal::NotRouted("x:80".into()), 502),
            (Refusal::ConnectFailed("refused".into()), 503),
            (Refusal::Reset("closed".into()), 502),
            (Refusal::BadUpstream("bad".into()), 502),
            (Refusal::TimedOut(Duration::from_millis(5)), 504),
            (Refusal::Abort(StatusCode::IM_A_TEAPOT), 418),
            (Refusal::ClientGone, 499),
        ];
        let docs = include_str!("../../docs/sidecar.md");
        for (refusal, status) in table {
            assert_eq!(refusal.status().as_u16(), status, "{refusal:?}");
            assert_ne!(refusal.status_on_the_wire().as_u16(), 499, "{refusal:?}");
            // The row of docs/sidecar.md's table that names this case.
            let name = format!("{refusal:?}");
            let name = name.split('(').next().unwrap();
            let row = docs
                .lines()
                .find(|line| line.starts_with('|') && line.contains(&format!("(`{name}`)")))
                .unwrap_or_else(|| panic!("docs/sidecar.md has no row for {name}"));
            let documented = row.trim_end_matches(" |").rsplit("| ").next().unwrap();
            match refusal {
                Refusal::Abort(_) => assert_eq!(documented, "the configured status"),
                _ => assert_eq!(documented, status.to_string(), "{row}"),
            }
        }
        assert_eq!(
            Refusal::TimedOut(Duration::from_millis(250)).reason(),
            "upstream timed out after 250 ms"
        );
    }
}
