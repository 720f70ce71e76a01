//! B3 extract and inject on a realistic request's headers (a dozen, as a browser or a service
//! client sends them through a proxy). Target: each under 100 ns.
//!
//! cargo bench -p functrace-mesh --bench b3

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
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
    let mut headers = request_headers();
    b3::inject(&context(), format, &mut headers);
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

    // Forwarding: the headers already hold the previous hop's B3, which inject replaces.
    let next = context().child();
    let mut headers = with_b3(Format::Multi);
    c.bench_function("b3/inject/multi", |b| {
        b.iter(|| b3::inject(black_box(&next), Format::Multi, black_box(&mut headers)))
    });
    let mut headers = with_b3(Format::Single);
    c.bench_function("b3/inject/single", |b| {
        b.iter(|| b3::inject(black_box(&next), Format::Single, black_box(&mut headers)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
