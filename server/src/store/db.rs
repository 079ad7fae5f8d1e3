//! All SQL of the store: the schema and its migrations (versioned by `PRAGMA user_version`),
//! and one function per query. Nothing else in the crate writes SQL.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use pipeproof_core::api::{
    Pipeline, PublicKey, Redaction, Run, RunQuery, RunStatus, Scope, Step, Token,
};
use pipeproof_core::hash::Hash;
use pipeproof_core::log;
use pipeproof_core::sign::{KeyHandover, Seal};

/// The migrations, in order; `user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: runs, steps, tokens, keys.
    "CREATE TABLE runs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        pipeline TEXT NOT NULL,
        labels TEXT NOT NULL,
        code_version TEXT,
        params TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        created_at TEXT NOT NULL,
        sealed_at TEXT,
        steps INTEGER NOT NULL DEFAULT 0,
        rows INTEGER,
        head TEXT,
        seal TEXT,
        carry TEXT,
        carry_format TEXT
    );
    CREATE INDEX runs_pipeline ON runs (pipeline, seq);
    CREATE TABLE steps (
        run_id TEXT NOT NULL REFERENCES runs (id),
        idx INTEGER NOT NULL,
        name TEXT NOT NULL,
        step TEXT NOT NULL,
        arrow_schema TEXT NOT NULL,
        rows_blob TEXT NOT NULL,
        added_blob TEXT,
        removed_blob TEXT,
        changed_blob TEXT,
        artifact_blob TEXT,
        idempotency_key TEXT,
        PRIMARY KEY (run_id, idx)
    );
    CREATE UNIQUE INDEX steps_idempotency ON steps (run_id, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        scopes TEXT NOT NULL,
        hash BLOB NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    CREATE TABLE keys (
        public_key TEXT PRIMARY KEY,
        created_at TEXT NOT NULL
    );",
    // 2: the log of seals (core::log), one entry per ended run, in the order they ended.
    // Runs ended before it are entered by `enter_unlogged_seals` as the store is migrated.
    "CREATE TABLE log (
        idx INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL UNIQUE REFERENCES runs (id),
        leaf BLOB NOT NULL
    );",
    // 3: revoked tokens are kept, with when they were revoked.
    "ALTER TABLE tokens ADD COLUMN revoked_at TEXT;",
    // 4: key rotation: when a key was rotated away, and the hand-over that made one current.
    "ALTER TABLE keys ADD COLUMN retired_at TEXT;
    ALTER TABLE keys ADD COLUMN handover TEXT;",
    // 5: redaction: when and why a step's details and kept data were removed.
    "ALTER TABLE steps ADD COLUMN redacted_at TEXT;
    ALTER TABLE steps ADD COLUMN redaction_reason TEXT;",
    // 6: blob files a redaction freed, until they are removed (recorded in the redaction's
    // transaction, so that none stays behind unnoticed); and which steps name a blob,
    // asked once per freed blob.
    "CREATE TABLE pending_removals (blob TEXT PRIMARY KEY);
    CREATE INDEX steps_rows_blob ON steps (rows_blob);
    CREATE INDEX steps_added_blob ON steps (added_blob) WHERE added_blob IS NOT NULL;
    CREATE INDEX steps_removed_blob ON steps (removed_blob) WHERE removed_blob IS NOT NULL;
    CREATE INDEX steps_changed_blob ON steps (changed_blob) WHERE changed_blob IS NOT NULL;
    CREATE INDEX steps_artifact_blob ON steps (artifact_blob) WHERE artifact_blob IS NOT NULL;",
    // 7: what housekeeping asks each minute: the open runs, and the runs by end time.
    "CREATE INDEX runs_open ON runs (seq) WHERE status = 'open';
    CREATE INDEX runs_sealed_at ON runs (sealed_at) WHERE sealed_at IS NOT NULL;",
    // 8: redaction of statistics: when and why a step's column statistics were removed
    // (its stored step then holds none).
    "ALTER TABLE steps ADD COLUMN statistics_redacted_at TEXT;
    ALTER TABLE steps ADD COLUMN statistics_redaction_reason TEXT;",
];

/// Opens a connection with the store's settings: WAL, synchronous=FULL, foreign keys,
/// secure_delete (what a redaction overwrites or deletes is zeroed in the file, not left in
/// its free pages), and a busy timeout so that the CLI and the server can share the file.
pub fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(conn)
}

