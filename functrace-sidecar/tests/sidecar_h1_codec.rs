//! The sidecar's own HTTP/1.1 codec (`functrace_sidecar::h1`) held to hyper's, message by
//! message: every request of `tests/h1_corpus/request/` is sent to a hyper server on loopback
//! (which echoes each request it reads: method, target, version, fields, body) and read by
//! the codec as a proxy would read it; every response of `tests/h1_corpus/response/` is
//! served raw on loopback to a hyper client, and read by the codec. The two must find the
//! same messages, with the same fields and bodies, and stop at the same place, answering the
//! same status; or the case is in [`REQUEST_DIFFERENCES`] or [`RESPONSE_DIFFERENCES`], where
//! the codec refuses what hyper takes, and why that is the safer answer.
//! The `h1_codec` fuzz target starts from the same corpus.

mod sidecar_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use functrace_sidecar::h1::{ChunkedDecoder, Framing, HeadError, RequestHead, ResponseHead};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use sidecar_support::h1_corpus;

/// Requests the codec refuses and hyper serves, and why refusing is right for a proxy.
const REQUEST_DIFFERENCES: &[(&str, &str)] = &[
    (
        "smuggle_cl_te",
        "both Content-Length and Transfer-Encoding: hyper frames by the chunks and drops the \
         length; a server behind that reads the length would see a second request (RFC 9112 \
         §6.3 lets a server reject it; the codec does, 400)",
    ),
    (
        "smuggle_te_cl",
        "the same framing conflict, fields the other way round: 400",
    ),
    (
        "smuggle_te_chunked_twice",
        "`chunked` twice (two fields): hyper reads one layer of chunks; a server behind that \
         decodes twice would not find the same end. RFC 9112 §6.1: chunked MUST NOT be \
         applied more than once; 400",
    ),
    (
        "coding_gzip_chunked",
        "a coding the sidecar does not decode: hyper takes the chunks off and passes the gzip \
         bytes on with no coding named; the codec answers 501 (RFC 9112 §6.1), as the \
         sidecar's request policy already did",
    ),
];

/// Responses the codec refuses and hyper reads, and why.
const RESPONSE_DIFFERENCES: &[(&str, &str)] = &[
    (
        "smuggle_te_cl",
        "a response framed both ways: hyper reads the chunks; the codec takes it as an error \
         (502 to the client): the upstream and another reader may disagree on its end",
    ),
    (
        "coding_gzip",
        "a coding other than chunked, the body to the close: hyper reads it, and a proxy on \
         it drops `Transfer-Encoding` as hop-by-hop, passing gzip bytes on as if plain; the \
         codec passes on no coding it does not decode: an error (502)",
    ),
    (
        "length_list_equal",
        "`Content-Length: 2, 2`: hyper's client takes it, hyper's server refuses it in a \
         request (see the request corpus); the codec has one rule both ways, a field is one \
         length",
    ),
];

