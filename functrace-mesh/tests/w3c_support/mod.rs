//! The W3C Trace Context vector table shared by `w3c_vectors.rs` (our extraction, per the
//! Recommendation) and `w3c_python.rs` (Python `opentelemetry-api`'s
//! `TraceContextTextMapPropagator`). The examples are the Recommendation's; the invalid
//! cases are the ones it lists (bad and `ff` versions, all-zero ids, wrong lengths,
//! uppercase hex) and more of the same kind.
//!
//! Each row says what the Recommendation (and so `functrace_mesh::w3c`) extracts; a row that
//! names a documented difference says what Python sees instead, and why.

#![allow(dead_code)] // each test crate uses part of this module

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// The Recommendation's example trace id, parent id and `tracestate`.
pub const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const P: &str = "00f067aa0ba902b7";
pub const STATE: &str = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";

/// What a row extracts: trace id, parent id (our span id), sampled.
pub type Seen = Option<(String, String, bool)>;

pub struct Vector {
    pub name: String,
    /// In order; a repeated name is a repeated header.
    pub headers: Vec<(String, String)>,
    /// The context (trace id, parent id, sampled), or none (rejected or absent).
    pub expect: Seen,
    /// The `tracestate` kept, as carried on (`None`: dropped or absent).
    pub tracestate: Option<String>,
    /// A documented difference of Python otel: what it sees, and why.
    pub python: Option<(Seen, &'static str)>,
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

    pub fn python_expected(&self) -> Seen {
        match &self.python {
            Some((seen, _)) => seen.clone(),
            None => self.expect.clone(),
        }
    }

    /// The kept `tracestate` as its list members, as Python holds it.
    pub fn tracestate_members(&self) -> Vec<(String, String)> {
        members(self.tracestate.as_deref().unwrap_or(""))
    }
}

/// The list members of a `tracestate`: `key=value`, without whitespace and empty members.
pub fn members(tracestate: &str) -> Vec<(String, String)> {
    tracestate
        .split(',')
        .map(|member| member.trim_matches([' ', '\t']))
        .filter(|member| !member.is_empty())
        .map(|member| {
            let (key, value) = member.split_once('=').unwrap();
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

fn seen(trace: &str, parent: &str, sampled: bool) -> Seen {
    Some((trace.to_owned(), parent.to_owned(), sampled))
}

fn row(name: &str, headers: &[(&str, &str)], expect: Seen, tracestate: Option<&str>) -> Vector {
    Vector {
        name: name.to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        expect,
        tracestate: tracestate.map(str::to_owned),
        python: None,
    }
}

/// A row with only `traceparent`.
fn parent(name: &str, traceparent: &str, expect: Seen) -> Vector {
    row(name, &[("traceparent", traceparent)], expect, None)
}

/// A row with a valid `traceparent` and `tracestate`, kept or dropped.
fn state(name: &str, tracestate: &str, kept: bool) -> Vector {
    let traceparent = format!("00-{T}-{P}-01");
    row(
        name,
        &[("traceparent", &traceparent), ("tracestate", tracestate)],
        seen(T, P, true),
        kept.then_some(tracestate),
    )
}

pub fn vectors() -> Vec<Vector> {
    let upper_trace = T.to_uppercase();
    let key_256 = format!("a{}", "b".repeat(255));
    let key_257 = format!("a{}", "b".repeat(256));
    let value_256 = "v".repeat(256);
    let value_257 = "v".repeat(257);
    let members_32: Vec<String> = (0..32).map(|i| format!("k{i}=v{i}")).collect();
    let members_33: Vec<String> = (0..33).map(|i| format!("k{i}=v{i}")).collect();
    let ahead = format!("cc-{T}-{P}-01-what-the-future-will-be-like");
    let mut rows = vec![
        // The Recommendation's examples.
        parent(
            "example sampled",
            &format!("00-{T}-{P}-01"),
            seen(T, P, true),
        ),
        parent(
            "example not sampled",
            &format!("00-{T}-{P}-00"),
            seen(T, P, false),
        ),
        state("example tracestate", STATE, true),
        state("example tracestate, one member", "congo=t61rcWkgMzE", true),
        // Flags: only the sampled bit counts.
        parent("flags 09", &format!("00-{T}-{P}-09"), seen(T, P, true)),
        parent("flags ff", &format!("00-{T}-{P}-ff"), seen(T, P, true)),
        parent("flags 02", &format!("00-{T}-{P}-02"), seen(T, P, false)),
        // A trace id with a zero high half is still 128 bits.
        parent(
            "zero high half",
            &format!("00-0000000000000000{}-{P}-01", &T[16..]),
            seen(&format!("0000000000000000{}", &T[16..]), P, true),
        ),
        // Versions.
        parent("version ff", &format!("ff-{T}-{P}-01"), None),
        parent(
            "future version, 55 characters",
            &format!("01-{T}-{P}-01"),
            seen(T, P, true),
        ),
        parent("future version with more fields", &ahead, seen(T, P, true)),
        parent(
            "future version with a trailing -",
            &format!("cc-{T}-{P}-00-"),
            seen(T, P, false),
        ),
        parent(
            "future version, no - after the flags",
            &format!("cc-{T}-{P}-01x"),
            None,
        ),
        parent(
            "version 00 with more fields",
            &format!("00-{T}-{P}-01-extra"),
            None,
        ),
        parent(
            "version 00 with a trailing -",
            &format!("00-{T}-{P}-01-"),
            None,
        ),
        parent(
            "version 00 one character longer",
            &format!("00-{T}-{P}-011"),
            None,
        ),
        parent("uppercase version", &format!("0A-{T}-{P}-01"), None),
        parent("non-hex version", &format!("0g-{T}-{P}-01"), None),
        parent("one-digit version", &format!("0-{T}-{P}-01"), None),
        parent("three-digit version", &format!("000-{T}-{P}-01"), None),
        // Ids.
        parent(
            "all-zero trace id",
            &format!("00-{}-{P}-01", "0".repeat(32)),
            None,
        ),
        parent(
            "all-zero parent id",
            &format!("00-{T}-{}-01", "0".repeat(16)),
            None,
        ),
        parent(
            "uppercase trace id",
            &format!("00-{upper_trace}-{P}-01"),
            None,
        ),
        parent(
            "uppercase parent id",
            &format!("00-{T}-00F067AA0BA902B7-01"),
            None,
        ),
        parent("uppercase flags", &format!("00-{T}-{P}-0A"), None),
        parent(
            "non-hex trace id",
            &format!("00-{}g-{P}-01", &T[..31]),
            None,
        ),
        parent(
            "non-hex parent id",
            &format!("00-{T}-{}x-01", &P[..15]),
            None,
        ),
        parent("non-hex flags", &format!("00-{T}-{P}-0x"), None),
        parent(
            "31-character trace id",
            &format!("00-{}-{P}-01", &T[..31]),
            None,
        ),
        parent("33-character trace id", &format!("00-{T}0-{P}-01"), None),
        parent("64-bit trace id", &format!("00-{}-{P}-01", &T[16..]), None),
        parent(
            "15-character parent id",
            &format!("00-{T}-{}-01", &P[..15]),
            None,
        ),
        parent("17-character parent id", &format!("00-{T}-{P}0-01"), None),
        parent("one-digit flags", &format!("00-{T}-{P}-1"), None),
        parent("wrong separator", &format!("00_{T}_{P}_01"), None),
        parent("empty", "", None),
        parent("a B3 single header", &format!("{T}-{P}-1"), None),
        // Repeated: the first value.
        row(
            "repeated traceparent, first wins",
            &[
                ("traceparent", &format!("00-{T}-{P}-01")),
                ("traceparent", &format!("00-{T}-{}-00", "1".repeat(16))),
            ],
            seen(T, P, true),
            None,
        ),
        // tracestate.
        state(
            "tracestate with whitespace",
            "rojo=00f067aa0ba902b7 ,\tcongo=t61rcWkgMzE",
            true,
        ),
        state("tracestate with empty members", "a=1,,b=2,", true),
        state(
            "multi-tenant key",
            "fw529a3039@dt=FW4,0tenant@sys-1=x",
            true,
        ),
        state("value with inner spaces", "a=b c", true),
        state("32 members", &members_32.join(","), true),
        state("33 members", &members_33.join(","), false),
        state("256-character key", &format!("{key_256}=1"), true),
        state("257-character key", &format!("{key_257}=1"), false),
        state("256-character value", &format!("a={value_256}"), true),
        state("257-character value", &format!("a={value_257}"), false),
        state("uppercase key", "Rojo=1", false),
        state("key starting with a digit", "1a=1", false),
        state("= in a value", "a=b=c", false),
        state("a member without =", "a=1,b", false),
        state("an empty value", "a=", false),
        state("a key twice", "a=1,a=2", false),
        state("empty tracestate", "", false),
        state("only commas", " , ,", false),
        state(
            "system id too long",
            &format!("t@{}=1", "s".repeat(15)),
            false,
        ),
        row(
            "tracestate in two fields",
            &[
                ("traceparent", &format!("00-{T}-{P}-01")),
                ("tracestate", "rojo=00f067aa0ba902b7"),
                ("tracestate", "congo=t61rcWkgMzE"),
            ],
            seen(T, P, true),
            Some(STATE),
        ),
        row(
            "tracestate beside an invalid traceparent",
            &[
                ("traceparent", &format!("ff-{T}-{P}-01")),
                ("tracestate", STATE),
            ],
            None,
            None,
        ),
        row("tracestate alone", &[("tracestate", STATE)], None, None),
        row("nothing", &[], None, None),
    ];
    rows.push(Vector {
        python: Some((
            seen(T, P, true),
            "its pattern allows spaces and tabs before the version",
        )),
        ..parent("leading space", &format!(" 00-{T}-{P}-01"), None)
    });
    rows.push(Vector {
        python: Some((
            seen(T, P, true),
            "its pattern allows spaces and tabs after version 00's flags",
        )),
        ..parent("trailing tab", &format!("00-{T}-{P}-01\t"), None)
    });
    rows
}
