//! The sidecar's two HTTP/1.1 paths held to each other end to end: the sidecar's own codec
//! (`--http1 own`: `src/proxy_h1.rs`) and hyper's server and client (`--http1 hyper`:
//! `src/proxy.rs`), each a real sidecar process in front of the same raw upstream.
//!
//! Every request of `tests/h1_corpus/request/` is sent as it is, on a connection of its own,
//! through each path to an upstream that reads requests strictly (with
//! `functrace_sidecar::h1`) and answers each with its target. Per path, the requests the
//! upstream received (method, target, the fields that no hop writes anew, the body) and the
//! statuses the client got back, in order, must be the same; or the case is in
//! [`REQUEST_DIFFERENCES`], where the own path refuses what hyper's passes on, and why
//! that is the safer answer.
//!
//! A case's bytes are followed by [`LAST`], a request that asks for the connection's end:
//! each path reads as far as it reads, answers, and closes by itself. Only the cases that
//! end mid-message (`incomplete_*`) end with the client's half-close instead, since hyper's
//! server (which the sidecar runs without `half_close`) takes a half-close after a whole
//! request as the client gone: it drops the request in flight, which the upstream may or
//! may not have received by then, and answers nothing.
//!
//! Every response of `tests/h1_corpus/response/` is the upstream's answer to one `GET /`
//! (`HEAD /` for `head_*`) through each path: the status, the body (whatever the framing
//! it was passed on in) and whether it came whole must be the same; or the case is in
//! [`RESPONSE_DIFFERENCES`].
//!
//! What the upstream received in a case is what had arrived on its connections when the
//! client's connection ended: read then, to the last byte, rather than waited for.

mod sidecar_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once};
use std::time::Duration;

use functrace_sidecar::h1::{ChunkedDecoder, Framing, RequestHead, ResponseHead};
use sidecar_support::{h1_corpus, Sidecar};
use tokio::io::Interest;

/// Requests the own path refuses and hyper's passes on, and why refusing is right.
const REQUEST_DIFFERENCES: &[(&str, &str)] = &[
    (
        "smuggle_cl_te",
        "both Content-Length and Transfer-Encoding: hyper's path frames the body by the \
         chunks, drops the length and closes after the answer (RFC 9112 §6.3 allows it); the \
         own path refuses it, 400 (§6.3 allows that too). Refusing is safer: a hop in front \
         that framed by the length saw another body, and a request behind it, than the app \
         gets",
    ),
    (
        "smuggle_te_cl",
        "the same framing conflict, fields the other way round: hyper's path passes the \
         chunks on (`SMUGGLED` as the body) and closes; the own path answers 400",
    ),
    (
        "smuggle_te_chunked_twice",
        "`chunked` in two fields: hyper's path takes one layer of chunks off and keeps the \
         connection, reading on; a hop that decodes twice would not find the same end. RFC \
         9112 §6.1: chunked is never applied twice; the own path answers 400 and closes",
    ),
];

/// Responses the own path refuses (502) and hyper's passes on, and why refusing is right.
const RESPONSE_DIFFERENCES: &[(&str, &str)] = &[
    (
        "smuggle_te_cl",
        "a response framed both ways: hyper's path reads the chunks and passes `ok` on; the \
         own path answers 502. The upstream and another reader of its bytes may not agree \
         on where the answer ends, and the connection to it is not to be reused",
    ),
    (
        "coding_gzip",
        "a coding other than chunked, the body to the close: hyper's path drops \
         `Transfer-Encoding` as hop-by-hop and passes the gzip bytes on as if they were the \
         data, with no coding named; the own path passes on no coding it does not decode, \
         502 (the client could not read the body right)",
    ),
    (
        "length_list_equal",
        "`Content-Length: 2, 2`: hyper's path passes the list on as it came, which strict \
         readers refuse (the codec, this test's client; hyper's server, in a request) and \
         lenient ones read as 2; the own path answers 502, which every client reads alike \
         (RFC 9110 §8.6 lets a recipient refuse it)",
    ),
];

