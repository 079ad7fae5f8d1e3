//! [`ApiError`]: the one error of the HTTP API and the store. Each becomes an RFC 9457
//! `application/problem+json` reply ([`pipeproof_core::api::Problem`]) whose detail says
//! what was wrong and how to fix it. Internal failures are logged in full and answered 500.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use pipeproof_core::api::Problem;

/// An error answered as a problem document.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The problem kind, the last segment of its type URI (`unknown-run`).
    pub kind: &'static str,
    /// What was wrong and how to fix it.
    pub detail: String,
}

/// Where problem type URIs live.
pub const PROBLEM_BASE: &str = "https://pipeproof.dev/problems/";

impl ApiError {
    /// An error with a status, kind and detail.
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            detail: detail.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(kind: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, kind, detail)
    }

    /// 422: the request is well formed but its content cannot be accepted.
    pub fn unprocessable(kind: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, kind, detail)
    }

    /// 404: no such thing.
    pub fn not_found(kind: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, kind, detail)
    }

    /// 404 for a run id.
    pub fn unknown_run(id: &str) -> ApiError {
        ApiError::not_found(
            "unknown-run",
            format!("there is no run `{id}`; list runs with GET /api/v1/runs"),
        )
    }

    /// 409 for a run that no longer takes steps.
    pub fn run_closed(run: &pipeproof_core::api::Run) -> ApiError {
        // The run's error, as far as a line goes (the run's page has all of it).
        let why = match &run.error {
            Some(e) if e.chars().count() > 200 => {
                format!(" ({}…)", e.chars().take(200).collect::<String>())
            }
            Some(e) => format!(" ({e})"),
            None => String::new(),
        };
        ApiError::new(
            StatusCode::CONFLICT,
            "run-closed",
            format!(
                "run `{}` is {}{why} and takes no more steps or seals; \
                 create a new run with POST /api/v1/runs",
                run.id,
                run.status.as_str()
            ),
        )
    }

    /// 500: a failure of the server, not of the request.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        let detail = format!("{e:#}");
        tracing::error!(error = %detail, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    /// 500: the server panicked on this request (a defect that some input trips, which a
    /// retry of the same request would likely trip again).
    pub fn panicked(message: &str) -> ApiError {
        tracing::error!(panic = %message, "a request panicked");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "defect",
            format!(
                "the server failed on this request ({message}); nothing of it was stored. \
                 The same request will likely fail the same way: please report it, with the \
                 data that caused it if you can"
            ),
        )
    }

    /// A short summary of the problem kind, as RFC 9457 asks of `title`: the kind in
    /// words (`duplicate-keys`: "Duplicate keys").
    pub fn title(&self) -> String {
        let words = self.kind.replace('-', " ");
        let mut chars = words.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => self.status.canonical_reason().unwrap_or("Error").into(),
        }
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("{PROBLEM_BASE}{}", self.kind),
            title: self.title(),
            status: self.status.as_u16(),
            // What a client is told of a failure of the server; the command line (`check`)
            // reports the cause alone.
            detail: if self.kind == "internal" {
                format!(
                    "the server failed: {}; the request changed nothing, retry it",
                    self.detail
                )
            } else {
                self.detail.clone()
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.kind, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        r.content_type("application/problem+json");
        if self.status == StatusCode::UNAUTHORIZED {
            r.insert_header(("WWW-Authenticate", "Bearer realm=\"pipeproof\""));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Busy, not broken: clients that retry know when.
            r.insert_header(("Retry-After", "5"));
        }
        r.body(serde_json::to_string(&self.problem()).expect("problems serialise"))
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> ApiError {
        ApiError::internal(format!("database: {e}"))
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::internal(e)
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> ApiError {
        ApiError::internal(format!("i/o: {e}"))
    }
}

impl From<pipeproof_core::Error> for ApiError {
    fn from(e: pipeproof_core::Error) -> ApiError {
        use pipeproof_core::Error as E;
        let detail = e.to_string();
        match e {
            E::Decode { .. } => ApiError::bad_request(
                "malformed-body",
                format!(
                    "{detail}; send a complete file in the format the Content-Type names \
                     ({})",
                    pipeproof_core::Format::MEDIA_TYPES
                ),
            ),
            E::UnsupportedType { .. } => ApiError::unprocessable("unsupported-type", detail),
            E::DuplicateColumn(_) => ApiError::unprocessable("duplicate-column", detail),
            E::MissingKey { .. } => ApiError::unprocessable("missing-key", detail),
            E::ReservedName { .. } => ApiError::unprocessable("reserved-column-name", detail),
            E::NullKeys { .. } => ApiError::unprocessable("null-keys", detail),
            E::DuplicateKeys { .. } => ApiError::unprocessable("duplicate-keys", detail),
            E::SchemaMismatch { .. } | E::InvalidText { .. } => {
                ApiError::bad_request("malformed-body", detail)
            }
            E::InvalidConfig(_) => ApiError::unprocessable("invalid-options", detail),
            E::Verification(_) | E::Io(_) | E::Arrow(_) => ApiError::internal(detail),
        }
    }
}
