//! The HTTP API's request and response types, shared by the server and the SPA so that the
//! two cannot drift. Routes live under `/api/v1`; `docs/API.md` describes them and the server
//! publishes them as an OpenAPI document at `/api/v1/openapi.json`.
//!
//! Every route but `/healthz` and the SPA's static files takes `Authorization: Bearer TOKEN`.
//! Errors are [`Problem`] documents (`application/problem+json`).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diff::DiffSummary;
use crate::hash::Hash;
use crate::record::StepRecord;
use crate::sign::Seal;
use crate::stats::ColumnStats;

/// The path prefix of every API route.
pub const PREFIX: &str = "/api/v1";

/// The header that makes a step post idempotent: a retry with the same key returns the step
/// stored by the first attempt instead of storing it twice.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Create runs, post steps, seal runs.
    Ingest,
    /// Read runs, steps, diffs, traces and bundles.
    Read,
    /// Everything, including making tokens.
    Admin,
}

impl Scope {
    /// The scope's name as written in tokens and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    /// Parses `ingest`, `read` or `admin`.
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "ingest" => Some(Scope::Ingest),
            "read" => Some(Scope::Read),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// An error reply, RFC 9457 `application/problem+json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `https://pipeproof.dev/problems/duplicate-keys`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short, fixed summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong in this request and how to fix it.
    pub detail: String,
}

/// `POST /runs`: start a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRun {
    /// The pipeline's name.
    pub pipeline: String,
    /// Free-form labels (`env=prod`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The pipeline code's version (a git commit, a package version).
    #[serde(default)]
    pub code_version: Option<String>,
    /// Run parameters, recorded verbatim.
    #[serde(default)]
    pub params: Value,
}

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Taking steps.
    Open,
    /// Finished; the chain head is signed.
    Sealed,
    /// Ended by an error in the pipeline; the chain head is signed too.
    Failed,
}

impl RunStatus {
    /// `open`, `sealed` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Open => "open",
            RunStatus::Sealed => "sealed",
            RunStatus::Failed => "failed",
        }
    }
}

/// A run as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The run's id.
    pub id: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The pipeline code's version.
    pub code_version: Option<String>,
    /// Run parameters.
    pub params: Value,
    /// open, sealed or failed.
    pub status: RunStatus,
    /// The error a failed run ended with.
    pub error: Option<String>,
    /// When the run was created (RFC 3339, UTC).
    pub created_at: String,
    /// When it was sealed or failed.
    pub sealed_at: Option<String>,
    /// The number of steps.
    pub steps: u64,
    /// The last step's row count.
    pub rows: Option<u64>,
    /// The hash of the last step record.
    pub head: Option<Hash>,
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// All items matching the query.
    pub total: u64,
    /// The offset of the first item.
    pub offset: u64,
    /// The page size asked for.
    pub limit: u64,
}

/// `GET /runs` query: newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    /// Only this pipeline's runs.
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Only runs with this label, written `name=value`.
    #[serde(default)]
    pub label: Option<String>,
    /// Only runs in this state.
    #[serde(default)]
    pub status: Option<RunStatus>,
    /// Page offset (default 0).
    #[serde(default)]
    pub offset: Option<u64>,
    /// Page size (default 50, at most 500).
    #[serde(default)]
    pub limit: Option<u64>,
}

/// `GET /pipelines`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// The pipeline's name.
    pub name: String,
    /// How many runs it has.
    pub runs: u64,
    /// When its newest run was created.
    pub last_run_at: String,
}

/// A column of a step's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// Its type, in the fingerprint spec's spelling (`int`, `float`, `string`, ...).
    #[serde(rename = "type")]
    pub data_type: String,
    /// Whether it may hold nulls.
    pub nullable: bool,
}

impl Column {
    /// The schema a step's record holds: each column's name, type and nullability.
    pub fn of_record(record: &crate::record::StepRecord) -> Vec<Column> {
        record
            .columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                data_type: c.data_type.clone(),
                nullable: c.nullable,
            })
            .collect()
    }
}

/// One step as stored: `GET /runs/{id}/steps/{index}` and the reply to a step post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The step's chained record.
    pub record: StepRecord,
    /// The record's hash.
    pub hash: Hash,
    /// The step's schema.
    pub schema: Vec<Column>,
    /// Column statistics, in schema order.
    pub stats: Vec<ColumnStats>,
    /// The diff against the previous step (none for the first step).
    pub diff: Option<DiffSummary>,
    /// Whether the full snapshot was kept as an artifact (and is still kept: a redaction
    /// removes it).
    pub artifact: bool,
    /// When and why the step's diff details and kept data were removed from the store
    /// (`POST /runs/{id}/redact`); absent for a step never redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<Redaction>,
    /// When and why the step's column statistics were removed from the store (a redaction
    /// with `statistics`: their minimum and maximum are values of the data); `stats` is
    /// then empty, and the record still binds their digest. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistics_redacted: Option<Redaction>,
}

