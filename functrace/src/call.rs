//! One traced call: entering (push a frame, print `->`) and leaving (print `<-`).
//! Shared by the sync [`Guard`](crate::guard::Guard) and the async
//! [`Traced`](crate::future::Traced) future.

use crate::clock;
use crate::context::{with_local, Frame, Local, Root};
use crate::line::{self, Detail, Exit, TaskLabel};
use crate::output;

/// A call that printed its enter line and owes an exit line.
pub(crate) struct Call {
    name: &'static str,
    pub frame: Frame,
    /// `None` when the sink discards lines: then no label is made and no clock is read.
    printed: Option<Printed>,
}

/// What the exit line needs from the enter line.
struct Printed {
    task: TaskLabel,
    start: u64,
}

/// Enters `name` under the thread's current frame (which it replaces; the previous frame is
/// returned for the caller to restore). `None` when tracing is muted.
#[inline]
pub(crate) fn enter(
    name: &'static str,
    args: Detail<'_>,
    root: Root,
) -> Option<(Call, Option<Frame>)> {
    // Muted: two atomic loads and out, without touching the thread's state.
    if output::muted() {
        return None;
    }
    with_local(|local| enter_with(local, name, args, root)).flatten()
}

#[inline]
fn enter_with(
    local: &Local,
    name: &'static str,
    args: Detail<'_>,
    root: Root,
) -> Option<(Call, Option<Frame>)> {
    local.with_sink(|sink| {
        let (frame, parent) = local.push(root);
        let printed = local.wants_lines().then(|| {
            let task = TaskLabel::new(frame.task);
            local.write(sink, |buf| line::enter(buf, &task, frame.depth, name, args));
            Printed {
                task,
                start: clock::now(),
            }
        });
        let call = Call {
            name,
            frame,
            printed,
        };
        (call, parent)
    })
}

impl Call {
    /// Prints the exit line. The current frame is the caller's business.
    #[inline]
    pub fn exit(&self, local: &Local, note: Detail<'_>, how: Exit) {
        if let Some(Printed { task, start }) = &self.printed {
            let elapsed = clock::nanos_since(*start);
            local.with_sink(|sink| {
                local.write(sink, |buf| {
                    let depth = self.frame.depth;
                    line::exit(buf, task, depth, self.name, elapsed, note, how)
                })
            });
        }
    }
}