#[test]
fn requests_read_as_hyper_reads_them() {
    let server = echo_server();
    let cases = h1_corpus("request");
    assert!(cases.len() >= 40, "{} requests", cases.len());
    let mut wrong = Vec::new();
    for (name, bytes) in cases {
        let by_hyper = exchange(server, &bytes);
        let by_codec = read_requests(&bytes);
        let as_expected = match REQUEST_DIFFERENCES.iter().find(|(case, _)| *case == name) {
            None => by_codec == by_hyper,
            // A documented difference is the codec refusing what hyper served.
            Some(_) => by_codec != by_hyper && matches!(by_codec.last(), Some(Seen::Refused(_))),
        };
        if !as_expected {
            wrong.push(format!(
                "{name}:
  codec {by_codec:?}
  hyper {by_hyper:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "requests read otherwise:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn responses_read_as_hyper_reads_them() {
    let cases = h1_corpus("response");
    assert!(cases.len() >= 20, "{} responses", cases.len());
    let mut wrong = Vec::new();
    for (name, bytes) in cases {
        let head_request = name.starts_with("head_");
        let by_hyper = hyper_reads_response(&bytes, head_request);
        let by_codec = read_response(&bytes, head_request);
        // Errors are compared as errors; their words differ.
        let as_expected = match RESPONSE_DIFFERENCES.iter().find(|(case, _)| *case == name) {
            None => by_codec.as_ref().ok() == by_hyper.as_ref().ok(),
            Some(_) => by_hyper.is_ok() && by_codec.is_err(),
        };
        if !as_expected {
            wrong.push(format!(
                "{name}:
  codec {by_codec:?}
  hyper {by_hyper:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "responses read otherwise:\n{}",
        wrong.join("\n")
    );
}

/// What a reader of a request stream saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// A whole request: method, target, version, sorted fields, body.
    Request(String),
    /// The stream was refused with this status (and closed).
    Refused(u16),
}

/// One request as both sides print it. The framing fields are left out: what they framed
/// is compared (the body, where the next message starts), and the codec writes its own.
fn describe(
    method: &str,
    target: &str,
    http10: bool,
    fields: &[(String, Vec<u8>)],
    body: &[u8],
) -> String {
    let mut fields: Vec<String> = fields
        .iter()
        .filter(|(name, _)| {
            !name.eq_ignore_ascii_case("content-length")
                && !name.eq_ignore_ascii_case("transfer-encoding")
        })
        .map(|(name, value)| {
            format!(
                "{}: {}",
                name.to_ascii_lowercase(),
                String::from_utf8_lossy(value)
            )
        })
        .collect();
    fields.sort();
    let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    format!(
        "{method} {target} {version}\n{}\n\n{}",
        fields.join("\n"),
        String::from_utf8_lossy(body)
    )
}

/// The requests in `bytes` as the codec reads them: the head, its framing, the body, and on
/// while the connection stays open. A refusal ends it; so does a message cut short or a
/// malformed body (hyper's echo service, failing on the body, answers nothing).
fn read_requests(mut bytes: &[u8]) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut head = RequestHead::default();
    while !bytes.is_empty() {
        match head.parse(bytes) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => {
                seen.push(Seen::Refused(error.status()));
                break;
            }
        }
        let framing = match head.framing(bytes) {
            Ok(framing) => framing,
            Err(error) => {
                seen.push(Seen::Refused(error.status()));
                break;
            }
        };
        let Some((body, used)) = read_body(&bytes[head.fields.len..], framing) else {
            break;
        };
        let fields: Vec<(String, Vec<u8>)> = head
            .fields
            .fields
            .iter()
            .map(|field| {
                (
                    String::from_utf8_lossy(&bytes[field.name.clone()]).into_owned(),
                    bytes[field.value.clone()].to_vec(),
                )
            })
            .collect();
        seen.push(Seen::Request(describe(
            &String::from_utf8_lossy(&bytes[head.method.clone()]),
            &String::from_utf8_lossy(&bytes[head.target.clone()]),
            head.fields.minor_version == 0,
            &fields,
            &body,
        )));
        bytes = &bytes[head.fields.len + used..];
        if head.fields.close {
            break;
        }
    }
    seen
}

/// A body framed as `framing` at the start of `bytes`, and the bytes it took; `None` when
/// it is cut short or malformed.
fn read_body(bytes: &[u8], framing: Framing) -> Option<(Vec<u8>, usize)> {
    match framing {
        Framing::Empty => Some((Vec::new(), 0)),
        Framing::Length(length) => {
            let length = usize::try_from(length).ok()?;
            Some((bytes.get(..length)?.to_vec(), length))
        }
        Framing::UntilClose => Some((bytes.to_vec(), bytes.len())),
        Framing::Chunked => {
            let mut decoder = ChunkedDecoder::default();
            let (mut body, mut at) = (Vec::new(), 0);
            while !decoder.is_done() {
                let step = decoder.step(&bytes[at..]).ok()?;
                if step.consumed == 0 {
                    return None;
                }
                body.extend_from_slice(&bytes[at..][step.data]);
                at += step.consumed;
            }
            Some((body, at))
        }
    }
}

/// The response in `bytes` as the codec reads it (informational ones skipped): status and
/// body, or why not.
fn read_response(mut bytes: &[u8], head_request: bool) -> Result<(u16, Vec<u8>), String> {
    let mut head = ResponseHead::default();
    loop {
        if !head.parse(bytes).map_err(|e| e.to_string())? {
            return Err("incomplete head".into());
        }
        if head.status >= 200 {
            break;
        }
        bytes = &bytes[head.fields.len..];
    }
    let framing = head
        .framing(bytes, head_request)
        .map_err(|e: HeadError| e.to_string())?;
    let (body, _) = read_body(&bytes[head.fields.len..], framing).ok_or("bad body")?;
    Ok((head.status, body))
}

// --- hyper's side --------------------------------------------------------------------------

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// A hyper HTTP/1.1 server on loopback whose every response is the request it read.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    runtime().spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(
                // The client closes its writing side once it has sent everything: without
                // half-close, hyper may take that end for the client leaving, and close
                // before it answers.
                hyper::server::conn::http1::Builder::new()
                    .half_close(true)
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(echo)),
            );
        }
    });
    address
}

