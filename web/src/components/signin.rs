//! The sign-in form, and [`RequireSession`], which shows it in place of a page that needs a
//! token.

use web_sys::HtmlInputElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api::{ApiError, Client};
use crate::app::Route;
use crate::components::status::ErrorBox;
use crate::session::{can_read, cannot_read, use_session};

/// Asks for a token, checks it with `GET /whoami`, and keeps it for the tab's life.
#[component]
pub fn SignIn() -> Html {
    crate::app::use_title("Sign in".into());
    let session = use_session();
    let input = use_node_ref();
    let error = use_state(|| session.dropped());
    let busy = use_state(|| false);
    let onsubmit = {
        let (session, input, error, busy) =
            (session.clone(), input.clone(), error.clone(), busy.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let token = input
                .cast::<HtmlInputElement>()
                .map(|i| i.value().trim().to_string())
                .unwrap_or_default();
            if token.is_empty() {
                error.set(Some(ApiError::new(
                    0,
                    "enter the access token an admin gave you",
                )));
                return;
            }
            let (session, error, busy, input) =
                (session.clone(), error.clone(), busy.clone(), input.clone());
            busy.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                match Client::new(token.clone()).whoami().await {
                    Ok(who) if can_read(&who) => session.sign_in(token, who),
                    // A token that may only send steps signs in to nothing here: every page
                    // would answer 403. Say so, and keep no token.
                    Ok(who) => {
                        error.set(Some(cannot_read(&who)));
                        if let Some(i) = input.cast::<HtmlInputElement>() {
                            i.set_value("");
                            let _ = i.focus();
                        }
                    }
                    Err(e) => {
                        error.set(Some(e));
                        // The disabled button lost the focus: give it to the token again.
                        if let Some(i) = input.cast::<HtmlInputElement>() {
                            let _ = i.focus();
                        }
                    }
                }
                busy.set(false);
            });
        })
    };
    html! {
        <main id="main" class="narrow">
            <h1>{"Sign in"}</h1>
            <p>{"Paste an access token to review runs. It is kept only for this browser tab."}</p>
            <form class="signin" {onsubmit}>
                <label for="token">{"Access token"}</label>
                <input id="token" name="token" type="password" autocomplete="off" ref={input} required=true />
                <button type="submit" disabled={*busy}>{ if *busy { "Checking…" } else { "Sign in" } }</button>
            </form>
            if let Some(e) = &*error {
                <ErrorBox error={e.clone()} doing="Sign-in failed" />
            }
            <p class="muted">{"No server? "}<Link<Route> to={Route::Verify}>{"Verify a bundle file offline"}</Link<Route>>{"."}</p>
        </main>
    }
}

/// Props of [`RequireSession`].
#[derive(Properties, PartialEq)]
pub struct RequireProps {
    /// The page, shown once a token is checked.
    pub children: Html,
}

/// Shows its children when signed in, the sign-in form otherwise.
#[component]
pub fn RequireSession(props: &RequireProps) -> Html {
    let session = use_session();
    // Once signed in the form is gone, and the focus with it: put it on the page's content,
    // unless something on the page already has it.
    use_effect_with(session.who().is_some(), |signed_in| {
        let lost = gloo::utils::document()
            .active_element()
            .is_none_or(|e| e.tag_name().eq_ignore_ascii_case("body"));
        if *signed_in && lost {
            crate::app::focus_main();
        }
    });
    if session.who().is_some() {
        props.children.clone()
    } else if let Some(e) = session.unchecked() {
        // The server did not answer the stored token's check: the token is kept, to be
        // checked again once the server is back.
        let retry = {
            let session = session.clone();
            Callback::from(move |_: MouseEvent| session.check())
        };
        html! { <main id="main"><ErrorBox error={e} doing="Could not check the stored token" {retry} /></main> }
    } else if session.client().is_some() {
        html! { <main id="main"><super::status::Loading what="Checking the stored token…" /></main> }
    } else {
        html! { <SignIn /> }
    }
}
