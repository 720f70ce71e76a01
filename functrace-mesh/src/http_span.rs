//! The HTTP span vocabulary, one for the tower layers ([`crate::layer`]) and the
//! `functrace-sidecar` proxy alike:
//!
//! - **join or child**: a server joins the caller's context (a SERVER span that shares the
//!   caller's span id); a client makes a child of it (a CLIENT span); without a usable
//!   context a new trace starts. A deferred sampling decision is taken at the configured rate
//!   ([`context`], [`sample`]); an incoming decision always wins. Malformed B3 is ignored
//!   whole: the request is served under a fresh trace.
//! - **names**: gRPC names a span by its path, HTTP by lowercase method and path
//!   ([`span_name`]); the tags are `http.method`, `http.path`, `http.protocol`
//!   ([`protocol`]), `http.status_code`, `grpc.status_code`, `grpc.message`,
//!   `guid:x-request-id` and `error`.
//! - **errors**: the sidecar's spans, for an HTTP status outside 1xx–3xx
//!   ([`is_error_status`], Brave's rule); the layers', by default OpenTelemetry's rule
//!   ([`StatusErrors`]: a SERVER span only for a 5xx); a gRPC status only for
//!   the server-fault codes ([`GrpcStatus`]), read from the trailers or from the headers of a
//!   trailers-only response.
//! - **the span ends when the response body ends** (or is dropped unfinished), so that it
//!   covers streaming and sees the trailers.
//! - **request id**: `x-request-id` ([`REQUEST_ID`]) is kept when present, else generated
//!   ([`new_request_id`]), and carried to the calls made within the request. Its tag is the
//!   value as text ([`request_id_text`]): UTF-8 as it is, any other byte escaped `\xNN`.

use std::borrow::Cow;
use std::fmt::Write as _;

use functrace::{Sampling, SpanId, TraceContext};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Request, Version};

use crate::b3::{self, Extracted};
use crate::export::Kind;

/// The request id header, as Envoy names it.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Which side of a call a span records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The callee: joins the caller's span.
    Server,
    /// The caller: a child of the context it was given.
    Client,
}

/// The context a hop runs under, from what its request's headers carried, and whether it
/// joins the caller's span (a SERVER span with `shared: true`). A deferred decision is taken
/// at `rate`, the share of new traces recorded.
pub fn context(side: Side, extracted: Extracted, rate: f64) -> (TraceContext, bool) {
    let decided = |sampling| match sampling {
        Sampling::Defer => sample(rate),
        decided => decided,
    };
    match (side, extracted) {
        (Side::Server, Extracted::Context(context)) => (
            TraceContext {
                sampling: decided(context.sampling),
                ..context
            },
            true,
        ),
        (Side::Client, Extracted::Context(parent)) => {
            let child = parent.child();
            (
                TraceContext {
                    sampling: decided(child.sampling),
                    ..child
                },
                false,
            )
        }
        (_, Extracted::Sampling(sampling)) => (TraceContext::new_root(decided(sampling)), false),
        (_, Extracted::None) => (TraceContext::new_root(sample(rate)), false),
    }
}

/// What `headers` carry as B3, with malformed input ignored whole. (The layers and the
/// sidecar read W3C Trace Context too: [`crate::propagation::extract`].)
#[inline]
pub fn extract(headers: &HeaderMap) -> Extracted {
    b3::extract(headers).unwrap_or(Extracted::None)
}

/// A uniform number in [0, 1): the low 53 bits of a random id.
#[inline]
pub fn random_fraction() -> f64 {
    (SpanId::random().get() >> 11) as f64 / (1u64 << 53) as f64
}

/// A sampling decision for a new trace, recording the share `rate` of them.
pub fn sample(rate: f64) -> Sampling {
    if random_fraction() < rate {
        Sampling::Accept
    } else {
        Sampling::Deny
    }
}

/// A random UUID (version 4), as Envoy generates for `x-request-id`.
pub fn new_request_id() -> HeaderValue {
    let (high, low) = (SpanId::random().get(), SpanId::random().get());
    let high = (high & !0xf000) | 0x4000;
    let low = (low & !(0xc << 60)) | (0x8 << 60);
    // 8-4-4-4-12 hex digits; written by hand, as `format!` costs several times as much.
    let mut hex = [0u8; 32];
    b3::put_hex(&mut hex, high);
    b3::put_hex(&mut hex[16..], low);
    let mut text = [b'-'; 36];
    text[..8].copy_from_slice(&hex[..8]);
    text[9..13].copy_from_slice(&hex[8..12]);
    text[14..18].copy_from_slice(&hex[12..16]);
    text[19..23].copy_from_slice(&hex[16..20]);
    text[24..].copy_from_slice(&hex[20..]);
    // Sensitive, as unique to the request: not worth an HPACK table entry.
    b3::owned_value(text)
}

