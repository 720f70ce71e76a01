//! Route: where a request goes. Inbound, the listener's app; outbound, the route of the
//! host the app asked for (by absolute URI, `:authority` or `Host`), whose weighted backends
//! take turns, or else a host on the egress allow-list ([`super::egress`]). A route carries
//! the policies of the phases after it (rate limit, fault, retry and timeout).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{header, Request};

use super::egress::Egress;
use super::rate_limit::TokenBucket;
use crate::config::{self, Config};
use crate::h1::{self, FieldKind, RequestHead};
use crate::metrics::Direction;
use crate::refusal::Refusal;
use crate::Settings;

/// One upstream address with its version label.
#[derive(Debug)]
pub struct Upstream {
    pub address: Arc<str>,
    pub version: Arc<str>,
}

/// A route's backends and policies, built from its config.
#[derive(Debug)]
pub struct Route {
    /// The route's name in spans and metrics (its host).
    pub name: Arc<str>,
    pub timeout: Duration,
    pub attempts: u32,
    pub protocol: config::Protocol,
    pub fault: Option<super::fault::Fault>,
    pub rate_limit: Option<TokenBucket>,
    picker: Mutex<WeightedRoundRobin>,
    upstreams: Vec<Upstream>,
}

impl Route {
    fn new(route: &config::Route) -> Route {
        let upstreams = route
            .backends
            .iter()
            .map(|backend| Upstream {
                address: backend.address.as_str().into(),
                version: backend.version.as_deref().unwrap_or("").into(),
            })
            .collect();
        Route {
            name: route.host.to_ascii_lowercase().into(),
            timeout: Duration::from_millis(route.timeout_ms),
            attempts: route.attempts,
            protocol: route.protocol,
            fault: route.fault.clone(),
            rate_limit: route.rate_limit.as_ref().map(TokenBucket::new),
            picker: Mutex::new(WeightedRoundRobin::new(
                route.backends.iter().map(|backend| backend.weight),
            )),
            upstreams,
        }
    }

    /// A single upstream for a host on the allow-list, or for the inbound app.
    pub fn direct(
        name: &str,
        address: &str,
        timeout: Duration,
        protocol: config::Protocol,
        rate_limit: Option<&config::RateLimit>,
    ) -> Route {
        Route {
            name: name.into(),
            timeout,
            attempts: 2,
            protocol,
            fault: None,
            rate_limit: rate_limit.map(TokenBucket::new),
            picker: Mutex::new(WeightedRoundRobin::new([1])),
            upstreams: vec![Upstream {
                address: address.into(),
                version: "".into(),
            }],
        }
    }

    /// The next upstream by weight.
    pub fn pick(&self) -> &Upstream {
        let index = self.picker.lock().unwrap_or_else(|e| e.into_inner()).next();
        &self.upstreams[index]
    }
}

/// Smooth weighted round-robin (as nginx does it): over any window of `sum(weights)` picks,
/// each backend gets exactly its weight, spread out rather than in runs; equal weights take
/// turns.
#[derive(Debug)]
struct WeightedRoundRobin {
    weights: Vec<i64>,
    current: Vec<i64>,
    total: i64,
}

impl WeightedRoundRobin {
    fn new(weights: impl IntoIterator<Item = u32>) -> WeightedRoundRobin {
        let weights: Vec<i64> = weights.into_iter().map(i64::from).collect();
        WeightedRoundRobin {
            current: vec![0; weights.len()],
            total: weights.iter().sum(),
            weights,
        }
    }

    fn next(&mut self) -> usize {
        let mut best = 0;
        for (i, weight) in self.weights.iter().enumerate() {
            self.current[i] += weight;
            if self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= self.total;
        best
    }
}

/// What an outbound request's target resolves to.
pub enum Target<'a> {
    Route(&'a Route),
    /// On the allow-list: forwarded to the authority the app asked for.
    Allowed(Arc<Route>),
    /// Neither routed nor allowed.
    Refused(Refusal),
}

/// The outbound routing table.
#[derive(Debug, Default)]
pub struct Routes {
    by_host: HashMap<String, Route>,
    egress: Egress,
    /// No route speaks HTTP/2 to its upstream (asked at every request of the own path).
    http1_only: bool,
}

impl Routes {
    pub fn new(config: &Config) -> Routes {
        let Some(outbound) = &config.outbound else {
            return Routes {
                http1_only: true,
                ..Routes::default()
            };
        };
        let by_host: HashMap<_, _> = outbound
            .routes
            .iter()
            .map(|route| (route.host.to_ascii_lowercase(), Route::new(route)))
            .collect();
        let http1_only = by_host
            .values()
            .all(|route| route.protocol != config::Protocol::Http2);
        Routes {
            by_host,
            egress: Egress::new(outbound),
            http1_only,
        }
    }

