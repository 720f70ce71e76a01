//! Writes a [`Span`] as JSON, byte for byte what `serde_json` writes for its `Serialize`
//! derive (the tests hold the two together), at a fraction of the cost: a proxy writes one
//! span per request, and with serde most of that time went into escaping strings that need
//! no escaping and formatting ids through `fmt`.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};

use super::span::{Endpoint, Kind, Span};
use crate::b3;

/// Appends `span` as one JSON object.
pub(crate) fn write_span(out: &mut Vec<u8>, span: &Span) {
    let tags = span
        .tags
        .iter()
        .map(|(key, value)| (Text::Escaped(key), Text::Escaped(value)));
    write_span_with_tags(out, span, None, tags);
}

/// The service a reporter names spans that have none of their own, with their local
/// endpoint's JSON when it holds nothing else: rendered once here rather than per span
/// (about 300 of the 2,600 instructions of a proxy's span line, 160 fewer with the copy).
pub(super) struct LocalService {
    name: String,
    endpoint: Vec<u8>,
}

impl LocalService {
    pub(super) fn new(name: String) -> LocalService {
        let mut endpoint = Vec::new();
        self::endpoint(&mut endpoint, &Endpoint::default(), Some(&name));
        LocalService { name, endpoint }
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }
}

/// Appends `span` as one JSON object with `tags` (in key order, each key once) in place of
/// its own: for a caller that has its tags at hand and need not build a map of them.
/// `local_service`: the local endpoint's service when the span has none of its own.
pub(super) fn write_span_with_tags<'a>(
    out: &mut Vec<u8>,
    span: &Span,
    local_service: Option<&LocalService>,
    tags: impl IntoIterator<Item = (Text<'a>, Text<'a>)>,
) {
    // A proxy's span takes about 500 bytes, more with long ids and paths: one check of the
    // capacity, with room to spare, rather than a growth or two along the way.
    out.reserve(768 + span.name.len());
    let mut hex = [0u8; 32];
    out.extend_from_slice(b"{\"traceId\":\"");
    let len = b3::put_trace_id(&mut hex, span.trace_id);
    out.extend_from_slice(&hex[..len]);
    out.extend_from_slice(b"\",\"id\":\"");
    b3::put_hex(&mut hex, span.id.get());
    out.extend_from_slice(&hex[..16]);
    out.push(b'"');
    if let Some(parent) = span.parent_id {
        out.extend_from_slice(b",\"parentId\":\"");
        b3::put_hex(&mut hex, parent.get());
        out.extend_from_slice(&hex[..16]);
        out.push(b'"');
    }
    out.extend_from_slice(b",\"name\":");
    string(out, &span.name);
    if let Some(kind) = span.kind {
        out.extend_from_slice(b",\"kind\":");
        out.extend_from_slice(match kind {
            Kind::Client => b"\"CLIENT\"",
            Kind::Server => b"\"SERVER\"",
            Kind::Producer => b"\"PRODUCER\"",
            Kind::Consumer => b"\"CONSUMER\"",
        });
    }
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(b",\"timestamp\":");
    out.extend_from_slice(digits.format(span.timestamp).as_bytes());
    out.extend_from_slice(b",\"duration\":");
    out.extend_from_slice(digits.format(span.duration).as_bytes());
    out.extend_from_slice(b",\"localEndpoint\":");
    match local_service {
        Some(local) if span.local_endpoint == Endpoint::default() => {
            out.extend_from_slice(&local.endpoint);
        }
        _ => endpoint(
            out,
            &span.local_endpoint,
            local_service.map(LocalService::name),
        ),
    }
    if let Some(remote) = &span.remote_endpoint {
        out.extend_from_slice(b",\"remoteEndpoint\":");
        endpoint(out, remote, None);
    }
    if !span.annotations.is_empty() {
        out.extend_from_slice(b",\"annotations\":[");
        for (i, annotation) in span.annotations.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"timestamp\":");
            out.extend_from_slice(digits.format(annotation.timestamp).as_bytes());
            out.extend_from_slice(b",\"value\":");
            string(out, &annotation.value);
            out.push(b'}');
        }
        out.push(b']');
    }
    let mut tags = tags.into_iter().peekable();
    if tags.peek().is_some() {
        out.extend_from_slice(b",\"tags\":{");
        for (i, (key, value)) in tags.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            key.write(out);
            out.push(b':');
            value.write(out);
        }
        out.push(b'}');
    }
    if let Some(shared) = span.shared {
        out.extend_from_slice(b",\"shared\":");
        boolean(out, shared);
    }
    if let Some(debug) = span.debug {
        out.extend_from_slice(b",\"debug\":");
        boolean(out, debug);
    }
    out.push(b'}');
}

