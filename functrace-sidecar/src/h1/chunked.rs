//! The chunked transfer coding (RFC 9112 §7.1): a decoder that takes bytes as they come, in
//! any pieces, and hands back the data in place (no copy); and the encoder's few bytes.
//!
//! Strict where a lenient reading would let two parties disagree on where a body ends:
//! every line ends in CRLF (a bare LF is an error, not a line end), a chunk's data must be
//! followed by CRLF, a size is 1 to 16 hex digits. Extensions are skipped (bounded), and so
//! are trailer fields (bounded and checked to be fields): the sidecar passes neither on.

use std::ops::Range;

/// The most bytes a chunk's size line may have after the size (whitespace, extensions).
pub const MAX_EXTENSION: u64 = 4096;
/// The most bytes of trailer fields a body may end with.
pub const MAX_TRAILERS: u64 = 16 * 1024;

/// A chunked body that is not well formed; the connection cannot go on after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkError(pub &'static str);

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid chunked body: {}", self.0)
    }
}

impl std::error::Error for ChunkError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The size's digits (`digits` read so far).
    Size {
        digits: u8,
    },
    /// Whitespace after the size, before `;` or CR.
    SizeSpace,
    /// A chunk extension, up to CR.
    Extension,
    /// The LF of the size line.
    SizeLf,
    /// Data, `left` bytes of it.
    Data,
    DataCr,
    DataLf,
    /// The start of a trailer line, or the CR of the final empty line.
    TrailerStart,
    /// A trailer field's name, up to its colon.
    TrailerName,
    /// The rest of a trailer field, up to CR.
    TrailerValue,
    TrailerLf,
    /// The LF of the final empty line.
    EndLf,
    Done,
}

/// One call's progress: `consumed` bytes of the input were taken, of which `data` (a range
/// of the input) is body data; `done` once the last chunk and trailers are through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input taken.
    pub consumed: usize,
    /// The data among them, as a range of the input (empty when none).
    pub data: Range<usize>,
    /// The last chunk and the trailer section are through.
    pub done: bool,
}

/// Decodes one chunked body.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// The chunk size being read, then the data left of the chunk.
    left: u64,
    /// Bytes of the size line after the size, or of the trailers.
    extra: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            left: 0,
            extra: 0,
        }
    }
}

impl ChunkedDecoder {
    /// Whether the body has ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes bytes of `input` until some data is found (returned at once, in place), the
    /// input is used up, or the body ends. The caller drops `consumed` bytes and calls
    /// again with what follows.
    pub fn step(&mut self, input: &[u8]) -> Result<Step, ChunkError> {
        let mut at = 0;
        while at < input.len() {
            if self.state == State::Data {
                let take = usize::try_from(self.left)
                    .unwrap_or(usize::MAX)
                    .min(input.len() - at);
                self.left -= take as u64;
                if self.left == 0 {
                    self.state = State::DataCr;
                }
                return Ok(Step {
                    consumed: at + take,
                    data: at..at + take,
                    done: false,
                });
            }
            if self.state == State::Done {
                break;
            }
            self.byte(input[at])?;
            at += 1;
        }
        Ok(Step {
            consumed: at,
            data: at..at,
            done: self.state == State::Done,
        })
    }

    /// One byte of the framing (anything but data).
    fn byte(&mut self, byte: u8) -> Result<(), ChunkError> {
        self.state = match self.state {
            State::Size { digits } => match hex_value(byte) {
                Some(value) if digits < 16 => {
                    self.left = self.left << 4 | u64::from(value);
                    State::Size { digits: digits + 1 }
                }
                Some(_) => return Err(ChunkError("chunk size over 16 hex digits")),
                None if digits == 0 => return Err(ChunkError("chunk size expected")),
                None => {
                    self.extra = 0;
                    self.after_size(byte)?
                }
            },
            State::SizeSpace => {
                self.count_extra(MAX_EXTENSION, "chunk extension too long")?;
                self.after_size(byte)?
            }
            State::Extension => {
                self.count_extra(MAX_EXTENSION, "chunk extension too long")?;
                match byte {
                    b'\r' => State::SizeLf,
                    b'\n' => return Err(ChunkError("bare LF in a chunk extension")),
                    _ => State::Extension,
                }
            }
            State::SizeLf => match byte {
                b'\n' if self.left == 0 => {
                    self.extra = 0;
                    State::TrailerStart
                }
                b'\n' => State::Data,
                _ => return Err(ChunkError("CR not followed by LF after a chunk size")),
            },
            State::Data => unreachable!("data is taken in step"),
            State::DataCr => match byte {
                b'\r' => State::DataLf,
                _ => return Err(ChunkError("chunk data not followed by CRLF")),
            },
            State::DataLf => match byte {
                b'\n' => {
                    self.left = 0;
                    State::Size { digits: 0 }
                }
                _ => return Err(ChunkError("chunk data not followed by CRLF")),
            },
            State::TrailerStart => {
                self.count_extra(MAX_TRAILERS, "trailer section too long")?;
                match byte {
                    b'\r' => State::EndLf,
                    _ if is_token(byte) => State::TrailerName,
                    _ => return Err(ChunkError("invalid trailer field")),
                }
            }
            State::TrailerName => {
                self.count_extra(MAX_TRAILERS, "trailer section too long")?;
                match byte {
                    b':' => State::TrailerValue,
                    _ if is_token(byte) => State::TrailerName,
                    _ => return Err(ChunkError("invalid trailer field name")),
                }
            }
            State::TrailerValue => {
                self.count_extra(MAX_TRAILERS, "trailer section too long")?;
                match byte {
                    b'\r' => State::TrailerLf,
                    b'\n' => return Err(ChunkError("bare LF in a trailer field")),
                    _ => State::TrailerValue,
                }
            }
            State::TrailerLf => match byte {
                b'\n' => State::TrailerStart,
                _ => return Err(ChunkError("CR not followed by LF in a trailer field")),
            },
            State::EndLf => match byte {
                b'\n' => State::Done,
                _ => return Err(ChunkError("CR not followed by LF at the end")),
            },
            State::Done => State::Done,
        };
        Ok(())
    }