/// What ends each request case's bytes (but for `incomplete_*`): a request that asks for
/// the connection's end. A path that reads up to it answers it and closes.
const LAST: &[u8] = b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

/// How long the client waits for the sidecar's next bytes before calling the case hung.
const PATIENCE: Duration = Duration::from_secs(10);

/// The fields each hop writes anew, or that describe one connection only: not compared.
const REWRITTEN: &[&str] = &[
    "b3",
    "traceparent",
    "tracestate",
    "x-request-id",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "proxy-connection",
];

#[test]
fn requests_reach_the_upstream_alike_on_both_paths() {
    let runtime = sidecar_support::runtime();
    let upstream = Recorder::start(&runtime);
    let inbound = format!("127.0.0.1:0={}", upstream.address);
    let own = start_sidecar(&inbound, "own");
    let hyper = start_sidecar(&inbound, "hyper");
    let cases = h1_corpus("request");
    assert!(cases.len() >= 40, "{} requests", cases.len());
    in_corpus(REQUEST_DIFFERENCES, &cases);
    let mut wrong = Vec::new();
    for (name, mut bytes) in cases {
        let cut_short = name.starts_with("incomplete_");
        if !cut_short {
            bytes.extend_from_slice(LAST);
        }
        let mut through = |sidecar: &Sidecar, path: &str| {
            // All an earlier case sent had arrived when it ended.
            let late = upstream.received();
            if !late.is_empty() {
                wrong.push(format!("before {name} on {path}, late: {late:?}"));
            }
            let answers = statuses(&send(sidecar.inbound(), &bytes, cut_short));
            Passed {
                received: upstream.received(),
                answers,
            }
        };
        let by_own = through(&own, "own");
        let by_hyper = through(&hyper, "hyper");
        let as_expected = match REQUEST_DIFFERENCES.iter().find(|(case, _)| *case == name) {
            None => by_own == by_hyper,
            // A documented difference is the own path refusing what hyper's passed on.
            Some(_) => by_own != by_hyper && by_own.refused_within(&by_hyper),
        };
        if !as_expected {
            wrong.push(format!("{name}:\n  own   {by_own:?}\n  hyper {by_hyper:?}"));
        }
    }
    let late = upstream.received();
    if !late.is_empty() {
        wrong.push(format!("after the last case, late: {late:?}"));
    }
    assert!(
        wrong.is_empty(),
        "requests passed on otherwise:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn responses_reach_the_client_alike_on_both_paths() {
    let upstream = Responder::start();
    let inbound = format!("127.0.0.1:0={}", upstream.address);
    let own = start_sidecar(&inbound, "own");
    let hyper = start_sidecar(&inbound, "hyper");
    let cases = h1_corpus("response");
    assert!(cases.len() >= 20, "{} responses", cases.len());
    in_corpus(RESPONSE_DIFFERENCES, &cases);
    let mut wrong = Vec::new();
    for (name, bytes) in cases {
        let head_request = name.starts_with("head_");
        *lock(&upstream.answer) = bytes;
        let by_own = fetch(own.inbound(), head_request);
        let by_hyper = fetch(hyper.inbound(), head_request);
        let as_expected = match RESPONSE_DIFFERENCES.iter().find(|(case, _)| *case == name) {
            None => by_own == by_hyper,
            // A documented difference is the own path refusing what hyper's passed on.
            Some(_) => by_own != by_hyper && by_own.is_refusal(),
        };
        if !as_expected {
            wrong.push(format!("{name}:\n  own   {by_own:?}\n  hyper {by_hyper:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "responses passed on otherwise:\n{}",
        wrong.join("\n")
    );
}

/// A sidecar in front of `inbound` (`LISTEN=APP`) on the HTTP/1.1 path `http1`.
fn start_sidecar(inbound: &str, http1: &str) -> Sidecar {
    // The path is this test's to name: `SIDECAR_HTTP1`, which runs the rest of the suite
    // on one path, would name it a second time.
    static NAMED_HERE: Once = Once::new();
    NAMED_HERE.call_once(|| std::env::remove_var("SIDECAR_HTTP1"));
    Sidecar::start(&["--inbound", inbound, "--http1", http1])
}

/// Every documented difference is a case of the corpus.
fn in_corpus(differences: &[(&str, &str)], cases: &[(String, Vec<u8>)]) {
    for (name, _) in differences {
        assert!(
            cases.iter().any(|(case, _)| case == name),
            "no case {name} in the corpus"
        );
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// --- what a case did ----------------------------------------------------------------------

/// One request case through one path.
#[derive(Debug, PartialEq, Eq)]
struct Passed {
    /// The requests the upstream received, as [`describe`] prints them; or why it could
    /// not read one.
    received: Vec<String>,
    /// What the client got back, in order.
    answers: Vec<Got>,
}

impl Passed {
    /// The own path refused (its last answer an error), having passed on no request that
    /// hyper's did not pass on first.
    fn refused_within(&self, hyper: &Passed) -> bool {
        let refused = matches!(self.answers.last(), Some(Got::Status(400..=599)));
        refused && hyper.received.starts_with(&self.received)
    }
}

/// An answer the client read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Status(u16),
    /// The connection ended inside the answer's body.
    CutShort,
    /// Bytes that are not an answer.
    Garbage(String),
    /// No end within [`PATIENCE`].
    Hung,
}

/// Sends `bytes` to `sidecar` on a new connection, then (`half_close`) ends the sending;
/// reads until the sidecar closes: what it got, and whether it ended in time.
fn send(sidecar: SocketAddr, bytes: &[u8], half_close: bool) -> (Vec<u8>, bool) {
    let mut stream = TcpStream::connect(sidecar).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    // A sidecar that refuses early may close before it has all of it: its answer is read
    // all the same.
    if stream.write_all(bytes).is_ok() && half_close {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => (answer, true),
        // Closed with bytes of ours unread (a refusal, the end after `Connection: close`):
        // a reset, after what it sent.
        Err(error) if error.kind() == ErrorKind::ConnectionReset => (answer, true),
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            (answer, false)
        }
        Err(error) => panic!("reading from the sidecar: {error}"),
    }
}

/// The answers in what a client read (none of its requests was a `HEAD`).
fn statuses((bytes, ended): &(Vec<u8>, bool)) -> Vec<Got> {
    let mut bytes = &bytes[..];
    let mut got = Vec::new();
    let mut head = ResponseHead::default();
    while !bytes.is_empty() {
        if !matches!(head.parse(bytes), Ok(true)) {
            got.push(Got::Garbage(bytes.escape_ascii().to_string()));
            break;
        }
        got.push(Got::Status(head.status));
        let rest = &bytes[head.fields.len..];
        let body = match head.framing(bytes, false) {
            Ok(framing) => read_body(rest, framing, true),
            Err(error) => Body::Malformed(error.to_string()),
        };
        match body {
            Body::Whole(_, used) => bytes = &rest[used..],
            Body::Short(_) => {
                got.push(Got::CutShort);
                break;
            }
            Body::Malformed(why) => {
                got.push(Got::Garbage(why));
                break;
            }
        }
    }
    if !ended {
        got.push(Got::Hung);
    }
    got
}

/// A body at the start of some bytes.
enum Body {
    /// Its data, and the bytes it took with its framing.
    Whole(Vec<u8>, usize),
    /// Not all there: the data so far.
    Short(Vec<u8>),
    /// Not well framed.
    Malformed(String),
}

/// The body framed as `framing` at the start of `bytes`; `ended`: no more bytes will come
/// (the end of a body that runs until the close).
fn read_body(bytes: &[u8], framing: Framing, ended: bool) -> Body {
    match framing {
        Framing::Empty => Body::Whole(Vec::new(), 0),
        Framing::Length(length) => match usize::try_from(length) {
            Ok(length) if length <= bytes.len() => Body::Whole(bytes[..length].to_vec(), length),
            _ => Body::Short(bytes.to_vec()),
        },
        Framing::UntilClose if ended => Body::Whole(bytes.to_vec(), bytes.len()),
        Framing::UntilClose => Body::Short(bytes.to_vec()),
        Framing::Chunked => {
            let mut decoder = ChunkedDecoder::default();
            let (mut data, mut at) = (Vec::new(), 0);
            while !decoder.is_done() {
                let step = match decoder.step(&bytes[at..]) {
                    Ok(step) => step,
                    Err(error) => return Body::Malformed(error.to_string()),
                };
                if step.consumed == 0 {
                    return Body::Short(data);
                }
                data.extend_from_slice(&bytes[at..][step.data]);
                at += step.consumed;
            }
            Body::Whole(data, at)
        }
    }
}

// --- the upstream of the request cases ----------------------------------------------------

/// An upstream that reads HTTP/1.1 requests strictly and answers each with its target, and
/// keeps what it read. Its sockets are read only with the lock on its state held, and never
/// waiting: the runtime's tasks wait for them to be ready, then read; a reader of the
/// state reads first whatever has arrived, and so sees all that was sent before.
struct Recorder {
    address: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Told when a connection is accepted.
    accepted: Condvar,
}

#[derive(Default)]
struct State {
    connections: Vec<Connection>,
    /// The requests received, as [`describe`] prints them, or why one was malformed.
    received: Vec<String>,
}

struct Connection {
    /// Where the connection comes from.
    peer: SocketAddr,
    /// The socket, read and written without waiting (its task waits on a handle of its
    /// own to the same socket); `None` once closed.
    stream: Option<TcpStream>,
    /// Bytes read and not yet a whole request.
    buf: Vec<u8>,
}

impl Recorder {
    fn start(runtime: &tokio::runtime::Runtime) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            accepted: Condvar::new(),
        });
        let accepting = shared.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, peer) = listener.accept().await.unwrap();
                accepting.open(stream, peer);
            }
        });
        Recorder { address, shared }
    }

    /// What was received since the last call, once all that has arrived is read.
    fn received(&self) -> Vec<String> {
        // Connections are accepted in the order they came: once one made now is, so is
        // every one before it.
        let probe = TcpStream::connect(self.address).unwrap();
        let probe_address = probe.local_addr().unwrap();
        let state = lock(&self.shared.state);
        let (mut state, waited) = self
            .shared
            .accepted
            .wait_timeout_while(state, PATIENCE, |state| {
                let probe = |c: &Connection| c.stream.is_some() && c.peer == probe_address;
                !state.connections.iter().any(probe)
            })
            .unwrap();
        assert!(!waited.timed_out(), "the upstream does not accept");
        for index in 0..state.connections.len() {
            state.read(index);
        }
        std::mem::take(&mut state.received)
    }
}

