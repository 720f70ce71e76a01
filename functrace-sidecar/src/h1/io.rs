//! A connection's reading side with the buffer its heads are parsed in, and bodies moved from
//! one connection to another in the framing the codec found: a length's bytes as they are,
//! chunks decoded and encoded again (so that nothing the decoder did not take goes on), or
//! everything to the close. What is written gathers in one buffer, so that a head and a small
//! body leave in one write.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use super::chunked::{chunk_start, ChunkedDecoder, CHUNK_END, LAST_CHUNK};
use super::head::Framing;
use crate::stall::{stalled, Stall};

/// Body bytes gathered before they are written.
pub const FLUSH_AT: usize = 16 * 1024;

/// What a client connection's read buffer starts at: a head of common size, and a body's
/// reads; a buffer that started smaller grows to it when a read fills it.
const INITIAL: usize = 16 * 1024;

/// What an upstream connection's read buffer starts at: an answer's head of common size.
/// An HTTP/2 client's streams each hold one while in flight (640 of them under
/// `benches/proxy.sh`'s load).
const SMALL: usize = 4 * 1024;

/// A stream and the bytes read from it not yet used. The buffer is made once per connection
/// and reused for every message; it starts at 16 KiB (or 4 KiB, [`Buffered::starting_small`])
/// and grows (by doubling) for a head that does not fit, up to the largest head allowed, and
/// to 16 KiB when a read fills it: a connection costs the memory its messages need, not the
/// limit's.
pub struct Buffered<S> {
    /// The stream, for writing (reads go through [`Buffered::fill`]).
    pub stream: S,
    read: Buffer,
}

/// The bytes read from a stream, `buf[start..end]` not yet used.
struct Buffer {
    buf: Vec<u8>,
    /// The largest the buffer may grow.
    limit: usize,
    start: usize,
    end: usize,
}

impl<S: AsyncRead + Unpin> Buffered<S> {
    /// `stream` with a buffer of at most `limit` bytes.
    pub fn new(stream: S, limit: usize) -> Buffered<S> {
        Buffered::starting_at(stream, limit, INITIAL)
    }

    /// [`Buffered::new`] with a buffer of 4 KiB at first.
    pub fn starting_small(stream: S, limit: usize) -> Buffered<S> {
        Buffered::starting_at(stream, limit, SMALL)
    }

    fn starting_at(stream: S, limit: usize, size: usize) -> Buffered<S> {
        let read = Buffer {
            buf: vec![0; limit.min(size)],
            limit,
            start: 0,
            end: 0,
        };
        Buffered { stream, read }
    }

    /// The bytes read and not yet used.
    pub fn data(&self) -> &[u8] {
        self.read.data()
    }

    /// Marks `n` bytes of [`Buffered::data`] used.
    pub fn consume(&mut self, n: usize) {
        let read = &mut self.read;
        assert!(n <= read.end - read.start, "consumed more than was read");
        read.start += n;
        if read.start == read.end {
            (read.start, read.end) = (0, 0);
        }
    }

    /// Whether the unused bytes fill the buffer at its limit (a head that does not fit).
    pub fn is_full(&self) -> bool {
        self.read.end - self.read.start >= self.read.limit
    }

    /// Reads more after what is there: `Ok(0)` at the end of the stream, or when the buffer
    /// is full.
    pub async fn fill(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }

    /// [`Buffered::fill`] as a poll, for a body that hyper polls.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.read.poll_fill(&mut self.stream, cx)
    }
}

impl Buffered<TcpStream> {
    /// The stream's writing half, and its reading half into the buffer: to read what the
    /// peer sends while a write to it waits (an answer that comes before the request's body
    /// went whole).
    pub fn split(&mut self) -> (Reading<'_>, WriteHalf<'_>) {
        let (stream, write) = self.stream.split();
        let read = Reading {
            stream,
            read: &mut self.read,
        };
        (read, write)
    }
}

/// A [`Buffered`] stream's reading half, from [`Buffered::split`].
pub struct Reading<'a> {
    stream: ReadHalf<'a>,
    read: &'a mut Buffer,
}

impl Reading<'_> {
    /// [`Buffered::data`].
    pub fn data(&self) -> &[u8] {
        self.read.data()
    }

    /// [`Buffered::fill`].
    pub async fn fill(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.read.poll_fill(&mut self.stream, cx)).await
    }
}

