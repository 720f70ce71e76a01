//! B3 and W3C Trace Context together, as the layers and `functrace-sidecar` read and write
//! them.
//!
//! [`extract`] reads both standards ([`crate::b3`], [`crate::w3c`]); each one's malformed
//! headers are ignored whole, as if absent. What it answers ([`Received`]):
//!
//! 1. Only one standard usable: its context.
//! 2. Both, and they agree (the same trace id, a 64-bit B3 id read as 128 bits with a zero
//!    high half, and B3's span id is `traceparent`'s parent id): B3's context, which keeps
//!    what W3C cannot say (the parent id, defer and debug, a 64-bit id's width). The
//!    `tracestate` goes along.
//! 3. Both, and they disagree: B3 still wins, and the `traceparent` is not used at all; the
//!    next hop gets B3's context in both standards (so the disagreement ends there). The
//!    `tracestate` goes along only when the trace ids are the same (vendors' state of the
//!    same trace); of another trace, it is dropped.
//! 4. A B3 sampling decision alone (`b3: 0`) beside a valid `traceparent`: the
//!    `traceparent`'s ids under B3's decision.
//! 5. Neither: nothing (a new trace starts).
//!
//! [`Propagation`] says which standards go to the next hop. [`Propagation::Same`], the
//! default, writes the ones the request came in: B3 in, B3 out; `traceparent` in,
//! `traceparent` out; both in, both out; neither, B3. Writing replaces every header of both
//! standards: those of a standard not written are removed.

use functrace::TraceContext;
use http::header::{HeaderMap, HeaderValue};

use crate::b3::{self, Extracted, Format};
use crate::w3c;

/// Which standards carry the trace context to the next hop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Propagation {
    /// The standards the request being served came in (both when both did); B3 when it
    /// came with neither, or outside a request.
    #[default]
    Same,
    /// B3 only.
    B3,
    /// W3C Trace Context only (`traceparent`, `tracestate`).
    W3c,
    /// Both, for receivers of either kind.
    Both,
}

/// A set of the two standards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Standards {
    /// B3, single or multiple headers.
    pub b3: bool,
    /// W3C Trace Context.
    pub w3c: bool,
}

impl Standards {
    /// Neither.
    pub const NONE: Standards = Standards {
        b3: false,
        w3c: false,
    };
    /// B3 only.
    pub const B3: Standards = Standards {
        b3: true,
        w3c: false,
    };
    /// W3C only.
    pub const W3C: Standards = Standards {
        b3: false,
        w3c: true,
    };
    /// Both.
    pub const BOTH: Standards = Standards {
        b3: true,
        w3c: true,
    };
}

impl Propagation {
    /// The standards to write for a request whose context came in `came_in`.
    pub fn standards(self, came_in: Standards) -> Standards {
        match self {
            Propagation::Same if came_in != Standards::NONE => came_in,
            Propagation::Same | Propagation::B3 => Standards::B3,
            Propagation::W3c => Standards::W3C,
            Propagation::Both => Standards::BOTH,
        }
    }
}

/// What a request's trace headers say, both standards read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The context, or a sampling decision alone, to run under.
    pub extracted: Extracted,
    /// The standards that carried it: none when nothing usable came.
    pub came_in: Standards,
    /// The `tracestate` to carry on with the extracted context's trace.
    pub tracestate: Option<HeaderValue>,
    /// The standards whose headers were there at all, valid or not: what writing replaces.
    pub seen: Standards,
}

/// Reads B3 and W3C Trace Context from request headers (the rules are in the module docs).
/// Allocates nothing, except a `tracestate` that came in several fields.
pub fn extract(headers: &HeaderMap) -> Received {
    let (b3, w3c) = if headers.len() > b3::SCAN_MAX {
        (b3::extract(headers), w3c::extract(headers))
    } else {
        // One pass over the headers rather than a hashed look-up of each name: most
        // requests have a few headers, and `http` hashes a name byte by byte.
        let (mut single, mut multi, mut traceparent) = (None, b3::Found::default(), None);
        for (name, value) in headers {
            match name.as_str() {
                "b3" => single = single.or(Some(value)),
                "traceparent" => traceparent = traceparent.or(Some(value)),
                name => multi.note(name, value),
            }
        }
        (
            b3::from_found(single, &multi),
            w3c::extract_from(traceparent, headers),
        )
    };
    let seen = Standards {
        b3: !matches!(b3, Ok(Extracted::None)),
        w3c: !matches!(w3c, Ok(None)),
    };
    let b3 = b3.unwrap_or(Extracted::None);
    let (extracted, came_in, tracestate) = match (b3, w3c.ok().flatten()) {
        (Extracted::Context(context), Some(parent)) => {
            let same_trace = w3c::wide(context.trace_id) == w3c::wide(parent.context.trace_id);
            let tracestate = parent.tracestate.filter(|_| same_trace);
            (Extracted::Context(context), Standards::BOTH, tracestate)
        }
        (Extracted::Sampling(sampling), Some(parent)) => (
            Extracted::Context(TraceContext {
                sampling,
                ..parent.context
            }),
            Standards::BOTH,
            parent.tracestate,
        ),
        (Extracted::None, Some(parent)) => (
            Extracted::Context(parent.context),
            Standards::W3C,
            parent.tracestate,
        ),
        (Extracted::None, None) => (Extracted::None, Standards::NONE, None),
        (extracted, None) => (extracted, Standards::B3, None),
    };
    Received {
        extracted,
        came_in,
        tracestate,
        seen,
    }
}

