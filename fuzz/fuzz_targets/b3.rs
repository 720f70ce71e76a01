//! The B3 codec: never panics, and what it reads it writes back the same.
//!
//! The first byte picks the encoding. `b3` (single header): the input is the header's value;
//! a context or a decision read from it is written back byte for byte (the codec is strict:
//! one spelling per context), and reads back the same in every format. `x-b3-*` (multiple
//! headers): the input is `name: value` lines; a context or decision read from them, written
//! in any format into the same headers (replacing them) or into empty ones, reads back the
//! same.
#![no_main]

use functrace_mesh::b3::{self, Extracted, Format};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const FORMATS: [Format; 3] = [Format::Multi, Format::Single, Format::Both];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        single(rest);
    } else {
        multi(rest);
    }
});

fn single(value: &[u8]) {
    let mut headers = HeaderMap::new();
    let Ok(header) = HeaderValue::from_bytes(value) else {
        return;
    };
    headers.insert("b3", header);
    let extracted = b3::extract(&headers);
    if let Ok(text) = std::str::from_utf8(value) {
        // No `x-b3-*` headers to fall back on: the same answer.
        assert_eq!(b3::extract_single(text), extracted);
    }
    let Ok(extracted) = extracted else {
        return;
    };
    let mut written = HeaderMap::new();
    write(&extracted, Format::Single, &mut written);
    if extracted != Extracted::None {
        assert_eq!(written.get("b3").map(HeaderValue::as_bytes), Some(value));
    }
    round_trip(&extracted, &headers);
}

fn multi(lines: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in lines.split(|&b| b == b'\n') {
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
    if let Ok(extracted) = b3::extract(&headers) {
        round_trip(&extracted, &headers);
    }
}

/// Written in each format, into `original` or into nothing, `extracted` reads back the same.
fn round_trip(extracted: &Extracted, original: &HeaderMap) {
    for format in FORMATS {
        for start in [HeaderMap::new(), original.clone()] {
            let mut headers = start;
            write(extracted, format, &mut headers);
            assert_eq!(b3::extract(&headers).as_ref(), Ok(extracted), "{format:?}");
        }
    }
}

fn write(extracted: &Extracted, format: Format, headers: &mut HeaderMap) {
    match *extracted {
        Extracted::Context(context) => b3::inject(&context, format, headers),
        Extracted::Sampling(sampling) => b3::inject_sampling(sampling, format, headers),
        Extracted::None => {}
    }
}
