//! The trace viewer behind `functrace-sidecar view`: reads spans files (Zipkin v2 JSON lines,
//! as the sidecar's `--spans-file` and the apps' reporters write them), groups the spans by
//! trace, arranges each trace as a tree, and draws it as a text or HTML waterfall.
//!
//! - [`Loaded`] reads spans files, skipping and counting lines that are not spans (a file
//!   still being written may end in half a line).
//! - [`Trace`] is one trace arranged as a tree, following Zipkin's rule for shared spans: a
//!   SERVER span with `shared: true` has the id of the CLIENT span that called it and is its
//!   child, and spans whose parent is that id are children of the SERVER span. Spans whose
//!   parent is not in the files become extra roots marked `(orphan)`; parent chains that loop
//!   (bad data) are broken and marked `(cycle)`. Every span is drawn exactly once.
//! - [`list_text`], [`tree_text`] and [`html_page`] draw; [`run`] is the whole command.
//!
//! Offsets are measured from the earliest start in the trace, so a child that starts before
//! its parent (clock skew between hosts) still gets a non-negative offset, and bars always
//! fit in their row.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use functrace::{SpanId, TraceId};

use functrace_mesh::export::{Kind, Span};

mod html;
mod load;
mod text;
mod tree;

pub use html::*;
pub use load::*;
pub use text::*;
pub use tree::*;

/// Cells in a text waterfall's timeline.
pub const BAR_WIDTH: usize = 40;

/// Levels of indentation in a text waterfall; deeper rows also show their depth, `[57]`.
pub const MAX_INDENT: usize = 50;

/// What to show: the spans files, and either one trace or a filtered list of traces.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Spans files, merged.
    pub files: Vec<PathBuf>,
    /// Draw this trace (hex id) instead of the list.
    pub trace: Option<String>,
    /// Which traces the list keeps (unused with `trace`).
    pub filter: Filter,
    /// Write an HTML page there instead of text to stdout.
    pub html: Option<PathBuf>,
}

/// Which traces a list keeps.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Traces with at least one span of this service.
    pub service: Option<String>,
    /// Traces at least this long, in microseconds.
    pub min_duration: Option<u64>,
}

/// Why `view` failed.
#[derive(Debug)]
pub enum ViewError {
    /// A spans file could not be read.
    Read(PathBuf, io::Error),
    /// The HTML page could not be written.
    Write(PathBuf, io::Error),
    /// No trace has the id asked for.
    NoTrace {
        /// The id asked for.
        id: String,
        /// How many traces the files hold.
        traces: usize,
    },
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewError::Read(path, err) => write!(f, "cannot read {}: {err}", path.display()),
            ViewError::Write(path, err) => write!(f, "cannot write {}: {err}", path.display()),
            ViewError::NoTrace { id, traces } => write!(
                f,
                "no trace {id:?} in the spans files ({})",
                plural(*traces, "trace")
            ),
        }
    }
}

impl std::error::Error for ViewError {}

