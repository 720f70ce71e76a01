//! W3C Trace Context: the `traceparent` and `tracestate` headers, as specified by the
//! [W3C Recommendation](https://www.w3.org/TR/trace-context/) (Level 1, version `00`).
//!
//! - [`extract`] reads `traceparent` (and `tracestate` beside it): a trace context, nothing
//!   (no `traceparent` at all), or [`Rejected`] with a reason. Malformed input is rejected
//!   whole, never repaired.
//! - [`inject`] writes a trace context as `traceparent`, with a `tracestate` to carry or none,
//!   replacing whatever was there.
//!
//! ```
//! use functrace::{Sampling, TraceContext};
//! use functrace_mesh::w3c;
//! use http::HeaderMap;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(
//!     "traceparent",
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap(),
//! );
//! headers.insert("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
//! let parent = w3c::extract(&headers).unwrap().unwrap();
//! assert_eq!(parent.context.span_id.to_string(), "00f067aa0ba902b7");
//! assert_eq!(parent.context.sampling, Sampling::Accept);
//! assert_eq!(parent.tracestate.unwrap(), "congo=t61rcWkgMzE");
//!
//! let child = parent.context.child();
//! let mut next = HeaderMap::new();
//! w3c::inject(&child, None, &mut next);
//! assert!(next["traceparent"].to_str().unwrap().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
//! ```
//!
//! # Decisions
//!
//! Extraction:
//! 1. `traceparent` is `{version}-{trace-id}-{parent-id}-{flags}`: 2, 32, 16 and 2 *lowercase*
//!    hex characters. Uppercase hex, other characters, other lengths, an all-zero trace id or
//!    parent id, and version `ff` are rejected. So is anything after the flags in version `00`.
//! 2. A later version (`01` to `fe`) is read as the specification asks: the four fields of
//!    version `00` at the same places, and after the flags either the end or a `-` and whatever
//!    that version adds, which is ignored. It is written back as version `00`.
//! 3. The trace id is always 128 bits ([`TraceId::Long`]), even when its high half is zero.
//!    The parent id is the caller's span, so it becomes the context's span id (the span a
//!    server joins) and the context has no parent id of its own.
//! 4. The `sampled` flag (bit 0) is the sampling decision: set is [`Sampling::Accept`], clear
//!    is [`Sampling::Deny`]; W3C has no "defer" and no "debug". Other flag bits are ignored
//!    (the specification: they are unknown to a version `00` reader).
//! 5. When `traceparent` is repeated, the first value is read (as for B3).
//! 6. `tracestate` is read only beside a valid `traceparent`. It is kept as it came (its
//!    repeated fields joined with `,`, as HTTP combines them) when every list member is
//!    `key=value` per the specification's grammar (empty members and the optional whitespace
//!    around commas allowed), with at most 32 members and no key twice. Otherwise it is
//!    dropped, and the `traceparent` still used (the specification). One without any member
//!    (empty, or only commas) is dropped too.
//!
//! Injection:
//! 7. `traceparent` is written as version `00`, flags `01` for [`Sampling::Accept`] and
//!    [`Sampling::Debug`], `00` for [`Sampling::Deny`] and [`Sampling::Defer`]. A 64-bit B3
//!    trace id ([`TraceId::Short`]) is written left-padded with 16 zeros, as OpenTelemetry's
//!    B3 propagators read one; read back, it is the 128-bit id with a zero high half.
//! 8. The given `tracestate` replaces the old one; none removes it.
//!
//! # Differences from OpenTelemetry's propagator (the Recommendation wins)
//!
//! `tests/w3c_python.rs` runs the vectors of `tests/w3c_support` through Python's
//! `opentelemetry-api` 1.45 (`TraceContextTextMapPropagator`): it reads every one as we do,
//! `tracestate` members included, and writes the same `traceparent` and `tracestate` for the
//! same contexts, except (each asserted there):
//! - Its pattern allows spaces and tabs before the version and after version `00`'s flags;
//!   the Recommendation's grammar has none, so they are rejected here. (HTTP servers strip
//!   such whitespace from header values before either reads them.)
//!
//! Beyond the table, it also rejects a `traceparent` longer than 512 characters (a later
//! version's added fields) and drops a `tracestate` longer than 8192; neither is limited here.
//!
//! # Cost
//!
//! Extraction looks `traceparent` up by name and parses it in place; a `tracestate` value is
//! shared with the request (a reference count), and allocated only when it came in several
//! fields. Injection allocates the one `traceparent` value.

use std::fmt;

use functrace::{Sampling, TraceContext, TraceId};
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::b3::{hex_u64, owned_value, put_hex};

