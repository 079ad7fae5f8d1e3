//! Reading the store: runs with their steps, one step, a page of a step's diff details
//! (filtered by column and key), and the trace of one key through a run. Blocking: call
//! from `web::block`.

use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use pipeproof_core::api::{
    CellChange, DetailKind, DetailPage, DetailQuery, LogEntries, LogEntry, LogInclusion, Page,
    Redaction, Run, RunDetail, RunQuery, Step, Trace, TraceState, TraceStep,
};
use pipeproof_core::bundle::{RowTable, batch_from_ipc};
use pipeproof_core::hash::Hash;
use pipeproof_core::log::{self, ConsistencyProof, TreeHead};
use pipeproof_core::lookup::{self, key_hash, key_parts};
use serde_json::{Map, Value};

use super::Store;
use super::db::{self, StepRow};
use super::ingest::arrow_schema;
use crate::error::ApiError;

/// A page of runs, newest first.
pub fn runs(store: &Store, mut q: RunQuery) -> Result<Page<Run>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid-query",
            format!("limit must be between 1 and 500, got {limit}"),
        ));
    }
    q.limit = Some(limit);
    let (items, total) = store.read(|c| db::list_runs(c, &q))?;
    Ok(Page {
        items,
        total,
        offset: q.offset.unwrap_or(0),
        limit,
    })
}

/// A run with its steps and seal.
pub fn run_detail(store: &Store, run_id: &str) -> Result<RunDetail, ApiError> {
    let row = store
        .read(|c| db::get_run(c, run_id))?
        .ok_or_else(|| ApiError::unknown_run(run_id))?;
    let steps = store.read(|c| db::list_steps(c, run_id))?;
    Ok(RunDetail {
        run: row.run,
        steps: steps.into_iter().map(|s| s.step).collect(),
        seal: row.seal,
    })
}

/// One stored step.
pub fn step_row(store: &Store, run_id: &str, index: u64) -> Result<StepRow, ApiError> {
    match store.read(|c| db::get_step(c, run_id, index))? {
        Some(s) => Ok(s),
        None => {
            let run = store
                .read(|c| db::get_run(c, run_id))?
                .ok_or_else(|| ApiError::unknown_run(run_id))?;
            Err(ApiError::not_found(
                "unknown-step",
                format!(
                    "run `{run_id}` has {} step(s), numbered from 0; there is no step {index}",
                    run.run.steps
                ),
            ))
        }
    }
}

/// The file of a step's kept data (posted with `artifact=true`) and its format, read from
/// its first bytes.
pub fn artifact(
    store: &Store,
    run_id: &str,
    index: u64,
) -> Result<(std::path::PathBuf, pipeproof_core::Format), ApiError> {
    // An unknown run or step: the same problem as every step route. (Steps are never
    // removed, so the step is still there for the next query.)
    let row = step_row(store, run_id, index)?;
    let blob = store
        .read(|c| db::artifact_blob(c, run_id, index))?
        .flatten();
    let Some(blob) = blob else {
        if let Some(r) = row.step.redacted.as_ref().filter(|_| row.had_artifact) {
            return Err(redacted(run_id, index, r, "its kept data was"));
        }
        return Err(ApiError::not_found(
            "no-artifact",
            format!(
                "step {index} of run `{run_id}` was stored without its data; post a step with \
                 `artifact=true` to keep its data on the server"
            ),
        ));
    };
    let path = store.blobs.path(&blob);
    let mut head = [0u8; 8];
    let n = std::fs::File::open(&path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(|e| ApiError::internal(format!("artifact {blob}: {e}")))?;
    Ok((path, pipeproof_core::Format::sniff(&head[..n])))
}

/// One stored step as the API shows it.
pub fn step(store: &Store, run_id: &str, index: u64) -> Result<Step, ApiError> {
    Ok(step_row(store, run_id, index)?.step)
}

/// Formats every cell of a column as text (`None` for null).
fn texts(col: &ArrayRef) -> Result<Vec<Option<String>>, ApiError> {
    let f = ArrayFormatter::try_new(col.as_ref(), &FormatOptions::default())
        .map_err(|e| ApiError::internal(format!("format: {e}")))?;
    Ok((0..col.len())
        .map(|i| (!col.is_null(i)).then(|| f.value(i).to_string()))
        .collect())
}

fn take(batch: &RecordBatch, rows: &[u32]) -> Result<RecordBatch, ApiError> {
    let idx = UInt32Array::from(rows.to_vec());
    let cols = batch
        .columns()
        .iter()
        .map(|c| arrow_select::take::take(c.as_ref(), &idx, None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal(format!("take: {e}")))?;
    RecordBatch::try_new(batch.schema(), cols).map_err(|e| ApiError::internal(format!("{e}")))
}

/// Rows of a batch as JSON objects (all columns, nulls explicit).
fn json_rows(batch: &RecordBatch) -> Result<Vec<Map<String, Value>>, ApiError> {
    let mut out = Vec::new();
    {
        let mut w = arrow_json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow_json::writer::JsonArray>(&mut out);
        w.write(batch)
            .and_then(|_| w.finish())
            .map_err(|e| ApiError::internal(format!("json: {e}")))?;
    }
    if out.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&out).map_err(|e| ApiError::internal(format!("json: {e}")))
}

/// 410 for what a redaction removed of a step (`removed`: "its diff details were").
fn redacted(run_id: &str, index: u64, r: &Redaction, removed: &str) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::GONE,
        "redacted",
        format!(
            "step {index} of run `{run_id}` was redacted at {} ({}): {removed} removed; its \
             record, row hashes, statistics and diff counts remain",
            r.at, r.reason
        ),
    )
}

