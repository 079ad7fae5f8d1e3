//! The HTTP server: [`configure`] mounts every route (the API under `/api/v1`, `/healthz`,
//! the SPA's static files) on an actix-web app, the same way for `pipeproof serve` and for
//! tests. Handlers are thin: extract, call the store on a blocking thread, respond.

pub mod auth;
pub mod metrics;
mod query;
mod routes;

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;
use crate::store::Store;

/// What every handler shares.
pub struct AppState {
    /// The store.
    pub store: Arc<Store>,
    /// The largest request body accepted, in bytes.
    pub max_body: u64,
    /// The SPA's files, when present.
    pub static_dir: Option<PathBuf>,
    /// Ingest and housekeeping counters for `/metrics` (shared with the housekeeping thread).
    pub metrics: Arc<metrics::Metrics>,
}

/// What the server answers outside the API, and prints as it starts, when it serves no web
/// app: where it looked, and how to give it one.
pub const NO_WEB_APP: &str = "no web app is served: none was found at web/dist/index.html \
    under the folder the server was started from, nor at web/index.html beside its binary. \
    Start it from the project's folder, pass --static-dir DIR (static_dir in its config \
    file), or build the app with `make web`.";

/// Mounts every route.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let static_dir = state.static_dir.clone();
        cfg.app_data(state)
            .app_data(web::PathConfig::default().error_handler(|e, _| {
                ApiError::not_found("not-found", format!("bad path: {e}")).into()
            }))
            .app_data(
                web::JsonConfig::default()
                    .limit(1 << 20)
                    .error_handler(|e, _| json_error(e).into()),
            )
            .route("/healthz", web::get().to(routes::health))
            .route("/metrics", web::get().to(routes::metrics))
            .service(routes::api());
        match static_dir {
            Some(dir) => {
                let index = dir.join("index.html");
                cfg.service(
                    actix_files::Files::new("/", dir)
                        .index_file("index.html")
                        .default_handler(web::to(move |req: HttpRequest| {
                            let index = index.clone();
                            async move { spa_fallback(req, index).await }
                        })),
                );
            }
            None => {
                cfg.default_service(web::to(|| async {
                    HttpResponse::NotFound()
                        .content_type("text/plain")
                        .body(format!("pipeproof: {NO_WEB_APP}\n"))
                }));
            }
        }
    }
}

fn json_error(e: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as J;
    match e {
        J::ContentType => ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send JSON with `Content-Type: application/json`",
        ),
        J::Overflow { limit } | J::OverflowKnownLength { limit, .. } => ApiError::new(
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            format!("JSON bodies are limited to {limit} bytes"),
        ),
        e => ApiError::bad_request(
            "invalid-json",
            format!("the JSON body is not valid: {e}; see /api/v1/openapi.json"),
        ),
    }
}

/// How long browsers keep the web app's files: those whose names carry a content hash
/// (trunk's `app-0123456789abcdef.js`) never change, and are kept a year; the others
/// (`index.html`, which names the hashed files, and the worker's files, loaded with the
/// build's id in their query) are checked again at every load, so that an upgraded server is
/// seen at once. The API and the health and metrics routes are left as they answer.
pub async fn cache_policy(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> actix_web::Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>> {
    use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
    let path = req.path().to_owned();
    let mut res = next.call(req).await?;
    let app_file = !(path.starts_with("/api/") || path == "/healthz" || path == "/metrics");
    if app_file && !res.headers().contains_key(CACHE_CONTROL) {
        let policy = if content_hashed(&path) {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    Ok(res)
}

/// Whether a file name carries trunk's content hash: hex digits after its last `-`, up to
/// the first `_` or `.` (`pipeproof-web-17a50fca03cebfb_bg.wasm`).
fn content_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    let Some((_, tail)) = name.rsplit_once('-') else {
        return false;
    };
    let hash = tail.split(['_', '.']).next().unwrap_or("");
    (12..=16).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Unknown paths: API paths get a problem document, others the SPA's index.html so that
/// client-side routes work on reload.
async fn spa_fallback(req: HttpRequest, index: PathBuf) -> actix_web::Result<HttpResponse> {
    if req.path().starts_with("/api/") {
        return Ok(routes::unknown_api(req).await);
    }
    let file = web::block(move || actix_files::NamedFile::open(index))
        .await
        .map_err(actix_web::error::ErrorInternalServerError)??;
    Ok(file.into_response(&req))
}
