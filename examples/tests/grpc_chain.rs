//! `grpc_chain`: one call through two gRPC services over HTTP/2 on loopback, one connected
//! trace with `grpc.status_code` on its SERVER and CLIENT spans.

mod common;

#[test]
fn one_grpc_call_is_one_connected_trace() {
    let (stdout, lines, spans) = common::run_with_spans("grpc_chain");
    assert!(stdout.starts_with("apples: 18\n"), "{stdout}");
    let trace_id = common::assert_one_connected_trace(&spans, "/gateway.gateway/lookup");

    let rpc: Vec<_> = spans.iter().filter(|s| s.get("kind").is_some()).collect();
    assert_eq!(
        rpc.len(),
        3,
        "gateway SERVER and CLIENT, inventory SERVER: {spans:#?}"
    );
    for span in &rpc {
        assert_eq!(span["tags"]["grpc.status_code"], "0", "{span}");
    }
    // lookup, count, shelf_count.
    common::assert_traced_calls(&lines, &spans, 3, &trace_id);
}
