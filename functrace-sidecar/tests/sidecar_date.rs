//! `Date` on the sidecar's answers (RFC 9110 §6.6.1), on both HTTP/1.1 paths and to HTTP/2
//! clients: an upstream's `Date` passes as it came, an answer that came without one gets
//! one, and the sidecar's own answers carry one.

mod sidecar_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use http::Request;
use http_body_util::Full;

use sidecar_support::{http2_client, runtime, send_with, sidecar_to_http1, Sidecar};

const UPSTREAM_DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

/// An upstream that answers `/dated` with its own `Date` and anything else without one.
fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let dated = line.contains(" /dated ");
                    while line != "\r\n" {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                    }
                    let date = if dated {
                        format!("date: {UPSTREAM_DATE}\r\n")
                    } else {
                        String::new()
                    };
                    let answer = format!("HTTP/1.1 200 OK\r\n{date}content-length: 2\r\n\r\nok");
                    if writer.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The `date` values of the answer to an HTTP/1.1 `GET path`, and its status line.
fn dates_over_http1(sidecar: SocketAddr, path: &str) -> (String, Vec<String>) {
    let mut stream = TcpStream::connect(sidecar).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let head = answer.split("\r\n\r\n").next().unwrap();
    let status = head.lines().next().unwrap().to_owned();
    let dates = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("date"))
        .map(|(_, value)| value.trim().to_owned())
        .collect();
    (status, dates)
}

fn is_a_date(value: &str) -> bool {
    httpdate::parse_http_date(value).is_ok()
}

#[test]
fn an_upstreams_date_passes_and_an_answer_without_one_gets_one() {
    let (sidecar, _dir) = sidecar_to_http1(upstream());
    let inbound = sidecar.inbound();
    let (status, dates) = dates_over_http1(inbound, "/dated");
    assert_eq!(
        (status.as_str(), dates),
        ("HTTP/1.1 200 OK", vec![UPSTREAM_DATE.to_owned()])
    );
    let (status, dates) = dates_over_http1(inbound, "/undated");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(dates.len() == 1 && is_a_date(&dates[0]), "{dates:?}");

    // HTTP/2 clients, the upstream on HTTP/1.1 (hyper's server adds the missing one).
    runtime().block_on(async {
        for (path, upstreams) in [("/dated", true), ("/undated", false)] {
            let request = Request::get(format!("http://{inbound}{path}"))
                .body(Full::default())
                .unwrap();
            let (response, _) = send_with(&http2_client(), request).await;
            assert_eq!(response.status(), http::StatusCode::OK, "{path}");
            let dates: Vec<_> = response.headers().get_all("date").iter().collect();
            assert_eq!(dates.len(), 1, "{path}");
            let date = dates[0].to_str().unwrap();
            assert_eq!(date == UPSTREAM_DATE, upstreams, "{path}: {date}");
            assert!(is_a_date(date));
        }
    });
}

#[test]
fn the_sidecars_own_answers_carry_a_date() {
    // An app that is not there: the sidecar answers 503 itself.
    let gone = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={gone}")]);
    let (status, dates) = dates_over_http1(sidecar.inbound(), "/");
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    assert!(dates.len() == 1 && is_a_date(&dates[0]), "{dates:?}");
}
