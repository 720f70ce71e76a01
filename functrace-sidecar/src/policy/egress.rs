//! Egress, as Istio's EgressRule: an outbound request to a host with no route is forwarded
//! only when the host (or `host:port`) is on the allow-list; otherwise it is refused.

use std::sync::Arc;
use std::time::Duration;

use super::route::Route;
use crate::config::{Outbound, Protocol};
use crate::refusal::Refusal;

/// The allow-list, lowercase, and the timeout of its direct routes.
#[derive(Debug, Default)]
pub struct Egress {
    allow: Vec<String>,
    timeout: Duration,
}

impl Egress {
    pub fn new(outbound: &Outbound) -> Egress {
        Egress {
            allow: outbound
                .allow
                .iter()
                .map(|host| host.to_ascii_lowercase())
                .collect(),
            timeout: Duration::from_millis(outbound.timeout_ms),
        }
    }

    /// A direct route to `authority` (lowercase; `host` is its host) when it is allowed.
    pub fn allow(&self, authority: &str, host: &str) -> Result<Arc<Route>, Refusal> {
        let with_port = if authority.contains(':') || authority.starts_with('[') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let allowed = self
            .allow
            .iter()
            .any(|entry| *entry == with_port || *entry == host);
        if allowed {
            Ok(Arc::new(Route::direct(
                host,
                &with_port,
                self.timeout,
                Protocol::Auto,
                None,
            )))
        } else {
            Err(Refusal::NotRouted(authority.to_owned()))
        }
    }
}
