//! Writing to the store: creating runs, ingesting a step (decode, `core::bundle::build_step`
//! against the previous step's data, blobs, one transaction), sealing or failing a run, and
//! exporting a run as a bundle. Every function here blocks: call them from `web::block`.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::Context;
use arrow_schema::Schema;
use pipeproof_core::api::{
    Column, CreateRun, MAX_NAME, MAX_REASON, Run, RunStatus, Step, StepQuery, check_text,
};
use pipeproof_core::bundle::{
    BuiltStep, BundleStep, BundleWriter, Details, Manifest, RowTable, RowsMember, RunInfo,
    StepContext, batch_from_ipc, build_step, write_batch_ipc,
};
use pipeproof_core::table::CachedSource;
use pipeproof_core::{BatchSource, DiffConfig, Format};
use serde_json::{Map, Value};

use super::db::{self, NewStep, RunRow};
use super::{Store, new_id, now};
use crate::error::ApiError;
use crate::source::FileSource;

/// A request body saved under `tmp/`, removed when dropped unless moved away.
pub struct Upload {
    path: PathBuf,
    format: Format,
}

impl Upload {
    /// A body saved at `path` in `format`.
    pub fn new(path: PathBuf, format: Format) -> Upload {
        Upload { path, format }
    }

    /// Sets the format (once sniffed from the first bytes).
    pub fn set_format(&mut self, format: Format) {
        self.format = format;
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Creates a run.
pub fn create_run(store: &Store, req: CreateRun) -> Result<Run, ApiError> {
    if req.pipeline.trim().is_empty() {
        return Err(ApiError::unprocessable(
            "invalid-run",
            "`pipeline` is empty; name the pipeline this run belongs to",
        ));
    }
    let invalid = |e| ApiError::unprocessable("invalid-run", e);
    check_text("`pipeline`", &req.pipeline, MAX_NAME).map_err(invalid)?;
    if let Some(v) = &req.code_version {
        check_text("`code_version`", v, MAX_NAME).map_err(invalid)?;
    }
    for (name, value) in &req.labels {
        if name.trim().is_empty() {
            return Err(invalid(
                "a label has an empty name; write labels as {\"env\": \"prod\"}".into(),
            ));
        }
        check_text("a label's name", name, MAX_NAME).map_err(invalid)?;
        check_text(&format!("label `{name}`"), value, MAX_REASON).map_err(invalid)?;
    }
    if !(req.params.is_null() || req.params.is_object()) {
        return Err(invalid(
            "`params` must be a JSON object, e.g. {\"threshold\": 3}".into(),
        ));
    }
    let run = Run {
        id: new_id(),
        pipeline: req.pipeline,
        labels: req.labels,
        code_version: req.code_version,
        params: if req.params.is_null() {
            Value::Object(Map::new())
        } else {
            req.params
        },
        status: RunStatus::Open,
        error: None,
        created_at: now(),
        sealed_at: None,
        steps: 0,
        rows: None,
        head: None,
    };
    store.write(|c| db::insert_run(c, &run))?;
    Ok(run)
}

/// The run, if it exists and takes steps.
pub fn open_run(store: &Store, run_id: &str) -> Result<RunRow, ApiError> {
    let row = store
        .read(|c| db::get_run(c, run_id))?
        .ok_or_else(|| ApiError::unknown_run(run_id))?;
    if row.run.status != RunStatus::Open {
        return Err(ApiError::run_closed(&row.run));
    }
    Ok(row)
}

/// The step stored earlier under an idempotency key, when this is a retry of the request
/// that stored it. A key posted again with another step name or other options is a new
/// request under a used key: refused (409), since answering with the stored step would
/// tell the client that what it sent now was stored. This needs no body; [`same_data`]
/// compares the body once it is read.
pub fn replayed_step(
    store: &Store,
    run_id: &str,
    key: Option<&str>,
    q: &StepQuery,
    params: &Value,
) -> Result<Option<Step>, ApiError> {
    let Some(key) = key else { return Ok(None) };
    let Some(row) = store.read(|c| db::step_by_idempotency_key(c, run_id, key))? else {
        return Ok(None);
    };
    let record = &row.step.record;
    if record.step != q.step.trim() || record.params != *params {
        return Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "idempotency-key-reused",
            format!(
                "the idempotency key `{key}` was used for step {} `{}` of run `{run_id}` with {}; \
                 this request names step `{}` with {}: send a new step with a new key",
                record.index,
                record.step,
                record.params,
                q.step.trim(),
                params
            ),
        ));
    }
    Ok(Some(row.step))
}

