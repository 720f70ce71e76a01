//! `functrace_mesh::b3` against the spec: the shared vector table (every example of the spec
//! and every case of the B3 brief), then injection: replacement, exact encodings, round trips.

mod b3_support;

use std::num::NonZeroU64;

use b3_support::{context_expect, seen, vectors, FORMATS, P, S, SAMPLINGS, T, T64};
use functrace::{Sampling, SpanId, TraceContext, TraceId};
use functrace_mesh::b3::{self, Extracted, Format};
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// Header names and values.
type Pairs = &'static [(&'static str, &'static str)];

#[test]
fn every_vector_extracts_as_the_spec_says() {
    let vectors = vectors();
    assert!(vectors.len() >= 90, "{} vectors", vectors.len());
    let mut failures = Vec::new();
    for vector in &vectors {
        let extracted = b3::extract(&vector.header_map());
        if seen(&extracted) != vector.expect {
            failures.push(format!(
                "{}: {:?}\n  headers {:?}\n  expected {:?}",
                vector.name, extracted, vector.headers, vector.expect
            ));
        }
        if let Err(rejected) = extracted {
            assert!(!rejected.reason().is_empty());
            assert!(rejected.to_string().contains(rejected.reason()));
        }
        // The same among many other headers (where extract looks names up rather than scanning).
        let mut crowded = HeaderMap::new();
        for i in 0..40 {
            crowded.append(
                HeaderName::from_bytes(format!("x-filler-{i}").as_bytes()).unwrap(),
                HeaderValue::from_static("1"),
            );
        }
        for (name, value) in vector.header_map().iter() {
            crowded.append(name, value.clone());
        }
        assert_eq!(b3::extract(&crowded), extracted, "crowded: {}", vector.name);
        // The single-header parser alone says the same, except that it never answers None.
        if let Some(value) = vector.single_only() {
            let alone = b3::extract_single(value);
            assert_eq!(
                seen(&alone),
                vector.expect,
                "extract_single: {}",
                vector.name
            );
        }
        // With no b3 header, extract is extract_multi.
        if !vector.has_single() {
            assert_eq!(
                b3::extract_multi(&vector.header_map()),
                b3::extract(&vector.header_map()),
                "{}",
                vector.name
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rejections_say_why() {
    let reason = |value: &str| b3::extract_single(value).unwrap_err().reason();
    assert_eq!(reason(""), "b3 is empty");
    assert_eq!(reason("q"), "b3 sampling state is not 0, 1 or d");
    assert!(reason(&format!("{T}a-{S}")).contains("trace id"));
    assert!(reason(&format!("{T}-{S}a")).contains("span id"));
    assert!(reason(&format!("{T}-{S}-1-{P}a")).contains("parent id"));
    assert!(reason(&format!("{T}-{}", "0".repeat(16))).contains("all zeros"));
    let mut headers = HeaderMap::new();
    headers.insert("x-b3-sampled", HeaderValue::from_static("2"));
    let rejected = b3::extract(&headers).unwrap_err();
    assert_eq!(rejected.reason(), "x-b3-sampled is not 1 or 0");
    let error: &dyn std::error::Error = &rejected;
    assert_eq!(
        error.to_string(),
        "malformed B3 headers: x-b3-sampled is not 1 or 0"
    );
}

fn fixed(trace: &str, parent: Option<&str>, sampling: Sampling) -> TraceContext {
    TraceContext {
        trace_id: TraceId::from_hex(trace).unwrap(),
        span_id: SpanId::from_hex(S).unwrap(),
        parent_id: parent.map(|p| SpanId::from_hex(p).unwrap()),
        sampling,
    }
}

/// The B3 headers of a map, sorted, as (name, [values]).
fn b3_headers(headers: &HeaderMap) -> Vec<(String, Vec<String>)> {
    let mut b3: Vec<_> = headers
        .keys()
        .filter(|name| name.as_str() == "b3" || name.as_str().starts_with("x-b3-"))
        .map(|name| {
            let values = headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect();
            (name.as_str().to_string(), values)
        })
        .collect();
    b3.sort();
    b3
}

fn expected(pairs: &[(&str, &str)]) -> Vec<(String, Vec<String>)> {
    let mut b3: Vec<_> = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), vec![v.to_string()]))
        .collect();
    b3.sort();
    b3
}

fn injected(context: &TraceContext, format: Format) -> HeaderMap {
    let mut headers = HeaderMap::new();
    b3::inject(context, format, &mut headers);
    headers
}

#[test]
fn multi_encodes_each_sampling_state() {
    let cases: [(Sampling, Pairs); 4] = [
        (Sampling::Defer, &[]),
        (Sampling::Deny, &[("x-b3-sampled", "0")]),
        (Sampling::Accept, &[("x-b3-sampled", "1")]),
        // Debug implies accept: no x-b3-sampled beside it.
        (Sampling::Debug, &[("x-b3-flags", "1")]),
    ];
    for (sampling, state) in cases {
        let mut want = vec![
            ("x-b3-traceid", T),
            ("x-b3-spanid", S),
            ("x-b3-parentspanid", P),
        ];
        want.extend_from_slice(state);
        let headers = injected(&fixed(T, Some(P), sampling), Format::Multi);
        assert_eq!(b3_headers(&headers), expected(&want), "{sampling:?}");
        // Without a parent, no x-b3-parentspanid.
        let headers = injected(&fixed(T, None, sampling), Format::Multi);
        assert_eq!(headers.get("x-b3-parentspanid"), None);
        assert_eq!(headers.len(), want.len() - 1);
    }
    // The trace id keeps its width.
    let headers = injected(&fixed(T64, None, Sampling::Accept), Format::Multi);
    assert_eq!(headers["x-b3-traceid"], T64);
}

#[test]
fn single_encodes_each_sampling_state() {
    let cases = [
        (
            fixed(T, Some(P), Sampling::Accept),
            format!("{T}-{S}-1-{P}"),
        ),
        (fixed(T, Some(P), Sampling::Deny), format!("{T}-{S}-0-{P}")),
        (fixed(T, Some(P), Sampling::Debug), format!("{T}-{S}-d-{P}")),
        // Defer has no sampling field; with a parent, Brave's T-S-P.
        (fixed(T, Some(P), Sampling::Defer), format!("{T}-{S}-{P}")),
        (fixed(T, None, Sampling::Accept), format!("{T}-{S}-1")),
        (fixed(T, None, Sampling::Deny), format!("{T}-{S}-0")),
        (fixed(T, None, Sampling::Debug), format!("{T}-{S}-d")),
        (fixed(T, None, Sampling::Defer), format!("{T}-{S}")),
        (fixed(T64, None, Sampling::Accept), format!("{T64}-{S}-1")),
        (
            fixed(T64, Some(P), Sampling::Debug),
            format!("{T64}-{S}-d-{P}"),
        ),
    ];
    for (context, value) in cases {
        let headers = injected(&context, Format::Single);
        assert_eq!(b3_headers(&headers), expected(&[("b3", &value)]));
        assert_eq!(b3::extract_single(&value), Ok(Extracted::Context(context)));
    }
}

#[test]
fn both_writes_both_encodings() {
    for sampling in SAMPLINGS {
        for parent in [None, Some(P)] {
            let context = fixed(T, parent, sampling);
            let both = injected(&context, Format::Both);
            let mut want = b3_headers(&injected(&context, Format::Multi));
            want.extend(b3_headers(&injected(&context, Format::Single)));
            want.sort();
            assert_eq!(b3_headers(&both), want);
            assert_eq!(b3::extract(&both), Ok(Extracted::Context(context)));
            assert_eq!(b3::extract_multi(&both), Ok(Extracted::Context(context)));
        }
    }
}

#[test]
fn multi_is_the_default_format() {
    assert_eq!(Format::default(), Format::Multi);
}

/// Headers a forwarded request may carry: stale B3 in both encodings, repeated, plus an
/// `x-b3-*` name B3 does not define, among unrelated headers.
fn stale_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("example.com"));
    headers.insert("x-request-id", HeaderValue::from_static("r-1"));
    headers.append("b3", HeaderValue::from_static("0"));
    headers.append("b3", HeaderValue::from_static("1"));
    for (name, value) in [
        ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
        ("x-b3-traceid", "463ac35c9f6413ad"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-parentspanid", "0020000000000001"),
        ("x-b3-sampled", "0"),
        ("x-b3-sampled", "0"),
        ("x-b3-flags", "1"),
        ("x-b3-debug", "1"),
    ] {
        headers.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers
}

#[test]
fn inject_replaces_and_never_appends() {
    for format in FORMATS {
        for sampling in SAMPLINGS {
            let context = fixed(T, None, sampling);
            let mut headers = stale_headers();
            b3::inject(&context, format, &mut headers);
            // Exactly what injecting into an empty map writes, and nothing stale.
            assert_eq!(
                b3_headers(&headers),
                b3_headers(&injected(&context, format)),
                "{format:?} {sampling:?}"
            );
            assert_eq!(headers["host"], "example.com");
            assert_eq!(headers["x-request-id"], "r-1");
            assert_eq!(b3::extract(&headers), Ok(Extracted::Context(context)));
        }
    }
}

#[test]
fn inject_sampling_writes_the_decision_alone() {
    let cases: [(Sampling, Pairs, Pairs); 4] = [
        (Sampling::Defer, &[], &[]),
        (Sampling::Deny, &[("x-b3-sampled", "0")], &[("b3", "0")]),
        (Sampling::Accept, &[("x-b3-sampled", "1")], &[("b3", "1")]),
        (Sampling::Debug, &[("x-b3-flags", "1")], &[("b3", "d")]),
    ];
    for (sampling, multi, single) in cases {
        let want = match sampling {
            Sampling::Defer => Extracted::None,
            sampling => Extracted::Sampling(sampling),
        };
        let mut both = multi.to_vec();
        both.extend_from_slice(single);
        for (format, pairs) in [
            (Format::Multi, multi),
            (Format::Single, single),
            (Format::Both, &both[..]),
        ] {
            let mut headers = stale_headers();
            b3::inject_sampling(sampling, format, &mut headers);
            assert_eq!(
                b3_headers(&headers),
                expected(pairs),
                "{format:?} {sampling:?}"
            );
            assert_eq!(headers.len(), pairs.len() + 2);
            assert_eq!(b3::extract(&headers), Ok(want));
        }
    }
}

#[test]
fn names_are_lowercase_grpc_metadata_keys() {
    let context = fixed(T, Some(P), Sampling::Accept);
    let headers = injected(&context, Format::Both);
    assert_eq!(headers.len(), 5);
    for name in headers.keys() {
        assert!(name
            .as_str()
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'z' | b'-' | b'_' | b'.')));
    }
}

