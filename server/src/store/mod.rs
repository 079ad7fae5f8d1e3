//! The store: a data directory holding the SQLite file (metadata, records, tokens), the
//! content-addressed blobs (row tables, diff details, artifacts), the carry files (each open
//! run's head step data, kept only until the next step or the seal), `tmp/` and the Ed25519
//! signing key. Everything the HTTP handlers and the CLI do to stored data goes through here;
//! all SQL is in [`db`].
//!
//! Layout of the data directory:
//! ```text
//! pipeproof.sqlite   (+ -wal, -shm)   runs, steps, tokens, keys
//! signing.key        Ed25519 secret, hex, mode 0600
//! blobs/ab/cdef...   content-addressed by BLAKE3
//! carry/RUN.INDEX    the head step's data of an open run
//! tmp/               request bodies and blobs being written; emptied at start
//! exports/RUN.HASH.zip  bundles of ended runs as exported, kept up to a size (a cache)
//! serve.lock         locked by the one server using the directory; its process id
//! blobs.lock         shared by `backup` and `check` as they read blobs, exclusive while
//!                    blobs a redaction freed are removed
//! ```

pub mod blobs;
pub mod db;
pub mod exports;
pub mod housekeeping;
pub mod ingest;
pub mod maintain;
pub mod query;
pub mod redact;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use rusqlite::Connection;

use pipeproof_core::api::{PublicKey, Scope, Token};
use pipeproof_core::merkle;
use pipeproof_core::sign::{KeyHandover, KeyPair};

use crate::error::ApiError;
use blobs::{Blobs, random_name, sync_dir};

/// The file name of the SQLite database in the data directory.
pub const DB_FILE: &str = "pipeproof.sqlite";
/// The file name of the signing key in the data directory.
pub const KEY_FILE: &str = "signing.key";
/// The file a server locks in its data directory.
pub const SERVE_LOCK: &str = "serve.lock";
/// The file that readers of blobs beside a server lock shared ([`lock_blob_readers`]).
pub const BLOB_LOCK: &str = "blobs.lock";
/// The next signing key while a rotation is written ([`rotate_key`]).
pub const NEXT_KEY_FILE: &str = "signing.key.next";

/// The opened store.
pub struct Store {
    dir: PathBuf,
    db_path: PathBuf,
    write: Mutex<Connection>,
    reads: Mutex<Vec<Connection>>,
    /// The blobs.
    pub blobs: Blobs,
    /// The bundles of ended runs, kept once exported.
    pub exports: exports::Exports,
    key: KeyPair,
    run_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// The log of seals' tree, kept between requests ([`Store::with_log`]).
    log: Mutex<merkle::Tree>,
    /// Held shared from storing a step's blobs to committing the step, and exclusively to
    /// remove blobs no step names ([`redact`]): a blob being stored (or found stored, as equal
    /// blobs are shared) is never removed before the step that names it is committed.
    pub(crate) blob_use: std::sync::RwLock<()>,
    /// When each open run was last seen active by this process ([`Store::touch`]).
    activity: Mutex<HashMap<String, time::OffsetDateTime>>,
    /// When this process opened the store: no run was seen before, so none is idle since
    /// before (the time a server is down or restarting is no run's idleness).
    opened_at: time::OffsetDateTime,
}

/// Whether the RFC 3339 time `t` is not after `until`, compared as instants (false when
/// either is no such time).
pub fn not_after(t: &str, until: &str) -> bool {
    matches!((instant(t), instant(until)), (Some(t), Some(until)) if t <= until)
}

/// An RFC 3339 time as an instant, `None` when it is no such time.
pub fn instant(t: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
}

/// The current time, RFC 3339 UTC with milliseconds.
pub fn now() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// A time as the store writes times: RFC 3339 in UTC, to the millisecond, always with its
/// three digits (`2026-11-28T14:21:22.140Z`), so that times compare as text as they do as
/// instants (`…:22Z` sorts after `…:22.100Z`).
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A new id: 16 random hex digits.
pub fn new_id() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS has a random source");
    hex::encode(b)
}

/// Locks [`BLOB_LOCK`] shared, for a process that reads the blobs a copy of the database
/// names (`backup`, `check`) beside a server: no blob a redaction freed is removed until
/// the file is closed (the removals wait for the next redaction or the next start).
pub fn lock_blob_readers(dir: &Path) -> Result<File> {
    let file = blob_lock_file(dir)?;
    file.lock_shared()
        .with_context(|| format!("cannot lock {}", dir.join(BLOB_LOCK).display()))?;
    Ok(file)
}

fn blob_lock_file(dir: &Path) -> Result<File> {
    let path = dir.join(BLOB_LOCK);
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))
}

