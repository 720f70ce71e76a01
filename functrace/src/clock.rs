//! The clock of exit lines: the CPU's cycle counter where it is usable (through `quanta`), read
//! raw on the traced path and scaled to nanoseconds only when the exit line is made.

use std::sync::OnceLock;

use quanta::Clock;

static CLOCK: OnceLock<Clock> = OnceLock::new();

#[inline]
fn clock() -> &'static Clock {
    CLOCK.get_or_init(Clock::new)
}

/// A raw reading, meaningful only to [`nanos_since`].
#[inline]
pub(crate) fn now() -> u64 {
    clock().raw()
}

/// Nanoseconds from `start` (a [`now`] reading) to now.
#[inline]
pub(crate) fn nanos_since(start: u64) -> u64 {
    let clock = clock();
    clock.delta_as_nanos(start, clock.raw())
}
