//! Retry: a request whose upstream refused the connection, or closed (or reset) a kept one
//! before answering, is sent again (up to the route's `attempts`) when that is safe: an
//! idempotent method and no request body. Every attempt shares one deadline, the route's
//! timeout.

use http::Method;

use crate::upstream::SendError;

/// Whether a request may be sent more than once.
#[derive(Clone, Copy)]
pub struct Retry {
    replayable: bool,
    attempts: u32,
}

impl Retry {
    /// For a request with `method`, whose body is empty when `empty_body`, on a route that
    /// allows `attempts`.
    pub fn new(method: &Method, empty_body: bool, attempts: u32) -> Retry {
        Retry {
            replayable: is_idempotent(method) && empty_body,
            attempts,
        }
    }

    /// Whether attempt number `attempt` (from 1) may be followed by another.
    pub fn may_follow(&self, attempt: u32) -> bool {
        self.replayable && attempt < self.attempts
    }

    /// Whether attempt number `attempt`, which failed with `error`, is tried again.
    pub fn again(&self, attempt: u32, error: &SendError) -> bool {
        matches!(error, SendError::Connect(_) | SendError::Closed(_)) && self.may_follow(attempt)
    }
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idempotent_requests_without_a_body_are_tried_again() {
        let get = Retry::new(&Method::GET, true, 2);
        assert!(get.may_follow(1));
        assert!(!get.may_follow(2), "two attempts at most");
        assert!(!Retry::new(&Method::POST, true, 2).may_follow(1));
        assert!(!Retry::new(&Method::PUT, false, 2).may_follow(1));
        assert!(!Retry::new(&Method::GET, true, 1).may_follow(1));
    }
}