/// Refuses (409) a retry under a used idempotency key whose body holds other data than the
/// step that key stored: answering with the stored step would tell the client that this
/// data was stored. The data is compared by fingerprint, so the same table written again
/// (another format or compression) is the same request.
fn same_data(step: &Step, key: &str, upload: &Upload) -> Result<(), ApiError> {
    let sent = pipeproof_core::fingerprint_only(&open_source(&upload.path, upload.format)?)?;
    let stored = &step.record;
    let rows = |n: u64| match n {
        1 => "1 row".to_string(),
        n => format!("{n} rows"),
    };
    let short = |h: &pipeproof_core::hash::Hash| h.to_hex()[..12].to_string();
    // What differs, most telling first.
    let differs = if sent.schema_hash != stored.schema_hash {
        "other columns (names, types or their order)".to_string()
    } else if sent.rows != stored.rows {
        format!("{} where it stored {}", rows(sent.rows), rows(stored.rows))
    } else if sent.content_root != stored.content_root {
        format!(
            "other rows (content root {}, stored {})",
            short(&sent.content_root),
            short(&stored.content_root)
        )
    } else if sent.order_root != stored.order_root {
        "the same rows in another order".to_string()
    } else {
        return Ok(());
    };
    Err(ApiError::new(
        actix_web::http::StatusCode::CONFLICT,
        "idempotency-key-reused",
        format!(
            "the idempotency key `{key}` stored step {} `{}` of run `{}` with other data: this \
             body holds {differs}; send a new step with a new key",
            stored.index, stored.step, stored.run_id,
        ),
    ))
}

fn list(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The diff configuration and the recorded parameters of a step post.
pub fn step_options(q: &StepQuery) -> Result<(DiffConfig, Value), ApiError> {
    if q.step.trim().is_empty() {
        return Err(ApiError::unprocessable(
            "invalid-options",
            "`step` is empty; name the step, e.g. ?step=deduplicate",
        ));
    }
    check_text("`step`", q.step.trim(), MAX_NAME)
        .map_err(|e| ApiError::unprocessable("invalid-options", e))?;
    let mut cfg = DiffConfig {
        key: list(&q.key),
        ignore_columns: list(&q.ignore),
        ..DiffConfig::default()
    };
    let mut params = match q.params.as_deref() {
        None | Some("") => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(ApiError::unprocessable(
                    "invalid-options",
                    "`params` must be a JSON object, e.g. params={\"threshold\":3}",
                ));
            }
            Err(e) => {
                return Err(ApiError::unprocessable(
                    "invalid-options",
                    format!("`params` is not valid JSON ({e}); send a URL-encoded JSON object"),
                ));
            }
        },
    };
    let mut set = |name: &str, v: Value| -> Result<(), ApiError> {
        if params.insert(name.to_string(), v).is_some() {
            return Err(ApiError::unprocessable(
                "invalid-options",
                format!("`params` has a member `{name}`, which is also a diff option; rename it"),
            ));
        }
        Ok(())
    };
    if !cfg.key.is_empty() {
        set("key", serde_json::json!(cfg.key))?;
    }
    if !cfg.ignore_columns.is_empty() {
        set("ignore_columns", serde_json::json!(cfg.ignore_columns))?;
    }
    if let Some(v) = q.abs_tol {
        cfg.abs_tol = v;
        set("abs_tol", serde_json::json!(v))?;
    }
    if let Some(v) = q.rel_tol {
        cfg.rel_tol = v;
        set("rel_tol", serde_json::json!(v))?;
    }
    if let Some(v) = q.chunk_rows {
        cfg.chunk_rows = v;
        set("chunk_rows", serde_json::json!(v))?;
    }
    if let Some(v) = q.summary_only_threshold {
        cfg.summary_only_threshold = v;
        set("summary_only_threshold", serde_json::json!(v))?;
    }
    if let Some(v) = q.max_detail_rows {
        cfg.max_detail_rows = v;
        set("max_detail_rows", serde_json::json!(v))?;
    }
    if q.artifact == Some(true) {
        set("artifact", Value::Bool(true))?;
    }
    cfg.validate().map_err(|e| {
        ApiError::unprocessable("invalid-options", format!("{e}; fix the query string"))
    })?;
    Ok((cfg, Value::Object(params)))
}