fn detail_batch(store: &Store, s: &StepRow, kind: DetailKind) -> Result<RecordBatch, ApiError> {
    let Some(blobs) = &s.details else {
        if let Some(r) = s.step.redacted.as_ref().filter(|_| s.step.diff.is_some()) {
            return Err(redacted(
                &s.step.record.run_id,
                s.step.record.index,
                r,
                "its diff details were",
            ));
        }
        return Err(ApiError::not_found(
            "no-diff",
            format!(
                "step {} is the first of its run, so it has no diff and no details",
                s.step.record.index
            ),
        ));
    };
    let blob = match kind {
        DetailKind::Added => &blobs[0],
        DetailKind::Removed => &blobs[1],
        DetailKind::Changed => &blobs[2],
    };
    Ok(batch_from_ipc(store.blobs.get(blob)?)?)
}

/// A page of a step's diff details.
pub fn details(
    store: &Store,
    run_id: &str,
    index: u64,
    q: &DetailQuery,
) -> Result<DetailPage, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid-query",
            format!("limit must be between 1 and 1000, got {limit}"),
        ));
    }
    let offset = q.offset.unwrap_or(0);
    let s = step_row(store, run_id, index)?;
    let batch = detail_batch(store, &s, q.kind)?;
    let key = &s.step.record.key;
    let mut keep: Vec<u32> = (0..batch.num_rows() as u32).collect();
    let column = q
        .column
        .as_deref()
        .filter(|_| q.kind == DetailKind::Changed);
    if let (Some(column), Some(col)) = (column, batch.column_by_name("column")) {
        let names = texts(col)?;
        keep.retain(|&i| names[i as usize].as_deref() == Some(column));
    }
    if let Some(value) = q.key.as_deref() {
        if key.is_empty() {
            return Err(ApiError::bad_request(
                "invalid-query",
                format!("step {index} was diffed without a key, so `key` cannot filter it"),
            ));
        }
        let found = lookup::rows_with_key(&batch, key, value)
            .map_err(|e| ApiError::internal(format!("the key of a detail table: {e}")))?;
        keep.retain(|&i| found.binary_search(&(i as usize)).is_ok());
    }
    let total = keep.len() as u64;
    let from = (offset.min(total)) as usize;
    let to = (offset.saturating_add(limit).min(total)) as usize;
    let page = take(&batch, &keep[from..to])?;
    let diff = s.step.diff.as_ref();
    Ok(DetailPage {
        kind: q.kind,
        columns: batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect(),
        rows: json_rows(&page)?,
        total,
        offset,
        limit,
        truncated: diff.is_some_and(|d| d.details_truncated || d.summary_only),
    })
}

/// The rows of a detail batch whose key hashes to `kh` (compared as values, so `007` finds
/// the row of key 7, as the row tables did).
fn rows_for_key(batch: &RecordBatch, key: &[String], kh: Hash) -> Result<RecordBatch, ApiError> {
    let rows = lookup::rows_with_key_hash(batch, key, kh)
        .map_err(|e| ApiError::internal(format!("the key of a detail table: {e}")))?;
    take(batch, &rows.iter().map(|&i| i as u32).collect::<Vec<_>>())
}

