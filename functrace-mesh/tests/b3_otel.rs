//! Cross-check with `opentelemetry-zipkin`'s B3 `Propagator`, used for real through
//! opentelemetry's `TextMapPropagator` over an `http::HeaderMap`:
//! - the vector table through its extraction, agreeing except where documented;
//! - random contexts both ways: our inject, its extract; its inject, our extract.
//!
//! Every difference from the spec is asserted as documented in the `b3` module docs, not
//! skipped. Its propagator is configured with the encoding the sender used.

// opentelemetry-zipkin deprecates its whole API (Zipkin accepts OTLP now); its B3 propagator
// is still the Rust otel one, and what this cross-checks.
#![allow(deprecated)]

mod b3_support;

use std::num::NonZeroU64;

use b3_support::{pad, trace_u128, vectors, OtelSeen, Vector, FORMATS, SAMPLINGS};
use functrace::{Sampling, SpanId, TraceContext, TraceId};
use functrace_mesh::b3::{self, Extracted, Format};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{self as otel, TraceContextExt};
use opentelemetry::Context;
use opentelemetry_zipkin::{B3Encoding, Propagator};

/// Its flags beyond `SAMPLED` (private constants in `opentelemetry-zipkin`).
const DEFERRED: u8 = 0x02;
const DEBUG: u8 = 0x04;

struct Extract<'a>(&'a HeaderMap);

impl Extractor for Extract<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct Inject<'a>(&'a mut HeaderMap);

impl Injector for Inject<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(
            HeaderName::from_bytes(key.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
}

fn propagator(format: Format) -> Propagator {
    Propagator::with_encoding(match format {
        Format::Multi => B3Encoding::MultipleHeader,
        Format::Single => B3Encoding::SingleHeader,
        Format::Both => B3Encoding::SingleAndMultiHeader,
    })
}

fn their_extract(format: Format, headers: &HeaderMap) -> otel::SpanContext {
    propagator(format)
        .extract(&Extract(headers))
        .span()
        .span_context()
        .clone()
}

fn their_inject(format: Format, span_context: otel::SpanContext) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let context = Context::new().with_remote_span_context(span_context);
    propagator(format).inject_context(&context, &mut Inject(&mut headers));
    headers
}

/// Its trace flags as a sampling state.
fn their_sampling(flags: otel::TraceFlags) -> Sampling {
    let flags = flags.to_u8();
    if flags & DEBUG != 0 {
        Sampling::Debug
    } else if flags & 0x01 != 0 {
        Sampling::Accept
    } else if flags & DEFERRED != 0 {
        Sampling::Defer
    } else {
        Sampling::Deny
    }
}

fn their_seen(span_context: &otel::SpanContext) -> OtelSeen {
    span_context.is_valid().then(|| {
        (
            span_context.trace_id().to_string(),
            span_context.span_id().to_string(),
            their_sampling(span_context.trace_flags()),
        )
    })
}

/// The format a vector's sender used.
fn sender_format(vector: &Vector) -> Format {
    match (vector.has_single(), vector.has_multi()) {
        (true, true) => Format::Both,
        (true, false) => Format::Single,
        _ => Format::Multi,
    }
}