/// A number in 0..n, from the crate's id generator.
fn pick(n: u64) -> u64 {
    SpanId::random().get() % n
}

fn random_context() -> TraceContext {
    let trace_id = match pick(2) {
        0 => TraceId::Short(NonZeroU64::new(SpanId::random().get()).unwrap()),
        _ => TraceId::random(),
    };
    TraceContext {
        trace_id,
        span_id: SpanId::random(),
        parent_id: (pick(2) == 0).then(SpanId::random),
        sampling: SAMPLINGS[pick(4) as usize],
    }
}

#[test]
fn round_trips_random_contexts_in_every_format() {
    let mut seen_cases = std::collections::HashSet::new();
    for _ in 0..2000 {
        let context = random_context();
        let format = FORMATS[pick(3) as usize];
        seen_cases.insert((
            matches!(context.trace_id, TraceId::Short(_)),
            context.parent_id.is_some(),
            context.sampling,
            format,
        ));
        // Over whatever a previous hop wrote.
        let mut headers = HeaderMap::new();
        b3::inject(&random_context(), FORMATS[pick(3) as usize], &mut headers);
        b3::inject(&context, format, &mut headers);
        assert_eq!(
            b3::extract(&headers),
            Ok(Extracted::Context(context)),
            "{format:?} {headers:?}"
        );
        if format != Format::Multi {
            let value = headers["b3"].to_str().unwrap();
            assert_eq!(b3::extract_single(value), Ok(Extracted::Context(context)));
        }
        assert_eq!(
            seen(&b3::extract(&headers)),
            context_expect(&context),
            "ids print as they were parsed"
        );
    }
    // Every combination of width, parent, sampling state and format came up.
    assert_eq!(seen_cases.len(), 2 * 2 * 4 * 3);
}

