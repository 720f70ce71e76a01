//! OpenTelemetry interop (the `otel` feature): B3 as an OpenTelemetry
//! [`TextMapPropagator`], and functrace's [`TraceContext`] to and from OpenTelemetry's
//! [`SpanContext`]. (The other direction of spans, functrace's spans to an `opentelemetry_sdk`
//! `SpanExporter`, is `ReporterBuilder::span_exporter` in [`export`](crate::export).)
//!
//! ```
//! use std::collections::HashMap;
//!
//! use functrace_mesh::b3::Format;
//! use functrace_mesh::otel::B3Propagator;
//! use opentelemetry::global;
//! use opentelemetry::trace::TraceContextExt;
//!
//! global::set_text_map_propagator(B3Propagator::new(Format::Single));
//! let incoming = HashMap::from([(
//!     "b3".to_owned(),
//!     "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90".to_owned(),
//! )]);
//! let cx = global::get_text_map_propagator(|propagator| propagator.extract(&incoming));
//! assert!(cx.span().span_context().is_sampled());
//!
//! let mut outgoing = HashMap::new();
//! global::get_text_map_propagator(|propagator| propagator.inject_context(&cx, &mut outgoing));
//! assert_eq!(outgoing["b3"], incoming["b3"]); // the parent id and the id width kept
//! ```
//!
//! # Mapping
//!
//! A B3 context and an OpenTelemetry span context share the trace id, the span id and the
//! sampled flag. OpenTelemetry's has no parent id, no debug and no "defer" state, and its
//! trace ids are 128-bit:
//!
//! - [`to_span_context`]: a 64-bit trace id gets eight zero bytes in front; accept and debug
//!   are `SAMPLED`, deny and defer are not; the parent id is left out.
//! - [`to_trace_context`]: `None` for an invalid span context; a trace id whose high half is
//!   zero becomes a 64-bit one (`TraceId::Short`); `SAMPLED` is accept, its absence deny (as
//!   OpenTelemetry's own B3 propagator writes it, `x-b3-sampled: 0`); no parent id.
//!
//! The propagator keeps what the span context cannot hold: extraction stores the whole B3
//! context in the OpenTelemetry [`Context`] beside the remote span context, and injection of
//! that same span (same trace and span id) writes it back as it came, parent id, debug,
//! defer and 64-bit width included. A new span started from it is injected from its span
//! context (so without a parent id: OpenTelemetry's spans do not say theirs). A sampling
//! decision without ids (`b3: 0`) has no span context in OpenTelemetry: it extracts as
//! nothing, as OpenTelemetry's own B3 propagator does. Malformed B3 extracts as nothing too.

use functrace::{Sampling, TraceContext, TraceId as B3TraceId};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;

use crate::b3::{self, Extracted, Format};

const SINGLE: &str = "b3";
const MULTI: [&str; 5] = [
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
];

/// B3 as an OpenTelemetry propagator, with the strict codec of [`b3`]:
/// `global::set_text_map_propagator(B3Propagator::default())` makes OpenTelemetry's
/// instrumentation read and write B3 as functrace's layers and sidecar do.
///
/// Extraction reads the single `b3` header, else the `x-b3-*` headers, whatever the injection
/// format (see [`b3::extract`]); injection writes the [`Format`] given to
/// [`new`](Self::new) (multiple headers by default). [`fields`](TextMapPropagator::fields)
/// names the headers of that format.
#[derive(Clone, Debug)]
pub struct B3Propagator {
    format: Format,
    fields: Vec<String>,
}

/// The B3 context an extraction found, kept in the OpenTelemetry context beside the span
/// context, for what the span context cannot hold.
#[derive(Clone, Copy, Debug)]
struct ExtractedB3(TraceContext);

impl B3Propagator {
    /// A propagator injecting `format`.
    pub fn new(format: Format) -> B3Propagator {
        let mut fields = Vec::new();
        if matches!(format, Format::Single | Format::Both) {
            fields.push(SINGLE.to_owned());
        }
        if matches!(format, Format::Multi | Format::Both) {
            fields.extend(MULTI.map(str::to_owned));
        }
        B3Propagator { format, fields }
    }

    /// The format injected.
    pub fn format(&self) -> Format {
        self.format
    }
}

impl Default for B3Propagator {
    /// Multiple headers, as [`Format::default`].
    fn default() -> B3Propagator {
        B3Propagator::new(Format::default())
    }
}

impl TextMapPropagator for B3Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let span_context = span.span_context();
        let Some(converted) = to_trace_context(span_context) else {
            return;
        };
        // The extracted B3 context itself, when this is still that span.
        let context = match cx.get::<ExtractedB3>() {
            Some(ExtractedB3(extracted))
                if to_span_context(extracted).trace_id() == span_context.trace_id()
                    && extracted.span_id == converted.span_id =>
            {
                *extracted
            }
            _ => converted,
        };
        let mut headers = HeaderMap::new();
        b3::inject(&context, self.format, &mut headers);
        for (name, value) in &headers {
            if let Ok(value) = value.to_str() {
                injector.set(name.as_str(), value.to_owned());
            }
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let mut headers = HeaderMap::new();
        for name in std::iter::once(SINGLE).chain(MULTI) {
            if let Some(value) = extractor
                .get(name)
                .and_then(|value| HeaderValue::from_str(value).ok())
            {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        match b3::extract(&headers) {
            Ok(Extracted::Context(context)) => {
                let span_context = to_span_context(&context);
                cx.with_remote_span_context(span_context)
                    .with_value(ExtractedB3(context))
            }
            _ => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// OpenTelemetry's span context of a B3 context, marked remote (it came from, or goes to,
/// another service). See the [module docs](self#mapping) for what is kept.
pub fn to_span_context(context: &TraceContext) -> SpanContext {
    let trace_id = TraceId::from_bytes(crate::export::trace_id_bytes(context.trace_id));
    let flags = if context.sampling.is_sampled() {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    SpanContext::new(
        trace_id,
        SpanId::from_bytes(context.span_id.get().to_be_bytes()),
        flags,
        true,
        TraceState::default(),
    )
}

/// The B3 context of an OpenTelemetry span context, `None` when it is not valid. See the
/// [module docs](self#mapping) for what is kept.
pub fn to_trace_context(span_context: &SpanContext) -> Option<TraceContext> {
    if !span_context.is_valid() {
        return None;
    }
    let trace_id = u128::from_be_bytes(span_context.trace_id().to_bytes());
    let (high, low) = ((trace_id >> 64) as u64, trace_id as u64);
    let trace_id = if high == 0 {
        B3TraceId::Short(std::num::NonZeroU64::new(low)?)
    } else {
        B3TraceId::Long(high, low)
    };
    Some(TraceContext {
        trace_id,
        span_id: functrace::SpanId::new(u64::from_be_bytes(span_context.span_id().to_bytes()))?,
        parent_id: None,
        sampling: if span_context.is_sampled() {
            Sampling::Accept
        } else {
            Sampling::Deny
        },
    })
}
