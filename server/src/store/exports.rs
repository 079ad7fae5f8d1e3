//! Exported bundles of ended runs, kept under `exports/` so that a run is written once, not
//! once per download (a resumed download asked for the whole bundle again), and the number
//! of bundles being written at once, each a temp file as large as its run, is bounded.
//!
//! A run that ended (sealed or failed) never changes, so neither does its bundle. Its file
//! is `exports/RUN.HASH.zip`, HASH being the BLAKE3 of its bytes: a kept bundle is hashed
//! again before it is served, and one that no longer matches its name (damaged on disk, cut
//! short by a crash) is dropped and written anew. The oldest kept bundles go first once
//! their total passes the cache's size. Open runs are written per request, as before.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use actix_web::http::StatusCode;

use crate::error::ApiError;

/// How many bundles may be written at once; a request past that is answered 503.
pub const MAX_WRITING: usize = 2;

/// The default size of the kept bundles, in bytes.
pub const DEFAULT_CACHE: u64 = 1 << 30;

/// The kept bundles, and the count of bundles being written.
pub struct Exports {
    dir: PathBuf,
    cache: u64,
    writing: Mutex<usize>,
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
        })
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

    /// The kept bundle of an ended run, opened at its start, when one matches its name.
    pub fn kept(&self, run_id: &str) -> Option<(File, PathBuf)> {
        for path in self.files_of(run_id) {
            let name = path.file_name()?.to_str()?;
            let hash = name
                .strip_prefix(run_id)?
                .strip_prefix('.')?
                .strip_suffix(".zip")?;
            let found = File::open(&path).and_then(|mut f| Ok((blake3_of(&mut f)?, f)));
            match found {
                Ok((h, f)) if h.to_hex().as_str() == hash => return Some((f, path)),
                Ok(_) => tracing::warn!(
                    file = %path.display(),
                    "a kept bundle no longer matches its hash; it is written again"
                ),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot read a kept bundle")
                }
            }
            let _ = fs::remove_file(&path);
        }
        None
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
    /// under its hash, unless it alone is larger than the cache. Returns the file, at its
    /// start, and where it is kept; `tmp` is gone either way.
    pub fn keep(
        &self,
        run_id: &str,
        mut file: File,
        tmp: &Path,
    ) -> std::io::Result<(File, Option<PathBuf>)> {
        let hash = blake3_of(&mut file)?;
        let len = file.metadata()?.len();
        if len > self.cache {
            fs::remove_file(tmp)?;
            return Ok((file, None));
        }
        for old in self.files_of(run_id) {
            let _ = fs::remove_file(old);
        }
        let path = self.dir.join(format!("{run_id}.{}.zip", hash.to_hex()));
        if let Err(e) = fs::rename(tmp, &path) {
            fs::remove_file(tmp)?;
            tracing::warn!(error = %e, "cannot keep an exported bundle");
            return Ok((file, None));
        }
        self.evict(Some(&path));
        Ok((file, Some(path)))
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
        let (_, kept) = e.keep("run-a", f, &tmp).unwrap();
        let kept = kept.expect("kept");
        assert!(!tmp.exists());
        assert_eq!(
            kept.file_name().unwrap().to_str().unwrap(),
            format!("run-a.{}.zip", blake3::hash(b"0123").to_hex())
        );
        assert!(e.kept("run-a").is_some());
        assert!(e.kept("run-b").is_none());
        // Two more: 4 + 4 + 4 bytes pass the 10 of the cache, so the first goes.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (f, tmp) = bundle(dir.path(), "b.tmp", b"4567");
        e.keep("run-b", f, &tmp).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (f, tmp) = bundle(dir.path(), "c.tmp", b"89ab");
        e.keep("run-c", f, &tmp).unwrap();
        assert!(e.kept("run-a").is_none());
        assert!(e.kept("run-b").is_some() && e.kept("run-c").is_some());
        // A kept bundle changed on disk is not served, and is dropped.
        let path = e.files_of("run-b").pop().unwrap();
        fs::write(&path, b"4568").unwrap();
        assert!(e.kept("run-b").is_none());
        assert!(!path.exists());
        // Larger than the cache: served, not kept.
        let (f, tmp) = bundle(dir.path(), "d.tmp", b"0123456789abcdef");
        let (_, kept) = e.keep("run-d", f, &tmp).unwrap();
        assert!(kept.is_none() && !tmp.exists());
        // No cache: nothing is kept.
        let mut e = e;
        e.set_cache(0);
        assert!(e.kept("run-c").is_none());
    }
}
