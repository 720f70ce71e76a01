//! The server layer on an axum router (`Router::layer`), served by `axum::serve` on
//! loopback: SERVER spans are named by the matched route's template, one name for every id.

use std::time::Duration;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use functrace_mesh::export::{Reporter, Span};
use functrace_mesh::layer::Tracing;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_spans_are_named_by_the_route_template() {
    let path = std::env::temp_dir().join(format!("functrace-axum-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let reporter = Reporter::builder("users")
        .json_lines(&path)
        .interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let tracing = Tracing::new("users").reporter(reporter.clone());
    let app = Router::new()
        .route(
            "/users/{id}",
            get(|Path(id): Path<u32>| async move { format!("user {id}") }),
        )
        .layer(tracing.server());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    for id in [7, 42] {
        let response = client
            .get(format!("http://{addr}/users/{id}").parse().unwrap())
            .await
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, format!("user {id}"));
    }
    reporter.flush();
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let spans: Vec<Span> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(spans.len(), 2, "{text}");
    for (span, id) in spans.iter().zip([7, 42]) {
        assert_eq!(span.name, "get /users/{id}");
        assert_eq!(span.tags["http.route"], "/users/{id}");
        assert_eq!(span.tags["http.path"], format!("/users/{id}"));
    }
}
