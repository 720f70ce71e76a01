//! The sync side: a guard that a traced fn opens as its first statement.

use crate::call::{self, Call};
use crate::filter::Callsite;
use crate::frame::Frame;
use crate::line::{Detail, Exit};
use crate::local::with_local;
use crate::trace_context;
use std::fmt;

/// Prints the enter line when created and the exit line when dropped: on return, `?`, early
/// `return`, and unwinding (then marked `(panicked)`). Restores the caller's frame on drop.
#[must_use = "the call is traced until the guard is dropped"]
pub struct Guard {
    /// The call, and the frame it replaced.
    active: Option<(Call, Option<Frame>)>,
}

impl Guard {
    /// Enters the traced fn of `site`.
    #[inline]
    pub fn enter(site: &'static Callsite) -> Guard {
        Guard::entered(site, Detail::None)
    }

    /// Enters the traced fn of `site`, showing its arguments (the `args` option).
    pub fn enter_args(site: &'static Callsite, args: fmt::Arguments<'_>) -> Guard {
        Guard::entered(site, Detail::Format(args))
    }

    #[inline]
    fn entered(site: &'static Callsite, args: Detail<'_>) -> Guard {
        Guard {
            active: call::enter(site, args, |local| local.enter_sync()),
        }
    }

    /// Leaves with the returned value on the exit line (the `ret` option: `= 42`).
    pub fn returned(mut self, note: fmt::Arguments<'_>) {
        self.leave(Detail::Format(note), Exit::Returned);
    }

    /// Leaves with the `Err` the fn returned (the `err` option: `Err(...)` on the exit line,
    /// the span's error).
    pub fn failed(mut self, error: fmt::Arguments<'_>) {
        self.leave(Detail::Failed(error), Exit::Returned);
    }

    #[inline]
    fn leave(&mut self, note: Detail<'_>, how: Exit) {
        // Read in place: moving the call out would copy it.
        if let Some((call, caller)) = &self.active {
            if let Some(span) = &call.span {
                trace_context::replace_current(span.outer());
            }
            with_local(|local| {
                local.replace(*caller);
                call.exit(local, note, how);
            });
            self.active = None;
        }
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        if self.active.is_some() {
            let how = if std::thread::panicking() {
                Exit::Panicked
            } else {
                Exit::Returned
            };
            self.leave(Detail::None, how);
        }
    }
}