fn format_name(f: Format) -> String {
    serde_json::to_value(f)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .expect("formats serialise as strings")
}

fn parse_format(s: &str) -> Result<Format, ApiError> {
    serde_json::from_value(Value::String(s.into()))
        .map_err(|_| ApiError::internal(format!("unknown stored format `{s}`")))
}

fn open_source(path: &Path, format: Format) -> Result<FileSource, ApiError> {
    FileSource::open(path, Some(format)).map_err(|e| match e.downcast::<pipeproof_core::Error>() {
        Ok(core) => ApiError::from(core),
        Err(e) => ApiError::bad_request(
            "malformed-body",
            format!("cannot read the body as {format}: {e:#}"),
        ),
    })
}

/// Ingests one step: the body is decoded from its file, fingerprinted and diffed against
/// the run's previous step (core), its blobs are written durably, and one transaction stores
/// the step and moves the run's head. Returns the step and whether it is new (false for a
/// retry with a known idempotency key).
pub fn ingest_step(
    store: &Store,
    run_id: &str,
    q: &StepQuery,
    idempotency_key: Option<&str>,
    upload: Upload,
) -> Result<(Step, bool), ApiError> {
    let (cfg, params) = step_options(q)?;
    let lock = store.run_lock(run_id);
    let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(key) = idempotency_key
        && let Some(step) = replayed_step(store, run_id, Some(key), q, &params)?
    {
        same_data(&step, key, &upload)?;
        return Ok((step, false));
    }
    let row = open_run(store, run_id)?;
    let index = row.run.steps;
    let data = CachedSource::new(
        open_source(&upload.path, upload.format)?,
        cfg.cache_budget(),
    );
    let mut previous = match (index, &row.carry) {
        (0, _) => None,
        (_, Some((name, format))) => {
            let prev = store
                .read(|c| db::get_step(c, run_id, index - 1))?
                .ok_or_else(|| ApiError::internal(format!("step {} is missing", index - 1)))?;
            let source = open_source(&store.carry_path(name), parse_format(format)?)
                .map_err(|e| ApiError::internal(format!("the previous step's data: {e}")))?;
            // Its row table and statistics spare the diff hashing it again; if the blob
            // cannot be read, the diff computes them from the data instead.
            let rows = store
                .blobs
                .get(&prev.rows_blob)
                .map_err(|e| e.to_string())
                .and_then(|bytes| RowTable::from_ipc(bytes).map_err(|e| e.to_string()));
            let stored = match rows {
                Ok(rows) => Some((rows, prev.step.stats)),
                Err(e) => {
                    tracing::warn!(run = run_id, error = %e, "the previous step's row table cannot be read; hashing its data again");
                    None
                }
            };
            Some((
                prev.step.record,
                CachedSource::new(source, cfg.cache_budget()),
                stored,
            ))
        }
        (_, None) => {
            return Err(ApiError::internal(format!(
                "run {run_id} has {index} steps but no data of its last step"
            )));
        }
    };
    let previous_stored = previous.as_mut().and_then(|(_, _, stored)| stored.take());
    let info = RunInfo::of(&row.run);
    let created_at = now();
    let t_build = std::time::Instant::now();
    // The body becomes the carried data, which must be on disk before the commit: it is
    // synced on a thread of its own while the step is built.
    let (built, synced) = std::thread::scope(|s| {
        let synced = s.spawn(|| File::open(&upload.path).and_then(|f| f.sync_all()));
        let built = build_step(
            &data,
            StepContext {
                run: &info,
                index,
                step: q.step.trim(),
                created_at: &created_at,
                params,
                config: &cfg,
                previous: previous
                    .as_ref()
                    .map(|(r, d, _)| (r, d as &dyn BatchSource)),
                previous_stored,
            },
        );
        (built, synced.join())
    });
    let built: BuiltStep = built?;
    synced
        .map_err(|_| ApiError::internal("syncing the body to disk panicked".to_string()))?
        .map_err(|e| ApiError::internal(format!("cannot sync the body to disk: {e}")))?;
    drop(previous);
    let schema = data.schema();
    drop(data);
    let build_ms = t_build.elapsed().as_millis() as u64;
    let t_store = std::time::Instant::now();
    // Until the step is committed, no blob it names may be removed.
    let blobs_in_use = store.blob_use.read().unwrap_or_else(|p| p.into_inner());
    let (rows_blob, details) = put_blobs(store, &built.stored)?;
    let artifact = q.artifact == Some(true);
    let artifact_blob = if artifact {
        Some(store.blobs.put_file(&upload.path)?)
    } else {
        None
    };
    let record = built.record;
    let step = Step {
        hash: record.hash(),
        schema: Column::of_record(&record),
        stats: built.stored.stats,
        diff: built.stored.diff,
        artifact,
        record,
        redacted: None,
        statistics_redacted: None,
    };
    let arrow_schema = serde_json::to_string(schema.as_ref())
        .map_err(|e| ApiError::internal(format!("schema: {e}")))?;
    let carry_name = format!("{run_id}.{index}");
    let carry_format = format_name(upload.format);
    store.install_carry(&upload.path, &carry_name)?;
    let committed = store.write(|c| {
        let tx = c.transaction()?;
        db::insert_step(
            &tx,
            &NewStep {
                step: &step,
                arrow_schema: &arrow_schema,
                rows_blob: &rows_blob,
                details: details.as_ref(),
                artifact_blob: artifact_blob.as_deref(),
                idempotency_key,
                carry: (&carry_name, &carry_format),
            },
        )?;
        tx.commit()
    });
    drop(blobs_in_use);
    if let Err(e) = committed {
        let _ = std::fs::remove_file(store.carry_path(&carry_name));
        return Err(e);
    }
    // Stored now, under the run's lock: its record's time is when this ingest began.
    store.touch(run_id);
    if let Some((old, _)) = &row.carry {
        // Freeing a large file takes a tenth of a second on ext4: not on the reply's path.
        let old = store.carry_path(old);
        std::thread::spawn(move || std::fs::remove_file(old));
    }
    tracing::info!(
        run = run_id,
        index,
        step = %step.record.step,
        rows = step.record.rows,
        build_ms,
        store_ms = t_store.elapsed().as_millis() as u64,
        "stored a step"
    );
    Ok((step, true))
}