impl Buffer {
    // (Inlined: a call per parse of a head, or move of a body's bytes, otherwise.)
    #[inline]
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    // (Inlined into its two callers, as it was when it was `Buffered`'s alone.)
    #[inline(always)]
    fn poll_fill<R: AsyncRead + Unpin>(
        &mut self,
        stream: &mut R,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= self.limit {
                return Poll::Ready(Ok(0));
            }
            let grown = (self.buf.len() * 2).min(self.limit);
            self.buf.resize(grown, 0);
        }
        let mut free = ReadBuf::new(&mut self.buf[self.end..]);
        ready!(Pin::new(stream).poll_read(cx, &mut free))?;
        let (n, filled) = (free.filled().len(), free.remaining() == 0);
        self.end += n;
        // A body streaming in: read it in larger pieces.
        if filled && self.buf.len() < INITIAL.min(self.limit) {
            let grown = (self.buf.len() * 2).min(INITIAL).min(self.limit);
            self.buf.resize(grown, 0);
        }
        Poll::Ready(Ok(n))
    }
}

/// Why a body did not get through, by side: the proxy answers differently when the sender
/// failed (a client gone or malformed) than when the receiver did (an upstream that stopped
/// taking the body may have answered already).
#[derive(Debug)]
pub enum BodyError {
    /// Reading failed: the body was cut short (`UnexpectedEof`), its chunks were malformed
    /// (`InvalidData`), or the connection failed.
    Read(io::Error),
    /// Writing failed.
    Write(io::Error),
}

impl BodyError {
    /// The error, whichever side it came from.
    pub fn into_inner(self) -> io::Error {
        match self {
            BodyError::Read(error) | BodyError::Write(error) => error,
        }
    }
}

/// Writes `out` (a head, say) and the body framed as `framing` that `from` has or will
/// read, framed the same way, to `to`; `out` is left empty. The bytes after the body stay
/// in `from`. The body's length (its data, without framing). `stall`: the longest `from`
/// may keep the body's next bytes waiting (a read fails with `TimedOut` beyond), for a
/// sender whose stream keeps no deadline of its own (an upstream's answer).
pub async fn forward_body<R, W>(
    from: &mut Buffered<R>,
    to: &mut W,
    out: &mut Vec<u8>,
    framing: Framing,
    stall: Option<Duration>,
) -> Result<u64, BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    forward(from, to, out, framing, true, stall).await
}

/// [`forward_body`] of a chunked body, its data written without chunks (to an HTTP/1.0
/// peer, whose connection then ends the body).
pub async fn forward_body_plain<R, W>(
    from: &mut Buffered<R>,
    to: &mut W,
    out: &mut Vec<u8>,
    stall: Option<Duration>,
) -> Result<u64, BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    forward(from, to, out, Framing::Chunked, false, stall).await
}

async fn forward<R, W>(
    from: &mut Buffered<R>,
    to: &mut W,
    out: &mut Vec<u8>,
    framing: Framing,
    rechunk: bool,
    stall: Option<Duration>,
) -> Result<u64, BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // One timer for the body's waits, made at its first.
    let mut stall = stall.map(|limit| (limit, Stall::default()));
    let forwarded = async {
        let cut_short = || BodyError::Read(io::ErrorKind::UnexpectedEof.into());
        let mut moved = 0u64;
        match framing {
            Framing::Empty => {}
            Framing::Length(mut left) => {
                while left > 0 {
                    if from.data().is_empty() && read(from, to, out, stall.as_mut()).await? == 0 {
                        return Err(cut_short());
                    }
                    let take = from
                        .data()
                        .len()
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&from.data()[..take]);
                    from.consume(take);
                    left -= take as u64;
                    moved += take as u64;
                    flush_if_full(to, out).await?;
                }
            }
            Framing::Chunked => {
                let mut decoder = ChunkedDecoder::default();
                loop {
                    let step = decoder.step(from.data()).map_err(|error| {
                        BodyError::Read(io::Error::new(io::ErrorKind::InvalidData, error))
                    })?;
                    if !step.data.is_empty() {
                        moved += step.data.len() as u64;
                        if rechunk {
                            chunk_start(out, step.data.len());
                        }
                        out.extend_from_slice(&from.data()[step.data]);
                        if rechunk {
                            out.extend_from_slice(CHUNK_END);
                        }
                    }
                    from.consume(step.consumed);
                    if step.done {
                        break;
                    }
                    flush_if_full(to, out).await?;
                    if from.data().is_empty() && read(from, to, out, stall.as_mut()).await? == 0 {
                        return Err(cut_short());
                    }
                }
                if rechunk {
                    out.extend_from_slice(LAST_CHUNK);
                }
            }
            Framing::UntilClose => loop {
                moved += from.data().len() as u64;
                out.extend_from_slice(from.data());
                from.consume(from.data().len());
                flush_if_full(to, out).await?;
                if read(from, to, out, stall.as_mut()).await? == 0 {
                    break;
                }
            },
        }
        to.write_all(out).await.map_err(BodyError::Write)?;
        out.clear();
        Ok(moved)
    }
    .await;
    if let Err(BodyError::Read(_)) = &forwarded {
        // What came before the sender failed still goes: the receiver sees where it broke.
        let _ = to.write_all(out).await;
        out.clear();
    }
    forwarded
}

