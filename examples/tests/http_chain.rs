//! `http_chain`: one request through three services over loopback. Its trace lines share one
//! trace id, and its spans form one connected tree.

mod common;

use std::collections::HashSet;

#[test]
fn one_request_is_one_connected_trace() {
    let (stdout, lines, spans) = common::run_with_spans("http_chain");
    assert!(
        stdout.starts_with("checkout: order 17 (41 left)\n"),
        "{stdout}"
    );
    let trace_id = common::assert_one_connected_trace(&spans, "get /checkout");

    let count = |kind: &str| spans.iter().filter(|s| s["kind"] == kind).count();
    assert_eq!((count("SERVER"), count("CLIENT")), (3, 2));
    let services: HashSet<_> = spans
        .iter()
        .filter(|s| s["kind"] == "SERVER")
        .map(|s| {
            s["localEndpoint"]["serviceName"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        services,
        ["frontend", "orders", "stock"].map(String::from).into()
    );

    // checkout, place_order, create_order, reserve, count_shelf.
    common::assert_traced_calls(&lines, &spans, 5, &trace_id);
}
