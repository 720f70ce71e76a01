//! The server and client layers over real loopback sockets: a front server (server layer)
//! that calls a back server through a client (client layer). The back server echoes the
//! headers it received.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use functrace_mesh::export::{Kind, Reporter, Span};
use functrace_mesh::layer::{StatusErrors, Tracing};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::{Service, ServiceBuilder, ServiceExt};

type Body = Full<Bytes>;

/// Serves `service` on 127.0.0.1:0 until the runtime ends; returns its address.
async fn serve<S, B>(service: S) -> SocketAddr
where
    S: Service<Request<hyper::body::Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = hyper_util::service::TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The back server: answers with the request's headers, one `name: value` per line.
async fn echo_server(tracing: &Tracing) -> SocketAddr {
    let echo = tower::service_fn(|request: Request<hyper::body::Incoming>| async move {
        let text: String = request
            .headers()
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap()))
            .collect();
        Ok::<_, Infallible>(Response::new(Body::from(text)))
    });
    serve(ServiceBuilder::new().layer(tracing.server()).service(echo)).await
}

/// The front server: calls the back server through the client layer, returns its answer.
async fn front_server(tracing: &Tracing, back: SocketAddr) -> SocketAddr {
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let client = ServiceBuilder::new()
        .layer(tracing.client())
        .service(client);
    let front = tower::service_fn(move |_request: Request<hyper::body::Incoming>| {
        let client = client.clone();
        async move {
            let outgoing = Request::get(format!("http://{back}/stock"))
                .body(Body::default())
                .unwrap();
            let answer = client.oneshot(outgoing).await.expect("back server");
            let text = answer.into_body().collect().await.unwrap().to_bytes();
            Ok::<_, Infallible>(Response::new(Body::from(text)))
        }
    });
    serve(ServiceBuilder::new().layer(tracing.server()).service(front)).await
}

/// Spans reported by service `front` to a JSON-lines file of this test's own.
struct Recorded {
    path: PathBuf,
    reporter: Reporter,
}

