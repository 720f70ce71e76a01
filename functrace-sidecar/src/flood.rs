//! HTTP/2 limits that the `h2` crate does not keep, enforced on a connection's bytes below
//! it: a flood of frames that cost the peer nothing and the sidecar an answer or a look, and
//! a header block left open. Either ends the connection with GOAWAY ENHANCE_YOUR_CALM. (And
//! the idle deadline kept below it, in `conn.rs`, ends one with GOAWAY NO_ERROR.)
//!
//! What `h2` (0.4.20) keeps by itself, configured in `serve.rs`: resets of streams not yet
//! accepted (rapid reset) and of streams it resets itself; empty and small DATA frames;
//! CONTINUATION frames per header block; the header list size (431 on the stream up to four
//! times the limit, GOAWAY beyond), all ending in ENHANCE_YOUR_CALM. What it does not: its
//! PING and SETTINGS answers wait for the socket, one at a time, so a flood of them costs no
//! memory, but nothing ever stops one: a peer that reads gets an answer to every frame, one
//! that does not holds the connection. WINDOW_UPDATE, PRIORITY, RST_STREAM of closed streams
//! and frames of unknown types are not counted at all. And nothing times a header block out.
//!
//! So this counts them ("control frames": every type but DATA, HEADERS, CONTINUATION,
//! PUSH_PROMISE and GOAWAY): at most [`FREE`] plus [`PER_WORK`] for each HEADERS received and
//! each DATA frame sent, over a window of at least [`WINDOW`]. A client that gives back every
//! DATA frame at once, with a WINDOW_UPDATE for the stream and one for the connection, spends
//! 2 of the 10 a frame earns; keep-alive PINGs every second spend 10 of 1,000 per window.
//! Envoy limits WINDOW_UPDATE the same way (10 per DATA frame sent). A header block begun
//! (HEADERS without END_HEADERS) must end within the header timeout, as an HTTP/1.1 head must.
//!
//! Only connections that open with the HTTP/2 preface are looked at; for the others this is
//! one test per read and write.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Control frames a connection may send before it has done any work.
pub(crate) const FREE: u64 = 1_000;
/// Control frames earned by each request received and each DATA frame sent.
pub(crate) const PER_WORK: u64 = 10;
/// The spending is counted over at least this long, then starts again.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PUSH_PROMISE: u8 = 0x5;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;
const NO_ERROR: u32 = 0x0;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// A client connection, watched for HTTP/2 floods.
pub(crate) struct FloodGuard<T> {
    io: T,
    mode: Mode,
    header_timeout: Duration,
}

enum Mode {
    /// The first bytes, this many of them matching the HTTP/2 preface so far.
    Sniffing(usize),
    /// Not HTTP/2: bytes pass untouched.
    Http1,
    Http2(Box<Http2>),
}

impl<T> FloodGuard<T> {
    pub(crate) fn new(io: T, header_timeout: Duration) -> FloodGuard<T> {
        FloodGuard {
            io,
            mode: Mode::Sniffing(0),
            header_timeout,
        }
    }
}

struct Http2 {
    received: Frames,
    sent: Frames,
    spent: u64,
    earned: u64,
    window_start: Instant,
    /// The deadline of a header block begun and not ended.
    open_block: Option<Pin<Box<Sleep>>>,
    header_timeout: Duration,
    /// The highest stream whose header block ended: the GOAWAY's last stream.
    last_stream: u32,
    /// Once the peer is cut off: the GOAWAY, and how much of it is written.
    goaway: Option<([u8; 17], usize)>,
}

impl Http2 {
    fn new(header_timeout: Duration) -> Http2 {
        Http2 {
            received: Frames::default(),
            sent: Frames::default(),
            spent: 0,
            earned: 0,
            window_start: Instant::now(),
            open_block: None,
            header_timeout,
            last_stream: 0,
            goaway: None,
        }
    }

    /// Counts the frames that begin in `bytes`, received; false when the peer is cut off.
    fn receive(&mut self, mut bytes: &[u8]) -> bool {
        while let Some(head) = self.received.next(&mut bytes) {
            match head.kind {
                DATA | PUSH_PROMISE | GOAWAY => {}
                HEADERS | CONTINUATION => {
                    self.earned += u64::from(head.kind == HEADERS);
                    if head.flags & END_HEADERS != 0 {
                        self.open_block = None;
                        self.last_stream = self.last_stream.max(head.stream);
                    } else if self.open_block.is_none() {
                        let deadline = tokio::time::sleep(self.header_timeout);
                        self.open_block = Some(Box::pin(deadline));
                    }
                }
                _ => {
                    self.spent += 1;
                    // The clock is read only when the budget runs out.
                    if self.spent > FREE + PER_WORK * self.earned {
                        if self.window_start.elapsed() < WINDOW {
                            self.cut(ENHANCE_YOUR_CALM);
                            return false;
                        }
                        (self.spent, self.earned) = (1, 0);
                        self.window_start = Instant::now();
                    }
                }
            }
        }
        true
    }

