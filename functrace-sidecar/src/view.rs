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

// ---------------------------------------------------------------------------------------
// Loading

/// Spans read from spans files, and how many non-blank lines were not spans.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The spans, in file order.
    pub spans: Vec<Span>,
    /// Lines skipped: bad JSON, not a span, or half a line at the end of a file being written.
    pub malformed: usize,
}

impl Loaded {
    /// Adds the spans of a spans file's contents, one JSON span per line. Blank lines are
    /// ignored; a last line without its newline is kept when it is a whole span.
    pub fn add_lines(&mut self, bytes: &[u8]) {
        for line in bytes.split(|&byte| byte == b'\n') {
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Span>(line) {
                Ok(span) => self.spans.push(span),
                Err(_) => self.malformed += 1,
            }
        }
    }

    /// Adds the spans of the file at `path`.
    pub fn add_file(&mut self, path: &Path) -> io::Result<()> {
        self.add_lines(&std::fs::read(path)?);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Traces as trees

/// One trace: its spans, sorted by start, and the order they are drawn in.
#[derive(Debug)]
pub struct Trace {
    /// The trace id.
    pub id: TraceId,
    /// The spans, by start time (file order on ties).
    pub spans: Vec<Span>,
    /// Every span once, depth first, children by start time: roots, then orphans, then the
    /// spans of parent chains that loop.
    pub rows: Vec<Row>,
    /// The earliest start, µs since the Unix epoch.
    pub start: u64,
    /// The latest end, µs since the Unix epoch.
    pub end: u64,
}

/// One span of a drawn trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    /// Index into [`Trace::spans`].
    pub span: usize,
    /// 0 for a root, orphan or loop-breaker.
    pub depth: usize,
    /// Why the span is where it is.
    pub place: Place,
}

/// How a row got its place in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A span without a parent.
    Root,
    /// Under its parent.
    Child,
    /// Its parent is not in the files: an extra root.
    Orphan,
    /// Its parent chain loops (bad data): the loop is broken here, an extra root.
    Cycle,
}

/// A span's parent in a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    /// No parent id.
    Root,
    /// Index of the parent span.
    Parent(usize),
    /// A parent id that no span of the trace has.
    Missing,
}

impl Trace {
    /// Arranges the spans of one trace (all with trace id `id`).
    pub fn new(id: TraceId, mut spans: Vec<Span>) -> Trace {
        // Sorted by start, every list of children built in index order is sorted too.
        spans.sort_by_key(|span| span.timestamp);
        let rows = arrange(&links(&spans));
        let start = spans.iter().map(|s| s.timestamp).min().unwrap_or(0);
        let end = spans.iter().map(end_of).max().unwrap_or(start);
        Trace {
            id,
            spans,
            rows,
            start,
            end,
        }
    }

    /// From the earliest start to the latest end, in µs.
    pub fn duration(&self) -> u64 {
        self.end - self.start
    }

    /// The span drawn first: the earliest root (or orphan, when no span is a root).
    pub fn root(&self) -> Option<&Span> {
        self.rows.first().map(|row| &self.spans[row.span])
    }

    /// Spans with an `error` tag.
    pub fn errors(&self) -> usize {
        self.spans
            .iter()
            .filter(|s| s.tags.contains_key("error"))
            .count()
    }

    /// Distinct services with spans in the trace.
    pub fn services(&self) -> usize {
        let names: HashSet<_> = self.spans.iter().map(service_of).collect();
        names.len()
    }
}

impl Filter {
    /// Whether a list keeps `trace`.
    pub fn keeps(&self, trace: &Trace) -> bool {
        let service_ok = self.service.as_ref().is_none_or(|wanted| {
            trace
                .spans
                .iter()
                .any(|span| service_of(span).eq_ignore_ascii_case(wanted))
        });
        service_ok && self.min_duration.is_none_or(|min| trace.duration() >= min)
    }
}

/// Groups spans by trace id, the newest trace (latest first timestamp) first.
pub fn traces(spans: Vec<Span>) -> Vec<Trace> {
    let mut by_id: HashMap<TraceId, Vec<Span>> = HashMap::new();
    for span in spans {
        by_id.entry(span.trace_id).or_default().push(span);
    }
    let mut traces: Vec<Trace> = by_id
        .into_iter()
        .map(|(id, spans)| Trace::new(id, spans))
        .collect();
    traces.sort_by_cached_key(|t| (std::cmp::Reverse(t.start), t.id.to_string()));
    traces
}

/// The trace with hex id `id`; a 64-bit id also finds the 128-bit trace with those low bits.
pub fn find<'a>(traces: &'a [Trace], id: &str) -> Option<&'a Trace> {
    let id = id.trim().to_ascii_lowercase();
    traces.iter().find(|t| {
        t.id.to_string() == id || (id.len() == 16 && format!("{:016x}", t.id.low()) == id)
    })
}

