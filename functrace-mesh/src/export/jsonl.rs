//! JSON lines: one span JSON object per line, to a file or stdout. A batch is written with
//! one `write_all` and flushed, so lines are whole and on disk when a flush returns.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use super::span::Span;

pub(crate) enum JsonLines {
    Stdout,
    File(File),
}

impl JsonLines {
    /// Opens `path` for appending, creating it if needed.
    pub(crate) fn open(path: &Path) -> io::Result<JsonLines> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(JsonLines::File)
    }

    pub(crate) fn write(&mut self, spans: &[Span]) -> Result<(), String> {
        let mut buffer = Vec::with_capacity(spans.len() * 512);
        for span in spans {
            super::json::write_span(&mut buffer, span);
            buffer.push(b'\n');
        }
        let written = match self {
            JsonLines::Stdout => {
                let mut stdout = io::stdout().lock();
                stdout.write_all(&buffer).and_then(|()| stdout.flush())
            }
            JsonLines::File(file) => file.write_all(&buffer).and_then(|()| file.flush()),
        };
        written.map_err(|error| format!("writing JSON lines: {error}"))
    }
}
