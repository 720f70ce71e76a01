//! Loading: spans files read line by line, malformed lines skipped and counted.

use super::*;

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