/// Reads more of the body, having sent what gathered from the last read: the receiver may
/// be waiting for it (a body that streams: a slow upload, events). Sent first rather than
/// only when the read would wait: a read begun and left while the write waits would count
/// the receiver's slowness against the sender (the body deadline of `conn.rs`, or `stall`:
/// the longest wait, and its timer).
async fn read<R, W>(
    from: &mut Buffered<R>,
    to: &mut W,
    out: &mut Vec<u8>,
    stall: Option<&mut (Duration, Stall)>,
) -> Result<usize, BodyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if !out.is_empty() {
        to.write_all(out).await.map_err(BodyError::Write)?;
        out.clear();
    }
    let Some((limit, timer)) = stall else {
        return from.fill().await.map_err(BodyError::Read);
    };
    let limit = *limit;
    let read = std::future::poll_fn(|cx| match from.poll_fill(cx) {
        Poll::Ready(read) => {
            timer.moved();
            Poll::Ready(read)
        }
        Poll::Pending => {
            ready!(timer.poll(cx, limit));
            Poll::Ready(Err(stalled(limit)))
        }
    });
    read.await.map_err(BodyError::Read)
}

async fn flush_if_full<W: AsyncWrite + Unpin>(
    to: &mut W,
    out: &mut Vec<u8>,
) -> Result<(), BodyError> {
    if out.len() >= FLUSH_AT {
        to.write_all(out).await.map_err(BodyError::Write)?;
        out.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::AsyncReadExt;

    /// A writer that keeps what it is given, and the largest write.
    #[derive(Default)]
    struct Recorder {
        bytes: Vec<u8>,
        largest: usize,
        /// What `forward_body` said it moved.
        moved: u64,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.largest = self.largest.max(buf.len());
            self.bytes.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// `input` written in pieces of `piece` bytes into a stream the body is forwarded from:
    /// what came out, and what was left in the buffer after the body.
    async fn forwarded(
        input: &[u8],
        piece: usize,
        framing: Framing,
    ) -> io::Result<(Vec<u8>, Vec<u8>)> {
        forwarded_to(input, piece, framing)
            .await
            .map(|(to, rest)| (to.bytes, rest))
    }

    async fn forwarded_to(
        input: &[u8],
        piece: usize,
        framing: Framing,
    ) -> io::Result<(Recorder, Vec<u8>)> {
        let (mut writer, reader) = tokio::io::duplex(64);
        let input = input.to_vec();
        let feeder = tokio::spawn(async move {
            for part in input.chunks(piece) {
                if writer.write_all(part).await.is_err() {
                    return;
                }
            }
        });
        let mut from = Buffered::new(reader, 1024);
        let mut to = Recorder::default();
        let mut out = b"HEAD\r\n".to_vec();
        let result = forward_body(&mut from, &mut to, &mut out, framing, None).await;
        feeder.await.unwrap();
        to.moved = result.map_err(|error| match error {
            BodyError::Read(error) => error,
            BodyError::Write(error) => panic!("writing to memory failed: {error}"),
        })?;
        assert!(out.is_empty());
        let mut rest = from.data().to_vec();
        while from.fill().await? > 0 {
            rest.extend_from_slice(from.data());
            from.consume(from.data().len());
        }
        Ok((to, rest))
    }

    #[tokio::test]
    async fn a_small_buffer_grows_to_16_kib_as_reads_fill_it() {
        let (mut writer, reader) = tokio::io::duplex(64 * 1024);
        writer.write_all(&vec![b'x'; 45_056]).await.unwrap();
        drop(writer);
        let mut from = Buffered::starting_small(reader, 64 * 1024);
        let mut reads = Vec::new();
        for _ in 0..5 {
            let n = from.fill().await.unwrap();
            from.consume(n);
            reads.push(n);
        }
        assert_eq!(reads, [4096, 8192, 16384, 16384, 0]);
    }

    #[tokio::test]
    async fn a_length_goes_as_it_is_and_the_next_message_stays() {
        for piece in [1, 5, 1000] {
            let (to, rest) = forwarded(b"hello worldGET /", piece, Framing::Length(11))
                .await
                .unwrap();
            assert_eq!(to, b"HEAD\r\nhello world");
            assert_eq!(rest, b"GET /");
        }
    }

    #[tokio::test]
    async fn chunks_are_decoded_and_encoded_again() {
        let body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 2\r\n\r\nNEXT";
        for piece in [1, 3, 1000] {
            let (to, rest) = forwarded(body, piece, Framing::Chunked).await.unwrap();
            let to = String::from_utf8(to).unwrap();
            // Whatever pieces the chunks came in, they leave as the data came out of the
            // decoder; the data, the end and the next message are the same.
            assert!(to.starts_with("HEAD\r\n"), "{to}");
            assert!(to.ends_with("0\r\n\r\n"), "{to}");
            let mut decoder = ChunkedDecoder::default();
            let encoded = &to.as_bytes()["HEAD\r\n".len()..];
            let (mut data, mut at) = (Vec::new(), 0);
            while !decoder.is_done() {
                let step = decoder.step(&encoded[at..]).unwrap();
                data.extend_from_slice(&encoded[at..][step.data]);
                at += step.consumed;
            }
            assert_eq!((data.as_slice(), at), (&b"hello world"[..], encoded.len()));
            assert!(!to.contains("ext") && !to.contains("x-sum"), "{to}");
            assert_eq!(rest, b"NEXT");
        }
    }

    #[tokio::test]
    async fn the_length_told_is_the_data_without_its_framing() {
        let chunked = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let cases: [(&[u8], Framing); 3] = [
            (chunked, Framing::Chunked),
            (b"hello world", Framing::Length(11)),
            (b"hello world", Framing::UntilClose),
        ];
        for (input, framing) in cases {
            let (to, _) = forwarded_to(input, 4, framing).await.unwrap();
            assert_eq!(to.moved, 11, "{framing:?}");
        }
    }

    #[tokio::test]
    async fn chunks_go_as_plain_data_when_asked() {
        let (mut writer, reader) = tokio::io::duplex(64);
        writer
            .write_all(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT")
            .await
            .unwrap();
        let mut from = Buffered::new(reader, 64);
        let mut to = Recorder::default();
        let mut out = b"HEAD\r\n".to_vec();
        let moved = forward_body_plain(&mut from, &mut to, &mut out, None)
            .await
            .unwrap();
        assert_eq!(
            (to.bytes.as_slice(), moved),
            (&b"HEAD\r\nhello world"[..], 11)
        );
        assert_eq!(from.data(), b"NEXT");
    }

    #[tokio::test]
    async fn what_gathered_goes_before_a_read_waits() {
        // A body that comes slowly reaches the receiver as it comes, not when the gathered
        // bytes would fill a write.
        let (mut writer, reader) = tokio::io::duplex(64);
        let (to, mut receiver) = tokio::io::duplex(1024);
        let forwarding = tokio::spawn(async move {
            let (mut from, mut to) = (Buffered::new(reader, 64), to);
            let mut out = b"HEAD\r\n".to_vec();
            forward_body(&mut from, &mut to, &mut out, Framing::Length(10), None).await
        });
        writer.write_all(b"hello").await.unwrap();
        let mut got = vec![0; 11];
        receiver.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"HEAD\r\nhello");
        writer.write_all(b"world").await.unwrap();
        assert_eq!(forwarding.await.unwrap().unwrap(), 10);
    }

    #[tokio::test]
    async fn until_close_takes_everything() {
        let (to, rest) = forwarded(b"all of it", 2, Framing::UntilClose)
            .await
            .unwrap();
        assert_eq!(to, b"HEAD\r\nall of it");
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn a_body_cut_short_or_malformed_is_an_error() {
        let (mut writer, reader) = tokio::io::duplex(64);
        writer.write_all(b"hello").await.unwrap();
        drop(writer);
        let (mut from, mut to) = (Buffered::new(reader, 64), Recorder::default());
        let mut out = b"HEAD\r\n".to_vec();
        let cut = forward_body(&mut from, &mut to, &mut out, Framing::Length(10), None).await;
        assert!(matches!(cut, Err(BodyError::Read(_))), "{cut:?}");
        assert_eq!(to.bytes, b"HEAD\r\nhello", "what came still goes");

        let short = forwarded(b"hello", 2, Framing::Length(10)).await;
        assert_eq!(short.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let short = forwarded(b"5\r\nhel", 2, Framing::Chunked).await;
        assert_eq!(short.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        let bad = forwarded(b"5\r\nhelloX0\r\n\r\n", 2, Framing::Chunked).await;
        assert_eq!(bad.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn a_sender_that_stalls_is_given_up_on_after_the_stall_limit() {
        // Five bytes of ten, then the sender keeps its connection open and sends nothing.
        let (mut writer, reader) = tokio::io::duplex(64);
        writer.write_all(b"hello").await.unwrap();
        let (mut from, mut to) = (Buffered::new(reader, 64), Recorder::default());
        let mut out = b"HEAD\r\n".to_vec();
        let limit = Some(Duration::from_millis(50));
        let stalled = forward_body(&mut from, &mut to, &mut out, Framing::Length(10), limit).await;
        let Err(BodyError::Read(error)) = stalled else {
            panic!("{stalled:?}");
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(error.to_string(), "no bytes for 50 ms");
        assert_eq!(to.bytes, b"HEAD\r\nhello", "what came still goes");
        drop(writer);
    }

    #[tokio::test]
    async fn a_receiver_gone_is_a_write_error() {
        let (mut writer, reader) = tokio::io::duplex(64);
        writer.write_all(b"hello").await.unwrap();
        let mut from = Buffered::new(reader, 64);
        // A duplex whose other end is dropped refuses writes.
        let (mut to, gone) = tokio::io::duplex(64);
        drop(gone);
        let mut out = Vec::new();
        let result = forward_body(&mut from, &mut to, &mut out, Framing::Length(5), None).await;
        assert!(matches!(result, Err(BodyError::Write(_))), "{result:?}");
    }

    #[tokio::test]
    async fn a_large_body_goes_in_bounded_writes() {
        let body: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let (to, _) = forwarded_to(&body, 4096, Framing::Length(body.len() as u64))
            .await
            .unwrap();
        assert_eq!(&to.bytes[6..], &body[..]);
        // At most what gathers before a flush, and one buffer's read on top.
        assert!(to.largest < FLUSH_AT + 1024, "{}", to.largest);
    }

    #[tokio::test]
    async fn the_buffer_grows_only_for_a_head_that_does_not_fit() {
        let (mut writer, reader) = tokio::io::duplex(1 << 20);
        writer.write_all(&vec![b'x'; 40_000]).await.unwrap();
        let mut from = Buffered::new(reader, 50_000);
        assert_eq!(from.read.buf.len(), INITIAL);
        while from.data().len() < 40_000 {
            assert!(from.fill().await.unwrap() > 0);
        }
        assert!(!from.is_full());
        assert_eq!(
            from.read.buf.len(),
            50_000,
            "16 KiB, 32 KiB, then the limit"
        );
        writer.write_all(&vec![b'x'; 20_000]).await.unwrap();
        while !from.is_full() {
            assert!(from.fill().await.unwrap() > 0);
        }
        assert_eq!(from.fill().await.unwrap(), 0, "full at the limit");
    }

    #[tokio::test]
    async fn a_full_buffer_moves_its_rest_to_the_front() {
        let (mut writer, reader) = tokio::io::duplex(64);
        writer.write_all(&[b'x'; 20]).await.unwrap();
        let mut from = Buffered::new(reader, 16);
        assert_eq!(from.fill().await.unwrap(), 16);
        assert!(from.is_full());
        assert_eq!(from.fill().await.unwrap(), 0, "full: nothing more fits");
        from.consume(10);
        assert_eq!(from.fill().await.unwrap(), 4);
        assert_eq!(from.data().len(), 10);
    }
}
