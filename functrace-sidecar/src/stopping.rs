//! The future a connection's task waits on, beside the connection, for the sidecar to stop.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::sync::watch;

/// Resolves once the sidecar stops (never, should the sender be gone without saying so).
pub fn stopping(stop: watch::Receiver<bool>) -> OnChange<impl Future<Output = ()>> {
    // Unconstrained: out of its task's coop budget, tokio's wait would end its poll without
    // registering the waker (only waking it), which `OnChange` then would not poll again.
    let seen = stop.clone();
    let wait = tokio::task::unconstrained(async move {
        let mut stop = stop;
        if stop.wait_for(|&stopped| stopped).await.is_err() {
            std::future::pending::<()>().await;
        }
    });
    on_change(seen, wait)
}

/// `wait`, polled only when `seen`'s channel has a value it has not seen, or the task's waker
/// is not the one `wait` was last polled with. `wait` must leave that waker registered with
/// the channel whenever it is pending.
///
/// A connection's task polls its stop beside the connection at every wake-up, a few times per
/// request; polling tokio's `wait_for` costs some 250 instructions each time (its coop budget
/// and its `Notify`'s lock: 2.7% of an HTTP/1.1 request, `benches/callgrind.sh`). Between
/// changes, the waker `wait` registered at its last poll still stands, so the poll can end at
/// the version check, one atomic load.
fn on_change<F: Future>(seen: watch::Receiver<bool>, wait: F) -> OnChange<F> {
    OnChange {
        seen,
        waker: None,
        wait,
    }
}

pin_project_lite::pin_project! {
    pub struct OnChange<F> {
        seen: watch::Receiver<bool>,
        waker: Option<Waker>,
        #[pin]
        wait: F,
    }
}

impl<F: Future> Future for OnChange<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let same_waker = this
            .waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()));
        // `Err`: the sender is gone, which `wait` reads for itself.
        if same_waker && matches!(this.seen.has_changed(), Ok(false)) {
            return Poll::Pending;
        }
        if !same_waker {
            *this.waker = Some(cx.waker().clone());
        }
        this.wait.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    use super::*;

    /// A future that counts its polls and never ends.
    fn counted(polls: &Arc<AtomicUsize>) -> impl Future<Output = ()> {
        let polls = polls.clone();
        poll_fn(move |_| {
            polls.fetch_add(1, Ordering::Relaxed);
            Poll::Pending
        })
    }

    struct NoWake;
    impl Wake for NoWake {
        fn wake(self: Arc<Self>) {}
    }

    #[test]
    fn the_wait_is_polled_again_only_after_a_change_or_with_a_new_waker() {
        let (stop, seen) = watch::channel(false);
        let polls = Arc::new(AtomicUsize::new(0));
        let mut future = Box::pin(on_change(seen, counted(&polls)));
        let waker = Waker::from(Arc::new(NoWake));
        let mut cx = Context::from_waker(&waker);
        for _ in 0..10 {
            assert!(future.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::Relaxed), 1, "the first poll only");
        let other = Waker::from(Arc::new(NoWake));
        assert!(future
            .as_mut()
            .poll(&mut Context::from_waker(&other))
            .is_pending());
        assert_eq!(polls.load(Ordering::Relaxed), 2, "a new waker");
        stop.send(true).unwrap();
        for _ in 0..3 {
            assert!(future
                .as_mut()
                .poll(&mut Context::from_waker(&other))
                .is_pending());
        }
        assert_eq!(
            polls.load(Ordering::Relaxed),
            5,
            "every poll after the change"
        );
    }

    #[tokio::test]
    async fn stopping_ends_a_task_that_other_things_woke_many_times_before() {
        let (stop, stopped) = watch::channel(false);
        let (poke, mut poked) = tokio::sync::mpsc::unbounded_channel::<()>();
        let (heard, mut was_heard) = tokio::sync::mpsc::unbounded_channel::<()>();
        let task = tokio::spawn(async move {
            let waiting = stopping(stopped);
            tokio::pin!(waiting);
            let mut wakeups = 0;
            loop {
                tokio::select! {
                    () = &mut waiting => return wakeups,
                    Some(()) = poked.recv() => {
                        wakeups += 1;
                        heard.send(()).unwrap();
                    }
                }
            }
        });
        for _ in 0..5 {
            poke.send(()).unwrap();
            was_heard.recv().await.unwrap();
        }
        stop.send(true).unwrap();
        // A bound on a failure, not a wait for success: the task ends as soon as it is woken.
        let wakeups = tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .expect("the stop ends the task")
            .unwrap();
        assert_eq!(wakeups, 5);
    }

    #[tokio::test]
    async fn stopping_first_polled_out_of_the_task_s_budget_still_hears_the_stop() {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let waiting = stopping(stopped);
            tokio::pin!(waiting);
            poll_fn(|cx| {
                // The task's coop budget spent, then the stop's first poll, in one poll.
                for _ in 0..1000 {
                    let _ = std::pin::pin!(tokio::task::consume_budget()).poll(cx);
                }
                assert!(waiting.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
            waiting.await;
        });
        // Until the task has been polled again after its self-wake, and waits on the stop alone.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        stop.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .expect("the stop ends the task")
            .unwrap();
    }

    #[tokio::test]
    async fn stopping_ends_at_once_when_the_sidecar_has_stopped_already() {
        let (stop, stopped) = watch::channel(false);
        stop.send(true).unwrap();
        stopping(stopped).await;
    }

    #[tokio::test]
    async fn stopping_never_ends_when_the_sender_is_gone_without_a_stop() {
        let (stop, stopped) = watch::channel(false);
        drop(stop);
        let mut waiting = Box::pin(stopping(stopped));
        for _ in 0..3 {
            assert!(poll_fn(|cx| Poll::Ready(waiting.as_mut().poll(cx)))
                .await
                .is_pending());
        }
    }
}