    /// Counts the frames that begin in `bytes`, sent.
    fn send(&mut self, mut bytes: &[u8]) {
        while let Some(head) = self.sent.next(&mut bytes) {
            self.earned += u64::from(head.kind == DATA);
        }
    }

    /// Ends the connection with a GOAWAY carrying `code`: `ENHANCE_YOUR_CALM` for a flood,
    /// `NO_ERROR` for a deadline.
    fn cut(&mut self, code: u32) {
        self.open_block = None;
        let mut frame = [0u8; 17];
        frame[..9].copy_from_slice(&[0, 0, 8, GOAWAY, 0, 0, 0, 0, 0]);
        frame[9..13].copy_from_slice(&self.last_stream.to_be_bytes());
        frame[13..].copy_from_slice(&code.to_be_bytes());
        self.goaway = Some((frame, 0));
    }

    /// Writes what is left of the GOAWAY. The peer is cut off: one that does not take it at
    /// once (a flood that never reads) is not waited for.
    fn poll_goaway<T: AsyncWrite + Unpin>(
        &mut self,
        io: &mut T,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let Some((frame, written)) = &mut self.goaway else {
            return Poll::Ready(Ok(()));
        };
        while *written < frame.len() {
            let error = match Pin::new(&mut *io).poll_write(cx, &frame[*written..]) {
                Poll::Ready(Ok(0)) => io::ErrorKind::WriteZero.into(),
                Poll::Ready(Ok(n)) => {
                    *written += n;
                    continue;
                }
                Poll::Ready(Err(err)) => err,
                Poll::Pending => not_reading(),
            };
            // Given up: not tried again.
            *written = frame.len();
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(()))
    }
}

fn not_reading() -> io::Error {
    io::Error::other("an HTTP/2 peer cut off for a flood does not read")
}

/// Where a stream of frames stands: frame heads are read, payloads skipped.
#[derive(Default)]
struct Frames {
    head: [u8; 9],
    have: usize,
    payload_left: usize,
}

struct Head {
    kind: u8,
    flags: u8,
    stream: u32,
}

