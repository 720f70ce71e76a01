//! The distributed-trace side of a frame: B3's trace context (trace id, span id, parent id,
//! sampling state), as `functrace-mesh` carries it between services.

use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroU64;

/// A trace id: 64 or 128 bits, never all zero. Its width is kept as received, so a service
/// forwards a 64-bit id as 64 bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceId {
    /// 16 hex characters.
    Short(NonZeroU64),
    /// 32 hex characters: the high and low halves, not both zero.
    Long(u64, u64),
}

/// A span id (also a parent id): 64 bits, never zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(NonZeroU64);

/// What was decided about recording a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sampling {
    /// Not decided yet: the receiver decides.
    Defer,
    /// Do not record.
    Deny,
    /// Record.
    Accept,
    /// Record, and mark the spans as debug; implies accept.
    Debug,
}

impl Sampling {
    /// Whether spans of this trace are recorded.
    pub fn is_sampled(self) -> bool {
        matches!(self, Sampling::Accept | Sampling::Debug)
    }
}

/// The B3 context of one span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// Shared by every span of the trace.
    pub trace_id: TraceId,
    /// This span.
    pub span_id: SpanId,
    /// The span this one was started from; absent on the root span of a trace.
    pub parent_id: Option<SpanId>,
    /// Whether the trace is recorded.
    pub sampling: Sampling,
}

impl TraceContext {
    /// The root span of a new trace, with a 128-bit trace id.
    pub fn new_root(sampling: Sampling) -> TraceContext {
        let span_id = SpanId::random();
        TraceContext {
            trace_id: TraceId::random(),
            span_id,
            parent_id: None,
            sampling,
        }
    }

    /// A new span under this one: same trace and sampling, a fresh span id.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            span_id: SpanId::random(),
            parent_id: Some(self.span_id),
            sampling: self.sampling,
        }
    }
}

impl TraceId {
    /// Parses 16 or 32 lowercase hex characters, not all zero.
    pub fn from_hex(hex: &str) -> Option<TraceId> {
        match hex.len() {
            16 => Some(TraceId::Short(NonZeroU64::new(parse_hex(hex)?)?)),
            32 => {
                // Checked: 32 bytes of text that is not all ASCII may split inside a char.
                let (high, low) = hex.split_at_checked(16)?;
                let (high, low) = (parse_hex(high)?, parse_hex(low)?);
                (high != 0 || low != 0).then_some(TraceId::Long(high, low))
            }
            _ => None,
        }
    }

    /// A random 128-bit id.
    pub fn random() -> TraceId {
        TraceId::Long(random_u64(), random_nonzero().get())
    }

    /// The low 64 bits (the whole id for a 64-bit one).
    pub fn low(self) -> u64 {
        match self {
            TraceId::Short(low) => low.get(),
            TraceId::Long(_, low) => low,
        }
    }
}

impl SpanId {
    /// Parses exactly 16 lowercase hex characters, not all zero.
    pub fn from_hex(hex: &str) -> Option<SpanId> {
        if hex.len() != 16 {
            return None;
        }
        NonZeroU64::new(parse_hex(hex)?).map(SpanId)
    }

    /// A random id.
    pub fn random() -> SpanId {
        SpanId(random_nonzero())
    }

    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// The id from a number; `None` for 0.
    pub fn new(id: u64) -> Option<SpanId> {
        NonZeroU64::new(id).map(SpanId)
    }
}

/// Lowercase hex only: B3 ids are "lower-hex", and anything else is rejected whole.
fn parse_hex(hex: &str) -> Option<u64> {
    let mut value = 0u64;
    for byte in hex.bytes() {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            _ => return None,
        };
        value = value << 4 | u64::from(digit);
    }
    Some(value)
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceId::Short(low) => write!(f, "{:016x}", low.get()),
            TraceId::Long(high, low) => write!(f, "{high:016x}{low:016x}"),
        }
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0.get())
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

thread_local! {
    /// The trace context of the span running on this thread, if any.
    static CURRENT: Cell<Option<TraceContext>> = const { Cell::new(None) };
}

/// The trace context of the span running now: the innermost traced call's inside a trace,
/// or the one set by [`with_context`] / [`in_context`].
pub fn current_context() -> Option<TraceContext> {
    CURRENT.try_with(Cell::get).ok().flatten()
}