    /// The state after a size's last digit, on the byte that ended it.
    fn after_size(&mut self, byte: u8) -> Result<State, ChunkError> {
        Ok(match byte {
            b' ' | b'\t' => State::SizeSpace,
            b';' => State::Extension,
            b'\r' => State::SizeLf,
            _ => return Err(ChunkError("invalid byte after a chunk size")),
        })
    }

    fn count_extra(&mut self, max: u64, why: &'static str) -> Result<(), ChunkError> {
        self.extra += 1;
        if self.extra > max {
            return Err(ChunkError(why));
        }
        Ok(())
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// A `tchar` of RFC 9110 §5.6.2.
fn is_token(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// The line that starts a chunk of `len` bytes (`len` > 0), into `out`.
pub fn chunk_start(out: &mut Vec<u8>, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        out.push(HEX[(len >> (shift * 4)) & 0xf]);
    }
    out.extend_from_slice(b"\r\n");
}

/// What ends a chunk's data.
pub const CHUNK_END: &[u8] = b"\r\n";
/// The last chunk, with no trailers.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    /// The data of `body` fed in pieces of `piece` bytes, and what was left after it.
    fn decode(body: &[u8], piece: usize) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut decoder = ChunkedDecoder::default();
        let mut data = Vec::new();
        let mut at = 0;
        while !decoder.is_done() {
            let end = (at + piece).min(body.len());
            if at == end {
                return Err(ChunkError("(test) ended early"));
            }
            let mut input = &body[at..end];
            while !input.is_empty() && !decoder.is_done() {
                let step = decoder.step(input)?;
                data.extend_from_slice(&input[step.data.clone()]);
                at += step.consumed;
                input = &input[step.consumed..];
            }
        }
        Ok((data, body.len() - at))
    }

    #[test]
    fn chunks_decode_in_any_pieces() {
        let body = b"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nx-sum: 1\r\n\r\nNEXT";
        for piece in 1..body.len() {
            assert_eq!(
                decode(body, piece).unwrap(),
                (b"hello world".to_vec(), 4),
                "{piece}"
            );
        }
    }

    #[test]
    fn sizes_are_hex_of_either_case() {
        let body = b"A\r\n0123456789\r\n0\r\n\r\n";
        assert_eq!(decode(body, 64).unwrap().0, b"0123456789");
        let body = b"a \t;x\r\n0123456789\r\n0\r\n\r\n";
        assert_eq!(decode(body, 64).unwrap().0, b"0123456789");
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"\r\n",
            b"-5\r\n",
            b"0x5\r\n",
            b"5 5\r\n",
            b"11111111111111111\r\n",
            b"5;a\nb\r\n",
            b"0\r\n\n",
            b"0\r\nbad field\r\n\r\n",
            b"0\r\n: no name\r\n\r\n",
            b"0\r\n folded\r\n\r\n",
            b"0\r\nx: 1\n\r\n",
        ] {
            assert!(
                decode(bad, 64).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn extensions_and_trailers_are_bounded() {
        let long = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_EXTENSION as usize));
        assert_eq!(
            decode(long.as_bytes(), 1 << 16),
            Err(ChunkError("chunk extension too long"))
        );
        let long = format!("0\r\nx: {}\r\n\r\n", "v".repeat(MAX_TRAILERS as usize));
        assert_eq!(
            decode(long.as_bytes(), 1 << 16),
            Err(ChunkError("trailer section too long"))
        );
    }

    #[test]
    fn the_largest_size_does_not_overflow() {
        let mut decoder = ChunkedDecoder::default();
        let step = decoder.step(b"ffffffffffffffff\r\nab").unwrap();
        assert_eq!(step.data, 18..20);
        assert!(!step.done);
    }

    #[test]
    fn encoded_chunks_decode() {
        for len in [1, 9, 15, 16, 255, 256, 4096, 65_537] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut body = Vec::new();
            chunk_start(&mut body, len);
            body.extend_from_slice(&data);
            body.extend_from_slice(CHUNK_END);
            body.extend_from_slice(LAST_CHUNK);
            assert_eq!(decode(&body, 1000).unwrap(), (data, 0), "{len}");
        }
        let mut line = Vec::new();
        chunk_start(&mut line, 0x1a2b);
        assert_eq!(line, b"1a2b\r\n");
    }
}