/// How long a connection waits for another's lock on the database.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Copies the write-ahead log into the database and empties it, so that the old versions
/// of pages a redaction rewrote go from the log; true when it was emptied. A reader whose
/// snapshot is older (a `backup` or `check` reading) keeps the log as it is: then this
/// copies what it can and returns false at once, rather than waiting out the busy timeout
/// with the store's writer (writes would wait as long).
pub fn checkpoint(conn: &Connection) -> rusqlite::Result<bool> {
    conn.busy_timeout(std::time::Duration::ZERO)?;
    let busy = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(busy? == 0)
}

/// Brings the schema up to date; fails on a store written by a newer version.
pub fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        anyhow::bail!(
            "the store's schema is version {version}, newer than this build knows ({known}); \
             run a newer pipeproof or use another --data-dir"
        );
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if i + 1 == 2 {
            enter_unlogged_seals(&tx)?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// Enters in the log the seals of runs that ended before the store had one, in the order
/// they ended (the times compared as times: their text drops trailing zeros), then of
/// creation.
fn enter_unlogged_seals(conn: &Connection) -> anyhow::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT id, seal, sealed_at, seq FROM runs WHERE seal IS NOT NULL
            AND id NOT IN (SELECT run_id FROM log)",
    )?;
    let mut seals: Vec<(String, String, Option<String>, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let when = |t: &Option<String>| {
        t.as_deref().and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
    };
    seals.sort_by_key(|(_, _, at, seq)| (when(at), *seq));
    for (id, seal, _, _) in seals {
        let seal: Seal = serde_json::from_str(&seal)
            .map_err(|e| anyhow::anyhow!("the seal of run {id} cannot be read: {e}"))?;
        append_to_log(conn, &id, &seal)?;
    }
    Ok(())
}

/// Appends a run's seal to the log.
fn append_to_log(conn: &Connection, run_id: &str, seal: &Seal) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO log (idx, run_id, leaf)
         VALUES ((SELECT COALESCE(MAX(idx) + 1, 0) FROM log), ?1, ?2)",
        params![run_id, log::leaf_of(seal).as_bytes().as_slice()],
    )?;
    Ok(())
}

/// The log's leaves from entry `start` on, in order.
pub fn log_leaves_from(conn: &Connection, start: u64) -> rusqlite::Result<Vec<Hash>> {
    let mut stmt = conn.prepare("SELECT leaf FROM log WHERE idx >= ?1 ORDER BY idx")?;
    stmt.query_map([start as i64], |r| hash_column(r, 0))?
        .collect()
}

/// The number of entries in the log.
pub fn log_size(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM log", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// The log entries from `start` (by position), at most `limit`, with their runs' seals.
pub fn log_entries(conn: &Connection, start: u64, limit: u64) -> rusqlite::Result<Vec<LoggedSeal>> {
    let mut stmt = conn.prepare(
        "SELECT log.idx, log.run_id, log.leaf, runs.seal FROM log
         LEFT JOIN runs ON runs.id = log.run_id WHERE log.idx >= ?1 ORDER BY log.idx LIMIT ?2",
    )?;
    let clamp = |n: u64| n.min(i64::MAX as u64) as i64;
    stmt.query_map(params![clamp(start), clamp(limit)], logged_seal)?
        .collect()
}

fn logged_seal(r: &rusqlite::Row<'_>) -> rusqlite::Result<LoggedSeal> {
    Ok(LoggedSeal {
        index: r.get::<_, i64>(0)? as u64,
        run_id: r.get(1)?,
        leaf: hash_column(r, 2)?,
        seal: r.get(3)?,
    })
}

/// A log entry with its run's stored seal.
pub struct LoggedSeal {
    /// The entry's position.
    pub index: u64,
    /// Its run.
    pub run_id: String,
    /// The leaf the log holds.
    pub leaf: Hash,
    /// The run's stored seal (JSON), if the run has one.
    pub seal: Option<String>,
}

/// Every log entry in order, with its run's stored seal.
pub fn log_with_seals(conn: &Connection) -> rusqlite::Result<Vec<LoggedSeal>> {
    let mut stmt = conn.prepare(
        "SELECT log.idx, log.run_id, log.leaf, runs.seal FROM log
         LEFT JOIN runs ON runs.id = log.run_id ORDER BY log.idx",
    )?;
    stmt.query_map([], logged_seal)?.collect()
}

/// The runs that ended without an entry in the log.
pub fn unlogged_seals(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT id FROM runs WHERE seal IS NOT NULL AND id NOT IN (SELECT run_id FROM log)
         ORDER BY seq",
    )?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// A run's position in the log, once it ended.
pub fn log_index(conn: &Connection, run_id: &str) -> rusqlite::Result<Option<u64>> {
    conn.query_row("SELECT idx FROM log WHERE run_id = ?1", [run_id], |r| {
        r.get::<_, i64>(0)
    })
    .optional()
    .map(|i| i.map(|i| i as u64))
}

fn hash_column(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Hash> {
    let bytes: Vec<u8> = r.get(i)?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Blob,
            "a log leaf is not 32 bytes".into(),
        )
    })?;
    Ok(Hash(bytes))
}

