//! HTTP/2 abuse against the sidecar's inbound listener, with a client that writes frames by
//! hand over loopback: floods of SETTINGS, PING, WINDOW_UPDATE, RST_STREAM (rapid reset, and
//! on a closed stream) and empty DATA end in GOAWAY ENHANCE_YOUR_CALM; a header block over the limit is answered 431
//! on its stream and the connection serves on; a header block left open is cut; and a
//! download whose client sends a WINDOW_UPDATE after every DATA frame is not taken for a flood.
//! An idle connection is closed with GOAWAY NO_ERROR.

mod sidecar_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use sidecar_support::*;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const NO_ERROR: u32 = 0;
const ENHANCE_YOUR_CALM: u32 = 11;
/// How long a test waits for an answer; every test ends well within it.
const WAIT: Duration = Duration::from_secs(5);

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

/// An HPACK integer with an `n`-bit prefix, the first byte's other bits `flags`.
fn hpack_int(flags: u8, n: u32, mut value: usize, out: &mut Vec<u8>) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A header block: `method` on `/`, `:scheme http`, `:authority a`, then `extra` as
/// literals without indexing (no Huffman coding).
fn header_block(method: &str, extra: &[(String, String)]) -> Vec<u8> {
    let mut block = vec![if method == "GET" { 0x82 } else { 0x83 }, 0x86, 0x84];
    block.extend([0x01, 0x01, b'a']);
    for (name, value) in extra {
        block.push(0x00);
        hpack_int(0, 7, name.len(), &mut block);
        block.extend(name.as_bytes());
        hpack_int(0, 7, value.len(), &mut block);
        block.extend(value.as_bytes());
    }
    block
}

/// A connection that has sent the preface and its (empty) SETTINGS.
fn connect(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(PREFACE).unwrap();
    stream.write_all(&frame(SETTINGS, 0, 0, &[])).unwrap();
    stream
}

struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// The next frame; `None` at a close or a reset.
fn read_frame(stream: &mut TcpStream) -> Option<Frame> {
    let mut head = [0u8; 9];
    match stream.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("no frame and no close within {WAIT:?}")
        }
        Err(_) => return None,
    }
    let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0; length];
    stream.read_exact(&mut payload).ok()?;
    Some(Frame {
        kind: head[3],
        flags: head[4],
        stream: u32::from_be_bytes(head[5..9].try_into().unwrap()) & !(1 << 31),
        payload,
    })
}

/// Reads until the server's GOAWAY; answers its error code, and checks that the server then
/// closes the connection.
fn goaway_code(stream: &mut TcpStream) -> u32 {
    loop {
        let frame = read_frame(stream).expect("a GOAWAY before the close");
        if frame.kind == GOAWAY {
            let code = u32::from_be_bytes(frame.payload[4..8].try_into().unwrap());
            while read_frame(stream).is_some() {}
            return code;
        }
    }
}

/// Writes `flood` (ignoring a failure: the server may close first), then reads, as a peer
/// that does not read while it floods. Answers the GOAWAY's code and how long it all took.
fn flood_then_read(addr: SocketAddr, setup: &[u8], flood: &[u8]) -> (u32, Duration) {
    let started = Instant::now();
    let mut stream = connect(addr);
    stream.write_all(setup).unwrap();
    let _ = stream.write_all(flood);
    (goaway_code(&mut stream), started.elapsed())
}

fn sidecar() -> (tokio::runtime::Runtime, Sidecar) {
    let rt = runtime();
    let app = rt.block_on(echo_app("a"));
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={app}")]);
    (rt, sidecar)
}

fn repeat(frame: Vec<u8>, times: usize) -> Vec<u8> {
    frame.repeat(times)
}

#[test]
fn a_settings_flood_ends_in_goaway_enhance_your_calm() {
    let (_rt, sidecar) = sidecar();
    let flood = repeat(frame(SETTINGS, 0, 0, &[]), 100_000);
    let (code, took) = flood_then_read(sidecar.inbound(), &[], &flood);
    assert_eq!(code, ENHANCE_YOUR_CALM);
    assert!(took < WAIT, "{took:?}");
}

