//! W3C Trace Context, alone and beside B3: never panics; what the codec reads it writes back
//! the same; and whatever `propagation` reads from both standards, written for the next hop
//! in any standards and B3 format, over the same headers, reads back as the same context.
//!
//! The input is `name: value` lines, so `traceparent`, `tracestate`, `b3` and `x-b3-*`
//! headers mix, repeated or not.
#![no_main]

use functrace_mesh::b3::{Extracted, Format};
use functrace_mesh::propagation::{self, Propagation};
use functrace_mesh::w3c;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const PROPAGATIONS: [Propagation; 4] = [
    Propagation::Same,
    Propagation::B3,
    Propagation::W3c,
    Propagation::Both,
];
const FORMATS: [Format; 3] = [Format::Multi, Format::Single, Format::Both];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    codec(&headers);
    both(&headers);
});

fn codec(headers: &HeaderMap) {
    let Ok(Some(parent)) = w3c::extract(headers) else {
        return;
    };
    let value = headers["traceparent"].as_bytes();
    // Strict: version 00 with the flags it writes has one spelling.
    if value.starts_with(b"00-") && (value.ends_with(b"-00") || value.ends_with(b"-01")) {
        assert_eq!(&w3c::traceparent(&parent.context)[..], value);
    }
    let mut written = HeaderMap::new();
    w3c::inject(&parent.context, parent.tracestate.as_ref(), &mut written);
    assert_eq!(w3c::extract(&written), Ok(Some(parent)));
}

fn both(headers: &HeaderMap) {
    let received = propagation::extract(headers);
    let Extracted::Context(context) = received.extracted else {
        return;
    };
    for propagation in PROPAGATIONS {
        let standards = propagation.standards(received.came_in);
        for format in FORMATS {
            let mut next = headers.clone();
            received.inject(&context, propagation, format, &mut next);
            let again = propagation::extract(&next);
            assert_eq!(again.came_in, standards, "{propagation:?} {format:?}");
            let Extracted::Context(read) = again.extracted else {
                panic!("{propagation:?} {format:?}: {again:?}");
            };
            if standards.b3 {
                assert_eq!(read, context);
            } else {
                // W3C alone: 128 bits, no parent id, sampled or not.
                assert_eq!(w3c::wide(read.trace_id), w3c::wide(context.trace_id));
                assert_eq!(read.span_id, context.span_id);
                assert_eq!(read.sampling.is_sampled(), context.sampling.is_sampled());
            }
        }
    }
}