async fn echo(
    request: http::Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let fields: Vec<(String, Vec<u8>)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect();
    let text = describe(
        parts.method.as_str(),
        &parts.uri.to_string(),
        parts.version == http::Version::HTTP_10,
        &fields,
        &body,
    );
    Ok(http::Response::new(Full::new(Bytes::from(text))))
}

/// Sends `bytes` to the echo server, closes the writing side, and reads what it answers
/// until it closes: the requests it echoed, and the status it refused with, if any.
fn exchange(server: SocketAddr, bytes: &[u8]) -> Vec<Seen> {
    let mut stream = TcpStream::connect(server).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    if let Err(error) = stream.read_to_end(&mut answer) {
        assert_eq!(error.kind(), ErrorKind::ConnectionReset, "{error}");
    }
    let mut seen = Vec::new();
    let mut rest = &answer[..];
    while !rest.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut fields);
        let Ok(httparse::Status::Complete(len)) = response.parse(rest) else {
            panic!("hyper answered {:?}", String::from_utf8_lossy(&answer));
        };
        let status = response.code.unwrap();
        let length: usize = response
            .headers
            .iter()
            .find(|field| field.name.eq_ignore_ascii_case("content-length"))
            .map_or(0, |field| {
                std::str::from_utf8(field.value).unwrap().parse().unwrap()
            });
        let body = &rest[len..len + length];
        rest = &rest[len + length..];
        match status {
            100..=199 => {}
            200 => seen.push(Seen::Request(String::from_utf8_lossy(body).into_owned())),
            _ => seen.push(Seen::Refused(status)),
        }
    }
    seen
}

/// Serves `bytes` raw to one hyper client request (`HEAD` or `GET`) on loopback, then closes:
/// the status and body hyper read, or its error.
fn hyper_reads_response(bytes: &[u8], head_request: bool) -> Result<(u16, Vec<u8>), String> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let bytes = bytes.to_vec();
    let upstream = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "the client closed before its request");
            request.extend_from_slice(&buf[..n]);
        }
        stream.write_all(&bytes).unwrap();
        let _ = stream.shutdown(Shutdown::Write);
        // Until the client is done with it: an early close could reset what it still reads.
        let _ = stream.read_to_end(&mut request);
    });
    let method = if head_request { "HEAD" } else { "GET" };
    let read = runtime().block_on(async move {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        let connection = tokio::spawn(connection);
        let request = http::Request::builder()
            .method(method)
            .uri("/")
            .header("host", "upstream")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let read = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            Ok((status, body.to_bytes().to_vec()))
        }
        .await;
        drop(sender);
        let _ = connection.await;
        read
    });
    upstream.join().unwrap();
    read
}