/// Follows one key through every step of a run. `value` is the key's value as text, one
/// per key column (or, for a key of several columns, one text joining them with `|`).
pub fn trace(store: &Store, run_id: &str, value: &[String]) -> Result<Trace, ApiError> {
    let run = store
        .read(|c| db::get_run(c, run_id))?
        .ok_or_else(|| ApiError::unknown_run(run_id))?;
    let steps = store.read(|c| db::list_steps(c, run_id))?;
    let Some(key) = steps
        .iter()
        .rev()
        .map(|s| s.step.record.key.clone())
        .find(|k| !k.is_empty())
    else {
        return Err(ApiError::unprocessable(
            "no-key",
            format!(
                "no step of run `{}` was posted with a key, so rows cannot be followed; \
                 post steps with ?key=COLUMN",
                run.run.id
            ),
        ));
    };
    let parts = key_parts(&key, value);
    let mut out = Vec::with_capacity(steps.len());
    // What the previous step held for the key: Some(row hash or None when absent); None
    // when unknown.
    let mut prev: Option<Option<Hash>> = Some(None);
    let mut values: Option<Map<String, Value>> = None;
    let mut parsed_once = false;
    for s in &steps {
        let rec = &s.step.record;
        let mut t = TraceStep {
            index: rec.index,
            step: rec.step.clone(),
            state: TraceState::Unknown,
            row_hash: None,
            values: None,
            changes: Vec::new(),
            // Only a step with a diff has details a trace reads (a first step's kept
            // data is not one of them).
            redacted: s.step.redacted.is_some() && s.details.is_none() && s.step.diff.is_some(),
        };
        let kh = if rec.key == key {
            key_hash(&arrow_schema(&s.arrow_schema)?, &key, &parts)
        } else {
            None
        };
        if rec.key != key {
            prev = None;
            values = None;
            out.push(t);
            continue;
        }
        parsed_once |= kh.is_some();
        let table = RowTable::from_ipc(store.blobs.get(&s.rows_blob)?)?;
        let now: Option<Hash> = match (kh, &table.key_hashes) {
            (Some(kh), Some(keys)) => keys
                .iter()
                .position(|k| *k == kh)
                .map(|i| table.row_hashes[i]),
            _ => None,
        };
        t.row_hash = now;
        let has_details = s.details.is_some()
            && !s
                .step
                .diff
                .as_ref()
                .is_some_and(|d| d.details_truncated || d.summary_only);
        // The row's changed cells, when the state was read from the step's details.
        let mut changed_rows = None;
        t.state = match (prev, now) {
            (None, _) => TraceState::Unknown,
            (Some(None), Some(_)) => TraceState::Added,
            (Some(Some(a)), Some(b)) if a == b => TraceState::Unchanged,
            // The hashes differ: whether the diff counts the row as changed is its own
            // word (a column added or ignored, or a tolerance, changes a hash, not a row).
            (Some(Some(_)), Some(_)) => {
                let diff = s.step.diff.as_ref();
                let found =
                    match (kh, s.details.is_some()) {
                        (Some(kh), true) if diff.is_some_and(|d| d.changed > 0) => Some(
                            rows_for_key(&detail_batch(store, s, DetailKind::Changed)?, &key, kh)?,
                        ),
                        _ => None,
                    };
                let columns = s.step.schema.len();
                match (diff, found) {
                    (Some(d), _) if d.changed == 0 => TraceState::Unchanged,
                    (_, Some(rows)) if rows.num_rows() > 0 => {
                        changed_rows = Some(rows);
                        TraceState::Changed
                    }
                    (_, Some(_)) if has_details => TraceState::Unchanged,
                    (Some(d), _) if d.row_hash_difference_is_a_change(columns) => {
                        TraceState::Changed
                    }
                    _ => TraceState::Unknown,
                }
            }
            (Some(Some(_)), None) => TraceState::Removed,
            (Some(None), None) => TraceState::Absent,
        };
        let hash_differs = matches!((prev, now), (Some(Some(a)), Some(b)) if a != b);
        match (t.state, kh) {
            (TraceState::Added, Some(kh)) if s.details.is_some() => {
                let rows = rows_for_key(&detail_batch(store, s, DetailKind::Added)?, &key, kh)?;
                values = json_rows(&rows)?.into_iter().next().map(|mut m| {
                    m.remove("_row");
                    m
                });
            }
            (TraceState::Changed, _) if changed_rows.is_some() => {
                let rows = changed_rows.take().expect("matched");
                for r in json_rows(&rows)? {
                    let column = r.get("column").and_then(Value::as_str).unwrap_or("");
                    let change = CellChange {
                        column: column.to_string(),
                        old: r.get("old").cloned().unwrap_or(Value::Null),
                        new: r.get("new").cloned().unwrap_or(Value::Null),
                    };
                    if let Some(v) = &mut values {
                        v.insert(change.column.clone(), change.new.clone());
                    }
                    t.changes.push(change);
                }
                if !has_details {
                    values = None;
                }
            }
            // Equal to the diff, yet with another hash: values of columns added, ignored or
            // within tolerance are not known.
            (TraceState::Unchanged, _) if !hash_differs => {}
            _ => values = None,
        }
        if now.is_some() {
            t.values = values.clone();
        }
        prev = Some(now);
        out.push(t);
    }
    let asked = parts.join("|");
    if !parsed_once {
        let hint = if parts.len() != key.len() {
            format!(
                "{} value(s) for {} key column(s): give `key=` once per key column, in the \
                 key's order (or once, the values joined with `|`)",
                parts.len(),
                key.len()
            )
        } else {
            "each value must read as its column's type".to_string()
        };
        return Err(ApiError::unprocessable(
            "invalid-key-value",
            format!(
                "`{asked}` is not a value of the key ({}) of run `{run_id}`: {hint}",
                key.join(", ")
            ),
        ));
    }
    Ok(Trace {
        run_id: run_id.to_string(),
        key,
        value: asked,
        steps: out,
    })
}

