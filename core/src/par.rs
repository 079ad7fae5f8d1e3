//! The only place that knows whether rayon is there: with the `parallel` feature (native)
//! these helpers fan out over the thread pool, without it (wasm32) they run in order. Both
//! give the same results, element for element.

#[cfg(feature = "parallel")]
use rayon::prelude::*;

/// Calls `f(start, chunk)` for consecutive chunks of `slice` of `chunk_len` elements.
pub(crate) fn for_each_chunk_mut<T, F>(slice: &mut [T], chunk_len: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync + Send,
{
    let chunk_len = chunk_len.max(1);
    #[cfg(feature = "parallel")]
    slice
        .par_chunks_mut(chunk_len)
        .enumerate()
        .for_each(|(i, c)| f(i * chunk_len, c));
    #[cfg(not(feature = "parallel"))]
    slice
        .chunks_mut(chunk_len)
        .enumerate()
        .for_each(|(i, c)| f(i * chunk_len, c));
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

/// Maps `f` over `items`, which it may change, keeping their order.
pub(crate) fn map_mut<T, R, F>(items: &mut [T], f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(&mut T) -> R + Sync + Send,
{
    #[cfg(feature = "parallel")]
    return items.par_iter_mut().map(f).collect();
    #[cfg(not(feature = "parallel"))]
    return items.iter_mut().map(f).collect();
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
