//! A reverse proxy that only forwards, serving HTTP/2 with a connection's streams kept in the
//! connection's own task: the `h2conn` target of `benches/proxy.sh`. It reads and writes
//! frames with `h2`'s frame codec (its `unstable` API: HPACK, frame limits, CONTINUATION) and
//! does the rest itself: settings, pings, flow-control windows, stream ids and states. Each
//! request's exchange with the upstream is a future polled by the connection's task (no task
//! per stream, no lock between a stream and its connection), its answer written as frames in
//! place, as HAProxy's `mux_h2` does. Its HTTP/1.1 client side is `forward`'s, so beside
//! `h2forward` (`h2`'s server, a task per stream) it measures what that design saves.
//!
//! A measurement of the connection layer, not a server: bodiless requests only (a request
//! with a body is answered 501 and its stream reset), HTTP/2 with prior knowledge only, no
//! priority, no timeouts, no flood limits beyond `h2`'s codec. A benchmark target only.
//!
//! Usage: `h2_conn LISTEN UPSTREAM`; the first stdout line is `listening on ADDR`.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::io::Write;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use functrace_benches::forward_client::{self, strip_connection_fields, BoxError};
use functrace_sidecar::h1::io::Buffered;
use functrace_sidecar::h1::write::{end_head, field};
use functrace_sidecar::h1::{FieldKind, Framing, ResponseHead};
use futures::stream::{FuturesUnordered, Stream};
use h2::frame::{
    self, Frame, GoAway, Headers, Ping, Pseudo, Reason, Reset, Settings, StreamId, WindowUpdate,
};
use h2::Codec;
use http::{
    header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version,
};
use http_body_util::Empty;
use hyper::body::{Body, Incoming};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Pool = forward_client::Pool<Empty<Bytes>>;
type Exchange = Pin<Box<dyn Future<Output = (StreamId, Result<Answer, BoxError>)>>>;
/// Idle upstream connections of the sidecar's codec (this task's thread only).
type OwnPool = Rc<RefCell<Vec<Buffered<TcpStream>>>>;

/// Which HTTP/1.1 client forwards the requests.
#[derive(Clone)]
enum Client {
    /// `forward`'s: hyper's client connections (the `h2conn` target).
    Hyper(Pool),
    /// The sidecar's codec, as `h1forward` uses it (the `h2connown` target). Answers must
    /// come with a length (no chunked or close-delimited body) and are read whole.
    Own(OwnPool),
}

/// An upstream's answer.
enum Answer {
    Hyper(Response<Incoming>),
    Own(StatusCode, HeaderMap, Bytes),
}

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const MAX_CONCURRENT_STREAMS: u32 = 200;

/// An open stream whose answer has not been sent whole.
struct Open {
    /// What the peer lets this stream send (it may go below zero after a SETTINGS change).
    window: i64,
    /// The answer's body, once its head has gone out.
    body: Option<Incoming>,
    /// Body data waiting for window.
    waiting: VecDeque<Bytes>,
    /// The body has ended: the last waiting data carries END_STREAM.
    ended: bool,
}

/// How a connection's turn ends, when it does not wait.
enum Turn {
    /// Frames are ready to write: yield first, then write them.
    Yield,
    /// The connection is over.
    Done,
}

struct Connection {
    codec: Codec<TcpStream, Bytes>,
    client: Client,
    upstream: Arc<str>,
    streams: HashMap<StreamId, Open>,
    exchanges: FuturesUnordered<Exchange>,
    outgoing: VecDeque<Frame<Bytes>>,
    /// What the peer lets the whole connection send.
    window: i64,
    /// The peer's initial window for new streams.
    initial_window: i64,
    last_stream: StreamId,
    /// Received DATA not yet given back to the connection window.
    unacknowledged: u32,
    /// The peer went away, or the connection failed: finish what is open, then close.
    closing: bool,
    /// Frames are waiting for this turn's write, deferred once behind the woken tasks.
    deferred: bool,
}

