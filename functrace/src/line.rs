//! Appending one trace line to a buffer, by hand (no `core::fmt`: it would triple the cost of a call).
//!
//! `t[01]:` + four spaces per depth level + `->name`, or `<-name 2.1µs` with an optional
//! ` (panicked)` / ` (cancelled)` mark, then `\n`.

use std::fmt;
use std::io::Write;

use crate::frame::Label;
use crate::trace_context::TraceId;

/// Four levels of indentation.
const INDENT_4: &[u8; 16] = &[b' '; 16];

/// How a call ended, as its exit line tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    Returned,
    Panicked,
    Cancelled,
}

/// What the `args`, `ret` and `err` options add to a line: already text (rendered before an
/// async fn's arguments moved into its future) or still to format.
/// The `Failed` forms are an `Err` the call returned (the `err` option): printed as
/// `Err(...)` and reported as the span's error.
#[derive(Clone, Copy)]
pub(crate) enum Detail<'a> {
    None,
    Text(&'a str),
    Format(fmt::Arguments<'a>),
    FailedText(&'a str),
    Failed(fmt::Arguments<'a>),
}

impl Detail<'_> {
    #[inline]
    fn write(self, buf: &mut Vec<u8>, before: &[u8], after: &[u8]) {
        if !matches!(self, Detail::None) {
            self.write_some(buf, before, after);
        }
    }

    #[cold]
    fn write_some(self, buf: &mut Vec<u8>, before: &[u8], after: &[u8]) {
        buf.extend_from_slice(before);
        match self {
            Detail::None => {}
            Detail::Text(text) => buf.extend_from_slice(text.as_bytes()),
            // Writing to a Vec fails only if a Debug impl fails; keep what it wrote.
            Detail::Format(args) => drop(buf.write_fmt(args)),
            Detail::FailedText(text) => {
                buf.extend_from_slice(b"Err(");
                buf.extend_from_slice(text.as_bytes());
                buf.push(b')');
            }
            Detail::Failed(args) => {
                buf.extend_from_slice(b"Err(");
                drop(buf.write_fmt(args));
                buf.push(b')');
            }
        }
        buf.extend_from_slice(after);
    }

    /// The error a failed call returned, as text.
    pub fn error(self) -> Option<String> {
        match self {
            Detail::FailedText(text) => Some(text.to_owned()),
            Detail::Failed(args) => Some(args.to_string()),
            _ => None,
        }
    }
}

/// What a line names: a traced fn's path (`&str`), or a `tracing` span's target and name
/// ([`Path`]), written without joining them first.
pub(crate) trait Name: Copy {
    fn write(self, buf: &mut Vec<u8>);
}

impl Name for &str {
    #[inline(always)]
    fn write(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self.as_bytes());
    }
}

/// `target::name`.
#[cfg(feature = "tracing-subscriber")]
#[derive(Clone, Copy)]
pub(crate) struct Path<'a>(pub &'a str, pub &'a str);

#[cfg(feature = "tracing-subscriber")]
impl Name for Path<'_> {
    #[inline(always)]
    fn write(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self.0.as_bytes());
        buf.extend_from_slice(b"::");
        buf.extend_from_slice(self.1.as_bytes());
    }
}

/// `->name`, or `->name(a = 1, b = "x")` with arguments.
#[inline]
pub(crate) fn enter(buf: &mut Vec<u8>, at: At<'_>, name: impl Name, args: Detail<'_>) {
    prefix(buf, at);
    buf.extend_from_slice(b"->");
    name.write(buf);
    args.write(buf, b"(", b")");
    buf.push(b'\n');
}

/// `<-name 2.1µs`, then ` = 42` or ` Err(...)` for `ret`/`err`, then a panic/cancel mark.
#[inline]
pub(crate) fn exit(
    buf: &mut Vec<u8>,
    at: At<'_>,
    name: impl Name,
    elapsed_nanos: u64,
    note: Detail<'_>,
    how: Exit,
) {
    prefix(buf, at);
    buf.extend_from_slice(b"<-");
    name.write(buf);
    buf.push(b' ');
    duration(buf, elapsed_nanos);
    note.write(buf, b" ", b"");
    buf.extend_from_slice(match how {
        Exit::Returned => b"",
        Exit::Panicked => b" (panicked)",
        Exit::Cancelled => b" (cancelled)",
    });
    buf.push(b'\n');
}