impl Shared {
    /// Keeps an accepted connection, and starts its task.
    fn open(self: &Arc<Self>, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let stream = stream.into_std().unwrap();
        let own_handle = stream.try_clone().unwrap();
        let stream = tokio::net::TcpStream::from_std(stream).unwrap();
        let mut state = lock(&self.state);
        let index = state.connections.len();
        state.connections.push(Connection {
            peer,
            stream: Some(own_handle),
            buf: Vec::new(),
        });
        drop(state);
        self.accepted.notify_all();
        let shared = self.clone();
        tokio::spawn(async move {
            loop {
                if stream.readable().await.is_err() {
                    return;
                }
                let mut open = true;
                // Read until it would block, within `try_io`: readiness is cleared then
                // unless more came meanwhile, which wakes the task again.
                let _ = stream.try_io(Interest::READABLE, || {
                    open = lock(&shared.state).read(index);
                    Err::<(), _>(ErrorKind::WouldBlock.into())
                });
                if !open {
                    return;
                }
            }
        });
    }
}

impl State {
    /// Reads what connection `index` has, without waiting, and answers the requests it
    /// completes: whether the connection is still open.
    fn read(&mut self, index: usize) -> bool {
        let connection = &mut self.connections[index];
        let Some(mut stream) = connection.stream.as_ref() else {
            return false;
        };
        let mut chunk = [0; 16 * 1024];
        let mut open = true;
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => open = false,
                Ok(n) => {
                    connection.buf.extend_from_slice(&chunk[..n]);
                    continue;
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                // Reset: what it sent before stays read.
                Err(_) => open = false,
            }
            break;
        }
        // The whole requests in it; a message cut short by the close is none.
        loop {
            match take_request(&connection.buf) {
                Taken::Request(request, used) => {
                    let target = request_target(&connection.buf);
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{target}",
                        target.len()
                    );
                    connection.buf.drain(..used);
                    self.received.push(request);
                    if open {
                        // Small, to a sidecar reading: the socket's buffer takes it whole.
                        if let Err(error) = stream.write_all(answer.as_bytes()) {
                            assert_ne!(error.kind(), ErrorKind::WouldBlock, "an answer waits");
                            open = false;
                        }
                    }
                }
                Taken::Partial => break,
                Taken::Malformed(why) => {
                    self.received.push(format!("malformed: {why}"));
                    open = false;
                    break;
                }
            }
        }
        if !open {
            let _ = stream.shutdown(Shutdown::Both);
            connection.stream = None;
            connection.buf.clear();
        }
        open
    }
}

