//! [`FetchState`] and [`use_fetch`]: load something from the API when its inputs change,
//! keeping only the answer to the latest request; [`Fetch::retry`] asks again.

use std::cell::Cell;
use std::future::Future;
use std::ops::Deref;
use std::rc::Rc;

use yew::prelude::*;

use crate::api::{ApiError, ApiResult};

/// Where a fetch is.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchState<T> {
    /// Waiting for the reply.
    Loading,
    /// The reply.
    Ready(T),
    /// What went wrong.
    Failed(ApiError),
}

/// A fetch's state, and the way to send its request again.
pub struct Fetch<T> {
    state: UseStateHandle<FetchState<Rc<T>>>,
    attempt: UseStateHandle<u64>,
    retrying: UseStateHandle<bool>,
}

impl<T> Fetch<T> {
    /// A callback that sends the request again (after an outage, say).
    pub fn retry<E>(&self) -> Callback<E> {
        let attempt = self.attempt.clone();
        Callback::from(move |_: E| attempt.set(*attempt + 1))
    }

    /// Whether the request is being sent again. Meanwhile the state stays `Failed`, so that
    /// the error (and its Retry button, which may have the focus) stays in place until the
    /// answer comes.
    pub fn retrying(&self) -> bool {
        *self.retrying
    }
}

impl<T> Deref for Fetch<T> {
    type Target = FetchState<Rc<T>>;

    fn deref(&self) -> &Self::Target {
        &self.state
    }
}

/// Runs `load(deps)` whenever `deps` changes, or when [`Fetch::retry`] is called; answers to
/// older requests are dropped.
#[hook]
pub fn use_fetch<T, D, F, Fut>(deps: D, load: F) -> Fetch<T>
where
    T: 'static,
    D: PartialEq + Clone + 'static,
    F: Fn(D) -> Fut + 'static,
    Fut: Future<Output = ApiResult<T>> + 'static,
{
    let state = use_state(|| FetchState::Loading);
    let attempt = use_state(|| 0u64);
    let retrying = use_state(|| false);
    let generation = use_memo((), |_| Cell::new(0u64));
    // The attempt the last request was sent for: another one with the same inputs is a retry.
    let sent_for = use_memo((), |_| Cell::new(0u64));
    {
        let (state, retrying) = (state.clone(), retrying.clone());
        use_effect_with((deps, *attempt), move |(deps, attempt)| {
            let this = generation.get() + 1;
            generation.set(this);
            let retry = sent_for.get() != *attempt && matches!(*state, FetchState::Failed(_));
            sent_for.set(*attempt);
            if retry {
                retrying.set(true);
            } else {
                state.set(FetchState::Loading);
            }
            let fut = load(deps.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let result = fut.await;
                if generation.get() == this {
                    state.set(match result {
                        Ok(v) => FetchState::Ready(Rc::new(v)),
                        Err(e) => FetchState::Failed(e),
                    });
                    retrying.set(false);
                }
            });
        });
    }
    Fetch {
        state,
        attempt,
        retrying,
    }
}
