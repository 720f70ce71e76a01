//! B3 propagation: the trace context in HTTP headers and gRPC metadata, as specified by
//! [openzipkin/b3-propagation](https://github.com/openzipkin/b3-propagation).
//!
//! - [`extract`] reads a request's headers: the single `b3` header, else the multiple `x-b3-*`
//!   headers. It answers a trace context, a sampling decision alone (`b3: 0`), nothing (no B3
//!   header at all), or [`Rejected`] with a reason. Malformed input is rejected whole: never
//!   half-parsed, never repaired.
//! - [`inject`] writes a trace context in the [`Format`] asked for, replacing whatever B3 headers
//!   were there; [`inject_sampling`] writes a sampling decision alone.
//!
//! ```
//! use functrace::{Sampling, TraceContext};
//! use functrace_mesh::b3::{self, Extracted, Format};
//! use http::HeaderMap;
//!
//! let context = TraceContext::new_root(Sampling::Accept).child();
//! let mut headers = HeaderMap::new();
//! b3::inject(&context, Format::Single, &mut headers);
//! assert_eq!(b3::extract(&headers), Ok(Extracted::Context(context)));
//!
//! headers.insert("b3", "0".parse().unwrap());
//! assert_eq!(b3::extract(&headers), Ok(Extracted::Sampling(Sampling::Deny)));
//! ```
//!
//! # Decisions
//!
//! The spec leaves some cases open and implementations disagree on others. Where they
//! disagree this module follows [openzipkin Brave](https://github.com/openzipkin/brave) (the
//! reference implementation, `B3Propagation` and `B3SingleFormat`), except where the spec says
//! otherwise; each departure is marked as one.
//!
//! Extraction, both encodings:
//! 1. The single `b3` header takes precedence: when it is present and valid, the `x-b3-*`
//!    headers are not read at all. So `b3: 0` with valid `x-b3-*` ids is a deny decision without
//!    ids (deny wins), and when both carry valid but different trace ids the single header wins.
//! 2. An invalid `b3` header (including an empty one) falls back to the `x-b3-*` headers (Brave,
//!    and otel). If they are absent too, the answer is the single header's rejection; if they are
//!    present but invalid, theirs.
//! 3. When a header is repeated, the first value wins (spec); later ones are not looked at.
//! 4. Ids are exactly 16 (span, parent, 64-bit trace) or 32 (128-bit trace) *lowercase* hex
//!    characters, not all zero. Departure from Brave: its `x-b3-*` parser also accepts 1 to 15
//!    (or 31) characters and left-pads them; the spec says 16 or 32, so they are rejected here.
//! 5. A 64-bit trace id stays 64-bit and a 128-bit one stays 128-bit, even when its high half is
//!    zero (`TraceId` keeps the width). Brave writes a 128-bit id whose high half is zero back as
//!    64 bits.
//! 6. Debug implies accept: [`Sampling::Debug`] is the one state for "debug", whether it came as
//!    `d` or as `x-b3-flags: 1`.
//! 7. Nothing is trimmed or case-folded in values, except `true`/`false` below. Header names are
//!    case-insensitive (`http` lowercases them).
//!
//! Extraction, single header (`b3: {trace}-{span}[-{sampling}[-{parent}]]`):
//! 8. A one-character value is a sampling decision alone: `0` deny, `1` accept, `d` debug.
//!    Anything else of one character (such as `-`) is rejected.
//! 9. The sampling field is exactly `0`, `1` or `d`; `true`, `q` and the like are rejected.
//! 10. `{trace}-{span}-{parent}` (a parent id with no sampling field, meaning defer) is
//!     accepted, as Brave does, because Brave writes it (decision 17).
//! 11. Empty fields and trailing hyphens (`T-`, `T-S-`, `T-S-1-`), extra fields and over-long
//!     ids are rejected. So are other formats that happen to contain hyphens: a W3C
//!     `traceparent` (`00-T-S-01`) or a UUID.
//!
//! Extraction, multiple headers:
//! 12. `x-b3-sampled` is `1` or `0`; the legacy `true`/`false` are accepted in any ASCII case
//!     (Brave's lenience, which the spec allows). Any other value, empty included, rejects the
//!     whole context, even with `x-b3-flags: 1` (Brave checks the sampled header first).
//! 13. `x-b3-flags: 1` is debug, whatever `x-b3-sampled` says; any other value of `x-b3-flags`
//!     (`0`, `2`, garbage) is ignored as if absent (spec: "absent or any other value can be
//!     ignored").
//! 14. Without ids, a sampling decision alone (`x-b3-sampled: 0`, `x-b3-flags: 1`) is
//!     [`Extracted::Sampling`]. Headers that decide nothing (only `x-b3-flags: 0`) are
//!     [`Extracted::None`], like no headers at all; extraction never answers
//!     `Extracted::Sampling(Sampling::Defer)`.
//! 15. `x-b3-traceid` and `x-b3-spanid` come together: either alone is rejected, and so is
//!     `x-b3-parentspanid` without them. Departure from Brave: when `x-b3-traceid` is absent but
//!     a sampling decision is present, Brave returns the decision and silently drops a stray span
//!     or parent id; here that input is rejected whole (never half-parsed).
//! 16. A present `x-b3-parentspanid` must be a valid id, or the whole context is rejected
//!     (Brave; otel ignores a malformed one).
//!
//! Injection:
//! 17. Every B3 header is replaced, never appended to: `b3` and all `x-b3-*` names are removed
//!     (or overwritten) before writing, so a forwarded request never carries two contexts;
//!     that includes `x-b3-*` names B3 does not define (a stale `x-b3-debug`, say). Names are
//!     lowercase, which is also what gRPC metadata requires.
//! 18. [`Format::Multi`] (the default, and what Envoy emits) writes `x-b3-traceid`,
//!     `x-b3-spanid`, `x-b3-parentspanid` when there is a parent, and `x-b3-sampled: 1` or `0`;
//!     nothing for defer; for debug `x-b3-flags: 1` and no `x-b3-sampled` (spec).
//! 19. [`Format::Single`] writes `b3: {trace}-{span}[-{1|0|d}][-{parent}]`. Defer with a parent
//!     is written `{trace}-{span}-{parent}`, with the parent kept and no sampling field, as Brave
//!     does (rather than dropping the parent or inventing a decision); decision 10 reads it back.
//!     Note that otel's propagators reject that form (see below).
//! 20. [`Format::Both`] writes both encodings, for receivers of either kind.
//! 21. A sampling decision alone ([`inject_sampling`]) is `b3: 1|0|d` and, in multiple headers,
//!     `x-b3-sampled: 1|0` or `x-b3-flags: 1` for debug. Defer writes nothing (it only removes
//!     the old B3 headers), since defer is the absence of a decision.
//!
//! # Differences from OpenTelemetry's B3 propagators (the spec wins)
//!
//! `tests/b3_otel.rs` and `tests/b3_python.rs` run the same inputs through them and assert each
//! of these differences explicitly.
//!
//! Rust, `opentelemetry-zipkin` 0.33 (`Propagator`, extracting with the encoding the sender
//! used):
//! - It has no parent id: extraction drops it and injection never writes it.
//! - It cannot extract a sampling decision alone (`b3: 0`, `x-b3-sampled: 0`): it answers no
//!   context, and with `b3: 0` beside `x-b3-*` ids it falls back to the ids, so deny is lost.
//! - It always writes 128-bit trace ids (a 64-bit one gets 16 zeros in front).
//! - Single header `d` extracts as its debug flag without the sampled bit, so `is_sampled()` is
//!   false for a debug context that came in `b3`.
//! - It accepts trailing hyphens in `b3` (`T-S-` as defer, `T-S-1-` as accept).
//! - It rejects `{trace}-{span}-{parent}` (decision 10).
//! - It accepts an all-zero parent id in `b3`.
//! - `x-b3-flags: 0` makes the context unsampled whatever `x-b3-sampled` says, and
//!   `x-b3-flags: 1` wins even over a malformed `x-b3-sampled`.
//! - A malformed `x-b3-parentspanid` is ignored rather than rejected.
//! - `x-b3-sampled` accepts only lowercase `true`; and `true` is rejected by a propagator
//!   configured for both encodings, single-header `d` by one configured for multiple headers
//!   only.
//!
//! Python, `opentelemetry-propagator-b3` 1.45 (`B3MultiFormat`/`B3SingleFormat`, whose
//! extraction is the same code):
//! - It keeps only trace id, span id and a sampled flag: no parent, no defer or debug, no
//!   sampling decision alone, and 128-bit trace ids only.
//! - Single header without a sampling field (defer) extracts as *sampled*; multiple headers
//!   without `x-b3-sampled` extract as unsampled.
//! - A non-empty `b3` header is used even when malformed: no fallback to `x-b3-*`.
//! - Its sampled field is lenient: `1`, `true`, `True`, `d` mean sampled and anything else
//!   (empty, `2`, garbage) means unsampled, in both encodings; nothing is rejected for it.
//!   `x-b3-flags: 1` means sampled whatever `x-b3-sampled` says.
//! - It accepts uppercase hex and trailing hyphens, and never checks a parent id (in `b3` any
//!   fourth field goes); `{trace}-{span}-{parent}` reads as unsampled.
//!
//! # Cost
//!
//! Extraction does not allocate: it parses the header bytes in place, eight hex characters at
//! a time. It reads `b3` by name, and the `x-b3-*` headers in one pass over up to 32 header
//! values (`http` hashes a name byte by byte, so five look-ups cost more than the pass), by
//! name beyond that. Injection makes one pass over the headers and writes in place the B3 names
//! already there, as a proxy forwarding B3 finds them; it allocates a `HeaderValue` (`http`
//! owns header bytes) only for a value that changes: forwarding a child, the trace id stays
//! and the old span id's value moves over to the parent id, so only the new span id is
//! allocated. (A shared chunk cut into values costs more in atomic reference counts than the
//! allocations it saves.)

