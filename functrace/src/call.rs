//! One traced call: entering (push a frame, print `->`) and leaving (print `<-`).
//! Shared by the sync [`Guard`](crate::guard::Guard) and the async
//! [`Traced`](crate::future::Traced) future.

use fastant::Instant;

use crate::context::{Frame, Local, Root};
use crate::line::{self, Exit};
use crate::output::count_dropped;

/// A call that printed its enter line and owes an exit line.
pub(crate) struct Call {
    name: &'static str,
    pub frame: Frame,
    /// `None` when the sink discards lines: then the clock is not read either.
    start: Option<Instant>,
}

/// Enters `name` under the thread's current frame (which it replaces; the previous frame is
/// returned for the caller to restore). `None` when tracing is muted.
#[inline]
pub(crate) fn enter(
    local: &Local,
    name: &'static str,
    root: Root,
) -> Option<(Call, Option<Frame>)> {
    let wants_lines = local.with_sink(|sink| sink.wants_lines())?;
    let (frame, parent) = local.push(root);
    let start = wants_lines.then(|| {
        write(local, |buf| line::enter(buf, frame, name));
        Instant::now()
    });
    Some((Call { name, frame, start }, parent))
}

impl Call {
    /// Prints the exit line. The current frame is the caller's business.
    #[inline]
    pub fn exit(&self, local: &Local, how: Exit) {
        if let Some(start) = self.start {
            let elapsed = Instant::now().saturating_duration_since(start);
            write(local, |buf| {
                line::exit(buf, self.frame, self.name, elapsed, how)
            });
        }
    }
}

/// Assembles a line in the thread's buffer and hands it to the sink in one piece.
#[inline]
fn write(local: &Local, assemble: impl FnOnce(&mut Vec<u8>)) {
    // Busy only if the sink itself called traced code while writing: drop that inner line.
    let Ok(mut buf) = local.line.try_borrow_mut() else {
        count_dropped();
        return;
    };
    assemble(&mut buf);
    let written = local.with_sink(|sink| sink.write_line(&buf).is_ok());
    if written == Some(false) {
        count_dropped();
    }
}