#[test]
fn a_ping_flood_ends_in_goaway_enhance_your_calm() {
    let (_rt, sidecar) = sidecar();
    let flood = repeat(frame(PING, 0, 0, b"12345678"), 200_000);
    let (code, took) = flood_then_read(sidecar.inbound(), &[], &flood);
    assert_eq!(code, ENHANCE_YOUR_CALM);
    assert!(took < WAIT, "{took:?}");
}

#[test]
fn a_window_update_flood_ends_in_goaway_enhance_your_calm() {
    let (_rt, sidecar) = sidecar();
    let flood = repeat(frame(WINDOW_UPDATE, 0, 0, &1u32.to_be_bytes()), 100_000);
    let (code, took) = flood_then_read(sidecar.inbound(), &[], &flood);
    assert_eq!(code, ENHANCE_YOUR_CALM);
    assert!(took < WAIT, "{took:?}");
}

#[test]
fn a_rapid_reset_flood_ends_in_goaway_enhance_your_calm() {
    let (_rt, sidecar) = sidecar();
    let block = header_block("GET", &[]);
    let mut flood = Vec::new();
    for id in (1..20_000u32).step_by(2) {
        flood.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &block));
        flood.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    let (code, took) = flood_then_read(sidecar.inbound(), &[], &flood);
    assert_eq!(code, ENHANCE_YOUR_CALM);
    assert!(took < WAIT, "{took:?}");
}

#[test]
fn an_rst_stream_flood_on_a_closed_stream_ends_in_goaway_enhance_your_calm() {
    let (_rt, sidecar) = sidecar();
    let mut stream = connect(sidecar.inbound());
    let block = header_block("GET", &[]);
    stream
        .write_all(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block))
        .unwrap();
    // The answer comes, and the stream is closed; then it is reset over and over.
    while read_frame(&mut stream).is_some_and(|f| !(f.kind == DATA && f.flags & END_STREAM != 0)) {}
    let _ = stream.write_all(&repeat(
        frame(RST_STREAM, 0, 1, &8u32.to_be_bytes()),
        100_000,
    ));
    assert_eq!(goaway_code(&mut stream), ENHANCE_YOUR_CALM);
}

#[test]
fn an_empty_data_flood_ends_in_goaway_enhance_your_calm() {
    let (_rt, sidecar) = sidecar();
    let open = frame(HEADERS, END_HEADERS, 1, &header_block("POST", &[]));
    let flood = repeat(frame(DATA, 0, 1, &[]), 10_000);
    let (code, took) = flood_then_read(sidecar.inbound(), &open, &flood);
    assert_eq!(code, ENHANCE_YOUR_CALM);
    assert!(took < WAIT, "{took:?}");
}

#[test]
fn an_oversized_header_block_is_answered_431_and_the_connection_serves_on() {
    let (rt, sidecar) = sidecar();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(sidecar.inbound())
            .await
            .unwrap();
        let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        let request = |headers: usize| {
            let mut request = http::Request::get("http://a/");
            // 1 KB each: 72 are 72 KiB, over the default limit of 64 KiB; h2 sends them in
            // 16 KiB frames (a HEADERS and CONTINUATIONs).
            for i in 0..headers {
                request = request.header(format!("x-big-{i}"), "v".repeat(1000));
            }
            request.body(()).unwrap()
        };
        for (headers, status) in [(72, 431), (1, 200), (72, 431), (1, 200)] {
            let (response, _) = client.send_request(request(headers), true).unwrap();
            let response = tokio::time::timeout(WAIT, response).await.unwrap();
            assert_eq!(response.unwrap().status(), status, "{headers} headers");
        }
    });
}

#[test]
fn a_header_block_left_open_is_cut_at_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sidecar.toml");
    std::fs::write(&config, "[limits]\nheader_read_timeout_ms = 500\n").unwrap();
    let rt = runtime();
    let app = rt.block_on(echo_app("a"));
    let sidecar = Sidecar::start(&[
        "--config",
        config.to_str().unwrap(),
        "--inbound",
        &format!("127.0.0.1:0={app}"),
    ]);
    let mut stream = connect(sidecar.inbound());
    let started = Instant::now();
    let block = header_block("GET", &[]);
    // HEADERS without END_HEADERS, and no CONTINUATION ever.
    stream
        .write_all(&frame(HEADERS, END_STREAM, 1, &block))
        .unwrap();
    let code = goaway_code(&mut stream);
    let took = started.elapsed();
    assert_eq!(code, ENHANCE_YOUR_CALM);
    assert!(took >= Duration::from_millis(450), "cut early: {took:?}");
    assert!(took < Duration::from_secs(3), "cut late: {took:?}");
}

