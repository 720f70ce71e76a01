//! Message heads, parsed with `httparse` out of a buffer the connection keeps and reuses, and
//! kept as offsets into it: a field can be written on as the bytes that came in. The framing
//! of the body that follows is decided here, once, by RFC 9112 §6.

use std::mem::MaybeUninit;
use std::ops::Range;

/// Fields a head may have; more is a malformed message (431 for a request).
pub const MAX_FIELDS: usize = 100;

/// Why a head was not taken. Every one ends the connection: after a bad head, where the
/// next message starts is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// Not HTTP/1.x syntax.
    Malformed(httparse::Error),
    /// A request without a method, target or version, or a response without a status.
    Incomplete,
    /// A request target in none of the forms of RFC 9112 §3.2: origin (`/path`), absolute
    /// (`http://host/path`), authority (CONNECT only) or asterisk (OPTIONS only).
    BadTarget,
    /// More than [`MAX_FIELDS`] fields.
    TooManyFields,
    /// Both `Content-Length` and `Transfer-Encoding`: which one frames the body depends on
    /// who reads it, the stuff of request smuggling (§6.3 lets a server reject it).
    ConflictingFraming,
    /// A `Content-Length` that is not digits, or several that differ.
    BadLength,
    /// `Transfer-Encoding` whose last coding is not `chunked`, that applies `chunked`
    /// twice, or that an HTTP/1.0 message carries (§6.1: its framing is faulty).
    BadTransferEncoding,
    /// A transfer coding other than `chunked`, which the sidecar does not decode (§6.1:
    /// 501). The coding's name.
    UnknownCoding(String),
}

impl HeadError {
    /// The status a request with this head is answered with.
    pub fn status(&self) -> u16 {
        match self {
            HeadError::TooManyFields => 431,
            HeadError::UnknownCoding(_) => 501,
            _ => 400,
        }
    }
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Malformed(why) => write!(f, "malformed head: {why}"),
            HeadError::Incomplete => write!(f, "malformed head: incomplete first line"),
            HeadError::BadTarget => write!(f, "malformed head: invalid request target"),
            HeadError::TooManyFields => write!(f, "more than {MAX_FIELDS} header fields"),
            HeadError::ConflictingFraming => {
                write!(f, "both Content-Length and Transfer-Encoding")
            }
            HeadError::BadLength => write!(f, "invalid Content-Length"),
            HeadError::BadTransferEncoding => write!(f, "invalid Transfer-Encoding"),
            HeadError::UnknownCoding(coding) => write!(f, "unsupported transfer coding {coding:?}"),
        }
    }
}

impl std::error::Error for HeadError {}

/// How the body after a head ends (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// This many bytes.
    Length(u64),
    /// Chunks, to the last chunk and the trailer section.
    Chunked,
    /// Everything until the connection closes (responses only).
    UntilClose,
}

impl Framing {
    /// Whether a body of at least a byte may follow the head.
    pub fn has_body(self) -> bool {
        !matches!(self, Framing::Empty | Framing::Length(0))
    }
}

/// What a field's name makes it to a proxy, found once while the head is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Passed on as it came.
    Other,
    /// `Host`: passed on, or written when missing.
    Host,
    /// Framing, written anew for the body as it is sent.
    ContentLength,
    /// Framing, written anew for the body as it is sent.
    TransferEncoding,
    /// `Connection`: its options are read (close, keep-alive, more hop-by-hop names).
    Connection,
    /// Describes this connection only (RFC 9110 §7.6.1), removed at each hop. `te` is here
    /// unless its value is `trailers`, which gRPC needs end to end.
    HopByHop,
    /// B3 or W3C Trace Context, which each hop writes anew.
    TraceContext,
    /// `x-request-id`, which the sidecar keeps or makes.
    RequestId,
    /// `Expect`: a request's `100-continue` is answered at this hop, as the body is read.
    Expect,
}

/// One field line: its name and value as offsets into the buffer the head was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The name, as it came.
    pub name: Range<usize>,
    /// The value, without the whitespace around it.
    pub value: Range<usize>,
    /// What the name makes it.
    pub kind: FieldKind,
}

/// The parts of a head that requests and responses share.
#[derive(Debug, Default, Clone)]
pub struct Fields {
    /// The head's length in the buffer, through its empty line.
    pub len: usize,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor_version: u8,
    /// The field lines, in order.
    pub fields: Vec<Field>,
    /// Names `Connection` lists: hop-by-hop as well.
    pub connection_options: Vec<Range<usize>>,
    /// `Connection: close` on HTTP/1.1, or no `Connection: keep-alive` on HTTP/1.0.
    pub close: bool,
}

