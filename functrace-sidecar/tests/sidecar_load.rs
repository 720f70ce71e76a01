//! The real `functrace-sidecar` process under steady load on loopback: stopped (SIGTERM),
//! reloaded (SIGHUP), and left running for a minute. What is checked is what an SRE would
//! look at: exit status, failed requests, spans against answered requests, memory.

mod sidecar_support;

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use functrace_mesh::export::Span;
use sidecar_support::*;

/// One HTTP/1.1 connection, kept alive: requests one after another, as a pooled client
/// sends them.
struct KeepAlive {
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    fn open(addr: SocketAddr) -> io::Result<KeepAlive> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(PATIENCE))?;
        stream.set_nodelay(true)?;
        Ok(KeepAlive {
            reader: BufReader::new(stream),
        })
    }

    /// GET `path`: (status, body).
    fn get(&mut self, path: &str) -> io::Result<(u16, String)> {
        // One write: in pieces, each would wait for the last one's acknowledgement.
        let request = format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n");
        self.reader.get_mut().write_all(request.as_bytes())?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| io::Error::other(format!("a status line: {line:?}")))?;
        let mut length = 0;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().map_err(io::Error::other)?;
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// The path of each span.
fn span_paths(spans: &[Span]) -> HashSet<String> {
    spans
        .iter()
        .filter_map(|span| span.tags.get("http.path").cloned())
        .collect()
}

/// Clients that send GET `/c{client}/{n}` over kept-alive connections (a new one every
/// 50 requests, or when one fails) until `stop`, or until the sidecar refuses connections.
/// Each answer's path goes to `answered`, each failure's text to `failed`.
fn clients(
    inbound: SocketAddr,
    count: usize,
    stop: &Arc<AtomicBool>,
    answered: &mpsc::Sender<String>,
    failed: &mpsc::Sender<String>,
) -> Vec<JoinHandle<()>> {
    (0..count)
        .map(|client| {
            let (stop, answered, failed) = (stop.clone(), answered.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut connection) = KeepAlive::open(inbound) else {
                        return;
                    };
                    for _ in 0..50 {
                        let path = format!("/c{client}/{n}");
                        n += 1;
                        match connection.get(&path) {
                            Ok((200, body)) if body == path => {
                                let _ = answered.send(path);
                            }
                            Ok(other) => {
                                let _ = answered.send(path.clone());
                                let _ = failed.send(format!("{path}: {other:?}"));
                            }
                            Err(err) => {
                                let _ = failed.send(format!("{path}: {err}"));
                                break;
                            }
                        }
                    }
                }
            })
        })
        .collect()
}

/// Waits for `count` more answers.
fn await_answers(answered: &mpsc::Receiver<String>, seen: &mut HashSet<String>, count: usize) {
    for _ in 0..count {
        let path = answered
            .recv_timeout(PATIENCE)
            .expect("the clients are answered");
        seen.insert(path);
    }
}

/// SIGTERM while clients send: the sidecar stops accepting, lets what is in flight finish,
/// exits 0, and every request it answered has its span on disk.
#[test]
fn sigterm_under_load_exits_0_with_every_answered_span_written() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={app}")]);
    let stop = Arc::new(AtomicBool::new(false));
    let (answers, answered) = mpsc::channel();
    let (failures, _failed) = mpsc::channel();
    let clients = clients(sidecar.inbound(), 4, &stop, &answers, &failures);
    drop(answers);
    let mut seen = HashSet::new();
    await_answers(&answered, &mut seen, 400);
    sidecar.signal("TERM");
    let (status, spans) = sidecar.wait();
    // The listener is closed: each client ends at its next connection.
    for client in clients {
        client.join().unwrap();
    }
    seen.extend(answered.try_iter());
    assert!(status.success(), "{status:?}");
    let written = span_paths(&spans);
    let missing: Vec<&String> = seen.difference(&written).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered requests have no span: {:?}",
        missing.len(),
        seen.len(),
        &missing[..missing.len().min(10)]
    );
}

/// Twenty SIGHUPs (config reloads) while clients send: not one request fails.
#[test]
fn sighup_under_load_fails_no_request() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sidecar.toml");
    std::fs::write(
        &config,
        format!("[[inbound]]\nlisten = \"127.0.0.1:0\"\napp = \"{app}\"\n"),
    )
    .unwrap();
    let sidecar = Sidecar::start(&["--config", config.to_str().unwrap()]);
    let stop = Arc::new(AtomicBool::new(false));
    let (answers, answered) = mpsc::channel();
    let (failures, failed) = mpsc::channel();
    let clients = clients(sidecar.inbound(), 4, &stop, &answers, &failures);
    let mut seen = HashSet::new();
    for _ in 0..20 {
        await_answers(&answered, &mut seen, 50);
        sidecar.signal("HUP");
        sidecar.stderr_line("config reloaded");
    }
    await_answers(&answered, &mut seen, 50);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let failures: Vec<String> = failed.try_iter().collect();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(seen.len() >= 21 * 50);
}

