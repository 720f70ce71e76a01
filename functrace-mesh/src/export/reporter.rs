//! [`Reporter`]: the cheap, cloneable handle that takes spans (local spans of traced calls
//! through [`SpanReporter`], CLIENT/SERVER spans of the HTTP layers through
//! [`Reporter::report`]) into a bounded queue, and the export thread that writes them as
//! JSON lines and/or posts them to a Zipkin collector and/or (the `otlp` feature) an OTLP/HTTP
//! receiver.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use functrace::{FinishedSpan, SpanReporter};

use super::collector::{self, Collector};
use super::json::{self, Text as TagText};
use super::jsonl::JsonLines;
use super::queue::{Queue, Queued};
use super::span::Span;

/// Spans held at most, waiting for export, by default.
pub const DEFAULT_QUEUE_SIZE: usize = 10_000;
/// The most bytes of spans' text that may wait for export, by default: some 8,000 of a
/// proxy's spans of about 500 bytes, and no more of those its clients made large (a path of
/// 60 KiB in the name and a tag) while a sink stalls.
pub const DEFAULT_QUEUE_BYTES: usize = 4 << 20;
/// Spans per `POST` (or per export to an SDK exporter), by default: each request to a
/// collector stays small.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// Spans per write, by default, when every destination is JSON lines (a file or stdout):
/// about a quarter of a mebibyte of a proxy's spans, and a twentieth of the default queue.
/// A write to a file costs the kernel more per call than per byte: under a proxy's load the
/// export thread's system time per span was 1.1–2.3 µs at 100 spans per write, 0.6–1.2 µs at
/// 500, 0.5–1.0 µs at 1,000, 0.3–0.8 µs at 2,000. Larger batches cost memory: the two buffers that take
/// turns (one filling, one being written) hold a batch each, and at 1,000 the proxy's peak
/// resident memory under HTTP/2 load went past 20 MiB.
pub const DEFAULT_LINES_BATCH_SIZE: usize = 500;
/// How long a span waits for its batch to fill, by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// How long a `POST` to the collector may take, by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Takes spans without ever blocking, and exports them from a background thread.
///
/// Clones share one queue and one export thread. When the last clone is dropped (or on
/// [`shutdown`](Reporter::shutdown)) the queue is drained and written before the thread
/// ends; the drop waits for that (at most one collector request timeout when the collector
/// does not answer: after a failed request, the rest of the queue is dropped).
///
/// A reporter may have several destinations (JSON lines, a Zipkin collector, an OTLP
/// receiver): each batch goes to every one of them, and counts as exported when all of them
/// took it (as dropped when any failed).
///
/// ```no_run
/// use functrace_mesh::export::Reporter;
///
/// let reporter = Reporter::builder("checkout")
///     .json_lines("spans.jsonl")
///     .collector("http://127.0.0.1:9411")
///     .build()?;
/// let _spans = reporter.install(); // local spans of traced calls now go to it
/// // ... at the end of main (after a Ctrl-C the program handles, say), `_spans` drops:
/// // the reporter is uninstalled and every span queued is written or sent.
/// # Ok::<(), functrace_mesh::export::BuildError>(())
/// ```
#[derive(Clone)]
pub struct Reporter {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Arc<Queue>,
    service_name: String,
    /// `service_name` lowercase, as spans without a service name of their own are written
    /// with it: made once here rather than per span.
    local_service: json::LocalService,
    /// Spans must reach the export thread as spans, not as JSON (an OTLP destination).
    structured: bool,
    worker: Mutex<Option<JoinHandle<()>>>,
}

/// The counters of a reporter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Spans written or sent (a collector answered 2xx).
    pub exported: u64,
    /// Spans dropped because the queue was full (or the reporter shut down).
    pub dropped_queue_full: u64,
    /// Spans dropped because writing or sending them failed.
    pub dropped_failed: u64,
    /// Spans in the queue now.
    pub queued: usize,
    /// Why the last failed batch failed.
    pub last_error: Option<String>,
}