impl Fields {
    /// Whether a field named `name` (lowercase) came.
    pub fn has(&self, buf: &[u8], name: &[u8]) -> bool {
        self.fields
            .iter()
            .any(|field| buf[field.name.clone()].eq_ignore_ascii_case(name))
    }

    /// The value of the first field of `kind`.
    pub fn first<'b>(&self, buf: &'b [u8], kind: FieldKind) -> Option<&'b [u8]> {
        let field = self.fields.iter().find(|field| field.kind == kind)?;
        Some(&buf[field.value.clone()])
    }

    /// Whether `field` goes no further than this hop: hop-by-hop, framing, trace context,
    /// request id (the writer writes those anew), or a name `Connection` lists.
    pub fn stays(&self, buf: &[u8], field: &Field) -> bool {
        field.kind != FieldKind::Other && field.kind != FieldKind::Host
            || self
                .connection_options
                .iter()
                .any(|option| buf[option.clone()].eq_ignore_ascii_case(&buf[field.name.clone()]))
    }

    fn take(&mut self, buf: &[u8], minor_version: u8, len: usize, parsed: &[httparse::Header]) {
        self.len = len;
        self.minor_version = minor_version;
        self.fields.clear();
        self.connection_options.clear();
        let mut keep_alive = false;
        let mut close = false;
        for header in parsed {
            let name = offsets(buf, header.name.as_bytes());
            let value = offsets(buf, header.value);
            let kind = kind_of(header.name.as_bytes(), header.value);
            if kind == FieldKind::Connection {
                for option in split_list(header.value) {
                    let option = option.trim_ascii();
                    close |= option.eq_ignore_ascii_case(b"close");
                    keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
                    if !option.is_empty() {
                        self.connection_options.push(offsets(buf, option));
                    }
                }
            }
            self.fields.push(Field { name, value, kind });
        }
        self.close = close || (minor_version == 0 && !keep_alive);
    }

    /// The body's length by `Content-Length` and `Transfer-Encoding`, when there are any.
    /// `Ok(None)`: neither.
    fn declared_framing(&self, buf: &[u8]) -> Result<Option<Framing>, HeadError> {
        let mut length = None;
        // The codings in one pass, kept as what the checks need rather than collected
        // (this runs for every message): the last, the first that is not `chunked`, and
        // whether `chunked` came before the last.
        let mut transfer_encoding = false;
        let mut last: Option<&[u8]> = None;
        let mut unknown: Option<&[u8]> = None;
        let mut chunked_before_last = false;
        for field in &self.fields {
            let value = &buf[field.value.clone()];
            match field.kind {
                FieldKind::ContentLength => {
                    // Repeated equal fields are one length (§6.3 rule 5 allows it, and
                    // hyper does it); a list in one field (`5, 5`) is refused, as hyper
                    // refuses it.
                    let parsed = parse_length(value)?;
                    if length.is_some_and(|length| length != parsed) {
                        return Err(HeadError::BadLength);
                    }
                    length = Some(parsed);
                }
                FieldKind::TransferEncoding => {
                    transfer_encoding = true;
                    let codings = split_list(value)
                        .map(<[u8]>::trim_ascii)
                        .filter(|coding| !coding.is_empty());
                    for coding in codings {
                        chunked_before_last |= last.is_some_and(is_chunked);
                        if !is_chunked(coding) {
                            unknown = unknown.or(Some(coding));
                        }
                        last = Some(coding);
                    }
                }
                _ => {}
            }
        }
        if !transfer_encoding {
            return Ok(length.map(Framing::Length));
        }
        if length.is_some() {
            return Err(HeadError::ConflictingFraming);
        }
        if self.minor_version == 0 {
            return Err(HeadError::BadTransferEncoding);
        }
        let Some(last) = last else {
            return Err(HeadError::BadTransferEncoding);
        };
        match unknown {
            Some(unknown) if is_chunked(last) => Err(HeadError::UnknownCoding(
                String::from_utf8_lossy(unknown).into_owned(),
            )),
            _ if !is_chunked(last) || chunked_before_last => Err(HeadError::BadTransferEncoding),
            _ => Ok(Some(Framing::Chunked)),
        }
    }
}

