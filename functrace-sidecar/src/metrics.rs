//! Prometheus metrics in the text exposition format: requests by direction, route, upstream
//! version and status; their latency; spans exported and dropped; open connections.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use functrace_mesh::export::Reporter;

use crate::keyed::Keyed;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Which listener a request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// To the local app.
    Inbound,
    /// From the local app.
    Outbound,
}

impl Direction {
    /// The `direction` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Labels {
    direction: Direction,
    /// `None`: refused before it had a route, shown as `unrouted`.
    route: Option<Arc<str>>,
    /// `None`: no upstream version, shown as empty.
    version: Option<Arc<str>>,
    code: u16,
}

#[derive(Clone, Default)]
struct Series {
    count: u64,
    sum: Duration,
    /// Not cumulative: `buckets[i]` counts latencies in (BUCKETS[i-1], BUCKETS[i]].
    buckets: [u64; BUCKETS.len()],
}

impl Labels {
    /// Whether these are the labels of a request with these values.
    fn are(
        &self,
        direction: Direction,
        route: Option<&Arc<str>>,
        version: Option<&Arc<str>>,
        code: u16,
    ) -> bool {
        // `Arc<str>`'s `==` compares the pointers first: the labels of a route's requests
        // share them.
        self.code == code
            && self.direction == direction
            && self.route.as_ref() == route
            && self.version.as_ref() == version
    }
}

/// The sidecar's counters.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<Keyed<Labels, Series>>,
    open_connections: AtomicU64,
    connections: AtomicU64,
    connections_shed: AtomicU64,
    connections_refused: AtomicU64,
}

/// Counts a connection as open until dropped.
pub struct OpenConnection(Arc<Metrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts an accepted connection until the guard drops.
    pub fn connection_opened(self: &Arc<Metrics>) -> OpenConnection {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.clone())
    }

    /// An idle connection closed to make room at the limit.
    pub fn connection_shed(&self) {
        self.connections_shed.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection refused at the limit, every open one busy.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The connections open now.
    pub fn open_connections(&self) -> u64 {
        self.open_connections.load(Ordering::Relaxed)
    }

    /// One finished request. `code` is the status answered to the client.
    pub fn request(
        &self,
        direction: Direction,
        route: Option<&Arc<str>>,
        version: Option<&Arc<str>>,
        code: u16,
        latency: Duration,
    ) {
        // Beyond the last bound only `+Inf` (the count) holds it.
        let bucket = BUCKETS
            .iter()
            .position(|&bound| latency.as_secs_f64() <= bound);
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let series = requests.of(
            |labels| labels.are(direction, route, version, code),
            || Labels {
                direction,
                route: route.cloned(),
                version: version.cloned(),
                code,
            },
        );
        series.count += 1;
        series.sum += latency;
        if let Some(bucket) = bucket {
            series.buckets[bucket] += 1;
        }
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self, reporter: Option<&Reporter>) -> String {
        let mut out = String::new();
        let mut requests: Vec<(Labels, Series)> = {
            let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            requests.entries().to_vec()
        };
        requests.sort_by(|a, b| a.0.cmp(&b.0));

        out.push_str("# HELP functrace_sidecar_requests_total Requests answered, by direction, route, upstream version and status code.\n");
        out.push_str("# TYPE functrace_sidecar_requests_total counter\n");
        for (labels, series) in &requests {
            let _ = writeln!(
                out,
                "functrace_sidecar_requests_total{{{}}} {}",
                label_text(labels),
                series.count
            );
        }
        out.push_str("# HELP functrace_sidecar_request_duration_seconds Time from request to response end.\n");
        out.push_str("# TYPE functrace_sidecar_request_duration_seconds histogram\n");
        for (labels, series) in &requests {
            let labels = label_text(labels);
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(series.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "functrace_sidecar_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "functrace_sidecar_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                series.count
            );
            let _ = writeln!(
                out,
                "functrace_sidecar_request_duration_seconds_sum{{{labels}}} {}",
                series.sum.as_secs_f64()
            );
            let _ = writeln!(
                out,
                "functrace_sidecar_request_duration_seconds_count{{{labels}}} {}",
                series.count
            );
        }
        let (exported, dropped) = reporter.map_or((0, 0), |r| (r.exported(), r.dropped()));
        for (name, help, kind, value) in [
            (
                "spans_exported_total",
                "Spans written or sent.",
                "counter",
                exported,
            ),
            (
                "spans_dropped_total",
                "Spans lost: queue full or export failed.",
                "counter",
                dropped,
            ),
            (
                "connections_open",
                "Client connections open now.",
                "gauge",
                self.open_connections(),
            ),
            (
                "connections_total",
                "Client connections accepted.",
                "counter",
                self.connections.load(Ordering::Relaxed),
            ),
            (
                "connections_shed_total",
                "Idle client connections closed to make room at max_connections.",
                "counter",
                self.connections_shed.load(Ordering::Relaxed),
            ),
            (
                "connections_refused_total",
                "Client connections refused at max_connections, every open one busy.",
                "counter",
                self.connections_refused.load(Ordering::Relaxed),
            ),
        ] {
            let _ = writeln!(out, "# HELP functrace_sidecar_{name} {help}");
            let _ = writeln!(out, "# TYPE functrace_sidecar_{name} {kind}");
            let _ = writeln!(out, "functrace_sidecar_{name} {value}");
        }
        out
    }
}

