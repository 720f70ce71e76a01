//! The B3 vector table shared by `b3_vectors.rs` (our extraction, per the spec), `b3_otel.rs`
//! (Rust `opentelemetry-zipkin`) and `b3_python.rs` (Python `opentelemetry-propagator-b3`).
//!
//! Each row says what the spec (and so `functrace_mesh::b3`) extracts. What the two otel
//! propagators see is derived from that, except in the rows that name a documented difference
//! (listed in the `b3` module docs): there the row states what they see instead, and why.

#![allow(dead_code)] // each test crate uses part of this module

use functrace::{Sampling, TraceContext, TraceId};
use functrace_mesh::b3::{Extracted, Format};
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// A 128-bit trace id (the spec's example).
pub const T: &str = "80f198ee56343ba864fe8b2a57d3eff7";
/// Another 128-bit trace id.
pub const T2: &str = "463ac35c9f6413ad48485a3953bb6124";
/// A 64-bit trace id.
pub const T64: &str = "64fe8b2a57d3eff7";
/// A span id.
pub const S: &str = "e457b5a2e4d86bd1";
/// A parent id.
pub const P: &str = "05e3ac9a4f6e3b90";

/// What the spec says a row extracts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    Context {
        trace: String,
        span: String,
        parent: Option<String>,
        sampling: Sampling,
    },
    Sampling(Sampling),
    None,
    Rejected,
}

/// What Rust otel extracts: 32-hex trace id, span id, and its trace flags read as a sampling
/// state (deferred flag = defer, debug flag = debug, sampled flag = accept, none = deny).
pub type OtelSeen = Option<(String, String, Sampling)>;

/// What Python otel extracts: 32-hex trace id, span id, sampled flag.
pub type PythonSeen = Option<(String, String, bool)>;

pub struct Vector {
    pub name: String,
    /// In order; a repeated name is a repeated header.
    pub headers: Vec<(String, String)>,
    pub expect: Expect,
    /// A documented difference of Rust otel from the spec: what it sees, and why.
    pub otel: Option<(OtelSeen, &'static str)>,
    /// A documented difference of Python otel from the spec: what it sees, and why.
    pub python: Option<(PythonSeen, &'static str)>,
}

impl Vector {
    pub fn header_map(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    /// The value of the `b3` header when it is the only header.
    pub fn single_only(&self) -> Option<&str> {
        match &self.headers[..] {
            [(name, value)] if name.eq_ignore_ascii_case("b3") => Some(value),
            _ => None,
        }
    }

    pub fn has_single(&self) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("b3"))
    }

    pub fn has_multi(&self) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.to_ascii_lowercase().starts_with("x-b3-"))
    }

    /// What Rust otel sees when it agrees with the spec.
    pub fn otel_agreeing(&self) -> OtelSeen {
        match &self.expect {
            Expect::Context {
                trace,
                span,
                sampling,
                ..
            } => Some((pad(trace), span.clone(), *sampling)),
            // It cannot represent a sampling decision alone.
            _ => None,
        }
    }

    pub fn otel_expected(&self) -> OtelSeen {
        match &self.otel {
            Some((seen, _)) => seen.clone(),
            None => self.otel_agreeing(),
        }
    }

    /// What Python otel sees when it agrees with the spec.
    pub fn python_agreeing(&self) -> PythonSeen {
        match &self.expect {
            Expect::Context {
                trace,
                span,
                sampling,
                ..
            } => Some((pad(trace), span.clone(), sampling.is_sampled())),
            _ => None,
        }
    }

    pub fn python_expected(&self) -> PythonSeen {
        match &self.python {
            Some((seen, _)) => seen.clone(),
            None => self.python_agreeing(),
        }
    }

    fn otel_differs(mut self, seen: OtelSeen, why: &'static str) -> Vector {
        self.otel = Some((seen, why));
        self
    }

    fn python_differs(mut self, seen: PythonSeen, why: &'static str) -> Vector {
        self.python = Some((seen, why));
        self
    }
}

/// A trace id as 32 hex characters, as otel holds every trace id.
pub fn pad(trace: &str) -> String {
    format!("{trace:0>32}")
}

