//! The app's shell: the routes, the navigation bar, and the providers of the session and the
//! offline bundle.

use wasm_bindgen::JsCast;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::offline::OfflineProvider;
use crate::pages;
use crate::session::{SessionProvider, use_session};

/// Every page of the app. The hash router keeps routes after `#`, so the built app works from
/// any static host and the server needs no fallback route.
#[derive(Clone, Debug, PartialEq, Routable)]
pub enum Route {
    /// The runs list (or the sign-in form).
    #[at("/")]
    Home,
    /// The runs list, filtered and paged.
    #[at("/runs")]
    Runs,
    /// A run: its steps, chain and seal.
    #[at("/runs/:id")]
    Run {
        /// The run's id.
        id: String,
    },
    /// A step's diff.
    #[at("/runs/:id/steps/:index")]
    Step {
        /// The run's id.
        id: String,
        /// The step's index.
        index: u64,
    },
    /// One key through every step of a run.
    #[at("/runs/:id/trace")]
    Trace {
        /// The run's id.
        id: String,
    },
    /// Verify a bundle file in the browser.
    #[at("/verify")]
    Verify,
    /// A step's diff, from the bundle loaded on the verify page.
    #[at("/verify/steps/:index")]
    VerifyStep {
        /// The step's index.
        index: u64,
    },
    /// Anything else.
    #[not_found]
    #[at("/404")]
    NotFound,
}

fn switch(route: Route) -> Html {
    match route {
        Route::Home | Route::Runs => html! { <pages::runs::Runs /> },
        Route::Run { id } => html! { <pages::run::RunPage {id} /> },
        Route::Step { id, index } => html! { <pages::step::StepPage {id} {index} /> },
        Route::Trace { id } => html! { <pages::trace::TracePage {id} /> },
        Route::Verify => html! { <pages::verify::VerifyPage /> },
        Route::VerifyStep { index } => html! { <pages::verify::BundleStepPage {index} /> },
        Route::NotFound => html! { <NotFound /> },
    }
}

#[component]
fn NotFound() -> Html {
    use_title("Page not found".into());
    html! {
            <main id="main">
                <h1>{"Page not found"}</h1>
                <p>{"There is no page at this address. "}
                   <Link<Route> to={Route::Runs}>{"Go to the runs"}</Link<Route>>
                   {" or "}
                   <Link<Route> to={Route::Verify}>{"verify a bundle"}</Link<Route>>{"."}</p>
            </main>
    }
}

/// Sets the tab's title to `what · pipeproof` while the page shows (and as `what` changes), so
/// that tabs, history and bookmarks tell pages apart.
#[hook]
pub fn use_title(what: String) {
    use_effect_with(what, |what| {
        gloo::utils::document().set_title(&format!("{what} · pipeproof"));
    });
}

/// Moves the keyboard focus to the page's content (its `main` element).
pub fn focus_main() {
    if let Some(main) = gloo::utils::document()
        .get_element_by_id("main")
        .and_then(|m| m.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = main.set_attribute("tabindex", "-1");
        let _ = main.focus();
    }
}

#[component]
fn Nav() -> Html {
    let session = use_session();
    let sign_out = {
        let session = session.clone();
        Callback::from(move |_: MouseEvent| session.sign_out())
    };
    // The routes live in the URL's fragment, so following `#main` would leave the page for a
    // route `main` (and the router throws on it): move the focus to the content instead.
    let skip = Callback::from(|e: MouseEvent| {
        e.prevent_default();
        focus_main();
    });
    html! {
        <header class="top">
            <a class="skip" href="#main" onclick={skip}>{"Skip to content"}</a>
            <nav aria-label="Main">
                <Link<Route> classes="brand" to={Route::Runs}>{"pipeproof"}</Link<Route>>
                <Link<Route> to={Route::Runs}>{"Runs"}</Link<Route>>
                <Link<Route> to={Route::Verify}>{"Verify a bundle"}</Link<Route>>
            </nav>
            <div class="who">
                if let Some(who) = session.who() {
                    <span>{"Signed in as "}<strong>{who.name.clone()}</strong></span>
                    <button type="button" class="link" onclick={sign_out}>{"Sign out"}</button>
                } else if session.unchecked().is_some() {
                    <span class="muted">{"Token not checked: no answer from the server"}</span>
                } else if session.client().is_some() {
                    <span class="muted">{"Checking the token…"}</span>
                } else {
                    <span class="muted">{"Not signed in"}</span>
                }
            </div>
        </header>
    }
}

/// The root component.
#[component]
pub fn App() -> Html {
    html! {
        <HashRouter>
            <SessionProvider>
                <OfflineProvider>
                    <Nav />
                    <Switch<Route> render={switch} />
                </OfflineProvider>
            </SessionProvider>
        </HashRouter>
    }
}
