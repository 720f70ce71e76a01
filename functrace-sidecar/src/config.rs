//! The sidecar's configuration: one TOML file (see `docs/sidecar.md` for every key),
//! command-line flags on top of it, and validation that names the key and the problem.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use functrace_mesh::b3::Format;
use functrace_mesh::propagation;

pub use crate::policy::fault::{Abort, Delay, Fault};
pub use crate::policy::rate_limit::RateLimit;

/// Everything the sidecar runs by. Every field has a default, so an empty file is valid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `localEndpoint.serviceName` of the sidecar's spans.
    pub service: String,
    /// Where `/metrics`, `/ready` and `/config` are served; none when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<SocketAddr>,
    /// Listeners for traffic to the local app.
    pub inbound: Vec<Inbound>,
    /// The listener for the app's own calls, and where they may go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound: Option<Outbound>,
    /// `[tracing]`: sampling and span export.
    pub tracing: Tracing,
    /// `[limits]`: connection limits and deadlines.
    pub limits: Limits,
    /// Which HTTP/1.1 server and client the proxy listeners use.
    pub http1: Http1,
}

/// The HTTP/1.1 implementation of the proxy listeners.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Http1 {
    /// The sidecar's own codec (`functrace_sidecar::h1`), for HTTP/1.1 clients whose
    /// requests go to HTTP/1.1 upstreams: a listener that may send to an HTTP/2 upstream
    /// (`protocol = "http2"`) keeps hyper's.
    #[default]
    Own,
    /// hyper's server and client.
    Hyper,
}

/// One inbound listener.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inbound {
    /// Where the listener binds.
    pub listen: SocketAddr,
    /// The local app, `HOST:PORT`.
    pub app: String,
    /// Milliseconds to wait for the app's response headers (504 beyond).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// What the app speaks.
    #[serde(default)]
    pub protocol: Protocol,
    /// A rate limit on the requests of this listener or route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// The HTTP version spoken to an upstream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// The client's: HTTP/2 (gRPC among it) goes on as HTTP/2, HTTP/1.x as HTTP/1.1.
    #[default]
    Auto,
    /// HTTP/1.1 whatever the client spoke (an app without HTTP/2); not for gRPC.
    Http1,
    /// HTTP/2 with prior knowledge whatever the client spoke.
    Http2,
}

/// The outbound listener and its routes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outbound {
    /// Where the listener binds.
    pub listen: SocketAddr,
    /// Hosts (`HOST` or `HOST:PORT`) the app may call directly, without a route: the egress
    /// allow-list. Anything neither routed nor allowed gets 502.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Milliseconds to wait for response headers from an allowed host (504 beyond).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// `[[outbound.route]]`: routes by host.
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
}

/// Where calls to one host go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The host the app calls (`Host` header or the proxy URI's host), port ignored.
    pub host: String,
    /// The weighted upstreams.
    pub backends: Vec<Backend>,
    /// The deadline of a request's response headers, all attempts together.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts per request when connecting fails (idempotent requests without a body only).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// What the backends speak.
    #[serde(default)]
    pub protocol: Protocol,
    /// Faults to inject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// A rate limit on the requests of this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// One upstream of a route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// `HOST:PORT`.
    pub address: String,
    /// A label for spans and metrics (`upstream.version`), such as `v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Share of the route's traffic, relative to the other backends; 0 takes none.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

/// Span sampling and export.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tracing {
    /// Share of new traces recorded, 0.0 to 1.0; an incoming decision always wins.
    pub sample: f64,
    /// Which standards carry the context to the app and upstreams: `same` (those the
    /// request came in; B3 when none), `b3`, `w3c` or `both`.
    pub propagation: Propagation,
    /// How B3 is written to the app and upstreams, when it is: `multi`, `single` or `both`.
    pub b3_format: B3Format,
    /// Spans as Zipkin v2 JSON lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spans_file: Option<PathBuf>,
    /// A Zipkin v2 collector (`http://HOST:PORT/api/v2/spans`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zipkin: Option<String>,
    /// An OpenTelemetry collector over OTLP/HTTP (`http://HOST:4318`, posting to
    /// `/v1/traces`, or a full URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp: Option<String>,
    /// The most bytes of a request's path a span keeps, in its name and `http.path` tag
    /// (Envoy's `max_path_tag_length`): a trace backend need not store a client's 60 KiB
    /// path, nor the export queue hold it.
    pub max_path_tag_length: usize,
}