/// Whether a trace context is current.
#[cfg_attr(not(runtime), allow(dead_code))]
#[inline]
pub(crate) fn in_trace() -> bool {
    CURRENT
        .try_with(|current| current.get().is_some())
        .unwrap_or(false)
}

/// Makes `context` current, returning the one it replaces.
pub(crate) fn replace_current(context: Option<TraceContext>) -> Option<TraceContext> {
    CURRENT
        .try_with(|current| current.replace(context))
        .ok()
        .flatten()
}

/// Runs `f` under `context` (for example one extracted from a request's headers): traced
/// calls inside are its children.
pub fn with_context<R>(context: TraceContext, f: impl FnOnce() -> R) -> R {
    let _restore = Restore(replace_current(Some(context)));
    f()
}

/// Puts back the context it holds when dropped, also by unwinding.
struct Restore(Option<TraceContext>);

impl Drop for Restore {
    fn drop(&mut self) {
        replace_current(self.0);
    }
}

pin_project_lite::pin_project! {
    /// A future polled under a trace context: see [`in_context`].
    #[must_use = "futures do nothing unless polled"]
    pub struct InContext<F> {
        #[pin]
        inner: F,
        context: Option<TraceContext>,
    }
}

/// Polls `future` under `context` (`None`: under no context), however the runtime moves it.
pub fn in_context<F: std::future::Future>(
    context: Option<TraceContext>,
    future: F,
) -> InContext<F> {
    InContext {
        inner: future,
        context,
    }
}

/// Polls `future` under the context current now. A traced async fn's span opens at its first
/// poll, so a future handed to `tokio::spawn` starts outside the spawner's trace unless it
/// carries the context along: `tokio::spawn(in_current_context(traced()))`.
pub fn in_current_context<F: std::future::Future>(future: F) -> InContext<F> {
    in_context(current_context(), future)
}

impl<F: std::future::Future> std::future::Future for InContext<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let _restore = Restore(replace_current(*this.context));
        this.inner.poll(cx)
    }
}

thread_local! {
    /// splitmix64 state, seeded once per thread from the OS-seeded keys of `RandomState`.
    static RANDOM: Cell<u64> = Cell::new(RandomState::new().hash_one(0u8));
}

/// Ids need to be unique, not secret: splitmix64 per thread.
fn random_u64() -> u64 {
    RANDOM.with(|state| {
        let next = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

fn random_nonzero() -> NonZeroU64 {
    loop {
        if let Some(id) = NonZeroU64::new(random_u64()) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_the_right_length_in_bytes_but_not_ascii_are_rejected() {
        // 32 bytes, with a two-byte char across the middle (found by fuzzing the viewer).
        let hex = "463ac35c9f6413a\u{31e}d48485a3953bb61";
        assert_eq!(hex.len(), 32);
        assert_eq!(TraceId::from_hex(hex), None);
        assert_eq!(TraceId::from_hex("463ac35c9f6413\u{31e}"), None);
        assert_eq!(SpanId::from_hex("463ac35c9f6413\u{31e}"), None);
    }

    #[test]
    fn ids_round_trip_through_hex_and_keep_their_width() {
        for hex in [
            "463ac35c9f6413ad",
            "463ac35c9f6413ad48485a3953bb6124",
            "0000000000000001",
        ] {
            assert_eq!(TraceId::from_hex(hex).unwrap().to_string(), hex);
        }
        assert_eq!(
            SpanId::from_hex("a2fb4a1d1a96d312").unwrap().to_string(),
            "a2fb4a1d1a96d312"
        );
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "463ac35c9f6413a",
            "463AC35C9F6413AD",
            "0000000000000000",
            "00000000000000000000000000000000",
            "463ac35c9f6413ad4",
            "463ac35c9f6413a-",
            "+63ac35c9f6413ad",
        ] {
            assert_eq!(TraceId::from_hex(bad), None, "{bad}");
        }
        assert_eq!(SpanId::from_hex("463ac35c9f6413ad48485a3953bb6124"), None);
        assert_eq!(SpanId::from_hex("0000000000000000"), None);
    }

    #[test]
    fn children_share_the_trace_and_point_to_their_parent() {
        let root = TraceContext::new_root(Sampling::Accept);
        let child = root.child();
        assert_eq!(child.trace_id, root.trace_id);
        assert_eq!(child.parent_id, Some(root.span_id));
        assert_ne!(child.span_id, root.span_id);
        assert_eq!(child.sampling, Sampling::Accept);
        assert_eq!(root.parent_id, None);
    }
}
