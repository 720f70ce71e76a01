//! Where a traced call stands: its id (task, and branch within the task) and its depth, and
//! how the next call under it is placed.
//!
//! Calls made one after another under the same caller share its id. A traced future that
//! starts while a sibling (another future started under the same caller, or another root of
//! the same task) is still open gets a branch id of the task (`05.2`), and so does everything
//! under it, so that every id's lines nest as a stack. A sync call under a caller with open
//! futures branches too: its lines would otherwise interleave with theirs at one depth.

use crate::task_ids;

/// A task's display id and the branch within it (0: the task itself): `05`, `05.2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label {
    pub task: u32,
    pub branch: u32,
}

impl Label {
    pub fn task(task: u32) -> Label {
        Label { task, branch: 0 }
    }

    fn new_branch(self) -> Label {
        Label {
            task: self.task,
            branch: task_ids::next_branch(self.task),
        }
    }
}

/// The position of a traced call, or of the root of a unit of work ([`in_new_task`], depth
/// 0, never printed).
///
/// [`in_new_task`]: crate::in_new_task
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    pub label: Label,
    pub depth: u32,
    /// Traced futures started under this frame and not finished yet.
    open: u32,
    /// The tokio task this frame's tree runs in (tokio's number; 0: none). A future first
    /// polled under the frame from another task (a `LocalSet`, or a current-thread runtime
    /// driven inside a traced call, polls its tasks there) is a root of that task instead.
    home: u64,
    /// Names the frame to the futures started under it; 0 until the first one.
    serial: u64,
}

/// Whom a traced future counts itself open with, to be uncounted when it ends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Parent {
    /// The frame with this serial.
    Frame(u64),
    /// The roots of this task.
    Root(u32),
}

impl Frame {
    /// The root frame of a unit of work: `label` at depth 0.
    pub fn unit(label: Label, home: u64) -> Frame {
        Frame {
            label,
            depth: 0,
            open: 0,
            home,
            serial: 0,
        }
    }

    fn child(self, label: Label) -> Frame {
        Frame {
            label,
            depth: self.depth + 1,
            open: 0,
            home: self.home,
            serial: 0,
        }
    }

    /// A call under this frame, sync or async: the same id, or a branch of it while a
    /// future started under this frame is open (a sync call too: its lines would otherwise
    /// interleave with the future's at one depth). A future is counted open only if it
    /// outlives its first poll (see [`Frame::count_open`]): one that completes there cannot
    /// overlap a sibling, since siblings are polled one after another.
    #[inline]
    pub fn call_under(self) -> Frame {
        let label = match self.open {
            0 => self.label,
            _ => self.label.new_branch(),
        };
        self.child(label)
    }

    /// A call with no traced caller (or, for a future, a caller of another task), in `task`
    /// (running in tokio task `home`): a branch of the task while one of its roots is open. A
    /// future is counted among the roots only if it outlives its first poll.
    #[inline]
    pub fn root(task: u32, home: u64) -> Frame {
        let label = match task_ids::open_roots(task) {
            0 => Label::task(task),
            _ => Label::task(task).new_branch(),
        };
        Frame::unit(label, home).child(label)
    }

    /// Whether a future first polled now, in tokio task `home`, starts under this frame.
    #[inline]
    pub fn hosts(&self, home: u64) -> bool {
        self.home == home
    }

    /// Counts open here a future started under this frame that outlived its first poll
    /// (`serial` names this frame from now on if nothing did yet).
    pub fn count_open(&mut self, serial: impl FnOnce() -> u64) -> Parent {
        self.open += 1;
        if self.serial == 0 {
            self.serial = serial();
        }
        Parent::Frame(self.serial)
    }

    /// Uncounts a finished future that started under the frame named `serial`, if this is it.
    pub fn future_ended(&mut self, serial: u64) {
        if self.serial == serial {
            self.open = self.open.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serials() -> impl FnMut() -> u64 {
        let mut next = 0;
        move || {
            next += 1;
            next
        }
    }

    #[test]
    fn futures_overlapping_under_one_caller_branch_and_sequential_ones_do_not() {
        let task = task_ids::next_task_id();
        let mut serial = serials();
        let mut caller = Frame::root(task, 0);
        assert_eq!((caller.label, caller.depth), (Label::task(task), 1));

        let first = caller.call_under();
        assert_eq!((first.label, first.depth), (Label::task(task), 2));
        // Done within its first poll: never counted, the next one is not a branch.
        assert_eq!(caller.call_under().label, Label::task(task));
        let first_parent = caller.count_open(&mut serial);
        let second = caller.call_under();
        assert_eq!(second.label, Label { task, branch: 2 });
        assert_eq!(second.depth, 2);
        let second_parent = caller.count_open(&mut serial);
        // A sync call while futures are open branches too.
        assert_eq!(caller.call_under().label, Label { task, branch: 3 });

        for parent in [first_parent, second_parent] {
            let Parent::Frame(serial) = parent else {
                panic!("child of a frame")
            };
            caller.future_ended(serial);
        }
        assert_eq!(
            caller.call_under().label,
            Label::task(task),
            "one after another"
        );
        assert_eq!(caller.call_under().label, Label::task(task));
        caller.count_open(&mut serial);
        assert_eq!(caller.call_under().label, Label { task, branch: 4 });
    }

    #[test]
    fn another_frame_does_not_uncount() {
        let task = task_ids::next_task_id();
        let mut serial = serials();
        let mut a = Frame::root(task, 0);
        let mut b = a.call_under();
        let parent = a.count_open(&mut serial);
        b.count_open(&mut serial);
        let Parent::Frame(of_a) = parent else {
            panic!()
        };
        b.future_ended(of_a);
        assert_eq!(b.call_under().label.branch, 2);
    }

    #[test]
    fn roots_of_one_task_branch_while_one_is_open() {
        let task = task_ids::next_task_id();
        let first = Frame::root(task, 0);
        assert_eq!(first.label, Label::task(task));
        task_ids::root_opened(task);
        assert_eq!(Frame::root(task, 0).label, Label { task, branch: 2 });
        let second = Frame::root(task, 0);
        assert_eq!(second.label, Label { task, branch: 3 });
        task_ids::root_opened(task);
        task_ids::root_closed(task);
        task_ids::root_closed(task);
        assert_eq!(Frame::root(task, 0).label, Label::task(task));
    }
}
