//! `functrace-sidecar` as its own process, over real loopback sockets, with hyper apps behind
//! it and curl or hyper in front: B3 in and out, routes, the allow-list, and the admin port.

mod sidecar_support;

use functrace_mesh::export::{Kind, Span};
use sidecar_support::*;

const TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
const SPAN: &str = "e457b5a2e4d86bd1";
const PARENT: &str = "05e3ac9a4f6e3b90";

fn hex(id: impl std::fmt::Display) -> String {
    id.to_string()
}

fn tag<'a>(span: &'a Span, key: &str) -> &'a str {
    span.tags.get(key).map_or("", String::as_str)
}

#[test]
fn inbound_joins_the_callers_b3_and_hands_it_to_the_app() {
    let rt = runtime();
    let app = rt.block_on(echo_app("a"));
    let sidecar = Sidecar::start(&[
        "--service",
        "svca",
        "--inbound",
        &format!("127.0.0.1:0={app}"),
    ]);
    let url = format!("http://{}/pay?amount=1", sidecar.inbound());
    let b3 = format!("b3: {TRACE}-{SPAN}-1-{PARENT}");
    let http1 = curl(&[&url, "-H", &b3]);
    let http2 = curl(&[
        "--http2-prior-knowledge",
        &url,
        "-H",
        &b3,
        "-H",
        "x-request-id: r-2",
    ]);
    for seen in [&http1, &http2] {
        // The app gets the caller's context (multi headers by default), not a new one.
        assert_eq!(echoed_header(seen, "x-b3-traceid").as_deref(), Some(TRACE));
        assert_eq!(echoed_header(seen, "x-b3-spanid").as_deref(), Some(SPAN));
        assert_eq!(
            echoed_header(seen, "x-b3-parentspanid").as_deref(),
            Some(PARENT)
        );
        assert_eq!(echoed_header(seen, "x-b3-sampled").as_deref(), Some("1"));
        assert_eq!(echoed_header(seen, "b3"), None);
    }
    // Generated when absent (a UUID), kept when present.
    assert!(echoed_header(&http1, "x-request-id").is_some_and(|id| id.len() == 36));
    assert_eq!(
        echoed_header(&http2, "x-request-id").as_deref(),
        Some("r-2")
    );

    let (status, spans) = sidecar.stop();
    assert!(status.success(), "{status}");
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let mut protocols: Vec<&str> = spans.iter().map(|s| tag(s, "http.protocol")).collect();
    protocols.sort();
    assert_eq!(protocols, ["HTTP/1.1", "HTTP/2"]);
    for span in &spans {
        assert_eq!(span.kind, Some(Kind::Server));
        assert_eq!(
            (hex(span.trace_id), hex(span.id)),
            (TRACE.into(), SPAN.into())
        );
        assert_eq!(span.parent_id.map(hex).as_deref(), Some(PARENT));
        assert_eq!(span.shared, Some(true));
        assert_eq!(span.name, "get /pay");
        assert_eq!(span.local_endpoint.service_name.as_deref(), Some("svca"));
        assert_eq!(tag(span, "http.method"), "GET");
        assert_eq!(tag(span, "http.path"), "/pay");
        assert_eq!(tag(span, "http.status_code"), "200");
        assert_eq!(tag(span, "upstream.address"), app.to_string());
        assert!(tag(span, "peer.address").starts_with("127.0.0.1:"));
        assert_eq!(tag(span, "request_size"), "0");
        let sizes = [http1.len().to_string(), http2.len().to_string()];
        assert!(sizes.contains(&tag(span, "response_size").to_owned()));
        assert!(!span.tags.contains_key("error"));
    }
    assert!(spans.iter().any(|s| tag(s, "guid:x-request-id") == "r-2"));
}

/// A long path reaches the app whole; the span keeps `tracing.max_path_tag_length` bytes of
/// it (256 by default) in its name and `http.path`, from HTTP/1.1 and HTTP/2 clients alike.
#[test]
fn a_long_path_is_cut_in_the_span_only() {
    let rt = runtime();
    let app = rt.block_on(path_app());
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={app}")]);
    let path = format!("/{}", "p".repeat(999));
    let url = format!("http://{}{path}", sidecar.inbound());
    assert_eq!(curl(&[&url]), path);
    assert_eq!(curl(&["--http2-prior-knowledge", &url]), path);
    let (status, spans) = sidecar.stop();
    assert!(status.success(), "{status}");
    assert_eq!(spans.len(), 2, "{spans:#?}");
    for span in &spans {
        assert_eq!(tag(span, "http.path"), &path[..256]);
        assert_eq!(span.name, format!("get {}", &path[..256]));
    }
}