/// Writes a step's row table and details as blobs, each on a thread of its own (most of a
/// blob's time is its fsync); returns their ids.
fn put_blobs(
    store: &Store,
    stored: &BundleStep,
) -> Result<(String, Option<[String; 3]>), ApiError> {
    let put = |write: &dyn Fn(&mut dyn std::io::Write) -> pipeproof_core::Result<()>| {
        store
            .blobs
            .put_with(|w| Ok(write(w)?))
            .map_err(ApiError::from)
    };
    std::thread::scope(|s| {
        let rows = s.spawn(|| put(&|w| stored.row_table.write_ipc(w)));
        let details = stored.details.as_ref().map(|d| {
            [&d.added, &d.removed, &d.changed]
                .map(|b| s.spawn(move || put(&|w| write_batch_ipc(b, w))))
        });
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<String, ApiError>>| {
            h.join()
                .map_err(|_| ApiError::internal("writing a blob panicked".to_string()))?
        };
        let details = match details {
            Some([a, r, c]) => Some([join(a)?, join(r)?, join(c)?]),
            None => None,
        };
        Ok((join(rows)?, details))
    })
}

/// Seals (`Sealed`) or fails (`Failed`) an open run: signs the chain head and the run as it
/// ends (a seal v2: its description as exports will carry it, with this status, error and
/// time), stores the seal and drops the carried data.
pub fn finish_run(
    store: &Store,
    run_id: &str,
    status: RunStatus,
    error: Option<&str>,
) -> Result<Run, ApiError> {
    let lock = store.run_lock(run_id);
    let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    let row = open_run(store, run_id)?;
    end_run(store, row, status, error)
}

