//! Operations on a whole data directory: an online backup (a consistent SQLite copy plus the
//! blobs it names), restore into an empty directory, and the check that re-verifies every
//! stored run with core and reports damage. Serving and ingesting are left to the rest of the
//! store; these run beside a live server or on a stopped one.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags};

use pipeproof_core::bundle::verify_stream;

use super::blobs::{Blobs, random_name, sync_dir};
use super::{DB_FILE, KEY_FILE, NEXT_KEY_FILE, Store, db};

/// What a backup holds.
#[derive(Debug, serde::Serialize)]
pub struct BackupReport {
    /// Runs in the copy.
    pub runs: u64,
    /// Steps in the copy.
    pub steps: u64,
    /// Blobs copied.
    pub blobs: u64,
    /// Bytes copied (database, key and blobs).
    pub bytes: u64,
    /// Open runs whose head data moved on during the backup: their next step after a
    /// restore cannot be diffed against it.
    pub missing_carry: Vec<String>,
}

/// One thing `check` found wrong.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Damage {
    /// Where: `database`, `blob ID`, `run ID`, `run ID step N`.
    pub place: String,
    /// What is wrong.
    pub detail: String,
}

/// What `check` looked at and found.
#[derive(Debug, Default, serde::Serialize)]
pub struct CheckReport {
    /// Runs re-verified.
    pub runs: u64,
    /// Steps in them.
    pub steps: u64,
    /// Blob files re-hashed.
    pub blobs: u64,
    /// Blob files that no step names: freed by a redaction and not removed yet, or written
    /// by a step that failed before its commit (the server removes both as it starts). Not
    /// damage, but they may hold data.
    pub unnamed_blobs: u64,
    /// Their bytes.
    pub unnamed_bytes: u64,
    /// Everything found wrong; empty when the store is sound.
    pub damage: Vec<Damage>,
}

impl CheckReport {
    fn damaged(&mut self, place: impl Into<String>, detail: impl Into<String>) {
        self.damage.push(Damage {
            place: place.into(),
            detail: detail.into(),
        });
    }
}

/// The signing key a database copy names as the one in use, read from `signing.key` or
/// `signing.key.next` (a rotation between the copy and now makes neither hold it: an error,
/// the backup is taken again).
fn snapshot_key(snapshot: &Connection, data_dir: &Path) -> Result<pipeproof_core::sign::KeyPair> {
    let keys = db::keys(snapshot)?;
    for name in [KEY_FILE, NEXT_KEY_FILE] {
        let Ok(key) = super::read_key(&data_dir.join(name)) else {
            continue;
        };
        if keys.is_empty() || super::usable(&keys, &key.public_hex()) {
            return Ok(key);
        }
    }
    bail!(
        "the signing key of {} changed while it was backed up (a key rotation): back it up again",
        data_dir.display()
    )
}

fn require_store(dir: &Path) -> Result<()> {
    if !dir.join(DB_FILE).is_file() {
        bail!(
            "{} holds no pipeproof store (no {DB_FILE}); pass the server's --data-dir",
            dir.display()
        );
    }
    Ok(())
}

fn require_empty(dir: &Path, what: &str) -> Result<()> {
    if dir.exists()
        && fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty; {what} into a new or empty directory",
            dir.display()
        );
    }
    Ok(())
}

/// Copies `from` to `to` durably (temp file, fsync, rename); checks the BLAKE3 hash of the
/// bytes against `expect` when given. Returns the byte count.
fn copy_file(from: &Path, to: &Path, expect: Option<&str>, mode: u32) -> Result<u64> {
    let mut src = File::open(from).with_context(|| format!("cannot open {}", from.display()))?;
    let parent = to.parent().expect("copies go into a directory");
    fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(".partial-{}", random_name()));
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = src.read(&mut buf)?;
        if k == 0 {
            break;
        }
        hasher.update(&buf[..k]);
        dst.write_all(&buf[..k])?;
        n += k as u64;
    }
    if let Some(id) = expect
        && hasher.finalize().to_hex().as_str() != id
    {
        let _ = fs::remove_file(&tmp);
        bail!(
            "blob {id} in {} does not match its hash: the store is damaged; run `pipeproof check`",
            from.display()
        );
    }
    dst.sync_all()?;
    fs::rename(&tmp, to)?;
    sync_dir(parent)?;
    Ok(n)
}