/// The `traceparent` header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The `tracestate` header.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// `00-{32}-{16}-{2}`.
const TRACEPARENT_LEN: usize = 55;
/// Most list members a `tracestate` may have.
const TRACESTATE_MEMBERS: usize = 32;

/// A caller's context, as `traceparent` and `tracestate` carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parent {
    /// The trace, the caller's span (as the span id) and the sampled flag.
    pub context: TraceContext,
    /// The `tracestate` to carry on, when it was there and valid.
    pub tracestate: Option<HeaderValue>,
}

/// Why a `traceparent` was rejected.
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
        write!(f, "malformed traceparent: {}", self.0)
    }
}

impl std::error::Error for Rejected {}

/// Reads `traceparent` and `tracestate` (see the module docs for every rule): `Ok(None)`
/// when there is no `traceparent`.
pub fn extract(headers: &HeaderMap) -> Result<Option<Parent>, Rejected> {
    extract_from(headers.get(&TRACEPARENT), headers)
}

/// [`extract`], with the first `traceparent` value already found in `headers`.
pub(crate) fn extract_from(
    traceparent: Option<&HeaderValue>,
    headers: &HeaderMap,
) -> Result<Option<Parent>, Rejected> {
    let Some(traceparent) = traceparent else {
        return Ok(None);
    };
    let context = parse_traceparent(traceparent.as_bytes())?;
    Ok(Some(Parent {
        context,
        tracestate: tracestate_of(headers),
    }))
}

/// Reads one `traceparent` value.
pub fn parse_traceparent(value: &[u8]) -> Result<TraceContext, Rejected> {
    if value.len() < TRACEPARENT_LEN {
        return Err(Rejected("shorter than 55 characters"));
    }
    let (head, tail) = value.split_at(TRACEPARENT_LEN);
    let version = hex_byte(&head[0..2]).ok_or(Rejected("version is not 2 lowercase hex"))?;
    if version == 0xff {
        return Err(Rejected("version ff is invalid"));
    }
    if version == 0 && !tail.is_empty() {
        return Err(Rejected("version 00 is exactly 55 characters"));
    }
    if !tail.is_empty() && tail[0] != b'-' {
        return Err(Rejected("no - after the flags"));
    }
    if head[2] != b'-' || head[35] != b'-' || head[52] != b'-' {
        return Err(Rejected("fields are not separated by -"));
    }
    const TRACE_BAD: &str = "trace-id is not 32 lowercase hex characters";
    let high = hex_u64(&head[3..19]).ok_or(Rejected(TRACE_BAD))?;
    let low = hex_u64(&head[19..35]).ok_or(Rejected(TRACE_BAD))?;
    if high == 0 && low == 0 {
        return Err(Rejected("trace-id is all zeros"));
    }
    let parent =
        hex_u64(&head[36..52]).ok_or(Rejected("parent-id is not 16 lowercase hex characters"))?;
    let span_id = functrace::SpanId::new(parent).ok_or(Rejected("parent-id is all zeros"))?;
    let flags = hex_byte(&head[53..55]).ok_or(Rejected("flags are not 2 lowercase hex"))?;
    Ok(TraceContext {
        trace_id: TraceId::Long(high, low),
        span_id,
        parent_id: None,
        sampling: if flags & 1 == 1 {
            Sampling::Accept
        } else {
            Sampling::Deny
        },
    })
}

/// Two lowercase hex characters as a number.
fn hex_byte(hex: &[u8]) -> Option<u8> {
    let digit = |byte: u8| match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    };
    Some(digit(hex[0])? << 4 | digit(hex[1])?)
}

/// The request's `tracestate`, when present and valid: its repeated fields joined by `,`.
fn tracestate_of(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut values = headers.get_all(&TRACESTATE).iter();
    let first = values.next()?;
    let value = match values.next() {
        None => first.clone(),
        // Rare: several fields, combined as HTTP says (RFC 9110, 5.3).
        Some(_) => {
            let mut joined = Vec::new();
            for (i, value) in headers.get_all(&TRACESTATE).iter().enumerate() {
                if i > 0 {
                    joined.push(b',');
                }
                joined.extend_from_slice(value.as_bytes());
            }
            HeaderValue::from_bytes(&joined).ok()?
        }
    };
    let bytes = value.as_bytes();
    // One with no list member at all says nothing: not worth carrying.
    let members = bytes
        .iter()
        .any(|&byte| !matches!(byte, b' ' | b'\t' | b','));
    (members && valid_tracestate(bytes)).then_some(value)
}

