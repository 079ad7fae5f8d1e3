//! Loading and error notices.

use yew::prelude::*;

use crate::api::ApiError;

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
}

/// An error, in words.
#[component]
pub fn ErrorBox(props: &ErrorProps) -> Html {
    html! {
        <div class="error" role="alert">
            <strong>{props.doing.clone()}{": "}</strong>{props.error.message.clone()}
        </div>
    }
}