/// Backs up the store in `data_dir` into the new or empty directory `out`, while a server
/// may be using it: first a consistent copy of the database, then the blobs and carry files
/// that copy names (blobs are written before the rows that name them commit, so every one is
/// there), then the signing key. The database file is renamed into place last, so a backup cut
/// short is never mistaken for a whole one.
pub fn backup(data_dir: &Path, out: &Path) -> Result<BackupReport> {
    backup_with(data_dir, out, || {})
}

/// [`backup`], calling `copied` after each copy of the database (a test changes the store
/// there, as a request could).
fn backup_with(data_dir: &Path, out: &Path, mut copied: impl FnMut()) -> Result<BackupReport> {
    require_store(data_dir)?;
    require_empty(out, "back up")?;
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    // No blob a redaction freed is removed while the backup reads them; a server of an
    // earlier build, which takes no such lock, may still remove a blob that the copy of the
    // database names: the database is then copied again.
    let _reading = super::lock_blob_readers(data_dir)?;
    let mut tries = 0;
    loop {
        tries += 1;
        let gone = match backup_once(data_dir, out, &mut copied)? {
            Ok(report) => return Ok(report),
            Err(gone) => gone,
        };
        let live = db::open(&data_dir.join(DB_FILE))?;
        if tries == 5 || db::blob_in_use(&live, &gone)? {
            bail!(
                "blob {gone}, which the store names, is missing from {}: the store is damaged; \
                 run `pipeproof check`",
                data_dir.join("blobs").display()
            );
        }
    }
}

