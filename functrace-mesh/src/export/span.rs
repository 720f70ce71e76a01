//! The Zipkin v2 span model (`zipkin2-api.yaml`, `Span`), serialized with serde as the JSON
//! the collector's `POST /api/v2/spans` takes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use functrace::{FinishedSpan, Sampling, SpanId, TraceContext, TraceId};
use serde::{Deserialize, Serialize};

/// One span: a single host's view of an operation.
///
/// Ids are kept typed, so a span can never carry a malformed or all-zero id: they serialize
/// as lowercase hex of the width they were received with (16 or 32 characters for the trace
/// id, 16 for span ids), and a root span has no `parentId` at all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    /// Shared by every span of the trace.
    #[serde(with = "hex_id")]
    pub trace_id: TraceId,
    /// This span.
    #[serde(with = "hex_id")]
    pub id: SpanId,
    /// The span this one was started from; `None` (absent in JSON) on a root span.
    #[serde(
        default,
        with = "hex_parent_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub parent_id: Option<SpanId>,
    /// The operation, low cardinality (a function path, `get /users/{id}`).
    pub name: String,
    /// `None` for a local (in-process) span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// Start, in microseconds since the Unix epoch.
    pub timestamp: u64,
    /// Microseconds, at least 1.
    pub duration: u64,
    /// The service that recorded the span.
    pub local_endpoint: Endpoint,
    /// The other side of an RPC or messaging span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_endpoint: Option<Endpoint>,
    /// Events with a time, such as `ws` (wire send) or an OpenTelemetry event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
    /// Context for search and display.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// `Some(true)` on a SERVER span that joined the span id its caller sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<bool>,
    /// `Some(true)` when the trace is debug-sampled (B3 flag `d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
}

/// What a span with a kind represents; a local span has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Kind {
    /// A request sent to a server; the remote endpoint is the server.
    Client,
    /// A request received from a client; the remote endpoint is the client.
    Server,
    /// A message sent to a broker.
    Producer,
    /// A message received from a broker.
    Consumer,
}

/// A node in the service graph.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Lowercase service label. Always set on a reported span's local endpoint; may be
    /// unknown (absent) on a remote endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// IPv4 address, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 address, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
    /// Port, if known (never 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// An event that explains latency, with its time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    /// Microseconds since the Unix epoch.
    pub timestamp: u64,
    /// A short code or description.
    pub value: String,
}

impl Endpoint {
    /// An endpoint known by its service name only.
    pub fn service(name: impl Into<String>) -> Endpoint {
        Endpoint {
            service_name: Some(name.into()),
            ..Endpoint::default()
        }
    }

    /// An endpoint known by its socket address (port 0 is left out).
    pub fn socket(addr: SocketAddr) -> Endpoint {
        Endpoint::default().with_addr(addr)
    }

    /// Sets the IP address (IPv4-mapped IPv6 addresses are written as IPv4).
    pub fn with_ip(mut self, ip: IpAddr) -> Endpoint {
        match ip {
            IpAddr::V4(v4) => self.ipv4 = Some(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.ipv4 = Some(v4),
                None => self.ipv6 = Some(v6),
            },
        }
        self
    }

    /// Sets the port (0 means unknown and leaves it out).
    pub fn with_port(mut self, port: u16) -> Endpoint {
        self.port = (port != 0).then_some(port);
        self
    }

    /// Sets the IP address and port.
    pub fn with_addr(self, addr: SocketAddr) -> Endpoint {
        self.with_ip(addr.ip()).with_port(addr.port())
    }
}

impl Span {
    /// A span of `context` (its trace id, span id and parent id), with no kind, tags or
    /// remote endpoint yet; `debug` is set when the context is debug-sampled.
    pub fn new(
        context: &TraceContext,
        name: impl Into<String>,
        start: SystemTime,
        duration: Duration,
        service_name: impl Into<String>,
    ) -> Span {
        Span {
            trace_id: context.trace_id,
            id: context.span_id,
            parent_id: context.parent_id,
            name: name.into(),
            kind: None,
            timestamp: epoch_micros(start),
            duration: duration_micros(duration),
            local_endpoint: Endpoint::service(service_name),
            remote_endpoint: None,
            annotations: Vec::new(),
            tags: BTreeMap::new(),
            shared: None,
            debug: (context.sampling == Sampling::Debug).then_some(true),
        }
    }

