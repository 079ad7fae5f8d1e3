//! The route handlers. Each extracts its inputs (token, path, query, body), runs the store
//! call on a blocking thread and answers JSON; errors are [`ApiError`] problem documents.

use std::io::Write;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use pipeproof_core::Format;
use pipeproof_core::api::{
    self, CreateRun, CreateToken, DetailQuery, FailRun, Health, Keys, RedactRun, RunQuery,
    RunStatus, StepQuery, WhoAmI,
};
use serde::Deserialize;

use super::AppState;
use super::auth::{Admin, Any, Auth, Ingest, Read};
use super::query::Query;
use crate::error::ApiError;
use crate::store::ingest::{self, Upload};
use crate::store::{db, query, redact};

type State = web::Data<AppState>;

/// Runs blocking store work off the async executor. A panic in it (a defect, in pipeproof
/// or a decoder it uses, that some input trips) answers 500 naming it; the store is as it
/// was, since a step is committed in one transaction, after everything that can fail.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(move || std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)))
        .await
        .map_err(ApiError::internal)?
        .unwrap_or_else(|panic| {
            Err(ApiError::panicked(&pipeproof_core::error::panic_message(
                panic.as_ref(),
            )))
        })
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    HttpResponse::build(status).json(value)
}

/// The `/api/v1` scope.
pub fn api() -> actix_web::Scope {
    web::scope(api::PREFIX)
        .route("/runs", web::post().to(create_run))
        .route("/runs", web::get().to(list_runs))
        .route("/runs/{id}", web::get().to(get_run))
        .route("/runs/{id}/steps", web::post().to(post_step))
        .route("/runs/{id}/steps/{index}", web::get().to(get_step))
        .route("/runs/{id}/steps/{index}/diff", web::get().to(get_diff))
        .route(
            "/runs/{id}/steps/{index}/details",
            web::get().to(get_details),
        )
        .route(
            "/runs/{id}/steps/{index}/artifact",
            web::get().to(get_artifact),
        )
        .route("/runs/{id}/trace", web::get().to(get_trace))
        .route("/runs/{id}/seal", web::post().to(seal_run))
        .route("/runs/{id}/fail", web::post().to(fail_run))
        .route("/runs/{id}/redact", web::post().to(redact_run))
        .route("/runs/{id}/bundle", web::get().to(get_bundle))
        .route("/pipelines", web::get().to(list_pipelines))
        .route("/keys", web::get().to(keys))
        .route("/log", web::get().to(log_head))
        .route("/log/entries", web::get().to(log_entries))
        .route("/log/inclusion", web::get().to(log_inclusion))
        .route("/log/consistency", web::get().to(log_consistency))
        .route("/tokens", web::post().to(create_token))
        .route("/tokens", web::get().to(list_tokens))
        .route("/tokens/{id}", web::delete().to(revoke_token))
        .route("/whoami", web::get().to(whoami))
        .route("/openapi.json", web::get().to(openapi))
        .default_service(web::to(unknown_api))
}

/// A problem for an unknown API route: 405 with the methods it takes for a path that is a
/// route with other methods (`DELETE /api/v1/runs/1`), else 404.
pub async fn unknown_api(req: HttpRequest) -> HttpResponse {
    let path = req.path();
    let methods = path
        .strip_prefix(api::PREFIX)
        .map(methods_of)
        .unwrap_or_default();
    if methods.is_empty() {
        return actix_web::ResponseError::error_response(&ApiError::not_found(
            "not-found",
            format!(
                "no API route {} {path}; the routes are listed in /api/v1/openapi.json",
                req.method(),
            ),
        ));
    }
    let allow = methods.join(", ");
    let mut response = actix_web::ResponseError::error_response(&ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        format!(
            "{path} does not take {}; it takes {allow} (see /api/v1/openapi.json)",
            req.method()
        ),
    ));
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    response
}