/// A step's redaction: its diff details (the added, removed and changed rows, which hold
/// data values) and its kept data removed from the store, its record, row hashes,
/// statistics and diff counts kept. The record still binds the details' hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redaction {
    /// When (RFC 3339 UTC).
    pub at: String,
    /// Why, as the one who redacted it said.
    pub reason: String,
}

/// `GET /runs/{id}`: a run with its steps and seal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    /// The run.
    pub run: Run,
    /// Its steps, in order.
    pub steps: Vec<Step>,
    /// The seal, once the run is sealed or failed.
    pub seal: Option<Seal>,
}

/// Query of `POST /runs/{id}/steps`: the body is the data (Arrow IPC stream or file,
/// Parquet or CSV, by `Content-Type`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepQuery {
    /// The step's name (required).
    pub step: String,
    /// Key columns, comma-separated; none for a multiset diff.
    #[serde(default)]
    pub key: Option<String>,
    /// Absolute tolerance for floats.
    #[serde(default)]
    pub abs_tol: Option<f64>,
    /// Relative tolerance for floats.
    #[serde(default)]
    pub rel_tol: Option<f64>,
    /// Rows per partition of the diff.
    #[serde(default)]
    pub chunk_rows: Option<usize>,
    /// Skip the details when more than this fraction of rows differ.
    #[serde(default)]
    pub summary_only_threshold: Option<f64>,
    /// Columns the diff ignores, comma-separated.
    #[serde(default)]
    pub ignore: Option<String>,
    /// Keep at most this many detail rows of each kind.
    #[serde(default)]
    pub max_detail_rows: Option<usize>,
    /// Keep the full snapshot as an artifact.
    #[serde(default)]
    pub artifact: Option<bool>,
    /// Step parameters as a JSON object, recorded verbatim.
    #[serde(default)]
    pub params: Option<String>,
}

/// Which detail rows: `GET /runs/{id}/steps/{index}/details?kind=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetailKind {
    /// Rows only in this step.
    Added,
    /// Rows only in the previous step.
    Removed,
    /// Changed cells of rows in both.
    Changed,
}

impl DetailKind {
    /// `added`, `removed` or `changed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DetailKind::Added => "added",
            DetailKind::Removed => "removed",
            DetailKind::Changed => "changed",
        }
    }
}

/// Query of the details route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailQuery {
    /// Which rows.
    pub kind: DetailKind,
    /// Only changed cells of this column (kind `changed`).
    #[serde(default)]
    pub column: Option<String>,
    /// Only rows with this key, compared as a value of the key columns' types (`007` finds
    /// the key 7); for a key of several columns, their values joined with `|` (`EU|7`).
    #[serde(default)]
    pub key: Option<String>,
    /// Page offset (default 0).
    #[serde(default)]
    pub offset: Option<u64>,
    /// Page size (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<u64>,
}

/// A page of detail rows. Each row is an object from column name to value (JSON, with
/// values the diff shows as text for types JSON lacks). Changed rows have the key columns,
/// then `column`, `old` and `new`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetailPage {
    /// Which rows.
    pub kind: DetailKind,
    /// The column names, in order.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<serde_json::Map<String, Value>>,
    /// All rows matching the query.
    pub total: u64,
    /// The offset of the first row.
    pub offset: u64,
    /// The page size asked for.
    pub limit: u64,
    /// Whether the stored details were cut at `max_detail_rows` or skipped by
    /// `summary_only_threshold`.
    pub truncated: bool,
}

/// What happened to one key at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceState {
    /// The row first appears here (or this is the first step and it is present).
    Added,
    /// The row is in this step and the previous one, with no cell the step's diff counts as
    /// changed (its hash differs where a column was added, removed or ignored, or where
    /// floats are equal only within the tolerances).
    Unchanged,
    /// The row is in both, with changed cells.
    Changed,
    /// The row was in the previous step and is not in this one.
    Removed,
    /// The row is in neither.
    Absent,
    /// The details of this step were not kept, so the state is not known beyond presence.
    Unknown,
}

/// One step of a row trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    /// The step's index.
    pub index: u64,
    /// The step's name.
    pub step: String,
    /// What happened to the row.
    pub state: TraceState,
    /// The row's hash at this step, when present.
    pub row_hash: Option<Hash>,
    /// The row's values at this step, where known (added rows, full artifacts, or the
    /// values carried forward from earlier steps with the changes applied).
    pub values: Option<serde_json::Map<String, Value>>,
    /// The cells that changed at this step: column, old, new.
    pub changes: Vec<CellChange>,
    /// Whether the step's details were redacted: its values and changes are not known
    /// any more, only its state.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

/// A changed cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellChange {
    /// The column.
    pub column: String,
    /// The value before.
    pub old: Value,
    /// The value after.
    pub new: Value,
}

/// `GET /runs/{id}/trace?key=VALUE`: one row through every step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// The run.
    pub run_id: String,
    /// The key columns.
    pub key: Vec<String>,
    /// The key's value as asked (for several key columns, the values joined by `|`).
    pub value: String,
    /// Every step, in order.
    pub steps: Vec<TraceStep>,
}

