//! Where trace lines go: the [`Sink`] trait, the built-in sinks, and the process-wide choice
//! made by [`Builder`] or, when nothing was installed, by the environment.
//!
//! The traced call reads the current sink through a per-thread cache invalidated by a global
//! generation counter, so the hot path costs one atomic load, never a lock.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use crate::filter::{Filter, FilterError};

/// A destination for trace lines.
pub trait Sink: Send + Sync + 'static {
    /// Writes whole lines, each ending in a newline: one line, or a batch of them for a sink
    /// whose [`buffer_per_thread`](Sink::buffer_per_thread) is not 0. A failed write is
    /// counted (see [`dropped_lines`]) and its lines are lost; the traced program goes on.
    fn write_line(&self, line: &[u8]) -> io::Result<()>;

    /// How many bytes of lines each thread may collect before handing them over in one
    /// write. 0, the default, hands over every line as it is made.
    fn buffer_per_thread(&self) -> usize {
        0
    }

    /// False for a sink that discards everything: then lines are not even assembled.
    fn wants_lines(&self) -> bool {
        true
    }
}

/// The built-in destinations.
#[derive(Clone)]
pub enum Output {
    /// Standard error, one `write` per line (the default).
    Stderr,
    /// Standard output, one `write` per line.
    Stdout,
    /// A file, created if missing and appended to, one `write` per line (`O_APPEND`, so lines
    /// of several threads or processes never tear).
    File(PathBuf),
    /// Nothing: frames are still kept, lines are not assembled.
    Null,
    /// An in-memory buffer, for tests.
    Memory(MemorySink),
    /// The inner output, fed in batches: each thread collects its lines in a buffer of its
    /// own (16 KiB) and hands them over when it is full, when the thread ends, at its first
    /// traced call after the output is replaced, or on [`flush`](crate::flush). The fastest
    /// choice for heavy tracing; a process that ends with `std::process::exit` or a crash
    /// loses what is still buffered, so call [`flush`](crate::flush) at the end of `main` and
    /// of long-lived threads.
    Buffered(Box<Output>),
    /// Any other sink.
    Custom(Arc<dyn Sink>),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Stderr => f.write_str("Stderr"),
            Output::Stdout => f.write_str("Stdout"),
            Output::File(path) => f.debug_tuple("File").field(path).finish(),
            Output::Null => f.write_str("Null"),
            Output::Memory(_) => f.write_str("Memory"),
            Output::Buffered(inner) => f.debug_tuple("Buffered").field(inner).finish(),
            Output::Custom(_) => f.write_str("Custom"),
        }
    }
}

impl Output {
    /// Parses `FUNCTRACE_OUT`: `stderr`, `stdout`, `null`, or a file path.
    pub fn parse(value: &str) -> Output {
        match value {
            "" | "stderr" => Output::Stderr,
            "stdout" => Output::Stdout,
            "null" => Output::Null,
            path => Output::File(PathBuf::from(path)),
        }
    }

    fn open(self) -> io::Result<Arc<dyn Sink>> {
        Ok(match self {
            Output::Stderr => Arc::new(StderrSink),
            Output::Stdout => Arc::new(StdoutSink),
            Output::File(path) => Arc::new(FileSink(
                OpenOptions::new().create(true).append(true).open(path)?,
            )),
            Output::Null => Arc::new(NullSink),
            Output::Memory(memory) => Arc::new(memory),
            Output::Buffered(inner) => Arc::new(Buffered(inner.open()?)),
            Output::Custom(sink) => sink,
        })
    }
}

struct StderrSink;
impl Sink for StderrSink {
    fn write_line(&self, line: &[u8]) -> io::Result<()> {
        io::stderr().write_all(line)
    }
}

struct StdoutSink;
impl Sink for StdoutSink {
    fn write_line(&self, line: &[u8]) -> io::Result<()> {
        io::stdout().lock().write_all(line)
    }
}