/// The `guid:x-request-id` tag of a request id: the value when it is UTF-8 (`café` included,
/// which `HeaderValue::to_str` refuses), with each byte that is not part of valid UTF-8
/// written as `\xNN` (as Python's `backslashreplace` does), so that the tag is never empty
/// for an id that is not, and the id's bytes can be read back from it.
pub fn request_id_text(id: &HeaderValue) -> Cow<'_, str> {
    if let Ok(ascii) = id.to_str() {
        return Cow::Borrowed(ascii);
    }
    let mut text = String::with_capacity(id.len() + 8);
    for chunk in id.as_bytes().utf8_chunks() {
        text.push_str(chunk.valid());
        for byte in chunk.invalid() {
            let _ = write!(text, "\\x{byte:02x}");
        }
    }
    Cow::Owned(text)
}

/// A span's name: gRPC names the call by its path; HTTP by method and path, lowercase as
/// Zipkin shows it.
pub fn span_name<B>(request: &Request<B>) -> String {
    span_name_with_path(request, request.uri().path())
}

/// [`span_name`] with `path` in place of the request's own (a proxy's, cut to a length).
pub fn span_name_with_path<B>(request: &Request<B>, path: &str) -> String {
    if is_grpc(request.headers()) {
        path.to_owned()
    } else {
        http_name(request.method().as_str(), path)
    }
}

/// An HTTP span's name from its method and path: `get /users`.
pub fn http_name(method: &str, path: &str) -> String {
    let mut name = String::with_capacity(method.len() + 1 + path.len());
    name.push_str(method);
    name.make_ascii_lowercase();
    name.push(' ');
    name.push_str(path);
    name
}

/// The `http.protocol` tag of a request of `version`.
#[inline]
pub fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// Which HTTP statuses make a span an error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatusErrors {
    /// OpenTelemetry's HTTP conventions: a SERVER span for a 5xx status (a 4xx is the
    /// client's doing), a CLIENT span for a 4xx or 5xx.
    #[default]
    OpenTelemetry,
    /// Brave's (Zipkin's): any status outside 1xx–3xx, on either side.
    Brave,
}

impl StatusErrors {
    /// Whether `status` makes a span of `kind` an error.
    pub fn is_error(self, kind: Kind, status: u16) -> bool {
        match (self, kind) {
            (StatusErrors::OpenTelemetry, Kind::Server) => !(100..500).contains(&status),
            _ => is_error_status(status),
        }
    }
}

/// Brave's rule: an HTTP status outside 1xx–3xx is an error.
#[inline]
pub fn is_error_status(status: u16) -> bool {
    !(100..400).contains(&status)
}

/// Whether a request or response is gRPC, by its content type.
#[inline]
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// How a gRPC call ended, from `grpc-status` and `grpc-message` (trailers, or the headers of
/// a trailers-only response).
pub struct GrpcStatus<'a> {
    /// The `grpc-status` code, as sent.
    pub code: &'a str,
    /// The `grpc-message`, percent-decoded; `None` when absent or empty.
    pub message: Option<String>,
    /// Only these codes are errors of the server: Unknown, DeadlineExceeded,
    /// ResourceExhausted, Unimplemented, Internal, Unavailable, DataLoss.
    pub server_fault: bool,
}

impl GrpcStatus<'_> {
    /// The status in `headers`, if they carry one.
    pub fn of(headers: &HeaderMap) -> Option<GrpcStatus<'_>> {
        let code = headers.get("grpc-status")?.to_str().ok()?;
        Some(GrpcStatus {
            code,
            message: headers.get("grpc-message").and_then(grpc_message),
            server_fault: matches!(code, "2" | "4" | "8" | "12" | "13" | "14" | "15"),
        })
    }
}

