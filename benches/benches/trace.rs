//! What one traced call costs (enter + exit), in the shape users write, side by side in one
//! run: a `#[inline(never)] fn f(x: u64) -> u64 { black_box(x) + 1 }` called in a loop on the
//! main thread (100 depth-1 calls per iteration), a chain 10 deep (10 chains per iteration),
//! and a traced async fn awaited 100 times on a current-thread runtime.
//!
//! `cargo bench -p functrace-benches` compares the plain fns with `#[trace]` compiled out;
//! with `--features trace` the variants are: `plain`; `floor`, the least a tracer printing
//! the same lines must do (a depth counter, two clock readings, each line assembled by hand
//! into a reused buffer, written to `/dev/null` in 16 KiB batches, as `Output::Buffered`
//! does); `#[trace]` muted, filtered out by `FUNCTRACE`-style directives, writing to
//! `/dev/null` through `Output::Buffered` and with one `write` per line; `tracing::instrument`
//! with a fmt subscriber writing to `/dev/null`; and `fastrace::trace` reporting to nowhere.
//!
//! With `--features trace` too, `tracing` spans (`#[tracing::instrument]`, one field) printed
//! by functrace's layer and by `tracing-tree`, over a registry, to the same sinks (see
//! `tracing_layers`).
//!
//! Time is the process's CPU time, so fastrace's collector thread is counted (it runs on the
//! other core), and so that other processes on the machine do not inflate the figures.
//! `benches/report.py` turns criterion's medians into ns per call and ratios.

#[cfg(feature = "trace")]
use std::fs::File;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};

const CALLS: u64 = 100;

