//! Exported bundles of ended runs, kept under `exports/` so that a run is written once, not
//! once per download (a resumed download asked for the whole bundle again), and the number
//! of bundles being written at once, each a temp file as large as its run, is bounded.
//!
//! A run that ended (sealed or failed) never changes, so neither does its bundle, as long as
//! what an export writes does not change: its file is `exports/RUN.FORMAT.HASH.zip`, FORMAT
//! being [`KEPT_FORMAT`] and the build's version (so kept ones of earlier releases, or of
//! builds that write a run's bundle otherwise, are written anew) and HASH the BLAKE3 of its
//! bytes. A kept bundle is hashed
//! again before this process first serves it (and when its size or time changed since), and
//! one that no longer matches its name (damaged on disk, cut short by a crash) is dropped and
//! written anew. One request at a time writes a run's bundle; the others wait for it and
//! serve the kept file. The oldest kept bundles go first once their total passes the cache's
//! size. Open runs are written per request.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use actix_web::http::StatusCode;

use crate::error::ApiError;

/// How many bundles may be written at once; a request past that is answered 503.
pub const MAX_WRITING: usize = 2;

/// The default size of the kept bundles, in bytes.
pub const DEFAULT_CACHE: u64 = 1 << 30;

/// The version of what an export writes for a run, in kept bundles' names with the
/// package's version: bump it when a change writes an ended run's bundle otherwise (as when
/// failed runs' manifests gained `error`) between releases, so that bundles kept by earlier
/// builds are not served. A new release's version does so by itself.
pub const KEPT_FORMAT: &str = "b1";

/// What kept bundles' names say of the build that wrote them.
fn kept_format() -> String {
    format!("{KEPT_FORMAT}-v{}", env!("CARGO_PKG_VERSION"))
}

/// The kept bundles, and the count of bundles being written.
pub struct Exports {
    dir: PathBuf,
    cache: u64,
    writing: Mutex<usize>,
    /// One lock per run whose bundle is being written or looked for.
    runs: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Kept files this process checked against their hash: their size and time then.
    checked: Mutex<HashMap<PathBuf, (u64, SystemTime)>>,
}

/// A place among the bundles being written, given back when dropped.
pub struct Writing<'a>(&'a Exports);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        *self.0.writing.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
    }
}

fn blake3_of(file: &mut File) -> std::io::Result<blake3::Hash> {
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(&mut *file)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(hasher.finalize())
}

impl Exports {
    /// The bundles kept in `dir` (made if missing), up to `cache` bytes in all.
    pub fn new(dir: PathBuf, cache: u64) -> std::io::Result<Exports> {
        fs::create_dir_all(&dir)?;
        Ok(Exports {
            dir,
            cache,
            writing: Mutex::new(0),
            runs: Mutex::new(HashMap::new()),
            checked: Mutex::new(HashMap::new()),
        })
    }

    /// The lock that lets one request at a time look for or write a run's bundle.
    pub fn run_lock(&self, run_id: &str) -> Arc<Mutex<()>> {
        let mut locks = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        Arc::clone(locks.entry(run_id.to_string()).or_default())
    }

    /// Sets how many bytes of bundles are kept (0: none); the excess goes at once.
    pub fn set_cache(&mut self, cache: u64) {
        self.cache = cache;
        self.evict(None);
    }

