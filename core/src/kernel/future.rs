//! Running futures side by side on the current task: wasm has one thread and core no executor
//! crate, so concurrent storage reads are joined by hand.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

/// Runs two futures concurrently on the current task (Workers sends both KV reads at once;
/// core has no executor crate) and returns both outputs.
pub async fn join2<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = pin!(a);
    let mut b = pin!(b);
    let mut out_a = None;
    let mut out_b = None;
    poll_fn(move |cx| {
        if out_a.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                out_a = Some(v);
            }
        }
        if out_b.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                out_b = Some(v);
            }
        }
        match (out_a.take(), out_b.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                out_a = x;
                out_b = y;
                Poll::Pending
            }
        }
    })
    .await
}

/// Runs every future of `futures` concurrently on the current task and returns their outputs
/// in order. A future that finished is not polled again.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(move |cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(outs.iter_mut().filter_map(Option::take).collect())
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::task::Poll;

    use futures_executor::block_on;

    use super::*;

    /// A future that is pending `n` times (waking itself) before yielding `v`.
    struct After<T> {
        n: Cell<u32>,
        v: Cell<Option<T>>,
        polls: std::rc::Rc<Cell<u32>>,
    }

    impl<T> Future for After<T> {
        type Output = T;
        fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<T> {
            self.polls.set(self.polls.get() + 1);
            if self.n.get() == 0 {
                match self.v.take() {
                    Some(v) => Poll::Ready(v),
                    None => panic!("polled after completion"),
                }
            } else {
                self.n.set(self.n.get() - 1);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    #[test]
    fn join_all_polls_each_until_it_finishes_and_keeps_the_order() {
        let polls = std::rc::Rc::new(Cell::new(0));
        let after = |n: u32, v: u32| After {
            n: Cell::new(n),
            v: Cell::new(Some(v)),
            polls: polls.clone(),
        };
        let outs = block_on(join_all(vec![after(2, 10), after(0, 20), after(1, 30)]));
        assert_eq!(outs, vec![10, 20, 30]);
        // 3 + 1 + 2 polls: each until ready, none after.
        assert_eq!(polls.get(), 6);
        assert!(block_on(join_all(Vec::<After<u32>>::new())).is_empty());
    }

    #[test]
    fn join2_polls_both_until_both_finish_and_never_after() {
        let (pa, pb) = (
            std::rc::Rc::new(Cell::new(0)),
            std::rc::Rc::new(Cell::new(0)),
        );
        let a = After {
            n: Cell::new(0),
            v: Cell::new(Some(1)),
            polls: pa.clone(),
        };
        let b = After {
            n: Cell::new(3),
            v: Cell::new(Some("b")),
            polls: pb.clone(),
        };
        assert_eq!(block_on(join2(a, b)), (1, "b"));
        assert_eq!((pa.get(), pb.get()), (1, 4));
    }
}