/// [`finish_run`] of a run found open, its lock held.
pub(super) fn end_run(
    store: &Store,
    row: RunRow,
    status: RunStatus,
    error: Option<&str>,
) -> Result<Run, ApiError> {
    let run_id = row.run.id.as_str();
    let ended = Run {
        status,
        error: error.map(str::to_string),
        sealed_at: Some(now()),
        ..row.run.clone()
    };
    let seal = store
        .key()
        .seal(
            &RunInfo::of(&ended),
            row.run.steps,
            row.run.head.unwrap_or_default(),
        )
        .map_err(|e| ApiError::internal(format!("cannot seal run {run_id}: {e}")))?;
    if !store.write(|c| db::seal_run(c, run_id, status, error, &seal))? {
        // Ended meanwhile (by a process that does not take this lock).
        return Err(open_run(store, run_id).err().unwrap_or_else(|| {
            ApiError::internal(format!("run {run_id} is open but could not be ended"))
        }));
    }
    if let Some((carry, _)) = &row.carry {
        let _ = std::fs::remove_file(store.carry_path(carry));
    }
    store.forget_activity(run_id);
    Ok(store
        .read(|c| db::get_run(c, run_id))?
        .ok_or_else(|| ApiError::unknown_run(run_id))?
        .run)
}

/// A run's bundle as exported: the open file, at its start, and whether it is kept (the
/// run ended, so the file is the same for every later export).
pub struct Export {
    /// The bundle.
    pub file: File,
    /// True when the file is kept under `exports/` and will be served again as it is.
    pub kept: bool,
}