/// Where a line stands: its task (and branch), its trace (inside one), its depth.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    pub label: Label,
    pub trace: Option<&'a TraceId>,
    pub depth: u32,
}

/// `t[NN]:` (`t[NN.B]:` in a branch), or `t[NN] TRACEID:` inside a trace, then the
/// indentation.
#[inline]
fn prefix(buf: &mut Vec<u8>, at: At<'_>) {
    // The longest line start, reserved once.
    buf.reserve(48 + 4 * at.depth as usize);
    match (at.label, at.trace) {
        // The common case in one copy, without a general integer formatter.
        (Label { task, branch: 0 }, None) if task < 100 => {
            let (tens, ones) = (b'0' + (task / 10) as u8, b'0' + (task % 10) as u8);
            buf.extend_from_slice(&[b't', b'[', tens, ones, b']', b':']);
        }
        _ => labelled(buf, at),
    }
    // In copies of fixed sizes: a copy of a run of spaces of variable length becomes a call
    // to memset, which costs more than the few stores of a usual depth.
    for _ in 0..at.depth / 4 {
        buf.extend_from_slice(INDENT_4);
    }
    match at.depth % 4 {
        1 => buf.extend_from_slice(&INDENT_4[..4]),
        2 => buf.extend_from_slice(&INDENT_4[..8]),
        3 => buf.extend_from_slice(&INDENT_4[..12]),
        _ => {}
    }
}

/// `t[NN.B]:`, `t[NNN]:`, or `t[NN] TRACEID:`.
#[cold]
fn labelled(buf: &mut Vec<u8>, at: At<'_>) {
    buf.extend_from_slice(b"t[");
    task_label(buf, at.label);
    buf.push(b']');
    if let Some(trace) = at.trace {
        trace_id(buf, trace);
    }
    buf.push(b':');
}

/// `05`, `123`, `05.2`.
fn task_label(buf: &mut Vec<u8>, label: Label) {
    let mut digits = itoa::Buffer::new();
    let task = digits.format(label.task).as_bytes();
    if task.len() < 2 {
        buf.push(b'0');
    }
    buf.extend_from_slice(task);
    if label.branch != 0 {
        buf.push(b'.');
        buf.extend_from_slice(digits.format(label.branch).as_bytes());
    }
}

/// ` TRACEID` before the colon.
fn trace_id(buf: &mut Vec<u8>, trace: &TraceId) {
    buf.push(b' ');
    match *trace {
        TraceId::Short(low) => hex(buf, low.get()),
        TraceId::Long(high, low) => {
            hex(buf, high);
            hex(buf, low);
        }
    }
}

/// 16 lowercase hex digits.
fn hex(buf: &mut Vec<u8>, value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = DIGITS[(value >> (60 - 4 * i)) as usize & 0xf];
    }
    buf.extend_from_slice(&out);
}

/// `850ns`, `2.1µs`, `14.0ms`, `3.2s`: three significant-ish digits, one decimal.
#[inline]
fn duration(buf: &mut Vec<u8>, nanos: u64) {
    let (scaled, unit): (u64, &[u8]) = match nanos {
        0..=999 => {
            small(buf, nanos);
            buf.extend_from_slice(b"ns");
            return;
        }
        1_000..=999_999 => (nanos / 100, "µs".as_bytes()),
        1_000_000..=999_999_999 => (nanos / 100_000, b"ms"),
        _ => (nanos / 100_000_000, b"s"),
    };
    small(buf, scaled / 10);
    buf.extend_from_slice(&[b'.', b'0' + (scaled % 10) as u8]);
    buf.extend_from_slice(unit);
}

