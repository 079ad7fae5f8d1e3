//! The signed-in session: the bearer token (kept in session storage, so it lasts as long as the
//! tab and never appears in a URL) and the token's name and scopes from `GET /whoami`.

use std::rc::Rc;

use gloo::storage::{SessionStorage, Storage};
use pipeproof_core::api::{Scope, WhoAmI};
use yew::prelude::*;

use crate::api::{ApiError, Client, on_token_refused};
use crate::components::status::retryable;

const TOKEN_KEY: &str = "pipeproof.token";

/// What the app knows of the session.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionState {
    /// The client, when a token is stored.
    pub client: Option<Client>,
    /// The token's identity, once checked.
    pub who: Option<WhoAmI>,
    /// Why the stored token was dropped, if it was.
    pub dropped: Option<ApiError>,
    /// Why the stored token could not be checked (the server did not answer, or failed): it
    /// is kept, and checked again on [`Session::check`].
    pub unchecked: Option<ApiError>,
}

/// Whether a token may read runs (the read scope, or admin, which grants every scope).
pub fn can_read(who: &WhoAmI) -> bool {
    who.scopes
        .iter()
        .any(|s| matches!(s, Scope::Read | Scope::Admin))
}

/// Why a token that may not read runs is no use to this app, in words.
pub fn cannot_read(who: &WhoAmI) -> ApiError {
    let scopes: Vec<&str> = who.scopes.iter().map(|s| s.as_str()).collect();
    let what = if scopes == ["ingest"] {
        "may only send steps (its scope is ingest)".to_string()
    } else if scopes.is_empty() {
        "has no scope".to_string()
    } else {
        format!("has the scopes {}", scopes.join(", "))
    };
    ApiError::new(
        403,
        format!(
            "the token \"{}\" {what}: it cannot read runs, so it was not kept. Reviewing runs \
             needs a token with the read scope; sign in with one, or ask an admin for one. \
             Verifying a bundle file needs no token.",
            who.name
        ),
    )
}

/// A handle to the session, from [`use_session`].
#[derive(Clone, PartialEq)]
pub struct Session(UseStateHandle<Rc<SessionState>>);

impl Session {
    /// The API client, when signed in (or while the stored token is being checked).
    pub fn client(&self) -> Option<Client> {
        self.0.client.clone()
    }

    /// The token's identity, once checked.
    pub fn who(&self) -> Option<WhoAmI> {
        self.0.who.clone()
    }

    /// Why the previous token was dropped.
    pub fn dropped(&self) -> Option<ApiError> {
        self.0.dropped.clone()
    }

    /// Why the stored token could not be checked yet (the server did not answer).
    pub fn unchecked(&self) -> Option<ApiError> {
        self.0.unchecked.clone()
    }

    /// Checks the stored token with the server: keeps it with its identity when it may read
    /// runs, drops it when the server refuses it or it may not read, and keeps it unchecked
    /// when the server did not answer (or failed), to be checked again.
    pub fn check(&self) {
        let Some(client) = self.client() else { return };
        let session = self.clone();
        self.0.set(Rc::new(SessionState {
            client: Some(client.clone()),
            ..SessionState::default()
        }));
        wasm_bindgen_futures::spawn_local(async move {
            match client.whoami().await {
                Ok(who) if can_read(&who) => session.0.set(Rc::new(SessionState {
                    client: Some(client),
                    who: Some(who),
                    ..SessionState::default()
                })),
                Ok(who) => session.expire(&cannot_read(&who)),
                Err(e) if retryable(&e) => session.0.set(Rc::new(SessionState {
                    client: Some(client),
                    unchecked: Some(e),
                    ..SessionState::default()
                })),
                Err(e) => session.expire(&e),
            }
        });
    }

    /// Records a checked token.
    pub fn sign_in(&self, token: String, who: WhoAmI) {
        let _ = SessionStorage::set(TOKEN_KEY, &token);
        self.0.set(Rc::new(SessionState {
            client: Some(Client::new(token)),
            who: Some(who),
            ..SessionState::default()
        }));
    }

    /// Forgets the token.
    pub fn sign_out(&self) {
        SessionStorage::delete(TOKEN_KEY);
        self.0.set(Rc::new(SessionState::default()));
    }

    /// Forgets the token because the server refused it.
    pub fn expire(&self, e: &ApiError) {
        SessionStorage::delete(TOKEN_KEY);
        self.0.set(Rc::new(SessionState {
            dropped: Some(e.clone()),
            ..SessionState::default()
        }));
    }
}

/// Props of [`SessionProvider`].
#[derive(Properties, PartialEq)]
pub struct ProviderProps {
    /// The app.
    pub children: Html,
}

/// Provides the session; checks a token found in session storage once at start.
#[component]
pub fn SessionProvider(props: &ProviderProps) -> Html {
    let state = use_state(|| {
        Rc::new(SessionState {
            client: SessionStorage::get::<String>(TOKEN_KEY)
                .ok()
                .map(Client::new),
            ..SessionState::default()
        })
    });
    let session = Session(state.clone());
    {
        // A token revoked (or expired) while the tab is open: the first request it is refused
        // on (401) signs out, and the sign-in form says why. A 403 keeps the session: the
        // token is valid, only not for that request.
        let session = session.clone();
        use_effect_with((), move |_| {
            on_token_refused(move |token, e| {
                let current = SessionStorage::get::<String>(TOKEN_KEY).ok();
                if current.as_deref() == Some(token) {
                    session.expire(&ApiError {
                        message: "the server no longer accepts this token (it was revoked or \
                                  has expired): sign in again with a valid token."
                            .into(),
                        ..e.clone()
                    });
                }
            });
        });
    }
    {
        let session = session.clone();
        use_effect_with((), move |_| session.check());
    }
    html! {
        <ContextProvider<Session> context={session}>{props.children.clone()}</ContextProvider<Session>>
    }
}

/// The session.
#[hook]
pub fn use_session() -> Session {
    use_context::<Session>().expect("SessionProvider wraps the app")
}