/// Whether B3 and W3C headers say the same: the same trace (a 64-bit B3 id as 128 bits)
/// and B3's span id is `traceparent`'s parent id.
pub fn agree(b3: &TraceContext, w3c: &TraceContext) -> bool {
    w3c::wide(b3.trace_id) == w3c::wide(w3c.trace_id) && b3.span_id == w3c.span_id
}

impl Received {
    /// The `tracestate` that goes with `context`: the one that came, when `context` is of
    /// the same trace.
    pub fn tracestate_for(&self, context: &TraceContext) -> Option<&HeaderValue> {
        match self.extracted {
            Extracted::Context(came) if came.trace_id == context.trace_id => {
                self.tracestate.as_ref()
            }
            _ => None,
        }
    }

    /// Writes `context` for the next hop in the standards `propagation` asks for (resolved
    /// against those the request came in), B3 in `format`; removes the headers of a
    /// standard not written, when the request had any. Allocates only the id values.
    pub fn inject(
        &self,
        context: &TraceContext,
        propagation: Propagation,
        format: Format,
        headers: &mut HeaderMap,
    ) {
        write(
            context,
            propagation.standards(self.came_in),
            format,
            self.tracestate_for(context),
            self.seen,
            headers,
        );
    }
}

impl Received {
    /// The headers [`Received::inject`] writes, each given to `field` as name and value,
    /// with no `HeaderMap`: for a writer of raw HTTP/1.1 fields that leaves out every trace
    /// header that came in (so that nothing is left to replace or remove). Allocates nothing.
    pub fn fields(
        &self,
        context: &TraceContext,
        propagation: Propagation,
        format: Format,
        mut field: impl FnMut(&'static str, &[u8]),
    ) {
        let standards = propagation.standards(self.came_in);
        if standards.b3 {
            b3::fields(context, format, &mut field);
        }
        if standards.w3c {
            w3c::fields(context, self.tracestate_for(context), &mut field);
        }
    }
}

/// Writes `context` in `standards` (B3 in `format`, `tracestate` beside `traceparent`),
/// and removes the headers of a standard not written.
pub fn inject(
    context: &TraceContext,
    standards: Standards,
    format: Format,
    tracestate: Option<&HeaderValue>,
    headers: &mut HeaderMap,
) {
    write(
        context,
        standards,
        format,
        tracestate,
        Standards::BOTH,
        headers,
    );
}

/// [`inject`], removing the headers of a standard not written only where `present` says
/// the request may have some (a look for them costs a hashed look-up of each name).
fn write(
    context: &TraceContext,
    standards: Standards,
    format: Format,
    tracestate: Option<&HeaderValue>,
    present: Standards,
    headers: &mut HeaderMap,
) {
    if standards.b3 {
        b3::inject(context, format, headers);
    } else if present.b3 {
        b3::remove(headers);
    }
    if standards.w3c {
        w3c::inject(context, tracestate, headers);
    } else if present.w3c {
        w3c::remove(headers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use functrace::Sampling;

    /// Headers of every kind: both standards agreeing, disagreeing, malformed, alone.
    fn cases() -> Vec<Vec<(&'static str, &'static str)>> {
        const PARENT: &str = "00-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-01";
        const TRACE: &str = "463ac35c9f6413ad48485a3953bb6124";
        vec![
            vec![],
            vec![("traceparent", PARENT), ("tracestate", "a=1")],
            vec![("b3", "463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-1")],
            vec![
                ("b3", "garbage"),
                ("x-b3-traceid", TRACE),
                ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ],
            vec![
                ("x-b3-traceid", TRACE),
                ("x-b3-spanid", "00f067aa0ba902b7"),
                ("x-b3-sampled", "1"),
                ("traceparent", PARENT),
                ("tracestate", "a=1"),
            ],
            vec![("b3", "0"), ("traceparent", PARENT)],
            vec![("traceparent", "00-bad"), ("x-b3-sampled", "true")],
        ]
    }

    #[test]
    fn fields_are_what_inject_writes_into_no_headers() {
        let child = TraceContext::new_root(Sampling::Accept).child();
        for case in cases() {
            let mut came = HeaderMap::new();
            for (name, value) in &case {
                came.append(*name, HeaderValue::from_static(value));
            }
            let received = extract(&came);
            let context = match received.extracted {
                Extracted::Context(context) => context,
                _ => child,
            };
            for propagation in [
                Propagation::Same,
                Propagation::B3,
                Propagation::W3c,
                Propagation::Both,
            ] {
                for format in [Format::Multi, Format::Single, Format::Both] {
                    let mut injected = HeaderMap::new();
                    received.inject(&context, propagation, format, &mut injected);
                    let mut injected: Vec<(String, Vec<u8>)> = injected
                        .iter()
                        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
                        .collect();
                    let mut fields = Vec::new();
                    received.fields(&context, propagation, format, |name, value| {
                        fields.push((name.to_owned(), value.to_vec()))
                    });
                    injected.sort();
                    fields.sort();
                    assert_eq!(fields, injected, "{case:?} {propagation:?} {format:?}");
                }
            }
        }
    }

    #[test]
    fn one_pass_and_look_ups_read_the_same() {
        for case in cases() {
            let mut few = HeaderMap::new();
            for (name, value) in &case {
                few.append(*name, HeaderValue::from_static(value));
            }
            let mut many = few.clone();
            for i in 0..=b3::SCAN_MAX {
                many.insert(
                    http::HeaderName::try_from(format!("x-other-{i}")).unwrap(),
                    HeaderValue::from_static("v"),
                );
            }
            assert!(many.len() > b3::SCAN_MAX);
            assert_eq!(extract(&few), extract(&many), "{case:?}");
            assert_eq!(b3::extract(&few), b3::extract(&many), "{case:?}");
        }
    }
}
