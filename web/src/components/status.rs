//! Loading and error notices.

use yew::prelude::*;

use yew_router::prelude::*;

use crate::api::{ApiError, problem_code};
use crate::app::Route;

/// Props of [`Loading`].
#[derive(Properties, PartialEq)]
pub struct LoadingProps {
    /// What is loading.
    #[prop_or(AttrValue::Static("Loading…"))]
    pub what: AttrValue,
}

/// A loading notice; it fades in after 200 ms, so quick loads do not flash.
#[component]
pub fn Loading(props: &LoadingProps) -> Html {
    html! {
        <p class="loading" role="status" aria-live="polite"><span class="spinner" aria-hidden="true"></span>{props.what.clone()}</p>
    }
}

/// Props of [`ErrorBox`].
#[derive(Properties, PartialEq)]
pub struct ErrorProps {
    /// The error.
    pub error: ApiError,
    /// What was being done.
    #[prop_or(AttrValue::Static("Could not load this page"))]
    pub doing: AttrValue,
    /// Sends the failed request again; offered when a retry can help (no answer from the
    /// server, or a failure of the server's own).
    #[prop_or_default]
    pub retry: Option<Callback<MouseEvent>>,
    /// Whether the request is being sent again: the button stays (it may have the focus) and
    /// says so.
    #[prop_or_default]
    pub retrying: bool,
}

/// Whether asking again may succeed: the server did not answer (it is down or unreachable),
/// or failed on its side (5xx), or asked to be asked later (429).
pub fn retryable(e: &ApiError) -> bool {
    e.status == 0 || e.status == 429 || e.status >= 500
}

/// An error, in words; the server's own answer (its problem kind and detail, written for API
/// callers) folded away beneath, and a way on when there is one in the app: a Retry button
/// when asking again may help.
#[component]
pub fn ErrorBox(props: &ErrorProps) -> Html {
    let e = &props.error;
    html! {
        <div class="error" role="alert">
            <strong>{props.doing.clone()}{": "}</strong>{e.message.clone()}
            if e.code() == Some("unknown-run") {
                {" "}<Link<Route> to={Route::Runs}>{"Go to the runs"}</Link<Route>>
            }
            if let (Some(retry), true) = (&props.retry, retryable(e)) {
                <p class="retry">
                    if props.retrying {
                        <button type="button" aria-disabled="true">{"Retrying…"}</button>
                    } else {
                        <button type="button" onclick={retry.clone()}>{"Retry"}</button>
                    }
                </p>
            }
            if let Some(p) = &e.problem {
                <details class="problem">
                    <summary>{"The server's answer"}</summary>
                    <p><code>{format!("{} {}", p.status, problem_code(p))}</code>{" "}{p.detail.clone()}</p>
                </details>
            }
        </div>
    }
}