/// `Extracted` in the terms of `Expect`, to compare.
pub fn seen(extracted: &Result<Extracted, functrace_mesh::b3::Rejected>) -> Expect {
    match extracted {
        Ok(Extracted::Context(context)) => context_expect(context),
        Ok(Extracted::Sampling(sampling)) => Expect::Sampling(*sampling),
        Ok(Extracted::None) => Expect::None,
        Err(_) => Expect::Rejected,
    }
}

pub fn context_expect(context: &TraceContext) -> Expect {
    Expect::Context {
        trace: context.trace_id.to_string(),
        span: context.span_id.to_string(),
        parent: context.parent_id.map(|p| p.to_string()),
        sampling: context.sampling,
    }
}

pub fn trace_u128(trace_id: TraceId) -> u128 {
    match trace_id {
        TraceId::Short(low) => u128::from(low.get()),
        TraceId::Long(high, low) => u128::from(high) << 64 | u128::from(low),
    }
}

fn ctx(trace: &str, span: &str, parent: Option<&str>, sampling: Sampling) -> Expect {
    Expect::Context {
        trace: trace.into(),
        span: span.into(),
        parent: parent.map(Into::into),
        sampling,
    }
}

fn row(name: &str, headers: &[(&str, &str)], expect: Expect) -> Vector {
    Vector {
        name: name.into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        expect,
        otel: None,
        python: None,
    }
}

fn single(name: &str, value: &str, expect: Expect) -> Vector {
    row(name, &[("b3", value)], expect)
}

fn otel(trace: &str, span: &str, sampling: Sampling) -> OtelSeen {
    Some((pad(trace), span.into(), sampling))
}

fn python(trace: &str, span: &str, sampled: bool) -> PythonSeen {
    Some((pad(trace), span.into(), sampled))
}

// The reasons for documented differences, as in the `b3` module docs.
const OTEL_TRAILING: &str = "otel accepts trailing hyphens in b3";
const OTEL_NO_DEFER_PARENT: &str = "otel rejects {trace}-{span}-{parent}";
const OTEL_PARENT_UNCHECKED: &str = "otel ignores a malformed x-b3-parentspanid";
const OTEL_FLAGS_0: &str = "otel reads x-b3-flags: 0 as unsampled, overriding x-b3-sampled";
const OTEL_DEBUG_FIRST: &str = "otel reads x-b3-flags: 1 before x-b3-sampled";
const OTEL_NO_SAMPLING_ALONE: &str =
    "otel cannot extract a sampling decision alone and falls back to x-b3-*";
const OTEL_TRUE_CASE: &str = "otel accepts only lowercase true";
const OTEL_ZERO_PARENT: &str = "otel accepts an all-zero parent id";
const PY_DEFER_SAMPLED: &str = "python reads b3 without a sampling field as sampled";
const PY_LENIENT_SAMPLED: &str = "python reads any unknown sampled value as unsampled or sampled";
const PY_PARENT_UNCHECKED: &str = "python does not check the parent id";
const PY_UPPERCASE: &str = "python accepts uppercase hex";
const PY_TRAILING: &str = "python accepts trailing hyphens in b3";
const PY_NO_FALLBACK: &str = "python uses a non-empty b3 even when malformed";
const PY_FLAGS_OR_SAMPLED: &str = "python samples when either x-b3-flags is 1 or x-b3-sampled is";