enum Taken {
    /// A whole request, as [`describe`] prints it, and the bytes it took.
    Request(String, usize),
    /// Not all there yet.
    Partial,
    Malformed(String),
}

/// The request at the start of `buf`, read as strictly as the own path reads one.
fn take_request(buf: &[u8]) -> Taken {
    if buf.is_empty() {
        return Taken::Partial;
    }
    let mut head = RequestHead::default();
    match head.parse(buf) {
        Ok(true) => {}
        Ok(false) => return Taken::Partial,
        Err(error) => return Taken::Malformed(error.to_string()),
    }
    let framing = match head.framing(buf) {
        Ok(framing) => framing,
        Err(error) => return Taken::Malformed(error.to_string()),
    };
    let (body, used) = match read_body(&buf[head.fields.len..], framing, false) {
        Body::Whole(body, used) => (body, used),
        Body::Short(_) => return Taken::Partial,
        Body::Malformed(why) => return Taken::Malformed(why),
    };
    Taken::Request(describe(&head, buf, &body), head.fields.len + used)
}

/// The target of the request at the start of `buf` (whole).
fn request_target(buf: &[u8]) -> String {
    let mut head = RequestHead::default();
    assert!(matches!(head.parse(buf), Ok(true)));
    buf[head.target.clone()].escape_ascii().to_string()
}