/// The methods the API route at `path` (under `/api/v1`) takes, upper case, as the OpenAPI
/// document lists them (a test holds it equal to the routes [`api`] registers); none when
/// no route has that path.
fn methods_of(path: &str) -> Vec<String> {
    static PATHS: std::sync::OnceLock<Vec<(String, Vec<String>)>> = std::sync::OnceLock::new();
    let paths = PATHS.get_or_init(|| {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../openapi.json")).expect("valid JSON");
        doc["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .map(|(template, item)| {
                        let methods = item
                            .as_object()
                            .map(|ops| {
                                ops.keys()
                                    .filter(|m| {
                                        ["get", "post", "put", "patch", "delete"]
                                            .contains(&m.as_str())
                                    })
                                    .map(|m| m.to_uppercase())
                                    .collect()
                            })
                            .unwrap_or_default();
                        (template.clone(), methods)
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    let segments: Vec<&str> = path.split('/').collect();
    let fits = |template: &str| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(p, s)| (p.starts_with('{') && p.ends_with('}') && !s.is_empty()) || p == s)
    };
    let mut methods: Vec<String> = paths
        .iter()
        .filter(|(template, _)| fits(template))
        .flat_map(|(_, methods)| methods.iter().cloned())
        .collect();
    methods.sort();
    methods.dedup();
    methods
}

/// `GET /healthz`.
pub async fn health() -> HttpResponse {
    json(
        StatusCode::OK,
        &Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
    )
}

/// `GET /metrics` (read scope): Prometheus text.
pub async fn metrics(_: Auth<Read>, state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

async fn openapi(_: Auth<Read>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(include_str!("../../openapi.json"))
}

async fn create_run(
    _: Auth<Ingest>,
    state: State,
    body: web::Json<CreateRun>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let run = blocking(move || ingest::create_run(&store, body.into_inner())).await?;
    Ok(json(StatusCode::CREATED, &run))
}

async fn list_runs(
    _: Auth<Read>,
    state: State,
    q: Query<RunQuery>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let page = blocking(move || query::runs(&store, q.into_inner())).await?;
    Ok(json(StatusCode::OK, &page))
}

async fn get_run(
    _: Auth<Read>,
    state: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let run = blocking(move || query::run_detail(&store, &id)).await?;
    Ok(json(StatusCode::OK, &run))
}

async fn list_pipelines(_: Auth<Read>, state: State) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let p = blocking(move || store.read(db::list_pipelines)).await?;
    Ok(json(StatusCode::OK, &p))
}

/// The format a step body is in, from its Content-Type; `None` means sniff.
fn body_format(req: &HttpRequest) -> Result<Option<Format>, ApiError> {
    let unsupported = |got: &str| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!(
                "Content-Type `{got}` is not a data format pipeproof reads; send one of {}, \
                 or application/octet-stream to have the format detected",
                Format::MEDIA_TYPES
            ),
        )
    };
    let Some(ct) = req.headers().get(actix_web::http::header::CONTENT_TYPE) else {
        return Err(unsupported("(none)"));
    };
    let ct = ct.to_str().map_err(|_| unsupported("(not text)"))?;
    if let Some(f) = Format::from_media_type(ct) {
        return Ok(Some(f));
    }
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/octet-stream" {
        return Ok(None);
    }
    Err(unsupported(ct))
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        format!(
            "the body is larger than this server's limit of {max} bytes; send a smaller \
             step (or fewer columns), or raise the limit with --max-body"
        ),
    )
}

async fn post_step(
    _: Auth<Ingest>,
    state: State,
    req: HttpRequest,
    id: web::Path<String>,
    q: Query<StepQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let result = store_step(&state, &req, id.into_inner(), q.into_inner(), payload).await;
    match &result {
        Ok((step, bytes)) if step.0 == StatusCode::CREATED => state.metrics.ingested(
            step.1.record.rows,
            *bytes,
            started.elapsed().as_micros() as u64,
        ),
        Ok(_) => {}
        Err(_) => state.metrics.failed(),
    }
    let (step, _) = result?;
    Ok(actix_web::Responder::respond_to(step, &req))
}