/// One attempt of [`backup`]: its report, or the id of a blob that the copy of the database
/// names and the store does not hold.
fn backup_once(
    data_dir: &Path,
    out: &Path,
    copied: &mut impl FnMut(),
) -> Result<std::result::Result<BackupReport, String>> {
    let partial = out.join(format!("{DB_FILE}.partial"));
    // An open run's head data (its carry file) is replaced when its next step commits. So
    // the carry files are taken (hard links: instant) before the database is copied, and
    // the copy is taken again in the rare case a step committed in between.
    let mut attempt = 0;
    let (snapshot, missing_carry) = loop {
        attempt += 1;
        let staged = out.join("carry.staging");
        let _ = fs::remove_dir_all(&staged);
        fs::create_dir_all(&staged)?;
        let live_carry = data_dir.join("carry");
        if live_carry.is_dir() {
            for entry in fs::read_dir(&live_carry)? {
                let entry = entry?;
                let to = staged.join(entry.file_name());
                if fs::hard_link(entry.path(), &to).is_err() {
                    // Another file system, or the file just went: copy what is there.
                    let _ = copy_file(&entry.path(), &to, None, 0o644);
                }
            }
        }
        let _ = fs::remove_file(&partial);
        let live = db::open(&data_dir.join(DB_FILE))
            .with_context(|| format!("cannot open the database in {}", data_dir.display()))?;
        db::backup_into(&live, &partial).context("cannot copy the database")?;
        drop(live);
        copied();
        let snapshot = Connection::open_with_flags(&partial, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let names = db::carry_files(&snapshot)?;
        let missing: Vec<String> = names
            .iter()
            .filter(|n| !staged.join(n).exists())
            .cloned()
            .collect();
        if missing.is_empty() || attempt == 5 {
            let carry = out.join("carry");
            fs::create_dir_all(&carry)?;
            for n in names.iter().filter(|n| staged.join(n).exists()) {
                fs::rename(staged.join(n), carry.join(n))?;
            }
            fs::remove_dir_all(&staged)?;
            sync_dir(&carry)?;
            break (snapshot, missing);
        }
    };
    let mut report = BackupReport {
        runs: db::count_runs(&snapshot)?,
        steps: db::count_steps(&snapshot)?,
        blobs: 0,
        bytes: fs::metadata(&partial)?.len(),
        missing_carry,
    };
    let source = Blobs::new(data_dir.join("blobs"), data_dir.join("tmp"));
    let target = Blobs::new(out.join("blobs"), out.join("tmp"));
    let named = db::blob_refs(&snapshot)?;
    for id in &named {
        let (from, to) = (source.path(id), target.path(id));
        report.blobs += 1;
        if let Ok(m) = fs::metadata(&to) {
            report.bytes += m.len(); // Copied by an earlier attempt.
            continue;
        }
        match copy_file(&from, &to, Some(id), 0o644) {
            Ok(n) => report.bytes += n,
            Err(_) if !from.exists() => return Ok(Err(id.clone())),
            Err(e) => return Err(e),
        }
    }
    // Blobs an earlier attempt copied that this copy of the database no longer names (a
    // redaction freed them) are not part of the backup: they may hold what was redacted.
    for (_, path) in unnamed_blob_files(&out.join("blobs"), named)? {
        fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    }
    // The key the copied database signs with: `signing.key`, or the next key of a rotation
    // being written (not yet renamed into place).
    let key = snapshot_key(&snapshot, data_dir)?;
    drop(snapshot);
    super::write_key(&out.join(KEY_FILE), &key)?;
    report.bytes += 64;
    fs::rename(&partial, out.join(DB_FILE))?;
    sync_dir(out)?;
    Ok(Ok(report))
}

/// Restores a backup made by [`backup`] into the new or empty directory `data_dir`, then
/// checks the result.
pub fn restore(backup_dir: &Path, data_dir: &Path) -> Result<CheckReport> {
    require_store(backup_dir)?;
    if !backup_dir.join(KEY_FILE).is_file() {
        bail!(
            "{} has no {KEY_FILE}: it is not a whole backup",
            backup_dir.display()
        );
    }
    require_empty(data_dir, "restore")?;
    for sub in ["blobs", "carry"] {
        let from = backup_dir.join(sub);
        if from.is_dir() {
            copy_tree(&from, &data_dir.join(sub))?;
        }
    }
    copy_file(
        &backup_dir.join(KEY_FILE),
        &data_dir.join(KEY_FILE),
        None,
        0o600,
    )?;
    // The database last: until it is there, the directory is not a store.
    copy_file(
        &backup_dir.join(DB_FILE),
        &data_dir.join(DB_FILE),
        None,
        0o644,
    )?;
    check(data_dir)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            copy_file(&entry.path(), &dest, None, 0o644)?;
        }
    }
    Ok(())
}

/// The files under `blobs_dir` that are not among `named`: blob files no step names.
pub(super) fn unnamed_blob_files(
    blobs_dir: &Path,
    named: Vec<String>,
) -> Result<Vec<(String, PathBuf)>> {
    let named: std::collections::HashSet<String> = named.into_iter().collect();
    let mut files = Vec::new();
    blob_files(blobs_dir, &mut files)?;
    files.retain(|(id, _)| !named.contains(id));
    Ok(files)
}