fn is_shared_server(span: &Span) -> bool {
    span.kind == Some(Kind::Server) && span.shared == Some(true)
}

/// Each span's parent. A shared SERVER span's parent is the CLIENT span with its id; other
/// spans' parent is the span with their `parent_id`, the shared SERVER span when there is one.
fn links(spans: &[Span]) -> Vec<Link> {
    let mut plain: HashMap<SpanId, usize> = HashMap::new();
    let mut shared: HashMap<SpanId, usize> = HashMap::new();
    for (index, span) in spans.iter().enumerate() {
        let ids = if is_shared_server(span) {
            &mut shared
        } else {
            &mut plain
        };
        ids.entry(span.id).or_insert(index);
    }
    spans
        .iter()
        .map(|span| {
            if is_shared_server(span) {
                if let Some(&client) = plain.get(&span.id) {
                    return Link::Parent(client);
                }
            }
            match span.parent_id {
                None => Link::Root,
                Some(parent) => match shared.get(&parent).or_else(|| plain.get(&parent)) {
                    Some(&index) => Link::Parent(index),
                    None => Link::Missing,
                },
            }
        })
        .collect()
}

/// The drawing order: each root, then each orphan, with its subtree; then what is left,
/// which hangs off parent chains that loop, from a span on each loop.
fn arrange(links: &[Link]) -> Vec<Row> {
    let mut children = vec![Vec::new(); links.len()];
    let (mut roots, mut orphans) = (Vec::new(), Vec::new());
    for (index, link) in links.iter().enumerate() {
        match *link {
            Link::Root => roots.push(index),
            Link::Missing => orphans.push(index),
            Link::Parent(parent) => children[parent].push(index),
        }
    }
    let mut rows = Vec::with_capacity(links.len());
    let mut seen = vec![false; links.len()];
    for (start, place) in roots
        .into_iter()
        .map(|i| (i, Place::Root))
        .chain(orphans.into_iter().map(|i| (i, Place::Orphan)))
    {
        walk(start, place, &children, &mut seen, &mut rows);
    }
    for index in 0..links.len() {
        if seen[index] {
            continue;
        }
        // Follow the parents up to the first span met twice: that one is on the loop.
        let mut path = HashSet::new();
        let mut on_loop = index;
        while path.insert(on_loop) {
            match links[on_loop] {
                Link::Parent(parent) => on_loop = parent,
                Link::Root | Link::Missing => break,
            }
        }
        walk(on_loop, Place::Cycle, &children, &mut seen, &mut rows);
    }
    rows
}