impl Store {
    /// Removes the blob files redactions freed that no step names, unless a reader holds
    /// [`BLOB_LOCK`] (then they wait). Returns how many were removed, their bytes, and how
    /// many are left. Under `blob_use`: no step is between storing its blobs and committing.
    pub fn remove_freed_blobs(&self) -> Result<(u64, u64, u64), ApiError> {
        // Asked first without the lock, which holds up the steps being stored: mostly, none.
        if self.read(db::pending_removals)?.is_empty() {
            return Ok((0, 0, 0));
        }
        let _no_step_storing = self.blob_use.write().unwrap_or_else(|p| p.into_inner());
        let pending = self.read(db::pending_removals)?;
        if pending.is_empty() {
            return Ok((0, 0, 0));
        }
        let lock = blob_lock_file(&self.dir).map_err(ApiError::internal)?;
        if lock.try_lock().is_err() {
            return Ok((0, 0, pending.len() as u64));
        }
        let (mut removed, mut bytes, mut left) = (0, 0, 0);
        for id in pending {
            if !self.read(|c| db::blob_in_use(c, &id))? {
                match self.blobs.remove(&id) {
                    Ok(n) => {
                        removed += 1;
                        bytes += n;
                    }
                    Err(e) => {
                        tracing::warn!(blob = %id, error = %format!("{e:#}"), "a freed blob file cannot be removed yet");
                        left += 1;
                        continue;
                    }
                }
            }
            self.write(|c| db::removal_done(c, &id))?;
        }
        Ok((removed, bytes, left))
    }
}

/// Takes the data directory for this process's server alone, for as long as the returned
/// file is open (the lock goes with the process, however it ends). A second server on the
/// same directory would remove the first's temp files as it started ([`Store::recover`]),
/// could migrate the database under it, and would write the same runs' carry files: it is
/// refused, naming the process that holds the directory. Taken before the store is opened;
/// other commands (`check`, `backup`, `token`) may still run beside a server; `key rotate`
/// takes it too (`remedy` says what to do about a server holding it).
pub fn lock_for_serving(dir: &Path, remedy: &str) -> Result<File> {
    fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create the data directory {}; choose another with --data-dir",
            dir.display()
        )
    })?;
    let path = dir.join(SERVE_LOCK);
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let by = if holder.is_empty() {
                String::new()
            } else {
                format!(" (process {holder})")
            };
            bail!(
                "another pipeproof server is using the data directory {}{by}; {remedy}",
                dir.display()
            );
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    write!(file, "{}", std::process::id())?;
    file.flush()?;
    Ok(file)
}

impl Store {
    /// Opens the store in `dir`, creating it (database, directories, signing key) on first
    /// use and applying migrations, beside a server that may be running (`check`, `token`):
    /// an interrupted key rotation is left for the server to finish ([`Store::open_serving`]).
    pub fn open(dir: &Path) -> Result<Store> {
        Store::open_with(dir, false)
    }

    /// Opens the store in `dir` as the one process holding it ([`lock_for_serving`]: the
    /// server, a key rotation), which finishes or undoes an interrupted key rotation. The
    /// server then calls [`Store::recover`].
    pub fn open_serving(dir: &Path, _lock: &File) -> Result<Store> {
        Store::open_with(dir, true)
    }