    /// The local span of a traced call: no kind, tag `task` = `t[NN]`, and tag `error` with
    /// the reason when the call failed.
    pub fn from_finished(span: &FinishedSpan, service_name: impl Into<String>) -> Span {
        let mut zipkin = Span::new(
            &span.context,
            span.name,
            span.start,
            span.duration,
            service_name,
        );
        zipkin.tags.insert("task".into(), task_label(span.task));
        if let Some(error) = &span.error {
            zipkin.tags.insert("error".into(), error.clone());
        }
        zipkin
    }

    /// A CLIENT span: `context` is the span sent to the server (its id is the one in the
    /// outgoing headers).
    pub fn client(
        context: &TraceContext,
        name: impl Into<String>,
        start: SystemTime,
        duration: Duration,
        service_name: impl Into<String>,
    ) -> Span {
        Span::new(context, name, start, duration, service_name).with_kind(Kind::Client)
    }

    /// A SERVER span. `joined` says that `context` is the caller's own span (B3 single-header
    /// style: same span id as the CLIENT span), which marks the span `shared`; a server that
    /// started a child span of the caller's passes `false`.
    pub fn server(
        context: &TraceContext,
        name: impl Into<String>,
        start: SystemTime,
        duration: Duration,
        service_name: impl Into<String>,
        joined: bool,
    ) -> Span {
        let mut span =
            Span::new(context, name, start, duration, service_name).with_kind(Kind::Server);
        span.shared = joined.then_some(true);
        span
    }

    /// Sets the kind.
    pub fn with_kind(mut self, kind: Kind) -> Span {
        self.kind = Some(kind);
        self
    }

    /// Adds (or replaces) a tag.
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Span {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Marks the span failed: tag `error` with the reason.
    pub fn with_error(self, reason: impl Into<String>) -> Span {
        self.with_tag("error", reason)
    }

    /// Sets the remote endpoint.
    pub fn with_remote_endpoint(mut self, endpoint: Endpoint) -> Span {
        self.remote_endpoint = Some(endpoint);
        self
    }

    /// Sets the local endpoint's address (the service name stays).
    pub fn with_local_addr(mut self, addr: SocketAddr) -> Span {
        self.local_endpoint = std::mem::take(&mut self.local_endpoint).with_addr(addr);
        self
    }

    /// Adds an annotation at `at`.
    pub fn with_annotation(mut self, at: SystemTime, value: impl Into<String>) -> Span {
        self.annotations.push(Annotation {
            timestamp: epoch_micros(at),
            value: value.into(),
        });
        self
    }

    /// The bytes of this span's text (name, service names, annotations, tags): what its
    /// caller chose the size of, as the export queue's byte bound counts it.
    pub(crate) fn text_len(&self) -> usize {
        let service = |endpoint: &Endpoint| endpoint.service_name.as_ref().map_or(0, String::len);
        self.name.len()
            + service(&self.local_endpoint)
            + self.remote_endpoint.as_ref().map_or(0, service)
            + self
                .annotations
                .iter()
                .map(|a| a.value.len())
                .sum::<usize>()
            + self
                .tags
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }

    /// Brings a span in line with the model before it is written: the local service name
    /// is set (`default_service` when missing), service and span names are lowercase, the
    /// duration is at least 1µs, and repeated annotations are removed.
    pub fn normalize(&mut self, default_service: &str) {
        if self.normalize_but_a_missing_service() {
            self.local_endpoint.service_name = Some(default_service.to_lowercase());
        }
    }

    /// [`normalize`](Span::normalize), but a missing (or empty) local service name is left
    /// out rather than filled: for a writer that has the default at hand, lowercase, and
    /// need not copy it into every span. Answers whether it is missing.
    pub(crate) fn normalize_but_a_missing_service(&mut self) -> bool {
        let missing = match &mut self.local_endpoint.service_name {
            Some(name) if !name.is_empty() => {
                lowercase(name);
                false
            }
            missing => {
                *missing = None;
                true
            }
        };
        if let Some(name) = self
            .remote_endpoint
            .as_mut()
            .and_then(|remote| remote.service_name.as_mut())
        {
            lowercase(name);
        }
        lowercase(&mut self.name);
        self.duration = self.duration.max(1);
        let mut seen = Vec::with_capacity(self.annotations.len());
        self.annotations.retain(|annotation| {
            let new = !seen.contains(annotation);
            if new {
                seen.push(annotation.clone());
            }
            new
        });
        missing
    }
}

fn lowercase(text: &mut String) {
    // ASCII, as names nearly always are, lowercases in place; other text as Unicode says.
    if text.is_ascii() {
        text.make_ascii_lowercase();
    } else if text.chars().any(char::is_uppercase) {
        *text = text.to_lowercase();
    }
}

/// `t[NN]`: the task's display id as functrace prints it, two digits at least.
pub fn task_label(task: u32) -> String {
    format!("t[{task:02}]")
}

/// Microseconds since the Unix epoch (0 before it).
pub fn epoch_micros(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, saturating_micros)
}

