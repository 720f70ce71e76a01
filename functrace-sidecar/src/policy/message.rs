//! The message itself, before anything else (RFC 9112): what the sidecar does not pass on.
//! An HTTP/1.1 request without exactly one `Host` is malformed (§3.2, 400). A transfer
//! coding other than `chunked` is one the sidecar does not understand (§6.1, 501): hyper
//! would take its chunks off and forward the rest as plain bytes. (Both `Content-Length` and
//! `Transfer-Encoding` need nothing here: hyper drops the length, reads the chunks, and
//! closes the connection after the answer, as §6.3 has it.) And a tunnel (CONNECT)
//! is not something it makes (501).

use http::header::{HOST, TRANSFER_ENCODING};
use http::{Method, Request, Version};
use hyper::body::{Body, Incoming};

use crate::h1::{FieldKind, RequestHead};
use crate::refusal::Refusal;

/// [`check`] of a head the sidecar's own HTTP/1.1 codec read (which refuses unknown
/// codings as it decides the framing).
pub fn check_h1(head: &RequestHead, buf: &[u8]) -> Result<(), Refusal> {
    if head.fields.minor_version == 1 {
        let mut hosts = head
            .fields
            .fields
            .iter()
            .filter(|f| f.kind == FieldKind::Host);
        if hosts.next().is_none() || hosts.next().is_some() {
            return Err(Refusal::NoHost);
        }
    }
    if &buf[head.method.clone()] == b"CONNECT" {
        return Err(Refusal::Tunnel);
    }
    Ok(())
}

pub fn check(request: &Request<Incoming>) -> Result<(), Refusal> {
    let headers = request.headers();
    if request.version() == Version::HTTP_11 {
        let mut hosts = headers.get_all(HOST).iter();
        if hosts.next().is_none() || hosts.next().is_some() {
            return Err(Refusal::NoHost);
        }
    }
    if request.method() == Method::CONNECT {
        return Err(Refusal::Tunnel);
    }
    // Only a request with a body can have a coding (hyper took `chunked` for its framing).
    if !request.body().is_end_stream() {
        let codings = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&byte| byte == b','));
        for coding in codings {
            if !coding.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                let coding = String::from_utf8_lossy(coding.trim_ascii()).into_owned();
                return Err(Refusal::UnknownCoding(coding));
            }
        }
    }
    Ok(())
}