    fn open_with(dir: &Path, serving: bool) -> Result<Store> {
        for sub in ["", "blobs", "carry", "tmp"] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).with_context(|| {
                format!(
                    "cannot create the data directory {}; choose another with --data-dir",
                    d.display()
                )
            })?;
        }
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", dir.display()))?;
        let db_path = dir.join(DB_FILE);
        let mut conn = db::open(&db_path).with_context(|| {
            format!(
                "cannot open the database {}; if it is damaged, restore a backup into a new data directory with `pipeproof restore`",
                db_path.display()
            )
        })?;
        db::migrate(&mut conn).with_context(|| format!("{}", db_path.display()))?;
        let key = signing_key(&dir, &conn, serving)?;
        let exports = exports::Exports::new(dir.join("exports"), exports::DEFAULT_CACHE)
            .with_context(|| format!("cannot create {}", dir.join("exports").display()))?;
        let store = Store {
            blobs: Blobs::new(dir.join("blobs"), dir.join("tmp")),
            exports,
            dir,
            db_path,
            write: Mutex::new(conn),
            reads: Mutex::new(Vec::new()),
            key,
            run_locks: Mutex::new(HashMap::new()),
            log: Mutex::new(merkle::Tree::default()),
            blob_use: std::sync::RwLock::new(()),
            activity: Mutex::new(HashMap::new()),
            opened_at: time::OffsetDateTime::now_utc(),
        };
        Ok(store)
    }

    /// Removes what a crash may have left half-written: temp files, and carry files no run
    /// names. Only the server calls this, at start, before it takes requests, holding
    /// [`lock_for_serving`].
    pub fn recover(&self) -> Result<()> {
        for entry in fs::read_dir(self.dir.join("tmp"))? {
            let _ = fs::remove_file(entry?.path());
        }
        // Blob files a redaction freed and did not remove (a crash, a backup reading).
        let (removed, _, left) = self
            .remove_freed_blobs()
            .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
        if removed + left > 0 {
            tracing::info!(removed, left, "removed blob files that redactions freed");
        }
        let (unnamed, bytes) = self.remove_unnamed_blobs()?;
        if unnamed > 0 {
            tracing::info!(
                files = unnamed,
                bytes,
                "removed blob files that no step names (steps that failed before their commit)"
            );
        }
        let keep: std::collections::HashSet<String> =
            db::carry_files(&self.write.lock().expect("db lock"))?
                .into_iter()
                .collect();
        for entry in fs::read_dir(self.dir.join("carry"))? {
            let entry = entry?;
            if !keep.contains(&entry.file_name().to_string_lossy().to_string()) {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Removes the blob files that no step names: a step that failed before its commit (a
    /// full disk, a crash, data refused once its blobs were written) leaves the blobs it
    /// wrote, which may hold data. Called as the server starts and by [`housekeeping`]: the
    /// files are listed, then each is asked about again under `blob_use`, when no step is
    /// between storing its blobs and committing, so a blob of a step being stored is kept.
    /// Files not named as blobs are left alone, and so is everything while a reader
    /// (`backup`, `check`) holds [`BLOB_LOCK`]. Returns how many files were removed and their
    /// bytes.
    pub fn remove_unnamed_blobs(&self) -> Result<(u64, u64)> {
        let lock = blob_lock_file(&self.dir)?;
        if lock.try_lock().is_err() {
            return Ok((0, 0));
        }
        let unnamed = |e: ApiError| anyhow::anyhow!("{}", e.detail);
        let named = self.read(db::blob_refs).map_err(unnamed)?;
        let candidates = maintain::unnamed_blob_files(&self.dir.join("blobs"), named)?;
        if candidates.is_empty() {
            return Ok((0, 0));
        }
        let _no_step_storing = self.blob_use.write().unwrap_or_else(|p| p.into_inner());
        let (mut removed, mut bytes) = (0, 0);
        for (id, path) in candidates {
            let is_blob =
                id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !is_blob || self.read(|c| db::blob_in_use(c, &id)).map_err(unnamed)? {
                continue;
            }
            let size = fs::metadata(&path).map_or(0, |m| m.len());
            match fs::remove_file(&path) {
                Ok(()) => {
                    removed += 1;
                    bytes += size;
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove a blob file no step names")
                }
            }
        }
        Ok((removed, bytes))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh path under `tmp/`.
    pub fn tmp_path(&self, what: &str) -> PathBuf {
        self.dir
            .join("tmp")
            .join(format!("{what}-{}", random_name()))
    }

    /// The path of a carry file.
    pub fn carry_path(&self, name: &str) -> PathBuf {
        self.dir.join("carry").join(name)
    }

    /// Makes a carry file durable under its name (moves `from`).
    pub fn install_carry(&self, from: &Path, name: &str) -> Result<()> {
        let to = self.carry_path(name);
        fs::rename(from, &to).with_context(|| format!("cannot move data to {}", to.display()))?;
        sync_dir(&self.dir.join("carry"))
    }

    /// Runs a read on a pooled read connection.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, ApiError> {
        let conn = self.reads.lock().expect("pool lock").pop();
        let conn = match conn {
            Some(c) => c,
            None => db::open(&self.db_path)?,
        };
        let out = f(&conn);
        let mut pool = self.reads.lock().expect("pool lock");
        if pool.len() < 8 {
            pool.push(conn);
        }
        Ok(out?)
    }

    /// Runs a write on the one write connection.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, ApiError> {
        let mut conn = self.write.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&mut conn)?)
    }

    /// Runs `f` on the tree of the log of seals, brought up to date with the database first:
    /// the tree is kept between requests, and only the entries appended since are read, so
    /// a head or a proof costs O(log n) hashes, not a read and a hash of the whole log. (The
    /// log only grows; `pipeproof check` reads the database's own.)
    pub fn with_log<T>(&self, f: impl FnOnce(&merkle::Tree) -> T) -> Result<T, ApiError> {
        let mut tree = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let start = tree.len() as u64;
        for leaf in self.read(|c| db::log_leaves_from(c, start))? {
            tree.push(leaf);
        }
        Ok(f(&tree))
    }

    /// Notes that an open run is active now: a step post for it was accepted, a part of its
    /// body arrived, its step was stored. Step bodies stream in before any lock is taken, and
    /// a step's stored time is when its ingest began, so its records alone would make a run
    /// look idle while a long step arrives or is built ([`housekeeping`]).
    pub fn touch(&self, run_id: &str) {
        self.touch_at(run_id, time::OffsetDateTime::now_utc());
    }

    fn touch_at(&self, run_id: &str, at: time::OffsetDateTime) {
        let mut activity = self.activity.lock().unwrap_or_else(|p| p.into_inner());
        match activity.get_mut(run_id) {
            Some(seen) => *seen = (*seen).max(at),
            None => {
                activity.insert(run_id.to_string(), at);
            }
        }
    }

    /// When this process last saw `run_id` active, or opened the store, whichever is later.
    pub fn seen_since(&self, run_id: &str) -> time::OffsetDateTime {
        let activity = self.activity.lock().unwrap_or_else(|p| p.into_inner());
        activity
            .get(run_id)
            .map_or(self.opened_at, |&seen| seen.max(self.opened_at))
    }

    /// Forgets the activity of a run that ended.
    pub fn forget_activity(&self, run_id: &str) {
        let mut activity = self.activity.lock().unwrap_or_else(|p| p.into_inner());
        activity.remove(run_id);
    }

    /// Forgets the activity of runs not in `open` (ended, or never open).
    pub fn forget_activity_but(&self, open: &std::collections::HashSet<&str>) {
        let mut activity = self.activity.lock().unwrap_or_else(|p| p.into_inner());
        activity.retain(|run, _| open.contains(run.as_str()));
    }

    /// The lock that serialises the steps, seal and failure of one run.
    pub fn run_lock(&self, run_id: &str) -> Arc<Mutex<()>> {
        let mut locks = self.run_locks.lock().expect("lock table");
        if locks.len() > 10_000 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        Arc::clone(locks.entry(run_id.to_string()).or_default())
    }

    /// The signing key.
    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// Every key this store has signed with: the current one first, then those rotated away,
    /// newest first, each with the hand-over that made it current.
    pub fn keys(&self) -> Result<Vec<PublicKey>, ApiError> {
        let current = self.key.public_hex();
        let mut keys = self.read(db::keys)?;
        keys.sort_by_key(|k| k.public_key != current);
        Ok(keys)
    }

    /// Makes a token; the reply holds its secret, which is stored only as a hash.
    pub fn create_token(&self, name: &str, scopes: &[Scope]) -> Result<Token, ApiError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| ApiError::internal(format!("random: {e}")))?;
        self.insert_token(name, scopes, &format!("pp_{}", hex::encode(secret)))
    }

    fn insert_token(&self, name: &str, scopes: &[Scope], secret: &str) -> Result<Token, ApiError> {
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let token = Token {
            id: new_id(),
            name: name.to_string(),
            scopes,
            created_at: now(),
            revoked_at: None,
            token: Some(secret.to_string()),
        };
        self.write(|c| db::insert_token(c, &token, &blake3::hash(secret.as_bytes())))?;
        Ok(token)
    }

    /// Every token (without secrets), revoked ones included, in the order they were made.
    pub fn tokens(&self) -> Result<Vec<Token>, ApiError> {
        Ok(self.read(db::tokens)?.into_iter().map(|(t, _)| t).collect())
    }

    /// Revokes a token: it is refused from the next request on. Revoking a revoked token
    /// changes nothing. The last admin token that is not revoked cannot be: no one could
    /// make tokens or revoke them then (make another admin token first). Returns the token
    /// and whether this call revoked it.
    pub fn revoke_token(&self, id: &str) -> Result<(Token, bool), ApiError> {
        let id = id.trim();
        let at = now();
        let found = self.write(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let tokens: Vec<Token> = db::tokens(&tx)?.into_iter().map(|(t, _)| t).collect();
            let Some(mut token) = tokens.iter().find(|t| t.id == id).cloned() else {
                return Ok(None);
            };
            let admin = |t: &Token| t.revoked_at.is_none() && t.scopes.contains(&Scope::Admin);
            if admin(&token) && tokens.iter().filter(|t| admin(t)).count() == 1 {
                return Ok(Some(Err(token)));
            }
            let revoked = db::revoke_token(&tx, id, &at)?;
            if revoked {
                token.revoked_at = Some(at.clone());
            }
            tx.commit()?;
            Ok(Some(Ok((token, revoked))))
        })?;
        match found {
            Some(Ok(revoked)) => Ok(revoked),
            Some(Err(last)) => Err(ApiError::new(
                actix_web::http::StatusCode::CONFLICT,
                "last-admin-token",
                format!(
                    "token `{}` ({id}) is the last admin token: without it no one could make or \
                     revoke tokens; make another admin token first (`pipeproof token create \
                     --scope admin`), then revoke this one",
                    last.name
                ),
            )),
            None => Err(ApiError::not_found(
                "unknown-token",
                format!(
                    "no token has the id `{id}`: list them with `pipeproof token list` or \
                     GET /api/v1/tokens (a token's id, not its secret)"
                ),
            )),
        }
    }

    /// The first admin token: `fixed` when given (stored if new), else a new one when the
    /// store has no token yet. Returns the secret when it was made here, to print once.
    /// A `fixed` token that was revoked is an error: it is not made valid again.
    pub fn ensure_admin_token(&self, fixed: Option<&str>) -> Result<Option<String>, ApiError> {
        match fixed {
            Some(secret) => {
                match self.authenticate(secret)? {
                    Some(Token {
                        revoked_at: Some(at),
                        ..
                    }) => {
                        return Err(ApiError::internal(format!(
                            "PIPEPROOF_ADMIN_TOKEN is a token revoked at {at}: set it to a new \
                             secret (it becomes an admin token), or unset it and use another \
                             admin token"
                        )));
                    }
                    Some(_) => {}
                    None => {
                        self.insert_token(
                            "admin (PIPEPROOF_ADMIN_TOKEN)",
                            &[Scope::Admin],
                            secret,
                        )?;
                    }
                }
                Ok(None)
            }
            None if self.write(|c| db::count_tokens(c))? == 0 => {
                Ok(self.create_token("admin", &[Scope::Admin])?.token)
            }
            None => Ok(None),
        }
    }

    /// The token whose secret this is, revoked or not. Every stored hash is compared, in
    /// constant time.
    pub fn authenticate(&self, secret: &str) -> Result<Option<Token>, ApiError> {
        let presented = blake3::hash(secret.as_bytes());
        let mut found = None;
        for (token, hash) in self.read(db::tokens)? {
            // blake3::Hash's == is constant time.
            if hash == presented {
                found = Some(token);
            }
        }
        Ok(found)
    }
}