use std::fmt;

use functrace::{Sampling, SpanId, TraceContext, TraceId};
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// The single header.
const B3: HeaderName = HeaderName::from_static("b3");
const TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
const SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");
const PARENT_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
const SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
const FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");

/// The longest single header: `{128-bit trace}-{span}-{sampling}-{parent}`.
const SINGLE_MAX: usize = 32 + 1 + 16 + 1 + 1 + 1 + 16;

/// What a request's B3 headers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Extracted {
    /// A trace context, with its sampling state.
    Context(TraceContext),
    /// A sampling decision without ids, such as `b3: 0`; never [`Sampling::Defer`].
    Sampling(Sampling),
    /// No B3 header at all (or only ones that decide nothing, such as `x-b3-flags: 0`).
    None,
}

/// Why B3 headers were rejected. The whole context is rejected, never part of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rejected(&'static str);

impl Rejected {
    /// The reason, for logs.
    pub fn reason(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed B3 headers: {}", self.0)
    }
}

impl std::error::Error for Rejected {}

/// How [`inject`] encodes a context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// `x-b3-traceid`, `x-b3-spanid`, ...: the default, and what Envoy emits.
    #[default]
    Multi,
    /// One `b3` header.
    Single,
    /// Both, for receivers of either kind.
    Both,
}

