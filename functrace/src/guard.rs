//! The sync side: a guard that a traced fn opens as its first statement.

use crate::call::{self, Call};
use crate::context::{with_local, Root};
use crate::line::Exit;

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
        Guard {
            active: call::enter(name, Root::Sync).map(|(call, _parent)| call),
        }
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        if let Some(call) = self.active.take() {
            let how = if std::thread::panicking() {
                Exit::Panicked
            } else {
                Exit::Returned
            };
            with_local(|local| {
                local.replace(call.frame.parent());
                call.exit(local, how);
            });
        }
    }
}
