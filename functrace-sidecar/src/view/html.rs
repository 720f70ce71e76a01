//! The HTML output: one self-contained page (no scripts, no fetches) of waterfalls.

use super::*;

pub(super) const STYLE: &str = "\
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

pub(super) fn html_trace(page: &mut String, trace: &Trace, open: bool) {
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