impl Connection {
    /// One turn: read what has come, start exchanges, write what is ready. `Ready` when the
    /// connection is done.
    fn poll_turn(&mut self, cx: &mut Context<'_>) -> Poll<Turn> {
        loop {
            let mut progressed = false;
            while !self.closing {
                match Pin::new(&mut self.codec).poll_next(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        progressed = true;
                        self.receive(frame);
                    }
                    Poll::Ready(Some(Err(h2::proto::Error::Reset(id, reason, _)))) => {
                        // A stream's error (a malformed head): that stream only.
                        progressed = true;
                        self.last_stream = self.last_stream.max(id);
                        self.streams.remove(&id);
                        self.outgoing.push_back(Reset::new(id, reason).into());
                    }
                    Poll::Ready(Some(Err(h2::proto::Error::GoAway(_, reason, _)))) => {
                        self.fail(reason)
                    }
                    Poll::Ready(Some(Err(h2::proto::Error::Io(..)))) => {
                        self.closing = true;
                        self.streams.clear();
                    }
                    Poll::Ready(None) => self.closing = true,
                    Poll::Pending => break,
                }
            }
            while let Poll::Ready(Some((id, answer))) = Pin::new(&mut self.exchanges).poll_next(cx)
            {
                progressed = true;
                self.answer(id, answer);
            }
            progressed |= self.pump_bodies(cx);
            if self.unacknowledged >= 16_384 {
                let increment = std::mem::take(&mut self.unacknowledged);
                self.outgoing
                    .push_back(WindowUpdate::new(StreamId::ZERO, increment).into());
            }
            if !self.outgoing.is_empty() && !self.deferred {
                // Let the tasks that the I/O driver wakes (the upstream connections with
                // answers) run first, so that their answers share this turn's write.
                self.deferred = true;
                return Poll::Ready(Turn::Yield);
            }
            self.deferred = false;
            match self.write(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(Turn::Done),
                Poll::Pending => return Poll::Pending,
            }
            if self.closing && self.streams.is_empty() && self.exchanges.is_empty() {
                return Poll::Ready(Turn::Done);
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    }

    fn receive(&mut self, frame: Frame) {
        match frame {
            Frame::Headers(headers) => self.request(headers),
            Frame::Data(data) => {
                // Bodies are not forwarded (see the module's doc): the connection's window is
                // given back; the stream was answered 501 and reset when its head came.
                self.unacknowledged += data.payload().len() as u32;
            }
            Frame::Settings(settings) if !settings.is_ack() => {
                self.apply(&settings);
                self.outgoing.push_back(Settings::ack().into());
            }
            Frame::Ping(ping) if !ping.is_ack() => {
                self.outgoing
                    .push_back(Ping::pong(ping.into_payload()).into());
            }
            Frame::WindowUpdate(update) => {
                let increment = i64::from(update.size_increment());
                if update.stream_id().is_zero() {
                    self.window += increment;
                } else if let Some(open) = self.streams.get_mut(&update.stream_id()) {
                    open.window += increment;
                }
            }
            Frame::Reset(reset) => {
                self.streams.remove(&reset.stream_id());
            }
            Frame::GoAway(_) => self.closing = true,
            _ => {}
        }
    }

    fn apply(&mut self, settings: &Settings) {
        if let Some(size) = settings.initial_window_size() {
            let delta = i64::from(size) - self.initial_window;
            self.initial_window = i64::from(size);
            for open in self.streams.values_mut() {
                open.window += delta;
            }
        }
        if let Some(size) = settings.max_frame_size() {
            self.codec.set_max_send_frame_size(size as usize);
        }
        if let Some(size) = settings.header_table_size() {
            self.codec.set_send_header_table_size(size as usize);
        }
    }

    /// A request's head: a new stream, its exchange started.
    fn request(&mut self, headers: Headers) {
        let id = headers.stream_id();
        if id <= self.last_stream {
            // Trailers, or a reused id: neither comes on a bodiless request.
            self.fail(Reason::PROTOCOL_ERROR);
            return;
        }
        self.last_stream = id;
        if self.streams.len() >= MAX_CONCURRENT_STREAMS as usize {
            self.outgoing
                .push_back(Reset::new(id, Reason::REFUSED_STREAM).into());
            return;
        }
        let bodiless = headers.is_end_stream();
        let (pseudo, fields) = headers.into_parts();
        let request = match (bodiless, request_of(pseudo, fields)) {
            (true, Some(request)) => request,
            (bodiless, _) => {
                let status = if bodiless {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::NOT_IMPLEMENTED
                };
                let mut refusal = Headers::new(id, Pseudo::response(status), HeaderMap::new());
                refusal.set_end_stream();
                self.outgoing.push_back(refusal.into());
                if !bodiless {
                    self.outgoing
                        .push_back(Reset::new(id, Reason::NO_ERROR).into());
                }
                return;
            }
        };
        self.streams.insert(
            id,
            Open {
                window: self.initial_window,
                body: None,
                waiting: VecDeque::new(),
                ended: false,
            },
        );
        let upstream = self.upstream.clone();
        match self.client.clone() {
            Client::Hyper(pool) => self.exchanges.push(Box::pin(async move {
                let answer = forward_client::send(&pool, &upstream, request).await;
                (id, answer.map(Answer::Hyper))
            })),
            Client::Own(pool) => self.exchanges.push(Box::pin(async move {
                (id, own_exchange(&pool, &upstream, &request).await)
            })),
        }
    }

    /// An exchange finished: its answer's head goes out, its body follows as windows allow.
    fn answer(&mut self, id: StreamId, answer: Result<Answer, BoxError>) {
        let Some(open) = self.streams.get_mut(&id) else {
            return; // reset by the peer meanwhile
        };
        let (status, mut fields, body) = match answer {
            Ok(Answer::Hyper(response)) => {
                let (parts, body) = response.into_parts();
                (parts.status, parts.headers, Some(body))
            }
            Ok(Answer::Own(status, fields, body)) => {
                let mut head = Headers::new(id, Pseudo::response(status), fields);
                if body.is_empty() {
                    head.set_end_stream();
                    self.streams.remove(&id);
                } else {
                    open.waiting.push_back(body);
                    open.ended = true;
                }
                self.outgoing.push_back(head.into());
                return;
            }
            Err(_) => (StatusCode::BAD_GATEWAY, HeaderMap::new(), None),
        };
        strip_connection_fields(&mut fields);
        let mut head = Headers::new(id, Pseudo::response(status), fields);
        match body {
            Some(body) if !body.is_end_stream() => open.body = Some(body),
            _ => {
                head.set_end_stream();
                self.streams.remove(&id);
            }
        }
        self.outgoing.push_back(head.into());
    }

    /// Moves answer bodies into DATA frames as far as the windows allow; true if any did.
    fn pump_bodies(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progressed = false;
        let mut done = Vec::new();
        let max_frame = self.codec.max_send_frame_size();
        for (&id, open) in self.streams.iter_mut() {
            while let Some(body) = open.body.as_mut() {
                if !open.waiting.is_empty() {
                    break;
                }
                match Pin::new(&mut *body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Ok(data) = frame.into_data() {
                            open.waiting.push_back(data);
                        }
                        if body.is_end_stream() {
                            // Known ended (its length reached): END_STREAM on this data.
                            open.body = None;
                            open.ended = true;
                        }
                    }
                    Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                        open.body = None;
                        open.ended = true;
                    }
                    Poll::Pending => break,
                }
            }
            while !open.waiting.is_empty() {
                let only = open.waiting.len() == 1;
                let data = open.waiting.front_mut().expect("not empty");
                let room = open.window.min(self.window).min(max_frame as i64);
                if room <= 0 && !data.is_empty() {
                    break;
                }
                let chunk = data.split_to(data.len().min(room.max(0) as usize));
                let last = data.is_empty() && only && open.ended;
                if data.is_empty() {
                    open.waiting.pop_front();
                }
                open.window -= chunk.len() as i64;
                self.window -= chunk.len() as i64;
                let mut frame = frame::Data::new(id, chunk);
                frame.set_end_stream(last);
                self.outgoing.push_back(frame.into());
                progressed = true;
                if last {
                    done.push(id);
                }
            }
            if open.ended && open.waiting.is_empty() && open.body.is_none() && !done.contains(&id) {
                let mut end = frame::Data::new(id, Bytes::new());
                end.set_end_stream(true);
                self.outgoing.push_back(end.into());
                done.push(id);
                progressed = true;
            }
        }
        for id in done {
            self.streams.remove(&id);
        }
        progressed
    }

    /// A connection error: say so, then close.
    fn fail(&mut self, reason: Reason) {
        self.outgoing
            .push_back(GoAway::new(self.last_stream, reason).into());
        self.closing = true;
        self.streams.clear();
    }

    fn write(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while let Some(frame) = self.outgoing.pop_front() {
            if let Poll::Ready(result) = self.codec.poll_ready(cx) {
                result?;
            } else {
                self.outgoing.push_front(frame);
                return Poll::Pending;
            }
            self.codec
                .buffer(frame)
                .map_err(|_| std::io::Error::other("frame refused by the codec"))?;
        }
        self.codec.flush(cx)
    }
}