/// A run as a bundle (the canonical zip of `core::bundle`). With `keep`, an ended run's
/// bundle kept from an earlier export is served as it is, once checked against its hash
/// ([`super::exports`]); without, it is written from the blobs and not kept (what
/// `pipeproof check` verifies). Otherwise it is written a step at a time to a file under `tmp/`
/// (at most [`super::exports::MAX_WRITING`] at once, else 503): an ended run's is then kept,
/// an open run's file is unlinked at once, the open file being all there is of it. Only one
/// step's details are in memory at a time, and row tables are copied from their blobs as
/// they are, so a run of any size exports in little memory. Every blob is checked against
/// its name (a row table's once copied: on a mismatch the file is dropped unsent), so a
/// blob damaged on disk fails the export instead of giving a bundle that does not verify.
pub fn export_bundle(store: &Store, run_id: &str, keep: bool) -> Result<Export, ApiError> {
    let row = store
        .read(|c| db::get_run(c, run_id))?
        .ok_or_else(|| ApiError::unknown_run(run_id))?;
    let ended = keep && row.seal.is_some();
    // One request at a time looks for and writes an ended run's bundle: others wait, then
    // serve the file it kept (the same file, so the same ETag).
    let lock = ended.then(|| store.exports.run_lock(run_id));
    let _one = lock
        .as_ref()
        .map(|l| l.lock().unwrap_or_else(|p| p.into_inner()));
    if ended && let Some((file, _)) = store.exports.kept(run_id) {
        return Ok(Export { file, kept: true });
    }
    let _writing = store.exports.writing()?;
    let steps = store.read(|c| db::list_steps(c, run_id))?;
    let (redacted, statistics_redacted) = super::redact::in_bundle(&steps);
    let manifest = Manifest {
        spec: Manifest::spec_for(&redacted, &statistics_redacted).into(),
        run: RunInfo::of(&row.run),
        records: steps.iter().map(|s| s.step.record.clone()).collect(),
        seal: row.seal,
        redacted,
        statistics_redacted,
    };
    let path = store.tmp_path("bundle");
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let unlink =
        || std::fs::remove_file(&path).with_context(|| format!("cannot unlink {}", path.display()));
    if !ended {
        // Unlinked while open: nothing to clean up, whatever happens next.
        unlink()?;
        let file = write_bundle(store, run_id, &manifest, &steps, file, &path)?;
        return Ok(Export { file, kept: false });
    }
    // Named until it is kept (a crash leaves it to the next start's emptying of `tmp/`).
    let file = write_bundle(store, run_id, &manifest, &steps, file, &path).inspect_err(|_| {
        let _ = unlink();
    })?;
    let (file, kept) = store.exports.keep(run_id, file, &path);
    Ok(Export {
        file,
        kept: kept.is_some(),
    })
}

/// Writes a run's bundle into `file` (created at `path`, under `tmp/`); returns it rewound.
fn write_bundle(
    store: &Store,
    run_id: &str,
    manifest: &Manifest,
    steps: &[db::StepRow],
    file: File,
    path: &std::path::Path,
) -> Result<File, ApiError> {
    // What fails here is writing the temp file (a full disk, say) or reading a blob.
    let tmp = path.parent().unwrap_or(path).display();
    let writing = |e: pipeproof_core::Error| {
        ApiError::internal(format!(
            "cannot write the bundle of run {run_id} (to a file in {tmp}, or from its blobs): {e}"
        ))
    };
    let details_table = |id: &str| -> Result<arrow_array::RecordBatch, ApiError> {
        let bytes = store.blobs.get_checked(id)?;
        batch_from_ipc(bytes).map_err(|e| ApiError::internal(format!("blob {id}: {e}")))
    };
    let mut w = BundleWriter::new(std::io::BufWriter::with_capacity(1 << 20, file), manifest)
        .map_err(writing)?;
    for s in steps {
        let details = match &s.details {
            Some([a, r, c]) => Some(Details {
                added: details_table(a)?,
                removed: details_table(r)?,
                changed: details_table(c)?,
            }),
            None => None,
        };
        // Copied as stored: blobs are written by the same `RowTable::write_ipc` the bundle
        // writer uses (the golden bundle in docs/spec/vectors holds that encoding fixed).
        let mut rows = store.blobs.open(&s.rows_blob)?;
        let len = rows.size();
        w.step(
            RowsMember::Ipc {
                len,
                bytes: &mut rows,
            },
            &s.step.stats,
            s.step.diff.as_ref(),
            details.as_ref(),
        )
        .map_err(writing)?;
        rows.check()?;
    }
    let mut file = w
        .finish()
        .map_err(writing)?
        .into_inner()
        .map_err(|e| anyhow::Error::from(e.into_error()))?;
    file.seek(SeekFrom::Start(0))
        .context("cannot rewind the bundle")?;
    Ok(file)
}

/// A stored step's Arrow schema.
pub fn arrow_schema(json: &str) -> Result<Schema, ApiError> {
    serde_json::from_str(json).map_err(|e| ApiError::internal(format!("stored schema: {e}")))
}