#[test]
fn a_request_id_beyond_ascii_is_tagged_as_text() {
    let rt = runtime();
    let app = rt.block_on(echo_app("a"));
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={app}")]);
    // UTF-8 `café`, and `café` in Latin-1 (a lone 0xe9, not UTF-8).
    for id in ["café".as_bytes(), b"caf\xe9-2"] {
        let request = http::Request::get(format!("http://{}/", sidecar.inbound()))
            .header("x-request-id", http::HeaderValue::from_bytes(id).unwrap())
            .body(Default::default())
            .unwrap();
        let (response, _) = rt.block_on(send(request));
        assert_eq!(response.status(), 200);
    }
    let (status, spans) = sidecar.stop();
    assert!(status.success(), "{status}");
    let mut ids: Vec<&str> = spans.iter().map(|s| tag(s, "guid:x-request-id")).collect();
    ids.sort();
    assert_eq!(ids, ["caf\\xe9-2", "café"]);
}

#[test]
fn malformed_b3_is_ignored_whole_and_the_request_served_under_a_fresh_trace() {
    let rt = runtime();
    let app = rt.block_on(echo_app("a"));
    let sidecar = Sidecar::start(&["--inbound", &format!("127.0.0.1:0={app}")]);
    let (response, seen) = rt.block_on(get(
        sidecar.inbound(),
        "/",
        &[
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", "not-hex"),
            ("x-b3-sampled", "1"),
        ],
    ));
    assert_eq!(response.status(), 200);
    let trace = echoed_header(&seen, "x-b3-traceid").unwrap();
    assert_ne!(trace, TRACE);
    assert_eq!(trace.len(), 32);
    assert_eq!(echoed_header(&seen, "x-b3-parentspanid"), None);

    let (_, spans) = sidecar.stop();
    assert_eq!(spans.len(), 1);
    assert_eq!(hex(spans[0].trace_id), trace);
    assert_eq!((spans[0].parent_id, spans[0].shared), (None, None));
}

