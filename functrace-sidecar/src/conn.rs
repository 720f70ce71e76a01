//! A client connection's phases and their deadlines (`[limits]` in docs/sidecar.md):
//!
//! - fresh: accepted, with nothing read yet, or part of the HTTP/2 preface:
//!   `handshake_timeout_ms`, then closed;
//! - head (HTTP/1.1): a request's first bytes read, its head not yet whole:
//!   `header_read_timeout_ms`, then answered 408 and closed;
//! - busy: requests in flight (a request's body still coming counts, though its answer
//!   may be done). No deadline here: a request body's progress is `body.rs`'s,
//!   the upstream's answer head the route's timeout, its body's quiet time `body_timeout_ms`
//!   (`h1::io::forward_body`, or `record.rs` on hyper's path);
//! - idle: no request in flight: `keep_alive_timeout_ms` (HTTP/1.1) or
//!   `http2_idle_timeout_ms`, then closed (HTTP/2: with a GOAWAY, written by `flood.rs`,
//!   which sees the deadline's error). Idle (and fresh, and head) connections are also the
//!   ones closed first at the connection limit (`limit.rs`).
//!
//! And in any phase, a write the client does not take: `send_timeout_ms` from the moment a
//! write has to wait, then closed (the span: the client stopped reading).
//!
//! A connection the sidecar closes before the client has is closed in stages (RFC 9112
//! §9.6, as nginx's lingering close): its write side first, then whatever the client still
//! sends is read and dropped, until the client closes too or for `LINGER` at most. Closed
//! at once with bytes unread, the socket would be reset, and a reset throws away what the
//! kernel has not sent yet: the end of the last answer.
//!
//! Why not hyper's own `header_read_timeout`: hyper starts it when it begins to wait for a
//! head, which on a kept-alive connection is the end of the previous response, so it would
//! be the keep-alive timeout as well; it closes without a 408; and hyper-util's auto builder
//! reads the first bytes (to choose HTTP/1.1 or HTTP/2) before hyper's timer exists. So the
//! phases are tracked here, in the connection's I/O, below hyper.
//!
//! One timer per connection, checked lazily: a phase change notes the time (requests in
//! flight are only counted, by the service's `Busy`: a busy connection has no deadline
//! here); the timer is moved only when a phase needs an earlier deadline than the one it is
//! set to, and when it fires it looks where the connection stands. It is never set further
//! ahead than the shortest idle deadline, so a connection that goes idle finds it due in
//! time. So a request costs no timer operation.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::config::Limits;
use crate::h1::io::Buffered;
use crate::stall::Stall;

/// How long a connection the sidecar closes keeps reading what the client still sends. Long
/// enough for the client to have the last answer; a lingering connection is idle, so the
/// first closed at the connection limit.
const LINGER: Duration = Duration::from_secs(2);

const FRESH: u8 = 0;
const HEAD: u8 = 1;
const IDLE: u8 = 2;

/// What an HTTP/2 connection with prior knowledge opens with.
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What an HTTP/1.1 client whose head did not come in time is told before the close.
const REQUEST_TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\n\
    content-type: text/plain; charset=utf-8\r\n\
    x-functrace-reason: request headers not received in time\r\n\
    connection: close\r\ncontent-length: 37\r\n\r\n\
    request headers not received in time\n";

/// The deadlines of a connection's phases.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    handshake: Duration,
    header: Duration,
    keep_alive: Duration,
    http2_idle: Duration,
    send: Duration,
}

impl Deadlines {
    pub fn new(limits: &Limits) -> Deadlines {
        let ms = Duration::from_millis;
        Deadlines {
            handshake: ms(limits.handshake_timeout_ms),
            header: ms(limits.header_read_timeout_ms),
            keep_alive: ms(limits.keep_alive_timeout_ms),
            http2_idle: ms(limits.http2_idle_timeout_ms),
            send: ms(limits.send_timeout_ms),
        }
    }

    /// How often a busy connection's timer looks again: no later than an idle deadline
    /// could begin to run.
    fn recheck(&self) -> Duration {
        self.keep_alive.min(self.http2_idle)
    }
}

/// Where one connection stands: shared by its I/O, its requests and the connection limit.
pub struct Conn {
    born: Instant,
    phase: AtomicU8,
    /// When the phase (or the last request) began, in nanoseconds since `born`.
    since: AtomicU64,
    in_flight: AtomicU32,
    /// The client stopped taking the bytes written to it, and was cut off.
    stalled: AtomicBool,
}

impl Conn {
    pub fn new() -> Arc<Conn> {
        Arc::new(Conn {
            born: Instant::now(),
            phase: AtomicU8::new(FRESH),
            since: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            stalled: AtomicBool::new(false),
        })
    }