fn label_text(labels: &Labels) -> String {
    format!(
        "direction=\"{}\",route=\"{}\",version=\"{}\",code=\"{}\"",
        labels.direction.as_str(),
        escape(labels.route.as_deref().unwrap_or("unrouted")),
        escape(labels.version.as_deref().unwrap_or_default()),
        labels.code
    )
}

/// A label value as the exposition format quotes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_render_as_counters_and_cumulative_histograms() {
        let metrics = Arc::new(Metrics::default());
        let (route, v1): (Arc<str>, Arc<str>) = ("svcb".into(), "v1".into());
        metrics.request(
            Direction::Outbound,
            Some(&route),
            Some(&v1),
            200,
            Duration::from_micros(700),
        );
        metrics.request(
            Direction::Outbound,
            Some(&route),
            Some(&v1),
            200,
            Duration::from_millis(20),
        );
        metrics.request(
            Direction::Outbound,
            Some(&route),
            Some(&v1),
            200,
            Duration::from_secs(11),
        );
        metrics.request(Direction::Outbound, None, None, 502, Duration::ZERO);
        let open = metrics.connection_opened();
        metrics.connection_refused();
        let text = metrics.render(None);
        let labels = r#"direction="outbound",route="svcb",version="v1",code="200""#;
        for line in [
            format!("functrace_sidecar_requests_total{{{labels}}} 3"),
            format!(
                "functrace_sidecar_request_duration_seconds_bucket{{{labels},le=\"0.0005\"}} 0"
            ),
            format!("functrace_sidecar_request_duration_seconds_bucket{{{labels},le=\"0.001\"}} 1"),
            format!("functrace_sidecar_request_duration_seconds_bucket{{{labels},le=\"0.025\"}} 2"),
            format!("functrace_sidecar_request_duration_seconds_bucket{{{labels},le=\"10\"}} 2"),
            format!("functrace_sidecar_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 3"),
            format!("functrace_sidecar_request_duration_seconds_count{{{labels}}} 3"),
            r#"functrace_sidecar_requests_total{direction="outbound",route="unrouted",version="",code="502"} 1"#.to_owned(),
            "functrace_sidecar_connections_open 1".to_owned(),
            "functrace_sidecar_connections_refused_total 1".to_owned(),
            "functrace_sidecar_connections_shed_total 0".to_owned(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\nnot in\n{text}");
        }
        drop(open);
        assert_eq!(metrics.open_connections(), 0);
    }

    #[test]
    fn each_label_set_is_one_series_whatever_the_order_of_requests() {
        let metrics = Metrics::default();
        let (route, other, v1): (Arc<str>, Arc<str>, Arc<str>) =
            ("a".into(), "b".into(), "v1".into());
        // Equal to `route` but not the same `Arc`: a reload's.
        let reloaded: Arc<str> = "a".into();
        let requests = [
            (Direction::Inbound, Some(&route), Some(&v1), 200),
            (Direction::Inbound, Some(&route), Some(&v1), 200),
            (Direction::Inbound, Some(&reloaded), Some(&v1), 200),
            (Direction::Inbound, Some(&other), Some(&v1), 200),
            (Direction::Inbound, Some(&route), Some(&v1), 200),
            (Direction::Outbound, Some(&route), Some(&v1), 200),
            (Direction::Inbound, Some(&route), Some(&v1), 503),
            (Direction::Inbound, Some(&route), None, 200),
            (Direction::Inbound, None, None, 200),
            (Direction::Inbound, Some(&reloaded), Some(&v1), 200),
        ];
        for (direction, route, version, code) in requests {
            metrics.request(direction, route, version, code, Duration::ZERO);
        }
        let text = metrics.render(None);
        let totals: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("functrace_sidecar_requests_total{"))
            .collect();
        assert_eq!(
            totals,
            [
                r#"direction="inbound",route="unrouted",version="",code="200"} 1"#,
                r#"direction="inbound",route="a",version="",code="200"} 1"#,
                r#"direction="inbound",route="a",version="v1",code="200"} 5"#,
                r#"direction="inbound",route="a",version="v1",code="503"} 1"#,
                r#"direction="inbound",route="b",version="v1",code="200"} 1"#,
                r#"direction="outbound",route="a",version="v1",code="200"} 1"#,
            ]
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