/// A request as compared: its first line, its fields but those each hop writes anew
/// (names in lower case, in order, values as they came), its body.
fn describe(head: &RequestHead, buf: &[u8], body: &[u8]) -> String {
    let mut fields: Vec<(String, String)> = head
        .fields
        .fields
        .iter()
        .map(|field| {
            (
                String::from_utf8_lossy(&buf[field.name.clone()]).to_ascii_lowercase(),
                buf[field.value.clone()].escape_ascii().to_string(),
            )
        })
        .filter(|(name, _)| !REWRITTEN.contains(&name.as_str()) && !name.starts_with("x-b3-"))
        .collect();
    // Fields of different names may come in another order (hyper keeps them by name);
    // those of one name keep theirs.
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let fields: Vec<String> = fields
        .into_iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    format!(
        "{} {} HTTP/1.{} [{}] {:?}",
        buf[head.method.clone()].escape_ascii(),
        buf[head.target.clone()].escape_ascii(),
        head.fields.minor_version,
        fields.join(", "),
        body.escape_ascii().to_string(),
    )
}

// --- the response cases -------------------------------------------------------------------

/// An upstream that answers any request with `answer`, then closes.
struct Responder {
    address: SocketAddr,
    answer: Arc<Mutex<Vec<u8>>>,
}

