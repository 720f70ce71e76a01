//! The command line: flags for the common case, on top of the config file.

use std::path::PathBuf;

use clap::Parser;

use super::config::{self, B3Format, Config, ConfigError, Outbound, Propagation};
use crate::view;

/// A tracing sidecar proxy: B3 spans, routes, egress rules, faults, rate limits and
/// Prometheus metrics for a service in any language. Flags override the config file.
#[derive(Parser, Debug, Clone, Default)]
#[command(
    name = "functrace-sidecar",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Flags {
    /// A command instead of running the sidecar.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The TOML config file (reloaded on SIGHUP and when its content changes).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The service name on spans.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Listen for traffic to the app and forward it there (repeatable).
    #[arg(long, value_name = "LISTEN=APP_ADDR")]
    pub inbound: Vec<String>,
    /// Listen for the app's own calls.
    #[arg(long, value_name = "LISTEN")]
    pub outbound: Option<std::net::SocketAddr>,
    /// Backends of a host, with optional version labels and weights (repeatable).
    #[arg(long, value_name = "HOST=ADDR[@VERSION][:WEIGHT],...")]
    pub route: Vec<String>,
    /// Hosts the app may call without a route (the egress allow-list).
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',')]
    pub allow: Option<Vec<String>>,
    /// Write spans as Zipkin v2 JSON lines to this file.
    #[arg(long, value_name = "PATH")]
    pub spans_file: Option<PathBuf>,
    /// Send spans to this Zipkin v2 collector.
    #[arg(long, value_name = "URL")]
    pub zipkin: Option<String>,
    /// Send spans to this OpenTelemetry collector over OTLP/HTTP (protobuf; a URL without a
    /// path posts to /v1/traces).
    #[arg(long, value_name = "URL")]
    pub otlp: Option<String>,
    /// Share of new traces recorded, 0.0 to 1.0.
    #[arg(long, value_name = "RATE")]
    pub sample: Option<f64>,
    /// Which standards carry the context to the app and upstreams (same: those the request
    /// came in, B3 when none).
    #[arg(long, value_enum, value_name = "STANDARDS")]
    pub propagation: Option<Propagation>,
    /// How B3 goes to the app and upstreams.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub b3_format: Option<B3FormatFlag>,
    /// The proxy listeners' HTTP/1.1: hyper's, or the sidecar's own codec.
    #[arg(long, value_enum, value_name = "IMPL")]
    pub http1: Option<config::Http1>,
    /// Serve /metrics, /ready and /config here.
    #[arg(long, value_name = "LISTEN")]
    pub admin: Option<std::net::SocketAddr>,
    /// Validate the config, print the effective config as TOML, and exit.
    #[arg(long)]
    pub check_config: bool,
}

/// What `functrace-sidecar` does instead of running the sidecar.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Show the traces in spans files (Zipkin v2 JSON lines): a list, newest first, or one
    /// trace as a waterfall.
    View(ViewArgs),
}

/// `functrace-sidecar view SPANS.jsonl... [--trace ID] [--service NAME] [--min-duration D]
/// [--html OUT.html]`.
#[derive(clap::Args, Debug, Clone)]
pub struct ViewArgs {
    /// Spans files (one span per line), merged.
    #[arg(required = true, value_name = "SPANS.jsonl")]
    pub files: Vec<PathBuf>,
    /// Draw this trace (its hex id) as a waterfall instead of listing traces.
    #[arg(long, value_name = "ID")]
    pub trace: Option<String>,
    /// List only traces with a span of this service.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// List only traces at least this long: 250us, 10ms, 1.5s.
    #[arg(long, value_name = "D", value_parser = view::parse_duration)]
    pub min_duration: Option<u64>,
    /// Write a self-contained HTML page instead of text: the trace, or every listed trace.
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
}

impl From<ViewArgs> for view::Options {
    fn from(args: ViewArgs) -> view::Options {
        view::Options {
            files: args.files,
            trace: args.trace,
            filter: view::Filter {
                service: args.service,
                min_duration: args.min_duration,
            },
            html: args.html,
        }
    }
}

/// `--b3-format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum B3FormatFlag {
    /// `X-B3-*` headers.
    Multi,
    /// The `b3` header.
    Single,
    /// Both.
    Both,
}

impl Flags {
    /// The config file (or the defaults) with these flags on top, validated.
    pub fn effective_config(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        self.apply(&mut config)?;
        config.validate()?;
        Ok(config)
    }