#[test]
fn outbound_routes_by_host_and_as_an_http_proxy_and_refuses_the_rest() {
    let rt = runtime();
    let svcb = rt.block_on(echo_app("svcb"));
    let external = rt.block_on(echo_app("external"));
    let sidecar = Sidecar::start(&[
        "--service",
        "svca",
        "--outbound",
        "127.0.0.1:0",
        "--route",
        &format!("svcb={svcb}@v1"),
        "--allow",
        &external.to_string(),
    ]);
    let out = sidecar.outbound();
    let app_context = [
        "-H",
        &format!("x-b3-traceid: {TRACE}") as &str,
        "-H",
        &format!("x-b3-spanid: {SPAN}"),
        "-H",
        "x-b3-sampled: 1",
    ]
    .map(str::to_owned);
    let app_context: Vec<&str> = app_context.iter().map(String::as_str).collect();

    let by_host = curl(
        &[
            &[&format!("http://{out}/notify"), "-H", "Host: svcb"][..],
            &app_context,
        ]
        .concat(),
    );
    let as_proxy = curl(
        &[
            &["-x", &format!("http://{out}"), "http://svcb/notify"][..],
            &app_context,
        ]
        .concat(),
    );
    let allowed = curl(&[
        "-x",
        &format!("http://{out}"),
        &format!("http://{external}/send"),
    ]);
    for seen in [&by_host, &as_proxy] {
        assert_eq!(echoed_header(seen, "app").as_deref(), Some("svcb"));
        // The next hop gets a child of the app's context: the CLIENT span's.
        assert_eq!(echoed_header(seen, "x-b3-traceid").as_deref(), Some(TRACE));
        assert_eq!(
            echoed_header(seen, "x-b3-parentspanid").as_deref(),
            Some(SPAN)
        );
        assert_ne!(echoed_header(seen, "x-b3-spanid").as_deref(), Some(SPAN));
        assert_eq!(echoed_header(seen, "host").as_deref(), Some("svcb"));
    }
    assert_eq!(echoed_header(&allowed, "app").as_deref(), Some("external"));

    let refused = std::process::Command::new("curl")
        .args([
            "-s",
            "-i",
            "-x",
            &format!("http://{out}"),
            "http://elsewhere:8080/x",
        ])
        .output()
        .unwrap();
    let refused = String::from_utf8(refused.stdout).unwrap();
    assert!(refused.starts_with("HTTP/1.1 502"), "{refused}");
    assert!(
        refused.contains(
            "x-functrace-reason: no route to elsewhere:8080 and it is not on the egress allow-list"
        ),
        "{refused}"
    );

    let config: serde_json::Value = serde_json::from_str(&sidecar.admin_get("/config")).unwrap();
    assert_eq!(
        config["outbound"]["route"][0]["backends"][0]["version"],
        "v1"
    );
    assert_eq!(sidecar.admin_get("/ready"), "ready\n");
    let v1 = r#"functrace_sidecar_requests_total{direction="outbound",route="svcb",version="v1",code="200"}"#;
    sidecar.await_metric(v1, 2.0);
    let unrouted = r#"functrace_sidecar_requests_total{direction="outbound",route="unrouted",version="",code="502"}"#;
    sidecar.await_metric(unrouted, 1.0);

    let (_, spans) = sidecar.stop();
    let client_spans: Vec<&Span> = spans
        .iter()
        .filter(|s| tag(s, "upstream.version") == "v1")
        .collect();
    assert_eq!(client_spans.len(), 2);
    for (span, seen) in client_spans.iter().zip([&by_host, &as_proxy]) {
        assert_eq!(span.kind, Some(Kind::Client));
        assert_eq!(hex(span.trace_id), TRACE);
        assert_eq!(span.parent_id.map(hex).as_deref(), Some(SPAN));
        assert_eq!(Some(hex(span.id)), echoed_header(seen, "x-b3-spanid"));
        assert_eq!(span.name, "get /notify");
        assert_eq!(tag(span, "upstream.address"), svcb.to_string());
        let remote = span.remote_endpoint.as_ref().unwrap();
        assert_eq!(remote.port, Some(svcb.port()));
    }
    let refused_span = spans
        .iter()
        .find(|s| tag(s, "http.status_code") == "502")
        .unwrap();
    assert!(tag(refused_span, "error").contains("egress allow-list"));
    // Without B3 from the app, the call starts a trace of its own.
    assert!(spans
        .iter()
        .any(|s| s.parent_id.is_none() && tag(s, "upstream.address") == external.to_string()));
}

