//! Rate limit: a token bucket per route (and per inbound listener); a request that finds it
//! empty is refused with 429 before anything else is done for it.

use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::refusal::Refusal;

/// A token bucket: `per_second` requests on average, bursts of `burst`; 429 beyond.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per second on average.
    pub per_second: f64,
    /// The largest burst (at least 1).
    #[serde(default)]
    pub burst: u32,
}

/// A token bucket refilled continuously at `per_second`, holding `burst` at most (at least 1).
#[derive(Debug)]
pub struct TokenBucket {
    per_second: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(limit: &RateLimit) -> TokenBucket {
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

/// The rate-limit phase: a token from the route's bucket, if it has one.
pub fn admit(bucket: Option<&TokenBucket>) -> Result<(), Refusal> {
    match bucket {
        Some(bucket) if !bucket.try_take() => Err(Refusal::RateLimited),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_token_bucket_allows_a_burst_then_the_rate() {
        let bucket = TokenBucket::new(&RateLimit {
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
}