/// Microseconds, rounded up to 1: Zipkin has no zero-length spans.
pub fn duration_micros(duration: Duration) -> u64 {
    saturating_micros(duration).max(1)
}

/// Whole microseconds, saturating: from the seconds and the sub-second part, without the
/// 128-bit division of `as_micros` (twice per span of a proxy).
fn saturating_micros(duration: Duration) -> u64 {
    duration
        .as_secs()
        .checked_mul(1_000_000)
        .and_then(|micros| micros.checked_add(u64::from(duration.subsec_micros())))
        .unwrap_or(u64::MAX)
}

/// A B3 id as lowercase hex: what is written, and what must be read back.
trait HexId: Sized + std::fmt::Display {
    const WHAT: &'static str;
    fn from_hex(hex: &str) -> Option<Self>;
}

impl HexId for TraceId {
    const WHAT: &'static str = "trace id";
    fn from_hex(hex: &str) -> Option<Self> {
        TraceId::from_hex(hex)
    }
}

impl HexId for SpanId {
    const WHAT: &'static str = "span id";
    fn from_hex(hex: &str) -> Option<Self> {
        SpanId::from_hex(hex)
    }
}

fn parse_hex<T: HexId, E: serde::de::Error>(hex: &str) -> Result<T, E> {
    T::from_hex(hex).ok_or_else(|| {
        E::custom(format_args!(
            "invalid {} {hex:?}: expected lowercase hex, not all zero",
            T::WHAT
        ))
    })
}

mod hex_id {
    use super::*;

    pub fn serialize<T: HexId, S: serde::Serializer>(id: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, T: HexId, D: serde::Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        parse_hex(&String::deserialize(d)?)
    }
}

mod hex_parent_id {
    use super::*;

    pub fn serialize<S: serde::Serializer>(id: &Option<SpanId>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.collect_str(id),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SpanId>, D::Error> {
        let hex = Option::<String>::deserialize(d)?;
        hex.map(|hex| parse_hex(&hex)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_are_as_as_micros_says_saturating() {
        let durations = [
            Duration::ZERO,
            Duration::from_nanos(999),
            Duration::from_nanos(1_999),
            Duration::new(1, 999_999_999),
            Duration::from_secs(1_796_595_780),
            Duration::from_micros(u64::MAX),
            Duration::from_micros(u64::MAX) + Duration::from_micros(1),
            Duration::from_secs(u64::MAX / 1_000_000 + 1),
            Duration::MAX,
        ];
        for duration in durations {
            let expected = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
            assert_eq!(saturating_micros(duration), expected, "{duration:?}");
        }
    }
}