/// How B3 goes to the next hop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum B3Format {
    /// `X-B3-*` headers.
    #[default]
    Multi,
    /// The `b3` header.
    Single,
    /// Both.
    Both,
}

/// Which standards carry the trace context to the next hop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    /// The ones the request came in: B3, W3C Trace Context, or both; B3 when neither.
    #[default]
    Same,
    /// B3 only.
    B3,
    /// W3C Trace Context only (`traceparent`, `tracestate`).
    W3c,
    /// Both.
    Both,
}

impl From<Propagation> for propagation::Propagation {
    fn from(propagation: Propagation) -> propagation::Propagation {
        match propagation {
            Propagation::Same => propagation::Propagation::Same,
            Propagation::B3 => propagation::Propagation::B3,
            Propagation::W3c => propagation::Propagation::W3c,
            Propagation::Both => propagation::Propagation::Both,
        }
    }
}

impl From<B3Format> for Format {
    fn from(format: B3Format) -> Format {
        match format {
            B3Format::Multi => Format::Multi,
            B3Format::Single => Format::Single,
            B3Format::Both => Format::Both,
        }
    }
}

/// What keeps clients from exhausting the proxy: connection limits, and a deadline for
/// every phase of a connection (see `conn.rs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open client connections across the proxy listeners. At the limit the oldest idle
    /// connection is closed for a new one; with none idle, the new one is refused.
    pub max_connections: usize,
    /// Open connections of the admin listener, with the same rule.
    pub admin_max_connections: usize,
    /// The kernel's queue of connections not yet accepted, per listener.
    pub listen_backlog: u32,
    /// Milliseconds from accepting a connection to its first byte (HTTP/1.1) or its whole
    /// preface (HTTP/2).
    pub handshake_timeout_ms: u64,
    /// Milliseconds from a request's first byte to the end of its headers (HTTP/1.1); 408.
    pub header_read_timeout_ms: u64,
    /// Longest wait, in milliseconds, for the next bytes of a body: a request's (408), an
    /// upstream's answer (cut where it stopped).
    pub body_timeout_ms: u64,
    /// Milliseconds an HTTP/1.1 connection may stay idle between requests.
    pub keep_alive_timeout_ms: u64,
    /// Milliseconds an HTTP/2 connection may stay without a request in flight.
    pub http2_idle_timeout_ms: u64,
    /// Longest wait, in milliseconds, for a client to take the next bytes written to it.
    pub send_timeout_ms: u64,
    /// Largest request head (HTTP/1.1) or header list (HTTP/2); 431 beyond.
    pub max_header_bytes: usize,
    /// Milliseconds in-flight requests get to finish on shutdown.
    pub drain_timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    15_000
}

fn default_attempts() -> u32 {
    2
}

fn default_weight() -> u32 {
    1
}

impl Default for Config {
    fn default() -> Config {
        Config {
            service: "functrace-sidecar".into(),
            admin: None,
            inbound: Vec::new(),
            outbound: None,
            tracing: Tracing::default(),
            limits: Limits::default(),
            http1: Http1::default(),
        }
    }
}

impl Default for Tracing {
    fn default() -> Tracing {
        Tracing {
            sample: 1.0,
            propagation: Propagation::Same,
            b3_format: B3Format::Multi,
            spans_file: None,
            zipkin: None,
            otlp: None,
            max_path_tag_length: 256,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 10_000,
            admin_max_connections: 32,
            listen_backlog: 1024,
            handshake_timeout_ms: 10_000,
            header_read_timeout_ms: 10_000,
            body_timeout_ms: 60_000,
            keep_alive_timeout_ms: 120_000,
            http2_idle_timeout_ms: 300_000,
            send_timeout_ms: 60_000,
            max_header_bytes: 64 * 1024,
            drain_timeout_ms: 5_000,
        }
    }
}