/// RFC 9112 §3.2's forms of a request target.
fn is_valid_target(method: &[u8], target: &[u8]) -> bool {
    match target {
        [b'/', ..] => true,
        b"*" => method == b"OPTIONS",
        _ if method == b"CONNECT" => !target.is_empty(),
        _ => {
            // absolute-form: a scheme (a letter, then letters, digits, `+`, `-`, `.`), `://`.
            let Some(colon) = target.iter().position(|&byte| byte == b':') else {
                return false;
            };
            let scheme = &target[..colon];
            scheme.first().is_some_and(u8::is_ascii_alphabetic)
                && scheme
                    .iter()
                    .all(|&byte| byte.is_ascii_alphanumeric() || b"+-.".contains(&byte))
                && target[colon + 1..].starts_with(b"//")
        }
    }
}

fn is_chunked(coding: &[u8]) -> bool {
    coding.eq_ignore_ascii_case(b"chunked")
}

/// A request head.
#[derive(Debug, Default, Clone)]
pub struct RequestHead {
    /// The method, as it came.
    pub method: Range<usize>,
    /// The request target, as it came.
    pub target: Range<usize>,
    /// The version and fields.
    pub fields: Fields,
}

impl RequestHead {
    /// Parses the head at the start of `buf` into `self` (its vectors are reused).
    /// `Ok(false)`: not whole yet.
    pub fn parse(&mut self, buf: &[u8]) -> Result<bool, HeadError> {
        let mut headers = uninit_fields();
        let mut request = httparse::Request::new(&mut []);
        let Some(len) = head_length(request.parse_with_uninit_headers(buf, &mut headers))? else {
            return Ok(false);
        };
        let (Some(method), Some(target), Some(minor)) =
            (request.method, request.path, request.version)
        else {
            return Err(HeadError::Incomplete);
        };
        if !is_valid_target(method.as_bytes(), target.as_bytes()) {
            return Err(HeadError::BadTarget);
        }
        self.method = offsets(buf, method.as_bytes());
        self.target = offsets(buf, target.as_bytes());
        self.fields.take(buf, minor, len, request.headers);
        Ok(true)
    }

    /// Whether the client waits for `100 Continue` before it sends the body.
    pub fn expects_continue(&self, buf: &[u8]) -> bool {
        self.fields.minor_version == 1
            && self
                .fields
                .first(buf, FieldKind::Expect)
                .is_some_and(|value| value.eq_ignore_ascii_case(b"100-continue"))
    }

    /// How the request body ends: no `Transfer-Encoding` or `Content-Length`, no body
    /// (§6.3 rule 7). (`Length(0)` stays itself: the next hop is told the same.)
    pub fn framing(&self, buf: &[u8]) -> Result<Framing, HeadError> {
        Ok(self.fields.declared_framing(buf)?.unwrap_or(Framing::Empty))
    }
}

/// A response head.
#[derive(Debug, Default, Clone)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The reason phrase, as it came (may be empty).
    pub reason: Range<usize>,
    /// The version and fields.
    pub fields: Fields,
}

impl ResponseHead {
    /// Parses the head at the start of `buf` into `self`. `Ok(false)`: not whole yet.
    pub fn parse(&mut self, buf: &[u8]) -> Result<bool, HeadError> {
        let mut headers = uninit_fields();
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buf,
            &mut headers,
        );
        let Some(len) = head_length(parsed)? else {
            return Ok(false);
        };
        let (Some(status), Some(minor)) = (response.code, response.version) else {
            return Err(HeadError::Incomplete);
        };
        self.status = status;
        self.reason = offsets(buf, response.reason.unwrap_or("").as_bytes());
        self.fields.take(buf, minor, len, response.headers);
        Ok(true)
    }

    /// How the response body ends, for a request made with `head_request` (`HEAD`):
    /// §6.3 rules 1, 3, 4 (as an error: a response framed both ways says the upstream and
    /// this proxy may not agree on where it ends), 5, 8.
    pub fn framing(&self, buf: &[u8], head_request: bool) -> Result<Framing, HeadError> {
        if head_request || self.status < 200 || self.status == 204 || self.status == 304 {
            return Ok(Framing::Empty);
        }
        // (A response whose last coding is not `chunked` ends with the connection, §6.3
        // rule 4; the sidecar passes on no coding it does not decode, so it is an error.)
        Ok(self
            .fields
            .declared_framing(buf)?
            .unwrap_or(Framing::UntilClose))
    }
}

/// Room for httparse's fields, left uninitialized: zeroing a hundred of them cost more than
/// parsing a common head.
fn uninit_fields<'b>() -> [MaybeUninit<httparse::Header<'b>>; MAX_FIELDS] {
    [const { MaybeUninit::uninit() }; MAX_FIELDS]
}

/// httparse's answer as the head's length, `None` while it is not whole.
fn head_length(
    parsed: Result<httparse::Status<usize>, httparse::Error>,
) -> Result<Option<usize>, HeadError> {
    match parsed {
        Ok(httparse::Status::Complete(len)) => Ok(Some(len)),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyFields),
        Err(error) => Err(HeadError::Malformed(error)),
    }
}