/// Whether `public` is one of the store's keys and not retired: a key the store may sign
/// with (stores written before key rotation may list several, from a key file made anew;
/// the server retires all but the one it uses as it opens).
pub(super) fn usable(keys: &[PublicKey], public: &str) -> bool {
    keys.iter()
        .any(|k| k.public_key == public && k.retired_at.is_none())
}

/// The key the store signs with: `signing.key`, made on first use; or, while a rotation is
/// being written (or was cut short), `signing.key.next` once the database holds it as a key
/// in use. Only a `serving` opener moves or drops `signing.key.next` (finishing or undoing
/// the rotation) and retires keys left in use beside its own: another command beside it
/// only reads, and reads again once if what it finds disagrees (a rotation committing
/// meanwhile). A key the store's keys do not list, or list as retired, is refused, as is a
/// missing key file once the store has a key.
fn signing_key(dir: &Path, conn: &Connection, serving: bool) -> Result<KeyPair> {
    match signing_key_once(dir, conn, serving) {
        Err(_) if !serving => {
            std::thread::sleep(std::time::Duration::from_millis(200));
            signing_key_once(dir, conn, serving).map_err(|e| {
                e.context(
                    "if a key rotation (`pipeproof key rotate`) is running on this directory, \
                     try again once it is done",
                )
            })
        }
        r => r,
    }
}