#[test]
fn weighted_routes_split_traffic_and_shift_on_reload() {
    let rt = runtime();
    let v1 = rt.block_on(echo_app("v1"));
    let v2 = rt.block_on(echo_app("v2"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sidecar.toml");
    let write_config = |weights: (u32, u32)| {
        std::fs::write(
            &config,
            format!(
                "[outbound]\nlisten = \"127.0.0.1:0\"\n[[outbound.route]]\nhost = \"svcb\"\n\
                 backends = [{{ address = \"{v1}\", version = \"v1\", weight = {} }}, \
                 {{ address = \"{v2}\", version = \"v2\", weight = {} }}]\n",
                weights.0, weights.1
            ),
        )
        .unwrap();
    };
    write_config((90, 10));
    let sidecar = Sidecar::start(&["--config", config.to_str().unwrap()]);
    let out = sidecar.outbound();
    let count = |n: usize| {
        rt.block_on(async {
            let mut counts = [0usize; 2];
            for _ in 0..n {
                let (response, seen) = get(out, "/notify", &[("host", "svcb")]).await;
                assert_eq!(response.status(), 200);
                match echoed_header(&seen, "app").as_deref() {
                    Some("v1") => counts[0] += 1,
                    Some("v2") => counts[1] += 1,
                    other => panic!("answered by {other:?}"),
                }
            }
            counts
        })
    };
    let [first, second] = count(1000);
    assert!((850..=950).contains(&first), "v1 {first}, v2 {second}");

    // 100% to v2, as a traffic shift is finished.
    write_config((0, 100));
    sidecar.signal("HUP");
    sidecar.stderr_line("config reloaded");
    assert_eq!(count(100), [0, 100]);

    // A bad config is rejected and the running one stays.
    std::fs::write(
        &config,
        "[outbound]\nlisten = \"127.0.0.1:0\"\nroutes = 3\n",
    )
    .unwrap();
    sidecar.signal("HUP");
    let rejected = sidecar.stderr_line("reload rejected");
    assert!(rejected.contains("routes"), "{rejected}");
    assert_eq!(count(10), [0, 10]);

    let v1_total = r#"functrace_sidecar_requests_total{direction="outbound",route="svcb",version="v1",code="200"}"#;
    assert_eq!(sidecar.metric(v1_total), first as f64);
}

#[test]
fn faults_abort_or_delay_a_share_of_requests() {
    let rt = runtime();
    let app = rt.block_on(echo_app("svcb"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sidecar.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[outbound]
listen = "127.0.0.1:0"
[[outbound.route]]
host = "flaky"
backends = [{{ address = "{app}" }}]
fault = {{ abort = {{ percent = 50.0, status = 503 }} }}
[[outbound.route]]
host = "slow"
backends = [{{ address = "{app}" }}]
fault = {{ delay = {{ percent = 100.0, ms = 200 }} }}
"#
        ),
    )
    .unwrap();
    let sidecar = Sidecar::start(&["--config", config.to_str().unwrap()]);
    let out = sidecar.outbound();
    let aborted = rt.block_on(async {
        let mut aborted = 0;
        for _ in 0..400 {
            let (response, _) = get(out, "/", &[("host", "flaky")]).await;
            match response.status().as_u16() {
                200 => {}
                503 => {
                    assert_eq!(
                        response.headers()["x-functrace-reason"],
                        "fault injected: abort"
                    );
                    aborted += 1;
                }
                other => panic!("status {other}"),
            }
        }
        aborted
    });
    // Binomial(400, 0.5): 200 ± 6 standard deviations.
    assert!((140..=260).contains(&aborted), "{aborted} of 400 aborted");

    let started = std::time::Instant::now();
    let (response, _) = rt.block_on(get(out, "/", &[("host", "slow")]));
    assert_eq!(response.status(), 200);
    // A lower bound only: the delay is a sleep of at least this long.
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));

    let (_, spans) = sidecar.stop();
    assert_eq!(
        spans
            .iter()
            .filter(|s| tag(s, "error") == "fault injected: abort")
            .count(),
        aborted
    );
    assert_eq!(
        spans.iter().filter(|s| tag(s, "fault") == "delay").count(),
        1
    );
}