/// A minute of steady load, with clients that misbehave beside it: resident memory grows
/// by at most 20%, or by at most 24 bytes per request answered, between the second ten
/// seconds and the last ten; no request fails, and every answered request has its span.
///
/// Resident memory is compared by the floor of each window: the lowest of samples taken
/// every 250 ms. Above it, memory moves by up to a quarter as the export queue fills and
/// empties and the allocator gives pages back, and even a window's median does: over 170 s
/// of this load, ten-second medians of 23.8 to 29.4 MiB with no trend, so two of them
/// differed by more than 20% in two runs of five. A leak raises the floor, which the
/// rhythm does not (the floors of one run: 22.1 to 24.8 MiB after the first ten seconds).
/// A leak of 32 bytes per request fails it (tried: floors +38%; the same build without
/// it, +3.6%). On a later machine the floors of builds without a leak grew by 6% to 24%
/// over runs, 2 to 11 bytes per request answered, and with the 32-byte leak by 66%, 39
/// bytes per request: a leak grows with the requests, the allocator's drift by a few MiB
/// whatever their count, so growth past 20% fails only when it is also past 24 bytes per
/// request.
#[test]
fn a_minute_of_load_keeps_memory_flat_and_every_span() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={app}")]);
    let inbound = sidecar.inbound();
    let stop = Arc::new(AtomicBool::new(false));
    let (answers, answered) = mpsc::channel();
    let (failures, failed) = mpsc::channel();
    let mut threads = clients(inbound, 3, &stop, &answers, &failures);
    drop(answers);
    let hostile_stop = stop.clone();
    // Beside them: connections that leave at once, mid-head, or before reading their answer.
    threads.push(std::thread::spawn(move || {
        let mut n = 0;
        while !hostile_stop.load(Ordering::Relaxed) {
            n += 1;
            let Ok(mut stream) = TcpStream::connect(inbound) else {
                return;
            };
            let _ = match n % 3 {
                0 => Ok(()),
                1 => stream.write_all(b"GET /half HTTP/1.1\r\nHo"),
                _ => stream.write_all(b"GET /unread HTTP/1.1\r\nHost: a\r\n\r\n"),
            };
        }
    }));
    let mut seen = HashSet::new();
    // Answers are taken for `length`; the lowest resident memory sampled meanwhile.
    let soak = |seen: &mut HashSet<String>, length: Duration| {
        let mut samples = Vec::new();
        let mut next_sample = Instant::now();
        let until = next_sample + length;
        while Instant::now() < until {
            await_answers(&answered, seen, 100);
            if Instant::now() >= next_sample {
                samples.push(sidecar.status_kib("VmRSS"));
                next_sample += Duration::from_millis(250);
            }
        }
        samples.into_iter().min().expect("a sample at the start")
    };
    soak(&mut seen, Duration::from_secs(10));
    let warm = soak(&mut seen, Duration::from_secs(10));
    let answered_when_warm = seen.len();
    soak(&mut seen, Duration::from_secs(30));
    let end = soak(&mut seen, Duration::from_secs(10));
    let answered_since_warm = (seen.len() - answered_when_warm).max(1) as u64;
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    seen.extend(answered.try_iter());
    let (status, spans) = sidecar.stop();
    assert!(status.success());
    let grown_per_request = end.saturating_sub(warm) * 1024 / answered_since_warm;
    eprintln!(
        "{} requests answered; resident memory (floor) {warm} KiB in 10-20 s, {end} KiB in 50-60 s ({grown_per_request} bytes per request answered since)",
        seen.len()
    );
    assert!(
        end * 10 <= warm * 12 || grown_per_request <= 24,
        "resident memory grew from {warm} KiB to {end} KiB, {grown_per_request} bytes per request"
    );
    let failures: Vec<String> = failed.try_iter().collect();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let written = span_paths(&spans);
    let missing = seen.difference(&written).count();
    assert_eq!(missing, 0, "of {} answered requests", seen.len());
}

/// Spans whose clients made them large (a 30 KiB path each, in its name and its tags, kept
/// whole by `tracing.max_path_tag_length`)
/// while the span sink stalls (a Zipkin collector whose connections are never answered): the
/// export queue holds at most its byte bound of them (4 MiB, and a batch of 1 MiB in the
/// export thread's hands) and drops the rest, counted;
/// every request is still answered. Without the bound, the 1,500 spans (some 60 KiB each)
/// would all wait in memory: about 90 MiB.
#[test]
fn large_spans_behind_a_stalled_sink_hold_bounded_memory() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    // Connections to it complete in the kernel's backlog; nothing reads or answers them.
    let collector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let zipkin = format!("http://{}/api/v2/spans", collector.local_addr().unwrap());
    // Spans that keep the whole path (256 bytes by default).
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sidecar.toml");
    let text = format!(
        "[[inbound]]\nlisten = \"127.0.0.1:0\"\napp = \"{app}\"\n\
         [tracing]\nzipkin = \"{zipkin}\"\nmax_path_tag_length = 65536\n"
    );
    std::fs::write(&config, text).unwrap();
    let sidecar = Sidecar::start(&["--config", config.to_str().unwrap()]);
    let path = format!("/{}", "x".repeat(30 * 1024));
    let mut client = KeepAlive::open(sidecar.inbound()).unwrap();
    client.get("/warm").unwrap();
    let before = sidecar.status_kib("VmRSS");
    for _ in 0..1500 {
        let (status, body) = client.get(&path).unwrap();
        assert_eq!((status, body.len()), (200, path.len()));
    }
    let after = sidecar.status_kib("VmRSS");
    let dropped = sidecar.metric("functrace_sidecar_spans_dropped_total");
    eprintln!("resident memory {before} KiB before, {after} KiB after; {dropped} spans dropped");
    assert!(dropped > 0.0, "the stalled sink's queue dropped nothing");
    assert!(
        after < before + 24 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
    drop(collector);
}