/// Configures a [`Reporter`]; from [`Reporter::builder`].
#[derive(Clone, Debug)]
pub struct ReporterBuilder {
    service_name: String,
    stdout: bool,
    json_lines: Option<PathBuf>,
    collector: Option<String>,
    #[cfg(feature = "otlp")]
    otlp: Option<String>,
    #[cfg(feature = "otlp")]
    otlp_protocol: super::otlp::OtlpProtocol,
    queue_size: usize,
    queue_bytes: usize,
    /// Set by [`batch_size`](ReporterBuilder::batch_size); else by the destinations.
    batch_size: Option<usize>,
    interval: Duration,
    request_timeout: Duration,
}

/// A span kept in its recorder's own compact form until the export thread writes it
/// ([`Reporter::report_deferred`]).
pub trait DeferredSpan: Send {
    /// The span without its tags, to be [normalized](Span::normalize).
    fn span_mut(&mut self) -> &mut Span;
    /// Calls `write` with the span and its tags, in key order, each key once (as
    /// [`Reporter::report_with_tags`] takes them): the tags' text may live on the stack of
    /// this call only.
    fn write(&self, write: &mut dyn for<'t> FnMut(&'t Span, &mut dyn Iterator<Item = Tag<'t>>));
}

/// A tag: key and value.
pub type Tag<'t> = (TagText<'t>, TagText<'t>);

/// Why a reporter could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The JSON lines file could not be opened, or the export thread or its runtime could
    /// not be started.
    Io(io::Error),
    /// The collector (or OTLP receiver) URL is not a plain `http://` URL.
    CollectorUrl(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Io(error) => write!(f, "starting the span reporter: {error}"),
            BuildError::CollectorUrl(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Io(error) => Some(error),
            BuildError::CollectorUrl(_) => None,
        }
    }
}

impl From<io::Error> for BuildError {
    fn from(error: io::Error) -> BuildError {
        BuildError::Io(error)
    }
}