impl Responder {
    fn start() -> Responder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(Vec::new()));
        let answers = answer.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let answer = lock(&answers).clone();
                std::thread::spawn(move || respond(stream, &answer));
            }
        });
        Responder { address, answer }
    }
}

fn respond(mut stream: TcpStream, answer: &[u8]) {
    let mut request = Vec::new();
    let mut buf = [0; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let _ = stream.write_all(answer);
    let _ = stream.shutdown(Shutdown::Write);
    // Until the sidecar is done with it: an early close could reset what it still reads.
    let _ = stream.read_to_end(&mut request);
}

/// What a client got back for its request.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// The final status, the body's data, and whether it came whole. The body of the
    /// sidecar's own answers (5xx: none of the corpus is one) is its own words on each path,
    /// and left out.
    Response {
        status: u16,
        body: String,
        whole: bool,
    },
    /// The connection ended with no answer.
    Nothing,
    /// Bytes that are not an answer.
    Garbage(String),
    /// No end within [`PATIENCE`].
    Hung,
}

impl Answer {
    /// The sidecar's own answer to an upstream's it did not pass on.
    fn is_refusal(&self) -> bool {
        matches!(self, Answer::Response { status: 502, .. })
    }
}

/// `GET /` (or `HEAD /`) through `sidecar`, read until its answer is whole or the
/// connection ends.
fn fetch(sidecar: SocketAddr, head_request: bool) -> Answer {
    let mut stream = TcpStream::connect(sidecar).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let method = if head_request { "HEAD" } else { "GET" };
    let request = format!("{method} / HTTP/1.1\r\nHost: a\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let ended = match stream.read(&mut buf) {
            Ok(0) => true,
            Ok(n) => {
                bytes.extend_from_slice(&buf[..n]);
                false
            }
            Err(error) if error.kind() == ErrorKind::ConnectionReset => true,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Answer::Hung
            }
            Err(error) => panic!("reading from the sidecar: {error}"),
        };
        if let Some(answer) = answer(&bytes, head_request, ended) {
            return answer;
        }
    }
}

/// The answer in `bytes` (1xx skipped), if it is whole or `ended` says no more will come.
fn answer(mut bytes: &[u8], head_request: bool, ended: bool) -> Option<Answer> {
    let mut head = ResponseHead::default();
    loop {
        match head.parse(bytes) {
            Ok(true) => {}
            Ok(false) if !ended => return None,
            Ok(false) if bytes.is_empty() => return Some(Answer::Nothing),
            Ok(false) | Err(_) => return Some(Answer::Garbage(bytes.escape_ascii().to_string())),
        }
        if head.status >= 200 {
            break;
        }
        bytes = &bytes[head.fields.len..];
    }
    let status = head.status;
    let (body, whole) = match head.framing(bytes, head_request) {
        Ok(framing) => match read_body(&bytes[head.fields.len..], framing, ended) {
            Body::Whole(body, _) => (body, true),
            Body::Short(_) if !ended => return None,
            Body::Short(body) => (body, false),
            Body::Malformed(why) => return Some(Answer::Garbage(why)),
        },
        Err(error) => return Some(Answer::Garbage(error.to_string())),
    };
    let body = if status >= 500 {
        String::new()
    } else {
        body.escape_ascii().to_string()
    };
    Some(Answer::Response {
        status,
        body,
        whole,
    })
}