/// The step post: checks, body to a temp file, ingest. Returns the reply and the body size.
async fn store_step(
    state: &State,
    req: &HttpRequest,
    run_id: String,
    q: StepQuery,
    mut payload: web::Payload,
) -> Result<(StepReply, u64), ApiError> {
    let format = body_format(req)?;
    let max = state.max_body;
    if let Some(len) = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max
    {
        return Err(too_large(max));
    }
    let idem = req
        .headers()
        .get(api::IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let (_, params) = ingest::step_options(&q)?;
    // Cheap checks before reading the body: unknown or closed run (but a retried post may
    // name a run it sealed since), a used idempotency key with another step name or options.
    // A retry is answered once its body is read and found to hold the stored step's data.
    {
        let (store, run_id, idem, q) =
            (state.store.clone(), run_id.clone(), idem.clone(), q.clone());
        blocking(move || {
            if ingest::replayed_step(&store, &run_id, idem.as_deref(), &q, &params)?.is_none() {
                ingest::open_run(&store, &run_id)?;
                // Not idle while its step arrives (each part of the body says so again).
                store.touch(&run_id);
            }
            Ok(())
        })
        .await?;
    }
    // Stream the body to a temp file, counting it against the limit.
    let path = state.store.tmp_path("body");
    let file = std::fs::File::create(&path)?;
    let mut upload = Upload::new(path, format.unwrap_or(Format::Csv));
    let mut file = Some(std::io::BufWriter::with_capacity(1 << 20, file));
    let mut pending: Vec<web::Bytes> = Vec::new();
    let (mut pending_len, mut total) = (0usize, 0u64);
    let mut head: Vec<u8> = Vec::new();
    loop {
        let chunk = payload.next().await;
        let done = chunk.is_none();
        if let Some(chunk) = chunk {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request(
                    "malformed-body",
                    format!("the body could not be read to its end ({e}); send it again"),
                )
            })?;
            total += chunk.len() as u64;
            if total > max {
                return Err(too_large(max));
            }
            state.store.touch(&run_id);
            if head.len() < 8 {
                head.extend_from_slice(&chunk[..chunk.len().min(8 - head.len())]);
            }
            pending_len += chunk.len();
            pending.push(chunk);
        }
        if pending_len >= (4 << 20) || (done && pending_len > 0) {
            let chunks = std::mem::take(&mut pending);
            pending_len = 0;
            let mut f = file.take().expect("the file is back after each write");
            file = Some(
                blocking(move || {
                    for c in chunks {
                        f.write_all(&c)?;
                    }
                    Ok(f)
                })
                .await?,
            );
        }
        if done {
            break;
        }
    }
    // Flushed, not yet synced: the ingest syncs it while it fingerprints the data.
    let f = file.take().expect("the file is back after each write");
    blocking(move || {
        f.into_inner()
            .map_err(|e| ApiError::internal(format!("write body: {e}")))?;
        Ok(())
    })
    .await?;
    if format.is_none() {
        upload.set_format(Format::sniff(&head));
    }
    let store = state.store.clone();
    let (step, created) =
        blocking(move || ingest::ingest_step(&store, &run_id, &q, idem.as_deref(), upload)).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((StepReply(status, step), total))
}

/// A stored step and the status to answer it with.
struct StepReply(StatusCode, pipeproof_core::api::Step);

impl actix_web::Responder for StepReply {
    type Body = actix_web::body::BoxBody;
    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        json(self.0, &self.1)
    }
}

#[derive(Deserialize)]
struct StepPath {
    id: String,
    index: u64,
}

async fn get_step(
    _: Auth<Read>,
    state: State,
    p: web::Path<StepPath>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let step = blocking(move || query::step(&store, &p.id, p.index)).await?;
    Ok(json(StatusCode::OK, &step))
}

/// The data of a step kept as an artifact, as it was posted, streamed from its blob (range
/// requests work).
async fn get_artifact(
    _: Auth<Read>,
    state: State,
    p: web::Path<StepPath>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let (id, index) = (p.id.clone(), p.index);
    let (file, format) = blocking(move || {
        let (path, format) = query::artifact(&store, &id, index)?;
        let file = actix_files::NamedFile::open(&path)
            .map_err(|e| ApiError::internal(format!("artifact: {e}")))?;
        Ok((file, format))
    })
    .await?;
    let ext = match format {
        pipeproof_core::Format::Parquet => "parquet",
        pipeproof_core::Format::ArrowFile => "arrow",
        pipeproof_core::Format::ArrowStream => "arrows",
        pipeproof_core::Format::Csv => "csv",
    };
    let file = download(
        file,
        format
            .media_type()
            .parse()
            .expect("media types are valid MIME types"),
        format!("{}-{}.{ext}", p.id, p.index),
    );
    Ok(file.into_response(&req))
}