impl Format {
    fn multi(self) -> bool {
        matches!(self, Format::Multi | Format::Both)
    }

    fn single(self) -> bool {
        matches!(self, Format::Single | Format::Both)
    }
}

/// Reads B3 from request headers: the `b3` header when present and valid, else the `x-b3-*`
/// headers (see the module docs for every rule). Does not allocate.
pub fn extract(headers: &HeaderMap) -> Result<Extracted, Rejected> {
    if headers.len() > SCAN_MAX {
        from_found(headers.get(&B3), &Found::look_up(headers))
    } else {
        let mut found = Found::default();
        let mut single = None;
        for (name, value) in headers {
            if name.as_str() == "b3" {
                single = single.or(Some(value));
            } else {
                found.note(name.as_str(), value);
            }
        }
        from_found(single, &found)
    }
}

/// B3 from the `b3` header's first value and the `x-b3-*` ones found: the single header
/// when valid; else (Brave) the multiple headers, and when they are absent, the single
/// header's rejection.
pub(crate) fn from_found(
    single: Option<&HeaderValue>,
    multi: &Found<'_>,
) -> Result<Extracted, Rejected> {
    let Some(b3) = single else {
        return from_multi(multi);
    };
    match parse_single(b3.as_bytes()) {
        Ok(extracted) => Ok(extracted),
        Err(single) => match from_multi(multi)? {
            Extracted::None => Err(single),
            extracted => Ok(extracted),
        },
    }
}

/// Reads the value of a single `b3` header: a context, or a sampling decision alone.
pub fn extract_single(value: &str) -> Result<Extracted, Rejected> {
    parse_single(value.as_bytes())
}

/// Reads only the `x-b3-*` headers, ignoring `b3`. Does not allocate.
pub fn extract_multi(headers: &HeaderMap) -> Result<Extracted, Rejected> {
    if headers.len() > SCAN_MAX {
        from_multi(&Found::look_up(headers))
    } else {
        from_multi(&Found::scan(headers))
    }
}

