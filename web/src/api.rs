//! All HTTP the app does: the `/api/v1` routes of core's `api` module, with the bearer token
//! in the `Authorization` header (never in a URL). Replies and errors use core's types, so the
//! app and the server cannot drift; errors become [`ApiError`]s worded for people.

use gloo::net::http::{Request, RequestBuilder, Response};
use pipeproof_core::api::{
    DetailPage, DetailQuery, Keys, PREFIX, Page, Pipeline, Problem, Run, RunDetail, RunQuery,
    Trace, WhoAmI,
};
use serde::de::DeserializeOwned;

/// An error from the API, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status, or 0 when no reply came.
    pub status: u16,
    /// What went wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A result of an API call.
pub type ApiResult<T> = Result<T, ApiError>;

/// A client that signs its requests with a bearer token.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    token: String,
}

fn url(path: &str) -> String {
    format!("{PREFIX}{path}")
}

/// Percent-encodes one query or path component.
pub fn encode(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

impl Client {
    /// A client for a token.
    pub fn new(token: impl Into<String>) -> Client {
        Client {
            token: token.into(),
        }
    }

    fn get(&self, path: &str) -> RequestBuilder {
        Request::get(&url(path)).header("Authorization", &format!("Bearer {}", self.token))
    }

    async fn send(&self, req: RequestBuilder) -> ApiResult<Response> {
        let resp = req.send().await.map_err(|e| ApiError {
            status: 0,
            message: format!(
                "the server did not answer ({e}); check that it is running and reachable"
            ),
        })?;
        if resp.ok() {
            return Ok(resp);
        }
        Err(error_of(&resp).await)
    }

    async fn json<T: DeserializeOwned>(&self, path: &str) -> ApiResult<T> {
        let resp = self.send(self.get(path)).await?;
        resp.json::<T>().await.map_err(|e| ApiError {
            status: resp.status(),
            message: format!(
                "the server's reply to {path} is not what this app expects ({e}); \
                 is the app the same version as the server?"
            ),
        })
    }

    /// `GET /whoami`: checks the token.
    pub async fn whoami(&self) -> ApiResult<WhoAmI> {
        let resp = self.send(self.get("/whoami")).await;
        match resp {
            Err(e) if e.status == 401 || e.status == 403 => Err(ApiError {
                status: e.status,
                message: format!(
                    "the server does not accept this token ({}). Check that it was copied whole, \
                     or ask an admin for a new one.",
                    e.message
                ),
            }),
            Err(e) if e.status == 404 || e.status == 405 => Err(ApiError {
                status: e.status,
                message: "there is no pipeproof API at this address (the app is served by a \
                          static host?). The Verify page works without a server."
                    .into(),
            }),
            Err(e) => Err(e),
            Ok(r) => r.json::<WhoAmI>().await.map_err(|_| ApiError {
                status: r.status(),
                message: "the reply to /whoami is not a pipeproof reply: there is no pipeproof \
                          API at this address. The Verify page works without a server."
                    .into(),
            }),
        }
    }

    /// `GET /pipelines`.
    pub async fn pipelines(&self) -> ApiResult<Vec<Pipeline>> {
        self.json("/pipelines").await
    }

    /// `GET /runs`, newest first.
    pub async fn runs(&self, q: &RunQuery) -> ApiResult<Page<Run>> {
        let mut params = Vec::new();
        if let Some(p) = &q.pipeline {
            params.push(format!("pipeline={}", encode(p)));
        }
        if let Some(l) = &q.label {
            params.push(format!("label={}", encode(l)));
        }
        if let Some(s) = q.status {
            params.push(format!("status={}", s.as_str()));
        }
        params.push(format!("offset={}", q.offset.unwrap_or(0)));
        params.push(format!("limit={}", q.limit.unwrap_or(50)));
        self.json(&format!("/runs?{}", params.join("&"))).await
    }

    /// `GET /runs/{id}`.
    pub async fn run(&self, id: &str) -> ApiResult<RunDetail> {
        self.json(&format!("/runs/{}", encode(id))).await
    }

    /// `GET /runs/{id}/steps/{index}/details`.
    pub async fn details(&self, id: &str, index: u64, q: &DetailQuery) -> ApiResult<DetailPage> {
        let mut path = format!(
            "/runs/{}/steps/{index}/details?kind={}&offset={}&limit={}",
            encode(id),
            q.kind.as_str(),
            q.offset.unwrap_or(0),
            q.limit.unwrap_or(100)
        );
        if let Some(c) = &q.column {
            path.push_str(&format!("&column={}", encode(c)));
        }
        if let Some(k) = &q.key {
            path.push_str(&format!("&key={}", encode(k)));
        }
        self.json(&path).await
    }

    /// `GET /runs/{id}/trace?key=`.
    pub async fn trace(&self, id: &str, key: &str) -> ApiResult<Trace> {
        self.json(&format!("/runs/{}/trace?key={}", encode(id), encode(key)))
            .await
    }

    /// `GET /keys`.
    pub async fn keys(&self) -> ApiResult<Keys> {
        self.json("/keys").await
    }

    /// `GET /log`: the log of seals' signed head.
    pub async fn log_head(&self) -> ApiResult<pipeproof_core::log::TreeHead> {
        self.json("/log").await
    }

    /// `GET /log/inclusion?run=&size=`: where a run's seal is in the log of `size` entries.
    pub async fn log_inclusion(
        &self,
        run: &str,
        size: u64,
    ) -> ApiResult<pipeproof_core::api::LogInclusion> {
        self.json(&format!("/log/inclusion?run={}&size={size}", encode(run)))
            .await
    }

    /// `GET /runs/{id}/bundle`: the bundle file's bytes.
    pub async fn bundle(&self, id: &str) -> ApiResult<Vec<u8>> {
        let resp = self
            .send(self.get(&format!("/runs/{}/bundle", encode(id))))
            .await?;
        resp.binary().await.map_err(|e| ApiError {
            status: resp.status(),
            message: format!("the bundle download broke off: {e}"),
        })
    }
}

/// The error of a failed reply: its problem document's detail when there is one.
async fn error_of(resp: &Response) -> ApiError {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let message = match serde_json::from_str::<Problem>(&text) {
        Ok(p) => format!("{}: {}", p.title, p.detail),
        Err(_) => match status {
            401 => "the token is missing, wrong or expired: sign in again".into(),
            403 => "this token may not do that (its scopes do not allow it)".into(),
            404 => "not found".into(),
            _ => format!("the server answered {status} {}", resp.status_text()),
        },
    };
    ApiError { status, message }
}