/// A configuration that cannot run: the key and what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The key at fault, as the config file names it.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "{}: {}", self.key, self.problem)
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads a TOML file. Syntax errors and unknown keys name the key (and the line).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| ConfigError::new("", format!("{}: {err}", path.display())))?;
        Config::from_toml(&text).map_err(|mut err| {
            err.problem = format!("{} (in {})", err.problem, path.display());
            err
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|err: toml::de::Error| {
            let key = err
                .span()
                .map(|span| line_key(text, span.start))
                .unwrap_or_default();
            ConfigError::new(key, err.message().trim_end().to_owned())
        })
    }

    /// The config as TOML, as `--check-config` prints it.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a config always serializes")
    }

    /// Checks everything serde cannot: ranges, addresses, duplicates.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.service.trim().is_empty() {
            return Err(ConfigError::new("service", "must not be empty"));
        }
        if self.inbound.is_empty() && self.outbound.is_none() {
            return Err(ConfigError::new(
                "inbound",
                "no listener: give at least one inbound or an outbound",
            ));
        }
        for (i, inbound) in self.inbound.iter().enumerate() {
            let key = format!("inbound[{i}]");
            check_address(&format!("{key}.app"), &inbound.app)?;
            check_timeout(&format!("{key}.timeout_ms"), inbound.timeout_ms)?;
            if let Some(limit) = &inbound.rate_limit {
                limit.validate(&format!("{key}.rate_limit"))?;
            }
        }
        if let Some(outbound) = &self.outbound {
            outbound.validate()?;
        }
        let listens = self
            .inbound
            .iter()
            .map(|inbound| inbound.listen)
            .chain(self.outbound.iter().map(|outbound| outbound.listen))
            .chain(self.admin);
        let mut seen = BTreeSet::new();
        for listen in listens {
            if listen.port() != 0 && !seen.insert(listen) {
                return Err(ConfigError::new(
                    "listen",
                    format!("{listen} is used by two listeners"),
                ));
            }
        }
        let tracing = &self.tracing;
        if tracing.max_path_tag_length == 0 {
            return Err(ConfigError::new(
                "tracing.max_path_tag_length",
                "must be at least 1",
            ));
        }
        if !(0.0..=1.0).contains(&tracing.sample) {
            return Err(ConfigError::new(
                "tracing.sample",
                format!("{} is not between 0.0 and 1.0", tracing.sample),
            ));
        }
        for (key, url) in [
            ("tracing.zipkin", &tracing.zipkin),
            ("tracing.otlp", &tracing.otlp),
        ] {
            let Some(url) = url else { continue };
            match url.parse::<http::Uri>() {
                Ok(uri) if uri.scheme_str() == Some("http") && uri.authority().is_some() => {}
                _ => {
                    return Err(ConfigError::new(
                        key,
                        format!("{url:?} is not an http:// URL"),
                    ))
                }
            }
        }
        let limits = &self.limits;
        for (key, value) in [
            ("limits.max_connections", limits.max_connections),
            ("limits.admin_max_connections", limits.admin_max_connections),
            ("limits.listen_backlog", limits.listen_backlog as usize),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if limits.max_header_bytes < 8192 {
            return Err(ConfigError::new(
                "limits.max_header_bytes",
                "must be at least 8192",
            ));
        }
        for (key, ms) in [
            ("limits.handshake_timeout_ms", limits.handshake_timeout_ms),
            (
                "limits.header_read_timeout_ms",
                limits.header_read_timeout_ms,
            ),
            ("limits.body_timeout_ms", limits.body_timeout_ms),
            ("limits.keep_alive_timeout_ms", limits.keep_alive_timeout_ms),
            ("limits.http2_idle_timeout_ms", limits.http2_idle_timeout_ms),
            ("limits.send_timeout_ms", limits.send_timeout_ms),
        ] {
            check_timeout(key, ms)?;
        }
        Ok(())
    }
}