fn from_multi(found: &Found<'_>) -> Result<Extracted, Rejected> {
    // Brave reads the sampled header first: malformed, it rejects everything.
    let sampled = match found.sampled.map(HeaderValue::as_bytes) {
        None => None,
        Some(b"1") => Some(Sampling::Accept),
        Some(b"0") => Some(Sampling::Deny),
        Some(value) if value.eq_ignore_ascii_case(b"true") => Some(Sampling::Accept),
        Some(value) if value.eq_ignore_ascii_case(b"false") => Some(Sampling::Deny),
        Some(_) => return Err(Rejected("x-b3-sampled is not 1 or 0")),
    };
    let debug = found.flags.is_some_and(|flags| flags.as_bytes() == b"1");
    let sampling = match (debug, sampled) {
        (true, _) => Sampling::Debug,
        (false, Some(sampled)) => sampled,
        (false, None) => Sampling::Defer,
    };
    match (found.trace_id, found.span_id) {
        (Some(trace_id), Some(span_id)) => Ok(Extracted::Context(TraceContext {
            trace_id: trace_id_from(trace_id.as_bytes())?,
            span_id: span_id_from(span_id.as_bytes(), SPAN_BAD, SPAN_ZERO)?,
            parent_id: match found.parent_id {
                Some(parent) => Some(span_id_from(parent.as_bytes(), PARENT_BAD, PARENT_ZERO)?),
                None => None,
            },
            sampling,
        })),
        (Some(_), None) => Err(Rejected("x-b3-traceid without x-b3-spanid")),
        (None, Some(_)) => Err(Rejected("x-b3-spanid without x-b3-traceid")),
        (None, None) if found.parent_id.is_some() => Err(Rejected(
            "x-b3-parentspanid without x-b3-traceid and x-b3-spanid",
        )),
        (None, None) if sampling == Sampling::Defer => Ok(Extracted::None),
        (None, None) => Ok(Extracted::Sampling(sampling)),
    }
}

/// Writes `context` into `headers` in `format`, replacing (never appending to) any B3 headers
/// already there, in either encoding. Allocates only the id values.
#[inline]
pub fn inject(context: &TraceContext, format: Format, headers: &mut HeaderMap) {
    wanted(context, format).replace(headers);
}

