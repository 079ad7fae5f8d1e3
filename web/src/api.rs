//! All HTTP the app does: the `/api/v1` routes of core's `api` module, with the bearer token
//! in the `Authorization` header (never in a URL). Replies and errors use core's types, so the
//! app and the server cannot drift; errors become [`ApiError`]s worded for people.

use gloo::net::http::{Request, RequestBuilder, Response};
use pipeproof_core::api::{
    DetailPage, DetailQuery, Keys, PREFIX, Page, Pipeline, Problem, RedactRun, Redacted, Run,
    RunDetail, RunQuery, Trace, WhoAmI,
};
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::rc::Rc;

/// Told of every reply 401 (the token is not, or no longer, accepted), with the token sent.
type OnRefused = Rc<dyn Fn(&str, &ApiError)>;

thread_local! {
    static ON_REFUSED: RefCell<Option<OnRefused>> = const { RefCell::new(None) };
}

/// Sets what happens when the server refuses a token (401): the session drops it.
pub fn on_token_refused(f: impl Fn(&str, &ApiError) + 'static) {
    ON_REFUSED.with(|r| *r.borrow_mut() = Some(Rc::new(f)));
}

/// An error from the API, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status, or 0 when no reply came.
    pub status: u16,
    /// What went wrong and what to do, in this app's words.
    pub message: String,
    /// The server's problem document, when it sent one: its kind and its detail, which are
    /// written for API callers, kept for a closer look.
    pub problem: Option<Problem>,
}

impl ApiError {
    /// An error of this app's own, with no problem document from the server.
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            problem: None,
        }
    }

    /// The server's machine-readable kind of problem (`unknown-run`), when it sent one.
    pub fn code(&self) -> Option<&str> {
        self.problem.as_ref().map(problem_code)
    }
}

/// The kind of a problem: the last segment of its type URI (`unknown-run`).
pub fn problem_code(p: &Problem) -> &str {
    p.kind.rsplit('/').next().unwrap_or(&p.kind)
}

/// What a user of this app is told of a problem the server answered, by its kind. The
/// server's details speak to API callers (routes, query parameters, commands); these say what
/// went wrong and what to do in the app. `None` for kinds that only ingesting or admin
/// requests meet, whose details are shown as they are.
pub fn web_words(code: &str) -> Option<&'static str> {
    Some(match code {
        "unknown-run" => {
            "there is no run with this id on this server. Check the address, or find the run \
             in the runs list."
        }
        "unknown-step" => {
            "this run has no step with that number. Open the run to see the steps it has."
        }
        "no-diff" => {
            "this is the run's first step: there is no step before it, so no diff and no \
             detail rows."
        }
        "no-key" => {
            "rows cannot be traced in this run: no step was sent with a key column, so \
             nothing names a row from one step to the next."
        }
        "invalid-key-value" => {
            "this is not a value of the run's key. Enter the key's value as it reads in the \
             data (a number for a numeric key); for a key of several columns, give \
             every value in the key's order joined with |."
        }
        "invalid-query" | "not-found" => {
            "the server could not read what this page asked for. Reload the page; if it \
             happens again, this app may be of another version than the server."
        }
        "unauthorized" => {
            "the server does not accept this token (it is unknown to the server, or was \
             revoked). Sign out and sign in with a valid token, or ask an admin for a new one."
        }
        "forbidden" => {
            "this token may not do this: it lacks the scope needed (reading runs needs the \
             read scope). Sign in with a token that has it, or ask an admin for one."
        }
        "redacted" => {
            "this step's detail rows and kept data were removed from the server by a \
             redaction (the server's answer below says when and why). Its counts, schema and \
             statistics remain."
        }
        "run-open" => {
            "this run is still open: its last step's data is kept to diff the next step \
             against. Once the run is sealed or failed it can be redacted."
        }
        "exports-busy" => "the server is busy writing other bundles. Try again in a few seconds.",
        "not-logged" => "the server's log of seals has no entry for this run's seal.",
        "log-size" => "the server's log of seals changed while this page read it. Reload the page.",
        "internal" => {
            "the server failed on this request, which changed nothing. Try again; if it keeps \
             failing, tell whoever runs the server, with the server's answer below."
        }
        "defect" => {
            "the server failed on this request, and would likely fail the same way again. \
             Please report it to whoever runs the server, with the server's answer below."
        }
        _ => return None,
    })
}