fn blob_files(dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for prefix in fs::read_dir(dir)? {
        let prefix = prefix?;
        if !prefix.file_type()?.is_dir() {
            continue;
        }
        let p = prefix.file_name().to_string_lossy().to_string();
        for blob in fs::read_dir(prefix.path())? {
            let blob = blob?;
            let name = blob.file_name().to_string_lossy().to_string();
            out.push((format!("{p}{name}"), blob.path()));
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> Result<String> {
    let mut f = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        hasher.update(&buf[..k]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// Checks a store: SQLite's integrity check, every blob against its name, and every run
/// exported as a bundle and re-verified with core against the store's own public key
/// (roots from row hashes, diff summaries, the chain, the seal). An open run is not yet
/// sealed; that alone is not damage.
pub fn check(data_dir: &Path) -> Result<CheckReport> {
    require_store(data_dir)?;
    // No blob a redaction freed is removed while they are read.
    let _reading = super::lock_blob_readers(data_dir)?;
    let mut report = CheckReport::default();
    {
        let conn =
            Connection::open_with_flags(data_dir.join(DB_FILE), OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        match db::integrity_check(&conn) {
            Ok(lines) if lines == ["ok"] => {}
            Ok(lines) => report.damaged("database", lines.join("; ")),
            Err(e) => report.damaged("database", format!("cannot be read: {e}")),
        }
    }
    let mut files = Vec::new();
    blob_files(&data_dir.join("blobs"), &mut files)?;
    for (id, path) in &files {
        report.blobs += 1;
        match hash_file(path) {
            Ok(h) if &h == id => {}
            Ok(h) => report.damaged(
                format!("blob {id}"),
                format!("its bytes hash to {h}: the file was changed on disk"),
            ),
            Err(e) => report.damaged(format!("blob {id}"), format!("cannot be read: {e}")),
        }
    }
    if let Ok(conn) =
        Connection::open_with_flags(data_dir.join(DB_FILE), OpenFlags::SQLITE_OPEN_READ_ONLY)
        && let Ok(named) = db::blob_refs(&conn)
    {
        for (_, path) in unnamed_blob_files(&data_dir.join("blobs"), named)? {
            report.unnamed_blobs += 1;
            report.unnamed_bytes += fs::metadata(path).map_or(0, |m| m.len());
        }
    }
    if let Ok(conn) =
        Connection::open_with_flags(data_dir.join(DB_FILE), OpenFlags::SQLITE_OPEN_READ_ONLY)
        && let Ok(names) = db::carry_files(&conn)
    {
        for name in names {
            if !data_dir.join("carry").join(&name).is_file() {
                report.damaged(
                    format!("carry {name}"),
                    "an open run's head data is missing: its next step cannot be diffed; seal the run and start a new one",
                );
            }
        }
    }
    let store = match Store::open(data_dir) {
        Ok(s) => s,
        Err(e) => {
            report.damaged("database", format!("cannot be opened: {e:#}"));
            return Ok(report);
        }
    };
    // A run sealed before a key rotation is checked against the key it was sealed with, if
    // it is one of the store's keys, whose chain must hold.
    let keys = match store.read(db::keys) {
        Ok(keys) => keys,
        Err(e) => {
            report.damaged("database", format!("keys cannot be read: {}", e.detail));
            return Ok(report);
        }
    };
    let public_key = store.key().public_hex();
    check_keys(&keys, &public_key, &mut report);
    let runs = match store.read(db::run_statuses) {
        Ok(r) => r,
        Err(e) => {
            report.damaged("database", format!("runs cannot be listed: {}", e.detail));
            return Ok(report);
        }
    };
    for (run_id, status) in runs {
        report.runs += 1;
        // Written from the blobs, never a kept export: the blobs are what is checked.
        let bundle = match super::ingest::export_bundle(&store, &run_id, false) {
            Ok(e) => crate::file_at::FileAt::new(e.file),
            Err(e) => {
                report.damaged(format!("run {run_id}"), e.detail);
                continue;
            }
        };
        let seal = store
            .read(|c| db::get_run(c, &run_id))
            .ok()
            .flatten()
            .and_then(|r| r.seal);
        if let Some(seal) = &seal {
            check_seal_time(&run_id, seal, &keys, &mut report);
        }
        let sealed_by = seal
            .map(|s| s.public_key)
            .filter(|k| keys.iter().any(|known| known.public_key == *k));
        let verdict = verify_stream(
            bundle,
            Some(sealed_by.as_ref().unwrap_or(&public_key)),
            None,
        );
        report.steps += verdict
            .checks
            .iter()
            .filter_map(|c| c.step.as_ref())
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64;
        for c in verdict.checks.iter().filter(|c| !c.passed) {
            if status == "open" && c.name == "seal" {
                continue;
            }
            let place = match &c.step {
                Some(step) => format!("run {run_id} step {step}"),
                None => format!("run {run_id}"),
            };
            report.damaged(place, format!("{}: {}", c.name, c.detail));
        }
    }
    check_log(&store, &mut report);
    Ok(report)
}

/// The store's keys as a chain, in the order they were made (`keys` is newest first): each
/// after the first handed over to by the one before it (or made without a hand-over when
/// that one was lost, `key rotate --lost`), and one key in use, the one in `signing.key`. A key listed out of that chain (added to the table, or handed over to from
/// elsewhere) is damage: its seals would verify against the keys the server lists.
fn check_keys(keys: &[pipeproof_core::api::PublicKey], in_use: &str, report: &mut CheckReport) {
    let chain: Vec<_> = keys.iter().rev().collect();
    let unretired: Vec<&str> = (keys.iter())
        .filter(|k| k.retired_at.is_none())
        .map(|k| k.public_key.as_str())
        .collect();
    if unretired != [in_use] {
        report.damaged(
            "keys",
            format!(
                "the keys in use are [{}], where signing.key holds {in_use}: one key signs at a \
                 time (a store of an earlier build may list keys made anew beside a lost key \
                 file; starting the server retires them)",
                unretired.join(", ")
            ),
        );
    }
    for (i, k) in chain.iter().enumerate() {
        let place = format!("key {}", k.public_key);
        if let Some(h) = &k.handover {
            let before = i.checked_sub(1).map(|b| chain[b].public_key.as_str());
            let problem = match pipeproof_core::sign::verify_handover(h) {
                Err(e) => Some(format!("its hand-over: {e}")),
                Ok(()) if !h.to.eq_ignore_ascii_case(&k.public_key) => {
                    Some(format!("its hand-over is to another key, {}", h.to))
                }
                Ok(()) if before.is_none_or(|b| !h.from.eq_ignore_ascii_case(b)) => Some(format!(
                    "it is handed over to by key {}, not by the key made before it ({})",
                    h.from,
                    before.unwrap_or("none")
                )),
                Ok(()) => None,
            };
            if let Some(problem) = problem {
                report.damaged(&place, problem);
            }
        }
    }
}

/// A seal dated outside its key's lifetime: before the store recorded the key, or after the
/// key was rotated away. The server signs with one key at a time, so such a seal was made
/// with a copy of the key (stolen, or a restored key file), the database was changed, or the
/// clock went back.
fn check_seal_time(
    run_id: &str,
    seal: &pipeproof_core::sign::Seal,
    keys: &[pipeproof_core::api::PublicKey],
    report: &mut CheckReport,
) {
    let Some(key) = keys.iter().find(|k| k.public_key == seal.public_key) else {
        return; // Not one of the store's keys: the seal check reports it.
    };
    let place = format!("run {run_id}");
    let Some(sealed) = super::instant(&seal.sealed_at) else {
        report.damaged(
            place,
            format!("seal: its time {:?} is no RFC 3339 time", seal.sealed_at),
        );
        return;
    };
    let short = &key.public_key[..16.min(key.public_key.len())];
    if super::instant(&key.created_at).is_some_and(|made| sealed < made) {
        report.damaged(
            place,
            format!(
                "seal: dated {}, before its key {short}… was made ({}): the seal or the keys \
                 were changed, or the machine's clock went back",
                seal.sealed_at, key.created_at
            ),
        );
    } else if let Some(retired) = &key.retired_at
        && super::instant(retired).is_some_and(|retired| sealed > retired)
    {
        report.damaged(
            place,
            format!(
                "seal: dated {}, after its key {short}… was rotated away ({retired}), which \
                 signs nothing since: the seal was made with a copy of the key, or the seal or \
                 the keys were changed, or the machine's clock went back",
                seal.sealed_at
            ),
        );
    }
}

/// The log of seals against the runs: entries numbered 0, 1, 2... with no gap, each the
/// leaf of its run's stored seal, and every run that ended in it.
fn check_log(store: &Store, report: &mut CheckReport) {
    let read = store.read(|c| Ok((db::log_with_seals(c)?, db::unlogged_seals(c)?)));
    let (entries, unlogged) = match read {
        Ok(r) => r,
        Err(e) => {
            report.damaged("log", format!("cannot be read: {}", e.detail));
            return;
        }
    };
    for (at, e) in entries.iter().enumerate() {
        let place = format!("log entry {} (run {})", e.index, e.run_id);
        if e.index != at as u64 {
            report.damaged(place, format!("entry {at} is missing: the log has a gap"));
            return;
        }
        let seal: Option<pipeproof_core::sign::Seal> =
            e.seal.as_deref().and_then(|s| serde_json::from_str(s).ok());
        match seal {
            None => report.damaged(place, "its run has no seal: the run or the log was changed"),
            Some(s) if pipeproof_core::log::leaf_of(&s) != e.leaf => report.damaged(
                place,
                "it is not the leaf of the run's seal: the seal or the log was changed",
            ),
            Some(_) => {}
        }
    }
    for run_id in unlogged {
        report.damaged(
            format!("run {run_id}"),
            "it ended, but its seal is not in the log",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeproof_core::api::{PublicKey, RedactRun};
    use pipeproof_core::sign::KeyPair;

    fn key(k: &KeyPair, retired: Option<&str>, from: Option<&KeyPair>) -> PublicKey {
        PublicKey {
            algorithm: "ed25519".into(),
            public_key: k.public_hex(),
            created_at: "2026-01-01T00:00:00Z".into(),
            retired_at: retired.map(String::from),
            handover: from.map(|f| f.hand_over(k, "2026-02-01T00:00:00Z")),
        }
    }

    /// The damage `check_keys` reports of keys listed oldest first.
    fn damage(oldest_first: &[PublicKey], in_use: &KeyPair) -> Vec<String> {
        let newest_first: Vec<PublicKey> = oldest_first.iter().rev().cloned().collect();
        let mut report = CheckReport::default();
        check_keys(&newest_first, &in_use.public_hex(), &mut report);
        report.damage.into_iter().map(|d| d.detail).collect()
    }

    #[test]
    fn a_backup_during_a_rotation_holds_the_key_its_database_names() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Store::open(&data).unwrap();
        // A rotation recorded, its key not yet renamed into place.
        let next = KeyPair::from_bytes(&[6; 32]);
        let handover = store.key().hand_over(&next, &super::super::now());
        super::super::write_key(&data.join(NEXT_KEY_FILE), &next).unwrap();
        store
            .write(|c| {
                db::retire_key(c, &handover.from, &handover.at)?;
                db::insert_key(c, &handover.to, &handover.at, Some(&handover))
            })
            .unwrap();
        drop(store);
        backup(&data, &dir.path().join("bk")).unwrap();
        let kept = super::super::read_key(&dir.path().join("bk").join(KEY_FILE)).unwrap();
        assert_eq!(kept.public_hex(), next.public_hex());
        let report = restore(&dir.path().join("bk"), &dir.path().join("restored")).unwrap();
        assert!(report.damage.is_empty(), "{:?}", report.damage);
        // Neither file holding the key the database names: taken again, not half.
        std::fs::remove_file(data.join(NEXT_KEY_FILE)).unwrap();
        let e = format!("{:#}", backup(&data, &dir.path().join("bk2")).unwrap_err());
        assert!(e.contains("changed while it was backed up"), "{e}");
    }

    /// Blob files in a data directory that its database does not name.
    fn unnamed_blobs(dir: &Path) -> Vec<String> {
        let named = db::blob_refs(&db::open(&dir.join(DB_FILE)).unwrap()).unwrap();
        (unnamed_blob_files(&dir.join("blobs"), named)
            .unwrap()
            .into_iter())
        .map(|(id, _)| id)
        .collect()
    }

    /// A store holding the demo run (sealed, five steps), and a redaction of all of it.
    fn demo_store() -> (tempfile::TempDir, PathBuf, Store, String, RedactRun) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Store::open(&data).unwrap();
        let run = crate::demo::load_if_empty(&store).unwrap().unwrap();
        let redact = RedactRun {
            reason: "erasure request 7".into(),
            steps: None,
            statistics: false,
        };
        (dir, data, store, run, redact)
    }

    #[test]
    fn a_redaction_during_a_backup_removes_nothing_the_backup_reads() {
        let (dir, data, store, run, redact) = demo_store();
        let mut copies = 0;
        backup_with(&data, &dir.path().join("bk"), || {
            copies += 1;
            let done = super::super::redact::redact_run(&store, &run, &redact).unwrap();
            assert_eq!((done.blobs_removed, done.blobs_pending > 0), (0, true));
        })
        .unwrap();
        assert_eq!(copies, 1);
        // The backup is of the store before the redaction, whole.
        let restored = restore(&dir.path().join("bk"), &dir.path().join("restored")).unwrap();
        assert!(restored.damage.is_empty(), "{:?}", restored.damage);
        // The live store removes the freed files at the next redaction (or start).
        let pending = store.read(db::pending_removals).unwrap();
        assert!(!pending.is_empty());
        assert!(pending.iter().all(|id| store.blobs.path(id).exists()));
        assert_eq!(check(&data).unwrap().unnamed_blobs, pending.len() as u64);
        let again = super::super::redact::redact_run(&store, &run, &redact).unwrap();
        assert_eq!(again.blobs_removed, pending.len() as u64);
        assert_eq!(again.blobs_pending, 0);
        assert!(pending.iter().all(|id| !store.blobs.path(id).exists()));
        assert!(unnamed_blobs(&data).is_empty());
        let report = check(&data).unwrap();
        assert_eq!((report.unnamed_blobs, report.damage.len()), (0, 0));
    }

    #[test]
    fn a_backup_copies_the_database_again_when_a_blob_it_named_was_removed() {
        let (dir, data, store, run, redact) = demo_store();
        // A server of an earlier build removes freed blobs without waiting for readers: here
        // the last one in the order blobs are copied, so that the others are copied first.
        let mut copies = 0;
        let report = backup_with(&data, &dir.path().join("bk"), || {
            copies += 1;
            if copies == 1 {
                super::super::redact::redact_run(&store, &run, &redact).unwrap();
                let named = db::blob_refs(&db::open(&data.join(DB_FILE)).unwrap()).unwrap();
                let pending = store.read(db::pending_removals).unwrap();
                let last = pending.iter().max().unwrap();
                assert!(pending.len() > 1 && !named.contains(last));
                store.blobs.remove(last).unwrap();
            }
        })
        .unwrap();
        assert_eq!(copies, 2, "the database is copied again");
        assert_eq!(report.runs, 1);
        let bk = dir.path().join("bk");
        assert_eq!(
            unnamed_blobs(&bk),
            Vec::<String>::new(),
            "no blob the copy does not name"
        );
        let restored = dir.path().join("restored");
        let check = restore(&bk, &restored).unwrap();
        assert!(check.damage.is_empty(), "{:?}", check.damage);
        let steps = Store::open(&restored)
            .unwrap()
            .read(|c| db::list_steps(c, &run))
            .unwrap();
        assert!(steps[1..].iter().all(|s| s.step.redacted.is_some()));

        // A blob missing with no redaction to explain it: the store is damaged.
        let id = store.read(|c| db::list_steps(c, &run)).unwrap()[2]
            .rows_blob
            .clone();
        std::fs::remove_file(store.blobs.path(&id)).unwrap();
        let e = backup(&data, &dir.path().join("bk2")).unwrap_err();
        assert!(
            format!("{e:#}").contains(&format!("blob {id}, which the store names, is missing")),
            "{e:#}"
        );
    }

    #[test]
    fn a_seal_dated_outside_its_keys_lifetime_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = Store::open(&data).unwrap();
        let run = super::super::ingest::create_run(
            &store,
            pipeproof_core::api::CreateRun {
                pipeline: "p".into(),
                labels: Default::default(),
                code_version: None,
                params: serde_json::Value::Null,
            },
        )
        .unwrap();
        let sealed = super::super::ingest::finish_run(
            &store,
            &run.id,
            pipeproof_core::api::RunStatus::Sealed,
            None,
        )
        .unwrap();
        let public = store.key().public_hex();
        drop(store);
        let damage = |data: &Path| {
            let report = check(data).unwrap();
            (report.damage.into_iter())
                .map(|d| format!("{}: {}", d.place, d.detail))
                .collect::<Vec<_>>()
        };
        assert_eq!(damage(&data), Vec::<String>::new());
        // The key's record moved past the seal.
        let conn = rusqlite::Connection::open(data.join(DB_FILE)).unwrap();
        conn.execute(
            "UPDATE keys SET created_at = '2999-01-01T00:00:00.000Z' WHERE public_key = ?1",
            [&public],
        )
        .unwrap();
        let d = damage(&data);
        let sealed_at = sealed.sealed_at.clone().unwrap();
        assert_eq!(
            d,
            [format!(
                "run {}: seal: dated {sealed_at}, before its key {}… was made \
                 (2999-01-01T00:00:00.000Z): the seal or the keys were changed, or the \
                 machine's clock went back",
                run.id,
                &public[..16]
            )]
        );

        // Against the key's retirement, to the millisecond, and a time that is none.
        let seal = pipeproof_core::sign::Seal {
            sealed_at: "2026-02-01T00:00:00.001Z".into(),
            ..db::get_run(&conn, &run.id).unwrap().unwrap().seal.unwrap()
        };
        let mut keys = db::keys(&conn).unwrap();
        keys[0].created_at = "2026-01-01T00:00:00Z".into();
        let found = |seal: &pipeproof_core::sign::Seal, keys: &[PublicKey]| {
            let mut report = CheckReport::default();
            check_seal_time("r", seal, keys, &mut report);
            report
                .damage
                .into_iter()
                .map(|d| d.detail)
                .collect::<Vec<_>>()
        };
        keys[0].retired_at = Some("2026-02-01T01:00:00.001+01:00".into());
        assert_eq!(
            found(&seal, &keys),
            Vec::<String>::new(),
            "the same instant"
        );
        keys[0].retired_at = Some("2026-02-01T00:00:00Z".into());
        let d = found(&seal, &keys);
        assert!(d.len() == 1 && d[0].contains("after its key"), "{d:?}");
        let mut other = seal.clone();
        other.public_key = KeyPair::from_bytes(&[9; 32]).public_hex();
        assert_eq!(
            found(&other, &keys),
            Vec::<String>::new(),
            "not this store's key"
        );
        other = seal.clone();
        other.sealed_at = "yesterday".into();
        assert_eq!(
            found(&other, &keys),
            ["seal: its time \"yesterday\" is no RFC 3339 time"]
        );
    }

    #[test]
    fn the_keys_must_form_one_chain_ending_in_the_key_in_use() {
        let [a, b, c, x] = [1u8, 2, 3, 9].map(|i| KeyPair::from_bytes(&[i; 32]));
        let at = Some("2026-02-01T00:00:00Z");
        let sound = [
            key(&a, at, None),
            key(&b, at, Some(&a)),
            key(&c, None, Some(&b)),
        ];
        assert_eq!(damage(&sound, &c), Vec::<String>::new());
        // A key lost and replaced without a hand-over is a link of the chain too.
        let lost = [key(&a, at, None), key(&b, None, None)];
        assert_eq!(damage(&lost, &b), Vec::<String>::new());
        // A key slipped in beside the one in use; a hand-over from a stranger; a fork.
        let added = [key(&a, None, None), key(&x, None, None)];
        let d = damage(&added, &x);
        assert!(
            d[0].contains(&format!(
                "keys in use are [{}, {}]",
                x.public_hex(),
                a.public_hex()
            )),
            "{d:?}"
        );
        let stranger = [key(&a, at, None), key(&b, None, Some(&x))];
        assert!(damage(&stranger, &b)[0].contains("not by the key made before it"));
        let fork = [
            key(&a, at, None),
            key(&b, at, Some(&a)),
            key(&x, None, Some(&a)),
        ];
        assert!(damage(&fork, &x)[0].contains("not by the key made before it"));
        // No key in use, or another than the key file's.
        assert!(damage(&sound[..2], &b)[0].contains("keys in use are []"));
        let d = damage(&sound, &x);
        assert!(
            d[0].contains(&format!(
                "[{}], where signing.key holds {}",
                c.public_hex(),
                x.public_hex()
            )),
            "{d:?}"
        );
        // An older key back in use, the newer one retired (an earlier build's key file made
        // anew, then the old file put back): one key in use, sound.
        let back = [key(&a, None, None), key(&b, at, None)];
        assert_eq!(damage(&back, &a), Vec::<String>::new());
        // A hand-over whose signature does not hold.
        let mut broken = sound.clone();
        broken[1].handover.as_mut().unwrap().at = "2026-03-01T00:00:00Z".into();
        assert!(damage(&broken, &c)[0].contains("its hand-over"));
    }
}