/// A run row with the store-only columns.
pub struct RunRow {
    /// The run as the API shows it.
    pub run: Run,
    /// The seal, once sealed or failed.
    pub seal: Option<Seal>,
    /// The file under `carry/` holding the head step's data, with its format.
    pub carry: Option<(String, String)>,
}

const RUN_COLUMNS: &str = "id, pipeline, labels, code_version, params, status, error, \
    created_at, sealed_at, steps, rows, head, seal, carry, carry_format";

fn json<T: serde::de::DeserializeOwned>(s: String) -> rusqlite::Result<T> {
    serde_json::from_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    let status: String = r.get(5)?;
    let head: Option<String> = r.get(11)?;
    let seal: Option<String> = r.get(12)?;
    let carry: Option<String> = r.get(13)?;
    let carry_format: Option<String> = r.get(14)?;
    Ok(RunRow {
        run: Run {
            id: r.get(0)?,
            pipeline: r.get(1)?,
            labels: json(r.get(2)?)?,
            code_version: r.get(3)?,
            params: json(r.get(4)?)?,
            status: json(format!("\"{status}\""))?,
            error: r.get(6)?,
            created_at: r.get(7)?,
            sealed_at: r.get(8)?,
            steps: r.get::<_, i64>(9)? as u64,
            rows: r.get::<_, Option<i64>>(10)?.map(|v| v as u64),
            head: head.and_then(|h| Hash::from_hex(&h)),
        },
        seal: seal.map(json).transpose()?,
        carry: carry.zip(carry_format),
    })
}

/// Inserts a new run.
pub fn insert_run(conn: &Connection, run: &Run) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO runs (id, pipeline, labels, code_version, params, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            run.id,
            run.pipeline,
            serde_json::to_string(&run.labels).expect("labels serialise"),
            run.code_version,
            serde_json::to_string(&run.params).expect("params serialise"),
            run.status.as_str(),
            run.created_at,
        ],
    )?;
    Ok(())
}

/// One run, if it exists.
pub fn get_run(conn: &Connection, id: &str) -> rusqlite::Result<Option<RunRow>> {
    conn.query_row(
        &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
        [id],
        run_row,
    )
    .optional()
}

/// A page of runs, newest first, and the number matching.
pub fn list_runs(conn: &Connection, q: &RunQuery) -> rusqlite::Result<(Vec<Run>, u64)> {
    let (label_name, label_value) = match q.label.as_deref().map(|l| l.split_once('=')) {
        Some(Some((n, v))) => (Some(format!("$.\"{}\"", n.replace('"', ""))), Some(v)),
        Some(None) => (
            q.label
                .as_ref()
                .map(|n| format!("$.\"{}\"", n.replace('"', ""))),
            None,
        ),
        None => (None, None),
    };
    let filter = "(?1 IS NULL OR pipeline = ?1)
        AND (?2 IS NULL OR status = ?2)
        AND (?3 IS NULL OR (json_extract(labels, ?3) IS NOT NULL
                            AND (?4 IS NULL OR json_extract(labels, ?3) = ?4)))";
    let status = q.status.map(RunStatus::as_str);
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM runs WHERE {filter}"),
        params![q.pipeline, status, label_name, label_value],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE {filter} ORDER BY seq DESC LIMIT ?5 OFFSET ?6"
    ))?;
    let runs = stmt
        .query_map(
            params![
                q.pipeline,
                status,
                label_name,
                label_value,
                q.limit.unwrap_or(50) as i64,
                q.offset.unwrap_or(0) as i64
            ],
            run_row,
        )?
        .map(|r| r.map(|r| r.run))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((runs, total as u64))
}

