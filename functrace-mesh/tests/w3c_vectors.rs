//! W3C Trace Context per the Recommendation: the vector table (`w3c_support`) through our
//! extraction, injection's rules, and both standards together (`propagation`): which one
//! wins, and which ones go on.

mod w3c_support;

use functrace::{Sampling, SpanId, TraceContext, TraceId};
use functrace_mesh::b3::{self, Extracted, Format};
use functrace_mesh::propagation::{self, Propagation, Standards};
use functrace_mesh::w3c;
use http::header::{HeaderMap, HeaderValue};
use w3c_support::{vectors, Seen, P, STATE, T};

fn seen(parent: &Option<w3c::Parent>) -> Seen {
    parent.as_ref().map(|parent| {
        let context = parent.context;
        assert_eq!(context.parent_id, None);
        assert!(matches!(context.trace_id, TraceId::Long(..)));
        (
            context.trace_id.to_string(),
            context.span_id.to_string(),
            context.sampling.is_sampled(),
        )
    })
}

#[test]
fn the_vectors_extract_as_the_recommendation_says() {
    let vectors = vectors();
    assert!(vectors.len() > 50);
    for vector in &vectors {
        let headers = vector.header_map();
        let extracted = w3c::extract(&headers);
        let parent = extracted.clone().ok().flatten();
        assert_eq!(seen(&parent), vector.expect, "{}", vector.name);
        let tracestate = parent.and_then(|parent| parent.tracestate);
        assert_eq!(
            tracestate.as_ref().map(|v| v.to_str().unwrap()),
            vector.tracestate.as_deref(),
            "{}",
            vector.name
        );
        // A traceparent that is there and yields nothing was rejected, with a reason.
        if vector.expect.is_none() && headers.contains_key("traceparent") {
            let rejected = extracted.expect_err(&vector.name);
            assert!(!rejected.reason().is_empty());
        }
    }
}

fn context(trace: &str, span: &str, sampling: Sampling) -> TraceContext {
    TraceContext {
        trace_id: TraceId::from_hex(trace).unwrap(),
        span_id: SpanId::from_hex(span).unwrap(),
        parent_id: None,
        sampling,
    }
}

#[test]
fn injection_writes_version_00_and_pads_a_64_bit_trace_id() {
    let cases = [
        (T, Sampling::Accept, format!("00-{T}-{P}-01")),
        (T, Sampling::Debug, format!("00-{T}-{P}-01")),
        (T, Sampling::Deny, format!("00-{T}-{P}-00")),
        (T, Sampling::Defer, format!("00-{T}-{P}-00")),
        (
            "a3ce929d0e0e4736",
            Sampling::Accept,
            format!("00-0000000000000000a3ce929d0e0e4736-{P}-01"),
        ),
    ];
    for (trace, sampling, expected) in cases {
        let mut headers = HeaderMap::new();
        headers.insert("tracestate", HeaderValue::from_static("old=1"));
        let context = context(trace, P, sampling);
        w3c::inject(&context, None, &mut headers);
        assert_eq!(headers["traceparent"], expected.as_str());
        assert!(headers["traceparent"].is_sensitive());
        assert!(
            !headers.contains_key("tracestate"),
            "none removes the old one"
        );
        // Read back: the same ids; a 64-bit id as 128 bits with a zero high half.
        let back = w3c::extract(&headers).unwrap().unwrap().context;
        assert_eq!(w3c::wide(back.trace_id), w3c::wide(context.trace_id));
        assert_eq!(back.span_id, context.span_id);
        assert_eq!(back.sampling.is_sampled(), sampling.is_sampled());
    }
}

