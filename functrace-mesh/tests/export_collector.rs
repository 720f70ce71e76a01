//! The reporter posting to a real Zipkin collector (a hyper server in the test): the
//! request, batching, an unreachable or failing collector, and the bounded queue while the
//! collector holds its answer.

mod export_support;

use std::time::{Duration, Instant};

use export_support::{body_spans, numbered, TestCollector};
use functrace_mesh::export::{Reporter, Span};
use http::StatusCode;

#[test]
fn batches_are_posted_as_json_arrays_with_b3_0() {
    let collector = TestCollector::start(StatusCode::ACCEPTED, false);
    let reporter = Reporter::builder("poster")
        .collector(&collector.url)
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let sent: Vec<Span> = (0..5).map(numbered).collect();
    for span in &sent {
        reporter.report(span.clone());
    }
    reporter.flush();
    assert_eq!(reporter.exported(), 5);
    assert_eq!(reporter.dropped(), 0);

    let requests = collector.received();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/v2/spans");
    assert_eq!(request.headers["b3"], "0");
    assert_eq!(request.headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body.as_array().map(Vec::len), Some(5), "{body}");
    assert_eq!(body_spans(request), sent);
    assert_eq!(body[0]["localEndpoint"]["serviceName"], "numbered");
}

#[test]
fn a_full_url_is_used_as_given_and_batches_follow_the_batch_size() {
    let collector = TestCollector::start(StatusCode::ACCEPTED, false);
    let reporter = Reporter::builder("poster")
        .collector(format!("{}/custom/spans", collector.url))
        .batch_size(3)
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    for n in 0..7 {
        reporter.report(numbered(n));
    }
    reporter.flush();
    let requests = collector.received();
    assert!(requests
        .iter()
        .all(|request| request.path == "/custom/spans"));
    let batches: Vec<Vec<Span>> = requests.iter().map(body_spans).collect();
    assert!(
        batches.iter().all(|batch| (1..=3).contains(&batch.len())),
        "{batches:?}"
    );
    let names: Vec<String> = batches
        .into_iter()
        .flatten()
        .map(|span| span.name)
        .collect();
    let expected: Vec<String> = (0..7).map(|n| format!("span-{n}")).collect();
    assert_eq!(names, expected);
    assert_eq!(reporter.exported(), 7);
}

#[test]
fn an_unreachable_collector_drops_and_counts() {
    // A port that was just bound and closed: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let reporter = Reporter::builder("lonely")
        .collector(format!("http://{address}"))
        .batch_size(2)
        .build()
        .unwrap();
    for n in 0..5 {
        reporter.report(numbered(n));
    }
    reporter.flush();
    assert_eq!(reporter.exported(), 0);
    assert_eq!(reporter.dropped(), 5);
    let stats = reporter.stats();
    assert_eq!(stats.dropped_failed, 5);
    assert_eq!(stats.dropped_queue_full, 0);
    let error = stats.last_error.unwrap();
    assert!(
        error.contains(&format!("POST http://{address}/api/v2/spans")),
        "{error}"
    );
}

#[test]
fn a_collector_answering_an_error_status_counts_as_dropped() {
    let collector = TestCollector::start(StatusCode::INTERNAL_SERVER_ERROR, false);
    let reporter = Reporter::builder("poster")
        .collector(&collector.url)
        .build()
        .unwrap();
    reporter.report(numbered(0));
    reporter.report(numbered(1));
    reporter.flush();
    assert_eq!(reporter.exported(), 0);
    assert_eq!(reporter.dropped(), 2);
    assert!(reporter.stats().last_error.unwrap().contains("500"));
    assert_eq!(collector.received().len(), 1);
}

#[test]
fn a_full_queue_drops_without_blocking_the_caller() {
    const CAPACITY: usize = 8;
    const REPORTED: usize = 50;
    let collector = TestCollector::start(StatusCode::ACCEPTED, true);
    let reporter = Reporter::builder("busy")
        .collector(&collector.url)
        .queue_size(CAPACITY)
        .batch_size(1)
        .build()
        .unwrap();

    // The first span goes out at once; wait (on the channel) until the collector has it
    // and is holding its answer: the export thread is now stuck on that request, with an
    // empty queue.
    reporter.report(numbered(0));
    let first = collector
        .requests
        .recv_timeout(Duration::from_secs(30))
        .expect("the first batch reached the collector");
    assert_eq!(body_spans(&first).len(), 1);

    let started = Instant::now();
    for n in 1..=REPORTED as u64 {
        reporter.report(numbered(n));
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "reporting blocked for {took:?}"
    );
    assert_eq!(reporter.dropped(), (REPORTED - CAPACITY) as u64);
    assert_eq!(reporter.stats().queued, CAPACITY);
    assert_eq!(reporter.exported(), 0);
    // A flush cannot complete while the collector holds the request.
    assert!(!reporter.flush_timeout(Duration::from_millis(50)));

    collector.release();
    reporter.flush();
    assert_eq!(reporter.exported(), 1 + CAPACITY as u64);
    assert_eq!(reporter.dropped(), (REPORTED - CAPACITY) as u64);
    let names: Vec<String> = collector
        .received()
        .iter()
        .flat_map(body_spans)
        .map(|span| span.name)
        .collect();
    let expected: Vec<String> = (1..=CAPACITY).map(|n| format!("span-{n}")).collect();
    assert_eq!(
        names, expected,
        "the first CAPACITY spans are kept, the rest dropped"
    );
}

#[test]
fn shutdown_does_not_wait_on_a_collector_that_stopped_answering() {
    let collector = TestCollector::start(StatusCode::ACCEPTED, true);
    let reporter = Reporter::builder("stuck")
        .collector(&collector.url)
        .batch_size(1)
        .request_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    reporter.report(numbered(0));
    collector
        .requests
        .recv_timeout(Duration::from_secs(30))
        .expect("the first batch reached the collector");
    for n in 1..5 {
        reporter.report(numbered(n));
    }
    // The first request times out; the four queued spans are then dropped without a try.
    reporter.shutdown();
    assert_eq!(reporter.exported(), 0);
    assert_eq!(reporter.stats().dropped_failed, 5);
    let error = reporter.stats().last_error.unwrap();
    assert!(
        error.contains("no answer in 1s (not retried at shutdown)"),
        "{error}"
    );
    assert_eq!(collector.received().len(), 0);
}

#[test]
fn the_reporter_works_from_inside_a_tokio_runtime() {
    let collector = TestCollector::start(StatusCode::ACCEPTED, false);
    let url = collector.url.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        // Built, used, flushed and dropped on a runtime thread, without panicking.
        let reporter = Reporter::builder("async").collector(url).build().unwrap();
        reporter.report(numbered(0));
        let flushed = reporter.clone();
        tokio::task::spawn_blocking(move || flushed.flush())
            .await
            .unwrap();
        assert_eq!(reporter.exported(), 1);
        reporter.report(numbered(1));
        // The last handle: drains what is queued.
        drop(reporter);
    });
    let spans: Vec<Span> = collector.received().iter().flat_map(body_spans).collect();
    assert_eq!(spans.len(), 2);
}
