//! [`FileSource`]: a table in a file, read batch by batch and reopened on every scan, so a
//! diff of files larger than memory streams. The format comes from the extension, else from
//! the file's first bytes.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use arrow_schema::SchemaRef;
use pipeproof_core::decode::{
    arrow_file_rows, parquet_batches, read_arrow_file_text_as_bytes, read_batches, read_csv,
};
use pipeproof_core::table::BatchIter;
use pipeproof_core::{BatchSource, Format};

/// A Parquet, Arrow IPC or CSV file.
pub struct FileSource {
    path: PathBuf,
    format: Format,
    schema: SchemaRef,
    rows: Option<u64>,
}

impl FileSource {
    /// Opens a file and reads its schema. `format` overrides detection.
    pub fn open(path: &Path, format: Option<Format>) -> Result<FileSource> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
        if meta.is_dir() {
            bail!(
                "{} is a directory; name a Parquet, CSV or Arrow file",
                path.display()
            );
        }
        let by_name = format.is_none();
        let format = match format {
            Some(f) => f,
            None => detect(path)?,
        };
        let (schema, _) = open_batches(path, format).with_context(|| {
            // A file named as one format that starts as another (a Parquet file called
            // .csv) is read as its name says, and fails for a reason its content explains.
            let head = sniff(path).filter(|&s| by_name && s != format && s != Format::Csv);
            match head {
                Some(s) => format!(
                    "{}: its name says {format}, but its first bytes are those of {}: rename \
                     it, or give its format with the command's format option (see --help)",
                    path.display(),
                    with_article(s)
                ),
                None => path.display().to_string(),
            }
        })?;
        let rows = match format {
            Format::Parquet => {
                let file = File::open(path)?;
                let meta = parquet::file::reader::SerializedFileReader::new(file).map(|r| {
                    parquet::file::reader::FileReader::metadata(&r)
                        .file_metadata()
                        .num_rows()
                });
                meta.ok().map(|n| n as u64)
            }
            Format::ArrowFile => File::open(path).ok().and_then(arrow_file_rows),
            _ => None,
        };
        Ok(FileSource {
            path: path.to_path_buf(),
            format,
            schema,
            rows,
        })
    }

    /// The file's format.
    pub fn format(&self) -> Format {
        self.format
    }
}

/// The format of a file: by extension, else by its first bytes.
pub fn detect(path: &Path) -> Result<Format> {
    if let Some(f) = Format::from_extension(&path.to_string_lossy()) {
        return Ok(f);
    }
    let mut head = [0u8; 8];
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let n = file
        .read(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Format::sniff(&head[..n]))
}

/// The format a file's first bytes say, if it can be read.
fn sniff(path: &Path) -> Option<Format> {
    let mut head = [0u8; 8];
    let n = File::open(path).ok()?.read(&mut head).ok()?;
    Some(Format::sniff(&head[..n]))
}

/// "a Parquet file", "an Arrow IPC file".
fn with_article(f: Format) -> String {
    match f {
        Format::Parquet => "a Parquet file".into(),
        other => format!("an {other}"),
    }
}

fn open_batches(path: &Path, format: Format) -> Result<(SchemaRef, BatchIter<'static>)> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(match format {
        Format::Parquet => parquet_batches(file)?,
        _ => read_batches(file, format)?,
    })
}

impl BatchSource for FileSource {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn scan(&self) -> pipeproof_core::Result<BatchIter<'_>> {
        let scanned = match self.format {
            // The columns' types were inferred when the file was opened: not again.
            Format::Csv => File::open(&self.path)
                .with_context(|| format!("cannot open {}", self.path.display()))
                .and_then(|file| Ok(read_csv(file, self.schema.clone())?)),
            format => open_batches(&self.path, format).map(|(_, batches)| batches),
        };
        scanned.map_err(|e| pipeproof_core::Error::Decode {
            format: self.format,
            message: format!("{}: {e:#}", self.path.display()),
        })
    }

    fn num_rows_hint(&self) -> Option<u64> {
        self.rows
    }

    fn scan_text_as_bytes(&self) -> pipeproof_core::Result<Option<BatchIter<'_>>> {
        if self.format != Format::ArrowFile {
            return Ok(None);
        }
        let file = File::open(&self.path).map_err(|e| pipeproof_core::Error::Decode {
            format: self.format,
            message: format!("cannot open {}: {e}", self.path.display()),
        })?;
        read_arrow_file_text_as_bytes(file).map(Some)
    }
}
