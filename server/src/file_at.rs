//! [`FileAt`]: a file read at a position of its own, so that one open file can be read at
//! several places at once (a bundle being verified is read member by member while its
//! canonical form is compared with it).

use std::fs::File;
use std::io::{Read, Result, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// A shared file and a position: clones read the same file, each from where it is.
#[derive(Clone)]
pub struct FileAt {
    file: Arc<File>,
    pos: u64,
}

impl FileAt {
    /// Reads `file` from its start.
    pub fn new(file: File) -> FileAt {
        FileAt {
            file: Arc::new(file),
            pos: 0,
        }
    }

    /// Opens the file at `path`.
    pub fn open(path: &Path) -> Result<FileAt> {
        Ok(FileAt::new(File::open(path)?))
    }
}

impl Read for FileAt {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for FileAt {
    fn seek(&mut self, to: SeekFrom) -> Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.file.metadata()?.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_read_from_positions_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut a = FileAt::open(&path).unwrap();
        let mut b = a.clone();
        let mut buf = [0u8; 3];
        a.seek(SeekFrom::Start(2)).unwrap();
        a.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"234");
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"012", "a clone keeps its own position");
        assert_eq!(b.seek(SeekFrom::End(-1)).unwrap(), 9);
        assert_eq!(a.seek(SeekFrom::Current(-5)).unwrap(), 0);
        assert!(a.seek(SeekFrom::Current(-1)).is_err());
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"9");
    }
}
