//! A connection limit that degrades rather than wedges: every connection is accepted (so the
//! kernel's backlog never fills); beyond the limit the oldest connection without a request
//! in flight is closed to make room, and with none such the new one is refused at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use crate::conn::Conn;

/// What a connection refused at the limit is told (where it speaks HTTP/1.1) before the close.
pub const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
    content-type: text/plain; charset=utf-8\r\n\
    x-functrace-reason: connection limit reached\r\n\
    connection: close\r\ncontent-length: 25\r\n\r\n\
    connection limit reached\n";

/// The open connections of one or more listeners, in the order they were accepted.
pub struct Limit {
    max: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    next: u64,
    connections: BTreeMap<u64, Entry>,
}

struct Entry {
    conn: Arc<Conn>,
    /// Dropped to close the connection: its task waits on the other end.
    _close: oneshot::Sender<()>,
}

/// A connection let in.
pub struct Admitted {
    pub slot: Slot,
    /// Resolves when the connection is to be closed to make room for another.
    pub closed: oneshot::Receiver<()>,
    /// Whether an idle connection was closed to make room for this one.
    pub shed: bool,
}

/// An admitted connection's place; dropping it gives the place back.
pub struct Slot {
    limit: Arc<Limit>,
    id: u64,
}

impl Limit {
    pub fn new(max: usize) -> Arc<Limit> {
        Arc::new(Limit {
            max,
            open: Mutex::default(),
        })
    }

    /// Admits `conn`, closing the oldest idle connection if the limit is reached; `None`
    /// when every open connection is busy.
    pub fn admit(self: &Arc<Limit>, conn: Arc<Conn>) -> Option<Admitted> {
        let mut open = self.lock();
        let shed = open.connections.len() >= self.max;
        if shed && !open.close_oldest_idle() {
            return None;
        }
        let id = open.next;
        open.next += 1;
        let (close, closed) = oneshot::channel();
        open.connections.insert(
            id,
            Entry {
                conn,
                _close: close,
            },
        );
        let slot = Slot {
            limit: self.clone(),
            id,
        };
        Some(Admitted { slot, closed, shed })
    }

    /// Closes the oldest idle connection, if there is one, to free its file descriptor.
    pub fn shed_one(&self) -> bool {
        self.lock().close_oldest_idle()
    }

    /// Whether a new connection would be refused now: every place taken by a busy one.
    pub fn is_full(&self) -> bool {
        let open = self.lock();
        open.connections.len() >= self.max
            && open.connections.values().all(|entry| !entry.conn.is_idle())
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Open {
    fn close_oldest_idle(&mut self) -> bool {
        let oldest_idle = self
            .connections
            .iter()
            .find(|(_, entry)| entry.conn.is_idle())
            .map(|(id, _)| *id);
        // Its sender drops, and its task closes it.
        oldest_idle.is_some_and(|id| self.connections.remove(&id).is_some())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limit.lock().connections.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_idle_connection_makes_room_and_busy_ones_refuse() {
        let limit = Limit::new(2);
        let (first, second) = (Conn::new(), Conn::new());
        let mut first_admitted = limit.admit(first.clone()).unwrap();
        let mut second_admitted = limit.admit(second.clone()).unwrap();
        assert!(!second_admitted.shed);
        let _busy = second.request();
        // The first is idle: it goes for the third.
        let third = Conn::new();
        let third_admitted = limit.admit(third.clone()).unwrap();
        assert!(third_admitted.shed);
        assert_eq!(
            first_admitted.closed.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        );
        assert_eq!(
            second_admitted.closed.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        );
        // Both open ones busy: a fourth is refused.
        let _busy_too = third.request();
        assert!(limit.is_full());
        assert!(limit.admit(Conn::new()).is_none());
    }

    #[test]
    fn the_refusal_is_one_whole_response() {
        let text = std::str::from_utf8(REFUSED).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }
}