fn signing_key_once(dir: &Path, conn: &Connection, serving: bool) -> Result<KeyPair> {
    let (path, next_path) = (dir.join(KEY_FILE), dir.join(NEXT_KEY_FILE));
    let known = db::keys(conn)?;
    match read_key(&next_path) {
        Ok(next) if usable(&known, &next.public_hex()) => {
            if serving {
                fs::rename(&next_path, &path)?;
                sync_dir(dir)?;
                tracing::info!(public_key = %next.public_hex(), "finished an interrupted key rotation");
            }
            return Ok(next);
        }
        Ok(_) if serving => {
            // Not recorded (a rotation that died before it committed), or a key retired
            // since: never one to sign with.
            fs::remove_file(&next_path)?;
            sync_dir(dir)?;
        }
        // Not recorded yet (a rotation being written), or gone (renamed by the rotation
        // meanwhile): the key file is the key.
        _ => {}
    }
    let current: Vec<&PublicKey> = known.iter().filter(|k| k.retired_at.is_none()).collect();
    if !path.exists() {
        if let Some(k) = current.first() {
            bail!(
                "the signing key {} is missing; this store signs with the key {}. Put its file \
                 back from a backup of this store; if it is lost for good, `pipeproof key \
                 rotate --lost` makes a new key, which no hand-over vouches for",
                path.display(),
                k.public_key
            );
        }
        if !known.is_empty() {
            bail!(
                "the signing key {} is missing and every key of this store is retired: put \
                 back the key file of its last key from a backup, or make a new key with \
                 `pipeproof key rotate --lost`",
                path.display()
            );
        }
        let key = KeyPair::generate()?;
        write_key(&path, &key)?;
        tracing::info!(path = %path.display(), public_key = %key.public_hex(), "made a signing key");
        db::insert_key(conn, &key.public_hex(), &now(), None)?;
        return Ok(key);
    }
    let key = read_key(&path)?;
    let public = key.public_hex();
    match known.iter().find(|k| k.public_key == public) {
        Some(k) => {
            if let Some(retired) = &k.retired_at {
                bail!(
                    "{} holds the key {public}, rotated away at {retired}: a retired key signs \
                     nothing again. Put back the signing key made by that rotation (from a \
                     backup that holds it), or restore the backup this key file came from whole",
                    path.display()
                );
            }
        }
        None if known.is_empty() => db::insert_key(conn, &public, &now(), None)?,
        None => bail!(
            "{} holds the key {public}, which this store never signed with (it signs with {}): \
             put back this store's own key file from a backup",
            path.display(),
            current.first().map_or("none", |k| k.public_key.as_str())
        ),
    }
    if serving && current.len() > 1 {
        // Made anew beside the key file of an earlier build (a key file lost, a container
        // without it on its volume): those keys signed what they signed, and sign no more.
        let at = now();
        for k in current.iter().filter(|k| k.public_key != public) {
            db::retire_key(conn, &k.public_key, &at)?;
            tracing::warn!(public_key = %k.public_key, "retired a key left in use beside the signing key");
        }
    }
    Ok(key)
}