/// Every pipeline with its run count, most recently run first.
pub fn list_pipelines(conn: &Connection) -> rusqlite::Result<Vec<Pipeline>> {
    let mut stmt = conn.prepare(
        "SELECT pipeline, count(*), max(created_at) FROM runs GROUP BY pipeline
         ORDER BY max(seq) DESC",
    )?;
    stmt.query_map([], |r| {
        Ok(Pipeline {
            name: r.get(0)?,
            runs: r.get::<_, i64>(1)? as u64,
            last_run_at: r.get(2)?,
        })
    })?
    .collect()
}

/// The number of runs.
pub fn count_runs(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM runs", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// A stored step with the names of its blobs.
pub struct StepRow {
    /// The step as the API shows it.
    pub step: Step,
    /// The step's Arrow schema, JSON.
    pub arrow_schema: String,
    /// The row table blob.
    pub rows_blob: String,
    /// The detail blobs (added, removed, changed), when the step has details.
    pub details: Option<[String; 3]>,
    /// Whether the step was stored with its data (`artifact=true`), kept or since redacted.
    pub had_artifact: bool,
}

const STEP_COLUMNS: &str = "step, arrow_schema, rows_blob, added_blob, removed_blob, changed_blob, \
     artifact_blob IS NOT NULL, redacted_at, redaction_reason, statistics_redacted_at, \
     statistics_redaction_reason";

fn step_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StepRow> {
    let details = match (
        r.get::<_, Option<String>>(3)?,
        r.get::<_, Option<String>>(4)?,
        r.get::<_, Option<String>>(5)?,
    ) {
        (Some(a), Some(b), Some(c)) => Some([a, b, c]),
        _ => None,
    };
    let mut step: Step = json(r.get(0)?)?;
    let had_artifact = step.artifact;
    step.artifact = r.get(6)?;
    let redaction = |at: usize| -> rusqlite::Result<Option<Redaction>> {
        Ok(match (r.get(at)?, r.get::<_, Option<String>>(at + 1)?) {
            (Some(at), reason) => Some(Redaction {
                at,
                reason: reason.unwrap_or_default(),
            }),
            (None, _) => None,
        })
    };
    step.redacted = redaction(7)?;
    step.statistics_redacted = redaction(9)?;
    Ok(StepRow {
        step,
        arrow_schema: r.get(1)?,
        rows_blob: r.get(2)?,
        details,
        had_artifact,
    })
}

/// Marks steps of an ended run redacted (those not yet), dropping their detail and artifact
/// blobs from the row and listing them as [`pending_removals`]; returns the indices marked.
/// The blob files stay until no step names them ([`blob_in_use`]).
pub fn redact_steps(
    tx: &Transaction<'_>,
    run_id: &str,
    steps: &[u64],
    at: &str,
    reason: &str,
) -> rusqlite::Result<Vec<u64>> {
    let mut marked = Vec::new();
    for &index in steps {
        let named: Option<[Option<String>; 4]> = tx
            .query_row(
                "SELECT added_blob, removed_blob, changed_blob, artifact_blob FROM steps
                 WHERE run_id = ?1 AND idx = ?2 AND redacted_at IS NULL",
                params![run_id, index as i64],
                |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]),
            )
            .optional()?;
        let Some(named) = named else { continue };
        tx.execute(
            "UPDATE steps SET added_blob = NULL, removed_blob = NULL, changed_blob = NULL,
                artifact_blob = NULL, redacted_at = ?3, redaction_reason = ?4
             WHERE run_id = ?1 AND idx = ?2",
            params![run_id, index as i64, at, reason],
        )?;
        marked.push(index);
        for blob in named.into_iter().flatten() {
            tx.execute(
                "INSERT OR IGNORE INTO pending_removals (blob) VALUES (?1)",
                [blob],
            )?;
        }
    }
    Ok(marked)
}

