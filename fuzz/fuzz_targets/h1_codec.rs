//! The sidecar's own HTTP/1.1 codec (`functrace_sidecar::h1`) on any bytes, read as a request
//! and as a response: never panics; a chunked body decodes the same whatever the pieces it
//! comes in; a request head written on for the next hop parses back as the same request
//! (method, origin-form target, the fields that pass, in order, the added ones, the framing
//! written); and any data, chunk-encoded, decodes back whole.
//!
//! Seeds: the differential test's corpus (`functrace-sidecar/tests/h1_corpus`).
#![no_main]

use functrace_sidecar::h1::chunked::{chunk_start, CHUNK_END, LAST_CHUNK};
use functrace_sidecar::h1::head::MAX_FIELDS;
use functrace_sidecar::h1::write::request_head;
use functrace_sidecar::h1::{ChunkError, ChunkedDecoder, Framing, RequestHead, ResponseHead};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    as_request(data);
    for head_request in [false, true] {
        as_response(data, head_request);
    }
    round_trip_chunks(data);
});

fn as_request(data: &[u8]) {
    let mut head = RequestHead::default();
    if head.parse(data) != Ok(true) {
        return;
    }
    let Ok(framing) = head.framing(data) else {
        return;
    };
    let body = &data[head.fields.len..];
    if framing == Framing::Chunked {
        same_in_any_pieces(body);
    }
    let added: [(&[u8], &[u8]); 2] = [(b"b3", b"1-2-1"), (b"x-request-id", b"r")];
    let mut written = Vec::new();
    request_head(&mut written, data, &head, b"app:80", &added, framing);
    // Host, the added fields and the framing may take a head near the limit over it; the
    // next hop may refuse that (as a proxy's own additions can make it do).
    if head.fields.fields.len() + 4 > MAX_FIELDS {
        return;
    }

    let mut again = RequestHead::default();
    assert_eq!(again.parse(&written), Ok(true), "{:?}", String::from_utf8_lossy(&written));
    assert_eq!(again.fields.len, written.len());
    assert_eq!(written[again.method.clone()], data[head.method.clone()]);
    assert_eq!(again.framing(&written), Ok(framing));
    let passed: Vec<(&[u8], &[u8])> = head
        .fields
        .fields
        .iter()
        .filter(|field| !head.fields.stays(data, field))
        .map(|field| (&data[field.name.clone()], &data[field.value.clone()]))
        .collect();
    let written_fields: Vec<(&[u8], &[u8])> = again
        .fields
        .fields
        .iter()
        .map(|field| (&written[field.name.clone()], &written[field.value.clone()]))
        .collect();
    assert!(written_fields.starts_with(&passed), "{:?}", String::from_utf8_lossy(&written));
    for added in added {
        assert!(written_fields.contains(&added));
    }
}

fn as_response(data: &[u8], head_request: bool) {
    let mut head = ResponseHead::default();
    if head.parse(data) != Ok(true) {
        return;
    }
    if head.framing(data, head_request) == Ok(Framing::Chunked) {
        same_in_any_pieces(&data[head.fields.len..]);
    }
}

/// `body` decoded at once and in pieces of 1, 3 and 16 bytes: the same data, the same
/// bytes taken, the same error.
fn same_in_any_pieces(body: &[u8]) {
    let whole = decode(body, body.len().max(1));
    for piece in [1, 3, 16] {
        assert_eq!(decode(body, piece), whole, "pieces of {piece}");
    }
}

/// The data, and the bytes taken to the end of the body, feeding `piece` bytes at a time;
/// `Ok(None)` when the input ends first.
fn decode(body: &[u8], piece: usize) -> Result<Option<(Vec<u8>, usize)>, ChunkError> {
    let mut decoder = ChunkedDecoder::default();
    let (mut data, mut at) = (Vec::new(), 0);
    while !decoder.is_done() {
        let end = (at + piece).min(body.len());
        if at == end {
            return Ok(None);
        }
        let step = decoder.step(&body[at..end])?;
        data.extend_from_slice(&body[at..end][step.data]);
        at += step.consumed;
    }
    Ok(Some((data, at)))
}

fn round_trip_chunks(data: &[u8]) {
    let mut body = Vec::new();
    for chunk in data.chunks(7).filter(|chunk| !chunk.is_empty()) {
        chunk_start(&mut body, chunk.len());
        body.extend_from_slice(chunk);
        body.extend_from_slice(CHUNK_END);
    }
    body.extend_from_slice(LAST_CHUNK);
    assert_eq!(decode(&body, 5), Ok(Some((data.to_vec(), body.len()))));
}