    /// A request came in; the connection is busy until the guard drops.
    pub fn request(self: &Arc<Conn>) -> Busy {
        // No time noted: a busy connection has no deadline of its own to measure.
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// No request in flight: it may be closed for a new connection at the limit.
    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
    }

    fn enter(&self, phase: u8, now: Instant) {
        self.note(now);
        // Release: whoever reads the phase sees the time it began.
        self.phase.store(phase, Ordering::Release);
    }

    fn note(&self, now: Instant) {
        let nanos = now.saturating_duration_since(self.born).as_nanos();
        self.since
            .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn phase(&self) -> u8 {
        self.phase.load(Ordering::Acquire)
    }

    fn since(&self) -> Instant {
        self.born + Duration::from_nanos(self.since.load(Ordering::Relaxed))
    }
}

/// A request in flight on its connection; the last one to end makes it idle.
pub struct Busy(Arc<Conn>);

impl Busy {
    /// Another guard of the same connection: busy until both are dropped.
    pub fn another(&self) -> Busy {
        self.0.request()
    }

    /// Whether the connection was cut off because the client stopped reading.
    pub fn client_stopped_reading(&self) -> bool {
        self.0.stalled.load(Ordering::Relaxed)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.enter(IDLE, Instant::now());
        }
    }
}

/// A client connection's socket, which keeps its phases' deadlines.
pub struct Watched {
    stream: TcpStream,
    conn: Arc<Conn>,
    deadlines: Deadlines,
    timer: Pin<Box<Sleep>>,
    /// Bytes of the HTTP/2 preface read while fresh.
    preface: usize,
    http2: bool,
    /// Runs while a write waits for the client to take bytes.
    send_stall: Stall,
    /// While a request body is read (by the sidecar's own HTTP/1.1 path): how long the
    /// client may keep its next bytes waiting.
    body_timeout: Option<Duration>,
    /// Runs while a read of a request body waits for the client.
    body_stall: Stall,
    /// The client closed its side: nothing more will come.
    read_ended: bool,
    /// The write side is shut: what comes is dropped until the client closes, or `LINGER`.
    lingering: bool,
}

impl Watched {
    pub fn new(stream: TcpStream, conn: Arc<Conn>, deadlines: Deadlines) -> Watched {
        let timer = Box::pin(tokio::time::sleep(
            deadlines.handshake.min(deadlines.recheck()),
        ));
        Watched {
            stream,
            conn,
            deadlines,
            timer,
            preface: 0,
            http2: false,
            send_stall: Stall::default(),
            body_timeout: None,
            body_stall: Stall::default(),
            read_ended: false,
            lingering: false,
        }
    }

    /// A request body is read from now on (`Some`: the longest the client may keep its
    /// next bytes waiting), or no longer (`None`). A read that waits longer fails with
    /// `TimedOut`.
    pub fn reading_body(&mut self, timeout: Option<Duration>) {
        self.body_timeout = timeout;
        self.body_stall.moved();
    }

    /// Whether a read of the request body is waiting for the client now.
    pub fn waiting_for_body(&self) -> bool {
        self.body_timeout.is_some() && self.body_stall.waiting()
    }

    /// Bytes came in: a fresh connection shows its protocol, an idle HTTP/1.1 one starts
    /// a request's head.
    fn arrived(&mut self, bytes: &[u8]) {
        if !self.conn.is_idle() {
            return;
        }
        match self.conn.phase() {
            FRESH => {
                let wanted = &H2_PREFACE[self.preface..];
                let n = bytes.len().min(wanted.len());
                if bytes[..n] != wanted[..n] {
                    self.head_begins();
                } else {
                    self.preface += n;
                    if self.preface == H2_PREFACE.len() {
                        self.http2 = true;
                        self.conn.enter(IDLE, Instant::now());
                    }
                }
            }
            IDLE if !self.http2 => self.head_begins(),
            _ => {}
        }
    }

    fn head_begins(&mut self) {
        let now = Instant::now();
        self.conn.enter(HEAD, now);
        self.move_timer_before(now + self.deadlines.header, now);
    }

    /// Sets the timer to `deadline` if that is sooner, and never later than `recheck` from
    /// `now`. That second bound is what lets phase changes made elsewhere go without a
    /// timer operation: a connection that goes idle (when its last request ends, which
    /// hyper need not follow with a read) finds the timer due no later than its idle
    /// deadline.
    fn move_timer_before(&mut self, deadline: Instant, now: Instant) {
        let deadline = deadline.min(now + self.deadlines.recheck());
        if self.timer.deadline() > deadline.into() {
            self.timer.as_mut().reset(deadline.into());
        }
    }

