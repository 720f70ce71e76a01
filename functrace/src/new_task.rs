//! A unit of work with an id of its own: [`in_new_task`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

#[cfg(runtime)]
type Unit = Option<crate::frame::Frame>;
#[cfg(not(runtime))]
type Unit = ();

pin_project_lite::pin_project! {
    /// A future whose traced calls print under an id of their own: see [`in_new_task`].
    #[must_use = "futures do nothing unless polled"]
    pub struct InNewTask<F> {
        #[pin]
        inner: F,
        unit: Unit,
    }
}

/// Polls `future` as a task of its own: the traced calls it makes print under a new id
/// (taken at its first poll) from depth 1, as in a spawned task, even when it runs inside
/// another task or traced call. For units of work that share a task, such as the requests
/// of one keep-alive connection: `functrace-mesh`'s server layers serve each request this way.
/// Without the `trace` feature it only polls `future`.
pub fn in_new_task<F: Future>(future: F) -> InNewTask<F> {
    InNewTask {
        inner: future,
        unit: Unit::default(),
    }
}

impl<F: Future> Future for InNewTask<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        #[cfg(runtime)]
        let _current = unit::Current::install(this.unit);
        this.inner.poll(cx)
    }
}

#[cfg(runtime)]
mod unit {
    use crate::frame::{Frame, Label};
    use crate::local::with_local;
    use crate::task_ids;

    /// The unit's frame made current for one poll; the previous one put back on drop (also by
    /// unwinding), with what the poll changed in the unit's frame kept.
    pub struct Current<'a> {
        unit: &'a mut Option<Frame>,
        previous: Option<Frame>,
    }

    impl Current<'_> {
        pub fn install(unit: &mut Option<Frame>) -> Current<'_> {
            let frame = *unit.get_or_insert_with(|| {
                let label = Label::task(task_ids::next_task_id());
                Frame::unit(label, task_ids::tokio_task())
            });
            let previous = with_local(|local| local.replace(Some(frame))).flatten();
            Current { unit, previous }
        }
    }

    impl Drop for Current<'_> {
        fn drop(&mut self) {
            if let Some(Some(own)) = with_local(|local| local.replace(self.previous)) {
                *self.unit = Some(own);
            }
        }
    }
}
