//! Reporting traced calls as spans. When a call runs inside a sampled trace context and a
//! reporter is installed, its span (a local span, named by the function path) is handed to
//! the reporter when the call ends. `functrace-mesh` provides reporters (Zipkin v2 JSON lines,
//! a Zipkin collector, OpenTelemetry).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use crate::trace_context::TraceContext;

/// A traced call that ended inside a sampled trace.
#[derive(Clone, Debug)]
pub struct FinishedSpan {
    /// The function path (or the `name = "..."` option).
    pub name: &'static str,
    /// Its own span id, its parent's, the trace id and the sampling state.
    pub context: TraceContext,
    /// Wall-clock time of entering.
    pub start: SystemTime,
    /// From entering to leaving.
    pub duration: Duration,
    /// The display id of the task (`t[NN]`).
    pub task: u32,
    /// Why the call failed: `panicked`, `cancelled`, or the `Err` it returned (with `err`).
    pub error: Option<String>,
}

/// Where finished spans go.
pub trait SpanReporter: Send + Sync + 'static {
    /// Takes one span. Must not block: a reporter queues and drops rather than wait.
    fn report(&self, span: FinishedSpan);
}

static REPORTER: RwLock<Option<Arc<dyn SpanReporter>>> = RwLock::new(None);
/// Whether a reporter is installed, readable without the lock.
static REPORTING: AtomicBool = AtomicBool::new(false);

/// Installs the process-wide reporter (`None` removes it).
pub fn set_span_reporter(reporter: Option<Arc<dyn SpanReporter>>) {
    let mut installed = REPORTER.write().unwrap_or_else(PoisonError::into_inner);
    REPORTING.store(reporter.is_some(), Ordering::Relaxed);
    *installed = reporter;
}

#[cfg_attr(not(runtime), allow(dead_code))]
pub(crate) fn reporting() -> bool {
    REPORTING.load(Ordering::Relaxed)
}

#[cfg_attr(not(runtime), allow(dead_code))]
pub(crate) fn report(span: FinishedSpan) {
    if let Some(reporter) = span_reporter() {
        reporter.report(span);
    }
}

/// The installed reporter, if any.
pub fn span_reporter() -> Option<Arc<dyn SpanReporter>> {
    REPORTER
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}
