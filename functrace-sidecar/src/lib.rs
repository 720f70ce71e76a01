//! `functrace-sidecar`: a tracing sidecar proxy, beside a service in any language, and the
//! trace viewer ([`view`]).
//!
//! A stack of small parts, inbound and outbound apart (see ARCHITECTURE.md for the map):
//!
//! - [`config`] (the TOML file) and [`cli`] (the flags on top of it); [`watch`] (reload when
//!   the config file changes);
//! - `serve`: listeners and draining; `limit`: the connection limit, which sheds idle
//!   connections; `conn`: a connection's phases and their deadlines; `flood`: the HTTP/2
//!   flood limits that `h2` does not keep; `admin`: `/metrics`,
//!   `/ready`, `/config`;
//! - `proxy`: one request as its phases, in order; `policy`: one file per policy (route,
//!   egress, rate limit, fault, retry); `refusal`: every answer of the sidecar's own;
//!   `record`: the span and the metrics; [`metrics`]: the Prometheus registry;
//! - `body` (the request body sent upstream), `hop_by_hop`, and `upstream`: the connection
//!   pool (HTTP/1.1 and HTTP/2), which knows nothing of the proxy;
//! - [`h1`]: the sidecar's own HTTP/1.1 codec (heads, framing, chunked bodies);
//! - [`view`]: the trace viewer of `functrace-sidecar view`.

pub mod cli;
pub mod config;
pub mod h1;
pub mod metrics;
pub mod open_files;
pub mod view;
pub mod watch;

mod admin;
mod body;
mod conn;
mod date;
mod flood;
mod hop_by_hop;
mod keyed;
mod limit;
mod policy;
mod proxy;
mod proxy_h1;
mod record;
mod refusal;
mod serve;
mod stall;
mod stopping;
mod upstream;

use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use config::{Config, ConfigError};
use functrace_mesh::export::Reporter;
use metrics::Metrics;
use policy::route::{Route, Routes};
pub use refusal::REASON;
pub use serve::{start, Running};
use upstream::Upstreams;

/// What a config reload can change: everything but the listeners, limits and span
/// destinations, which are fixed at start.
pub struct Settings {
    /// The configuration.
    pub config: Config,
    /// The outbound routes and egress allow-list.
    pub routes: Routes,
    /// The app of each inbound listener, in config order.
    pub inbound: Vec<Arc<Route>>,
}

impl Settings {
    /// The routes and inbound apps of `config`.
    pub fn new(config: Config) -> Settings {
        let inbound = config
            .inbound
            .iter()
            .map(|inbound| {
                Arc::new(Route::direct(
                    "inbound",
                    &inbound.app,
                    Duration::from_millis(inbound.timeout_ms),
                    inbound.protocol,
                    inbound.rate_limit.as_ref(),
                ))
            })
            .collect();
        Settings {
            routes: Routes::new(&config),
            inbound,
            config,
        }
    }
}

/// State shared by every listener and connection.
pub struct Shared {
    settings: RwLock<Arc<Settings>>,
    /// The Prometheus metrics of `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Where spans go, when anywhere.
    pub reporter: Option<Reporter>,
    upstreams: Upstreams,
}

impl Shared {
    /// The state of a sidecar starting with `config`.
    pub fn new(config: Config, reporter: Option<Reporter>) -> Shared {
        Shared {
            settings: RwLock::new(Arc::new(Settings::new(config))),
            metrics: Arc::default(),
            reporter,
            upstreams: Upstreams::default(),
        }
    }

    /// The settings now; a request keeps the ones it started with.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Swaps in a new config, valid and with the same listeners, limits and span
    /// destinations; otherwise the old one stays and the error says why.
    pub fn reload(&self, config: Config) -> Result<(), ConfigError> {
        config.validate()?;
        let old = self.settings();
        let old = &old.config;
        let fixed = [
            ("admin", old.admin != config.admin),
            (
                "inbound.listen",
                old.inbound
                    .iter()
                    .map(|i| i.listen)
                    .ne(config.inbound.iter().map(|i| i.listen)),
            ),
            (
                "outbound.listen",
                old.outbound.as_ref().map(|o| o.listen)
                    != config.outbound.as_ref().map(|o| o.listen),
            ),
            ("limits", old.limits != config.limits),
            (
                "tracing.spans_file",
                old.tracing.spans_file != config.tracing.spans_file,
            ),
            (
                "tracing.zipkin",
                old.tracing.zipkin != config.tracing.zipkin,
            ),
            ("tracing.otlp", old.tracing.otlp != config.tracing.otlp),
        ];
        if let Some((key, _)) = fixed.iter().find(|(_, changed)| *changed) {
            return Err(ConfigError {
                key: (*key).to_owned(),
                problem: "cannot change on reload; restart the sidecar".into(),
            });
        }
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Settings::new(config));
        Ok(())
    }
}
