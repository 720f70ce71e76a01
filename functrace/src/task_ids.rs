//! Display ids: of threads and tokio tasks (small, sequential in order of first appearance),
//! and of the branches of a task (`05.2`), with the count of roots open in each task.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

static NEXT_TASK_ID: AtomicU32 = AtomicU32::new(1);

/// A new display id.
pub(crate) fn next_task_id() -> u32 {
    NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed)
}

/// Per-task counters, in a fixed-size table indexed by display id so that a server spawning
/// millions of tasks does not grow it. Each word holds its owner (the display id) in its high
/// half: a slot is taken over by the task `SLOTS` ids later, and a reader that finds another
/// owner sees a fresh task.
///
/// A task's counters change only where the task runs, which is one thread at a time (the
/// runtime's hand-over of a task between workers orders the accesses), so they are read and
/// written with plain loads and stores rather than read-modify-write operations. Only a
/// takeover of the slot by a task `SLOTS` ids later, or a root future that an executor other
/// than tokio's moves to another thread, can race with them: at worst a count is lost, and a
/// branch id is given or missed once.
struct Slot {
    /// Owner, and how many traced futures started with no traced caller are open in it.
    open_roots: AtomicU64,
    /// Owner, and the number the next branch of the task gets.
    next_branch: AtomicU64,
}

const SLOTS: usize = 4096;
/// The first branch of a task is the task itself; the one that overlaps it is `.2`.
const FIRST_BRANCH: u32 = 2;

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    open_roots: AtomicU64::new(0),
    next_branch: AtomicU64::new(0),
};
static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];

fn slot(task: u32) -> &'static Slot {
    &TABLE[task as usize % SLOTS]
}

fn owner(word: u64) -> u32 {
    (word >> 32) as u32
}

fn word(task: u32, count: u32) -> u64 {
    u64::from(task) << 32 | u64::from(count)
}

/// How many roots are open in `task`.
#[inline]
pub(crate) fn open_roots(task: u32) -> u32 {
    let word = slot(task).open_roots.load(Ordering::Relaxed);
    if owner(word) == task {
        word as u32
    } else {
        0
    }
}

/// Counts a root opening in `task`; returns how many were open before it.
pub(crate) fn root_opened(task: u32) -> u32 {
    let open = open_roots(task);
    slot(task)
        .open_roots
        .store(word(task, open + 1), Ordering::Relaxed);
    open
}

/// Counts a root of `task` closing.
pub(crate) fn root_closed(task: u32) {
    let open = open_roots(task);
    if open > 0 {
        slot(task)
            .open_roots
            .store(word(task, open - 1), Ordering::Relaxed);
    }
}

/// A new branch number of `task`: 2, 3, ...
pub(crate) fn next_branch(task: u32) -> u32 {
    let next = slot(task).next_branch.load(Ordering::Relaxed);
    let branch = match owner(next) == task {
        true => next as u32,
        false => FIRST_BRANCH,
    };
    slot(task)
        .next_branch
        .store(word(task, branch + 1), Ordering::Relaxed);
    branch
}

/// The tokio task running now, as tokio's own sequence number (0: none).
#[cfg(feature = "tokio")]
#[inline]
pub(crate) fn tokio_task() -> u64 {
    tokio::task::try_id().map_or(0, tokio_ids::number)
}

#[cfg(not(feature = "tokio"))]
#[inline]
pub(crate) fn tokio_task() -> u64 {
    0
}

/// The display id of the tokio task numbered `number` (see [`tokio_task`]).
#[cfg(feature = "tokio")]
pub(crate) fn tokio_display_id(number: u64) -> u32 {
    tokio_ids::display_id(number)
}

#[cfg(not(feature = "tokio"))]
pub(crate) fn tokio_display_id(_: u64) -> u32 {
    next_task_id()
}

/// Display ids of tokio tasks, in a fixed-size table: tokio ids are sequential, so a slot is
/// only reused by a task spawned `SLOTS` tasks later, and only an entry that old (still running
/// and tracing after that many newer tasks) can be forgotten and get a fresh display id. Each
/// thread remembers the last task it looked up, so a task's calls do not take the lock every
/// time.
#[cfg(feature = "tokio")]
mod tokio_ids {
    use std::cell::Cell;
    use std::hash::{Hash, Hasher};
    use std::sync::{Mutex, PoisonError};
    use tokio::task::Id;

    const SLOTS: usize = 4096;
    static TABLE: Mutex<Vec<Option<(u64, u32)>>> = Mutex::new(Vec::new());

    thread_local! {
        static LAST: Cell<Option<(u64, u32)>> = const { Cell::new(None) };
    }

    pub fn display_id(number: u64) -> u32 {
        if let Ok(Some((last, display))) = LAST.try_with(Cell::get) {
            if last == number {
                return display;
            }
        }
        let display = look_up(number);
        let _ = LAST.try_with(|last| last.set(Some((number, display))));
        display
    }

    fn look_up(number: u64) -> u32 {
        let slot = (number % SLOTS as u64) as usize;
        let mut table = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
        if table.is_empty() {
            table.resize(SLOTS, None);
        }
        match table[slot] {
            Some((known, display)) if known == number => display,
            _ => {
                let display = super::next_task_id();
                table[slot] = Some((number, display));
                display
            }
        }
    }

    /// tokio's `Id` is a sequence number (from 1) that it hashes as one `u64`; keep that number.
    pub fn number(id: Id) -> u64 {
        #[derive(Default)]
        struct Number(u64);
        impl Hasher for Number {
            fn finish(&self) -> u64 {
                self.0
            }
            fn write(&mut self, bytes: &[u8]) {
                for b in bytes {
                    self.0 = self.0.rotate_left(8) ^ u64::from(*b);
                }
            }
            fn write_u64(&mut self, n: u64) {
                self.0 = n;
            }
        }
        let mut number = Number::default();
        id.hash(&mut number);
        number.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_counted_per_task_and_a_new_owner_starts_afresh() {
        let task = next_task_id();
        assert_eq!(open_roots(task), 0);
        assert_eq!(root_opened(task), 0);
        assert_eq!(root_opened(task), 1);
        assert_eq!(open_roots(task), 2);
        root_closed(task);
        root_closed(task);
        root_closed(task);
        assert_eq!(open_roots(task), 0, "never below zero");
        let heir = task + SLOTS as u32;
        assert_eq!(root_opened(task), 0);
        assert_eq!(open_roots(heir), 0, "another task's slot reads as empty");
        assert_eq!(root_opened(heir), 0);
        assert_eq!(open_roots(task), 0, "taken over");
    }

    #[test]
    fn branches_count_from_two_per_task() {
        let (a, b) = (next_task_id(), next_task_id());
        assert_eq!(next_branch(a), 2);
        assert_eq!(next_branch(a), 3);
        assert_eq!(next_branch(b), 2);
        assert_eq!(next_branch(a), 4);
    }
}