/// `part`'s place in `buf`, of which it is a slice (an empty part may be any empty
/// slice: httparse gives a missing reason phrase as `""`).
fn offsets(buf: &[u8], part: &[u8]) -> Range<usize> {
    if part.is_empty() {
        return 0..0;
    }
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

fn split_list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&byte| byte == b',')
}

fn parse_length(digits: &[u8]) -> Result<u64, HeadError> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::BadLength);
    }
    Ok(digits
        .iter()
        .fold(0, |length, digit| length * 10 + u64::from(digit - b'0')))
}

/// What a field named `name` (with `value`: `te` depends on it) is to a proxy.
pub fn kind_of(name: &[u8], value: &[u8]) -> FieldKind {
    // Names are case-insensitive; most are short, and a match on the length first keeps
    // the comparisons few.
    let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
    match name.len() {
        2 if is("te") => {
            if value.trim_ascii().eq_ignore_ascii_case(b"trailers") {
                FieldKind::Other
            } else {
                FieldKind::HopByHop
            }
        }
        2 if is("b3") => FieldKind::TraceContext,
        4 if is("host") => FieldKind::Host,
        6 if is("expect") => FieldKind::Expect,
        7 if is("upgrade") || is("trailer") => FieldKind::HopByHop,
        10 if is("connection") => FieldKind::Connection,
        10 if is("keep-alive") => FieldKind::HopByHop,
        10 if is("tracestate") => FieldKind::TraceContext,
        11 if is("traceparent") || is("x-b3-spanid") => FieldKind::TraceContext,
        12 if is("x-request-id") => FieldKind::RequestId,
        12 if is("x-b3-traceid") || is("x-b3-sampled") => FieldKind::TraceContext,
        10 if is("x-b3-flags") => FieldKind::TraceContext,
        14 if is("content-length") => FieldKind::ContentLength,
        16 if is("proxy-connection") => FieldKind::HopByHop,
        17 if is("transfer-encoding") => FieldKind::TransferEncoding,
        17 if is("x-b3-parentspanid") => FieldKind::TraceContext,
        14 if is("http2-settings") => FieldKind::HopByHop,
        18 if is("proxy-authenticate") => FieldKind::HopByHop,
        19 if is("proxy-authorization") => FieldKind::HopByHop,
        _ => FieldKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_in_one_of_the_four_forms() {
        let parse = |line: &str| RequestHead::default().parse(format!("{line}\r\n\r\n").as_bytes());
        for good in [
            "GET / HTTP/1.1",
            "GET /a?b HTTP/1.1",
            "GET http://a/b HTTP/1.1",
            "GET svc+x.y-z://a HTTP/1.1",
            "OPTIONS * HTTP/1.1",
            "CONNECT a:443 HTTP/1.1",
        ] {
            assert_eq!(parse(good), Ok(true), "{good}");
        }
        for bad in [
            "GET a HTTP/1.1",
            "GET a/b HTTP/1.1",
            "GET * HTTP/1.1",
            "GET http:/a HTTP/1.1",
            "GET 1http://a HTTP/1.1",
            "GET ://a HTTP/1.1",
        ] {
            assert_eq!(parse(bad), Err(HeadError::BadTarget), "{bad}");
        }
    }

    #[test]
    fn expect_continue_is_answered_at_this_hop() {
        let text = b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n";
        let mut head = RequestHead::default();
        assert_eq!(head.parse(text), Ok(true));
        assert!(head.expects_continue(text));
        assert!(head.fields.stays(text, &head.fields.fields[0]));
        let text = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n";
        assert_eq!(head.parse(text), Ok(true));
        assert!(
            !head.expects_continue(text),
            "HTTP/1.0 knows no 100 Continue"
        );
    }

    fn request(text: &str) -> Result<(RequestHead, Framing), HeadError> {
        let mut head = RequestHead::default();
        assert!(head.parse(text.as_bytes())?, "whole: {text:?}");
        let framing = head.framing(text.as_bytes())?;
        Ok((head, framing))
    }

    fn response(text: &str, head_request: bool) -> Result<Framing, HeadError> {
        let mut head = ResponseHead::default();
        assert!(head.parse(text.as_bytes())?);
        head.framing(text.as_bytes(), head_request)
    }

    #[test]
    fn a_request_head_is_kept_as_offsets() {
        let text =
            "POST /a?b HTTP/1.1\r\nHost: svc\r\nX-B3-TraceId: 1\r\nContent-Length: 3\r\n\r\nabc";
        let (head, framing) = request(text).unwrap();
        assert_eq!(&text[head.method.clone()], "POST");
        assert_eq!(&text[head.target.clone()], "/a?b");
        assert_eq!(head.fields.len, text.len() - 3);
        assert_eq!(framing, Framing::Length(3));
        let kinds: Vec<_> = head.fields.fields.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                FieldKind::Host,
                FieldKind::TraceContext,
                FieldKind::ContentLength
            ]
        );
        assert_eq!(&text[head.fields.fields[1].value.clone()], "1");
        assert!(!head.fields.close);
    }

    #[test]
    fn a_partial_head_waits() {
        let mut head = RequestHead::default();
        assert_eq!(head.parse(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(false));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let framing = |fields: &str| {
            request(&format!("POST / HTTP/1.1\r\nHost: a\r\n{fields}\r\n")).map(|(_, f)| f)
        };
        assert_eq!(framing(""), Ok(Framing::Empty));
        assert_eq!(framing("Content-Length: 0\r\n"), Ok(Framing::Length(0)));
        assert_eq!(framing("Content-Length: 7\r\n"), Ok(Framing::Length(7)));
        assert_eq!(
            framing("Content-Length: 7, 7\r\n"),
            Err(HeadError::BadLength)
        );
        assert_eq!(
            framing("Content-Length: 7\r\nContent-Length: 7\r\n"),
            Ok(Framing::Length(7))
        );
        assert_eq!(
            framing("Content-Length: 7\r\nContent-Length: 8\r\n"),
            Err(HeadError::BadLength)
        );
        for bad in ["+7", "-1", "0x7", "7 7", "", "99999999999999999999"] {
            assert_eq!(
                framing(&format!("Content-Length: {bad}\r\n")),
                Err(HeadError::BadLength),
                "{bad}"
            );
        }
        assert_eq!(
            framing("Transfer-Encoding: chunked\r\n"),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing("Transfer-Encoding: CHUNKED\r\n"),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"),
            Err(HeadError::ConflictingFraming)
        );
        assert_eq!(
            framing("Transfer-Encoding: gzip, chunked\r\n"),
            Err(HeadError::UnknownCoding("gzip".into()))
        );
        assert_eq!(
            framing("Transfer-Encoding: chunked, gzip\r\n"),
            Err(HeadError::BadTransferEncoding)
        );
        assert_eq!(
            framing("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
            Err(HeadError::BadTransferEncoding)
        );
        assert_eq!(
            framing("Transfer-Encoding: ,\r\n"),
            Err(HeadError::BadTransferEncoding)
        );
        assert_eq!(
            request("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n").map(|(_, f)| f),
            Err(HeadError::BadTransferEncoding)
        );
    }

    #[test]
    fn response_framing_knows_bodiless_answers() {
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(response(ok, false), Ok(Framing::Length(5)));
        assert_eq!(response(ok, true), Ok(Framing::Empty));
        for status in ["100 Continue", "204 No Content", "304 Not Modified"] {
            let text = format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\n");
            assert_eq!(response(&text, false), Ok(Framing::Empty), "{status}");
        }
        assert_eq!(
            response("HTTP/1.1 200 OK\r\n\r\n", false),
            Ok(Framing::UntilClose)
        );
        assert_eq!(
            response(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
                false
            ),
            Err(HeadError::ConflictingFraming)
        );
    }

    #[test]
    fn connection_options_are_hop_by_hop() {
        let text = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Drop\r\nx-drop: 1\r\nX-Keep: 2\r\nTE: trailers\r\nKeep-Alive: 5\r\n\r\n";
        let (head, _) = request(text).unwrap();
        assert!(head.fields.close);
        let passed: Vec<&str> = head
            .fields
            .fields
            .iter()
            .filter(|field| !head.fields.stays(text.as_bytes(), field))
            .map(|field| &text[field.name.clone()])
            .collect();
        assert_eq!(passed, ["Host", "X-Keep", "TE"]);
    }

    #[test]
    fn http_1_0_closes_unless_kept_alive() {
        assert!(request("GET / HTTP/1.0\r\n\r\n").unwrap().0.fields.close);
        let kept = request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
        assert!(!kept.0.fields.close);
    }

    #[test]
    fn too_many_fields_is_431() {
        let fields = "x: 1\r\n".repeat(MAX_FIELDS + 1);
        let error = request(&format!("GET / HTTP/1.1\r\n{fields}\r\n")).unwrap_err();
        assert_eq!(error, HeadError::TooManyFields);
        assert_eq!(error.status(), 431);
    }
}