/// The whole `view` command: loads the files, notes skipped lines on `err`, then writes the
/// list (or the trace asked for) to `out` as text, or to the HTML file. With `--html` and
/// no `--trace`, the page holds every listed trace, each folded under its list line, the
/// newest one unfolded.
pub fn run(options: &Options, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), ViewError> {
    let mut loaded = Loaded::default();
    for path in &options.files {
        loaded
            .add_file(path)
            .map_err(|error| ViewError::Read(path.clone(), error))?;
    }
    if loaded.malformed > 0 {
        let _ = writeln!(
            err,
            "functrace-sidecar view: skipped {}",
            plural(loaded.malformed, "malformed line")
        );
    }
    let all = traces(loaded.spans);
    let shown: Vec<&Trace> = match &options.trace {
        Some(id) => vec![find(&all, id).ok_or_else(|| ViewError::NoTrace {
            id: id.clone(),
            traces: all.len(),
        })?],
        None => all.iter().filter(|t| options.filter.keeps(t)).collect(),
    };
    match &options.html {
        Some(path) => {
            let page = html_page(&shown, loaded.malformed);
            std::fs::write(path, page).map_err(|error| ViewError::Write(path.clone(), error))?;
            let _ = writeln!(
                err,
                "functrace-sidecar view: wrote {} ({})",
                path.display(),
                plural(shown.len(), "trace")
            );
        }
        // Errors on stdout (a closed pipe, as with `| head`) are not worth a failure.
        None => {
            let text = match options.trace {
                Some(_) => tree_text(shown[0]),
                None => list_text(&shown),
            };
            let _ = out.write_all(text.as_bytes());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000_000;

    fn id(n: u64) -> SpanId {
        SpanId::new(n).unwrap()
    }

    fn span(n: u64, parent: Option<u64>, start: u64, duration: u64) -> Span {
        Span {
            trace_id: TraceId::from_hex("463ac35c9f6413ad48485a3953bb6124").unwrap(),
            id: id(n),
            parent_id: parent.map(id),
            name: format!("op{n}"),
            kind: None,
            timestamp: T0 + start,
            duration,
            local_endpoint: functrace_mesh::export::Endpoint::service("svca"),
            remote_endpoint: None,
            annotations: Vec::new(),
            tags: Default::default(),
            shared: None,
            debug: None,
        }
    }

    fn shared_server(mut span: Span) -> Span {
        span.kind = Some(Kind::Server);
        span.shared = Some(true);
        span
    }

    /// (span id, depth, place, shared) of each row.
    fn shape(trace: &Trace) -> Vec<(u64, usize, Place, bool)> {
        let rows = trace.rows.iter();
        rows.map(|row| {
            let span = &trace.spans[row.span];
            (span.id.get(), row.depth, row.place, is_shared_server(span))
        })
        .collect()
    }

    fn trace(spans: Vec<Span>) -> Trace {
        Trace::new(spans[0].trace_id, spans)
    }

    #[test]
    fn lines_that_are_not_spans_are_counted() {
        let good = serde_json::to_string(&span(1, None, 0, 5)).unwrap();
        let text = format!(
            "{good}\n\nnot json\n{{\"traceId\":\"zz\"}}\n{good}\n{}",
            &good[..20]
        );
        let mut loaded = Loaded::default();
        loaded.add_lines(text.as_bytes());
        assert_eq!((loaded.spans.len(), loaded.malformed), (2, 3));
        // A whole last span without its newline is kept.
        loaded.add_lines(good.as_bytes());
        assert_eq!((loaded.spans.len(), loaded.malformed), (3, 3));
    }

    #[test]
    fn shared_server_spans_sit_between_client_and_children() {
        let mut client = span(2, Some(1), 10, 80);
        client.kind = Some(Kind::Client);
        let spans = vec![
            span(3, Some(2), 30, 10), // the server's child, listed first
            shared_server(span(2, Some(1), 20, 60)),
            client,
            span(1, None, 0, 100),
        ];
        let shape = shape(&trace(spans));
        use Place::*;
        let expected = [
            (1, 0, Root, false),
            (2, 1, Child, false),
            (2, 2, Child, true),
            (3, 3, Child, false),
        ];
        assert_eq!(shape, expected);
    }

    #[test]
    fn a_shared_server_without_its_client_hangs_under_the_clients_parent() {
        let spans = vec![
            span(1, None, 0, 100),
            shared_server(span(2, Some(1), 20, 60)),
        ];
        let shape = shape(&trace(spans));
        assert_eq!(
            shape,
            [(1, 0, Place::Root, false), (2, 1, Place::Child, true)]
        );
    }

    #[test]
    fn children_are_sorted_by_start_and_orphans_come_after_roots() {
        let spans = vec![
            span(9, Some(77), 0, 5),
            span(1, None, 10, 100),
            span(3, Some(1), 50, 10),
            span(2, Some(1), 20, 10),
        ];
        let shape = shape(&trace(spans));
        use Place::*;
        let expected = [
            (1, 0, Root, false),
            (2, 1, Child, false),
            (3, 1, Child, false),
            (9, 0, Orphan, false),
        ];
        assert_eq!(shape, expected);
    }

    #[test]
    fn parent_loops_are_broken_and_every_span_is_drawn_once() {
        let spans = vec![
            span(1, None, 0, 100),
            span(2, Some(3), 10, 10), // 2 -> 3 -> 2
            span(3, Some(2), 20, 10),
            span(4, Some(2), 5, 10),  // hangs off the loop
            span(5, Some(5), 30, 10), // its own parent
        ];
        let trace = trace(spans);
        let mut ids: Vec<u64> = shape(&trace).iter().map(|row| row.0).collect();
        ids.sort();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        let cycles = shape(&trace).into_iter().filter(|r| r.2 == Place::Cycle);
        let cycles: Vec<u64> = cycles.map(|r| r.0).collect();
        assert_eq!(cycles, [2, 5]);
        tree_text(&trace);
    }

    #[test]
    fn a_deep_chain_is_walked_without_recursion() {
        let spans: Vec<Span> = (1..=20_000)
            .map(|n| span(n, (n > 1).then(|| n - 1), n, 100_000 - n))
            .collect();
        let trace = trace(spans);
        assert_eq!(trace.rows.last().unwrap().depth, 19_999);
        let text = tree_text(&trace);
        assert!(text.len() < 20_000 * 300, "indentation is capped");
        assert!(text.ends_with(&format!(
            "{}[19999] svca op20000 [local]\n",
            "  ".repeat(50)
        )));
    }

    #[test]
    fn clock_skew_keeps_offsets_and_bars_in_range() {
        // The child starts 50µs before its parent and ends after it.
        let spans = vec![span(1, None, 100, 100), span(2, Some(1), 50, 300)];
        let trace = trace(spans);
        assert_eq!((trace.start, trace.duration()), (T0 + 50, 300));
        let text = tree_text(&trace);
        let bar = " ".repeat(6) + &"█".repeat(14);
        let parent = format!("    50µs     100µs  |{bar:<40}|  svca op1 [local]\n");
        assert!(text.contains(&parent), "{text}");
    }

    #[test]
    fn bars_cover_at_least_one_cell_inside_the_row() {
        assert_eq!(bar_cells(0, 100, 100, 40), (0, 40));
        assert_eq!(bar_cells(50, 25, 100, 40), (20, 30));
        assert_eq!(bar_cells(99, 1, 100, 40), (39, 40));
        assert_eq!(bar_cells(100, 0, 100, 40), (39, 40));
        assert_eq!(bar_cells(10, 0, 100, 40), (4, 5));
        assert_eq!(bar_cells(0, 0, 0, 40), (0, 1));
        assert_eq!(bar_cells(500, u64::MAX, 100, 40), (39, 40));
        assert_eq!(bar_cells(0, 5, 10, 0), (0, 1));
    }

    #[test]
    fn durations_print_and_parse() {
        let printed = [
            0,
            999,
            1000,
            1049,
            1050,
            12_345,
            999_949,
            999_950,
            1_500_000,
            u64::MAX,
        ]
        .map(format_duration);
        let expected = [
            "0µs",
            "999µs",
            "1.0ms",
            "1.0ms",
            "1.1ms",
            "12.3ms",
            "999.9ms",
            "1.0s",
            "1.5s",
            "18446744073709.5s",
        ];
        assert_eq!(printed, expected);
        assert_eq!(parse_duration("250us"), Ok(250));
        assert_eq!(parse_duration("250µs"), Ok(250));
        assert_eq!(parse_duration("10ms"), Ok(10_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000));
        assert_eq!(parse_duration("0.1s"), Ok(100_000));
        for bad in ["10", "ms", "1.2.3s", "-1s", "5m", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_print_as_utc() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(T0 + 123_456), "2023-11-14T22:13:20.123Z");
        assert_eq!(format_time(951_782_400_000_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn traces_are_found_by_id_or_low_half_and_listed_newest_first() {
        let mut old = span(1, None, 0, 10);
        old.trace_id = TraceId::from_hex("00000000000000aa").unwrap();
        let all = traces(vec![old, span(2, None, 100, 10)]);
        let ids: Vec<String> = all.iter().map(|t| t.id.to_string()).collect();
        assert_eq!(
            ids,
            ["463ac35c9f6413ad48485a3953bb6124", "00000000000000aa"]
        );
        assert!(find(&all, "48485A3953BB6124").is_some());
        assert!(find(&all, "00000000000000aa").is_some());
        assert!(find(&all, "00000000000000ab").is_none());
    }

    #[test]
    fn filters_keep_by_service_and_duration() {
        let trace = trace(vec![span(1, None, 0, 2_000)]);
        let keeps = |service: Option<&str>, min| {
            let service = service.map(str::to_string);
            Filter {
                service,
                min_duration: min,
            }
            .keeps(&trace)
        };
        assert!(keeps(None, None));
        assert!(keeps(Some("SVCA"), Some(2_000)));
        assert!(!keeps(Some("svcb"), None));
        assert!(!keeps(None, Some(2_001)));
    }

    #[test]
    fn html_escapes_text_from_spans() {
        let mut bad = span(1, None, 0, 10).with_error("<b>\"quoted\" & 'single'</b>");
        bad.name = "<script>alert(1)</script>".into();
        bad.local_endpoint.service_name = Some("a&b".into());
        let trace = trace(vec![bad]);
        let page = html_page(&[&trace], 0);
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("<b>a&amp;b</b>"));
        assert!(page.contains("! &lt;b&gt;&quot;quoted&quot; &amp; &#39;single&#39;&lt;/b&gt;"));
        assert!(!page.contains("<script"));
        assert!(page.contains("style=\"left:0.000%;width:100.000%\""));
    }

    #[test]
    fn text_rows_lose_control_characters() {
        let mut odd = span(1, None, 0, 10);
        odd.name = "two\nlines".into();
        let text = tree_text(&trace(vec![odd]));
        assert_eq!(text.lines().count(), 3);
        assert!(text.contains("svca two\u{fffd}lines [local]"));
    }
}