/// A tag key or value, as span JSON writes it.
#[derive(Clone, Copy)]
pub enum Text<'a> {
    /// Any text, escaped where it needs to be.
    Escaped(&'a str),
    /// Text that cannot need escaping (a key the code names, a number, an address, an HTTP
    /// method), written as it is: a proxy writes a dozen such per request, and looking each
    /// over for escapes was most of their cost.
    Plain(&'a str),
}

impl<'a> Text<'a> {
    /// The text, unescaped.
    pub(crate) fn as_str(self) -> &'a str {
        match self {
            Text::Escaped(text) | Text::Plain(text) => text,
        }
    }

    #[inline]
    fn write(self, out: &mut Vec<u8>) {
        match self {
            Text::Escaped(text) => string(out, text),
            Text::Plain(text) => {
                debug_assert!(!needs_escape(text.as_bytes()), "{text} needs escaping");
                out.push(b'"');
                out.extend_from_slice(text.as_bytes());
                out.push(b'"');
            }
        }
    }
}

/// `service`: the service name when the endpoint has none.
fn endpoint(out: &mut Vec<u8>, endpoint: &Endpoint, service: Option<&str>) {
    out.push(b'{');
    let empty = out.len();
    // Each field after the first is preceded by a comma.
    let field = |out: &mut Vec<u8>, name: &[u8]| {
        if out.len() > empty {
            out.push(b',');
        }
        out.extend_from_slice(name);
    };
    if let Some(name) = endpoint.service_name.as_deref().or(service) {
        field(out, b"\"serviceName\":");
        string(out, name);
    }
    if let Some(ipv4) = endpoint.ipv4 {
        field(out, b"\"ipv4\":\"");
        put_ipv4(out, ipv4);
        out.push(b'"');
    }
    if let Some(ipv6) = endpoint.ipv6 {
        field(out, b"\"ipv6\":");
        let _ = write!(out, "\"{ipv6}\"");
    }
    if let Some(port) = endpoint.port {
        field(out, b"\"port\":");
        out.extend_from_slice(itoa::Buffer::new().format(port).as_bytes());
    }
    out.push(b'}');
}

/// `ip:port` as `SocketAddr`'s `Display` writes it, without the padding support that makes
/// that cost more than all the other tags of a span together: for a `peer.address` tag.
pub fn socket_address_text(address: SocketAddr) -> String {
    let SocketAddr::V4(v4) = address else {
        return address.to_string();
    };
    let mut text = Vec::with_capacity(21);
    put_ipv4(&mut text, *v4.ip());
    text.push(b':');
    text.extend_from_slice(itoa::Buffer::new().format(v4.port()).as_bytes());
    String::from_utf8(text).expect("digits, dots and a colon")
}