/// A file served as a download named `name`: an attachment of type `mime`, without a
/// Last-Modified (a stored file's time says nothing about its content).
fn download(
    file: actix_files::NamedFile,
    mime: actix_web::mime::Mime,
    name: String,
) -> actix_files::NamedFile {
    file.set_content_type(mime)
        .set_content_disposition(actix_web::http::header::ContentDisposition {
            disposition: actix_web::http::header::DispositionType::Attachment,
            parameters: vec![actix_web::http::header::DispositionParam::Filename(name)],
        })
        .use_last_modified(false)
}

async fn get_diff(
    _: Auth<Read>,
    state: State,
    p: web::Path<StepPath>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let step = blocking(move || query::step(&store, &p.id, p.index)).await?;
    match step.diff {
        Some(d) => Ok(json(StatusCode::OK, &d)),
        None => Err(ApiError::not_found(
            "no-diff",
            format!(
                "step {} is the first of its run, so it has no diff",
                step.record.index
            ),
        )),
    }
}

async fn get_details(
    _: Auth<Read>,
    state: State,
    p: web::Path<StepPath>,
    q: Query<DetailQuery>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let page = blocking(move || query::details(&store, &p.id, p.index, &q)).await?;
    Ok(json(StatusCode::OK, &page))
}

/// `GET /runs/{id}/trace?key=V[&key=W...]`: the key's value, one `key` per key column (or
/// one joining them with `|`).
async fn get_trace(
    _: Auth<Read>,
    state: State,
    id: web::Path<String>,
    q: Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let pairs = q.into_inner();
    if let Some((name, _)) = pairs.iter().find(|(name, _)| name != "key") {
        return Err(ApiError::bad_request(
            "invalid-query",
            format!(
                "unknown parameter `{name}`: a trace takes only `key=VALUE`, once per key column"
            ),
        ));
    }
    let value: Vec<String> = pairs.into_iter().map(|(_, v)| v).collect();
    if value.is_empty() {
        return Err(ApiError::bad_request(
            "invalid-query",
            "no key value: give `key=VALUE`, once per key column (see /api/v1/openapi.json)",
        ));
    }
    let store = state.store.clone();
    let t = blocking(move || query::trace(&store, &id, &value)).await?;
    Ok(json(StatusCode::OK, &t))
}

async fn seal_run(
    _: Auth<Ingest>,
    state: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let run = blocking(move || ingest::finish_run(&store, &id, RunStatus::Sealed, None)).await?;
    Ok(json(StatusCode::OK, &run))
}

async fn fail_run(
    _: Auth<Ingest>,
    state: State,
    id: web::Path<String>,
    body: web::Json<FailRun>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let run =
        blocking(move || ingest::finish_run(&store, &id, RunStatus::Failed, Some(&body.error)))
            .await?;
    Ok(json(StatusCode::OK, &run))
}

async fn redact_run(
    _: Auth<Admin>,
    state: State,
    id: web::Path<String>,
    body: web::Json<RedactRun>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let done = blocking(move || redact::redact_run(&store, &id, &body)).await?;
    Ok(json(StatusCode::OK, &done))
}

/// A run's bundle, streamed from its file (range requests work): an ended run's kept
/// bundle, or one written for this request ([`ingest::export_bundle`]).
async fn get_bundle(
    _: Auth<Read>,
    state: State,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let name = format!("{}.pipeproof.zip", id.as_str());
    let export = blocking(move || ingest::export_bundle(&store, &id, true)).await?;
    let file = actix_files::NamedFile::from_file(export.file, &name)
        .map_err(|e| ApiError::internal(format!("bundle: {e}")))?;
    // A kept bundle is served again as it is, so its ETag (of the file) lets a resumed
    // download (`If-Range`) continue; a bundle written for one request has none that a
    // later one could match.
    let file = download(
        file,
        "application/zip".parse().expect("a valid MIME type"),
        name,
    )
    .use_etag(export.kept)
    .use_last_modified(export.kept);
    Ok(file.into_response(&req))
}