#[test]
fn vectors_agree_except_where_documented() {
    let mut failures = Vec::new();
    let mut differences = 0;
    for vector in vectors() {
        let headers = vector.header_map();
        let theirs = their_seen(&their_extract(sender_format(&vector), &headers));
        if let Some((differs, why)) = &vector.otel {
            differences += 1;
            assert_ne!(*differs, vector.otel_agreeing(), "{}: {why}", vector.name);
        }
        let want = vector.otel_expected();
        if theirs != want {
            failures.push(format!(
                "{}: otel {theirs:?}, expected {want:?} {:?}",
                vector.name, vector.otel
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(differences >= 10, "{differences} documented differences");
}

/// Its configuration quirks (see the `b3` module docs).
#[test]
fn its_encoding_changes_what_it_accepts() {
    let (t, s) = (b3_support::T, b3_support::S);
    let mut multi_true = HeaderMap::new();
    multi_true.insert("x-b3-traceid", t.parse().unwrap());
    multi_true.insert("x-b3-spanid", s.parse().unwrap());
    multi_true.insert("x-b3-sampled", "true".parse().unwrap());
    let ours = b3::extract(&multi_true).unwrap();
    assert!(matches!(ours, Extracted::Context(c) if c.sampling == Sampling::Accept));
    assert!(their_extract(Format::Multi, &multi_true).is_sampled());
    // Configured for both encodings, it rejects x-b3-sampled: true.
    assert!(!their_extract(Format::Both, &multi_true).is_valid());

    let mut single_debug = HeaderMap::new();
    single_debug.insert("b3", format!("{t}-{s}-d").parse().unwrap());
    let ours = b3::extract(&single_debug).unwrap();
    assert!(matches!(ours, Extracted::Context(c) if c.sampling == Sampling::Debug));
    assert_eq!(
        their_extract(Format::Single, &single_debug)
            .trace_flags()
            .to_u8(),
        DEBUG
    );
    // Configured for multiple headers only, it rejects b3 `d`.
    assert!(!their_extract(Format::Multi, &single_debug).is_valid());
}

/// A number in 0..n, from the crate's id generator.
fn pick(n: u64) -> u64 {
    SpanId::random().get() % n
}

fn random_context(sampling: Sampling) -> TraceContext {
    TraceContext {
        trace_id: match pick(2) {
            0 => TraceId::Short(NonZeroU64::new(SpanId::random().get()).unwrap()),
            _ => TraceId::random(),
        },
        span_id: SpanId::random(),
        parent_id: (pick(2) == 0).then(SpanId::random),
        sampling,
    }
}

#[test]
fn our_inject_their_extract() {
    let mut checked = 0;
    for round in 0..400 {
        let sampling = SAMPLINGS[round % 4];
        let format = FORMATS[(round / 4) % 3];
        let context = random_context(sampling);
        let mut headers = HeaderMap::new();
        b3::inject(&context, format, &mut headers);
        let theirs = their_extract(format, &headers);
        let single_read = format != Format::Multi; // it reads b3 first
        if format == Format::Single && sampling == Sampling::Defer && context.parent_id.is_some() {
            // Documented: it rejects b3 {trace}-{span}-{parent}. (With Format::Both it falls
            // back to the x-b3-* headers, which carry the same context.)
            assert!(!theirs.is_valid(), "{headers:?}");
            continue;
        }
        assert!(theirs.is_valid(), "{headers:?}");
        // Same trace id (it holds 128 bits: a 64-bit one gets zeros in front) and span id.
        assert_eq!(
            theirs.trace_id().to_string(),
            pad(&context.trace_id.to_string())
        );
        assert_eq!(
            u128::from_be_bytes(theirs.trace_id().to_bytes()),
            trace_u128(context.trace_id)
        );
        assert_eq!(theirs.span_id().to_string(), context.span_id.to_string());
        // Same sampling state, read from its flags.
        assert_eq!(
            their_sampling(theirs.trace_flags()),
            sampling,
            "{headers:?}"
        );
        // Same sampled flag, except the documented one: debug read from b3 `d` is not sampled.
        if sampling == Sampling::Debug && single_read {
            assert!(!theirs.is_sampled());
            assert_eq!(theirs.trace_flags().to_u8(), DEBUG);
        } else {
            assert_eq!(theirs.is_sampled(), sampling.is_sampled(), "{headers:?}");
        }
        checked += 1;
    }
    assert!(checked >= 350, "{checked}");
}

fn their_flags(sampling: Sampling) -> otel::TraceFlags {
    otel::TraceFlags::new(match sampling {
        Sampling::Defer => DEFERRED,
        Sampling::Deny => 0,
        Sampling::Accept => 0x01,
        // As its extraction makes debug: from b3 `d`, or from x-b3-flags: 1.
        Sampling::Debug => [DEBUG, DEBUG | 0x01][pick(2) as usize],
    })
}

#[test]
fn their_inject_our_extract() {
    for round in 0..400 {
        let sampling = SAMPLINGS[round % 4];
        let format = FORMATS[(round / 4) % 3];
        let high = if pick(2) == 0 {
            0
        } else {
            SpanId::random().get()
        };
        let low = SpanId::random().get();
        let span = SpanId::random();
        let span_context = otel::SpanContext::new(
            otel::TraceId::from(u128::from(high) << 64 | u128::from(low)),
            otel::SpanId::from(span.get()),
            their_flags(sampling),
            true,
            otel::TraceState::default(),
        );
        let headers = their_inject(format, span_context);
        // Documented: it writes every trace id in 32 hex characters, so we read a 128-bit
        // one, and it never writes a parent.
        let want = TraceContext {
            trace_id: TraceId::Long(high, low),
            span_id: span,
            parent_id: None,
            sampling,
        };
        assert_eq!(
            b3::extract(&headers),
            Ok(Extracted::Context(want)),
            "{headers:?}"
        );
        if format == Format::Both {
            assert_eq!(b3::extract_multi(&headers), Ok(Extracted::Context(want)));
        }
    }
}

#[test]
fn sampling_alone_both_ways() {
    for format in FORMATS {
        // It writes a decision alone for an invalid context: 1 or 0, never debug.
        for sampling in [Sampling::Deny, Sampling::Accept] {
            let flags = otel::TraceFlags::new(u8::from(sampling == Sampling::Accept));
            let span_context = otel::SpanContext::new(
                otel::TraceId::INVALID,
                otel::SpanId::INVALID,
                flags,
                true,
                otel::TraceState::default(),
            );
            let headers = their_inject(format, span_context);
            assert_eq!(
                b3::extract(&headers),
                Ok(Extracted::Sampling(sampling)),
                "{headers:?}"
            );
        }
        // Documented: it cannot extract a decision alone.
        for sampling in [Sampling::Deny, Sampling::Accept, Sampling::Debug] {
            let mut headers = HeaderMap::new();
            b3::inject_sampling(sampling, format, &mut headers);
            assert!(!their_extract(format, &headers).is_valid(), "{headers:?}");
        }
    }
}
