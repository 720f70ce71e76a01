//! The sync side: a guard that a traced fn opens as its first statement.

use crate::call::{self, Call};
use crate::context::{with_local, Root};
use crate::line::{Detail, Exit};
use crate::trace_context;
use std::fmt;

/// Prints the enter line when created and the exit line when dropped: on return, `?`, early
/// `return`, and unwinding (then marked `(panicked)`). Restores the caller's frame on drop.
#[must_use = "the call is traced until the guard is dropped"]
pub struct Guard {
    active: Option<Call>,
}

impl Guard {
    /// Enters the traced fn `name` (its full path).
    #[inline]
    pub fn enter(name: &'static str) -> Guard {
        Guard::entered(name, Detail::None)
    }

    /// Enters the traced fn `name`, showing its arguments (the `args` option).
    pub fn enter_args(name: &'static str, args: fmt::Arguments<'_>) -> Guard {
        Guard::entered(name, Detail::Format(args))
    }

    #[inline]
    fn entered(name: &'static str, args: Detail<'_>) -> Guard {
        Guard {
            active: call::enter(name, args, Root::Sync).map(|(call, _parent)| call),
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

    fn leave(&mut self, note: Detail<'_>, how: Exit) {
        if let Some(call) = self.active.take() {
            if let Some(span) = &call.span {
                trace_context::replace_current(span.outer);
            }
            with_local(|local| {
                local.replace(call.frame.parent());
                call.exit(local, note, how);
            });
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