/// The B3 headers [`inject`] writes, each given to `field` as name and value, with no
/// `HeaderMap`: for a writer of raw HTTP/1.1 fields. Allocates nothing.
pub fn fields(context: &TraceContext, format: Format, mut field: impl FnMut(&'static str, &[u8])) {
    let wanted = wanted(context, format);
    for (name, text) in NAMES.iter().zip(&wanted.0) {
        if let Some(text) = text {
            field(name.as_str(), text.as_bytes());
        }
    }
}

/// The B3 headers of `context` in `format`.
#[inline]
fn wanted(context: &TraceContext, format: Format) -> Wanted {
    let mut wanted = Wanted::default();
    if format.multi() {
        let mut hex = [0u8; 32];
        let len = put_trace_id(&mut hex, context.trace_id);
        wanted.set(TRACE_ID_BIT, &hex[..len]);
        put_hex(&mut hex, context.span_id.get());
        wanted.set(SPAN_ID_BIT, &hex[..16]);
        if let Some(parent) = context.parent_id {
            put_hex(&mut hex, parent.get());
            wanted.set(PARENT_SPAN_BIT, &hex[..16]);
        }
        wanted.set_multi_sampling(context.sampling);
    }
    if format.single() {
        let mut buffer = [0u8; SINGLE_MAX];
        wanted.set(B3_BIT, write_single(&mut buffer, context));
    }
    wanted
}

/// Writes a sampling decision without ids (such as `b3: 0`), replacing any B3 headers already
/// there. [`Sampling::Defer`] writes nothing: it only removes them.
pub fn inject_sampling(sampling: Sampling, format: Format, headers: &mut HeaderMap) {
    let mut wanted = Wanted::default();
    if format.multi() {
        wanted.set_multi_sampling(sampling);
    }
    if let Some(state) = sampling_char(sampling).filter(|_| format.single()) {
        wanted.set(B3_BIT, state.as_bytes());
    }
    wanted.replace(headers);
}

/// Removes every B3 header (`b3` and all `x-b3-*` names), in one pass over the headers.
pub fn remove(headers: &mut HeaderMap) {
    Wanted::default().replace(headers);
}

/// A header value to write, kept on the stack until it has to become a `HeaderValue`.
#[derive(Clone, Copy)]
struct Text {
    bytes: [u8; SINGLE_MAX],
    len: usize,
}

impl Text {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Sampling states are static; ids need bytes of their own (`http` owns header bytes).
    fn to_value(self) -> HeaderValue {
        match self.as_bytes() {
            b"0" => HeaderValue::from_static("0"),
            b"1" => HeaderValue::from_static("1"),
            b"d" => HeaderValue::from_static("d"),
            _ => owned_value(self),
        }
    }
}

impl AsRef<[u8]> for Text {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// The B3 headers a request should carry, by bit position; every other B3 name goes.
#[derive(Default)]
struct Wanted([Option<Text>; 6]);

impl Wanted {
    fn set(&mut self, bit: u8, bytes: &[u8]) {
        let mut text = Text {
            bytes: [0; SINGLE_MAX],
            len: bytes.len(),
        };
        text.bytes[..bytes.len()].copy_from_slice(bytes);
        self.0[slot(bit)] = Some(text);
    }

    fn set_multi_sampling(&mut self, sampling: Sampling) {
        match sampling {
            Sampling::Defer => {}
            Sampling::Deny => self.set(SAMPLED_BIT, b"0"),
            Sampling::Accept => self.set(SAMPLED_BIT, b"1"),
            // Debug implies accept: no x-b3-sampled beside it (spec).
            Sampling::Debug => self.set(FLAGS_BIT, b"1"),
        }
    }

    /// Makes `headers` hold exactly the wanted B3 headers, in one pass over them: hashing a
    /// custom header name costs more than comparing every name once.
    ///
    /// A proxy forwarding B3 finds the names already there, and most of the values too: a
    /// value that is already right stays (the trace id, going on), and the span id it
    /// replaces moves over to be the parent id, as a child of the incoming context has it.
    /// Only values that are really new are allocated.
    fn replace(&mut self, headers: &mut HeaderMap) {
        let mut written = 0u8;
        // Names to remove: unwanted, undefined `x-b3-*`, or repeated after the written value.
        let mut stale = 0u8;
        let mut old_span_id = None;
        // A new parent id for a name that is there: written last, maybe with the old span id.
        let mut parent_to_write = None;
        for (name, value) in headers.iter_mut() {
            let bit = bit_of(name);
            if bit == 0 {
                continue;
            }
            if bit == UNKNOWN_BIT || written & bit != 0 {
                stale |= bit;
                continue;
            }
            let Some(text) = self.0[slot(bit)].take() else {
                stale |= bit;
                continue;
            };
            written |= bit;
            if value.as_bytes() == text.as_bytes() {
                continue;
            }
            if bit == PARENT_SPAN_BIT {
                parent_to_write = Some(text);
                continue;
            }
            let replaced = std::mem::replace(value, text.to_value());
            if bit == SPAN_ID_BIT {
                old_span_id = Some(replaced);
            }
        }
        if stale != 0 {
            remove_stale(headers, stale, written);
        }
        let parent = parent_to_write.or_else(|| self.0[slot(PARENT_SPAN_BIT)].take());
        if let Some(text) = parent {
            let value = match old_span_id {
                Some(old) if old.as_bytes() == text.as_bytes() => old,
                _ => text.to_value(),
            };
            headers.insert(PARENT_SPAN_ID, value);
        }
        for (name, text) in NAMES.iter().zip(&mut self.0) {
            if let Some(text) = text.take() {
                headers.insert(name, text.to_value());
            }
        }
    }
}

fn slot(bit: u8) -> usize {
    bit.trailing_zeros() as usize
}

/// Removes the names of `stale` bits; a name also in `written` keeps its first value only.
/// Rare (a format change or a repeated header), so allocating is fine.
fn remove_stale(headers: &mut HeaderMap, stale: u8, written: u8) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| bit_of(name) & stale != 0)
        .cloned()
        .collect();
    for name in names {
        if written & bit_of(&name) != 0 {
            let first = headers.get(&name).cloned();
            headers.insert(name, first.expect("a written name has a value"));
        } else {
            headers.remove(name);
        }
    }
}

/// The first value of each `x-b3-*` header.
#[derive(Default)]
pub(crate) struct Found<'a> {
    trace_id: Option<&'a HeaderValue>,
    span_id: Option<&'a HeaderValue>,
    parent_id: Option<&'a HeaderValue>,
    sampled: Option<&'a HeaderValue>,
    flags: Option<&'a HeaderValue>,
}

/// Up to this many header values, one pass over them beats hashed look-ups of the five
/// `x-b3-*` names (`http` hashes a name byte by byte).
pub(crate) const SCAN_MAX: usize = 32;

