//! Heads written on to the next hop: the fields that came in, as their bytes came in, less
//! the ones that stay at this hop ([`Fields::stays`]); then the fields this hop writes anew
//! (trace context, request id) and the framing of the body it sends. Every line ends in
//! CRLF, whatever ended it on the way in.

use super::head::{FieldKind, Fields, Framing, RequestHead, ResponseHead};

/// A field this hop adds: name and value.
pub type Added<'a> = (&'a [u8], &'a [u8]);

/// The head of `head` (parsed from `buf`) for the upstream: origin-form target, HTTP/1.1,
/// `Host` as it came (or from an absolute-form target, or else `default_host`), the body
/// framed as `framing` says.
pub fn request_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &RequestHead,
    default_host: &[u8],
    added: &[Added<'_>],
    framing: Framing,
) {
    request_head_start(out, buf, head, default_host);
    end(out, added, Some(framing), false);
}

/// [`request_head`] up to the fields this hop adds, which the caller writes with [`field`]
/// before it ends the head with [`end_head`].
pub fn request_head_start(out: &mut Vec<u8>, buf: &[u8], head: &RequestHead, default_host: &[u8]) {
    let target = &buf[head.target.clone()];
    let (authority, target) = origin_form(target);
    out.extend_from_slice(&buf[head.method.clone()]);
    out.push(b' ');
    if target.first() == Some(&b'?') {
        // An absolute target with a query and no path: the path is `/` (RFC 9112 §3.2.1).
        out.push(b'/');
    }
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    fields(out, buf, &head.fields, false);
    if head.fields.first(buf, FieldKind::Host).is_none() {
        field(out, b"host", authority.unwrap_or(default_host));
    }
}

/// Ends a head begun with [`request_head_start`]: the framing of the body as it is sent
/// (`None`: none written), and `connection: close` when `close`.
pub fn end_head(out: &mut Vec<u8>, framing: Option<Framing>, close: bool) {
    end(out, &[], framing, close);
}

/// The head of `head` (parsed from `buf`) for the client. `framing`: how the body is sent
/// on, or `None` for a response without one whose `Content-Length` passes as it came (to a
/// `HEAD`, a 304). `close`: the connection closes after it.
pub fn response_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &ResponseHead,
    added: &[Added<'_>],
    framing: Option<Framing>,
    close: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    let mut status = itoa::Buffer::new();
    out.extend_from_slice(status.format(head.status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(&buf[head.reason.clone()]);
    out.extend_from_slice(b"\r\n");
    fields(out, buf, &head.fields, framing.is_none());
    end(out, added, framing, close);
}

/// An absolute-form target's authority, and the target in origin form (RFC 9112 §3.2).
pub fn origin_form(target: &[u8]) -> (Option<&[u8]>, &[u8]) {
    if target.first() == Some(&b'/') || target == b"*" {
        return (None, target);
    }
    let Some(scheme_end) = target.windows(3).position(|w| w == b"://") else {
        return (None, target);
    };
    let rest = &target[scheme_end + 3..];
    let path_start = rest
        .iter()
        .position(|&byte| byte == b'/' || byte == b'?')
        .unwrap_or(rest.len());
    let path = match &rest[path_start..] {
        [] => &b"/"[..],
        path => path,
    };
    // A query right after the authority comes back as `?q`: the writer puts the `/` before it.
    (Some(&rest[..path_start]), path)
}

fn fields(out: &mut Vec<u8>, buf: &[u8], head: &Fields, pass_length: bool) {
    for each in &head.fields {
        let passes = !head.stays(buf, each) || pass_length && each.kind == FieldKind::ContentLength;
        if passes {
            field(out, &buf[each.name.clone()], &buf[each.value.clone()]);
        }
    }
}

fn end(out: &mut Vec<u8>, added: &[Added<'_>], framing: Option<Framing>, close: bool) {
    for (name, value) in added {
        field(out, name, value);
    }
    match framing {
        Some(Framing::Length(length)) => {
            field(
                out,
                b"content-length",
                itoa::Buffer::new().format(length).as_bytes(),
            );
        }
        Some(Framing::Chunked) => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Some(Framing::Empty | Framing::UntilClose) | None => {}
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A field line: `name: value`.
pub fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written_request(text: &str, added: &[Added<'_>]) -> String {
        let mut head = RequestHead::default();
        assert!(head.parse(text.as_bytes()).unwrap());
        let framing = head.framing(text.as_bytes()).unwrap();
        let mut out = Vec::new();
        request_head(&mut out, text.as_bytes(), &head, b"app:80", added, framing);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_request_goes_on_as_it_came_less_what_stays() {
        let text = "POST /p?q=1 HTTP/1.1\nHost: svc\nX-Custom:  spaced\t\nb3: 1-2-1\nConnection: keep-alive, x-hop\nx-hop: 1\nx-request-id: r1\nTransfer-Encoding: chunked\n\n";
        let written = written_request(text, &[(b"b3", b"a-b-1"), (b"x-request-id", b"r1")]);
        assert_eq!(
            written,
            "POST /p?q=1 HTTP/1.1\r\nHost: svc\r\nX-Custom: spaced\r\nb3: a-b-1\r\n\
             x-request-id: r1\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn an_absolute_target_becomes_origin_form_with_its_host() {
        let written = written_request("GET http://api.example:8080 HTTP/1.0\r\n\r\n", &[]);
        assert_eq!(written, "GET / HTTP/1.1\r\nhost: api.example:8080\r\n\r\n");
        let written = written_request("GET http://a/b/c?d HTTP/1.1\r\nHost: a\r\n\r\n", &[]);
        assert_eq!(written, "GET /b/c?d HTTP/1.1\r\nHost: a\r\n\r\n");
        // Found by the h1_codec fuzz target: a query with no path before it.
        let written = written_request("GET http://a.b?c HTTP/1.1\r\nHosj: a\r\n\r\n", &[]);
        assert_eq!(written, "GET /?c HTTP/1.1\r\nHosj: a\r\nhost: a.b\r\n\r\n");
        let written = written_request("GET /x HTTP/1.0\r\n\r\n", &[]);
        assert_eq!(written, "GET /x HTTP/1.1\r\nhost: app:80\r\n\r\n");
    }

    #[test]
    fn a_zero_length_stays_said() {
        let written = written_request(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            &[],
        );
        assert!(written.ends_with("content-length: 0\r\n\r\n"), "{written}");
    }

    #[test]
    fn a_response_is_framed_as_it_is_sent() {
        let text =
            "HTTP/1.1 200 Fine\r\nContent-Length: 3\r\nKeep-Alive: timeout=5\r\nX-App: 1\r\n\r\n";
        let mut head = ResponseHead::default();
        assert!(head.parse(text.as_bytes()).unwrap());
        let mut out = Vec::new();
        response_head(
            &mut out,
            text.as_bytes(),
            &head,
            &[(b"x-request-id", b"r")],
            Some(Framing::Length(3)),
            true,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 Fine\r\nX-App: 1\r\nx-request-id: r\r\ncontent-length: 3\r\nconnection: close\r\n\r\n"
        );
        let mut out = Vec::new();
        response_head(&mut out, text.as_bytes(), &head, &[], None, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 Fine\r\nContent-Length: 3\r\nX-App: 1\r\n\r\n"
        );
    }
}
