//! Where an outbound call goes: routes by host with weighted backends, the egress allow-list,
//! and the per-route policies (timeout, faults, rate limit).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::config::{self, Config};

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
    pub fault: Option<config::Fault>,
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

/// A token bucket refilled continuously at `per_second`, holding `burst` at most (at least 1).
#[derive(Debug)]
pub struct TokenBucket {
    per_second: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(limit: &config::RateLimit) -> TokenBucket {
        let burst = f64::from(limit.burst.max(1));
        TokenBucket {
            per_second: limit.per_second,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes a token if there is one.
    pub fn try_take(&self) -> bool {
        self.try_take_at(Instant::now())
    }

    fn try_take_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = *state;
        let refilled = now.saturating_duration_since(last).as_secs_f64() * self.per_second;
        let tokens = (tokens + refilled).min(self.burst);
        let (tokens, taken) = if tokens >= 1.0 {
            (tokens - 1.0, true)
        } else {
            (tokens, false)
        };
        *state = (tokens, now.max(last));
        taken
    }
}

/// What an outbound request's target resolves to.
pub enum Target<'a> {
    Route(&'a Route),
    /// On the allow-list: forwarded to the authority the app asked for.
    Allowed(Arc<Route>),
    /// Neither routed nor allowed: the reason for the 502.
    Refused(String),
}

/// The outbound routing table.
#[derive(Debug, Default)]
pub struct Routes {
    by_host: HashMap<String, Route>,
    allow: Vec<String>,
    timeout: Duration,
}

impl Routes {
    pub fn new(config: &Config) -> Routes {
        let Some(outbound) = &config.outbound else {
            return Routes::default();
        };
        Routes {
            by_host: outbound
                .routes
                .iter()
                .map(|route| (route.host.to_ascii_lowercase(), Route::new(route)))
                .collect(),
            allow: outbound
                .allow
                .iter()
                .map(|host| host.to_ascii_lowercase())
                .collect(),
            timeout: Duration::from_millis(outbound.timeout_ms),
        }
    }

    /// The route for `authority` (`HOST` or `HOST:PORT`, as the app wrote it).
    pub fn resolve(&self, authority: &str) -> Target<'_> {
        let authority = authority.to_ascii_lowercase();
        let host = host_of(&authority);
        if let Some(route) = self.by_host.get(host) {
            return Target::Route(route);
        }
        let with_port = if authority.contains(':') || authority.starts_with('[') {
            authority.clone()
        } else {
            format!("{authority}:80")
        };
        let allowed = self
            .allow
            .iter()
            .any(|entry| *entry == with_port || *entry == host);
        if allowed {
            Target::Allowed(Arc::new(Route::direct(
                host,
                &with_port,
                self.timeout,
                config::Protocol::Auto,
                None,
            )))
        } else {
            Target::Refused(format!(
                "no route to {authority} and it is not on the egress allow-list"
            ))
        }
    }
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
    fn the_token_bucket_allows_a_burst_then_the_rate() {
        let bucket = TokenBucket::new(&config::RateLimit {
            per_second: 10.0,
            burst: 3,
        });
        let start = Instant::now();
        let taken: Vec<bool> = (0..4).map(|_| bucket.try_take_at(start)).collect();
        assert_eq!(taken, [true, true, true, false]);
        // 0.1 s later one token has come back, and only one.
        let later = start + Duration::from_millis(100);
        assert!(bucket.try_take_at(later));
        assert!(!bucket.try_take_at(later));
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