#[test]
fn a_download_acknowledged_frame_by_frame_is_no_flood() {
    let rt = runtime();
    let body = Bytes::from(vec![b'x'; 8 << 20]);
    let app = rt.block_on(serve(move |_| {
        let body = body.clone();
        async move { http::Response::new(Full::new(body)) }
    }));
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={app}")]);
    let mut stream = TcpStream::connect(sidecar.inbound()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(PREFACE).unwrap();
    // INITIAL_WINDOW_SIZE (4) of 16 KiB: the server may send one frame, then waits.
    let mut setting = 4u16.to_be_bytes().to_vec();
    setting.extend(16_384u32.to_be_bytes());
    stream.write_all(&frame(SETTINGS, 0, 0, &setting)).unwrap();
    let block = header_block("GET", &[]);
    stream
        .write_all(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block))
        .unwrap();
    let (mut received, mut updates) = (0, 0);
    loop {
        let frame = read_frame(&mut stream).expect("the whole body before a close");
        assert_ne!(
            frame.kind, GOAWAY,
            "taken for a flood after {updates} updates"
        );
        if frame.kind == SETTINGS && frame.flags & ACK == 0 {
            stream
                .write_all(&self::frame(SETTINGS, ACK, 0, &[]))
                .unwrap();
        }
        if frame.kind != DATA {
            continue;
        }
        assert_eq!(frame.stream, 1);
        received += frame.payload.len();
        if frame.flags & END_STREAM != 0 {
            break;
        }
        // Each DATA frame given back at once, to the stream and to the connection.
        let increment = (frame.payload.len() as u32).to_be_bytes();
        if !frame.payload.is_empty() {
            let mut updates_now = self::frame(WINDOW_UPDATE, 0, 1, &increment);
            updates_now.extend(self::frame(WINDOW_UPDATE, 0, 0, &increment));
            // In one write: two would wait on each other (Nagle's algorithm, delayed ACKs).
            stream.write_all(&updates_now).unwrap();
            updates += 2;
        }
    }
    assert_eq!(received, 8 << 20);
    assert!(updates > 1000, "{updates} updates");
}

/// An HTTP/2 connection without a request in flight past `http2_idle_timeout_ms` is closed
/// with GOAWAY NO_ERROR naming the last stream served, so a client that sent another request
/// meanwhile knows to send it again.
#[test]
fn an_idle_connection_gets_goaway_no_error_with_its_last_stream() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sidecar.toml");
    std::fs::write(&config, "[limits]\nhttp2_idle_timeout_ms = 300\n").unwrap();
    let rt = runtime();
    let app = rt.block_on(echo_app("a"));
    let sidecar = Sidecar::start(&[
        "--config",
        config.to_str().unwrap(),
        "--inbound",
        &format!("127.0.0.1:0={app}"),
    ]);
    let mut stream = connect(sidecar.inbound());
    let block = header_block("GET", &[]);
    for id in [1, 3] {
        stream
            .write_all(&frame(HEADERS, END_STREAM | END_HEADERS, id, &block))
            .unwrap();
        // The whole answer: the frame that ends stream `id`.
        loop {
            let frame = read_frame(&mut stream).expect("an answer");
            assert_ne!(frame.kind, GOAWAY, "closed while a request was in flight");
            if frame.stream == id && frame.flags & END_STREAM != 0 {
                break;
            }
        }
    }
    let idle = Instant::now();
    let goaway = loop {
        let frame = read_frame(&mut stream).expect("a GOAWAY before the close");
        if frame.kind == GOAWAY {
            break frame;
        }
    };
    let took = idle.elapsed();
    let last_stream = u32::from_be_bytes(goaway.payload[..4].try_into().unwrap());
    let code = u32::from_be_bytes(goaway.payload[4..8].try_into().unwrap());
    assert_eq!((last_stream, code), (3, NO_ERROR));
    assert!(took >= Duration::from_millis(250), "closed early: {took:?}");
    assert!(took < Duration::from_secs(3), "closed late: {took:?}");
    assert!(read_frame(&mut stream).is_none(), "closed after the GOAWAY");
}
