//! What one traced call costs (enter + exit), side by side in one run.
//!
//! `cargo bench -p functrace-benches` compares a plain fn with `#[trace]` compiled out;
//! `cargo bench -p functrace-benches --features trace` compares a plain fn with `#[trace]`
//! muted at run time, with a null sink, with lines kept in memory (handed over one by one to a
//! shared buffer), with lines assembled in a per-thread buffer (`Output::Buffered`) whose
//! batches are discarded, and writing each line to `/dev/null`, with `tracing::instrument` + a fmt subscriber writing to
//! `io::sink()`, and with `fastrace::trace` reporting to nowhere.
//!
//! Every iteration makes 100 traced calls: 100 depth-1 calls, 10 chains 10 deep, or 100 awaits
//! of a traced async fn on a current-thread runtime. `benches/report.py` turns criterion's
//! medians into ns per call and ratios.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};

const CALLS: u64 = 100;

/// The same functions, once per way of tracing them.
macro_rules! flavour {
    ($module:ident $(, #[$attr:meta])?) => {
        mod $module {
            use std::hint::black_box;

            $(#[$attr])? #[inline(never)] pub fn leaf(x: u64) -> u64 { black_box(x) }
            $(#[$attr])? #[inline(never)] pub fn d1(x: u64) -> u64 { black_box(x) }
            $(#[$attr])? #[inline(never)] pub fn d2(x: u64) -> u64 { d1(x) }
            $(#[$attr])? #[inline(never)] pub fn d3(x: u64) -> u64 { d2(x) }
            $(#[$attr])? #[inline(never)] pub fn d4(x: u64) -> u64 { d3(x) }
            $(#[$attr])? #[inline(never)] pub fn d5(x: u64) -> u64 { d4(x) }
            $(#[$attr])? #[inline(never)] pub fn d6(x: u64) -> u64 { d5(x) }
            $(#[$attr])? #[inline(never)] pub fn d7(x: u64) -> u64 { d6(x) }
            $(#[$attr])? #[inline(never)] pub fn d8(x: u64) -> u64 { d7(x) }
            $(#[$attr])? #[inline(never)] pub fn d9(x: u64) -> u64 { d8(x) }
            $(#[$attr])? #[inline(never)] pub fn d10(x: u64) -> u64 { d9(x) }
            $(#[$attr])? #[inline(never)] pub async fn aleaf(x: u64) -> u64 { black_box(x) }
        }
    };
}

flavour!(plain);
flavour!(functraced, #[functrace::trace]);
#[cfg(feature = "trace")]
flavour!(tracing_fmt, #[tracing::instrument(skip_all)]);
#[cfg(feature = "trace")]
flavour!(fastraced, #[fastrace::trace]);

/// Functions of one flavour, called `CALLS` times per iteration.
struct Calls {
    leaf: fn(u64) -> u64,
    deep: fn(u64) -> u64,
    run_async: fn(&tokio::runtime::Runtime),
}

macro_rules! calls {
    ($module:ident) => {
        Calls {
            leaf: $module::leaf,
            deep: $module::d10,
            run_async: |rt| {
                rt.block_on(async {
                    for i in 0..CALLS {
                        black_box($module::aleaf(i).await);
                    }
                })
            },
        }
    };
}

fn bench(c: &mut Criterion, name: &str, calls: &Calls, around: &dyn Fn(&mut dyn FnMut())) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let measure = |group: &mut BenchmarkGroup<'_, _>, run: &dyn Fn()| {
        group.bench_function(name, |b| b.iter(|| around(&mut || run())));
    };
    measure(&mut c.benchmark_group("sync_depth1"), &|| {
        for i in 0..CALLS {
            black_box((calls.leaf)(i));
        }
    });
    measure(&mut c.benchmark_group("sync_depth10"), &|| {
        for i in 0..CALLS / 10 {
            black_box((calls.deep)(i));
        }
    });
    measure(&mut c.benchmark_group("async_depth1"), &|| {
        (calls.run_async)(&rt)
    });
}

fn direct(run: &mut dyn FnMut()) {
    run()
}

#[cfg(not(feature = "trace"))]
fn benches(c: &mut Criterion) {
    bench(c, "plain", &calls!(plain), &direct);
    bench(c, "trace_off", &calls!(functraced), &direct);
}

#[cfg(feature = "trace")]
fn benches(c: &mut Criterion) {
    use functrace::{Builder, Output};
    use std::sync::Arc;

    bench(c, "plain", &calls!(plain), &direct);

    let traced = calls!(functraced);
    let mut install = |builder: Builder, name: &str| {
        builder.install().expect("trace output");
        bench(c, name, &traced, &direct);
    };
    install(Builder::new().enabled(false), "trace_muted");
    install(Builder::new().output(Output::Null), "trace_null");
    let memory = || Output::Custom(Arc::new(memory::Recent::default()));
    install(Builder::new().output(memory()), "trace_memory");
    install(
        Builder::new().output(Output::Buffered(Box::new(Output::Custom(Arc::new(
            memory::Discard,
        ))))),
        "trace_buffered",
    );
    install(
        Builder::new().output(Output::File("/dev/null".into())),
        "trace_devnull",
    );
    Builder::new().enabled(false).install().expect("mute");

    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_span_events(
            tracing_subscriber::fmt::format::FmtSpan::NEW
                | tracing_subscriber::fmt::format::FmtSpan::CLOSE,
        )
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        bench(c, "tracing_fmt", &calls!(tracing_fmt), &direct)
    });

    fastrace::set_reporter(Nowhere, fastrace::collector::Config::default());
    bench(
        c,
        "fastrace",
        &calls!(fastraced),
        &|run: &mut dyn FnMut()| {
            let root = fastrace::Span::root("bench", fastrace::collector::SpanContext::random());
            let _parent = root.set_local_parent();
            run();
        },
    );
    fastrace::flush();
}

#[cfg(feature = "trace")]
struct Nowhere;

#[cfg(feature = "trace")]
impl fastrace::collector::Reporter for Nowhere {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        black_box(spans);
    }
}

/// Lines kept in memory, the buffer emptied whenever it passes 64 KiB so that a long run does
/// not grow it without bound.
#[cfg(feature = "trace")]
mod memory {
    use std::sync::Mutex;

    /// Takes a batch of lines and lets it go, as a device that accepts writes for free.
    pub struct Discard;

    impl functrace::Sink for Discard {
        fn write_line(&self, lines: &[u8]) -> std::io::Result<()> {
            std::hint::black_box(lines);
            Ok(())
        }
    }

    #[derive(Default)]
    pub struct Recent(Mutex<Vec<u8>>);

    impl functrace::Sink for Recent {
        fn write_line(&self, line: &[u8]) -> std::io::Result<()> {
            let mut buffer = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if buffer.len() > 64 * 1024 {
                std::hint::black_box(&buffer[..]);
                buffer.clear();
            }
            buffer.extend_from_slice(line);
            Ok(())
        }
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(40)
}

criterion_group! {
    name = trace;
    config = config();
    targets = benches
}
criterion_main!(trace);