impl Outbound {
    fn validate(&self) -> Result<(), ConfigError> {
        check_timeout("outbound.timeout_ms", self.timeout_ms)?;
        for (i, host) in self.allow.iter().enumerate() {
            let key = format!("outbound.allow[{i}]");
            if host.is_empty() || host.contains(['/', ' ', '@']) {
                return Err(ConfigError::new(
                    key,
                    format!("{host:?} is not HOST or HOST:PORT"),
                ));
            }
            if let Some((_, port)) = host.rsplit_once(':') {
                if port.parse::<u16>().is_err() {
                    return Err(ConfigError::new(key, format!("{host:?}: bad port")));
                }
            }
        }
        let mut hosts = BTreeSet::new();
        for (i, route) in self.routes.iter().enumerate() {
            let key = format!("outbound.route[{i}]");
            if route.host.is_empty() || route.host.contains([':', '/', ' ']) {
                return Err(ConfigError::new(
                    format!("{key}.host"),
                    format!("{:?} is not a host name", route.host),
                ));
            }
            if !hosts.insert(route.host.to_ascii_lowercase()) {
                return Err(ConfigError::new(
                    format!("{key}.host"),
                    format!("{:?} has two routes", route.host),
                ));
            }
            if route.backends.is_empty() {
                return Err(ConfigError::new(format!("{key}.backends"), "is empty"));
            }
            for (j, backend) in route.backends.iter().enumerate() {
                check_address(&format!("{key}.backends[{j}].address"), &backend.address)?;
            }
            if route.backends.iter().all(|backend| backend.weight == 0) {
                return Err(ConfigError::new(
                    format!("{key}.backends"),
                    "every weight is 0: nothing can be routed",
                ));
            }
            check_timeout(&format!("{key}.timeout_ms"), route.timeout_ms)?;
            if route.attempts == 0 {
                return Err(ConfigError::new(
                    format!("{key}.attempts"),
                    "must be at least 1",
                ));
            }
            if let Some(fault) = &route.fault {
                if let Some(abort) = &fault.abort {
                    check_percent(&format!("{key}.fault.abort.percent"), abort.percent)?;
                    if !(200..=599).contains(&abort.status) {
                        return Err(ConfigError::new(
                            format!("{key}.fault.abort.status"),
                            format!("{} is not an HTTP status (200-599)", abort.status),
                        ));
                    }
                }
                if let Some(delay) = &fault.delay {
                    check_percent(&format!("{key}.fault.delay.percent"), delay.percent)?;
                }
            }
            if let Some(limit) = &route.rate_limit {
                limit.validate(&format!("{key}.rate_limit"))?;
            }
        }
        Ok(())
    }
}

impl RateLimit {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if !(self.per_second > 0.0 && self.per_second.is_finite()) {
            return Err(ConfigError::new(
                format!("{key}.per_second"),
                "must be a positive number",
            ));
        }
        Ok(())
    }
}

fn check_address(key: &str, address: &str) -> Result<(), ConfigError> {
    let bad = || ConfigError::new(key, format!("{address:?} is not HOST:PORT"));
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || host.contains(['/', ' ']) || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(())
}

fn check_timeout(key: &str, ms: u64) -> Result<(), ConfigError> {
    if ms == 0 {
        return Err(ConfigError::new(key, "must be at least 1 ms"));
    }
    Ok(())
}

fn check_percent(key: &str, percent: f64) -> Result<(), ConfigError> {
    if !(0.0..=100.0).contains(&percent) {
        return Err(ConfigError::new(
            key,
            format!("{percent} is not between 0 and 100"),
        ));
    }
    Ok(())
}

/// The `key =` (or `[table]`) on the line where a TOML error starts, with the line number.
fn line_key(text: &str, offset: usize) -> String {
    let line_number = text[..offset.min(text.len())].matches('\n').count() + 1;
    let line = text.lines().nth(line_number - 1).unwrap_or_default().trim();
    let key = line
        .split_once('=')
        .map(|(key, _)| key.trim())
        .unwrap_or(line);
    format!("line {line_number}: {key}")
}

