//! End to end with the core: `#[trace]` functions called inside a sampled trace context
//! reach the installed `Reporter` as local spans. Without the `trace` feature the attribute
//! compiles to nothing, and nothing is reported.

mod export_support;

use export_support::{read_lines, scratch_file};
use functrace::{trace, Sampling, TraceContext};
use functrace_mesh::export::Reporter;

#[trace]
fn lookup() -> u32 {
    7
}

#[trace(err)]
fn handle(fail: bool) -> Result<u32, String> {
    let found = lookup();
    if fail {
        Err(format!("boom {found}"))
    } else {
        Ok(found)
    }
}

#[test]
fn traced_calls_in_a_sampled_trace_are_exported_as_local_spans() {
    let path = scratch_file("traced");
    let reporter = Reporter::builder("Traced-Service")
        .json_lines(&path)
        .build()
        .unwrap();
    let guard = reporter.install();
    let root = TraceContext::new_root(Sampling::Accept);
    let result = functrace::with_context(root, || handle(true));
    assert_eq!(result, Err("boom 7".to_owned()));
    // Not sampled: never reported.
    let denied = TraceContext::new_root(Sampling::Deny);
    assert_eq!(functrace::with_context(denied, || handle(false)), Ok(7));
    drop(guard);

    let lines = read_lines(&path);
    if !cfg!(feature = "trace") {
        assert!(lines.is_empty(), "{lines:?}");
        return;
    }
    assert_eq!(lines.len(), 2, "{lines:?}");
    // Inner calls end first.
    let (inner, inner_span) = &lines[0];
    let (outer, outer_span) = &lines[1];
    assert_eq!(inner["name"], "export_traced::lookup");
    assert_eq!(outer["name"], "export_traced::handle");
    for (json, span) in &lines {
        assert_eq!(span.trace_id, root.trace_id);
        assert_eq!(json["localEndpoint"]["serviceName"], "traced-service");
        assert!(!json.as_object().unwrap().contains_key("kind"), "{json}");
        let task = json["tags"]["task"].as_str().unwrap();
        assert!(task.starts_with("t[") && task.ends_with(']'), "{task}");
        assert!(json["duration"].as_u64().unwrap() >= 1);
    }
    assert_eq!(outer_span.parent_id, Some(root.span_id));
    assert_eq!(inner_span.parent_id, Some(outer_span.id));
    let error = outer["tags"]["error"].as_str().unwrap();
    assert!(error.contains("boom 7"), "{error}");
    assert!(!inner["tags"].as_object().unwrap().contains_key("error"));
}