    /// The kept bundle files of a run (normally one).
    fn files_of(&self, run_id: &str) -> Vec<PathBuf> {
        let prefix = format!("{run_id}.");
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".zip"))
            })
            .collect()
    }

    /// Removes every kept bundle of a run (its content changed: a redaction). Takes
    /// [`Exports::run_lock`]'s lock from the caller, so that no export keeps one meanwhile.
    pub fn drop_kept(&self, run_id: &str) -> std::io::Result<()> {
        let files = self.files_of(run_id);
        for path in &files {
            self.forget(path);
            match fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        // Durably gone before the redaction commits: a kept bundle coming back after a
        // power loss would serve what was redacted.
        if !files.is_empty() {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    /// The kept bundle of an ended run, opened at its start, when one of this format
    /// matches its name (others are dropped).
    pub fn kept(&self, run_id: &str) -> Option<(File, PathBuf)> {
        let mut found = None;
        for path in self.files_of(run_id) {
            if found.is_none()
                && let Some(hash) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix(run_id)?.strip_prefix('.'))
                    .and_then(|n| n.strip_prefix(kept_format().as_str())?.strip_prefix('.'))
                    .and_then(|n| n.strip_suffix(".zip"))
            {
                match self.open_checked(&path, hash) {
                    Ok(Some(f)) => {
                        found = Some((f, path));
                        continue;
                    }
                    Ok(None) => tracing::warn!(
                        file = %path.display(),
                        "a kept bundle no longer matches its hash; it is written again"
                    ),
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "cannot read a kept bundle")
                    }
                }
            }
            self.forget(&path);
            let _ = fs::remove_file(&path);
        }
        found
    }

    /// A kept file opened at its start, when its bytes hash to `hash` (checked once per
    /// process while its size and time stay as they were).
    fn open_checked(&self, path: &Path, hash: &str) -> std::io::Result<Option<File>> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        let stamp = (meta.len(), meta.modified()?);
        let checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if checked.get(path) == Some(&stamp) {
            return Ok(Some(file));
        }
        drop(checked);
        if blake3_of(&mut file)?.to_hex().as_str() != hash {
            return Ok(None);
        }
        self.checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.to_path_buf(), stamp);
        Ok(Some(file))
    }

    fn forget(&self, path: &Path) {
        self.checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(path);
    }

    /// A place to write a bundle, or 503 while [`MAX_WRITING`] are being written.
    pub fn writing(&self) -> Result<Writing<'_>, ApiError> {
        let mut n = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        if *n >= MAX_WRITING {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "exports-busy",
                format!(
                    "{MAX_WRITING} bundles are being written; ask again in a few seconds \
                     (the bundles of ended runs are kept once written, and then served at once)"
                ),
            ));
        }
        *n += 1;
        Ok(Writing(self))
    }

    /// Keeps the bundle of an ended run just written to `tmp` (and open as `file`): moved
    /// under its hash, unless it alone is larger than the cache or cannot be kept (then it
    /// is served all the same). Returns the file, at its start, and where it is kept; `tmp`
    /// is gone either way.
    pub fn keep(&self, run_id: &str, mut file: File, tmp: &Path) -> (File, Option<PathBuf>) {
        let hashed = blake3_of(&mut file).and_then(|h| Ok((h, file.metadata()?)));
        let (hash, meta) = match hashed {
            Ok((h, m)) if m.len() <= self.cache => (h, m),
            outcome => {
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, "cannot keep an exported bundle");
                }
                let _ = fs::remove_file(tmp);
                let _ = file.seek(SeekFrom::Start(0));
                return (file, None);
            }
        };
        for old in self.files_of(run_id) {
            self.forget(&old);
            let _ = fs::remove_file(old);
        }
        let path = self
            .dir
            .join(format!("{run_id}.{}.{}.zip", kept_format(), hash.to_hex()));
        if let Err(e) = fs::rename(tmp, &path) {
            let _ = fs::remove_file(tmp);
            tracing::warn!(error = %e, "cannot keep an exported bundle");
            return (file, None);
        }
        if let Ok(modified) = meta.modified() {
            self.checked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(path.clone(), (meta.len(), modified));
        }
        self.evict(Some(&path));
        (file, Some(path))
    }

    /// Drops the oldest kept bundles (by modification time) but `keep` while they total
    /// more than the cache.
    fn evict(&self, keep: Option<&Path>) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= self.cache {
                break;
            }
            if Some(path.as_path()) == keep {
                continue;
            }
            if fs::remove_file(&path).is_ok() {
                self.forget(&path);
                total -= len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(dir: &Path, name: &str, bytes: &[u8]) -> (File, PathBuf) {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        (File::open(&path).unwrap(), path)
    }

    #[test]
    fn writing_is_bounded_and_places_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let e = Exports::new(dir.path().join("exports"), DEFAULT_CACHE).unwrap();
        let first = e.writing().unwrap();
        let _second = e.writing().unwrap();
        let busy = e.writing().err().expect("a third is refused");
        assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.kind, "exports-busy");
        drop(first);
        assert!(e.writing().is_ok());
    }

    #[test]
    fn kept_bundles_are_checked_against_their_hash_and_the_oldest_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let e = Exports::new(dir.path().join("exports"), 10).unwrap();
        let (f, tmp) = bundle(dir.path(), "a.tmp", b"0123");
        let (_, kept) = e.keep("run-a", f, &tmp);
        let kept = kept.expect("kept");
        assert!(!tmp.exists());
        assert_eq!(
            kept.file_name().unwrap().to_str().unwrap(),
            format!(
                "run-a.b1-v{}.{}.zip",
                env!("CARGO_PKG_VERSION"),
                blake3::hash(b"0123").to_hex()
            )
        );
        assert!(e.kept("run-a").is_some());
        assert!(e.kept("run-b").is_none());
        // Two more: 4 + 4 + 4 bytes pass the 10 of the cache, so the first goes.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (f, tmp) = bundle(dir.path(), "b.tmp", b"4567");
        e.keep("run-b", f, &tmp);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (f, tmp) = bundle(dir.path(), "c.tmp", b"89ab");
        e.keep("run-c", f, &tmp);
        assert!(e.kept("run-a").is_none());
        assert!(e.kept("run-b").is_some() && e.kept("run-c").is_some());
        // A kept bundle changed on disk (its time with it) is not served, and is dropped.
        let path = e.files_of("run-b").pop().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&path, b"4568").unwrap();
        assert!(e.kept("run-b").is_none());
        assert!(!path.exists());
        // One kept by a build that wrote bundles otherwise, or by another release (or
        // before names held the release), is not served either.
        let hash = blake3::hash(b"89ab").to_hex();
        for format in ["b0", "b1", "b1-v0.0.1"] {
            let stale = e.dir.join(format!("run-c.{format}.{hash}.zip"));
            fs::write(&stale, b"89ab").unwrap();
            assert!(e.kept("run-c").is_some());
            assert!(!stale.exists(), "{format}");
        }
        // Larger than the cache: served, not kept.
        let (f, tmp) = bundle(dir.path(), "d.tmp", b"0123456789abcdef");
        let (_, kept) = e.keep("run-d", f, &tmp);
        assert!(kept.is_none() && !tmp.exists());
        // No cache: nothing is kept.
        let mut e = e;
        e.set_cache(0);
        assert!(e.kept("run-c").is_none());
    }
}
