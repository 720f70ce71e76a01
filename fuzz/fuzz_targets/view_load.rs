//! The trace viewer's span reader and drawing: any bytes as a spans file load without a
//! panic, and every trace they make draws as a list, a tree and an HTML page, each span once.
#![no_main]

use functrace_sidecar::view::{self, Loaded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut loaded = Loaded::default();
    loaded.add_lines(data);
    let spans = loaded.spans.len();
    let traces = view::traces(loaded.spans);
    assert_eq!(traces.iter().map(|t| t.spans.len()).sum::<usize>(), spans);
    for trace in &traces {
        // Every span is drawn exactly once.
        assert_eq!(trace.rows.len(), trace.spans.len());
        let _ = view::tree_text(trace);
        let _ = trace.duration();
    }
    let all: Vec<&view::Trace> = traces.iter().collect();
    let _ = view::list_text(&all);
    let _ = view::html_page(&all, loaded.malformed);
});