/// Removes the column statistics of steps of a run (those not removed yet): the stored step
/// keeps none, and says when and why; nor do the diff summaries that hold them (the step's
/// own, and the next step's, whose `before` side they are). Returns the indices done.
pub fn redact_statistics(
    tx: &Transaction<'_>,
    run_id: &str,
    steps: &[u64],
    at: &str,
    reason: &str,
) -> rusqlite::Result<Vec<u64>> {
    let mut done = Vec::new();
    for &index in steps {
        let stored: Option<String> = tx
            .query_row(
                "SELECT step FROM steps
                 WHERE run_id = ?1 AND idx = ?2 AND statistics_redacted_at IS NULL",
                params![run_id, index as i64],
                |r| r.get(0),
            )
            .optional()?;
        let Some(stored) = stored else { continue };
        let mut step: Step = json(stored)?;
        step.stats.clear();
        if let Some(d) = &mut step.diff {
            d.stats.clear();
        }
        tx.execute(
            "UPDATE steps SET step = ?3, statistics_redacted_at = ?4,
                statistics_redaction_reason = ?5
             WHERE run_id = ?1 AND idx = ?2",
            params![
                run_id,
                index as i64,
                serde_json::to_string(&step).expect("steps serialise"),
                at,
                reason
            ],
        )?;
        let next: Option<String> = tx
            .query_row(
                "SELECT step FROM steps WHERE run_id = ?1 AND idx = ?2",
                params![run_id, index as i64 + 1],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(next) = next {
            let mut next: Step = json(next)?;
            if let Some(d) = next.diff.as_mut().filter(|d| !d.stats.is_empty()) {
                d.stats.clear();
                tx.execute(
                    "UPDATE steps SET step = ?3 WHERE run_id = ?1 AND idx = ?2",
                    params![
                        run_id,
                        index as i64 + 1,
                        serde_json::to_string(&next).expect("steps serialise")
                    ],
                )?;
            }
        }
        done.push(index);
    }
    Ok(done)
}

/// The open runs (or only `run_id`, if open), each with when it last changed: its last
/// step's time, or its creation.
pub fn open_runs_activity(
    conn: &Connection,
    run_id: Option<&str>,
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT r.id, COALESCE(
            (SELECT json_extract(s.step, '$.record.created_at') FROM steps s
             WHERE s.run_id = r.id ORDER BY s.idx DESC LIMIT 1),
            r.created_at)
         FROM runs r WHERE r.status = 'open' AND (?1 IS NULL OR r.id = ?1) ORDER BY r.seq",
    )?;
    stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// The ended runs whose end time sorts before `before` as text, with a step that still holds
/// diff details or kept data, oldest first, with their end times. Times are compared as
/// text here (`now()`'s times are UTC, but drop a fraction of zero): give a bound a second
/// late, and compare as instants after.
pub fn ended_runs_holding_data(
    conn: &Connection,
    before: &str,
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT r.id, r.sealed_at FROM runs r
         WHERE r.sealed_at IS NOT NULL AND r.sealed_at < ?1 AND EXISTS (
            SELECT 1 FROM steps s WHERE s.run_id = r.id AND s.redacted_at IS NULL
                AND (s.added_blob IS NOT NULL OR s.artifact_blob IS NOT NULL))
         ORDER BY r.sealed_at",
    )?;
    stmt.query_map([before], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Blob files a redaction freed that are not removed yet.
pub fn pending_removals(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT blob FROM pending_removals ORDER BY blob")?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// A freed blob dealt with: removed, or named by a step again.
pub fn removal_done(conn: &Connection, blob: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM pending_removals WHERE blob = ?1", [blob])?;
    Ok(())
}

/// Whether any step names the blob (its row table, details or kept data).
pub fn blob_in_use(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM steps WHERE rows_blob = ?1)
            OR EXISTS (SELECT 1 FROM steps WHERE added_blob = ?1)
            OR EXISTS (SELECT 1 FROM steps WHERE removed_blob = ?1)
            OR EXISTS (SELECT 1 FROM steps WHERE changed_blob = ?1)
            OR EXISTS (SELECT 1 FROM steps WHERE artifact_blob = ?1)",
        [id],
        |r| r.get(0),
    )
}

/// The steps of a run, in order.
pub fn list_steps(conn: &Connection, run_id: &str) -> rusqlite::Result<Vec<StepRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ?1 ORDER BY idx"
    ))?;
    stmt.query_map([run_id], step_row)?.collect()
}