/// Adds `start` and its not yet seen descendants to `rows`, depth first, without recursion.
fn walk(
    start: usize,
    place: Place,
    children: &[Vec<usize>],
    seen: &mut [bool],
    rows: &mut Vec<Row>,
) {
    let mut stack = vec![(start, 0)];
    while let Some((index, depth)) = stack.pop() {
        if std::mem::replace(&mut seen[index], true) {
            continue;
        }
        let place = if depth == 0 { place } else { Place::Child };
        rows.push(Row {
            span: index,
            depth,
            place,
        });
        stack.extend(
            children[index]
                .iter()
                .rev()
                .map(|&child| (child, depth + 1)),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Text

/// One line per trace, under a header: id, start (UTC), duration, spans, errors, and the
/// root span's service and name.
pub fn list_text(traces: &[&Trace]) -> String {
    let mut text = format!(
        "{:<32}  {:<24}  {:>8}  {:>5}  {:>6}  ROOT\n",
        "TRACE", "STARTED (UTC)", "DURATION", "SPANS", "ERRORS"
    );
    if traces.is_empty() {
        text.push_str("(no traces)\n");
    }
    for trace in traces {
        let _ = writeln!(
            text,
            "{:<32}  {:<24}  {:>8}  {:>5}  {:>6}  {}",
            trace.id.to_string(),
            format_time(trace.start),
            format_duration(trace.duration()),
            trace.spans.len(),
            trace.errors(),
            trace
                .root()
                .map_or(String::new(), |s| clean(&label(s)).into_owned()),
        );
    }
    text
}

/// A trace as a waterfall: a summary line, a header, then one row per span: offset from
/// the trace start, duration, a [`BAR_WIDTH`]-cell timeline, and the span, indented by
/// depth, with its kind, `(orphan)` / `(cycle)`, and `! reason` when it failed.
pub fn tree_text(trace: &Trace) -> String {
    let mut text = format!(
        "trace {}: {}, {}, {}, {}, started {}\n{:>8}  {:>8}  {:<w$}  SPAN\n",
        trace.id,
        plural(trace.spans.len(), "span"),
        plural(trace.services(), "service"),
        format_duration(trace.duration()),
        plural(trace.errors(), "error"),
        format_time(trace.start),
        "OFFSET",
        "DURATION",
        "TIMELINE",
        w = BAR_WIDTH + 2,
    );
    for row in &trace.rows {
        let span = &trace.spans[row.span];
        let offset = span.timestamp - trace.start;
        let (from, to) = bar_cells(offset, span.duration, trace.duration(), BAR_WIDTH);
        let _ = write!(
            text,
            "{:>8}  {:>8}  |{}{}{}|  {}{} [{}]",
            format_duration(offset),
            format_duration(span.duration),
            " ".repeat(from),
            "█".repeat(to - from),
            " ".repeat(BAR_WIDTH - to),
            indent(row.depth),
            clean(&label(span)),
            kind_label(span),
        );
        if let Some(mark) = place_mark(row.place) {
            let _ = write!(text, " {mark}");
        }
        if let Some(reason) = span.tags.get("error") {
            let _ = write!(text, " ! {}", clean(reason));
        }
        text.push('\n');
    }
    text
}

/// The cells `from..to` of a `width`-cell timeline that a span covers, given its offset
/// and duration in a trace `total` µs long: at least one cell, never outside the row.
pub fn bar_cells(offset: u64, duration: u64, total: u64, width: usize) -> (usize, usize) {
    let (total, width) = (u128::from(total.max(1)), width.max(1) as u128);
    let from = (u128::from(offset) * width / total).min(width - 1);
    let end = u128::from(offset) + u128::from(duration);
    let to = (end * width).div_ceil(total).clamp(from + 1, width);
    (from as usize, to as usize)
}

/// A duration given in µs, for people: `850µs`, `12.3ms`, `1.5s`.
pub fn format_duration(micros: u64) -> String {
    if micros < 1000 {
        return format!("{micros}µs");
    }
    let tenths_of_ms = micros.saturating_add(50) / 100;
    if tenths_of_ms < 10_000 {
        return format!("{}.{}ms", tenths_of_ms / 10, tenths_of_ms % 10);
    }
    let tenths_of_s = micros.saturating_add(50_000) / 100_000;
    format!("{}.{}s", tenths_of_s / 10, tenths_of_s % 10)
}

/// Parses a duration such as `250us` (or `250µs`), `10ms` or `1.5s` into µs.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        _ => {
            return Err(format!(
                "{text:?}: expected a number and a unit: 250us, 10ms, 1.5s"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: {number:?} is not a number"))?;
    Ok((value * scale).round() as u64)
}

/// µs since the Unix epoch as UTC: `2023-11-14T22:13:20.000Z`.
pub fn format_time(micros: u64) -> String {
    let seconds = micros / 1_000_000;
    let (days, second) = (seconds / 86_400, seconds % 86_400);
    // Howard Hinnant's civil_from_days: days since 1970-01-01 to a Gregorian date.
    let days = days as i64 + 719_468;
    let (era, day_of_era) = (days.div_euclid(146_097), days.rem_euclid(146_097));
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second / 3600,
        second / 60 % 60,
        second % 60,
        micros % 1_000_000 / 1000
    )
}

/// Two spaces a level, up to [`MAX_INDENT`] levels, then the depth in brackets.
fn indent(depth: usize) -> String {
    let mut indent = "  ".repeat(depth.min(MAX_INDENT));
    if depth > MAX_INDENT {
        let _ = write!(indent, "[{depth}] ");
    }
    indent
}

fn end_of(span: &Span) -> u64 {
    span.timestamp.saturating_add(span.duration)
}

fn service_of(span: &Span) -> &str {
    span.local_endpoint.service_name.as_deref().unwrap_or("?")
}

/// `service name`.
fn label(span: &Span) -> String {
    format!("{} {}", service_of(span), span.name)
}

/// `CLIENT`, `SERVER`, `SERVER shared`, `PRODUCER`, `CONSUMER` or `local`.
fn kind_label(span: &Span) -> &'static str {
    match span.kind {
        Some(Kind::Server) if span.shared == Some(true) => "SERVER shared",
        Some(Kind::Server) => "SERVER",
        Some(Kind::Client) => "CLIENT",
        Some(Kind::Producer) => "PRODUCER",
        Some(Kind::Consumer) => "CONSUMER",
        None => "local",
    }
}

fn place_mark(place: Place) -> Option<&'static str> {
    match place {
        Place::Root | Place::Child => None,
        Place::Orphan => Some("(orphan)"),
        Place::Cycle => Some("(cycle)"),
    }
}

/// Text from requests with control characters (a newline would break a row) as `�`.
fn clean(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_control) {
        Cow::Owned(
            text.chars()
                .map(|c| if c.is_control() { '\u{fffd}' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

fn plural(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

// ---------------------------------------------------------------------------------------
// HTML

const STYLE: &str = "\
body{font:13px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}
details{border:1px solid #ccc;border-radius:4px;margin:.5em 0}
summary{cursor:pointer;padding:.4em .6em;background:#f6f6f6;font-family:ui-monospace,monospace}
.rows{padding:.3em .6em}
.row{display:grid;grid-template-columns:minmax(18em,2fr) 6em 6em 3fr;gap:.6em;align-items:center}
.row:hover{background:#eef}
.head{font-weight:bold;border-bottom:1px solid #ddd}
.label{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.num{text-align:right;font-family:ui-monospace,monospace}
.kind{font-size:.8em;color:#555;border:1px solid #bbb;border-radius:3px;padding:0 .3em}
.mark{color:#a60;font-style:italic}
.track{position:relative;height:.9em;background:#f0f0f0}
.bar{position:absolute;top:0;bottom:0;min-width:2px;background:#4a7bd0}
.error{background:#fde8e8}
.error .bar{background:#d03030}
.msg,.errors{color:#b00;font-weight:bold}
";

/// A self-contained page (inline CSS, no scripts, no links out): each trace is a folded
/// `<details>` whose summary is its list line, the first one unfolded, holding its
/// waterfall: one row per span with the span (indented by depth, with its kind, marks and
/// error), offset, duration, and a bar placed with percentages; failed spans are red, and
/// a row's tags show on hover. All text from spans is escaped.
pub fn html_page(traces: &[&Trace], malformed: usize) -> String {
    let spans: usize = traces.iter().map(|t| t.spans.len()).sum();
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>functrace: {traces}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <h1>functrace: {traces}, {spans}</h1>\n",
        traces = plural(traces.len(), "trace"),
        spans = plural(spans, "span"),
    );
    if malformed > 0 {
        let _ = writeln!(
            page,
            "<p class=\"errors\">skipped {}</p>",
            plural(malformed, "malformed line")
        );
    }
    for (index, trace) in traces.iter().enumerate() {
        html_trace(&mut page, trace, index == 0);
    }
    page.push_str("</body>\n</html>\n");
    page
}

fn html_trace(page: &mut String, trace: &Trace, open: bool) {
    let root = trace.root().map_or(String::new(), label);
    let errors = match trace.errors() {
        0 => String::new(),
        n => format!(" · <span class=\"errors\">{}</span>", plural(n, "error")),
    };
    let _ = write!(
        page,
        "<details id=\"t-{id}\"{open}>\n<summary>{id} · {root} · {spans} · {duration}{errors} · {time}</summary>\n\
         <div class=\"rows\">\n<div class=\"row head\"><div>span</div><div class=\"num\">offset</div>\
         <div class=\"num\">duration</div><div>timeline</div></div>\n",
        id = trace.id,
        open = if open { " open" } else { "" },
        root = escape(&root),
        spans = plural(trace.spans.len(), "span"),
        duration = format_duration(trace.duration()),
        time = format_time(trace.start),
    );
    let total = u128::from(trace.duration().max(1));
    for row in &trace.rows {
        let span = &trace.spans[row.span];
        let offset = span.timestamp - trace.start;
        // Thousandths of a percent, so the page is exact and the bar stays in its track.
        let left = (u128::from(offset) * 100_000 / total).min(100_000);
        let width = (u128::from(span.duration) * 100_000 / total).min(100_000 - left);
        let tags: Vec<String> = span.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let title = if tags.is_empty() {
            String::new()
        } else {
            format!(" title=\"{}\"", escape(&tags.join("\n")))
        };
        let failed = span.tags.get("error");
        let _ = write!(
            page,
            "<div class=\"row{class}\"{title}><div class=\"label\" style=\"padding-left:{indent}em\">\
             <b>{service}</b> {name} <span class=\"kind\">{kind}</span>",
            class = if failed.is_some() { " error" } else { "" },
            indent = row.depth.min(40),
            service = escape(service_of(span)),
            name = escape(&span.name),
            kind = kind_label(span),
        );
        if let Some(mark) = place_mark(row.place) {
            let _ = write!(page, " <span class=\"mark\">{mark}</span>");
        }
        if let Some(reason) = failed {
            let _ = write!(page, " <span class=\"msg\">! {}</span>", escape(reason));
        }
        let _ = writeln!(
            page,
            "</div><div class=\"num\">{}</div><div class=\"num\">{}</div><div class=\"track\">\
             <div class=\"bar\" style=\"left:{}.{:03}%;width:{}.{:03}%\"></div></div></div>",
            format_duration(offset),
            format_duration(span.duration),
            left / 1000,
            left % 1000,
            width / 1000,
            width % 1000,
        );
    }
    page.push_str("</div>\n</details>\n");
}

/// Text for HTML content and attribute values: `& < > " '` as entities, newlines as `&#10;`.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            '\n' => escaped.push_str("&#10;"),
            c => escaped.push(c),
        }
    }
    escaped
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