/// The request HTTP/1.1's client wants, from an HTTP/2 head; None if it is not one.
fn request_of(pseudo: Pseudo, fields: HeaderMap) -> Option<Request<Empty<Bytes>>> {
    let mut uri = Uri::builder();
    if let Some(scheme) = pseudo.scheme {
        uri = uri.scheme(&scheme[..]);
    }
    if let Some(authority) = pseudo.authority {
        uri = uri.authority(&authority[..]);
    }
    let uri = uri.path_and_query(&pseudo.path?[..]).build().ok()?;
    let mut request = Request::new(Empty::new());
    *request.method_mut() = pseudo.method?;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_2;
    *request.headers_mut() = fields;
    Some(request)
}

/// One exchange on the sidecar's codec: the request's head written as HTTP/1.1, the answer
/// read whole.
async fn own_exchange(
    pool: &OwnPool,
    upstream: &str,
    request: &Request<Empty<Bytes>>,
) -> Result<Answer, BoxError> {
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(request.method().as_str().as_bytes());
    head.push(b' ');
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |target| target.as_str());
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(authority) = request.uri().authority() {
        if !request.headers().contains_key(header::HOST) {
            field(&mut head, b"host", authority.as_str().as_bytes());
        }
    }
    for (name, value) in request.headers() {
        field(&mut head, name.as_str().as_bytes(), value.as_bytes());
    }
    end_head(&mut head, None, false);
    let idle = pool.borrow_mut().pop();
    let mut peer = match idle {
        Some(peer) => peer,
        None => {
            let stream = TcpStream::connect(upstream).await?;
            stream.set_nodelay(true)?;
            Buffered::new(stream, 64 * 1024)
        }
    };
    peer.stream.write_all(&head).await?;
    let mut answer = ResponseHead::default();
    while !answer.parse(peer.data())? {
        if peer.fill().await? == 0 {
            return Err("the upstream closed".into());
        }
    }
    let length = match answer.framing(peer.data(), request.method() == Method::HEAD)? {
        Framing::Empty => 0,
        Framing::Length(length) => length as usize,
        Framing::Chunked | Framing::UntilClose => return Err("not measured here".into()),
    };
    let status = StatusCode::from_u16(answer.status)?;
    let mut fields = HeaderMap::with_capacity(answer.fields.fields.len());
    let buf = peer.data();
    for field in &answer.fields.fields {
        if answer.fields.stays(buf, field) && field.kind != FieldKind::ContentLength {
            continue;
        }
        fields.append(
            HeaderName::from_bytes(&buf[field.name.clone()])?,
            HeaderValue::from_bytes(&buf[field.value.clone()])?,
        );
    }
    let reusable = !answer.fields.close;
    peer.consume(answer.fields.len);
    while peer.data().len() < length {
        if peer.fill().await? == 0 {
            return Err("the upstream closed".into());
        }
    }
    let body = Bytes::copy_from_slice(&peer.data()[..length]);
    peer.consume(length);
    if reusable {
        pool.borrow_mut().push(peer);
    }
    Ok(Answer::Own(status, fields, body))
}