/// Whether a `tracestate` value is valid: list members `key=value` (or empty) separated by
/// commas with optional spaces and tabs, at most 32 of them, no key twice.
pub fn valid_tracestate(value: &[u8]) -> bool {
    let mut keys: [&[u8]; TRACESTATE_MEMBERS] = [&[]; TRACESTATE_MEMBERS];
    let mut count = 0;
    for member in value.split(|&byte| byte == b',') {
        let member = trim_ows(member);
        if member.is_empty() {
            continue;
        }
        let Some(eq) = member.iter().position(|&byte| byte == b'=') else {
            return false;
        };
        let (key, value) = (&member[..eq], &member[eq + 1..]);
        if !valid_key(key) || !valid_value(value) {
            return false;
        }
        if count == TRACESTATE_MEMBERS || keys[..count].contains(&key) {
            return false;
        }
        keys[count] = key;
        count += 1;
    }
    true
}

/// Without the optional whitespace (spaces and tabs) around it.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let ows = |byte: &u8| *byte == b' ' || *byte == b'\t';
    let start = bytes.iter().position(|b| !ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !ows(b))
        .map_or(start, |at| at + 1);
    &bytes[start..end]
}

fn key_char(byte: u8) -> bool {
    matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
}

/// `lcalpha 0*255(keychar)`, or `(lcalpha / DIGIT) 0*240(keychar) "@" lcalpha 0*13(keychar)`.
fn valid_key(key: &[u8]) -> bool {
    let all_key_chars = |part: &[u8]| part.iter().all(|&byte| key_char(byte));
    match key.iter().position(|&byte| byte == b'@') {
        None => {
            key.len() <= 256
                && key.first().is_some_and(u8::is_ascii_lowercase)
                && all_key_chars(key)
        }
        Some(at) => {
            let (tenant, system) = (&key[..at], &key[at + 1..]);
            (1..=241).contains(&tenant.len())
                && (tenant[0].is_ascii_lowercase() || tenant[0].is_ascii_digit())
                && all_key_chars(tenant)
                && (1..=14).contains(&system.len())
                && system[0].is_ascii_lowercase()
                && all_key_chars(system)
        }
    }
}

/// `0*255(chr) nblk-chr`: printable ASCII but `,` and `=`, spaces inside only.
fn valid_value(value: &[u8]) -> bool {
    let printable = |byte: u8| matches!(byte, 0x20..=0x7e) && byte != b',' && byte != b'=';
    (1..=256).contains(&value.len())
        && value.iter().all(|&byte| printable(byte))
        && value.last() != Some(&b' ')
}

/// `traceparent` for `context`, version `00`.
pub fn traceparent(context: &TraceContext) -> [u8; TRACEPARENT_LEN] {
    let mut text = [b'-'; TRACEPARENT_LEN];
    text[0] = b'0';
    text[1] = b'0';
    let (high, low) = wide(context.trace_id);
    put_hex(&mut text[3..], high);
    put_hex(&mut text[19..], low);
    put_hex(&mut text[36..], context.span_id.get());
    text[53] = b'0';
    text[54] = if context.sampling.is_sampled() {
        b'1'
    } else {
        b'0'
    };
    text
}

/// A trace id as 128 bits: a 64-bit one has a zero high half.
pub fn wide(trace_id: TraceId) -> (u64, u64) {
    match trace_id {
        TraceId::Short(low) => (0, low.get()),
        TraceId::Long(high, low) => (high, low),
    }
}

/// Writes `context` as `traceparent`, and `tracestate` (or removes it when `None`),
/// replacing what was there.
pub fn inject(context: &TraceContext, tracestate: Option<&HeaderValue>, headers: &mut HeaderMap) {
    let text = traceparent(context);
    let unchanged = headers
        .get(&TRACEPARENT)
        .is_some_and(|old| old.as_bytes() == text);
    if unchanged {
        // Forwarding the same context (a sidecar's inbound hop): the value stays, and only
        // repeats go.
        if headers.get_all(&TRACEPARENT).iter().nth(1).is_some() {
            let old = headers[&TRACEPARENT].clone();
            headers.insert(TRACEPARENT, old);
        }
    } else {
        headers.insert(TRACEPARENT, owned_value(text));
    }
    match tracestate {
        Some(value) => {
            headers.insert(TRACESTATE, value.clone());
        }
        None => {
            headers.remove(&TRACESTATE);
        }
    }
}

/// The headers [`inject`] writes, each given to `field` as name and value, with no
/// `HeaderMap`: for a writer of raw HTTP/1.1 fields. Allocates nothing.
pub fn fields(
    context: &TraceContext,
    tracestate: Option<&HeaderValue>,
    mut field: impl FnMut(&'static str, &[u8]),
) {
    field("traceparent", &traceparent(context));
    if let Some(value) = tracestate {
        field("tracestate", value.as_bytes());
    }
}

/// Removes `traceparent` and `tracestate`.
pub fn remove(headers: &mut HeaderMap) {
    headers.remove(&TRACEPARENT);
    headers.remove(&TRACESTATE);
}