impl Reporter {
    /// Starts configuring a reporter for `service_name` (the `localEndpoint.serviceName`
    /// of its spans). With no destination set, spans go to stdout as JSON lines.
    pub fn builder(service_name: impl Into<String>) -> ReporterBuilder {
        ReporterBuilder {
            service_name: service_name.into(),
            stdout: false,
            json_lines: None,
            collector: None,
            #[cfg(feature = "otlp")]
            otlp: None,
            #[cfg(feature = "otlp")]
            otlp_protocol: super::otlp::OtlpProtocol::default(),
            queue_size: DEFAULT_QUEUE_SIZE,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            batch_size: None,
            interval: DEFAULT_INTERVAL,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Queues a span (a CLIENT or SERVER span from an HTTP layer, say); never blocks: when
    /// the queue is full the span is dropped and counted. Before export the span is
    /// [normalized](Span::normalize) with this reporter's service name.
    pub fn report(&self, span: Span) {
        self.inner.queue.push(Queued::span(span));
    }

    /// Queues `span` with `tags` (in key order, each key once) in place of its own, written
    /// as JSON here and now: a proxy that has its tags at hand as borrowed text skips building
    /// a map of owned strings. The span is [normalized](Span::normalize) first, as
    /// [`report`](Reporter::report) does; never blocks.
    pub fn report_with_tags<'a>(
        &self,
        mut span: Span,
        tags: impl IntoIterator<Item = (TagText<'a>, TagText<'a>)>,
    ) {
        if self.inner.structured {
            span.tags = tags
                .into_iter()
                .map(|(key, value)| (key.as_str().to_owned(), value.as_str().to_owned()))
                .collect();
            self.inner.queue.push(Queued::span(span));
            return;
        }
        let unnamed = span.normalize_but_a_missing_service();
        let local_service = unnamed.then_some(&self.inner.local_service);
        self.inner
            .queue
            .push_line(|lines| json::write_span_with_tags(lines, &span, local_service, tags));
    }

    /// Queues a span kept in its recorder's own form, which the export thread writes: the
    /// caller's cost is only what recording its values took (a proxy's request waits for
    /// no JSON). Never blocks.
    pub fn report_deferred(&self, span: Box<dyn DeferredSpan>) {
        self.inner.queue.push(Queued::Deferred(span));
    }

    /// Makes this reporter the process-wide [`SpanReporter`] of traced calls, until the
    /// returned guard drops. Hold the guard in `main`: statics are never dropped, so without
    /// it the spans queued in the last second before the process ends would be lost.
    pub fn install(&self) -> ReporterGuard {
        functrace::set_span_reporter(Some(Arc::new(self.clone())));
        ReporterGuard {
            reporter: self.clone(),
        }
    }

    /// The service name of local endpoints.
    pub fn service_name(&self) -> &str {
        &self.inner.service_name
    }

    /// Returns once every span queued before the call has been written or sent (or has
    /// failed to be).
    pub fn flush(&self) {
        self.inner.queue.flush(None);
    }

    /// [`flush`](Reporter::flush), waiting `timeout` at most; `false` if that was not long
    /// enough.
    pub fn flush_timeout(&self, timeout: Duration) -> bool {
        self.inner.queue.flush(Some(timeout))
    }

    /// Exports what is queued and stops the export thread; spans reported afterwards, by
    /// any clone, are dropped. Dropping the last clone does the same.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// Spans written or sent so far.
    pub fn exported(&self) -> u64 {
        self.inner.queue.exported()
    }

    /// Spans lost so far: dropped on a full queue plus failed to be written or sent.
    pub fn dropped(&self) -> u64 {
        self.inner.queue.dropped_full() + self.inner.queue.dropped_failed()
    }

    /// All counters.
    pub fn stats(&self) -> Stats {
        let queue = &self.inner.queue;
        Stats {
            exported: queue.exported(),
            dropped_queue_full: queue.dropped_full(),
            dropped_failed: queue.dropped_failed(),
            queued: queue.queued(),
            last_error: queue.last_error(),
        }
    }
}

/// What [`Reporter::install`] returns. Dropped, it uninstalls the reporter and
/// [flushes](Reporter::flush) it: every span queued so far, by any clone, is written or sent
/// (or has failed to be) before the drop returns. So a program that ends by returning from
/// `main`, after a Ctrl-C it handles too, loses no span:
///
/// ```no_run
/// # async fn serve() {}
/// # #[tokio::main] async fn main() -> Result<(), functrace_mesh::export::BuildError> {
/// use functrace_mesh::export::Reporter;
///
/// let reporter = Reporter::builder("checkout").json_lines("spans.jsonl").build()?;
/// let _spans = reporter.install();
/// tokio::select! {
///     _ = serve() => {}
///     _ = tokio::signal::ctrl_c() => {}
/// }
/// Ok(()) // `_spans` drops here: the last spans are written
/// # }
/// ```
///
/// (`std::process::exit` runs no destructor: flush before it.)
#[must_use = "dropped at once, it uninstalls the reporter: hold it until the end of main"]
pub struct ReporterGuard {
    reporter: Reporter,
}

impl ReporterGuard {
    /// The installed reporter.
    pub fn reporter(&self) -> &Reporter {
        &self.reporter
    }
}

impl Drop for ReporterGuard {
    fn drop(&mut self) {
        functrace::set_span_reporter(None);
        self.reporter.flush();
    }
}

impl fmt::Debug for ReporterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReporterGuard")
            .field("reporter", &self.reporter)
            .finish()
    }
}