/// A `grpc-message` as text: gRPC percent-encodes it on the wire. `None` when empty (an OK
/// status may carry an empty message).
fn grpc_message(value: &HeaderValue) -> Option<String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        let escaped = tail
            .get(..2)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) if byte == b'%' => {
                bytes.push(decoded);
                rest = &tail[2..];
            }
            _ => {
                bytes.push(byte);
                rest = tail;
            }
        }
    }
    (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_names_lowercase_the_method_only() {
        assert_eq!(http_name("GET", "/Users/A"), "get /Users/A");
        assert_eq!(http_name("PROPFIND", "/"), "propfind /");
        assert_eq!(http_name("Ünï", "/x"), "Ünï /x");
    }

    #[test]
    fn grpc_messages_are_percent_decoded() {
        let decoded = |raw: &'static str| grpc_message(&HeaderValue::from_static(raw));
        assert_eq!(decoded("50%25 caf%C3%A9").as_deref(), Some("50% café"));
        assert_eq!(decoded("plain").as_deref(), Some("plain"));
        // A stray `%` stays as it is.
        assert_eq!(decoded("100%").as_deref(), Some("100%"));
        assert_eq!(decoded("%zz").as_deref(), Some("%zz"));
        assert_eq!(decoded(""), None);
    }

    #[test]
    fn request_id_text_keeps_utf8_and_escapes_other_bytes() {
        let text =
            |bytes: &[u8]| request_id_text(&HeaderValue::from_bytes(bytes).unwrap()).into_owned();
        assert_eq!(text(b"abc-123"), "abc-123");
        assert_eq!(text("café".as_bytes()), "café");
        assert_eq!(text("id-日本".as_bytes()), "id-日本");
        // Latin-1 `é` alone, and a UTF-8 sequence cut short, are not UTF-8.
        assert_eq!(text(b"caf\xe9"), "caf\\xe9");
        assert_eq!(text(b"a\xe6\x97b\xff"), "a\\xe6\\x97b\\xff");
        assert_eq!(text(b"tab\there"), "tab\there");
    }

    #[test]
    fn request_ids_are_version_4_uuids() {
        // Never indexed in HPACK, as new on every request.
        assert!(new_request_id().is_sensitive());
        let ids: Vec<String> = (0..100)
            .map(|_| new_request_id().to_str().unwrap().to_owned())
            .collect();
        for id in &ids {
            let groups: Vec<&str> = id.split('-').collect();
            let lengths: Vec<usize> = groups.iter().map(|group| group.len()).collect();
            assert_eq!(lengths, [8, 4, 4, 4, 12], "{id}");
            assert!(id
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert!(groups[2].starts_with('4'), "version 4: {id}");
            assert!(
                matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
                "variant: {id}"
            );
        }
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn a_server_joins_and_a_client_makes_a_child() {
        let parent = TraceContext::new_root(Sampling::Accept);
        let (joined, shared) = context(Side::Server, Extracted::Context(parent), 0.0);
        assert!(shared);
        assert_eq!(joined, parent);
        let (child, shared) = context(Side::Client, Extracted::Context(parent), 0.0);
        assert!(!shared);
        assert_eq!(child.trace_id, parent.trace_id);
        assert_eq!(child.parent_id, Some(parent.span_id));
        assert_eq!(
            child.sampling,
            Sampling::Accept,
            "an incoming decision wins"
        );
    }

    #[test]
    fn a_deferred_decision_is_taken_at_the_rate() {
        let deferred = TraceContext::new_root(Sampling::Defer);
        for (rate, expected) in [(0.0, Sampling::Deny), (1.0, Sampling::Accept)] {
            for side in [Side::Server, Side::Client] {
                let (context, _) = context(side, Extracted::Context(deferred), rate);
                assert_eq!(context.sampling, expected);
            }
            let (root, shared) = context(Side::Server, Extracted::None, rate);
            assert!(!shared);
            assert_eq!((root.sampling, root.parent_id), (expected, None));
        }
        let (root, _) = context(Side::Server, Extracted::Sampling(Sampling::Deny), 1.0);
        assert_eq!(root.sampling, Sampling::Deny);
    }

    #[test]
    fn statuses_outside_1xx_to_3xx_are_errors() {
        let errors: Vec<u16> = [99, 100, 204, 304, 399, 400, 404, 499, 500, 503]
            .into_iter()
            .filter(|&status| is_error_status(status))
            .collect();
        assert_eq!(errors, [99, 400, 404, 499, 500, 503]);
    }

    #[test]
    fn grpc_spans_are_named_by_path_and_http_spans_by_method_and_path() {
        let http = Request::post("/a/b").body(()).unwrap();
        assert_eq!(span_name(&http), "post /a/b");
        let grpc = Request::post("/pkg.Svc/Say")
            .header(CONTENT_TYPE, "application/grpc+proto")
            .body(())
            .unwrap();
        assert_eq!(span_name(&grpc), "/pkg.Svc/Say");
    }
}