impl Recorded {
    fn new(test: &str) -> Recorded {
        let path = std::env::temp_dir().join(format!(
            "functrace-http-{test}-{}.jsonl",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let reporter = Reporter::builder("front")
            .json_lines(&path)
            .build()
            .unwrap();
        Recorded { path, reporter }
    }

    fn tracing(&self) -> Tracing {
        Tracing::new("front").reporter(self.reporter.clone())
    }

    /// Everything reported so far (flushed first); removes the file.
    fn spans(self) -> Vec<Span> {
        self.reporter.flush();
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let _ = std::fs::remove_file(&self.path);
        text.lines()
            .map(|line| serde_json::from_str(line).expect("a span per line"))
            .collect()
    }
}

/// Sends one GET with `headers` to `addr`; returns status and body.
async fn get(addr: SocketAddr, headers: &[(&str, &str)]) -> (u16, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let mut request = Request::get(format!("http://{addr}/order"))
        .body(Body::default())
        .unwrap();
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn header<'a>(echo: &'a str, name: &str) -> Option<&'a str> {
    echo.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

const TRACE: &str = "463ac35c9f6413ad48485a3953bb6124";
const CALLER_SPAN: &str = "a2fb4a1d1a96d312";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_crosses_two_hops_with_server_and_client_spans() {
    let recorded = Recorded::new("hops");
    let tracing = recorded.tracing();
    let back = echo_server(&tracing).await;
    let front = front_server(&tracing, back).await;

    let (status, echo) = get(
        front,
        &[
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", CALLER_SPAN),
            ("x-b3-sampled", "1"),
            ("x-request-id", "req-1"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    // The back server got the same trace, a new span id, the request id carried along.
    assert_eq!(header(&echo, "x-b3-traceid"), Some(TRACE));
    assert_eq!(header(&echo, "x-b3-parentspanid"), Some(CALLER_SPAN));
    assert_eq!(header(&echo, "x-b3-sampled"), Some("1"));
    assert_eq!(header(&echo, "x-request-id"), Some("req-1"));
    let sent_span = header(&echo, "x-b3-spanid").unwrap().to_owned();
    assert_ne!(sent_span, CALLER_SPAN);

    let spans = recorded.spans();
    let kinds: Vec<(Option<Kind>, String, Option<bool>)> = spans
        .iter()
        .map(|s| (s.kind, s.id.to_string(), s.shared))
        .collect();
    // Back SERVER (shares the CLIENT's id), front CLIENT, front SERVER (shares the caller's).
    assert!(
        kinds.contains(&(Some(Kind::Server), sent_span.clone(), Some(true))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(Some(Kind::Client), sent_span.clone(), None)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(Some(Kind::Server), CALLER_SPAN.to_owned(), Some(true))),
        "{kinds:?}"
    );
    assert_eq!(spans.len(), 3);
    for span in &spans {
        assert_eq!(span.trace_id.to_string(), TRACE);
        assert_eq!(
            span.tags.get("http.status_code").map(String::as_str),
            Some("200")
        );
        assert_eq!(span.local_endpoint.service_name.as_deref(), Some("front"));
    }
    let client = spans.iter().find(|s| s.kind == Some(Kind::Client)).unwrap();
    assert_eq!(
        client.parent_id.map(|p| p.to_string()).as_deref(),
        Some(CALLER_SPAN)
    );
    assert_eq!(
        client.remote_endpoint.as_ref().and_then(|e| e.port),
        Some(back.port())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_b3_is_ignored_whole_and_the_request_served() {
    let recorded = Recorded::new("malformed");
    let tracing = recorded.tracing();
    let back = echo_server(&tracing).await;
    for bad in [
        &[("b3", "463ac35c9f6413ad-zz")][..],
        &[("x-b3-traceid", TRACE)][..],
        &[
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", CALLER_SPAN),
            ("x-b3-sampled", "yes"),
        ][..],
    ] {
        let (status, echo) = get(back, bad).await;
        assert_eq!(status, 200, "{bad:?}");
        // A fresh trace: a new trace id, and a generated request id.
        assert_ne!(header(&echo, "x-b3-traceid"), Some(TRACE), "{bad:?}");
        assert_eq!(
            header(&echo, "x-request-id").map(str::len),
            Some(36),
            "{echo}"
        );
    }
    let spans = recorded.spans();
    assert_eq!(spans.len(), 3);
    assert!(spans
        .iter()
        .all(|s| s.parent_id.is_none() && s.shared.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_trace_is_propagated_and_not_recorded() {
    let recorded = Recorded::new("denied");
    let tracing = recorded.tracing();
    let back = echo_server(&tracing).await;
    let front = front_server(&tracing, back).await;
    let (status, echo) = get(front, &[("b3", "0")]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&echo, "x-b3-sampled"), Some("0"));
    let (_, echo) = get(front, &[]).await;
    assert_eq!(
        header(&echo, "x-b3-sampled"),
        Some("1"),
        "sample rate 1.0 by default"
    );
    assert_eq!(
        recorded.spans().len(),
        3,
        "only the sampled request's spans"
    );
}

#[tokio::test]
async fn sample_rate_zero_records_nothing_new() {
    let recorded = Recorded::new("rate0");
    let tracing = recorded.tracing().sample_rate(0.0);
    let back = echo_server(&tracing).await;
    let (_, echo) = get(back, &[]).await;
    assert_eq!(header(&echo, "x-b3-sampled"), Some("0"));
    let (_, echo) = get(back, &[("b3", &format!("{TRACE}-{CALLER_SPAN}-1"))]).await;
    // An incoming decision wins; the handler sees it in the multi headers that replaced `b3`.
    assert_eq!(header(&echo, "x-b3-sampled"), Some("1"));
    assert_eq!(header(&echo, "x-b3-traceid"), Some(TRACE));
    assert_eq!(header(&echo, "b3"), None);
    assert_eq!(recorded.spans().len(), 1);
}

#[cfg(feature = "trace")]
mod traced {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[functrace::trace]
    async fn handle() -> &'static str {
        tokio::task::yield_now().await;
        "served"
    }

    #[tokio::test]
    async fn requests_on_one_keep_alive_connection_print_under_ids_of_their_own() {
        let memory = functrace::MemorySink::new();
        functrace::Builder::new()
            .output(functrace::Output::Memory(memory.clone()))
            .install()
            .unwrap();
        let service = ServiceBuilder::new()
            .layer(Tracing::new("front").server())
            .service(tower::service_fn(
                |_: Request<hyper::body::Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Body::from(handle().await)))
                },
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                accepted.fetch_add(1, Ordering::SeqCst);
                let service = hyper_util::service::TowerToHyperService::new(service.clone());
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
        for _ in 0..2 {
            let request = Request::get(format!("http://{addr}/")).body(Body::default());
            let response = client.request(request.unwrap()).await.unwrap();
            response.into_body().collect().await.unwrap();
        }
        functrace::Builder::new()
            .output(functrace::Output::Null)
            .install()
            .unwrap();
        assert_eq!(connections.load(Ordering::SeqCst), 1, "one connection");
        let lines = memory.lines();
        let ids: Vec<&str> = lines
            .iter()
            .filter(|l| l.contains("->http_layers::traced::handle"))
            .map(|l| l.split_once(' ').unwrap().0)
            .collect();
        assert_eq!(ids.len(), 2, "{lines:#?}");
        assert_ne!(ids[0], ids[1], "{lines:#?}");
        for line in &lines {
            assert!(
                line.contains(":    ->") || line.contains(":    <-"),
                "depth 1: {line}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_beyond_ascii_is_tagged_as_text() {
    let recorded = Recorded::new("request-id");
    let tracing = recorded.tracing();
    let ok = tower::service_fn(|_: Request<hyper::body::Incoming>| async {
        Ok::<_, Infallible>(Response::new(Body::from("ok")))
    });
    let server = serve(ServiceBuilder::new().layer(tracing.server()).service(ok)).await;
    let (status, _) = get(server, &[("x-request-id", "café")]).await;
    assert_eq!(status, 200);
    let spans = recorded.spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(
        spans[0].tags.get("guid:x-request-id").map(String::as_str),
        Some("café")
    );
}

/// A server answering the status named by its `x-status` header.
async fn status_server(tracing: &Tracing) -> SocketAddr {
    let answer = tower::service_fn(|request: Request<hyper::body::Incoming>| async move {
        let status = request.headers()["x-status"]
            .to_str()
            .unwrap()
            .parse::<u16>();
        let mut response = Response::new(Body::default());
        *response.status_mut() = http::StatusCode::from_u16(status.unwrap()).unwrap();
        Ok::<_, Infallible>(response)
    });
    serve(
        ServiceBuilder::new()
            .layer(tracing.server())
            .service(answer),
    )
    .await
}

/// The `error` tag of the SERVER span of a request answered `status`, with `tracing`.
async fn server_error_tag(tracing: Tracing, recorded: Recorded, status: &str) -> Option<String> {
    let server = status_server(&tracing).await;
    let (answered, _) = get(server, &[("x-status", status)]).await;
    assert_eq!(answered.to_string(), status);
    let spans = recorded.spans();
    assert_eq!(spans.len(), 1);
    spans[0].tags.get("error").cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_no_server_error_by_default_and_a_5xx_is() {
    for (status, error) in [("404", None), ("429", None), ("503", Some("503"))] {
        let recorded = Recorded::new(&format!("status-{status}"));
        let tracing = recorded.tracing();
        let tag = server_error_tag(tracing, recorded, status).await;
        assert_eq!(tag.as_deref(), error, "{status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brave_s_rule_makes_a_server_4xx_an_error() {
    let recorded = Recorded::new("status-brave");
    let tracing = recorded.tracing().status_errors(StatusErrors::Brave);
    let tag = server_error_tag(tracing, recorded, "404").await;
    assert_eq!(tag.as_deref(), Some("404"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_a_client_error() {
    let recorded = Recorded::new("client-404");
    let back = status_server(&Tracing::new("back")).await;
    let client = ServiceBuilder::new()
        .layer(recorded.tracing().client())
        .service(Client::builder(TokioExecutor::new()).build_http::<Body>());
    let request = Request::get(format!("http://{back}/missing"))
        .header("x-status", "404")
        .body(Body::default())
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 404);
    response.into_body().collect().await.unwrap();
    let spans = recorded.spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].kind, Some(Kind::Client));
    assert_eq!(spans[0].tags.get("error").map(String::as_str), Some("404"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_names_spans_and_the_default_names_the_rest() {
    let recorded = Recorded::new("named");
    let tracing = recorded.tracing().span_name(|request| {
        (request.method == http::Method::GET && request.headers.contains_key("x-status"))
            .then(|| "get with a status".to_owned())
    });
    let server = status_server(&tracing).await;
    get(server, &[("x-status", "200")]).await;
    let spans = recorded.spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "get with a status");
}

const TRACEPARENT: &str = "00-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-01";
const TRACESTATE: &str = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_alone_crosses_two_hops_as_traceparent_with_its_tracestate() {
    let recorded = Recorded::new("w3c-hops");
    let tracing = recorded.tracing();
    let back = echo_server(&tracing).await;
    let front = front_server(&tracing, back).await;

    let (status, echo) = get(
        front,
        &[("traceparent", TRACEPARENT), ("tracestate", TRACESTATE)],
    )
    .await;
    assert_eq!(status, 200);
    // Same in, same out: the back server got traceparent only, a child of the caller's span,
    // and the tracestate carried along unchanged.
    let traceparent = header(&echo, "traceparent").unwrap();
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields[..2], ["00", TRACE]);
    assert_eq!(fields[3], "01");
    let sent_span = fields[2].to_owned();
    assert_ne!(sent_span, CALLER_SPAN);
    assert_eq!(header(&echo, "tracestate"), Some(TRACESTATE));
    assert!(
        !echo.contains("x-b3-") && header(&echo, "b3").is_none(),
        "{echo}"
    );

    let spans = recorded.spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert!(spans.iter().all(|s| s.trace_id.to_string() == TRACE));
    let id = |kind, id: &str| {
        spans
            .iter()
            .find(|s| s.kind == Some(kind) && s.id.to_string() == id)
            .unwrap_or_else(|| panic!("no {kind:?} span {id}: {spans:#?}"))
    };
    // Front SERVER joins the caller's span (traceparent's parent id); its CLIENT span, a
    // child of it, is the span the back SERVER joins. traceparent carries no parent's parent:
    // the back SERVER half has no parent id of its own, its CLIENT half (the same id) has it.
    let front_server = id(Kind::Server, CALLER_SPAN);
    assert_eq!(
        (front_server.parent_id, front_server.shared),
        (None, Some(true))
    );
    let client = id(Kind::Client, &sent_span);
    assert_eq!(
        client.parent_id.map(|p| p.to_string()).as_deref(),
        Some(CALLER_SPAN)
    );
    let back_server = id(Kind::Server, &sent_span);
    assert_eq!(
        (back_server.parent_id, back_server.shared),
        (None, Some(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b3_in_goes_on_as_b3_and_the_propagation_option_overrides() {
    use functrace_mesh::propagation::Propagation;
    let recorded = Recorded::new("w3c-option");
    let back = echo_server(&recorded.tracing()).await;
    let b3 = [
        ("x-b3-traceid", TRACE),
        ("x-b3-spanid", CALLER_SPAN),
        ("x-b3-sampled", "1"),
    ];
    // The default: B3 in, B3 out, no traceparent.
    let front = front_server(&recorded.tracing(), back).await;
    let (_, echo) = get(front, &b3).await;
    assert_eq!(header(&echo, "x-b3-traceid"), Some(TRACE));
    assert_eq!(header(&echo, "traceparent"), None);
    // Both: the same child in both standards.
    let both = recorded.tracing().propagation(Propagation::Both);
    let front = front_server(&both, back).await;
    let (_, echo) = get(front, &b3).await;
    let span = header(&echo, "x-b3-spanid").unwrap();
    assert_eq!(
        header(&echo, "traceparent"),
        Some(format!("00-{TRACE}-{span}-01").as_str())
    );
    // W3C only, whatever came in; and with nothing in, a new trace as traceparent.
    let w3c = recorded.tracing().propagation(Propagation::W3c);
    let front = front_server(&w3c, back).await;
    for sent in [&b3[..], &[]] {
        let (_, echo) = get(front, sent).await;
        assert!(header(&echo, "traceparent").is_some(), "{echo}");
        assert!(!echo.contains("x-b3-"), "{echo}");
    }
    // Both standards in, disagreeing: B3 wins, and the next hop gets it in both.
    let other_span = "1111111111111111";
    let (_, echo) = get(
        front_server(&recorded.tracing(), back).await,
        &[
            ("b3", &format!("{TRACE}-{other_span}-1")),
            ("traceparent", TRACEPARENT),
        ],
    )
    .await;
    assert_eq!(header(&echo, "x-b3-parentspanid"), Some(other_span));
    let span = header(&echo, "x-b3-spanid").unwrap();
    assert_eq!(
        header(&echo, "traceparent"),
        Some(format!("00-{TRACE}-{span}-01").as_str())
    );
    let spans = recorded.spans();
    let joined = spans
        .iter()
        .find(|s| s.kind == Some(Kind::Server) && s.id.to_string() == other_span)
        .expect("the front SERVER span joins B3's span");
    assert_eq!(joined.trace_id.to_string(), TRACE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_traceparent_is_ignored_whole_and_its_tracestate_dropped() {
    let recorded = Recorded::new("w3c-malformed");
    let back = echo_server(&recorded.tracing()).await;
    let uppercase = TRACEPARENT.to_uppercase();
    for bad in [
        uppercase.as_str(),
        "ff-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-01",
        "00-00000000000000000000000000000000-a2fb4a1d1a96d312-01",
    ] {
        let (status, echo) = get(back, &[("traceparent", bad), ("tracestate", TRACESTATE)]).await;
        assert_eq!(status, 200, "{bad}");
        // A fresh trace, in B3 (nothing usable came), the W3C headers gone.
        assert_eq!(
            header(&echo, "x-b3-traceid").map(str::len),
            Some(32),
            "{echo}"
        );
        assert_ne!(header(&echo, "x-b3-traceid"), Some(TRACE));
        assert_eq!(header(&echo, "traceparent"), None, "{echo}");
        assert_eq!(header(&echo, "tracestate"), None, "{echo}");
    }
    let spans = recorded.spans();
    assert_eq!(spans.len(), 3);
    assert!(spans
        .iter()
        .all(|s| s.parent_id.is_none() && s.shared.is_none()));
}
