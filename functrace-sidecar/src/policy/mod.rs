//! The per-route policies, one file each, each with its config data, its state and the phase
//! that applies it. In the order of the request path (see `crate::proxy`):
//!
//! 0. [`message`]: what is not passed on at all (no `Host`, an unknown coding, CONNECT);
//! 1. [`route`] and [`egress`]: where the request goes, or 502 when nowhere;
//! 2. [`rate_limit`]: 429 when the route's bucket is empty;
//! 3. [`fault`]: an injected delay, or an injected answer;
//! 4. (B3 for the next hop, in the proxy)
//! 5. [`retry`], with the route's timeout: sending, again when it is safe.

pub mod egress;
pub mod fault;
pub mod message;
pub mod rate_limit;
pub mod retry;
pub mod route;