impl<'a> Found<'a> {
    /// The `x-b3-*` headers, by name.
    pub(crate) fn look_up(headers: &'a HeaderMap) -> Found<'a> {
        Found {
            trace_id: headers.get(&TRACE_ID),
            span_id: headers.get(&SPAN_ID),
            parent_id: headers.get(&PARENT_SPAN_ID),
            sampled: headers.get(&SAMPLED),
            flags: headers.get(&FLAGS),
        }
    }

    /// The `x-b3-*` headers, in one pass.
    fn scan(headers: &'a HeaderMap) -> Found<'a> {
        let mut found = Found::default();
        for (name, value) in headers {
            found.note(name.as_str(), value);
        }
        found
    }

    /// Keeps `value` if `name` is an `x-b3-*` header not seen yet. (In a pass over a
    /// `HeaderMap`, all values of a name come together, its first value, what `get`
    /// answers, first.)
    pub(crate) fn note(&mut self, name: &str, value: &'a HeaderValue) {
        let slot = match name.strip_prefix("x-b3-") {
            Some("traceid") => &mut self.trace_id,
            Some("spanid") => &mut self.span_id,
            Some("parentspanid") => &mut self.parent_id,
            Some("sampled") => &mut self.sampled,
            Some("flags") => &mut self.flags,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }
}

const B3_BIT: u8 = 1;
const TRACE_ID_BIT: u8 = 1 << 1;
const SPAN_ID_BIT: u8 = 1 << 2;
const PARENT_SPAN_BIT: u8 = 1 << 3;
const SAMPLED_BIT: u8 = 1 << 4;
const FLAGS_BIT: u8 = 1 << 5;
/// Names starting with `x-b3-` that B3 does not define.
const UNKNOWN_BIT: u8 = 1 << 6;
/// The defined names, by bit position.
static NAMES: [HeaderName; 6] = [B3, TRACE_ID, SPAN_ID, PARENT_SPAN_ID, SAMPLED, FLAGS];

fn bit_of(name: &HeaderName) -> u8 {
    let name = name.as_str();
    match name.strip_prefix("x-b3-") {
        Some("traceid") => TRACE_ID_BIT,
        Some("spanid") => SPAN_ID_BIT,
        Some("parentspanid") => PARENT_SPAN_BIT,
        Some("sampled") => SAMPLED_BIT,
        Some("flags") => FLAGS_BIT,
        Some(_) => UNKNOWN_BIT,
        None if name == "b3" => B3_BIT,
        None => 0,
    }
}

const SAMPLING_BAD: &str = "b3 sampling state is not 0, 1 or d";
const TRACE_BAD: &str = "trace id is not 16 or 32 lowercase hex characters";
const TRACE_ZERO: &str = "trace id is all zeros";
const SPAN_BAD: &str = "span id is not 16 lowercase hex characters";
const SPAN_ZERO: &str = "span id is all zeros";
const PARENT_BAD: &str = "parent id is not 16 lowercase hex characters";
const PARENT_ZERO: &str = "parent id is all zeros";

/// `{trace}-{span}[-{sampling}[-{parent}]]`, or a sampling state alone.
fn parse_single(value: &[u8]) -> Result<Extracted, Rejected> {
    match value {
        [] => return Err(Rejected("b3 is empty")),
        [state] => return Ok(Extracted::Sampling(sampling_from(*state)?)),
        _ => {}
    }
    // Fields by position, not by searching for hyphens: ids have fixed widths.
    let trace_len = match (value.get(16), value.get(32)) {
        (Some(b'-'), _) => 16,
        (_, Some(b'-')) => 32,
        _ if value.len() == 16 || value.len() == 32 => return Err(Rejected("b3 has no span id")),
        _ => return Err(Rejected(TRACE_BAD)),
    };
    let trace_id = trace_id_from(&value[..trace_len])?;
    let (span_id, tail) = match value[trace_len + 1..].split_at_checked(16) {
        Some((span_id, [])) => (span_id, None),
        Some((span_id, [b'-', tail @ ..])) => (span_id, Some(tail)),
        _ => return Err(Rejected(SPAN_BAD)),
    };
    let span_id = span_id_from(span_id, SPAN_BAD, SPAN_ZERO)?;
    let parent_from = |parent| span_id_from(parent, PARENT_BAD, PARENT_ZERO);
    let (sampling, parent_id) = match tail {
        None => (Sampling::Defer, None),
        Some([] | [b'-', ..]) => return Err(Rejected("b3 has an empty field")),
        Some([state]) => (sampling_from(*state)?, None),
        Some([state, b'-', parent @ ..]) => (sampling_from(*state)?, Some(parent_from(parent)?)),
        // A parent without a sampling field: defer (Brave writes and reads this).
        Some(parent) if parent.len() == 16 => (Sampling::Defer, Some(parent_from(parent)?)),
        Some(tail) if tail.get(16) == Some(&b'-') => {
            return Err(Rejected("b3 has a field after the parent id"))
        }
        Some(_) => return Err(Rejected(SAMPLING_BAD)),
    };
    Ok(Extracted::Context(TraceContext {
        trace_id,
        span_id,
        parent_id,
        sampling,
    }))
}

fn sampling_from(state: u8) -> Result<Sampling, Rejected> {
    match state {
        b'0' => Ok(Sampling::Deny),
        b'1' => Ok(Sampling::Accept),
        b'd' => Ok(Sampling::Debug),
        _ => Err(Rejected(SAMPLING_BAD)),
    }
}

fn sampling_char(sampling: Sampling) -> Option<&'static str> {
    match sampling {
        Sampling::Defer => None,
        Sampling::Deny => Some("0"),
        Sampling::Accept => Some("1"),
        Sampling::Debug => Some("d"),
    }
}

fn trace_id_from(hex: &[u8]) -> Result<TraceId, Rejected> {
    match hex.len() {
        16 => {
            let low = hex_u64(hex).ok_or(Rejected(TRACE_BAD))?;
            std::num::NonZeroU64::new(low)
                .map(TraceId::Short)
                .ok_or(Rejected(TRACE_ZERO))
        }
        32 => {
            let (high, low) = hex.split_at(16);
            let high = hex_u64(high).ok_or(Rejected(TRACE_BAD))?;
            let low = hex_u64(low).ok_or(Rejected(TRACE_BAD))?;
            if high == 0 && low == 0 {
                return Err(Rejected(TRACE_ZERO));
            }
            Ok(TraceId::Long(high, low))
        }
        _ => Err(Rejected(TRACE_BAD)),
    }
}

fn span_id_from(hex: &[u8], bad: &'static str, zero: &'static str) -> Result<SpanId, Rejected> {
    if hex.len() != 16 {
        return Err(Rejected(bad));
    }
    SpanId::new(hex_u64(hex).ok_or(Rejected(bad))?).ok_or(Rejected(zero))
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// 16 lowercase hex characters as a number, eight at a time.
pub(crate) fn hex_u64(hex: &[u8]) -> Option<u64> {
    let hex: &[u8; 16] = hex.try_into().ok()?;
    let high = hex_u32(u64::from_be_bytes(*hex.first_chunk()?))?;
    let low = hex_u32(u64::from_be_bytes(*hex.last_chunk()?))?;
    Some((u64::from(high) << 32) | u64::from(low))
}

/// Eight lowercase hex characters, the first in the most significant byte, as a number.
fn hex_u32(chars: u64) -> Option<u32> {
    // Byte-wise without carries between bytes, as every byte is below 0x80: the high bit of
    // `byte + 0x80 - lo` is set where byte >= lo, and of `byte + 0x7f - hi` where byte > hi.
    if chars & HIGH_BITS != 0 {
        return None;
    }
    let at_least = |lo: u8| chars + ONES * u64::from(0x80 - lo);
    let above = |hi: u8| chars + ONES * u64::from(0x7f - hi);
    let digit = at_least(b'0') & !above(b'9');
    let letter = at_least(b'a') & !above(b'f');
    if (digit | letter) & HIGH_BITS != HIGH_BITS {
        return None;
    }
    // '0'..='9' are 0x30..=0x39 and 'a'..='f' 0x61..=0x66: the low nibble, plus 9 for a
    // letter (bit 6).
    let nibbles = (chars & (ONES * 0x0f)) + ((chars >> 6) & ONES) * 9;
    // Pack the eight nibbles, one per byte, into 32 bits.
    let packed = (nibbles | (nibbles >> 4)) & 0x00ff_00ff_00ff_00ff;
    let packed = (packed | (packed >> 8)) & 0x0000_ffff_0000_ffff;
    let packed = (packed | (packed >> 16)) & 0x0000_0000_ffff_ffff;
    Some(packed as u32)
}

/// Eight lowercase hex characters of `value`, the first in the most significant byte.
fn hex_chars(value: u32) -> u64 {
    // Spread the eight nibbles, one per byte.
    let x = u64::from(value);
    let x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    let x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    let x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    // '0' + n below 10, 'a' + n - 10 from 10 on; the high bit of n + 0x76 is set from 10 on.
    let letters = ((x + ONES * 0x76) >> 7) & ONES;
    x + ONES * u64::from(b'0') + letters * u64::from(b'a' - b'0' - 10)
}

/// `value` as 16 lowercase hex characters at the start of `buffer`.
#[inline]
pub(crate) fn put_hex(buffer: &mut [u8], value: u64) {
    buffer[..8].copy_from_slice(&hex_chars((value >> 32) as u32).to_be_bytes());
    buffer[8..16].copy_from_slice(&hex_chars(value as u32).to_be_bytes());
}

/// The trace id as hex at the start of `buffer`; answers its length.
#[inline]
pub(crate) fn put_trace_id(buffer: &mut [u8], trace_id: TraceId) -> usize {
    match trace_id {
        TraceId::Short(low) => {
            put_hex(buffer, low.get());
            16
        }
        TraceId::Long(high, low) => {
            put_hex(buffer, high);
            put_hex(&mut buffer[16..], low);
            32
        }
    }
}

fn write_single<'a>(buffer: &'a mut [u8; SINGLE_MAX], context: &TraceContext) -> &'a [u8] {
    let mut len = put_trace_id(buffer, context.trace_id);
    buffer[len] = b'-';
    put_hex(&mut buffer[len + 1..], context.span_id.get());
    len += 17;
    if let Some(state) = sampling_char(context.sampling) {
        buffer[len] = b'-';
        buffer[len + 1] = state.as_bytes()[0];
        len += 2;
    }
    if let Some(parent) = context.parent_id {
        buffer[len] = b'-';
        put_hex(&mut buffer[len + 1..], parent.get());
        len += 17;
    }
    &buffer[..len]
}

const HEX_IS_VALID: &str = "hex and hyphens are a valid header value";

/// An id as a header value (lowercase hex and hyphens, always valid), taking `bytes` over:
/// one allocation, which clones share. A value copied from a slice would be allocated again,
/// to be shared, the first time it is cloned, as a proxy does to keep a request for a retry.
///
/// Marked sensitive, which HTTP/2 encodes as "never indexed": an id is new on every hop, so
/// entering it in the HPACK table would only cost time and evict the headers that do repeat.
pub(crate) fn owned_value(bytes: impl AsRef<[u8]> + Send + 'static) -> HeaderValue {
    let bytes = bytes::Bytes::from_owner(bytes);
    let mut value = HeaderValue::from_maybe_shared(bytes).expect(HEX_IS_VALID);
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious parser, to check the eight-at-a-time one against.
    fn naive(hex: &[u8]) -> Option<u64> {
        let hex = std::str::from_utf8(hex).ok()?;
        let lower = hex.len() == 16 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        lower.then(|| u64::from_str_radix(hex, 16).unwrap())
    }

    #[test]
    fn injected_ids_are_never_indexed_and_sampling_states_are_static() {
        let context = TraceContext {
            trace_id: TraceId::from_hex("80f198ee56343ba864fe8b2a57d3eff7").unwrap(),
            span_id: SpanId::from_hex("e457b5a2e4d86bd1").unwrap(),
            parent_id: Some(SpanId::from_hex("05e3ac9a4f6e3b90").unwrap()),
            sampling: Sampling::Accept,
        };
        let mut headers = HeaderMap::new();
        inject(&context, Format::Both, &mut headers);
        for (name, text) in [
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("x-b3-spanid", "e457b5a2e4d86bd1"),
            ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
            (
                "b3",
                "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
            ),
        ] {
            let value = &headers[name];
            assert_eq!(value, text);
            assert!(value.is_sensitive(), "{name}");
            // A clone (as a proxy keeps for a retry) is the same value.
            assert_eq!(value.clone(), text);
        }
        assert_eq!(headers["x-b3-sampled"], "1");
        assert!(!headers["x-b3-sampled"].is_sensitive());
    }

    #[test]
    fn hex_parses_like_the_obvious_parser() {
        let mut state = 0x243f_6a88_85a3_08d3u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let value = next();
            let text = format!("{value:016x}");
            assert_eq!(hex_u64(text.as_bytes()), Some(value));
            let mut buffer = [0u8; 16];
            put_hex(&mut buffer, value);
            assert_eq!(&buffer, text.as_bytes());
            // Every byte value at a random position.
            let at = (next() % 16) as usize;
            for byte in 0..=255u8 {
                let mut bytes = *text.as_bytes().first_chunk::<16>().unwrap();
                bytes[at] = byte;
                assert_eq!(hex_u64(&bytes), naive(&bytes), "{bytes:?}");
            }
        }
        for text in ["0000000000000000", "ffffffffffffffff", "0123456789abcdef"] {
            assert_eq!(hex_u64(text.as_bytes()), naive(text.as_bytes()));
        }
        for bad in [
            "",
            "0",
            "0123456789abcde",
            "0123456789abcdef0",
            "0123456789ABCDEF",
        ] {
            assert_eq!(hex_u64(bad.as_bytes()), None, "{bad}");
        }
    }
}
