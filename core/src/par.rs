//! The only place that knows whether rayon is there: with the `parallel` feature (native)
//! these helpers fan out over the thread pool, without it (wasm32) they run in order. Both
//! give the same results, element for element.

#[cfg(feature = "parallel")]
use rayon::prelude::*;

/// How many threads the helpers below share work among (one without rayon).
pub(crate) fn threads() -> usize {
    #[cfg(feature = "parallel")]
    return rayon::current_num_threads().max(1);
    #[cfg(not(feature = "parallel"))]
    return 1;
}

/// Maps `f` over `items`, keeping their order.
pub(crate) fn map<T, R, F>(items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync + Send,
{
    #[cfg(feature = "parallel")]
    return items.par_iter().map(f).collect();
    #[cfg(not(feature = "parallel"))]
    return items.iter().map(f).collect();
}

/// Sorts in place (unstable; equal elements are identical for the types we sort).
pub(crate) fn sort<T: Ord + Send>(items: &mut [T]) {
    #[cfg(feature = "parallel")]
    items.par_sort_unstable();
    #[cfg(not(feature = "parallel"))]
    items.sort_unstable();
}

/// Calls `f` on every element.
pub(crate) fn for_each_mut<T: Send, F: Fn(&mut T) + Sync + Send>(items: &mut [T], f: F) {
    #[cfg(feature = "parallel")]
    items.par_iter_mut().for_each(f);
    #[cfg(not(feature = "parallel"))]
    items.iter_mut().for_each(f);
}

/// Runs two closures, in parallel when possible.
pub(crate) fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    #[cfg(feature = "parallel")]
    return rayon::join(a, b);
    #[cfg(not(feature = "parallel"))]
    return (a(), b());
}

/// Calls `work(i)` for every `i` in `0..n`, threads taking the next index as they come free,
/// and hands each result to `consume(i, result)` in index order, as soon as the results
/// before it have been consumed; no two calls of `consume` overlap. So the consumer sees the
/// work in order while it is fresh in some core's cache, instead of after all of it.
pub(crate) fn map_consume_in_order<R, W, C>(n: usize, work: W, consume: C)
where
    R: Send,
    W: Fn(usize) -> R + Sync,
    C: FnMut(usize, R) + Send,
{
    #[cfg(feature = "parallel")]
    {
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicUsize, Ordering};

        struct Queue<R> {
            /// The next index to consume.
            next: usize,
            /// Results done and not yet consumed, by index.
            done: Vec<Option<R>>,
            /// Whether some thread is consuming (it goes on while the next result is done).
            consuming: bool,
        }
        let taken = AtomicUsize::new(0);
        let queue = Mutex::new(Queue {
            next: 0,
            done: (0..n).map(|_| None).collect(),
            consuming: false,
        });
        let consume = Mutex::new(consume);
        let workers = rayon::current_num_threads().clamp(1, n.max(1));
        (0..workers).into_par_iter().for_each(|_| {
            loop {
                let i = taken.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let result = work(i);
                let mut q = queue.lock().expect("no panics while held");
                q.done[i] = Some(result);
                if q.consuming {
                    continue;
                }
                q.consuming = true;
                loop {
                    let at = q.next;
                    let Some(result) = q.done.get_mut(at).and_then(Option::take) else {
                        q.consuming = false;
                        break;
                    };
                    q.next += 1;
                    drop(q);
                    (consume.lock().expect("no panics while held"))(at, result);
                    q = queue.lock().expect("no panics while held");
                }
            }
        });
    }
    #[cfg(not(feature = "parallel"))]
    {
        let mut consume = consume;
        for i in 0..n {
            consume(i, work(i));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn results_are_consumed_once_each_in_order_never_two_at_once() {
        for n in [0, 1, 2, 3, 17, 200] {
            let worked = AtomicUsize::new(0);
            let busy = AtomicBool::new(false);
            let mut seen = Vec::new();
            map_consume_in_order(
                n,
                |i| {
                    // Uneven work, so that results are done out of order.
                    let spin = (i * 7919) % 13 * 2000;
                    let mut x = i as u64;
                    for k in 0..spin {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(k as u64));
                    }
                    worked.fetch_add(1, Ordering::Relaxed);
                    (i, x)
                },
                |i, (j, _)| {
                    assert!(!busy.swap(true, Ordering::SeqCst), "two consumers at once");
                    assert_eq!(i, j, "a result handed over with another's index");
                    seen.push(i);
                    busy.store(false, Ordering::SeqCst);
                },
            );
            assert_eq!(worked.load(Ordering::Relaxed), n);
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n = {n}");
        }
    }
}