/// One step of a run.
pub fn get_step(conn: &Connection, run_id: &str, index: u64) -> rusqlite::Result<Option<StepRow>> {
    conn.query_row(
        &format!("SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ?1 AND idx = ?2"),
        params![run_id, index as i64],
        step_row,
    )
    .optional()
}

/// The artifact blob of a step: `None` when there is no such step, `Some(None)` when the
/// step was stored without its data.
pub fn artifact_blob(
    conn: &Connection,
    run_id: &str,
    index: u64,
) -> rusqlite::Result<Option<Option<String>>> {
    conn.query_row(
        "SELECT artifact_blob FROM steps WHERE run_id = ?1 AND idx = ?2",
        params![run_id, index as i64],
        |r| r.get(0),
    )
    .optional()
}

/// The step a run stored under an idempotency key.
pub fn step_by_idempotency_key(
    conn: &Connection,
    run_id: &str,
    key: &str,
) -> rusqlite::Result<Option<StepRow>> {
    conn.query_row(
        &format!("SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ?1 AND idempotency_key = ?2"),
        params![run_id, key],
        step_row,
    )
    .optional()
}

/// A new step and the run's new head, written in one transaction by the caller.
pub struct NewStep<'a> {
    /// The step.
    pub step: &'a Step,
    /// Its Arrow schema, JSON.
    pub arrow_schema: &'a str,
    /// The row table blob.
    pub rows_blob: &'a str,
    /// The detail blobs.
    pub details: Option<&'a [String; 3]>,
    /// The artifact blob.
    pub artifact_blob: Option<&'a str>,
    /// The idempotency key it was posted with.
    pub idempotency_key: Option<&'a str>,
    /// The carry file now holding this step's data, and its format.
    pub carry: (&'a str, &'a str),
}

/// Inserts a step and moves the run's head to it. Fails (and the caller's transaction
/// rolls back) unless the run is open and the step's index is the run's step count.
pub fn insert_step(tx: &Transaction<'_>, s: &NewStep<'_>) -> rusqlite::Result<()> {
    let rec = &s.step.record;
    tx.execute(
        "INSERT INTO steps (run_id, idx, name, step, arrow_schema, rows_blob, added_blob,
            removed_blob, changed_blob, artifact_blob, idempotency_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            rec.run_id,
            rec.index as i64,
            rec.step,
            serde_json::to_string(s.step).expect("steps serialise"),
            s.arrow_schema,
            s.rows_blob,
            s.details.map(|d| &d[0]),
            s.details.map(|d| &d[1]),
            s.details.map(|d| &d[2]),
            s.artifact_blob,
            s.idempotency_key,
        ],
    )?;
    let n = tx.execute(
        "UPDATE runs SET steps = steps + 1, rows = ?2, head = ?3, carry = ?4, carry_format = ?5
         WHERE id = ?1 AND status = 'open' AND steps = ?6",
        params![
            rec.run_id,
            rec.rows as i64,
            s.step.hash.to_hex(),
            s.carry.0,
            s.carry.1,
            rec.index as i64
        ],
    )?;
    if n != 1 {
        return Err(rusqlite::Error::StatementChangedRows(n));
    }
    Ok(())
}

/// Ends an open run with a seal, and appends the seal to the log, in one transaction; false
/// when the run was not open.
pub fn seal_run(
    conn: &mut Connection,
    id: &str,
    status: RunStatus,
    error: Option<&str>,
    seal: &Seal,
) -> rusqlite::Result<bool> {
    let tx = conn.transaction()?;
    let n = tx.execute(
        "UPDATE runs SET status = ?2, error = ?3, sealed_at = ?4, seal = ?5, carry = NULL,
            carry_format = NULL
         WHERE id = ?1 AND status = 'open'",
        params![
            id,
            status.as_str(),
            error,
            seal.sealed_at,
            serde_json::to_string(seal).expect("seals serialise"),
        ],
    )?;
    if n == 1 {
        append_to_log(&tx, id, seal)?;
    }
    tx.commit()?;
    Ok(n == 1)
}