/// The same functions, once per way of tracing them: by an attribute, or (the floor) by a
/// guard macro called first in each body.
macro_rules! flavour {
    ($module:ident $(, #[$attr:meta])? $(, guard = $guard:ident)?) => {
        mod $module {
            use std::hint::black_box;

            $(#[$attr])? #[inline(never)] pub fn f(x: u64) -> u64 { $(let _g = $guard!(f);)? black_box(x) + 1 }
            $(#[$attr])? #[inline(never)] pub fn d2(x: u64) -> u64 { $(let _g = $guard!(d2);)? f(x) }
            $(#[$attr])? #[inline(never)] pub fn d3(x: u64) -> u64 { $(let _g = $guard!(d3);)? d2(x) }
            $(#[$attr])? #[inline(never)] pub fn d4(x: u64) -> u64 { $(let _g = $guard!(d4);)? d3(x) }
            $(#[$attr])? #[inline(never)] pub fn d5(x: u64) -> u64 { $(let _g = $guard!(d5);)? d4(x) }
            $(#[$attr])? #[inline(never)] pub fn d6(x: u64) -> u64 { $(let _g = $guard!(d6);)? d5(x) }
            $(#[$attr])? #[inline(never)] pub fn d7(x: u64) -> u64 { $(let _g = $guard!(d7);)? d6(x) }
            $(#[$attr])? #[inline(never)] pub fn d8(x: u64) -> u64 { $(let _g = $guard!(d8);)? d7(x) }
            $(#[$attr])? #[inline(never)] pub fn d9(x: u64) -> u64 { $(let _g = $guard!(d9);)? d8(x) }
            $(#[$attr])? #[inline(never)] pub fn d10(x: u64) -> u64 { $(let _g = $guard!(d10);)? d9(x) }
            $(#[$attr])? #[inline(never)] pub async fn af(x: u64) -> u64 { $(let _g = $guard!(af);)? black_box(x) + 1 }
        }
    };
}

/// The floor's guard for the fn `name`.
#[cfg(feature = "trace")]
macro_rules! floor {
    ($name:ident) => {
        crate::floor::Floor::enter(concat!(module_path!(), "::", stringify!($name)))
    };
}

flavour!(plain);
flavour!(functraced, #[functrace::trace]);
#[cfg(feature = "trace")]
flavour!(floored, guard = floor);
#[cfg(feature = "trace")]
flavour!(tracing_fmt, #[tracing::instrument(skip_all)]);
#[cfg(feature = "trace")]
flavour!(tracing_spans, #[tracing::instrument]);
#[cfg(feature = "trace")]
flavour!(fastraced, #[fastrace::trace]);

/// Functions of one flavour, called `CALLS` times per iteration.
struct Calls {
    depth1: fn(u64) -> u64,
    depth10: fn(u64) -> u64,
    run_async: fn(&tokio::runtime::Runtime),
}

macro_rules! calls {
    ($module:ident) => {
        Calls {
            depth1: $module::f,
            depth10: $module::d10,
            run_async: |rt| {
                rt.block_on(async {
                    for i in 0..CALLS {
                        black_box($module::af(i).await);
                    }
                })
            },
        }
    };
}

/// The process's CPU time: all of its threads.
fn cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write to.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn bench(c: &mut Criterion, name: &str, calls: &Calls, around: &dyn Fn(&mut dyn FnMut())) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let measure = |group: &mut BenchmarkGroup<'_, _>, run: &dyn Fn()| {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let start = cpu_time();
                for _ in 0..iterations {
                    around(&mut || run());
                }
                cpu_time() - start
            })
        });
    };
    measure(&mut c.benchmark_group("sync_depth1"), &|| {
        for i in 0..CALLS {
            black_box((calls.depth1)(i));
        }
    });
    measure(&mut c.benchmark_group("sync_depth10"), &|| {
        for i in 0..CALLS / 10 {
            black_box((calls.depth10)(i));
        }
    });
    measure(&mut c.benchmark_group("async_depth1"), &|| {
        (calls.run_async)(&rt)
    });
}

fn direct(run: &mut dyn FnMut()) {
    run()
}

#[cfg(feature = "trace")]
fn dev_null() -> File {
    File::options()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null")
}

#[cfg(not(feature = "trace"))]
fn benches(c: &mut Criterion) {
    bench(c, "plain", &calls!(plain), &direct);
    bench(c, "trace_off", &calls!(functraced), &direct);
}

#[cfg(feature = "trace")]
fn benches(c: &mut Criterion) {
    use functrace::{Builder, Output};

    bench(c, "plain", &calls!(plain), &direct);
    bench(c, "floor", &calls!(floored), &direct);

    let traced = calls!(functraced);
    let mut install = |builder: Builder, name: &str| {
        builder.install().expect("trace output");
        bench(c, name, &traced, &direct);
    };
    let dev_null_path = || Output::File("/dev/null".into());
    install(Builder::new().enabled(false), "trace_muted");
    install(
        Builder::new()
            .output(Output::Buffered(Box::new(dev_null_path())))
            .filter("off,elsewhere=on")
            .expect("filter"),
        "trace_filtered",
    );
    install(
        Builder::new().output(Output::Buffered(Box::new(dev_null_path()))),
        "trace_buffered",
    );
    install(Builder::new().output(dev_null_path()), "trace_devnull");
    Builder::new().enabled(false).install().expect("mute");

    let subscriber = tracing_subscriber::fmt()
        .with_writer(dev_null)
        .with_span_events(
            tracing_subscriber::fmt::format::FmtSpan::NEW
                | tracing_subscriber::fmt::format::FmtSpan::CLOSE,
        )
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        bench(c, "tracing_fmt", &calls!(tracing_fmt), &direct)
    });

    tracing_layers(c);

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

/// `tracing` spans (`#[tracing::instrument]`, one field: `x`) printed by functrace's layer and
/// by `tracing-tree`'s `HierarchicalLayer`, each over a registry, to the same sink: `/dev/null`
/// with one `write(2)` per line (`layer_devnull`, `tree_devnull`), or in 16 KiB batches
/// (`layer_buffered`: `Output::Buffered`; `tree_buffered`: a `BufWriter` of 16 KiB behind a
/// mutex, the way a `MakeWriter` shares one). `tracing_off` has no subscriber (the span is
/// disabled at its call site), `registry_only` a registry with no layer, `registry_lookups` a
/// registry with a layer that only looks each span up in its four callbacks: the floors of any
/// registry-based layer. `subscriber_noop` is a subscriber that does nothing but hand out ids,
/// the floor of any subscriber; `subscriber_buffered` and `subscriber_devnull` are
/// `functrace::subscriber()`, which prints what the layer prints without the registry.
#[cfg(feature = "trace")]
fn tracing_layers(c: &mut Criterion) {
    use std::io::BufWriter;
    use std::sync::{LazyLock, Mutex};

    use functrace::{Builder, Output};
    use tracing::Dispatch;
    use tracing_subscriber::layer::SubscriberExt;

    static DEV_NULL: LazyLock<File> = LazyLock::new(dev_null);
    let spans = calls!(tracing_spans);
    let under = |c: &mut Criterion, name: &str, dispatch: Dispatch| {
        tracing::dispatcher::with_default(&dispatch, || bench(c, name, &spans, &direct));
    };
    let tree = || {
        tracing_tree::HierarchicalLayer::new(2)
            .with_ansi(false)
            .with_indent_lines(true)
    };

    bench(c, "tracing_off", &spans, &direct);
    under(c, "subscriber_noop", Dispatch::new(noop::Noop::default()));
    under(
        c,
        "registry_only",
        Dispatch::new(tracing_subscriber::registry()),
    );

    under(
        c,
        "registry_lookups",
        Dispatch::new(tracing_subscriber::registry().with(lookups::Lookups)),
    );

    let layer = || Dispatch::new(tracing_subscriber::registry().with(functrace::layer()));
    let dev_null_path = || Output::File("/dev/null".into());
    Builder::new()
        .output(Output::Buffered(Box::new(dev_null_path())))
        .install()
        .expect("trace output");
    under(c, "layer_buffered", layer());
    under(
        c,
        "subscriber_buffered",
        Dispatch::new(functrace::subscriber()),
    );
    Builder::new()
        .output(dev_null_path())
        .install()
        .expect("trace output");
    under(c, "layer_devnull", layer());
    under(
        c,
        "subscriber_devnull",
        Dispatch::new(functrace::subscriber()),
    );
    Builder::new().enabled(false).install().expect("mute");

    let buffered = Mutex::new(BufWriter::with_capacity(16 * 1024, dev_null()));
    under(
        c,
        "tree_buffered",
        Dispatch::new(tracing_subscriber::registry().with(tree().with_writer(buffered))),
    );
    let unbuffered = || &*DEV_NULL;
    under(
        c,
        "tree_devnull",
        Dispatch::new(tracing_subscriber::registry().with(tree().with_writer(unbuffered))),
    );
}

/// A subscriber that does nothing but hand out span ids: what `tracing` itself costs any
/// subscriber per span (the dispatch, the `Span` handle, five calls).
#[cfg(feature = "trace")]
mod noop {
    use std::sync::atomic::{AtomicU64, Ordering};

    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    #[derive(Default)]
    pub struct Noop {
        next: AtomicU64,
    }

    impl Subscriber for Noop {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

/// A layer that only keeps a value in each span's extensions and looks the span up in each
/// of the four callbacks a printing layer needs (new span, enter, exit, close): the floor of
/// such a layer over the registry.
#[cfg(feature = "trace")]
mod lookups {
    use tracing::span::{Attributes, Id};
    use tracing::Subscriber;
    use tracing_subscriber::layer::Context;
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::Layer;

    pub struct Lookups;

    struct Entered(u32);

    fn touch<S: Subscriber + for<'a> LookupSpan<'a>>(id: &Id, ctx: &Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(entered) = span.extensions_mut().get_mut::<Entered>() {
                entered.0 += 1;
            }
        }
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Lookups {
        fn on_new_span(&self, _: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            if let Some(span) = ctx.span(id) {
                span.extensions_mut().insert(Entered(0));
            }
        }
        fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
            touch(id, &ctx);
        }
        fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
            touch(id, &ctx);
        }
        fn on_close(&self, id: Id, ctx: Context<'_, S>) {
            touch(&id, &ctx);
        }
    }
}

#[cfg(feature = "trace")]
struct Nowhere;

#[cfg(feature = "trace")]
impl fastrace::collector::Reporter for Nowhere {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        black_box(spans);
    }
}

/// The floor: what any tracer printing functrace's lines must do per call.
#[cfg(feature = "trace")]
mod floor {
    use std::cell::{Cell, RefCell};
    use std::io::Write;

    const BATCH: usize = 16 * 1024;

    thread_local! {
        static DEPTH: Cell<u32> = const { Cell::new(0) };
        static LINES: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(BATCH + 256));
    }

    static CLOCK: std::sync::LazyLock<quanta::Clock> = std::sync::LazyLock::new(quanta::Clock::new);
    static OUT: std::sync::LazyLock<std::fs::File> = std::sync::LazyLock::new(super::dev_null);

    pub struct Floor {
        name: &'static str,
        depth: u32,
        start: u64,
    }

    fn line(depth: u32, arrow: &[u8], name: &str, elapsed: Option<u64>) {
        LINES.with_borrow_mut(|lines| {
            lines.extend_from_slice(b"t[01]:");
            for _ in 0..depth {
                lines.extend_from_slice(b"    ");
            }
            lines.extend_from_slice(arrow);
            lines.extend_from_slice(name.as_bytes());
            if let Some(nanos) = elapsed {
                lines.push(b' ');
                lines.extend_from_slice(itoa::Buffer::new().format(nanos).as_bytes());
                lines.extend_from_slice(b"ns");
            }
            lines.push(b'\n');
            if lines.len() >= BATCH {
                let _ = (&*OUT).write_all(lines);
                lines.clear();
            }
        });
    }

    impl Floor {
        #[inline]
        pub fn enter(name: &'static str) -> Floor {
            let depth = DEPTH.with(|d| {
                d.set(d.get() + 1);
                d.get()
            });
            line(depth, b"->", name, None);
            Floor {
                name,
                depth,
                start: CLOCK.raw(),
            }
        }
    }

    impl Drop for Floor {
        #[inline]
        fn drop(&mut self) {
            let elapsed = CLOCK.delta_as_nanos(self.start, CLOCK.raw());
            line(self.depth, b"<-", self.name, Some(elapsed));
            DEPTH.with(|d| d.set(d.get() - 1));
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
