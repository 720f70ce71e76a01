//! JSON lines: one span JSON object per line, to a file or stdout. A batch is written with
//! one `write_all` and flushed, so lines are whole and on disk when a flush returns.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

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

    /// Writes `lines`: JSON objects, each ended by a newline.
    pub(crate) fn write(&mut self, lines: &[u8]) -> Result<(), String> {
        let written = match self {
            JsonLines::Stdout => {
                let mut stdout = io::stdout().lock();
                stdout.write_all(lines).and_then(|()| stdout.flush())
            }
            JsonLines::File(file) => file.write_all(lines).and_then(|()| file.flush()),
        };
        written.map_err(|error| format!("writing JSON lines: {error}"))
    }
}