async fn serve_connection(mut stream: TcpStream, client: Client, upstream: Arc<str>) {
    let mut preface = [0; 24];
    if stream.read_exact(&mut preface).await.is_err() || &preface != PREFACE {
        return;
    }
    let mut settings = Settings::default();
    settings.set_max_concurrent_streams(Some(MAX_CONCURRENT_STREAMS));
    let mut connection = Connection {
        codec: Codec::new(stream),
        client,
        upstream,
        streams: HashMap::new(),
        exchanges: FuturesUnordered::new(),
        outgoing: VecDeque::from([settings.into()]),
        window: i64::from(frame::DEFAULT_INITIAL_WINDOW_SIZE),
        initial_window: i64::from(frame::DEFAULT_INITIAL_WINDOW_SIZE),
        last_stream: StreamId::ZERO,
        unacknowledged: 0,
        closing: false,
        deferred: false,
    };
    while let Turn::Yield = poll_fn(|cx| connection.poll_turn(cx)).await {
        tokio::task::yield_now().await;
    }
}

async fn serve(listen: &str, upstream: Arc<str>, client: Client) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::task::spawn_local(serve_connection(
                    stream,
                    client.clone(),
                    upstream.clone(),
                ));
            }
        })
        .await
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: h2_conn LISTEN UPSTREAM [hyper|own]");
        std::process::exit(2);
    };
    let client = match args.next().as_deref() {
        None | Some("hyper") => Client::Hyper(Pool::default()),
        Some("own") => Client::Own(OwnPool::default()),
        Some(other) => {
            eprintln!("unknown client {other:?} (hyper, own)");
            std::process::exit(2);
        }
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?
        .block_on(serve(&listen, upstream.into(), client))
}