/// Every carry file a run still needs.
pub fn carry_files(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT carry FROM runs WHERE carry IS NOT NULL")?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// Inserts a token (its secret's hash only).
pub fn insert_token(conn: &Connection, token: &Token, hash: &blake3::Hash) -> rusqlite::Result<()> {
    let scopes: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
    conn.execute(
        "INSERT INTO tokens (id, name, scopes, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            token.id,
            token.name,
            scopes.join(","),
            hash.as_bytes().as_slice(),
            token.created_at
        ],
    )?;
    Ok(())
}

/// Every token with its hash, revoked ones included, in the order they were made.
pub fn tokens(conn: &Connection) -> rusqlite::Result<Vec<(Token, blake3::Hash)>> {
    let mut stmt = conn.prepare(
        "SELECT id, name, scopes, hash, created_at, revoked_at FROM tokens ORDER BY rowid",
    )?;
    stmt.query_map([], |r| {
        let scopes: String = r.get(2)?;
        let hash: Vec<u8> = r.get(3)?;
        let hash: [u8; 32] = hash.try_into().map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Blob,
                "a token hash is not 32 bytes".into(),
            )
        })?;
        Ok((
            Token {
                id: r.get(0)?,
                name: r.get(1)?,
                scopes: scopes.split(',').filter_map(Scope::parse).collect(),
                created_at: r.get(4)?,
                revoked_at: r.get(5)?,
                token: None,
            },
            blake3::Hash::from_bytes(hash),
        ))
    })?
    .collect()
}

/// Marks a token revoked at `at`, unless it already is; whether it was changed.
pub fn revoke_token(conn: &Connection, id: &str, at: &str) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, at],
    )?;
    Ok(n == 1)
}

/// The number of tokens.
pub fn count_tokens(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM tokens", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// Records a signing key's public half, once, with the hand-over that made it current.
pub fn insert_key(
    conn: &Connection,
    public_key: &str,
    created_at: &str,
    handover: Option<&KeyHandover>,
) -> rusqlite::Result<()> {
    let handover = handover.map(|h| serde_json::to_string(h).expect("a hand-over is JSON"));
    conn.execute(
        "INSERT OR IGNORE INTO keys (public_key, created_at, handover) VALUES (?1, ?2, ?3)",
        params![public_key, created_at, handover],
    )?;
    Ok(())
}

/// Marks a key rotated away at `at`.
pub fn retire_key(conn: &Connection, public_key: &str, at: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE keys SET retired_at = ?2 WHERE public_key = ?1",
        params![public_key, at],
    )?;
    Ok(())
}

/// Every key recorded, newest first, with when it was retired and the hand-over that made
/// it current.
pub fn keys(conn: &Connection) -> rusqlite::Result<Vec<PublicKey>> {
    let mut stmt = conn.prepare(
        "SELECT public_key, created_at, retired_at, handover FROM keys ORDER BY rowid DESC",
    )?;
    stmt.query_map([], |r| {
        let handover: Option<String> = r.get(3)?;
        let handover = handover
            .map(|h| {
                serde_json::from_str(&h).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        3,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })
            })
            .transpose()?;
        Ok(PublicKey {
            algorithm: "ed25519".into(),
            public_key: r.get(0)?,
            created_at: r.get(1)?,
            retired_at: r.get(2)?,
            handover,
        })
    })?
    .collect()
}

/// Writes a consistent copy of the database to `path` (`VACUUM INTO`: one read transaction,
/// so the server may go on writing meanwhile).
pub fn backup_into(conn: &Connection, path: &std::path::Path) -> rusqlite::Result<()> {
    conn.execute("VACUUM INTO ?1", [path.to_string_lossy()])?;
    Ok(())
}

/// SQLite's own structural check: `["ok"]` when the file is sound, else what is wrong.
pub fn integrity_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// Every blob a step names: row tables, detail tables and artifacts.
pub fn blob_refs(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT rows_blob FROM steps
         UNION SELECT added_blob FROM steps WHERE added_blob IS NOT NULL
         UNION SELECT removed_blob FROM steps WHERE removed_blob IS NOT NULL
         UNION SELECT changed_blob FROM steps WHERE changed_blob IS NOT NULL
         UNION SELECT artifact_blob FROM steps WHERE artifact_blob IS NOT NULL",
    )?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// Every run's id and status, oldest first.