pub fn vectors() -> Vec<Vector> {
    use Sampling::{Accept, Debug, Defer, Deny};
    let up = |s: &str| s.to_ascii_uppercase();
    let zeros16 = "0".repeat(16);
    let zeros32 = "0".repeat(32);
    let mut v = vec![
        // ---- Single header: the spec's examples.
        single(
            "spec: single with parent",
            &format!("{T}-{S}-1-{P}"),
            ctx(T, S, Some(P), Accept),
        ),
        single(
            "spec: single accept",
            &format!("{T}-{S}-1"),
            ctx(T, S, None, Accept),
        ),
        single(
            "spec: single debug",
            &format!("{T}-{S}-d"),
            ctx(T, S, None, Debug),
        ),
        single("spec: b3: 0 deny alone", "0", Expect::Sampling(Deny)),
        // ---- Single header: the table.
        single(
            "single T-S defers",
            &format!("{T}-{S}"),
            ctx(T, S, None, Defer),
        )
        .python_differs(python(T, S, true), PY_DEFER_SAMPLED),
        single("single T-S-0", &format!("{T}-{S}-0"), ctx(T, S, None, Deny)),
        single(
            "single T-S-0-P",
            &format!("{T}-{S}-0-{P}"),
            ctx(T, S, Some(P), Deny),
        ),
        single(
            "single T-S-d-P",
            &format!("{T}-{S}-d-{P}"),
            ctx(T, S, Some(P), Debug),
        ),
        single(
            "single 64-bit trace id stays 64-bit",
            &format!("{T64}-{S}-1"),
            ctx(T64, S, None, Accept),
        ),
        single(
            "single 64-bit trace id with parent, debug",
            &format!("{T64}-{S}-d-{P}"),
            ctx(T64, S, Some(P), Debug),
        ),
        single(
            "single 128-bit trace id with zero high half stays 128-bit",
            &format!("0000000000000000{T64}-{S}-1"),
            ctx(&format!("0000000000000000{T64}"), S, None, Accept),
        ),
        single("single 1 alone accepts", "1", Expect::Sampling(Accept)),
        single("single d alone is debug", "d", Expect::Sampling(Debug)),
        single(
            "single T-S-P: defer with parent (Brave)",
            &format!("{T}-{S}-{P}"),
            ctx(T, S, Some(P), Defer),
        )
        .otel_differs(None, OTEL_NO_DEFER_PARENT),
        // Rejected.
        single("single empty", "", Expect::Rejected),
        single("single -", "-", Expect::Rejected),
        single("single -1", "-1", Expect::Rejected),
        single("single 1-", "1-", Expect::Rejected),
        single("single q alone", "q", Expect::Rejected),
        single("single 00 alone", "00", Expect::Rejected),
        single(
            "single 15-hex trace id",
            &format!("{}-{S}-1", &T64[1..]),
            Expect::Rejected,
        ),
        single(
            "single 31-hex trace id",
            &format!("{}-{S}-1", &T[1..]),
            Expect::Rejected,
        ),
        single(
            "single 15-hex span id",
            &format!("{T}-{}-1", &S[1..]),
            Expect::Rejected,
        ),
        single(
            "single 15-hex parent id",
            &format!("{T}-{S}-1-{}", &P[1..]),
            Expect::Rejected,
        )
        .python_differs(python(T, S, true), PY_PARENT_UNCHECKED),
        single("single T alone", T, Expect::Rejected),
        single("single T-", &format!("{T}-"), Expect::Rejected),
        single("single T-S-", &format!("{T}-{S}-"), Expect::Rejected)
            .otel_differs(otel(T, S, Defer), OTEL_TRAILING)
            .python_differs(python(T, S, false), PY_TRAILING),
        single("single T-S-1-", &format!("{T}-{S}-1-"), Expect::Rejected)
            .otel_differs(otel(T, S, Accept), OTEL_TRAILING)
            .python_differs(python(T, S, true), PY_TRAILING),
        single(
            "single 33-hex trace id",
            &format!("{T}a-{S}-1"),
            Expect::Rejected,
        ),
        single(
            "single 17-hex span id",
            &format!("{T}-{S}a-1"),
            Expect::Rejected,
        ),
        single(
            "single 17-hex parent id",
            &format!("{T}-{S}-1-{P}a"),
            Expect::Rejected,
        )
        .python_differs(python(T, S, true), PY_PARENT_UNCHECKED),
        single(
            "single W3C traceparent",
            &format!("00-{T}-{S}-01"),
            Expect::Rejected,
        ),
        single("single T-S-q", &format!("{T}-{S}-q"), Expect::Rejected)
            .python_differs(python(T, S, false), PY_LENIENT_SAMPLED),
        single(
            "single T-S-true",
            &format!("{T}-{S}-true"),
            Expect::Rejected,
        )
        .python_differs(python(T, S, true), PY_LENIENT_SAMPLED),
        single(
            "single T-S-1-P-1: a field after the parent",
            &format!("{T}-{S}-1-{P}-1"),
            Expect::Rejected,
        ),
        single(
            "single T-S-P-1: a field after the parent",
            &format!("{T}-{S}-{P}-1"),
            Expect::Rejected,
        )
        .python_differs(python(T, S, false), PY_LENIENT_SAMPLED),
        single(
            "single UUID",
            "123e4567-e89b-12d3-a456-426614174000",
            Expect::Rejected,
        ),
        single(
            "single uppercase trace id",
            &format!("{}-{S}-1", up(T)),
            Expect::Rejected,
        )
        .python_differs(python(T, S, true), PY_UPPERCASE),
        single(
            "single uppercase span id",
            &format!("{T}-{}-1", up(S)),
            Expect::Rejected,
        )
        .python_differs(python(T, S, true), PY_UPPERCASE),
        single(
            "single all-zero 128-bit trace id",
            &format!("{zeros32}-{S}-1"),
            Expect::Rejected,
        ),
        single(
            "single all-zero 64-bit trace id",
            &format!("{zeros16}-{S}-1"),
            Expect::Rejected,
        ),
        single(
            "single all-zero span id",
            &format!("{T}-{zeros16}-1"),
            Expect::Rejected,
        ),
        single(
            "single all-zero parent id",
            &format!("{T}-{S}-1-{zeros16}"),
            Expect::Rejected,
        )
        .otel_differs(otel(T, S, Accept), OTEL_ZERO_PARENT)
        .python_differs(python(T, S, true), PY_PARENT_UNCHECKED),
        single(
            "single non-hex in trace id",
            &format!("{}g-{S}-1", &T[1..]),
            Expect::Rejected,
        ),
        // ---- Multiple headers: the spec's examples (mixed-case names, as in the spec).
        row(
            "spec: multi with parent",
            &[
                ("X-B3-TraceId", T),
                ("X-B3-ParentSpanId", P),
                ("X-B3-SpanId", S),
                ("X-B3-Sampled", "1"),
            ],
            ctx(T, S, Some(P), Accept),
        ),
        row(
            "spec: gRPC metadata, lowercase",
            &[
                ("x-b3-traceid", T2),
                ("x-b3-spanid", "a2fb4a1d1a96d312"),
                ("x-b3-parentspanid", "0020000000000001"),
                ("x-b3-sampled", "1"),
            ],
            ctx(T2, "a2fb4a1d1a96d312", Some("0020000000000001"), Accept),
        ),
        row(
            "spec: X-B3-Sampled: 0 alone is a deny",
            &[("X-B3-Sampled", "0")],
            Expect::Sampling(Deny),
        ),
        row(
            "spec: empty X-B3-Sampled is malformed",
            &[
                ("X-B3-TraceId", T),
                ("X-B3-SpanId", S),
                ("X-B3-Sampled", ""),
            ],
            Expect::Rejected,
        )
        .python_differs(python(T, S, false), PY_LENIENT_SAMPLED),
        row(
            "spec: X-B3-ParentSpanId: - is malformed",
            &[
                ("X-B3-TraceId", T),
                ("X-B3-SpanId", S),
                ("X-B3-ParentSpanId", "-"),
                ("X-B3-Sampled", "1"),
            ],
            Expect::Rejected,
        )
        .otel_differs(otel(T, S, Accept), OTEL_PARENT_UNCHECKED)
        .python_differs(python(T, S, true), PY_PARENT_UNCHECKED),
        // ---- Multiple headers: the table.
        row(
            "multi trace+span defers",
            &[("x-b3-traceid", T), ("x-b3-spanid", S)],
            ctx(T, S, None, Defer),
        ),
        row(
            "multi 64-bit trace id stays 64-bit",
            &[
                ("x-b3-traceid", T64),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "1"),
            ],
            ctx(T64, S, None, Accept),
        ),
        row(
            "multi Sampled: 1",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "1"),
            ],
            ctx(T, S, None, Accept),
        ),
        row(
            "multi Sampled: true",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "true"),
            ],
            ctx(T, S, None, Accept),
        ),
        row(
            "multi Sampled: True (Brave ignores case)",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "True"),
            ],
            ctx(T, S, None, Accept),
        )
        .otel_differs(None, OTEL_TRUE_CASE),
        row(
            "multi Sampled: 0",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "0"),
            ],
            ctx(T, S, None, Deny),
        ),
        row(
            "multi Sampled: false",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "false"),
            ],
            ctx(T, S, None, Deny),
        ),
        row(
            "multi Flags: 1 is debug",
            &[("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-flags", "1")],
            ctx(T, S, None, Debug),
        ),
        row(
            "multi Flags: 1 with Sampled: 0 is debug",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "0"),
                ("x-b3-flags", "1"),
            ],
            ctx(T, S, None, Debug),
        ),
        row(
            "multi Flags: 1 with Sampled: 1 is debug",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "1"),
                ("x-b3-flags", "1"),
            ],
            ctx(T, S, None, Debug),
        ),
        row(
            "multi Flags: 0 is ignored",
            &[("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-flags", "0")],
            ctx(T, S, None, Defer),
        )
        .otel_differs(otel(T, S, Deny), OTEL_FLAGS_0),
        row(
            "multi Flags: 0 with Sampled: 1 is ignored",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "1"),
                ("x-b3-flags", "0"),
            ],
            ctx(T, S, None, Accept),
        )
        .otel_differs(otel(T, S, Deny), OTEL_FLAGS_0),
        row(
            "multi Flags: 2 is ignored",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "1"),
                ("x-b3-flags", "2"),
            ],
            ctx(T, S, None, Accept),
        ),
        row(
            "multi Flags: 3 is ignored",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "0"),
                ("x-b3-flags", "3"),
            ],
            ctx(T, S, None, Deny),
        ),
        row(
            "multi Sampled: d",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "d"),
            ],
            Expect::Rejected,
        )
        .python_differs(python(T, S, true), PY_LENIENT_SAMPLED),
        row(
            "multi Sampled: 2",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "2"),
            ],
            Expect::Rejected,
        )
        .python_differs(python(T, S, false), PY_LENIENT_SAMPLED),
        row(
            "multi Sampled: garbage",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "yes"),
            ],
            Expect::Rejected,
        )
        .python_differs(python(T, S, false), PY_LENIENT_SAMPLED),
        row(
            "multi Sampled: garbage with Flags: 1 (Brave reads Sampled first)",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "yes"),
                ("x-b3-flags", "1"),
            ],
            Expect::Rejected,
        )
        .otel_differs(otel(T, S, Debug), OTEL_DEBUG_FIRST)
        .python_differs(python(T, S, true), PY_FLAGS_OR_SAMPLED),
        row(
            "multi only trace id",
            &[("x-b3-traceid", T), ("x-b3-sampled", "1")],
            Expect::Rejected,
        ),
        row(
            "multi only span id",
            &[("x-b3-spanid", S), ("x-b3-sampled", "1")],
            Expect::Rejected,
        ),
        row(
            "multi parent without ids",
            &[("x-b3-parentspanid", P)],
            Expect::Rejected,
        ),
        row(
            "multi parent without ids, with Sampled: 0 (not half-parsed)",
            &[("x-b3-parentspanid", P), ("x-b3-sampled", "0")],
            Expect::Rejected,
        ),
        row(
            "multi Sampled: 1 alone accepts",
            &[("x-b3-sampled", "1")],
            Expect::Sampling(Accept),
        ),
        row(
            "multi Flags: 1 alone is debug",
            &[("x-b3-flags", "1")],
            Expect::Sampling(Debug),
        ),
        row(
            "multi Flags: 0 alone decides nothing",
            &[("x-b3-flags", "0")],
            Expect::None,
        ),
        row(
            "multi 15-hex trace id (Brave pads it; the spec does not)",
            &[("x-b3-traceid", &T64[1..]), ("x-b3-spanid", S)],
            Expect::Rejected,
        ),
        row(
            "multi 33-hex trace id",
            &[("x-b3-traceid", &format!("{T}a")), ("x-b3-spanid", S)],
            Expect::Rejected,
        ),
        row(
            "multi 15-hex span id",
            &[("x-b3-traceid", T), ("x-b3-spanid", &S[1..])],
            Expect::Rejected,
        ),
        row(
            "multi 17-hex parent id",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-parentspanid", &format!("{P}a")),
                ("x-b3-sampled", "1"),
            ],
            Expect::Rejected,
        )
        .otel_differs(otel(T, S, Accept), OTEL_PARENT_UNCHECKED)
        .python_differs(python(T, S, true), PY_PARENT_UNCHECKED),
        row(
            "multi all-zero parent id",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-parentspanid", &zeros16),
            ],
            Expect::Rejected,
        )
        .otel_differs(otel(T, S, Defer), OTEL_PARENT_UNCHECKED)
        .python_differs(python(T, S, false), PY_PARENT_UNCHECKED),
        row(
            "multi uppercase trace id",
            &[
                ("x-b3-traceid", &up(T)),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "1"),
            ],
            Expect::Rejected,
        )
        .python_differs(python(T, S, true), PY_UPPERCASE),
        row(
            "multi all-zero trace id",
            &[("x-b3-traceid", &zeros32), ("x-b3-spanid", S)],
            Expect::Rejected,
        ),
        row(
            "multi all-zero span id",
            &[("x-b3-traceid", T), ("x-b3-spanid", &zeros16)],
            Expect::Rejected,
        ),
        row(
            "multi repeated Sampled: first wins",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "1"),
                ("x-b3-sampled", "0"),
            ],
            ctx(T, S, None, Accept),
        ),
        row(
            "multi repeated trace id: first wins",
            &[
                ("x-b3-traceid", T),
                ("x-b3-traceid", T2),
                ("x-b3-spanid", S),
            ],
            ctx(T, S, None, Defer),
        ),
        row(
            "multi repeated Sampled: a malformed first value is not skipped",
            &[
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "yes"),
                ("x-b3-sampled", "1"),
            ],
            Expect::Rejected,
        )
        .python_differs(python(T, S, false), PY_LENIENT_SAMPLED),
        // ---- Both encodings.
        row(
            "both: single deny with multi ids: deny wins",
            &[
                ("b3", "0"),
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "1"),
            ],
            Expect::Sampling(Deny),
        )
        .otel_differs(otel(T, S, Accept), OTEL_NO_SAMPLING_ALONE),
        row(
            "both: single accept with multi ids: the single decision wins",
            &[("b3", "1"), ("x-b3-traceid", T), ("x-b3-spanid", S)],
            Expect::Sampling(Accept),
        )
        .otel_differs(otel(T, S, Defer), OTEL_NO_SAMPLING_ALONE),
        row(
            "both: invalid single falls back to multi",
            &[
                ("b3", "-"),
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "0"),
            ],
            ctx(T, S, None, Deny),
        )
        .python_differs(None, PY_NO_FALLBACK),
        row(
            "both: invalid single with ids falls back to multi",
            &[
                ("b3", &format!("{T2}-{S}-q")),
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-parentspanid", P),
                ("x-b3-sampled", "1"),
            ],
            ctx(T, S, Some(P), Accept),
        )
        .python_differs(python(T2, S, false), PY_NO_FALLBACK),
        row(
            "both: empty single falls back to multi",
            &[("b3", ""), ("x-b3-traceid", T), ("x-b3-spanid", S)],
            ctx(T, S, None, Defer),
        ),
        row(
            "both: different trace ids: single wins",
            &[
                ("b3", &format!("{T2}-{S}-1")),
                ("x-b3-traceid", T),
                ("x-b3-spanid", S),
                ("x-b3-sampled", "0"),
            ],
            ctx(T2, S, None, Accept),
        ),
        row(
            "both: valid single, malformed multi: single wins",
            &[
                ("b3", &format!("{T}-{S}-0")),
                ("x-b3-traceid", "0"),
                ("x-b3-spanid", "0"),
                ("x-b3-sampled", "0"),
            ],
            ctx(T, S, None, Deny),
        ),
        row(
            "both: invalid single, invalid multi",
            &[("b3", "-"), ("x-b3-traceid", T), ("x-b3-sampled", "1")],
            Expect::Rejected,
        ),
        row(
            "both: repeated b3: first wins",
            &[("b3", "0"), ("b3", &format!("{T}-{S}-1"))],
            Expect::Sampling(Deny),
        ),
        row(
            "no B3 headers",
            &[("content-type", "text/plain")],
            Expect::None,
        ),
    ];
    // Unrelated headers around B3 change nothing.
    v.push(row(
        "multi among other headers",
        &[
            ("host", "example.com"),
            ("x-b3-traceid", T),
            ("accept", "*/*"),
            ("x-b3-spanid", S),
            ("x-request-id", "abc"),
            ("x-b3-sampled", "1"),
        ],
        ctx(T, S, None, Accept),
    ));
    v
}

/// Every sampling state.
pub const SAMPLINGS: [Sampling; 4] = [
    Sampling::Defer,
    Sampling::Deny,
    Sampling::Accept,
    Sampling::Debug,
];

/// Every way to inject.
pub const FORMATS: [Format; 3] = [Format::Multi, Format::Single, Format::Both];