/// A number, written by hand when it has at most three digits (every duration but seconds).
#[inline(always)]
fn small(buf: &mut Vec<u8>, n: u64) {
    let digit = |d: u64| b'0' + d as u8;
    match n {
        0..=9 => buf.push(digit(n)),
        10..=99 => buf.extend_from_slice(&[digit(n / 10), digit(n % 10)]),
        100..=999 => buf.extend_from_slice(&[digit(n / 100), digit(n / 10 % 10), digit(n % 10)]),
        _ => buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(label: Label, trace: Option<&TraceId>, depth: u32) -> At<'_> {
        At {
            label,
            trace,
            depth,
        }
    }

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut buf = Vec::new();
        f(&mut buf);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn enter_line() {
        assert_eq!(
            text(|b| enter(b, at(Label::task(3), None, 2), "chains::b1", Detail::None)),
            "t[03]:        ->chains::b1\n"
        );
    }

    #[test]
    fn exit_lines_with_marks() {
        let task = Label::task(123);
        let d = 2_150;
        assert_eq!(
            text(|b| exit(
                b,
                at(task, None, 1),
                "m::f",
                d,
                Detail::None,
                Exit::Returned
            )),
            "t[123]:    <-m::f 2.1µs\n"
        );
        assert_eq!(
            text(|b| exit(
                b,
                at(task, None, 1),
                "m::f",
                d,
                Detail::None,
                Exit::Panicked
            )),
            "t[123]:    <-m::f 2.1µs (panicked)\n"
        );
        assert_eq!(
            text(|b| exit(
                b,
                at(task, None, 1),
                "m::f",
                d,
                Detail::None,
                Exit::Cancelled
            )),
            "t[123]:    <-m::f 2.1µs (cancelled)\n"
        );
    }

    #[test]
    fn details() {
        let task = Label::task(1);
        let x = 7;
        assert_eq!(
            text(|b| enter(
                b,
                at(task, None, 1),
                "f",
                Detail::Format(format_args!("x = {x:?}"))
            )),
            "t[01]:    ->f(x = 7)\n"
        );
        assert_eq!(
            text(|b| enter(b, at(task, None, 1), "f", Detail::Text("s = \"a\""))),
            "t[01]:    ->f(s = \"a\")\n"
        );
        let note = Detail::Format(format_args!("= {:?}", Some(3)));
        assert_eq!(
            text(|b| exit(b, at(task, None, 1), "f", 5, note, Exit::Returned)),
            "t[01]:    <-f 5ns = Some(3)\n"
        );
        assert_eq!(
            text(|b| exit(
                b,
                at(task, None, 1),
                "f",
                5,
                Detail::FailedText("\"x\""),
                Exit::Panicked
            )),
            "t[01]:    <-f 5ns Err(\"x\") (panicked)\n"
        );
    }

    #[test]
    fn lines_inside_a_trace_carry_its_id() {
        let trace = TraceId::from_hex("463ac35c9f6413ad48485a3953bb6124").unwrap();
        assert_eq!(
            text(|b| enter(b, at(Label::task(2), Some(&trace), 1), "f", Detail::None)),
            "t[02] 463ac35c9f6413ad48485a3953bb6124:    ->f\n"
        );
        let short = TraceId::from_hex("00f067aa0ba902b7").unwrap();
        let failed = Detail::Failed(format_args!("{:?}", "no"));
        assert_eq!(
            text(|b| exit(
                b,
                at(Label::task(2), Some(&short), 1),
                "f",
                5,
                failed,
                Exit::Returned
            )),
            "t[02] 00f067aa0ba902b7:    <-f 5ns Err(\"no\")\n"
        );
    }

    #[test]
    fn branch_labels() {
        let label = |task, branch| text(|b| prefix(b, at(Label { task, branch }, None, 0)));
        assert_eq!(label(5, 0), "t[05]:");
        assert_eq!(label(5, 2), "t[05.2]:");
        assert_eq!(label(123, 0), "t[123]:");
        assert_eq!(label(123, 17), "t[123.17]:");
        assert_eq!(label(u32::MAX, u32::MAX), "t[4294967295.4294967295]:");
    }

    #[test]
    fn durations() {
        let cases = [
            (0, "0ns"),
            (999, "999ns"),
            (1_000, "1.0µs"),
            (14_049, "14.0µs"),
            (999_999, "999.9µs"),
            (1_000_000, "1.0ms"),
            (25_470_000, "25.4ms"),
            (3_210_000_000, "3.2s"),
            (4_000_000_000_000, "4000.0s"),
            (7, "7ns"),
            (42, "42ns"),
            (9_999, "9.9µs"),
            (99_999_999, "99.9ms"),
        ];
        for (nanos, want) in cases {
            assert_eq!(text(|b| duration(b, nanos)), want, "{nanos}");
        }
    }

    #[test]
    fn deep_indentation_is_not_capped() {
        let line = text(|b| enter(b, at(Label::task(1), None, 40), "f", Detail::None));
        assert_eq!(line, format!("t[01]:{}->f\n", " ".repeat(160)));
    }
}