/// `GET /log`: the log of seals' head, signed now.
async fn log_head(_: Auth<Read>, state: State) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let head = blocking(move || query::log_head(&store)).await?;
    Ok(json(StatusCode::OK, &head))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogEntriesQuery {
    start: Option<u64>,
    limit: Option<u64>,
}

/// `GET /log/entries?start=&limit=`: the log's entries in order (100 by default, at most
/// 1000 a page).
async fn log_entries(
    _: Auth<Read>,
    state: State,
    q: Query<LogEntriesQuery>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let (start, limit) = (q.start.unwrap_or(0), q.limit.unwrap_or(100).min(1000));
    let page = blocking(move || query::log_entries(&store, start, limit)).await?;
    Ok(json(StatusCode::OK, &page))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogInclusionQuery {
    run: String,
    size: Option<u64>,
}

/// `GET /log/inclusion?run=ID[&size=N]`: where a run's seal is in the log of N entries.
async fn log_inclusion(
    _: Auth<Read>,
    state: State,
    q: Query<LogInclusionQuery>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let LogInclusionQuery { run, size } = q.into_inner();
    let proof = blocking(move || query::log_inclusion(&store, &run, size)).await?;
    Ok(json(StatusCode::OK, &proof))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogConsistencyQuery {
    from: u64,
    to: Option<u64>,
}

/// `GET /log/consistency?from=M[&to=N]`: that the log of M entries is the start of the log
/// of N.
async fn log_consistency(
    _: Auth<Read>,
    state: State,
    q: Query<LogConsistencyQuery>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let LogConsistencyQuery { from, to } = q.into_inner();
    let proof = blocking(move || query::log_consistency(&store, from, to)).await?;
    Ok(json(StatusCode::OK, &proof))
}

async fn keys(_: Auth<Read>, state: State) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let keys = blocking(move || store.keys()).await?;
    Ok(json(StatusCode::OK, &Keys { keys }))
}

async fn create_token(
    _: Auth<Admin>,
    state: State,
    body: web::Json<CreateToken>,
) -> Result<HttpResponse, ApiError> {
    let CreateToken { name, scopes } = body.into_inner();
    if name.trim().is_empty() || scopes.is_empty() {
        return Err(ApiError::unprocessable(
            "invalid-token",
            "give the token a `name` and at least one of the `scopes` ingest, read, admin",
        ));
    }
    let store = state.store.clone();
    let token = blocking(move || store.create_token(&name, &scopes)).await?;
    Ok(json(StatusCode::CREATED, &token))
}

async fn list_tokens(_: Auth<Admin>, state: State) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let tokens = blocking(move || store.tokens()).await?;
    Ok(json(StatusCode::OK, &tokens))
}

async fn revoke_token(
    _: Auth<Admin>,
    state: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let (token, _) = blocking(move || store.revoke_token(&id)).await?;
    Ok(json(StatusCode::OK, &token))
}

async fn whoami(auth: Auth<Any>) -> HttpResponse {
    json(
        StatusCode::OK,
        &WhoAmI {
            name: auth.token.name,
            scopes: auth.token.scopes,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn a_panic_in_store_work_is_a_500_that_names_it() {
        let e = blocking(|| -> Result<(), ApiError> { panic!("index out of bounds: 7") })
            .await
            .unwrap_err();
        let p = e.problem();
        assert_eq!(p.status, 500);
        assert!(p.detail.contains("index out of bounds: 7"), "{}", p.detail);
        assert!(
            p.detail.contains("nothing of it was stored"),
            "{}",
            p.detail
        );
        // Said once, not wrapped in the advice to retry that other failures get.
        assert!(
            !p.detail.contains("retry it") && p.kind.ends_with("/defect"),
            "{p:?}"
        );
        assert_eq!(blocking(|| Ok(5)).await.unwrap(), 5);
    }
}