    fn apply(&self, config: &mut Config) -> Result<(), ConfigError> {
        if let Some(service) = &self.service {
            config.service = service.clone();
        }
        if !self.inbound.is_empty() {
            config.inbound = self
                .inbound
                .iter()
                .map(|flag| config::parse_inbound_flag(flag))
                .collect::<Result<_, _>>()?;
        }
        if let Some(listen) = self.outbound {
            match &mut config.outbound {
                Some(outbound) => outbound.listen = listen,
                None => {
                    config.outbound = Some(Outbound {
                        listen,
                        allow: Vec::new(),
                        timeout_ms: 15_000,
                        routes: Vec::new(),
                    })
                }
            }
        }
        let needs_outbound = !self.route.is_empty() || self.allow.is_some();
        if needs_outbound && config.outbound.is_none() {
            return Err(ConfigError {
                key: "--outbound".into(),
                problem: "--route and --allow need an outbound listener".into(),
            });
        }
        if let Some(outbound) = &mut config.outbound {
            for flag in &self.route {
                let route = config::parse_route_flag(flag)?;
                // A flag's route replaces the file's route for the same host.
                outbound
                    .routes
                    .retain(|old| !old.host.eq_ignore_ascii_case(&route.host));
                outbound.routes.push(route);
            }
            if let Some(allow) = &self.allow {
                outbound.allow = allow.clone();
            }
        }
        if let Some(path) = &self.spans_file {
            config.tracing.spans_file = Some(path.clone());
        }
        if let Some(url) = &self.zipkin {
            config.tracing.zipkin = Some(url.clone());
        }
        if let Some(url) = &self.otlp {
            config.tracing.otlp = Some(url.clone());
        }
        if let Some(rate) = self.sample {
            config.tracing.sample = rate;
        }
        if let Some(propagation) = self.propagation {
            config.tracing.propagation = propagation;
        }
        if let Some(http1) = self.http1 {
            config.http1 = http1;
        }
        if let Some(format) = self.b3_format {
            config.tracing.b3_format = match format {
                B3FormatFlag::Multi => B3Format::Multi,
                B3FormatFlag::Single => B3Format::Single,
                B3FormatFlag::Both => B3Format::Both,
            };
        }
        if let Some(admin) = self.admin {
            config.admin = Some(admin);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        Flags::try_parse_from(std::iter::once("functrace-sidecar").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn flags_alone_make_a_config() {
        let config = flags(&[
            "--service",
            "svcb",
            "--inbound",
            "127.0.0.1:15006=127.0.0.1:8080",
            "--outbound",
            "127.0.0.1:15001",
            "--route",
            "svcc=127.0.0.1:9001@v1:90,127.0.0.1:9002@v2:10",
            "--allow",
            "msgd:9000,api.example:443",
            "--sample",
            "0.25",
            "--b3-format",
            "single",
            "--propagation",
            "both",
            "--admin",
            "127.0.0.1:15000",
        ])
        .effective_config()
        .unwrap();
        assert_eq!(config.service, "svcb");
        assert_eq!(config.inbound[0].app, "127.0.0.1:8080");
        let outbound = config.outbound.unwrap();
        assert_eq!(outbound.routes[0].backends[1].weight, 10);
        assert_eq!(outbound.allow, ["msgd:9000", "api.example:443"]);
        assert_eq!(config.tracing.sample, 0.25);
        assert_eq!(config.tracing.b3_format, B3Format::Single);
        assert_eq!(config.tracing.propagation, Propagation::Both);
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidecar.toml");
        std::fs::write(
            &path,
            r#"
service = "from-file"
[outbound]
listen = "127.0.0.1:15001"
allow = ["a:1"]
[[outbound.route]]
host = "svcb"
backends = [{ address = "127.0.0.1:1" }]
[[outbound.route]]
host = "svcc"
backends = [{ address = "127.0.0.1:2" }]
"#,
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let config = flags(&[
            "--config",
            path,
            "--service",
            "flag",
            "--route",
            "SVCB=127.0.0.1:3",
        ])
        .effective_config()
        .unwrap();
        assert_eq!(config.service, "flag");
        let routes = &config.outbound.as_ref().unwrap().routes;
        let hosts: Vec<_> = routes
            .iter()
            .map(|r| (r.host.as_str(), r.backends[0].address.as_str()))
            .collect();
        assert_eq!(hosts, [("svcc", "127.0.0.1:2"), ("SVCB", "127.0.0.1:3")]);
        assert_eq!(config.outbound.unwrap().allow, ["a:1"]);
    }

    #[test]
    fn view_is_a_subcommand_beside_the_flags() {
        let parsed = flags(&["view", "a.jsonl", "b.jsonl", "--service", "svcb"]);
        let Some(Command::View(args)) = parsed.command else {
            panic!("no view: {parsed:?}");
        };
        let options = view::Options::from(args);
        assert_eq!(options.files, [PathBuf::from("a.jsonl"), "b.jsonl".into()]);
        assert_eq!(options.filter.service.as_deref(), Some("svcb"));
        let args = ["view", "a.jsonl", "--trace", "ab", "--min-duration", "1.5s"];
        let Some(Command::View(args)) = flags(&args).command else {
            panic!("no view");
        };
        assert_eq!(args.min_duration, Some(1_500_000));
        assert_eq!(args.trace.as_deref(), Some("ab"));
        let sidecar = flags(&["--service", "view", "--inbound", "127.0.0.1:1=127.0.0.1:2"]);
        assert!(sidecar.command.is_none());
        assert_eq!(sidecar.service.as_deref(), Some("view"));
        let parse = |args: &[&str]| {
            Flags::try_parse_from(std::iter::once("functrace-sidecar").chain(args.iter().copied()))
        };
        assert!(parse(&["view"]).is_err());
        assert!(parse(&["view", "a.jsonl", "--min-duration", "10"]).is_err());
        assert!(parse(&["--service", "x", "view", "a.jsonl"]).is_err());
    }

    #[test]
    fn bad_flags_name_themselves() {
        let err = flags(&["--route", "a=b:1"]).effective_config().unwrap_err();
        assert_eq!(err.key, "--outbound");
        let err = flags(&["--inbound", "127.0.0.1:1=nowhere"])
            .effective_config()
            .unwrap_err();
        assert_eq!(err.key, "--inbound");
        let err = flags(&["--outbound", "127.0.0.1:1", "--sample", "2"])
            .effective_config()
            .unwrap_err();
        assert_eq!(err.key, "tracing.sample");
    }
}