pub fn run_statuses(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare("SELECT id, status FROM runs ORDER BY seq")?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// The number of stored steps.
pub fn count_steps(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COUNT(*) FROM steps", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeproof_core::bundle::RunInfo;
    use pipeproof_core::sign::KeyPair;

    #[test]
    fn a_checkpoint_empties_the_log_unless_an_older_snapshot_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let wal = dir.path().join("t.sqlite-wal");
        let writer = open(&path).unwrap();
        writer
            .execute_batch("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('old value');")
            .unwrap();
        // A reader's snapshot taken before the write that a checkpoint should clear.
        let reader = open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let seen: String = reader
            .query_row("SELECT v FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seen, "old value");
        writer.execute("UPDATE t SET v = 'redacted'", []).unwrap();
        assert!(
            !checkpoint(&writer).unwrap(),
            "the older snapshot keeps the log"
        );
        assert!(std::fs::metadata(&wal).unwrap().len() > 0);
        let timeout: i64 = writer
            .pragma_query_value(None, "busy_timeout", |r| r.get(0))
            .unwrap();
        assert_eq!(timeout, BUSY_TIMEOUT.as_millis() as i64, "restored");
        reader.execute_batch("COMMIT").unwrap();
        assert!(checkpoint(&writer).unwrap(), "no reader: emptied");
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    }

    fn run(id: &str) -> Run {
        Run {
            id: id.into(),
            pipeline: "daily".into(),
            labels: Default::default(),
            code_version: None,
            params: serde_json::json!({}),
            status: RunStatus::Open,
            error: None,
            created_at: "2026-11-28T00:00:00Z".into(),
            sealed_at: None,
            steps: 0,
            rows: None,
            head: None,
        }
    }

    /// A store of schema 1 (before the log) with runs ended out of creation order: the
    /// migration enters their seals in the order they ended, and later seals follow.
    #[test]
    fn runs_ended_before_the_log_are_entered_in_the_order_they_ended() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("db.sqlite")).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let key = KeyPair::from_bytes(&[5; 32]);
        let mut seals = Vec::new();
        for (id, at) in [("a", "2026-11-28T00:03:00Z"), ("b", "2026-11-28T00:01:00Z")] {
            insert_run(&conn, &run(id)).unwrap();
            let ended = Run {
                status: RunStatus::Sealed,
                sealed_at: Some(at.into()),
                ..run(id)
            };
            let seal = key.seal(&RunInfo::of(&ended), 0, Hash::default()).unwrap();
            conn.execute(
                "UPDATE runs SET status = 'sealed', sealed_at = ?2, seal = ?3 WHERE id = ?1",
                params![id, at, serde_json::to_string(&seal).unwrap()],
            )
            .unwrap();
            seals.push(seal);
        }
        insert_run(&conn, &run("open")).unwrap();
        migrate(&mut conn).unwrap();
        let leaves = log_leaves_from(&conn, 0).unwrap();
        assert_eq!(leaves, [log::leaf_of(&seals[1]), log::leaf_of(&seals[0])]);
        assert_eq!(log_index(&conn, "b").unwrap(), Some(0));
        assert_eq!(log_index(&conn, "open").unwrap(), None);
        // Migrating again changes nothing; sealing the open run appends it.
        migrate(&mut conn).unwrap();
        assert_eq!(log_size(&conn).unwrap(), 2);
        let ended = Run {
            status: RunStatus::Sealed,
            sealed_at: Some("2026-11-28T00:04:00Z".into()),
            ..run("open")
        };
        let seal = key.seal(&RunInfo::of(&ended), 0, Hash::default()).unwrap();
        assert!(seal_run(&mut conn, "open", RunStatus::Sealed, None, &seal).unwrap());
        assert_eq!(log_index(&conn, "open").unwrap(), Some(2));
        // A run sealed twice is refused, and logged once.
        assert!(!seal_run(&mut conn, "open", RunStatus::Sealed, None, &seal).unwrap());
        let entries = log_entries(&conn, 1, 10).unwrap();
        let ids: Vec<&str> = entries.iter().map(|e| e.run_id.as_str()).collect();
        assert_eq!(ids, ["a", "open"]);
    }
}
