//! Content-addressed blobs: `blobs/ab/cdef...` named by the BLAKE3 hash of their bytes,
//! written to a temp file, fsynced, renamed into place and the directory fsynced, so a blob
//! that a committed row names is always complete.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The blob directory.
pub struct Blobs {
    dir: PathBuf,
    tmp: PathBuf,
}

/// Fsyncs a directory, so a rename or a new file in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot fsync {}", dir.display()))
}

/// A fresh random name (hex) for a temp file.
pub fn random_name() -> String {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).expect("the OS has a random source");
    hex::encode(b)
}

/// A writer that hashes what it writes.
struct Hashing<W> {
    file: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Blobs {
    /// The blobs under `dir`, staged through `tmp` (same file system).
    pub fn new(dir: PathBuf, tmp: PathBuf) -> Blobs {
        Blobs { dir, tmp }
    }

    /// Where a blob lives.
    pub fn path(&self, id: &str) -> PathBuf {
        let (a, b) = id.split_at(2.min(id.len()));
        self.dir.join(a).join(b)
    }

    /// Stores what `write` writes, durably, without holding it all in memory; returns its
    /// id (BLAKE3 hex). The bytes are hashed as they go to a temp file; if that blob is
    /// already there the file is dropped (no fsync: equal blobs, such as empty details, are
    /// common), else it is synced and renamed to the id.
    pub fn put_with(&self, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<String> {
        let tmp = self.tmp.join(format!("blob-{}", random_name()));
        let written = || -> Result<(File, String)> {
            let mut w = Hashing {
                file: std::io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?),
                hasher: blake3::Hasher::new(),
            };
            write(&mut w)?;
            let file = w.file.into_inner().map_err(|e| e.into_error())?;
            Ok((file, w.hasher.finalize().to_hex().to_string()))
        };
        let stored = written().and_then(|(file, id)| {
            let dest = self.path(&id);
            if dest.exists() {
                fs::remove_file(&tmp)?;
            } else {
                file.sync_all()?;
                self.install(&tmp, &dest)?;
            }
            Ok(id)
        });
        stored.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            e.context(format!("cannot store the blob {}", tmp.display()))
        })
    }

    /// Stores a file durably by hard link (or copy) without moving it; returns its id.
    pub fn put_file(&self, path: &Path) -> Result<String> {
        let mut hasher = blake3::Hasher::new();
        let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        f.sync_all()?;
        let id = hasher.finalize().to_hex().to_string();
        let dest = self.path(&id);
        if dest.exists() {
            return Ok(id);
        }
        let tmp = self.tmp.join(format!("blob-{}", random_name()));
        if fs::hard_link(path, &tmp).is_err() {
            fs::copy(path, &tmp).with_context(|| format!("cannot copy {}", path.display()))?;
            File::open(&tmp)?.sync_all()?;
        }
        self.install(&tmp, &dest)?;
        Ok(id)
    }

    fn install(&self, tmp: &Path, dest: &Path) -> Result<()> {
        let parent = dest.parent().expect("blob paths have a parent");
        fs::create_dir_all(parent)?;
        fs::rename(tmp, dest)
            .with_context(|| format!("cannot move a blob into {}", dest.display()))?;
        sync_dir(parent)?;
        sync_dir(&self.dir)?;
        Ok(())
    }

    /// Removes a blob's file (durably); returns its size, 0 when it was not there. The
    /// caller makes sure that no step names it and that none is being stored that could.
    pub fn remove(&self, id: &str) -> Result<u64> {
        let path = self.path(id);
        let size = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        sync_dir(path.parent().expect("blob paths have a parent"))?;
        Ok(size)
    }

    /// Reads a blob.
    pub fn get(&self, id: &str) -> Result<Vec<u8>> {
        let path = self.path(id);
        fs::read(&path).with_context(|| format!("blob {id} is missing from {}", path.display()))
    }

    /// Reads a blob, failing unless its bytes hash to its name.
    pub fn get_checked(&self, id: &str) -> Result<Vec<u8>> {
        let mut blob = self.open(id)?;
        let mut bytes = Vec::with_capacity(usize::try_from(blob.size()).unwrap_or(0));
        blob.read_to_end(&mut bytes)
            .with_context(|| format!("cannot read blob {id}"))?;
        blob.check()?;
        Ok(bytes)
    }

    /// Opens a blob to stream it; [`Checked::check`] then says whether what was read is
    /// what the blob's name promises.
    pub fn open(&self, id: &str) -> Result<Checked> {
        let path = self.path(id);
        let file = File::open(&path)
            .with_context(|| format!("blob {id} is missing from {}", path.display()))?;
        let len = file.metadata()?.len();
        Ok(Checked {
            file: std::io::BufReader::with_capacity(1 << 20, file),
            hasher: blake3::Hasher::new(),
            id: id.to_string(),
            len,
        })
    }
}

/// A blob being read, hashed as it is.
pub struct Checked {
    file: std::io::BufReader<File>,
    hasher: blake3::Hasher,
    id: String,
    len: u64,
}

impl Checked {
    /// The blob's size in bytes.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// Fails unless everything read (the whole blob) hashes to the blob's name.
    pub fn check(self) -> Result<()> {
        let hash = self.hasher.finalize().to_hex();
        anyhow::ensure!(
            hash.as_str() == self.id,
            "blob {} is damaged: its bytes hash to {hash}, not to its name",
            self.id
        );
        Ok(())
    }
}

impl Read for Checked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_named_by_content_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (b, t) = (dir.path().join("blobs"), dir.path().join("tmp"));
        fs::create_dir_all(&b).unwrap();
        fs::create_dir_all(&t).unwrap();
        let blobs = Blobs::new(b, t.clone());
        let put = |bytes: &'static [u8]| blobs.put_with(|w| Ok(w.write_all(bytes)?));
        let id = put(b"hello").unwrap();
        assert_eq!(id, blake3::hash(b"hello").to_hex().to_string());
        assert_eq!(put(b"hello").unwrap(), id);
        let failed = blobs.put_with(|w| {
            w.write_all(b"half")?;
            anyhow::bail!("the writer failed")
        });
        assert!(format!("{:#}", failed.unwrap_err()).contains("the writer failed"));
        assert_eq!(blobs.get(&id).unwrap(), b"hello");
        let file = t.join("input");
        fs::write(&file, b"hello").unwrap();
        assert_eq!(blobs.put_file(&file).unwrap(), id);
        assert!(file.exists(), "put_file keeps the original");
        assert_eq!(fs::read_dir(&t).unwrap().count(), 1, "no temp file left");
        assert!(blobs.get("00ff").is_err());
    }
}