/// `POST /runs/{id}/fail`: end a run with an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRun {
    /// What went wrong, as the pipeline saw it.
    pub error: String,
}

/// The longest name a run, step or label may have, in bytes.
pub const MAX_NAME: usize = 200;

/// The longest redaction reason or label value kept, in bytes (UTF-8).
pub const MAX_REASON: usize = 1000;

/// Checks a name or text a client gives (a pipeline's, a step's, a label, a reason): one
/// line of plain text, at most `max` bytes. The error names it (`what`) and the problem.
pub fn check_text(what: &str, text: &str, max: usize) -> Result<(), String> {
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{what} holds a control character ({c:?}): write it on one line, as plain text"
        ));
    }
    if text.len() > max {
        return Err(format!(
            "{what} is {} bytes long; at most {max} are kept",
            text.len()
        ));
    }
    Ok(())
}

/// `POST /runs/{id}/redact`: remove an ended run's diff details and kept data from the
/// store (for data that must not be kept: personal data under an erasure request, a
/// retention period), keeping its records, row hashes, statistics, seal and log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactRun {
    /// Why; kept with each step and shown in its bundle.
    pub reason: String,
    /// The steps (indices); all of them when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<u64>>,
    /// Also remove the steps' column statistics, whose minimum and maximum are values of
    /// the data (an erasure). Their digest stays in the records.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub statistics: bool,
}

/// The reply to `POST /runs/{id}/redact`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Redacted {
    /// The run.
    pub run_id: String,
    /// When.
    pub at: String,
    /// The steps redacted now.
    pub steps: Vec<u64>,
    /// The steps whose statistics were removed now (asked with `statistics`).
    #[serde(default)]
    pub statistics: Vec<u64>,
    /// Steps asked for that were redacted before, with nothing left to remove (they keep
    /// their first redaction).
    pub already: Vec<u64>,
    /// Steps asked for that held nothing to remove (a first step stored without its data,
    /// asked without `statistics`).
    pub nothing: Vec<u64>,
    /// Blob files removed (a blob another step still names is kept).
    pub blobs_removed: u64,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Blob files freed that are not removed yet, because a backup or check was reading
    /// the store's blobs (or a removal failed): removed at the next redaction or the next
    /// start of the server.
    pub blobs_pending: u64,
}

/// A public key the server signs with: `GET /keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicKey {
    /// `ed25519`.
    pub algorithm: String,
    /// The key, hex.
    pub public_key: String,
    /// When it was made.
    pub created_at: String,
    /// When it was rotated away (it signs nothing after that).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
    /// The hand-over that made it the signing key, signed by the key before it and by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<crate::sign::KeyHandover>,
}

/// `GET /keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Keys {
    /// The keys, current first, then those rotated away, newest first.
    pub keys: Vec<PublicKey>,
}

impl Keys {
    /// The hand-overs between the keys.
    pub fn handovers(&self) -> Vec<crate::sign::KeyHandover> {
        self.keys
            .iter()
            .filter_map(|k| k.handover.clone())
            .collect()
    }
}

/// One entry of the log of seals (`GET /log/entries`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The entry's position (0-based).
    pub index: u64,
    /// The run whose seal it is.
    pub run_id: String,
    /// The seal's leaf hash ([`crate::log::leaf_of`]).
    pub leaf: Hash,
    /// The seal itself, so that anyone can recompute the leaf, check the signature and see
    /// that no run is sealed twice.
    pub seal: Seal,
}

/// `GET /log/entries`: a page of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntries {
    /// The log's size now.
    pub size: u64,
    /// The entries from the asked position on.
    pub entries: Vec<LogEntry>,
}

/// `GET /log/inclusion?run=ID[&size=N]`: where a run's seal is in the log of `size` entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogInclusion {
    /// The run.
    pub run_id: String,
    /// The leaf hash the server holds for its seal.
    pub leaf: Hash,
    /// The audit path of that leaf in the tree of `proof.size` entries.
    pub proof: crate::log::InclusionProof,
}

/// `POST /tokens` (admin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A name to recognise the token by.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
}

/// A token, as made (the secret is shown once) or listed (without the secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    /// The token's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it was made.
    pub created_at: String,
    /// When it was revoked; a revoked token is refused and cannot be used again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// The secret, only in the reply that makes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `GET /whoami`: the token's name and scopes (how the SPA checks a token at sign-in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The token's name.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// The server's version.
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn scopes_round_trip_as_lowercase_words() {
        for s in [Scope::Ingest, Scope::Read, Scope::Admin] {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(Scope::parse("root"), None);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn problem_uses_the_rfc_field_name_type() {
        let p = Problem {
            kind: "https://pipeproof.dev/problems/unknown-run".into(),
            title: "Unknown run".into(),
            status: 404,
            detail: "no run r1".into(),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "https://pipeproof.dev/problems/unknown-run");
        assert_eq!(v["status"], 404);
    }
}
