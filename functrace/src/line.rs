//! Appending one trace line to a buffer, by hand (no `core::fmt`: it would triple the cost of a call).
//!
//! `t[01]:` + four spaces per depth level + `->name`, or `<-name 2.1µs` with an optional
//! ` (panicked)` / ` (cancelled)` mark, then `\n`.

use std::fmt;
use std::io::Write;

const INDENT: &[u8] = &[b' '; 4 * 32];

/// How a call ended, as its exit line tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    Returned,
    Panicked,
    Cancelled,
}

/// What the `args`, `ret` and `err` options add to a line: already text (rendered before an
/// async fn's arguments moved into its future) or still to format.
#[derive(Clone, Copy)]
pub(crate) enum Detail<'a> {
    None,
    Text(&'a str),
    Format(fmt::Arguments<'a>),
}

impl Detail<'_> {
    fn write(self, buf: &mut Vec<u8>, before: &[u8], after: &[u8]) {
        match self {
            Detail::None => return,
            Detail::Text(text) => {
                buf.extend_from_slice(before);
                buf.extend_from_slice(text.as_bytes());
            }
            Detail::Format(args) => {
                buf.extend_from_slice(before);
                // Writing to a Vec fails only if a Debug impl fails; keep what it wrote.
                let _ = buf.write_fmt(args);
            }
        }
        buf.extend_from_slice(after);
    }
}

/// `->name`, or `->name(a = 1, b = "x")` with arguments.
pub(crate) fn enter(buf: &mut Vec<u8>, task: &TaskLabel, depth: u32, name: &str, args: Detail<'_>) {
    prefix(buf, task, depth);
    buf.extend_from_slice(b"->");
    buf.extend_from_slice(name.as_bytes());
    args.write(buf, b"(", b")");
    buf.push(b'\n');
}

/// `<-name 2.1µs`, then ` = 42` or ` Err(...)` for `ret`/`err`, then a panic/cancel mark.
pub(crate) fn exit(
    buf: &mut Vec<u8>,
    task: &TaskLabel,
    depth: u32,
    name: &str,
    elapsed_nanos: u64,
    note: Detail<'_>,
    how: Exit,
) {
    prefix(buf, task, depth);
    buf.extend_from_slice(b"<-");
    buf.extend_from_slice(name.as_bytes());
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

/// A task id as printed (`07`, `123`), formatted once per call for both of its lines.
pub(crate) struct TaskLabel {
    digits: [u8; 10],
    len: u8,
}

impl TaskLabel {
    pub fn new(task: u32) -> TaskLabel {
        let mut digits = [0; 10];
        let mut formatter = itoa::Buffer::new();
        let text: &[u8] = match task {
            // The common case, without a general integer formatter.
            0..=99 => &[b'0' + (task / 10) as u8, b'0' + (task % 10) as u8],
            _ => formatter.format(task).as_bytes(),
        };
        digits[..text.len()].copy_from_slice(text);
        let len = text.len() as u8;
        TaskLabel { digits, len }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.digits[..usize::from(self.len)]
    }
}

fn prefix(buf: &mut Vec<u8>, task: &TaskLabel, depth: u32) {
    buf.extend_from_slice(b"t[");
    buf.extend_from_slice(task.as_bytes());
    buf.extend_from_slice(b"]:");
    let mut spaces = 4 * depth as usize;
    while spaces > 0 {
        let chunk = spaces.min(INDENT.len());
        buf.extend_from_slice(&INDENT[..chunk]);
        spaces -= chunk;
    }
}

/// `850ns`, `2.1µs`, `14.0ms`, `3.2s`: three significant-ish digits, one decimal.
fn duration(buf: &mut Vec<u8>, nanos: u64) {
    let (scaled, unit): (u64, &[u8]) = match nanos {
        0..=999 => {
            buf.extend_from_slice(itoa::Buffer::new().format(nanos).as_bytes());
            buf.extend_from_slice(b"ns");
            return;
        }
        1_000..=999_999 => (nanos / 100, "µs".as_bytes()),
        1_000_000..=999_999_999 => (nanos / 100_000, b"ms"),
        _ => (nanos / 100_000_000, b"s"),
    };
    buf.extend_from_slice(itoa::Buffer::new().format(scaled / 10).as_bytes());
    buf.push(b'.');
    buf.push(b'0' + (scaled % 10) as u8);
    buf.extend_from_slice(unit);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut buf = Vec::new();
        f(&mut buf);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn enter_line() {
        assert_eq!(
            text(|b| enter(b, &TaskLabel::new(3), 2, "chains::b1", Detail::None)),
            "t[03]:        ->chains::b1\n"
        );
    }

    #[test]
    fn exit_lines_with_marks() {
        let task = TaskLabel::new(123);
        let d = 2_150;
        assert_eq!(
            text(|b| exit(b, &task, 1, "m::f", d, Detail::None, Exit::Returned)),
            "t[123]:    <-m::f 2.1µs\n"
        );
        assert_eq!(
            text(|b| exit(b, &task, 1, "m::f", d, Detail::None, Exit::Panicked)),
            "t[123]:    <-m::f 2.1µs (panicked)\n"
        );
        assert_eq!(
            text(|b| exit(b, &task, 1, "m::f", d, Detail::None, Exit::Cancelled)),
            "t[123]:    <-m::f 2.1µs (cancelled)\n"
        );
    }

    #[test]
    fn details() {
        let task = TaskLabel::new(1);
        let x = 7;
        assert_eq!(
            text(|b| enter(b, &task, 1, "f", Detail::Format(format_args!("x = {x:?}")))),
            "t[01]:    ->f(x = 7)\n"
        );
        assert_eq!(
            text(|b| enter(b, &task, 1, "f", Detail::Text("s = \"a\""))),
            "t[01]:    ->f(s = \"a\")\n"
        );
        let note = Detail::Format(format_args!("= {:?}", Some(3)));
        assert_eq!(
            text(|b| exit(b, &task, 1, "f", 5, note, Exit::Returned)),
            "t[01]:    <-f 5ns = Some(3)\n"
        );
        assert_eq!(
            text(|b| exit(
                b,
                &task,
                1,
                "f",
                5,
                Detail::Text("Err(\"x\")"),
                Exit::Panicked
            )),
            "t[01]:    <-f 5ns Err(\"x\") (panicked)\n"
        );
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
        ];
        for (nanos, want) in cases {
            assert_eq!(text(|b| duration(b, nanos)), want, "{nanos}");
        }
    }

    #[test]
    fn deep_indentation_is_not_capped() {
        let line = text(|b| enter(b, &TaskLabel::new(1), 40, "f", Detail::None));
        assert_eq!(line, format!("t[01]:{}->f\n", " ".repeat(160)));
    }
}