struct FileSink(File);
impl Sink for FileSink {
    fn write_line(&self, line: &[u8]) -> io::Result<()> {
        (&self.0).write_all(line)
    }
}

/// Batches of lines made per thread (see [`Output::Buffered`]).
struct Buffered(Arc<dyn Sink>);
impl Sink for Buffered {
    fn write_line(&self, lines: &[u8]) -> io::Result<()> {
        self.0.write_line(lines)
    }
    fn wants_lines(&self) -> bool {
        self.0.wants_lines()
    }
    fn buffer_per_thread(&self) -> usize {
        16 * 1024
    }
}

struct NullSink;
impl Sink for NullSink {
    fn write_line(&self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn wants_lines(&self) -> bool {
        false
    }
}

/// An in-memory sink: clones share one buffer. For tests and for collecting a trace to
/// inspect in-process.
#[derive(Clone, Default)]
pub struct MemorySink(Arc<Mutex<Vec<u8>>>);

impl MemorySink {
    /// An empty buffer.
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// Everything written so far, as text.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.buffer()).into_owned()
    }

    /// The lines written so far, without their newlines.
    pub fn lines(&self) -> Vec<String> {
        self.contents().lines().map(str::to_owned).collect()
    }

    /// Empties the buffer.
    pub fn clear(&self) {
        self.buffer().clear();
    }

    fn buffer(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // A panic while holding the lock cannot leave a half line: extend is all or nothing.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sink for MemorySink {
    fn write_line(&self, line: &[u8]) -> io::Result<()> {
        self.buffer().extend_from_slice(line);
        Ok(())
    }
}

/// Chooses the output and which traced functions print, then
/// [`install`](Builder::install)s the choice for the whole process.
///
/// ```
/// functrace::Builder::from_env()
///     .output(functrace::Output::Stdout)
///     .filter("myapp=on,myapp::db=off")?
///     .install()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    output: Output,
    filter: Filter,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            output: Output::Stderr,
            filter: Filter::default(),
        }
    }
}

impl Builder {
    /// Stderr, enabled: the defaults, ignoring the environment.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The defaults overridden by `FUNCTRACE_OUT` (`stderr`, `stdout`, `null` or a file path)
    /// and `FUNCTRACE` (a filter, see [`filter`](Builder::filter); `off` mutes a traced
    /// build). A bad directive in `FUNCTRACE` is named in one line on stderr; the others apply.
    pub fn from_env() -> Builder {
        let mut builder = Builder::new();
        if let Ok(out) = std::env::var("FUNCTRACE_OUT") {
            builder.output = Output::parse(&out);
        }
        if let Ok(directives) = std::env::var("FUNCTRACE") {
            let (filter, errors) = Filter::parse(&directives);
            for error in errors {
                let _ = writeln!(io::stderr(), "functrace: FUNCTRACE: {error}");
            }
            builder.filter = filter;
        }
        builder
    }

    /// Where lines go.
    pub fn output(mut self, output: Output) -> Builder {
        self.output = output;
        self
    }

    /// Whether traced functions print, where no directive of the [`filter`](Builder::filter)
    /// says otherwise: `enabled(false)` alone mutes a traced build (each call then costs a
    /// branch).
    pub fn enabled(mut self, enabled: bool) -> Builder {
        self.filter.set_default(enabled);
        self
    }

    /// Which traced functions print: comma-separated `path=on|off` directives, where the
    /// longest path that is a prefix of the function's path (at a `::` boundary) decides, and
    /// a bare `on` or `off` for every other function, as in `RUST_LOG`:
    /// `"myapp=on,myapp::db=off"`, `"off,myapp::payments=on"`, `"myapp::Cart::total=off"`.
    /// A function's path is its module path and name, as its lines print it (for a method in
    /// a trait impl, or with `name = "..."`, its module path alone). A filtered-out call prints
    /// nothing and adds no depth: its traced callees print one level up. Replaces the filter
    /// set before (from `FUNCTRACE`, with [`from_env`](Builder::from_env)); fails on the first
    /// bad directive, naming it.
    pub fn filter(mut self, directives: &str) -> Result<Builder, FilterError> {
        self.filter = Filter::parse_strict(directives)?;
        Ok(self)
    }

