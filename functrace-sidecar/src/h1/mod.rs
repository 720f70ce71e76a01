//! The sidecar's own HTTP/1.1 codec, as Pingora and HAProxy have theirs rather than a
//! general-purpose server's: the head read into a buffer the connection reuses and parsed
//! with `httparse` (the parser hyper and Pingora use), kept as offsets into that buffer so
//! that fields go on as the bytes that came in ([`head`]); the body's framing decided once,
//! strictly, by RFC 9112 §6 (conflicting framing refused, unknown codings 501, nothing a
//! second reader could split differently); chunked bodies decoded in place, in any pieces
//! ([`chunked`]); heads written on with only what this hop changes ([`write`](mod@write));
//! and bodies moved between connections in the framing found, from a reused buffer
//! ([`io`]).
//!
//! Its behaviour is held to hyper's by a differential test (`tests/sidecar_h1_codec.rs`:
//! the same bytes through this codec and through a hyper server or client on loopback give
//! the same messages, or a refusal of this codec's that the test names and explains), and
//! the `h1_codec` fuzz target runs it on the same corpus.

pub mod chunked;
pub mod head;
pub mod io;
pub mod write;

pub use chunked::{ChunkError, ChunkedDecoder};
pub use head::{Field, FieldKind, Fields, Framing, HeadError, RequestHead, ResponseHead};