    /// Whether every route sends an HTTP/1.1 request on as HTTP/1.1 (allowed hosts do).
    pub fn speak_http1(&self) -> bool {
        self.http1_only
    }

    /// The route for `authority` (`HOST` or `HOST:PORT`, as the app wrote it).
    pub fn resolve(&self, authority: &str) -> Target<'_> {
        let authority = authority.to_ascii_lowercase();
        let host = host_of(&authority);
        if let Some(route) = self.by_host.get(host) {
            return Target::Route(route);
        }
        match self.egress.allow(&authority, host) {
            Ok(route) => Target::Allowed(route),
            Err(refusal) => Target::Refused(refusal),
        }
    }
}

/// What a request is sent to: the route (for policies and metrics) and one of its upstreams.
pub enum Chosen<'a> {
    Borrowed(&'a Route),
    Owned(Arc<Route>),
}

impl std::ops::Deref for Chosen<'_> {
    type Target = Route;
    fn deref(&self) -> &Route {
        match self {
            Chosen::Borrowed(route) => route,
            Chosen::Owned(route) => route,
        }
    }
}

/// The route phase: the inbound listener's app, or the route (or allowed host) of an
/// outbound request's `authority` (asked for only outbound).
pub fn choose<'s>(
    settings: &'s Settings,
    direction: Direction,
    inbound: usize,
    authority: impl FnOnce() -> Option<String>,
) -> Result<Chosen<'s>, Refusal> {
    match direction {
        Direction::Inbound => Ok(Chosen::Owned(settings.inbound[inbound].clone())),
        Direction::Outbound => {
            let authority = authority().ok_or(Refusal::NoAuthority)?;
            match settings.routes.resolve(&authority) {
                Target::Route(route) => Ok(Chosen::Borrowed(route)),
                Target::Allowed(route) => Ok(Chosen::Owned(route)),
                Target::Refused(refusal) => Err(refusal),
            }
        }
    }
}

/// Where an outbound request was meant to go: the absolute-form URI (proxy style), the
/// HTTP/2 `:authority`, or the `Host` header.
pub fn authority<B>(request: &Request<B>) -> Option<String> {
    if let Some(authority) = request.uri().authority() {
        return Some(authority.as_str().to_owned());
    }
    let host = request.headers().get(header::HOST)?.to_str().ok()?;
    (!host.is_empty()).then(|| host.to_owned())
}

/// [`authority`] of a request the sidecar's own HTTP/1.1 codec read: its absolute-form
/// target's authority, or its `Host`.
pub fn authority_h1(head: &RequestHead, buf: &[u8]) -> Option<String> {
    let (authority, _) = h1::write::origin_form(&buf[head.target.clone()]);
    let authority = authority.or_else(|| head.fields.first(buf, FieldKind::Host))?;
    let authority = std::str::from_utf8(authority).ok()?;
    (!authority.is_empty()).then(|| authority.to_owned())
}

/// `host` of `host[:port]` (an IPv6 literal keeps its brackets).
fn host_of(authority: &str) -> &str {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => host,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(weights: &[u32], n: usize) -> Vec<usize> {
        let mut rr = WeightedRoundRobin::new(weights.iter().copied());
        (0..n).map(|_| rr.next()).collect()
    }

    #[test]
    fn weighted_round_robin_gives_each_its_weight_spread_out() {
        assert_eq!(picks(&[1, 1], 4), [0, 1, 0, 1]);
        assert_eq!(picks(&[0, 1], 3), [1, 1, 1]);
        assert_eq!(picks(&[5, 1, 1], 7), [0, 0, 1, 0, 2, 0, 0]);
        let counts = picks(&[90, 10], 1000)
            .iter()
            .fold([0; 2], |mut counts, &i| {
                counts[i] += 1;
                counts
            });
        assert_eq!(counts, [900, 100]);
    }

    #[test]
    fn routes_resolve_by_host_then_the_allow_list() {
        let config = Config::from_toml(
            r#"
[outbound]
listen = "127.0.0.1:0"
allow = ["msgd:9000", "open.example"]
[[outbound.route]]
host = "svcb"
backends = [{ address = "127.0.0.1:8081" }]
"#,
        )
        .unwrap();
        let routes = Routes::new(&config);
        for authority in ["svcb", "SVCB:8080"] {
            assert!(matches!(routes.resolve(authority), Target::Route(r) if &*r.name == "svcb"));
        }
        match routes.resolve("msgd:9000") {
            Target::Allowed(route) => assert_eq!(&*route.pick().address, "msgd:9000"),
            _ => panic!("msgd:9000 is allowed"),
        }
        assert!(matches!(
            routes.resolve("open.example:8443"),
            Target::Allowed(_)
        ));
        for refused in ["msgd:9001", "msgd", "other"] {
            assert!(
                matches!(routes.resolve(refused), Target::Refused(_)),
                "{refused}"
            );
        }
    }
}
