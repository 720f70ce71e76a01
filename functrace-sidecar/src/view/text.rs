//! The text output: the list of traces and one trace's waterfall; durations and times.

use super::*;

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
pub(super) fn indent(depth: usize) -> String {
    let mut indent = "  ".repeat(depth.min(MAX_INDENT));
    if depth > MAX_INDENT {
        let _ = write!(indent, "[{depth}] ");
    }
    indent
}

pub(super) fn end_of(span: &Span) -> u64 {
    span.timestamp.saturating_add(span.duration)
}

pub(super) fn service_of(span: &Span) -> &str {
    span.local_endpoint.service_name.as_deref().unwrap_or("?")
}

/// `service name`.
pub(super) fn label(span: &Span) -> String {
    format!("{} {}", service_of(span), span.name)
}

/// `CLIENT`, `SERVER`, `SERVER shared`, `PRODUCER`, `CONSUMER` or `local`.
pub(super) fn kind_label(span: &Span) -> &'static str {
    match span.kind {
        Some(Kind::Server) if span.shared == Some(true) => "SERVER shared",
        Some(Kind::Server) => "SERVER",
        Some(Kind::Client) => "CLIENT",
        Some(Kind::Producer) => "PRODUCER",
        Some(Kind::Consumer) => "CONSUMER",
        None => "local",
    }
}

pub(super) fn place_mark(place: Place) -> Option<&'static str> {
    match place {
        Place::Root | Place::Child => None,
        Place::Orphan => Some("(orphan)"),
        Place::Cycle => Some("(cycle)"),
    }
}

/// Text from requests with control characters (a newline would break a row) as `�`.
pub(super) fn clean(text: &str) -> Cow<'_, str> {
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

pub(super) fn plural(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

// ---------------------------------------------------------------------------------------
// HTML