#[test]
fn extracted_ids_keep_their_width() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "b3",
        HeaderValue::from_str(&format!("{T64}-{S}-1")).unwrap(),
    );
    match b3::extract(&headers) {
        Ok(Extracted::Context(context)) => {
            assert!(matches!(context.trace_id, TraceId::Short(_)));
            assert_eq!(context.trace_id.to_string(), T64);
        }
        other => panic!("{other:?}"),
    }
    let padded = format!("{:0>32}", T64);
    headers.insert(
        "b3",
        HeaderValue::from_str(&format!("{padded}-{S}-1")).unwrap(),
    );
    match b3::extract(&headers) {
        Ok(Extracted::Context(context)) => {
            assert_eq!(context.trace_id, TraceId::Long(0, 0x64fe_8b2a_57d3_eff7));
            assert_eq!(context.trace_id.to_string(), padded);
        }
        other => panic!("{other:?}"),
    }
}

/// Forwarding: the headers hold the incoming context, the sidecar or client writes its child
/// (same trace, the old span id as parent). Whatever order the names come in, repeated or
/// not, and whatever the incoming context had, the result is the child alone.
#[test]
fn forwarding_a_child_over_the_incoming_b3_writes_the_child_alone() {
    let incoming = [
        fixed(T, Some(P), Sampling::Accept),
        fixed(T64, None, Sampling::Debug),
        fixed(T, None, Sampling::Defer),
    ];
    for parent in incoming {
        let child = parent.child();
        for format in FORMATS {
            let fresh = injected(&parent, format);
            let names: Vec<(HeaderName, HeaderValue)> = fresh
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            // In the order inject wrote them, reversed, and with each value twice.
            let orders = [
                names.clone(),
                names.iter().rev().cloned().collect(),
                names
                    .iter()
                    .flat_map(|pair| [pair.clone(), pair.clone()])
                    .collect(),
            ];
            for order in orders {
                let mut headers = HeaderMap::new();
                headers.insert("host", HeaderValue::from_static("example.com"));
                for (name, value) in order {
                    headers.append(name, value);
                }
                b3::inject(&child, format, &mut headers);
                assert_eq!(
                    b3_headers(&headers),
                    b3_headers(&injected(&child, format)),
                    "{format:?} {parent:?}"
                );
                assert_eq!(b3::extract(&headers), Ok(Extracted::Context(child)));
                // Injecting the same context again changes nothing.
                let before = b3_headers(&headers);
                b3::inject(&child, format, &mut headers);
                assert_eq!(b3_headers(&headers), before);
            }
        }
    }
}