/// Reads a signing key file (the secret, 64 hex digits).
pub(super) fn read_key(path: &Path) -> Result<KeyPair> {
    use std::os::unix::fs::PermissionsExt;
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read the signing key {}", path.display()))?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret).with_context(|| {
        format!(
            "{} is not a signing key (64 hex digits); restore it from a backup",
            path.display()
        )
    })?;
    let mode = fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the signing key is readable by others; chmod 600 it");
    }
    Ok(KeyPair::from_bytes(&secret))
}

/// Writes a signing key file durably (mode 0600, synced, renamed into place).
pub(super) fn write_key(path: &Path, key: &KeyPair) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp-{}", random_name()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write the signing key {}", tmp.display()))?;
    f.write_all(hex::encode(key.to_bytes()).as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().expect("the key file has a directory"))?;
    Ok(())
}

/// Rotates the signing key of the store in `dir`, whose server must be stopped (it signs
/// with the key it loaded): a new key is made, the old one hands over to it (a
/// [`KeyHandover`] signed by both, published with the keys) and is marked retired, and the
/// new one replaces `signing.key`; the old secret is gone. A crash at any point leaves one
/// of the two keys in use, with the database agreeing: the new key is written to
/// `signing.key.next`, the database records the hand-over, then `signing.key.next` replaces
/// `signing.key` (an opener holding the lock finishes or undoes a rotation cut short, and
/// other commands read the key the database names meanwhile: [`signing_key`]).
pub fn rotate_key(dir: &Path) -> Result<KeyHandover> {
    let lock = lock_for_rotation(dir)?;
    let store = Store::open_serving(dir, &lock)?;
    let next = KeyPair::generate()?;
    let at = now();
    let handover = store.key.hand_over(&next, &at);
    let (key_path, next_path) = (store.dir.join(KEY_FILE), store.dir.join(NEXT_KEY_FILE));
    write_key(&next_path, &next)?;
    store
        .write(|c| {
            let tx = c.transaction()?;
            db::retire_key(&tx, &handover.from, &at)?;
            db::insert_key(&tx, &handover.to, &at, Some(&handover))?;
            tx.commit()
        })
        .map_err(|e| anyhow::anyhow!("cannot record the new key: {}", e.detail))?;
    fs::rename(&next_path, &key_path).with_context(|| {
        format!(
            "the new key is recorded but {} could not replace {}: start the server, which \
             finishes the rotation",
            next_path.display(),
            key_path.display()
        )
    })?;
    sync_dir(&store.dir)?;
    Ok(handover)
}

/// Replaces a signing key that is lost for good (its file gone): a new key is made and the
/// store's keys are all marked retired, without a hand-over, since no key is left to sign
/// one. Verifiers must be told the new key through a channel of their own: monitors that
/// follow hand-overs refuse heads it signs. Returns the new key and those retired.
pub fn replace_lost_key(dir: &Path) -> Result<(String, Vec<String>)> {
    let _lock = lock_for_rotation(dir)?;
    let (key_path, next_path) = (dir.join(KEY_FILE), dir.join(NEXT_KEY_FILE));
    if let Some(there) = [&key_path, &next_path].into_iter().find(|p| p.exists()) {
        bail!(
            "{} exists: the key is not lost. Rotate it with `pipeproof key rotate` (the file \
             must hold the store's own key; if it does not, move it away first)",
            there.display()
        );
    }
    let mut conn = db::open(&dir.join(DB_FILE))?;
    db::migrate(&mut conn)?;
    let next = KeyPair::generate()?;
    let at = now();
    let tx = conn.transaction()?;
    let retired: Vec<String> = db::keys(&tx)?
        .into_iter()
        .filter(|k| k.retired_at.is_none())
        .map(|k| k.public_key)
        .collect();
    for k in &retired {
        db::retire_key(&tx, k, &at)?;
    }
    db::insert_key(&tx, &next.public_hex(), &at, None)?;
    // As a rotation: the next key, then the commit, then the rename; a crash between them is
    // finished or undone by the next server to open the store.
    write_key(&next_path, &next)?;
    tx.commit()?;
    fs::rename(&next_path, &key_path)?;
    sync_dir(dir)?;
    Ok((next.public_hex(), retired))
}