#[test]
fn injection_replaces_a_repeated_traceparent_and_sets_the_tracestate() {
    let context = context(T, P, Sampling::Accept);
    let mut headers = HeaderMap::new();
    headers.append(
        "traceparent",
        HeaderValue::from_str(&format!("00-{T}-{P}-01")).unwrap(),
    );
    headers.append("traceparent", HeaderValue::from_static("garbage"));
    let state = HeaderValue::from_static(STATE);
    w3c::inject(&context, Some(&state), &mut headers);
    let all: Vec<_> = headers.get_all("traceparent").iter().collect();
    assert_eq!(all, [format!("00-{T}-{P}-01").as_str()]);
    assert_eq!(headers["tracestate"], STATE);
    let child = context.child();
    w3c::inject(&child, Some(&state), &mut headers);
    assert_eq!(
        headers["traceparent"],
        format!("00-{T}-{}-01", child.span_id).as_str()
    );
    assert_eq!(headers.len(), 2);
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const OTHER_SPAN: &str = "1111111111111111";

#[test]
fn traceparent_alone_is_used_and_goes_on_as_traceparent() {
    let received = propagation::extract(&headers(&[("traceparent", TP), ("tracestate", STATE)]));
    assert_eq!(
        received.extracted,
        Extracted::Context(context(T, P, Sampling::Accept))
    );
    assert_eq!(received.came_in, Standards::W3C);
    assert_eq!(received.tracestate.as_ref().unwrap(), STATE);
    assert_eq!(
        Propagation::Same.standards(received.came_in),
        Standards::W3C
    );
}

#[test]
fn b3_wins_when_both_agree_and_keeps_what_w3c_cannot_say() {
    // Debug and a parent id: only B3 can say them.
    let b3 = format!("{T}-{P}-d-{OTHER_SPAN}");
    let received = propagation::extract(&headers(&[
        ("b3", &b3),
        ("traceparent", TP),
        ("tracestate", STATE),
    ]));
    let Extracted::Context(context) = received.extracted else {
        panic!("{received:?}");
    };
    assert_eq!(context.sampling, Sampling::Debug);
    assert_eq!(
        context.parent_id,
        Some(SpanId::from_hex(OTHER_SPAN).unwrap())
    );
    assert_eq!(received.came_in, Standards::BOTH);
    assert_eq!(received.tracestate.as_ref().unwrap(), STATE);
    let w3c_context = w3c::parse_traceparent(TP.as_bytes()).unwrap();
    assert!(propagation::agree(&context, &w3c_context));

    // A 64-bit B3 id agrees with the same id padded to 128 bits.
    let short = "a3ce929d0e0e4736";
    let padded = format!("00-0000000000000000{short}-{P}-01");
    let received = propagation::extract(&headers(&[
        ("x-b3-traceid", short),
        ("x-b3-spanid", P),
        ("x-b3-sampled", "1"),
        ("traceparent", &padded),
        ("tracestate", STATE),
    ]));
    let Extracted::Context(context) = received.extracted else {
        panic!("{received:?}");
    };
    assert!(matches!(context.trace_id, TraceId::Short(_)), "B3's width");
    assert!(propagation::agree(
        &context,
        &w3c::parse_traceparent(padded.as_bytes()).unwrap()
    ));
    assert_eq!(received.tracestate.as_ref().unwrap(), STATE);
}

#[test]
fn b3_wins_when_they_disagree_and_the_tracestate_follows_only_its_trace() {
    // Another parent id in the same trace: B3's context, the tracestate kept.
    let b3 = format!("{T}-{OTHER_SPAN}-1");
    let received = propagation::extract(&headers(&[
        ("b3", &b3),
        ("traceparent", TP),
        ("tracestate", STATE),
    ]));
    let b3_context = context(T, OTHER_SPAN, Sampling::Accept);
    assert_eq!(received.extracted, Extracted::Context(b3_context));
    assert!(!propagation::agree(
        &b3_context,
        &w3c::parse_traceparent(TP.as_bytes()).unwrap()
    ));
    assert_eq!(received.came_in, Standards::BOTH);
    assert_eq!(received.tracestate.as_ref().unwrap(), STATE);

    // Another trace: B3's context, the tracestate dropped.
    let other_trace = "463ac35c9f6413ad48485a3953bb6124";
    let b3 = format!("{other_trace}-{P}-0");
    let mut request = headers(&[("b3", &b3), ("traceparent", TP), ("tracestate", STATE)]);
    let received = propagation::extract(&request);
    let b3_context = context(other_trace, P, Sampling::Deny);
    assert_eq!(received.extracted, Extracted::Context(b3_context));
    assert_eq!(received.tracestate, None);

    // The next hop gets B3's context in both standards: the disagreement ends here.
    received.inject(&b3_context, Propagation::Same, Format::Single, &mut request);
    assert_eq!(request["b3"], b3.as_str());
    assert_eq!(
        request["traceparent"],
        format!("00-{other_trace}-{P}-00").as_str()
    );
    assert!(!request.contains_key("tracestate"));
    let again = propagation::extract(&request);
    assert_eq!(again.extracted, Extracted::Context(b3_context));
}

#[test]
fn a_b3_decision_alone_applies_to_the_traceparent() {
    let received = propagation::extract(&headers(&[("b3", "0"), ("traceparent", TP)]));
    assert_eq!(
        received.extracted,
        Extracted::Context(context(T, P, Sampling::Deny))
    );
    assert_eq!(received.came_in, Standards::BOTH);
    let received = propagation::extract(&headers(&[("x-b3-flags", "1"), ("traceparent", TP)]));
    assert_eq!(
        received.extracted,
        Extracted::Context(context(T, P, Sampling::Debug))
    );
}

#[test]
fn a_malformed_standard_is_ignored_whole_and_the_other_used() {
    // Malformed B3, valid traceparent: the traceparent, going on as W3C only.
    let mut request = headers(&[("x-b3-traceid", "nothex"), ("traceparent", TP)]);
    let received = propagation::extract(&request);
    assert_eq!(received.came_in, Standards::W3C);
    let Extracted::Context(joined) = received.extracted else {
        panic!("{received:?}");
    };
    received.inject(&joined, Propagation::Same, Format::Multi, &mut request);
    assert_eq!(request["traceparent"], TP);
    assert_eq!(request.len(), 1, "{request:?}");

    // Valid B3, malformed traceparent: B3, and the traceparent and its tracestate go.
    let b3 = format!("{T}-{P}-1");
    let mut request = headers(&[
        ("b3", &b3),
        ("traceparent", "00-nothex"),
        ("tracestate", STATE),
    ]);
    let received = propagation::extract(&request);
    assert_eq!(received.came_in, Standards::B3);
    assert_eq!(received.tracestate, None);
    let Extracted::Context(joined) = received.extracted else {
        panic!("{received:?}");
    };
    received.inject(&joined, Propagation::Same, Format::Single, &mut request);
    assert_eq!(request["b3"], b3.as_str());
    assert_eq!(request.len(), 1, "{request:?}");

    // Both malformed: nothing, and a new trace goes on as B3.
    let received = propagation::extract(&headers(&[("b3", "x"), ("traceparent", "x")]));
    assert_eq!(received.extracted, Extracted::None);
    assert_eq!(received.came_in, Standards::NONE);
    assert_eq!(Propagation::Same.standards(received.came_in), Standards::B3);
}

#[test]
fn propagation_picks_the_standards_written() {
    let cases = [
        (Propagation::Same, Standards::NONE, Standards::B3),
        (Propagation::Same, Standards::B3, Standards::B3),
        (Propagation::Same, Standards::W3C, Standards::W3C),
        (Propagation::Same, Standards::BOTH, Standards::BOTH),
        (Propagation::B3, Standards::W3C, Standards::B3),
        (Propagation::W3c, Standards::B3, Standards::W3C),
        (Propagation::Both, Standards::NONE, Standards::BOTH),
    ];
    for (propagation, came_in, written) in cases {
        assert_eq!(
            propagation.standards(came_in),
            written,
            "{propagation:?} {came_in:?}"
        );
    }
    // Writing one standard removes the other's headers.
    let context = context(T, P, Sampling::Accept);
    let mut request = headers(&[
        ("traceparent", TP),
        ("tracestate", STATE),
        ("x-b3-sampled", "1"),
    ]);
    propagation::inject(&context, Standards::B3, Format::Multi, None, &mut request);
    assert!(!request.contains_key("traceparent") && !request.contains_key("tracestate"));
    assert_eq!(request["x-b3-spanid"], P);
    let state = HeaderValue::from_static(STATE);
    propagation::inject(
        &context,
        Standards::W3C,
        Format::Multi,
        Some(&state),
        &mut request,
    );
    assert_eq!(request.len(), 2, "{request:?}");
    assert_eq!(b3::extract(&request), Ok(Extracted::None));
    assert_eq!(request["tracestate"], STATE);
}