impl SpanReporter for Reporter {
    /// Queues the local span of a traced call; it is converted with
    /// [`Span::from_finished`] on the export thread.
    fn report(&self, span: FinishedSpan) {
        if span.context.sampling.is_sampled() {
            self.inner.queue.push(Queued::Finished(span));
        }
    }
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("service_name", &self.inner.service_name)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Inner {
    fn shutdown(&self) {
        self.queue.close();
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(worker) = worker {
            if worker.thread().id() != thread::current().id() {
                let _ = worker.join();
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl ReporterBuilder {
    /// Appends JSON lines to `path` (created if needed).
    pub fn json_lines(mut self, path: impl Into<PathBuf>) -> ReporterBuilder {
        self.json_lines = Some(path.into());
        self
    }

    /// Writes JSON lines to stdout (the default when no destination is set).
    pub fn stdout(mut self) -> ReporterBuilder {
        self.stdout = true;
        self
    }

    /// Posts batches to a Zipkin v2 collector: `http://host:9411` (posting to
    /// `/api/v2/spans`) or a full URL with its path. Plain HTTP only.
    pub fn collector(mut self, url: impl Into<String>) -> ReporterBuilder {
        self.collector = Some(url.into());
        self
    }

    /// Posts batches to an OpenTelemetry collector over OTLP/HTTP, protobuf encoded (or JSON,
    /// [`otlp_protocol`](Self::otlp_protocol)):
    /// `http://host:4318` (posting to `/v1/traces`, as OpenTelemetry's
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` does) or a full URL with its path (as
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). Plain HTTP only. See the
    /// [`otlp` mapping](crate::export#otlp) for how Zipkin spans become OTLP spans, shared
    /// SERVER spans included.
    #[cfg(feature = "otlp")]
    pub fn otlp(mut self, url: impl Into<String>) -> ReporterBuilder {
        self.otlp = Some(url.into());
        self
    }

    /// How [`otlp`](Self::otlp) requests are encoded: protobuf (the default) or JSON.
    #[cfg(feature = "otlp")]
    pub fn otlp_protocol(mut self, protocol: super::otlp::OtlpProtocol) -> ReporterBuilder {
        self.otlp_protocol = protocol;
        self
    }

    /// How many spans may wait for export (at least 1); more are dropped.
    pub fn queue_size(mut self, spans: usize) -> ReporterBuilder {
        self.queue_size = spans.max(1);
        self
    }

    /// How many bytes of spans' text may wait for export: a JSON line's length, a structured
    /// span's strings, a traced call's error (at least 1); a span past it is dropped.
    pub fn queue_bytes(mut self, bytes: usize) -> ReporterBuilder {
        self.queue_bytes = bytes.max(1);
        self
    }

    /// How many spans go in one write or `POST` (at least 1). By default
    /// [`DEFAULT_BATCH_SIZE`], or [`DEFAULT_LINES_BATCH_SIZE`] when every destination is
    /// JSON lines.
    pub fn batch_size(mut self, spans: usize) -> ReporterBuilder {
        self.batch_size = Some(spans.max(1));
        self
    }

    /// How long a span waits for its batch to fill before it is sent anyway.
    pub fn interval(mut self, interval: Duration) -> ReporterBuilder {
        self.interval = interval;
        self
    }

    /// How long one `POST` (connecting included) may take before its spans count as
    /// dropped.
    pub fn request_timeout(mut self, timeout: Duration) -> ReporterBuilder {
        self.request_timeout = timeout;
        self
    }

    /// Opens the destinations and starts the export thread.
    pub fn build(self) -> Result<Reporter, BuildError> {
        self.build_with(None)
    }

    /// [`build`](Self::build), with an OpenTelemetry SDK span exporter (`opentelemetry-otlp`'s,
    /// say) as one more destination (the only one when no other is set: no stdout then).
    /// The reporter is the [`SpanReporter`] that hands functrace's spans to it: each batch is
    /// converted with [`to_span_data`](crate::export::to_span_data) and exported from the
    /// export thread, as the SDK's batch processor does (its future is driven on that thread;
    /// an exporter that needs a tokio runtime, as tonic's does, must be built inside one that
    /// keeps running). The exporter's resource is `service.name` = the service name; it is
    /// shut down when the export thread ends.
    ///
    /// ```no_run
    /// use functrace_mesh::export::Reporter;
    /// use opentelemetry_sdk::trace::InMemorySpanExporter;
    ///
    /// # fn otlp_exporter() -> InMemorySpanExporter { InMemorySpanExporter::default() }
    /// let reporter = Reporter::builder("checkout").build_with_exporter(otlp_exporter())?;
    /// let _spans = reporter.install(); // traced calls now go to the exporter
    /// # Ok::<(), functrace_mesh::export::BuildError>(())
    /// ```
    #[cfg(feature = "otel")]
    pub fn build_with_exporter<E>(self, exporter: E) -> Result<Reporter, BuildError>
    where
        E: opentelemetry_sdk::trace::SpanExporter + 'static,
    {
        let sink = super::otel::sink(exporter, &self.service_name);
        self.build_with(Some(sink))
    }

    fn build_with(self, exporter: Option<ExporterSink>) -> Result<Reporter, BuildError> {
        let mut files = Vec::new();
        #[cfg(feature = "otlp")]
        let otlp = match &self.otlp {
            Some(url) => {
                let uri = collector::parse_url(url, super::otlp::TRACES_PATH)
                    .map_err(BuildError::CollectorUrl)?;
                let sink = Sink::new(Collector::new(uri, self.request_timeout)?);
                Some((sink, self.otlp_protocol))
            }
            None => None,
        };
        #[cfg(feature = "otlp")]
        let has_otlp = otlp.is_some();
        #[cfg(not(feature = "otlp"))]
        let has_otlp = false;
        let structured = has_otlp || exporter.is_some();
        if self.stdout || (self.json_lines.is_none() && self.collector.is_none() && !structured) {
            files.push(JsonLines::Stdout);
        }
        if let Some(path) = &self.json_lines {
            files.push(JsonLines::open(path).map_err(|error| {
                BuildError::Io(io::Error::new(
                    error.kind(),
                    format!("opening {}: {error}", path.display()),
                ))
            })?);
        }
        let collector = match &self.collector {
            Some(url) => {
                let uri = collector::parse_url(url, collector::SPANS_PATH)
                    .map_err(BuildError::CollectorUrl)?;
                Some(Sink::new(Collector::new(uri, self.request_timeout)?))
            }
            None => None,
        };
        let posts = structured || collector.is_some();
        let batch_size = self
            .batch_size
            .unwrap_or(if posts {
                DEFAULT_BATCH_SIZE
            } else {
                DEFAULT_LINES_BATCH_SIZE
            })
            .min(self.queue_size);
        let queue = Arc::new(Queue::new(
            self.queue_size,
            self.queue_bytes,
            batch_size,
            self.interval,
        ));
        let worker = Worker {
            queue: queue.clone(),
            service_name: self.service_name.clone(),
            files,
            collector,
            #[cfg(feature = "otlp")]
            otlp,
            exporter,
        };
        let worker = thread::Builder::new()
            .name("functrace-export".into())
            .spawn(move || worker.run())?;
        Ok(Reporter {
            inner: Arc::new(Inner {
                queue,
                local_service: json::LocalService::new(self.service_name.to_lowercase()),
                service_name: self.service_name,
                structured,
                worker: Mutex::new(Some(worker)),
            }),
        })
    }
}

/// The export thread's side.
struct Worker {
    queue: Arc<Queue>,
    service_name: String,
    files: Vec<JsonLines>,
    collector: Option<Sink>,
    #[cfg(feature = "otlp")]
    otlp: Option<(Sink, super::otlp::OtlpProtocol)>,
    exporter: Option<ExporterSink>,
}

/// An OpenTelemetry SDK span exporter (the `otel` feature).
#[cfg(feature = "otel")]
type ExporterSink = Box<dyn super::otel::ExportSink>;
#[cfg(not(feature = "otel"))]
type ExporterSink = std::convert::Infallible;

/// A collector, and why the last batch did not reach it, if it did not.
struct Sink {
    collector: Collector,
    failed: Option<String>,
}

impl Sink {
    fn new(collector: Collector) -> Sink {
        Sink {
            collector,
            failed: None,
        }
    }

    /// Sends a batch. While shutting down, a collector that just failed is not tried again,
    /// so that draining a full queue does not wait out one request timeout per batch.
    fn send(
        &mut self,
        closing: bool,
        send: impl FnOnce(&mut Collector) -> Result<(), String>,
    ) -> Result<(), String> {
        match &self.failed {
            Some(error) if closing => Err(format!("{error} (not retried at shutdown)")),
            _ => {
                let sent = send(&mut self.collector);
                self.failed = sent.as_ref().err().cloned();
                sent
            }
        }
    }
}

/// Tells the queue the export thread is gone, however it ends.
struct Exited(Arc<Queue>);

impl Drop for Exited {
    fn drop(&mut self) {
        self.0.worker_exited();
    }
}

impl Worker {
    fn run(mut self) {
        let _exited = Exited(self.queue.clone());
        let json = !self.files.is_empty() || self.collector.is_some();
        // Kept from batch to batch, so that it grows to a batch's size once. When it is a
        // buffer of lines the queue gave (`from_queue`), it goes back to the queue for its
        // next lines as the next batch is taken: the two buffers take turns.
        let mut lines = Vec::new();
        let mut from_queue = false;
        loop {
            let spare = if from_queue {
                std::mem::take(&mut lines)
            } else {
                Vec::new()
            };
            let Some((batch, closing)) = self.queue.next_batch(spare) else {
                break;
            };
            // Each span is written once, as a JSON line; every JSON destination takes the
            // lines. OTLP and an SDK exporter take the spans.
            let count = batch.iter().map(Queued::spans).sum();
            lines.clear();
            from_queue = false;
            let mut spans = Vec::new();
            for queued in batch {
                let mut span = match queued {
                    Queued::Finished(finished) => {
                        Span::from_finished(&finished, &self.service_name)
                    }
                    Queued::Span { span, .. } => span,
                    // Only when no destination takes spans (OTLP, an SDK exporter). Usually
                    // the whole batch: taken as it is, not copied.
                    Queued::Lines { bytes, .. } => {
                        if lines.is_empty() {
                            lines = bytes;
                            from_queue = true;
                        } else {
                            lines.extend_from_slice(&bytes);
                        }
                        continue;
                    }
                    Queued::Deferred(mut deferred) => {
                        deferred.span_mut().normalize(&self.service_name);
                        let structured = self.structured();
                        deferred.write(&mut |span, tags| {
                            if !structured {
                                json::write_span_with_tags(&mut lines, span, None, tags);
                                lines.push(b'\n');
                                return;
                            }
                            let tags: Vec<Tag<'_>> = tags.collect();
                            if json {
                                json::write_span_with_tags(
                                    &mut lines,
                                    span,
                                    None,
                                    tags.iter().copied(),
                                );
                                lines.push(b'\n');
                            }
                            let mut span = span.clone();
                            span.tags = tags
                                .iter()
                                .map(|(key, value)| {
                                    (key.as_str().to_owned(), value.as_str().to_owned())
                                })
                                .collect();
                            spans.push(span);
                        });
                        continue;
                    }
                };
                span.normalize(&self.service_name);
                if json {
                    json::write_span(&mut lines, &span);
                    lines.push(b'\n');
                }
                if self.structured() {
                    spans.push(span);
                }
            }
            let result = self.export(&lines, &spans, closing);
            self.queue.settle(count, result);
        }
        #[cfg(feature = "otel")]
        if let Some(exporter) = &mut self.exporter {
            exporter.shutdown();
        }
    }

    /// Whether a destination takes spans rather than JSON lines.
    fn structured(&self) -> bool {
        #[cfg(feature = "otlp")]
        if self.otlp.is_some() {
            return true;
        }
        self.exporter.is_some()
    }

    /// Hands a batch to every destination; `Err` if any of them failed.
    fn export(&mut self, lines: &[u8], spans: &[Span], closing: bool) -> Result<(), String> {
        let mut result = Ok(());
        for file in &mut self.files {
            if let Err(error) = file.write(lines) {
                result = Err(error);
            }
        }
        if let Some(collector) = &mut self.collector {
            if let Err(error) = collector.send(closing, |collector| collector.send(lines)) {
                result = Err(error);
            }
        }
        #[cfg(feature = "otlp")]
        if let Some((otlp, protocol)) = &mut self.otlp {
            let sent = otlp.send(closing, |collector| {
                let (body, content_type) = super::otlp::encode(spans, *protocol);
                collector.post(body, content_type)
            });
            if let Err(error) = sent {
                result = Err(error);
            }
        }
        #[cfg(feature = "otel")]
        if let Some(exporter) = &mut self.exporter {
            if let Err(error) = exporter.export(spans) {
                result = Err(error);
            }
        }
        #[cfg(not(any(feature = "otlp", feature = "otel")))]
        let _ = spans;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_size(builder: ReporterBuilder) -> usize {
        let reporter = builder.build().unwrap();
        let size = reporter.inner.queue.batch_size();
        reporter.shutdown();
        size
    }

    #[test]
    fn batches_are_large_for_json_lines_only_and_small_for_collectors_unless_set() {
        let lines = || Reporter::builder("batches").stdout();
        assert_eq!(batch_size(lines()), DEFAULT_LINES_BATCH_SIZE);
        // Never more than the queue holds.
        assert_eq!(batch_size(lines().queue_size(500)), 500);
        // Building a collector's sink connects nothing.
        let posting = || lines().collector("http://127.0.0.1:9");
        assert_eq!(batch_size(posting()), DEFAULT_BATCH_SIZE);
        assert_eq!(batch_size(lines().batch_size(7)), 7);
        assert_eq!(batch_size(posting().batch_size(700)), 700);
    }
}
