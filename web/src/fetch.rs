//! [`FetchState`] and [`use_fetch`]: load something from the API when its inputs change,
//! keeping only the answer to the latest request.

use std::cell::Cell;
use std::future::Future;
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

/// Runs `load(deps)` whenever `deps` changes; answers to older requests are dropped.
#[hook]
pub fn use_fetch<T, D, F, Fut>(deps: D, load: F) -> UseStateHandle<FetchState<Rc<T>>>
where
    T: 'static,
    D: PartialEq + Clone + 'static,
    F: Fn(D) -> Fut + 'static,
    Fut: Future<Output = ApiResult<T>> + 'static,
{
    let state = use_state(|| FetchState::Loading);
    let generation = use_memo((), |_| Cell::new(0u64));
    {
        let state = state.clone();
        use_effect_with(deps, move |deps| {
            let this = generation.get() + 1;
            generation.set(this);
            state.set(FetchState::Loading);
            let fut = load(deps.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let result = fut.await;
                if generation.get() == this {
                    state.set(match result {
                        Ok(v) => FetchState::Ready(Rc::new(v)),
                        Err(e) => FetchState::Failed(e),
                    });
                }
            });
        });
    }
    state
}