/// The error of a reply with a problem document: in this app's words when its kind has
/// them, else the server's title and detail.
pub fn problem_error(status: u16, p: Problem) -> ApiError {
    let message = match web_words(problem_code(&p)) {
        Some(words) => words.to_string(),
        None => format!("{}: {}", p.title, p.detail),
    };
    ApiError {
        status,
        message,
        problem: Some(p),
    }
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
        self.answer(req.send().await).await
    }

    /// A reply, or the error of a failed one (no reply at all, or one that is not OK).
    async fn answer(&self, resp: Result<Response, gloo::net::Error>) -> ApiResult<Response> {
        let resp = resp.map_err(|e| {
            ApiError::new(
                0,
                format!("the server did not answer ({e}); check that it is running and reachable"),
            )
        })?;
        if resp.ok() {
            return Ok(resp);
        }
        let e = error_of(&resp).await;
        if e.status == 401
            && let Some(f) = ON_REFUSED.with(|r| r.borrow().clone())
        {
            f(&self.token, &e);
        }
        Err(e)
    }

    async fn json<T: DeserializeOwned>(&self, path: &str) -> ApiResult<T> {
        let resp = self.send(self.get(path)).await?;
        resp.json::<T>().await.map_err(|e| {
            ApiError::new(
                resp.status(),
                format!(
                    "the server's reply to {path} is not what this app expects ({e}); \
                     is the app the same version as the server?"
                ),
            )
        })
    }

    /// `GET /whoami`: checks the token.
    pub async fn whoami(&self) -> ApiResult<WhoAmI> {
        let resp = self.send(self.get("/whoami")).await;
        match resp {
            // The server's detail (an unknown or a revoked token) stays in the problem.
            Err(e) if e.status == 401 || e.status == 403 => Err(ApiError {
                message: "the server does not accept this token. Check that it was copied \
                          whole, or ask an admin for a new one."
                    .into(),
                ..e
            }),
            Err(e) if e.status == 404 || e.status == 405 => Err(ApiError::new(
                e.status,
                "there is no pipeproof API at this address (the app is served by a static \
                 host?). The Verify page works without a server.",
            )),
            Err(e) => Err(e),
            Ok(r) => r.json::<WhoAmI>().await.map_err(|_| {
                ApiError::new(
                    r.status(),
                    "the reply to /whoami is not a pipeproof reply: there is no pipeproof \
                     API at this address. The Verify page works without a server.",
                )
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

    /// `POST /runs/{id}/redact` (admin): removes the run's diff details and kept data.
    pub async fn redact(&self, id: &str, body: &RedactRun) -> ApiResult<Redacted> {
        let path = format!("/runs/{}/redact", encode(id));
        let req = Request::post(&url(&path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .json(body)
            .map_err(|e| ApiError::new(0, format!("the request could not be written: {e}")))?;
        let resp = match self.answer(req.send().await).await {
            // The general words speak of the read scope; redacting needs more.
            Err(e) if e.code() == Some("forbidden") => {
                return Err(ApiError {
                    message: "this token may not redact runs: that needs the admin scope. Sign \
                              in with an admin token, or ask an admin to redact the run."
                        .into(),
                    ..e
                });
            }
            r => r?,
        };
        resp.json::<Redacted>().await.map_err(|e| {
            ApiError::new(
                resp.status(),
                format!(
                    "the run was redacted, but the server's reply is not what this app expects \
                     ({e}); reload the page to see the run"
                ),
            )
        })
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
        resp.binary().await.map_err(|e| {
            ApiError::new(resp.status(), format!("the bundle download broke off: {e}"))
        })
    }
}

/// The error of a failed reply: in this app's words, with the server's problem document when
/// there is one.
async fn error_of(resp: &Response) -> ApiError {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<Problem>(&text) {
        Ok(p) => problem_error(status, p),
        Err(_) => ApiError::new(
            status,
            match status {
                401 => "the token is missing, wrong or expired: sign in again".into(),
                403 => "this token may not do that (its scopes do not allow it)".into(),
                404 => "not found".into(),
                _ => format!("the server answered {status} {}", resp.status_text()),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(kind: &str, detail: &str) -> Problem {
        Problem {
            kind: format!("https://pipeproof.dev/problems/{kind}"),
            title: "Title".into(),
            status: 404,
            detail: detail.into(),
        }
    }

    #[test]
    fn problems_a_user_meets_are_told_in_the_apps_words() {
        for (kind, detail, words) in [
            (
                "unknown-run",
                "there is no run `x`; list runs with GET /api/v1/runs",
                "there is no run with this id",
            ),
            (
                "invalid-key-value",
                "`EU` is not a value of the key (region, id) of run `x`: 1 value(s) for 2 key \
                 column(s): give `key=` once per key column, in the key's order (or once, the \
                 values joined with `|`)",
                "joined with |",
            ),
            (
                "no-key",
                "no step of run `x` was posted with a key, so rows cannot be followed; post \
                 steps with ?key=COLUMN",
                "rows cannot be traced in this run",
            ),
            (
                "forbidden",
                "token `t` has scope(s) [ingest]; this route needs `read`: use a token with \
                 that scope (`pipeproof token create --scope read`)",
                "read scope",
            ),
            (
                "redacted",
                "the diff details of step 1 of run `x` were removed at 2026-11-28T08:00:00Z \
                 (erasure request 7); its record, row hashes, statistics and diff counts remain",
                "removed from the server by a redaction",
            ),
            (
                "run-open",
                "run `x` is open: its last step's data is kept to diff the next step against \
                 until the run ends; seal or fail it, then redact it",
                "this run is still open",
            ),
        ] {
            let e = problem_error(404, problem(kind, detail));
            assert!(e.message.contains(words), "{kind}: {}", e.message);
            for api_talk in ["/api/v1", "key=", "pipeproof token", "`"] {
                assert!(!e.message.contains(api_talk), "{kind}: {}", e.message);
            }
            // The server's own words stay at hand.
            assert_eq!(e.code(), Some(kind));
            assert_eq!(e.problem.as_ref().map(|p| p.detail.as_str()), Some(detail));
        }
    }

    #[test]
    fn other_problems_keep_the_servers_words() {
        let e = problem_error(
            422,
            problem("duplicate-keys", "key `id` repeats: 7 (2 rows)"),
        );
        assert_eq!(e.message, "Title: key `id` repeats: 7 (2 rows)");
        assert_eq!(e.code(), Some("duplicate-keys"));
    }
}