    /// Makes this the process-wide choice, replacing any earlier one. Fails only when a file
    /// output cannot be opened; the previous choice then stays.
    pub fn install(self) -> io::Result<()> {
        let (sink, filter) = self.open()?;
        // From now on the environment is not consulted: this choice stands.
        FROM_ENV.get_or_init(|| ());
        set_chosen(sink, filter);
        Ok(())
    }

    fn open(self) -> io::Result<(Option<Arc<dyn Sink>>, Filter)> {
        let sink = (!self.filter.is_off())
            .then(|| self.output.open())
            .transpose()?;
        Ok((sink, self.filter))
    }
}

static CHOSEN: RwLock<Option<Arc<dyn Sink>>> = RwLock::new(None);
static FILTER: RwLock<Option<Filter>> = RwLock::new(None);
/// Bumped on every install; 0 means "nothing chosen yet". Threads compare it with the
/// generation of their cached sink, call sites with that of their filter decision.
static GENERATION: AtomicUsize = AtomicUsize::new(0);
static FROM_ENV: OnceLock<()> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Whether the chosen sink is none, readable without the lock.
static MUTED: AtomicBool = AtomicBool::new(false);

fn set_chosen(sink: Option<Arc<dyn Sink>>, filter: Filter) {
    let mut chosen = CHOSEN.write().unwrap_or_else(PoisonError::into_inner);
    *FILTER.write().unwrap_or_else(PoisonError::into_inner) = Some(filter);
    MUTED.store(sink.is_none(), Ordering::Relaxed);
    *chosen = sink;
    GENERATION.fetch_add(1, Ordering::Release);
}

/// Whether the installed filter lets calls at `path` print.
#[cfg_attr(not(runtime), allow(dead_code))]
pub(crate) fn filter_enables(path: &str) -> bool {
    FILTER
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .is_none_or(|filter| filter.enables(path))
}

/// The current generation, choosing from the environment on first use.
#[cfg_attr(not(runtime), allow(dead_code))]
#[inline]
pub(crate) fn generation() -> usize {
    match GENERATION.load(Ordering::Acquire) {
        0 => choose_from_env(),
        generation => generation,
    }
}

#[cold]
fn choose_from_env() -> usize {
    FROM_ENV.get_or_init(|| {
        let builder = Builder::from_env();
        let filter = builder.filter.clone();
        let (sink, filter) = builder.open().unwrap_or_else(|err| {
            let _ = writeln!(
                io::stderr(),
                "functrace: cannot open FUNCTRACE_OUT ({err}); writing to stderr"
            );
            (Some(Arc::new(StderrSink)), filter)
        });
        set_chosen(sink, filter);
    });
    GENERATION.load(Ordering::Acquire)
}

/// Whether tracing is muted now. Before the first choice this says no; the sink lookup that
/// follows then makes the choice from the environment (and finds no sink if it mutes).
#[cfg_attr(not(runtime), allow(dead_code))]
#[inline]
pub(crate) fn muted() -> bool {
    MUTED.load(Ordering::Relaxed)
}

/// The sink chosen now (`None`: tracing is muted).
#[cfg_attr(not(runtime), allow(dead_code))]
pub(crate) fn chosen() -> Option<Arc<dyn Sink>> {
    CHOSEN
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

#[cfg_attr(not(runtime), allow(dead_code))]
pub(crate) fn count_dropped_n(lines: u64) {
    DROPPED.fetch_add(lines, Ordering::Relaxed);
}

/// How many lines were lost because a sink failed to write (closed pipe, full disk) or a sink
/// itself traced a call while writing.
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}