/// `ip` in dotted decimal, as its `Display` writes it, without `fmt`: into a buffer on the
/// stack, then appended at once.
fn put_ipv4(out: &mut Vec<u8>, ip: Ipv4Addr) {
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            text[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            text[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        text[len] = b'0' + octet % 10;
        len += 1;
    }
    out.extend_from_slice(&text[..len]);
}

fn boolean(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

/// A JSON string, escaped as serde_json escapes: `"`, `\` and control characters only.
fn string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if byte >= 0x20 && byte != b'"' && byte != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether `bytes` holds a `"`, a `\\` or a control character, eight bytes at a time: the
/// strings of a span almost never do.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte that is zero (exact when no byte has its own high bit set,
    // and `& !word` below takes care of those).
    let zero_bytes = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
        let quote = zero_bytes(word ^ (ONES * u64::from(b'"')));
        let backslash = zero_bytes(word ^ (ONES * u64::from(b'\\')));
        if below_space | quote | backslash != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\')
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, SystemTime};

    use functrace::{Sampling, SpanId, TraceContext, TraceId};

    use super::*;
    use crate::export::span::Annotation;

    fn context(trace: &str, parent: Option<&str>, sampling: Sampling) -> TraceContext {
        TraceContext {
            trace_id: TraceId::from_hex(trace).unwrap(),
            span_id: SpanId::from_hex("a2fb4a1d1a96d312").unwrap(),
            parent_id: parent.map(|parent| SpanId::from_hex(parent).unwrap()),
            sampling,
        }
    }

    fn spans() -> Vec<Span> {
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let root = context("463ac35c9f6413ad", None, Sampling::Accept);
        let child = context(
            "463ac35c9f6413ad48485a3953bb6124",
            Some("0020000000000001"),
            Sampling::Debug,
        );
        let v4: SocketAddr = "10.0.0.7:8080".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:0".parse().unwrap();
        let mut server = Span::server(&child, "get /a", at, Duration::ZERO, "svc", true)
            .with_remote_endpoint(Endpoint::socket(v4))
            .with_local_addr(v6)
            .with_annotation(at, "ws")
            .with_annotation(at + Duration::from_micros(5), "wr \"quoted\"")
            .with_tag("http.path", "/a?b=\"c\"\\d")
            .with_tag("control", "\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f}\u{7f} end")
            .with_tag("unicode", "café ☕ \u{10FFFF}")
            .with_tag("", "");
        server.normalize("svc");
        vec![
            Span::new(&root, "local", at, Duration::from_micros(3), "svc"),
            Span::client(&root, "post /x", at, Duration::from_secs(2), "Svc")
                .with_remote_endpoint(Endpoint::service("db"))
                .with_error("boom"),
            Span::new(&root, "empty endpoint", at, Duration::ZERO, "svc")
                .with_remote_endpoint(Endpoint::default())
                .with_kind(Kind::Producer),
            Span::new(&root, "consumer", at, Duration::ZERO, "svc").with_kind(Kind::Consumer),
            server,
            Span {
                shared: Some(false),
                debug: Some(false),
                ..Span::new(&child, "flags false", at, Duration::ZERO, "svc")
            },
            Span {
                annotations: vec![Annotation {
                    timestamp: 0,
                    value: String::new(),
                }],
                ..Span::new(&root, "\"name\"\\", at, Duration::ZERO, "")
            },
        ]
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for address in [
            "127.0.0.1:8080",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "10.20.3.4:443",
            "[::1]:15001",
            "[2001:db8::8a2e:370:7334]:80",
        ] {
            let address: SocketAddr = address.parse().unwrap();
            assert_eq!(socket_address_text(address), address.to_string());
        }
    }

    #[test]
    fn spans_are_written_as_serde_json_writes_them() {
        for span in spans() {
            let mut ours = Vec::new();
            write_span(&mut ours, &span);
            let serde = serde_json::to_vec(&span).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(serde).unwrap()
            );
        }
    }

    #[test]
    fn plain_text_is_written_as_escaped_text_is() {
        let span = &spans()[0];
        let tags = [("http.method", "GET"), ("peer.address", "10.0.0.7:8080")];
        let mut escaped = Vec::new();
        let escape = |(k, v)| (Text::Escaped(k), Text::Escaped(v));
        write_span_with_tags(&mut escaped, span, None, tags.map(escape));
        let mut plain = Vec::new();
        write_span_with_tags(
            &mut plain,
            span,
            None,
            tags.map(|(k, v)| (Text::Plain(k), Text::Plain(v))),
        );
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            String::from_utf8(escaped).unwrap()
        );
    }

    #[test]
    fn a_span_without_a_service_is_written_with_the_one_given_and_its_own_wins() {
        let ours = |span: &Span, service: &str| {
            let mut out = Vec::new();
            let local = LocalService::new(service.to_owned());
            write_span_with_tags(&mut out, span, Some(&local), []);
            String::from_utf8(out).unwrap()
        };
        let serde = |span: Span| {
            let span = Span {
                tags: Default::default(),
                ..span
            };
            String::from_utf8(serde_json::to_vec(&span).unwrap()).unwrap()
        };
        // Most of these spans' local endpoints hold a service only, so they are written
        // pre-rendered once unnamed; the server span's holds an address too.
        for span in spans() {
            let mut unnamed = span.clone();
            unnamed.local_endpoint.service_name = None;
            let mut filled = span.clone();
            filled.local_endpoint.service_name = Some("de\"fault".into());
            assert_eq!(ours(&unnamed, "de\"fault"), serde(filled));
            assert_eq!(ours(&span, "ignored"), serde(span));
        }
    }

    #[test]
    fn escapes_are_found_at_every_position() {
        let naive = |bytes: &[u8]| bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        let clean = "abcdefghijklmnopqrstuvwxyz-é☕ ~".as_bytes();
        for len in 0..=clean.len() {
            assert!(!needs_escape(&clean[..len]));
            for at in 0..len {
                for byte in (0u8..=0x7f).chain([0x80, 0xc3, 0xff]) {
                    let mut text = clean[..len].to_vec();
                    text[at] = byte;
                    assert_eq!(
                        needs_escape(&text),
                        naive(&text),
                        "{byte:#x} at {at} of {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_byte_escapes_as_in_serde_json() {
        let text: String = (0u8..=0x7f).map(char::from).chain(['é', '☕']).collect();
        let mut ours = Vec::new();
        string(&mut ours, &text);
        assert_eq!(ours, serde_json::to_vec(&text).unwrap());
    }
}
