//! B3 extract and inject on a realistic request's headers (a dozen, as a browser or a service
//! client sends them through a proxy). Target: each under 100 ns.
//!
//! cargo bench -p functrace-mesh --bench b3

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use functrace::{Sampling, TraceContext};
use functrace_mesh::b3::{self, Format};
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// A request's headers without B3.
fn request_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "orders.internal.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101",
        ),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, deflate, br"),
        ("accept-language", "en-US,en;q=0.5"),
        ("content-type", "application/json"),
        ("content-length", "348"),
        (
            "authorization",
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.sig",
        ),
        ("x-request-id", "5f0c6a2e-9d1b-4c7e-a3f4-1b2c3d4e5f60"),
        ("x-forwarded-for", "203.0.113.7, 10.0.0.12"),
        ("x-forwarded-proto", "https"),
        ("x-envoy-expected-rq-timeout-ms", "15000"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers
}

fn context() -> TraceContext {
    TraceContext::new_root(Sampling::Accept).child()
}

fn with_b3(format: Format) -> HeaderMap {
    with_context(&context(), format)
}

fn with_context(context: &TraceContext, format: Format) -> HeaderMap {
    let mut headers = request_headers();
    b3::inject(context, format, &mut headers);
    headers
}

fn bench(c: &mut Criterion) {
    let single = with_b3(Format::Single);
    c.bench_function("b3/extract/single", |b| {
        b.iter(|| b3::extract(black_box(&single)))
    });
    let multi = with_b3(Format::Multi);
    c.bench_function("b3/extract/multi", |b| {
        b.iter(|| b3::extract(black_box(&multi)))
    });

    // Forwarding, as a sidecar or a traced client does: the headers hold the incoming
    // context and its child goes out; the next run forwards that child's child, and so on
    // down a chain made beforehand. (Injecting one context over and over would find nothing
    // left to change after the first run.)
    let incoming = context();
    for (name, format) in [("multi", Format::Multi), ("single", Format::Single)] {
        c.bench_function(&format!("b3/inject/{name}"), |b| {
            b.iter_custom(|runs| {
                let chain: Vec<TraceContext> =
                    std::iter::successors(Some(incoming), |c| Some(c.child()))
                        .skip(1)
                        .take(runs as usize)
                        .collect();
                let mut headers = with_context(&incoming, format);
                let start = Instant::now();
                for child in &chain {
                    b3::inject(black_box(child), format, black_box(&mut headers));
                }
                start.elapsed()
            })
        });
    }
    // A first hop: no B3 yet (each run on its own copy of the headers, with room to grow).
    let plain = request_headers();
    c.bench_function("b3/inject/multi/first-hop", |b| {
        b.iter_batched_ref(
            || {
                let mut headers = HeaderMap::with_capacity(32);
                headers.extend(plain.clone());
                headers
            },
            |headers| b3::inject(black_box(&incoming), Format::Multi, black_box(headers)),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
