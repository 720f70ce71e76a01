//! `mesh serve NAME VERSION`, the demo's app as the Kubernetes manifests run it: set by its
//! environment, serving until SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn an_app_serves_from_its_environment_until_sigterm() {
    let mut app = Command::new(common::example("mesh"))
        .args(["serve", "msgd", "v1"])
        .env("LISTEN", "127.0.0.1:0")
        // msgd calls nothing: its sidecar's address is only parsed.
        .env("HTTP_PROXY", "http://127.0.0.1:15001/")
        .env_remove("ZIPKIN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mesh serve");
    let mut stdout = BufReader::new(app.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("{first:?}"));

    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET /send HTTP/1.1\r\nHost: msgd\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("message 42 sent"), "{response}");

    let pid = app.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(app.wait().unwrap().success());
}