#[test]
fn a_rate_limit_answers_429_beyond_the_bucket() {
    let rt = runtime();
    let app = rt.block_on(echo_app("svcb"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sidecar.toml");
    std::fs::write(
        &config,
        format!(
            "[outbound]\nlisten = \"127.0.0.1:0\"\n[[outbound.route]]\nhost = \"svcb\"\n\
             backends = [{{ address = \"{app}\" }}]\n\
             rate_limit = {{ per_second = 0.001, burst = 3 }}\n"
        ),
    )
    .unwrap();
    let sidecar = Sidecar::start(&["--config", config.to_str().unwrap()]);
    let statuses: Vec<u16> = rt.block_on(async {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            let (response, _) = get(sidecar.outbound(), "/", &[("host", "svcb")]).await;
            statuses.push(response.status().as_u16());
        }
        statuses
    });
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
}

#[test]
fn two_hops_through_four_sidecars_form_one_connected_trace() {
    let rt = runtime();
    // client -> sidecar A (in) -> app A -> sidecar A (out) -> sidecar B (in) -> app B
    let app_b = rt.block_on(echo_app("svcb"));
    let sidecar_b = Sidecar::start(&[
        "--service",
        "svcb",
        "--inbound",
        &format!("127.0.0.1:0={app_b}"),
    ]);
    let sidecar_a_out = std::sync::Arc::new(std::sync::OnceLock::<std::net::SocketAddr>::new());
    let out_for_app = sidecar_a_out.clone();
    let app_a = rt.block_on(serve(
        move |request: http::Request<hyper::body::Incoming>| {
            let out = *out_for_app.get().unwrap();
            async move {
                // What Istio asks of every app: pass the B3 and request id headers on.
                let mut forwarded = vec![("host".to_owned(), "svcb".to_owned())];
                for (name, value) in request.headers() {
                    if name.as_str().starts_with("x-b3-") || name == "x-request-id" {
                        forwarded.push((name.to_string(), value.to_str().unwrap().to_owned()));
                    }
                }
                let headers: Vec<(&str, &str)> = forwarded
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let (_, body) = get(out, "/notify", &headers).await;
                http::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)))
            }
        },
    ));
    let sidecar_a = Sidecar::start(&[
        "--service",
        "svca",
        "--inbound",
        &format!("127.0.0.1:0={app_a}"),
        "--outbound",
        "127.0.0.1:0",
        "--route",
        &format!("svcb={}", sidecar_b.inbound()),
    ]);
    sidecar_a_out.set(sidecar_a.outbound()).unwrap();

    let seen_by_b = curl(&[&format!("http://{}/pay", sidecar_a.inbound())]);
    assert_eq!(echoed_header(&seen_by_b, "app").as_deref(), Some("svcb"));

    let (_, spans_a) = sidecar_a.stop();
    let (_, spans_b) = sidecar_b.stop();
    let spans: Vec<&Span> = spans_a.iter().chain(&spans_b).collect();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let server_a = spans.iter().find(|s| s.name == "get /pay").unwrap();
    let client_a = spans.iter().find(|s| s.kind == Some(Kind::Client)).unwrap();
    let server_b = spans
        .iter()
        .find(|s| tag(s, "upstream.address") == app_b.to_string())
        .unwrap();
    // One trace; each SERVER span shares its CLIENT span's id; every parent is in the trace.
    assert!(spans.iter().all(|s| s.trace_id == server_a.trace_id));
    assert_eq!(server_a.parent_id, None);
    assert_eq!(client_a.parent_id, Some(server_a.id));
    assert_eq!((server_b.id, server_b.shared), (client_a.id, Some(true)));
    assert_eq!(server_b.parent_id, Some(server_a.id));
    assert_eq!(
        Some(hex(client_a.id)),
        echoed_header(&seen_by_b, "x-b3-spanid")
    );
    let request_ids: std::collections::BTreeSet<&str> =
        spans.iter().map(|s| tag(s, "guid:x-request-id")).collect();
    assert_eq!(request_ids.len(), 1, "{request_ids:?}");
}

#[test]
fn check_config_prints_the_effective_config_and_a_bad_one_starts_nothing() {
    let sidecar = env!("CARGO_BIN_EXE_functrace-sidecar");
    let output = std::process::Command::new(sidecar)
        .args([
            "--check-config",
            "--service",
            "svca",
            "--outbound",
            "127.0.0.1:15001",
        ])
        .args(["--route", "svcb=127.0.0.1:8081@v1:90,127.0.0.1:8082@v2:10"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    let config = functrace_sidecar::Config::from_toml(&printed).unwrap();
    assert_eq!(config.service, "svca");
    assert_eq!(config.outbound.unwrap().routes[0].backends[1].weight, 10);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[tracing]\nsample = 2.0\n").unwrap();
    let output = std::process::Command::new(sidecar)
        .args([
            "--config",
            file.to_str().unwrap(),
            "--outbound",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("tracing.sample: 2 is not between 0.0 and 1.0"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "nothing may start");
}

#[test]
fn an_http2_client_reaches_an_http1_only_app_with_protocol_http1() {
    let rt = runtime();
    // An app that speaks HTTP/1.1 alone.
    let app = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let service = hyper::service::service_fn(
                    |request: http::Request<hyper::body::Incoming>| async move {
                        let text = format!(
                            "{:?} host={:?}",
                            request.version(),
                            request.headers().get("host")
                        );
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from(text)),
                        ))
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        addr
    });
    let (sidecar, _dir) = sidecar_to_http1(app);
    let inbound = sidecar.inbound();
    let seen = curl(&["--http2-prior-knowledge", &format!("http://{inbound}/")]);
    assert_eq!(seen, format!("HTTP/1.1 host=Some(\"{inbound}\")"));
}