    /// The deadline of the phase the connection is in; none while busy.
    fn deadline(&self) -> Option<Instant> {
        if !self.conn.is_idle() {
            return None;
        }
        let limit = match self.conn.phase() {
            FRESH => self.deadlines.handshake,
            HEAD => self.deadlines.header,
            _ if self.http2 => self.deadlines.http2_idle,
            _ => self.deadlines.keep_alive,
        };
        Some(self.conn.since() + limit)
    }

    /// With nothing to read: keeps the timer at the phase's deadline, and ends the
    /// connection once it has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A phase that began since the timer was set may end sooner. (A busy connection's
        // timer is only moved when it fires.)
        if let Some(deadline) = self.deadline() {
            if self.timer.deadline() > deadline.into() {
                self.move_timer_before(deadline, Instant::now());
            }
        }
        while self.timer.as_mut().poll(cx).is_ready() {
            let deadline = self.deadline();
            let now = Instant::now();
            if deadline.is_some_and(|deadline| deadline <= now) {
                return Poll::Ready(self.expire());
            }
            let recheck = now + self.deadlines.recheck();
            let next = deadline.map_or(recheck, |deadline| deadline.min(recheck));
            self.timer.as_mut().reset(next.into());
        }
        Poll::Pending
    }

    /// The phase's deadline passed: an idle HTTP/1.1 connection reads as closed (hyper then
    /// closes it quietly), an idle HTTP/2 one as timed out (`flood.rs` then says GOAWAY); a
    /// request head in progress is answered 408; a handshake is cut.
    fn expire(&mut self) -> io::Result<()> {
        match self.conn.phase() {
            IDLE if self.http2 => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "HTTP/2 connection idle",
            )),
            IDLE => Ok(()),
            HEAD => {
                // Nothing else is being written: no request of this connection is in flight.
                let _ = self.stream.try_write(REQUEST_TIMEOUT);
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request headers not received in time",
                ))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no handshake in time",
            )),
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Pending => match this.body_timeout {
                Some(limit) => match this.body_stall.poll(cx, limit) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "request body not received in time",
                    ))),
                    Poll::Pending => Poll::Pending,
                },
                None => this.poll_deadline(cx),
            },
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[before..];
                if !read.is_empty() {
                    this.body_stall.moved();
                    this.arrived(read);
                } else if room {
                    this.read_ended = true;
                }
                Poll::Ready(Ok(()))
            }
            failed => failed,
        }
    }
}

impl Watched {
    /// A write's outcome, with the send deadline kept: a write that has to wait starts the
    /// timer (unless it already times this wait), one that sends bytes ends the wait.
    fn sent(
        &mut self,
        cx: &mut Context<'_>,
        wrote: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match wrote {
            Poll::Pending => {}
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.send_stall.moved();
                }
                return Poll::Ready(Ok(n));
            }
            failed => return failed,
        }
        if self.send_stall.poll(cx, self.deadlines.send).is_ready() {
            self.conn.stalled.store(true, Ordering::Relaxed);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            )));
        }
        Poll::Pending
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let wrote = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.sent(cx, wrote)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let wrote = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.sent(cx, wrote)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    /// Shuts the write side, then lingers (see the module's doc) unless the client has
    /// already closed its own.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.lingering {
            ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
            if this.read_ended {
                return Poll::Ready(Ok(()));
            }
            this.lingering = true;
            let until = tokio::time::Instant::now() + LINGER;
            this.timer.as_mut().reset(until);
        }
        this.poll_linger(cx)
    }
}

impl Watched {
    /// Reads and drops what the client sends: ready once it closes (or fails), or once the
    /// timer, set to the end of the lingering, fires.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut dropped = [0; 4096];
        // A bounded number of reads per turn: a client that sends without end shares the
        // thread, and is checked against the timer.
        for _ in 0..16 {
            let mut buf = ReadBuf::new(&mut dropped);
            match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {}
                Poll::Ready(_) => return Poll::Ready(Ok(())),
                Poll::Pending => return self.timer.as_mut().poll(cx).map(Ok),
            }
        }
        cx.waker().wake_by_ref();
        self.timer.as_mut().poll(cx).map(Ok)
    }
}

/// A connection whose first bytes were read to tell its protocol, handed on with them: they
/// are read again first.
pub struct Prefixed {
    read: Buffered<Watched>,
}

impl Prefixed {
    pub fn new(read: Buffered<Watched>) -> Prefixed {
        Prefixed { read }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let read = &mut self.read;
        let n = read.data().len().min(buf.remaining());
        if n == 0 {
            return Pin::new(&mut read.stream).poll_read(cx, buf);
        }
        buf.put_slice(&read.data()[..n]);
        read.consume(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.read.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.read.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.read.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_408_is_one_whole_response() {
        let text = std::str::from_utf8(REQUEST_TIMEOUT).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), body.len());
        assert!(head.starts_with("HTTP/1.1 408 "));
    }
}