/// Parses `HOST=ADDR[@VERSION][:WEIGHT],...` (the `--route` flag).
pub fn parse_route_flag(flag: &str) -> Result<Route, ConfigError> {
    let key = "--route";
    let (host, backends) = flag
        .split_once('=')
        .ok_or_else(|| ConfigError::new(key, format!("{flag:?} is not HOST=ADDR,...")))?;
    let backends = backends
        .split(',')
        .map(|backend| parse_backend(backend).map_err(|problem| ConfigError::new(key, problem)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Route {
        host: host.to_owned(),
        backends,
        timeout_ms: default_timeout_ms(),
        attempts: default_attempts(),
        protocol: Protocol::Auto,
        fault: None,
        rate_limit: None,
    })
}

/// `ADDR[@VERSION][:WEIGHT]`, where ADDR is `HOST:PORT`.
fn parse_backend(text: &str) -> Result<Backend, String> {
    let weight_of = |weight: &str| {
        weight
            .parse::<u32>()
            .map_err(|_| format!("{text:?}: weight {weight:?} is not a whole number"))
    };
    let (address, version, weight) = match text.split_once('@') {
        Some((address, rest)) => match rest.split_once(':') {
            Some((version, weight)) => (address, Some(version), weight_of(weight)?),
            None => (address, Some(rest), default_weight()),
        },
        // HOST:PORT:WEIGHT or HOST:PORT.
        None => match text.splitn(3, ':').collect::<Vec<_>>()[..] {
            [host, port, weight] => (
                &text[..host.len() + 1 + port.len()],
                None,
                weight_of(weight)?,
            ),
            _ => (text, None, default_weight()),
        },
    };
    if version.is_some_and(str::is_empty) {
        return Err(format!("{text:?}: empty version after @"));
    }
    check_address("", address).map_err(|_| format!("{text:?}: {address:?} is not HOST:PORT"))?;
    Ok(Backend {
        address: address.to_owned(),
        version: version.map(str::to_owned),
        weight,
    })
}

/// Parses `LISTEN=APP_ADDR` (the `--inbound` flag).
pub fn parse_inbound_flag(flag: &str) -> Result<Inbound, ConfigError> {
    let key = "--inbound";
    let (listen, app) = flag
        .split_once('=')
        .ok_or_else(|| ConfigError::new(key, format!("{flag:?} is not LISTEN=APP_ADDR")))?;
    let listen = listen
        .parse()
        .map_err(|_| ConfigError::new(key, format!("{listen:?} is not IP:PORT")))?;
    check_address(key, app)?;
    Ok(Inbound {
        listen,
        app: app.to_owned(),
        timeout_ms: default_timeout_ms(),
        protocol: Protocol::Auto,
        rate_limit: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_defaults_and_needs_a_listener() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.validate().unwrap_err().key, "inbound");
    }

    #[test]
    fn a_full_file_round_trips_through_toml() {
        let text = r#"
service = "svcb"
admin = "127.0.0.1:15000"

[[inbound]]
listen = "127.0.0.1:15006"
app = "127.0.0.1:8080"
rate_limit = { per_second = 100.0, burst = 20 }

[outbound]
listen = "127.0.0.1:15001"
allow = ["msgd:9000"]

[[outbound.route]]
host = "svcb"
timeout_ms = 2000
backends = [
  { address = "127.0.0.1:8081", version = "v1", weight = 50 },
  { address = "127.0.0.1:8082", version = "v2", weight = 50 },
]
fault = { abort = { percent = 10.0, status = 503 }, delay = { percent = 5.0, ms = 100 } }

[tracing]
sample = 0.5
propagation = "w3c"
b3_format = "both"
spans_file = "spans.jsonl"
zipkin = "http://127.0.0.1:9411/api/v2/spans"
otlp = "http://127.0.0.1:4318/v1/traces"
"#;
        let config = Config::from_toml(text).unwrap();
        config.validate().unwrap();
        let route = &config.outbound.as_ref().unwrap().routes[0];
        assert_eq!(route.backends[1].version.as_deref(), Some("v2"));
        assert_eq!(route.attempts, 2);
        assert_eq!(config.tracing.b3_format, B3Format::Both);
        assert_eq!(config.tracing.propagation, Propagation::W3c);
        assert_eq!(Config::from_toml(&config.to_toml()).unwrap(), config);
    }

    #[test]
    fn the_reference_example_is_valid_and_complete() {
        let reference = include_str!("../../docs/sidecar.md");
        let example = reference
            .split("## Config file")
            .nth(1)
            .and_then(|section| section.split("```toml\n").nth(1))
            .and_then(|block| block.split("```").next())
            .expect("docs/sidecar.md has the config example");
        let config = Config::from_toml(example).unwrap();
        config.validate().unwrap();
        // Every key appears: the printed config has nothing the example lacks.
        let printed = config.to_toml();
        for line in printed.lines().filter(|line| line.contains(" = ")) {
            let key = line.split(" = ").next().unwrap().trim();
            assert!(
                example.contains(&format!("{key} =")),
                "{key} is not in the reference"
            );
        }
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("servce = \"x\"", "line 1: servce"),
            ("[tracing]\nsample = \"all\"", "line 2: sample"),
            (
                "[[inbound]]\nlisten = \"nowhere\"\napp = \"a:1\"",
                "line 2: listen",
            ),
        ];
        for (text, key) in cases {
            let err = Config::from_toml(text).unwrap_err();
            assert_eq!(err.key, key, "{text}: {err}");
        }
        let invalid = [
            ("[tracing]\nsample = 1.5\n[outbound]\nlisten = \"127.0.0.1:1\"", "tracing.sample"),
            (
                "[tracing]\nmax_path_tag_length = 0\n[outbound]\nlisten = \"127.0.0.1:1\"",
                "tracing.max_path_tag_length",
            ),
            (
                "[outbound]\nlisten = \"127.0.0.1:1\"\n[[outbound.route]]\nhost = \"a\"\nbackends = []",
                "outbound.route[0].backends",
            ),
            (
                "[outbound]\nlisten = \"127.0.0.1:1\"\n[[outbound.route]]\nhost = \"a\"\nbackends = [{ address = \"b\" }]",
                "outbound.route[0].backends[0].address",
            ),
            (
                "[outbound]\nlisten = \"127.0.0.1:1\"\n[[outbound.route]]\nhost = \"a\"\nbackends = [{ address = \"b:1\", weight = 0 }]",
                "outbound.route[0].backends",
            ),
            (
                "[outbound]\nlisten = \"127.0.0.1:1\"\n[[outbound.route]]\nhost = \"a\"\nbackends = [{ address = \"b:1\" }]\nfault = { abort = { percent = 101.0, status = 500 } }",
                "outbound.route[0].fault.abort.percent",
            ),
            (
                "[outbound]\nlisten = \"127.0.0.1:1\"\n[[outbound.route]]\nhost = \"a\"\nbackends = [{ address = \"b:1\" }]\n[[outbound.route]]\nhost = \"A\"\nbackends = [{ address = \"b:1\" }]",
                "outbound.route[1].host",
            ),
            (
                "[outbound]\nlisten = \"127.0.0.1:1\"\nallow = [\"x:http\"]",
                "outbound.allow[0]",
            ),
            (
                "admin = \"127.0.0.1:5\"\n[outbound]\nlisten = \"127.0.0.1:5\"",
                "listen",
            ),
        ];
        for (text, key) in invalid {
            let err = Config::from_toml(text).unwrap().validate().unwrap_err();
            assert_eq!(err.key, key, "{text}: {err}");
        }
    }

    #[test]
    fn route_flags_parse_versions_and_weights() {
        let route =
            parse_route_flag("svcb=127.0.0.1:8081@v1:90,127.0.0.1:8082@v2:10,h:3:7,h:4").unwrap();
        assert_eq!(route.host, "svcb");
        let got: Vec<_> = route
            .backends
            .iter()
            .map(|b| (b.address.as_str(), b.version.as_deref(), b.weight))
            .collect();
        assert_eq!(
            got,
            [
                ("127.0.0.1:8081", Some("v1"), 90),
                ("127.0.0.1:8082", Some("v2"), 10),
                ("h:3", None, 7),
                ("h:4", None, 1),
            ]
        );
        for bad in ["svcb", "svcb=x", "svcb=h:1@", "svcb=h:1@v1:x", "svcb=h:1:x"] {
            assert!(parse_route_flag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn inbound_flags_need_an_ip_listen_and_an_app_address() {
        let inbound = parse_inbound_flag("127.0.0.1:0=localhost:8080").unwrap();
        assert_eq!(inbound.app, "localhost:8080");
        for bad in ["127.0.0.1:0", "localhost:1=a:1", "127.0.0.1:0=app"] {
            assert!(parse_inbound_flag(bad).is_err(), "{bad}");
        }
    }
}