/// `serve.lock`, taken for a key rotation, in a data directory that holds a store.
fn lock_for_rotation(dir: &Path) -> Result<File> {
    if !dir.join(DB_FILE).exists() {
        bail!(
            "{} holds no pipeproof store; pass the server's --data-dir",
            dir.display()
        );
    }
    lock_for_serving(
        dir,
        "stop it first: it signs with the key it loaded, then start it again after the rotation",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_files_no_step_names_are_removed_at_start_unless_a_reader_holds_them() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Store::open(&data).unwrap();
        crate::demo::load_if_empty(&store).unwrap().unwrap();
        let named = store.read(db::blob_refs).unwrap();
        // A step that failed before its commit left a blob; something else left a file.
        let orphan = store
            .blobs
            .put_with(|w| Ok(w.write_all(b"rows of a step never committed")?))
            .unwrap();
        let stray = data.join("blobs").join("zz").join("notes.txt");
        fs::create_dir_all(stray.parent().unwrap()).unwrap();
        fs::write(&stray, "kept").unwrap();
        let reader = lock_blob_readers(&data).unwrap();
        store.recover().unwrap();
        assert!(
            store.blobs.path(&orphan).exists(),
            "a reader holds the blobs"
        );
        drop(reader);
        store.recover().unwrap();
        assert!(!store.blobs.path(&orphan).exists());
        assert!(stray.exists(), "not a blob's name: left alone");
        assert!(named.iter().all(|id| store.blobs.path(id).exists()));
        assert_eq!(store.read(db::blob_refs).unwrap(), named);
        fs::remove_file(&stray).unwrap(); // check calls any file under blobs/ damage
        let report = maintain::check(&data).unwrap();
        assert_eq!((report.unnamed_blobs, report.damage.len()), (0, 0));
    }

    #[test]
    fn first_open_makes_key_and_admin_token_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let secret = store.ensure_admin_token(None).unwrap().expect("made");
        assert_eq!(store.ensure_admin_token(None).unwrap(), None, "only once");
        let t = store.authenticate(&secret).unwrap().expect("known");
        assert_eq!(t.scopes, vec![Scope::Admin]);
        assert!(store.authenticate("pp_wrong").unwrap().is_none());
        let public = store.key().public_hex();
        drop(store);
        let again = Store::open(dir.path()).unwrap();
        assert_eq!(
            again.key().public_hex(),
            public,
            "the key survives a restart"
        );
        assert!(again.authenticate(&secret).unwrap().is_some());
    }

    #[test]
    fn a_rotation_cut_short_is_finished_or_undone_by_the_lock_holder_alone() {
        let dir = tempfile::tempdir().unwrap();
        let next_path = dir.path().join(NEXT_KEY_FILE);
        let serving = |dir: &Path| {
            let lock = lock_for_serving(dir, "").unwrap();
            Store::open_serving(dir, &lock).unwrap()
        };
        let first = Store::open(dir.path()).unwrap().key().public_hex();
        // Killed after writing the next key, before the database recorded it: a command
        // beside the server leaves it (a rotation may be writing it); the server drops it.
        write_key(&next_path, &KeyPair::from_bytes(&[5; 32])).unwrap();
        assert_eq!(Store::open(dir.path()).unwrap().key().public_hex(), first);
        assert!(next_path.exists());
        let store = serving(dir.path());
        assert_eq!(store.key().public_hex(), first);
        assert!(!next_path.exists());
        // Killed after the database recorded it, before it replaced the key: read by a
        // command beside the server without moving it; finished by the server.
        let next = KeyPair::from_bytes(&[6; 32]);
        let handover = store.key().hand_over(&next, &now());
        write_key(&next_path, &next).unwrap();
        store
            .write(|c| {
                db::retire_key(c, &first, &handover.at)?;
                db::insert_key(c, &handover.to, &handover.at, Some(&handover))
            })
            .unwrap();
        drop(store);
        assert_eq!(
            Store::open(dir.path()).unwrap().key().public_hex(),
            next.public_hex()
        );
        assert!(next_path.exists());
        let store = serving(dir.path());
        assert_eq!(store.key().public_hex(), next.public_hex());
        assert!(!next_path.exists());
        let keys = store.keys().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].public_key, next.public_hex());
        assert_eq!(keys[0].handover.as_ref(), Some(&handover));
        assert_eq!(keys[1].retired_at.as_deref(), Some(handover.at.as_str()));
        // And a whole rotation, from there.
        drop(store);
        let third = rotate_key(dir.path()).unwrap();
        assert_eq!(third.from, next.public_hex());
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.key().public_hex(), third.to);
        let keys: Vec<String> = store
            .keys()
            .unwrap()
            .into_iter()
            .map(|k| k.public_key)
            .collect();
        assert_eq!(keys, [third.to.clone(), next.public_hex(), first]);
    }

    #[test]
    fn a_key_file_the_store_does_not_know_or_lost_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join(KEY_FILE);
        let own = Store::open(dir.path()).unwrap().key().public_hex();
        let kept = fs::read(&key_path).unwrap();
        // Another key put in its place is not adopted.
        let stranger = KeyPair::from_bytes(&[4; 32]);
        write_key(&key_path, &stranger).unwrap();
        let e = format!("{:#}", Store::open(dir.path()).err().unwrap());
        assert!(
            e.contains("which this store never signed with (it signs with"),
            "{e}"
        );
        assert!(e.contains(&own), "{e}");
        // A missing key file is not replaced by a new key behind the verifiers' backs.
        fs::remove_file(&key_path).unwrap();
        let e = format!("{:#}", Store::open(dir.path()).err().unwrap());
        assert!(
            e.contains("is missing") && e.contains("key rotate --lost"),
            "{e}"
        );
        // Lost for good: a new key, the old one retired, no hand-over.
        let (new, retired) = replace_lost_key(dir.path()).unwrap();
        assert_eq!(retired, std::slice::from_ref(&own));
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.key().public_hex(), new);
        let keys = store.keys().unwrap();
        assert!(keys[0].handover.is_none() && keys[1].retired_at.is_some());
        drop(store);
        // Not while a key file is there.
        let e = format!("{:#}", replace_lost_key(dir.path()).err().unwrap());
        assert!(e.contains("the key is not lost"), "{e}");
        // The old key file put back is a retired key: refused.
        fs::write(&key_path, kept).unwrap();
        let e = format!("{:#}", Store::open(dir.path()).err().unwrap());
        assert!(e.contains("rotated away at"), "{e}");
    }

    #[test]
    fn keys_left_in_use_by_an_earlier_build_are_retired_by_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        // An earlier build made a new key when the key file went missing, and left the
        // first one in use.
        let made_anew = KeyPair::from_bytes(&[7; 32]);
        first
            .write(|c| db::insert_key(c, &made_anew.public_hex(), &now(), None))
            .unwrap();
        let own = first.key().public_hex();
        drop(first);
        // Beside a server, the store opens with its key file's key; the server retires the
        // other.
        assert_eq!(Store::open(dir.path()).unwrap().key().public_hex(), own);
        let lock = lock_for_serving(dir.path(), "").unwrap();
        let store = Store::open_serving(dir.path(), &lock).unwrap();
        let keys = store.keys().unwrap();
        let in_use: Vec<&str> = (keys.iter())
            .filter(|k| k.retired_at.is_none())
            .map(|k| k.public_key.as_str())
            .collect();
        assert_eq!(in_use, [own.as_str()]);
        // A next key file holding a retired key is never taken up.
        drop(store);
        write_key(&dir.path().join(NEXT_KEY_FILE), &made_anew).unwrap();
        let store = Store::open_serving(dir.path(), &lock).unwrap();
        assert_eq!(store.key().public_hex(), own);
        assert!(!dir.path().join(NEXT_KEY_FILE).exists());
    }

    #[test]
    fn stored_json_reads_floats_back_exactly() {
        // Steps are stored as JSON text; a float read back one ULP off would change a
        // statistics digest and break the bundle's verification.
        for x in [
            25.026954311228902_f64,
            250.62897644515778,
            0.1 + 0.2,
            1e-310,
        ] {
            let text = serde_json::to_string(&x).unwrap();
            assert_eq!(
                text.parse::<f64>().unwrap().to_bits(),
                x.to_bits(),
                "{text}"
            );
            let back: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{text}");
        }
    }

    #[test]
    fn times_have_a_fixed_width_and_sort_as_text_as_instants() {
        // 2026-11-28T14:21:22Z and some nanoseconds after it.
        let at = |nanos: i128| {
            time::OffsetDateTime::from_unix_timestamp_nanos(1_795_875_682_000_000_000 + nanos)
                .unwrap()
        };
        let paris = time::UtcOffset::from_hms(1, 0, 0).unwrap();
        let times = [
            at(0),
            at(100_000_000),
            at(140_999_000),
            at(500_000_000).to_offset(paris),
            at(1_000_000_000),
        ];
        let text: Vec<String> = times.iter().map(|&t| rfc3339(t)).collect();
        assert_eq!(
            text,
            [
                "2026-11-28T14:21:22.000Z",
                "2026-11-28T14:21:22.100Z",
                "2026-11-28T14:21:22.140Z",
                "2026-11-28T14:21:22.500Z",
                "2026-11-28T14:21:23.000Z",
            ]
        );
        assert!(text.windows(2).all(|w| w[0] < w[1]));
        for t in &text {
            let back =
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339);
            assert!(back.is_ok(), "{t}");
        }
    }

    #[test]
    fn fixed_admin_token_is_stored_as_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.ensure_admin_token(Some("s3cret-admin")).unwrap(),
            None
        );
        assert!(store.authenticate("s3cret-admin").unwrap().is_some());
        let mut raw = fs::read(dir.path().join(DB_FILE)).unwrap();
        raw.extend(fs::read(dir.path().join(format!("{DB_FILE}-wal"))).unwrap_or_default());
        assert!(
            !raw.windows(12).any(|w| w == b"s3cret-admin"),
            "the secret itself is not in the database"
        );
    }
}