/// The log of seals' head now, signed.
pub fn log_head(store: &Store) -> Result<TreeHead, ApiError> {
    let (size, root) = store.with_log(|t| (t.len(), t.root(t.len())))?;
    Ok(store
        .key()
        .sign_tree_head_of(size as u64, root, &super::now()))
}

/// The log's size, or 422 naming `what` when `size` is not a size it has had.
fn log_size(now: usize, size: Option<u64>, what: &str) -> Result<usize, ApiError> {
    match size {
        None => Ok(now),
        Some(n) if n <= now as u64 => Ok(n as usize),
        Some(n) => Err(ApiError::unprocessable(
            "log-size",
            format!("{what} {n} is beyond the log, which has {now} entries"),
        )),
    }
}

/// Where a run's seal is in the log of `size` entries (default: all of it).
pub fn log_inclusion(
    store: &Store,
    run_id: &str,
    size: Option<u64>,
) -> Result<LogInclusion, ApiError> {
    let Some(index) = store.read(|c| db::log_index(c, run_id))? else {
        let run = store.read(|c| db::get_run(c, run_id))?;
        return Err(match run {
            None => ApiError::unknown_run(run_id),
            Some(r) => ApiError::unprocessable(
                "not-logged",
                format!(
                    "run `{run_id}` is {} and has no seal in the log yet: seal it (or end it \
                     as failed) first",
                    r.run.status.as_str()
                ),
            ),
        });
    };
    store.with_log(|tree| {
        let size = log_size(tree.len(), size, "size")?;
        if index as usize >= size {
            return Err(ApiError::unprocessable(
                "log-size",
                format!(
                    "run `{run_id}` is entry {index} of the log, so it is in no log of {size} \
                     entries; ask for a size above {index}"
                ),
            ));
        }
        Ok(LogInclusion {
            run_id: run_id.to_string(),
            leaf: tree.leaves()[index as usize],
            proof: log::inclusion_proof_in(tree, index as usize, size),
        })
    })?
}

/// The proof that the log of `from` entries is the start of the log of `to` (default: all).
pub fn log_consistency(
    store: &Store,
    from: u64,
    to: Option<u64>,
) -> Result<ConsistencyProof, ApiError> {
    store.with_log(|tree| {
        let to = log_size(tree.len(), to, "to")?;
        let from = log_size(to, Some(from), "from")?;
        Ok(log::consistency_proof_in(tree, from, to))
    })?
}

/// The log's entries from `start`, at most `limit`.
pub fn log_entries(store: &Store, start: u64, limit: u64) -> Result<LogEntries, ApiError> {
    let (size, entries) =
        store.read(|c| Ok((db::log_size(c)?, db::log_entries(c, start, limit)?)))?;
    let entries = entries
        .into_iter()
        .map(|e| {
            let seal = e
                .seal
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
                .ok_or_else(|| {
                    ApiError::internal(format!(
                        "log entry {} names run {}, which has no readable seal: the store is \
                         damaged (pipeproof check)",
                        e.index, e.run_id
                    ))
                })?;
            Ok(LogEntry {
                index: e.index,
                run_id: e.run_id,
                leaf: e.leaf,
                seal,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(LogEntries { size, entries })
}