impl Frames {
    /// The next frame head completed in `bytes`, which it consumes up to there.
    fn next(&mut self, bytes: &mut &[u8]) -> Option<Head> {
        loop {
            let skip = self.payload_left.min(bytes.len());
            self.payload_left -= skip;
            *bytes = &bytes[skip..];
            if bytes.is_empty() {
                return None;
            }
            let n = (9 - self.have).min(bytes.len());
            self.head[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            *bytes = &bytes[n..];
            if self.have == 9 {
                self.have = 0;
                let h = self.head;
                self.payload_left =
                    usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & !(1 << 31);
                return Some(Head {
                    kind: h[3],
                    flags: h[4],
                    stream,
                });
            }
        }
    }

    /// Bytes to the end of the frame under way; `None` between frames.
    fn to_frame_end(&self) -> Option<usize> {
        match (self.have, self.payload_left) {
            (0, 0) => None,
            (0, left) => Some(left),
            (have, _) => Some(9 - have),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for FloodGuard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Mode::Http2(h2) = &mut this.mode {
            if let Some(deadline) = &mut h2.open_block {
                if deadline.as_mut().poll(cx).is_ready() {
                    h2.cut(ENHANCE_YOUR_CALM);
                }
            }
            if h2.goaway.is_some() {
                this.goaway_now(cx);
                // To `h2`, the peer has closed: it ends the connection.
                return Poll::Ready(Ok(()));
            }
        }
        let before = buf.filled().len();
        match ready!(Pin::new(&mut this.io).poll_read(cx, buf)) {
            Ok(()) => {}
            // A deadline below (`conn.rs`: the connection idle) ends an HTTP/2 connection
            // politely: a GOAWAY that tells the client which of its streams were served.
            Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                if let Mode::Http2(h2) = &mut this.mode {
                    h2.cut(NO_ERROR);
                    this.goaway_now(cx);
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(err));
            }
            Err(err) => return Poll::Ready(Err(err)),
        }
        let new = &buf.filled()[before..];
        let calm = match &mut this.mode {
            Mode::Http1 => true,
            Mode::Http2(h2) => h2.receive(new),
            Mode::Sniffing(matched) => {
                let n = new.len().min(PREFACE.len() - *matched);
                if new[..n] != PREFACE[*matched..*matched + n] {
                    this.mode = Mode::Http1;
                    true
                } else if *matched + n < PREFACE.len() {
                    *matched += n;
                    true
                } else {
                    let mut h2 = Box::new(Http2::new(this.header_timeout));
                    let calm = h2.receive(&new[n..]);
                    this.mode = Mode::Http2(h2);
                    calm
                }
            }
        };
        if !calm {
            buf.set_filled(before);
            this.goaway_now(cx);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> FloodGuard<T> {
    /// The GOAWAY of a peer just cut off, written now if `h2` is between frames (else after
    /// the frame under way, see `poll_write`): `h2`, which sees the end of the peer's bytes,
    /// may close without a shutdown that would let it out.
    fn goaway_now(&mut self, cx: &mut Context<'_>) {
        if let Mode::Http2(h2) = &mut self.mode {
            if h2.sent.to_frame_end().is_none() {
                let _ = h2.poll_goaway(&mut self.io, cx);
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FloodGuard<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Mode::Http2(h2) = &mut this.mode else {
            return Pin::new(&mut this.io).poll_write(cx, buf);
        };
        let cut = h2.goaway.is_some();
        if cut {
            // The frame under way is finished, then the GOAWAY written, then nothing more.
            match h2.sent.to_frame_end() {
                Some(end) => buf = &buf[..end.min(buf.len())],
                None => {
                    ready!(h2.poll_goaway(&mut this.io, cx))?;
                    return Poll::Ready(Ok(buf.len()));
                }
            }
        }
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                h2.send(&buf[..n]);
                Poll::Ready(Ok(n))
            }
            Poll::Pending if cut => Poll::Ready(Err(not_reading())),
            other => other,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match &mut this.mode {
            Mode::Http2(h2) if h2.goaway.is_none() => {
                let n = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
                let mut left = n;
                for buf in bufs {
                    let written = left.min(buf.len());
                    h2.send(&buf[..written]);
                    left -= written;
                }
                Poll::Ready(Ok(n))
            }
            // Cut off: one buffer at a time, to stop at the end of the frame under way.
            Mode::Http2(_) => {
                let buf = bufs
                    .iter()
                    .find(|b| !b.is_empty())
                    .map_or(&[][..], |b| &**b);
                Pin::new(this).poll_write(cx, buf)
            }
            _ => Pin::new(&mut this.io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Mode::Http2(h2) = &mut this.mode {
            if h2.sent.to_frame_end().is_none() {
                ready!(h2.poll_goaway(&mut this.io, cx))?;
            }
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload_len: usize) -> Vec<u8> {
        let mut frame = (payload_len as u32).to_be_bytes()[1..].to_vec();
        frame.extend([kind, flags]);
        frame.extend(stream.to_be_bytes());
        frame.resize(9 + payload_len, 0);
        frame
    }

    #[test]
    fn frame_heads_are_found_across_any_split() {
        let mut bytes = frame(HEADERS, END_HEADERS, 1, 5);
        bytes.extend(frame(4, 0, 0, 0));
        bytes.extend(frame(DATA, 1, 1, 20_000));
        for split in 0..bytes.len() {
            let mut frames = Frames::default();
            let mut kinds = Vec::new();
            for mut part in [&bytes[..split], &bytes[split..]] {
                while let Some(head) = frames.next(&mut part) {
                    kinds.push((head.kind, head.flags, head.stream));
                }
            }
            assert_eq!(kinds, [(HEADERS, END_HEADERS, 1), (4, 0, 0), (DATA, 1, 1)]);
            assert_eq!(frames.to_frame_end(), None);
        }
    }

    #[test]
    fn control_frames_are_free_up_to_the_budget_then_cut() {
        let mut h2 = Http2::new(Duration::from_secs(1));
        let ping = frame(6, 0, 0, 8);
        for _ in 0..FREE {
            assert!(h2.receive(&ping));
        }
        // Work earns more: a request, then a DATA frame sent.
        assert!(h2.receive(&frame(HEADERS, END_HEADERS, 3, 4)));
        h2.send(&frame(DATA, 0, 3, 100));
        for _ in 0..2 * PER_WORK {
            assert!(h2.receive(&ping));
        }
        assert!(!h2.receive(&ping));
        let (goaway, _) = h2.goaway.unwrap();
        assert_eq!(goaway[3], GOAWAY);
        assert_eq!(&goaway[9..13], &3u32.to_be_bytes(), "the last stream");
        assert_eq!(&goaway[13..], &ENHANCE_YOUR_CALM.to_be_bytes());
    }
}
