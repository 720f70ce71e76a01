//! Fault injection, as Istio's HTTPFaultInjection: a share of a route's requests waits
//! before it is sent (`delay`), a share is answered at once with a status (`abort`).

use std::time::Duration;

use functrace_mesh::http_span;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::refusal::Refusal;

/// Faults to inject into a share of a route's requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Answer at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<Abort>,
    /// Wait first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Delay>,
}

/// Answer `status` at once, without calling the upstream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Abort {
    /// The share of requests, 0 to 100.
    pub percent: f64,
    /// The status answered.
    pub status: u16,
}

/// Wait before calling the upstream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delay {
    /// The share of requests, 0 to 100.
    pub percent: f64,
    /// How long, in milliseconds.
    pub ms: u64,
}

impl Fault {
    /// The fault phase: waits when this request is delayed, refuses it when aborted.
    /// `Ok(Some("delay"))` names a delay for the span.
    pub async fn inject(&self) -> Result<Option<&'static str>, Refusal> {
        let mut injected = None;
        if let Some(delay) = &self.delay {
            if chance(delay.percent) {
                injected = Some("delay");
                tokio::time::sleep(Duration::from_millis(delay.ms)).await;
            }
        }
        if let Some(abort) = &self.abort {
            if chance(abort.percent) {
                let status = StatusCode::from_u16(abort.status).unwrap_or(StatusCode::OK);
                return Err(Refusal::Abort(status));
            }
        }
        Ok(injected)
    }
}

/// `true` with probability `percent` / 100.
fn chance(percent: f64) -> bool {
    http_span::random_fraction() * 100.0 < percent
}
