//! Decoding Arrow IPC (stream and file), Parquet and CSV into record batches. Bytes or a
//! caller-supplied reader in, batches out: core never opens a file itself.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::{Buffer, MutableBuffer};
use arrow_schema::{ArrowError, DataType, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;

use crate::error::{Error, Result};
use crate::table::{BatchIter, Table};

mod csv;
use csv::infer_csv_schema;
pub use csv::read_csv;

/// Rows per decoded batch. Large enough to amortise per-batch work, small enough that a
/// batch of a wide table stays a few MB.
pub const DEFAULT_BATCH_ROWS: usize = 64 * 1024;

/// An input format that core can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Arrow IPC streaming format (`application/vnd.apache.arrow.stream`).
    ArrowStream,
    /// Arrow IPC file format, also called Feather v2 (`application/vnd.apache.arrow.file`).
    ArrowFile,
    /// Apache Parquet (`application/vnd.apache.parquet`).
    Parquet,
    /// Comma-separated values with a header row (`text/csv`); types are inferred.
    Csv,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::ArrowStream => "Arrow IPC stream",
            Format::ArrowFile => "Arrow IPC file",
            Format::Parquet => "Parquet",
            Format::Csv => "CSV",
        })
    }
}

const PARQUET_MAGIC: &[u8] = b"PAR1";
const ARROW_FILE_MAGIC: &[u8] = b"ARROW1";
const ARROW_STREAM_CONTINUATION: &[u8] = &[0xFF, 0xFF, 0xFF, 0xFF];

impl Format {
    /// Guesses the format from the first bytes: Parquet and Arrow files carry magic numbers,
    /// an Arrow stream starts with its continuation marker; anything else is taken as CSV.
    pub fn sniff(head: &[u8]) -> Format {
        if head.starts_with(PARQUET_MAGIC) {
            Format::Parquet
        } else if head.starts_with(ARROW_FILE_MAGIC) {
            Format::ArrowFile
        } else if head.starts_with(ARROW_STREAM_CONTINUATION) {
            Format::ArrowStream
        } else {
            Format::Csv
        }
    }

    /// The format for a file name's extension, if it names one.
    pub fn from_extension(path: &str) -> Option<Format> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match ext.as_str() {
            "parquet" | "pq" => Format::Parquet,
            "arrow" | "feather" | "ipc" => Format::ArrowFile,
            "arrows" => Format::ArrowStream,
            "csv" => Format::Csv,
            _ => return None,
        })
    }

    /// The format for an HTTP media type (parameters such as `; charset=utf-8` are ignored).
    pub fn from_media_type(media_type: &str) -> Option<Format> {
        let essence = media_type.split(';').next()?.trim().to_ascii_lowercase();
        Some(match essence.as_str() {
            "application/vnd.apache.arrow.stream" => Format::ArrowStream,
            "application/vnd.apache.arrow.file" => Format::ArrowFile,
            "application/vnd.apache.parquet" | "application/x-parquet" => Format::Parquet,
            "text/csv" => Format::Csv,
            _ => return None,
        })
    }

    /// The media type to send this format with.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::ArrowStream => "application/vnd.apache.arrow.stream",
            Format::ArrowFile => "application/vnd.apache.arrow.file",
            Format::Parquet => "application/vnd.apache.parquet",
            Format::Csv => "text/csv",
        }
    }

    /// All media types accepted, for error messages.
    pub const MEDIA_TYPES: &'static str = "application/vnd.apache.arrow.stream, \
        application/vnd.apache.arrow.file, application/vnd.apache.parquet, text/csv";

    fn error(self, e: impl std::fmt::Display) -> Error {
        let mut message = e.to_string();
        // The arrow and parquet messages name a missing cargo feature; say what it means.
        if cfg!(target_arch = "wasm32") && message.to_lowercase().contains("zstd") {
            message = format!(
                "{message}: the file is compressed with zstd, which the browser cannot \
                 decompress; check it with the pipeproof command line, or write it with \
                 another compression (snappy, lz4) or none"
            );
        }
        Error::Decode {
            format: self,
            message,
        }
    }
}

/// Decodes a whole input held in memory into a [`Table`]. An Arrow IPC file is decoded in
/// place: its arrays are slices of `bytes` (copied only where a buffer is misaligned).
pub fn decode(bytes: Bytes, format: Format) -> Result<Table> {
    if format == Format::ArrowFile {
        return decode_arrow_file(Buffer::from(bytes));
    }
    let (schema, iter) = match format {
        Format::Parquet => parquet_batches(bytes)?,
        _ => read_batches(Cursor::new(bytes), format)?,
    };
    let batches = iter.collect::<Result<Vec<_>>>()?;
    Table::try_new(schema, batches)
}

/// [`decode`] of an Arrow IPC file held in an Arrow buffer, which its arrays then slice.
pub(crate) fn decode_arrow_file(buffer: Buffer) -> Result<Table> {
    let format = Format::ArrowFile;
    let (schema, batches) = guarded(format, || arrow_file(buffer).map_err(|e| format.error(e)))?;
    Table::try_new(schema, batches)
}

/// The schema and batches of an Arrow IPC file held in memory, read through its footer
/// without copying the record batches' bodies.
fn arrow_file(buffer: Buffer) -> std::result::Result<(SchemaRef, Vec<RecordBatch>), ArrowError> {
    let bytes = buffer.as_slice();
    let len = bytes.len();
    if !bytes.starts_with(ARROW_FILE_MAGIC) {
        return Err(not_arrow_file());
    }
    let tail: [u8; 10] = bytes
        .get(len.checked_sub(10).ok_or_else(truncated)?..)
        .and_then(|t| t.try_into().ok())
        .ok_or_else(truncated)?;
    let footer_len = arrow_ipc::reader::read_footer_length(tail)?;
    let footer_start = (len - 10).checked_sub(footer_len).ok_or_else(truncated)?;
    let mut layout = FileLayout::parse(&buffer[footer_start..len - 10], Text::Checked)?;
    let block_bytes = |block: &arrow_ipc::Block| -> std::result::Result<Buffer, ArrowError> {
        let (start, size) = block_range(block, footer_start as u64)?;
        Ok(buffer.slice_with_length(start as usize, size))
    };
    for block in &layout.dictionaries {
        layout
            .decoder
            .read_dictionary(block, &block_bytes(block)?)?;
    }
    let mut batches = Vec::new();
    for block in &layout.batches {
        if let Some(batch) = layout
            .decoder
            .read_record_batch(block, &block_bytes(block)?)?
        {
            batches.push(batch);
        }
    }
    Ok((layout.schema, batches))
}

fn truncated() -> ArrowError {
    ArrowError::ParseError("the file is truncated".into())
}

fn not_arrow_file() -> ArrowError {
    ArrowError::ParseError("no ARROW1 magic at the start: not an Arrow IPC file".into())
}

/// What an Arrow IPC file's footer says: the schema, and where the dictionaries and the
/// record batches are.
struct FileLayout {
    schema: SchemaRef,
    decoder: arrow_ipc::reader::FileDecoder,
    dictionaries: Vec<arrow_ipc::Block>,
    batches: Vec<arrow_ipc::Block>,
}

impl FileLayout {
    /// The layout in a file's footer; with `text` [`Text::AsBytes`], a decoder that reads
    /// the utf8 columns as binary ones.
    fn parse(footer: &[u8], text: Text) -> std::result::Result<FileLayout, ArrowError> {
        let footer = arrow_ipc::root_as_footer(footer)
            .map_err(|e| ArrowError::ParseError(format!("the footer is malformed: {e}")))?;
        let schema = Arc::new(arrow_ipc::convert::try_fb_to_schema(
            footer
                .schema()
                .ok_or_else(|| ArrowError::ParseError("the footer has no schema".into()))?,
        )?);
        let read_as = match text {
            Text::Checked => Arc::clone(&schema),
            Text::AsBytes => Arc::new(text_as_bytes(&schema).0),
        };
        Ok(FileLayout {
            decoder: arrow_ipc::reader::FileDecoder::new(read_as, footer.version()),
            schema,
            dictionaries: footer.dictionaries().iter().flatten().copied().collect(),
            batches: footer.recordBatches().iter().flatten().copied().collect(),
        })
    }
}

/// How an Arrow IPC file's utf8 columns are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    /// As text: checked to be UTF-8 as each batch is read (arrow's validation).
    Checked,
    /// As binary columns of the same bytes, not checked; see [`text_as_bytes`].
    AsBytes,
}

/// A schema with its utf8 columns (`Utf8`, `LargeUtf8`; not those in dictionaries) made
/// binary (`Binary`, `LargeBinary`), and which columns were made so. The two types lay out
/// their bytes alike, so a file's text columns can be read as binary ones: nothing checks
/// their bytes then, which a reader that goes over every byte anyway (the fingerprint, see
/// `canon::text_from_bytes`) can do in the same pass, at a fraction of the cost of a
/// separate one.
pub fn text_as_bytes(schema: &Schema) -> (Schema, Vec<bool>) {
    let mut made = Vec::with_capacity(schema.fields().len());
    let fields: Vec<arrow_schema::FieldRef> = schema
        .fields()
        .iter()
        .map(|f| {
            let bytes = match f.data_type() {
                DataType::Utf8 => Some(DataType::Binary),
                DataType::LargeUtf8 => Some(DataType::LargeBinary),
                _ => None,
            };
            made.push(bytes.is_some());
            match bytes {
                Some(t) => Arc::new(f.as_ref().clone().with_data_type(t)),
                None => Arc::clone(f),
            }
        })
        .collect();
    (
        Schema::new_with_metadata(fields, schema.metadata().clone()),
        made,
    )
}

/// The record batches of an Arrow IPC file with its utf8 columns read as binary ones and
/// not checked ([`text_as_bytes`]): for a reader that checks them as it goes. Malformed
/// input fails as with [`read_batches`], except for text that is not UTF-8.
pub fn read_arrow_file_text_as_bytes<R: Read + Seek + Send + 'static>(
    reader: R,
) -> Result<BatchIter<'static>> {
    let format = Format::ArrowFile;
    guarded(format, || {
        let r = ArrowFileBatches::try_new(reader, Text::AsBytes).map_err(|e| format.error(e))?;
        Ok(Guarded::batches(r, format))
    })
}

/// Where a block (a message's header and body) is in a file whose footer starts at
/// `footer_start`: its offset and size, checked to lie before the footer.
fn block_range(
    block: &arrow_ipc::Block,
    footer_start: u64,
) -> std::result::Result<(u64, usize), ArrowError> {
    let start = u64::try_from(block.offset()).map_err(|_| truncated())?;
    let size = (block.metaDataLength() as i64)
        .checked_add(block.bodyLength())
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(truncated)?;
    if start.checked_add(size).is_none_or(|end| end > footer_start) {
        return Err(truncated());
    }
    Ok((start, size as usize))
}

/// The record batches of an Arrow IPC file read from a reader, one block at a time. A
/// block is read into the memory of one read before when no batch holds that any more:
/// memory the process already has costs nothing to fill, where fresh pages must first be
/// zeroed by the kernel (for a file of many batches, more than the read itself).
struct ArrowFileBatches<R> {
    reader: R,
    layout: FileLayout,
    next: usize,
    footer_start: u64,
    /// The blocks read so far, the oldest first, up to [`ArrowFileBatches::KEPT`].
    read: std::collections::VecDeque<Buffer>,
}

impl<R: Read + Seek> ArrowFileBatches<R> {
    /// Blocks kept for reuse: a reader one batch ahead of its consumer holds two, so the
    /// oldest of the others is free by the time the next block is read.
    const KEPT: usize = 4;

    fn try_new(mut reader: R, text: Text) -> std::result::Result<ArrowFileBatches<R>, ArrowError> {
        let mut magic = [0u8; 6];
        reader.seek(SeekFrom::Start(0))?;
        reader
            .read_exact(&mut magic)
            .map_err(|_| not_arrow_file())?;
        if magic[..] != *ARROW_FILE_MAGIC {
            return Err(not_arrow_file());
        }
        let end = reader.seek(SeekFrom::End(0))?;
        let tail_start = end.checked_sub(10).ok_or_else(truncated)?;
        let mut tail = [0u8; 10];
        reader.seek(SeekFrom::Start(tail_start))?;
        reader.read_exact(&mut tail)?;
        let footer_len = arrow_ipc::reader::read_footer_length(tail)?;
        let footer_start = tail_start
            .checked_sub(footer_len as u64)
            .ok_or_else(truncated)?;
        let mut footer = vec![0u8; footer_len];
        reader.seek(SeekFrom::Start(footer_start))?;
        reader.read_exact(&mut footer)?;
        let layout = FileLayout::parse(&footer, text)?;
        let mut batches = ArrowFileBatches {
            reader,
            layout,
            next: 0,
            footer_start,
            read: Default::default(),
        };
        for i in 0..batches.layout.dictionaries.len() {
            let block = batches.layout.dictionaries[i];
            let bytes = batches.read_block(&block)?;
            batches.layout.decoder.read_dictionary(&block, &bytes)?;
        }
        Ok(batches)
    }

    /// Reads a block into memory no batch holds any more, else into fresh memory.
    fn read_block(&mut self, block: &arrow_ipc::Block) -> std::result::Result<Buffer, ArrowError> {
        let (start, size) = block_range(block, self.footer_start)?;
        let mut free = None;
        for _ in 0..self.read.len() {
            let buffer = self.read.pop_front().expect("counted");
            if free.is_some() {
                self.read.push_back(buffer);
                continue;
            }
            match buffer.into_mutable() {
                Ok(memory) => free = Some(memory),
                Err(held) => self.read.push_back(held),
            }
        }
        // Blocks differ a little in size: fresh memory has room for a slightly larger one,
        // so that the next block seldom needs more (which would mean fresh memory again).
        let mut memory = free.unwrap_or_else(|| MutableBuffer::with_capacity(size + size / 8));
        // Shrinking writes nothing; growing zeroes only the new bytes.
        memory
            .try_resize(size, 0)
            .map_err(|e| ArrowError::MemoryError(e.to_string()))?;
        self.reader.seek(SeekFrom::Start(start))?;
        self.reader.read_exact(memory.as_slice_mut())?;
        let buffer = Buffer::from(memory);
        if self.read.len() == Self::KEPT {
            self.read.pop_front();
        }
        self.read.push_back(buffer.clone());
        Ok(buffer)
    }

    fn next_batch(&mut self) -> std::result::Result<Option<RecordBatch>, ArrowError> {
        while let Some(&block) = self.layout.batches.get(self.next) {
            self.next += 1;
            let bytes = self.read_block(&block)?;
            if let Some(batch) = self.layout.decoder.read_record_batch(&block, &bytes)? {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }
}

impl<R: Read + Seek> Iterator for ArrowFileBatches<R> {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

/// Decodes with the format guessed by [`Format::sniff`].
pub fn decode_sniffed(bytes: Bytes) -> Result<(Format, Table)> {
    let format = Format::sniff(&bytes);
    Ok((format, decode(bytes, format)?))
}

/// Streams the batches of a Parquet input from anything Parquet can read chunks from
/// (`Bytes` in memory; a `std::fs::File` in the binary).
pub fn parquet_batches<R: ChunkReader + 'static>(
    reader: R,
) -> Result<(SchemaRef, BatchIter<'static>)> {
    let format = Format::Parquet;
    guarded(format, || {
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(reader).map_err(|e| format.error(e))?;
        let schema = Arc::clone(builder.schema());
        let reader = builder
            .with_batch_size(DEFAULT_BATCH_ROWS)
            .build()
            .map_err(|e| format.error(e))?;
        Ok((schema, Guarded::batches(reader, format)))
    })
}

/// The number of rows of an Arrow IPC file, read from its footer and its record batches'
/// headers without reading their bodies; `None` when these are not readable. A hint for
/// sizing buffers, not a checked count.
pub fn arrow_file_rows<R: Read + Seek>(mut reader: R) -> Option<u64> {
    let end = reader.seek(SeekFrom::End(0)).ok()?.checked_sub(10)?;
    let mut read_at = |offset: u64, len: usize| -> Option<Vec<u8>> {
        reader.seek(SeekFrom::Start(offset)).ok()?;
        let mut buf = vec![0; len];
        reader.read_exact(&mut buf).ok()?;
        Some(buf)
    };
    let tail: [u8; 10] = read_at(end, 10)?.try_into().ok()?;
    let footer_len = arrow_ipc::reader::read_footer_length(tail).ok()?;
    // Headers are small: a footer claiming more than this is not worth believing.
    if footer_len > 1 << 24 {
        return None;
    }
    let footer_bytes = read_at(end.checked_sub(footer_len as u64)?, footer_len)?;
    let footer = arrow_ipc::root_as_footer(&footer_bytes).ok()?;
    let mut rows = 0u64;
    for block in footer.recordBatches()?.iter() {
        let meta_len = usize::try_from(block.metaDataLength()).ok()?;
        if meta_len > 1 << 24 {
            return None;
        }
        let meta = read_at(u64::try_from(block.offset()).ok()?, meta_len)?;
        // The header is prefixed by 0xFFFFFFFF and its length, or (before Arrow 0.15) by
        // its length alone.
        let start = if meta.get(..4)? == [0xFF; 4] { 8 } else { 4 };
        let message = arrow_ipc::root_as_message(meta.get(start..)?).ok()?;
        rows += u64::try_from(message.header_as_record_batch()?.length()).ok()?;
    }
    Some(rows)
}

/// Streams the batches of an Arrow IPC or CSV input from a reader.
///
/// CSV types are inferred from the whole input (one extra pass, hence `Seek`): a
/// column whose values all parse as integers is Int64, as numbers Float64, as ISO dates
/// Date32, as ISO timestamps Timestamp (an offset is converted to UTC), `true`/`false`
/// Boolean, else Utf8. A numeric column holding a zero-padded value (`007`, `-0012.5`) is
/// Utf8: its text is an identifier's, and as a number `007` would be `7`. So is a column
/// holding a value its type cannot read (`2024-02-30` among dates). Empty fields are null.
/// The rules in full are section 13 of the fingerprint v1 spec.
pub fn read_batches<R: Read + Seek + Send + 'static>(
    mut reader: R,
    format: Format,
) -> Result<(SchemaRef, BatchIter<'static>)> {
    guarded(format, || match format {
        Format::ArrowStream => {
            let input = EndSeen::new(std::io::BufReader::new(reader));
            let ended = Arc::clone(&input.ended);
            let r = arrow_ipc::reader::StreamReader::try_new(input, None)
                .map_err(|e| format.error(e))?;
            let batches = MarkedEnd {
                batches: r,
                ended,
                done: false,
            };
            Ok((batches.batches.schema(), Guarded::batches(batches, format)))
        }
        Format::ArrowFile => {
            let r =
                ArrowFileBatches::try_new(reader, Text::Checked).map_err(|e| format.error(e))?;
            Ok((Arc::clone(&r.layout.schema), Guarded::batches(r, format)))
        }
        Format::Csv => {
            let schema = infer_csv_schema(&mut reader)?;
            Ok((Arc::clone(&schema), read_csv(reader, schema)?))
        }
        Format::Parquet => Err(Error::InvalidConfig(
            "Parquet needs random access: use parquet_batches".into(),
        )),
    })
}

/// Why an Arrow IPC stream that ends without its end-of-stream marker cannot be read.
const STREAM_WITHOUT_END: &str = "the Arrow IPC stream ends without its end-of-stream marker: \
    it is incomplete (cut short?); a writer writes the marker when it is closed";

/// A reader that notes when its reader is asked for bytes past its end.
struct EndSeen<R> {
    inner: R,
    ended: Arc<std::sync::atomic::AtomicBool>,
}

impl<R> EndSeen<R> {
    fn new(inner: R) -> EndSeen<R> {
        EndSeen {
            inner,
            ended: Default::default(),
        }
    }
}

impl<R: Read> Read for EndSeen<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ended.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// The batches of an Arrow IPC stream, ending in an error when the stream ends without its
/// end-of-stream marker. arrow's reader takes the end of its input before a message as the
/// end of the stream, as the IPC format allows: a stream cut short between two messages
/// would read as a table of fewer rows. Every writer writes the marker when it is closed
/// (pyarrow, arrow-rs's `StreamWriter::finish`, polars, DuckDB), and the reader reads no
/// byte past it: a stream whose reader asked for bytes past the end of its input ended
/// without one.
struct MarkedEnd<I> {
    batches: I,
    ended: Arc<std::sync::atomic::AtomicBool>,
    done: bool,
}

impl<I> Iterator for MarkedEnd<I>
where
    I: Iterator<Item = std::result::Result<RecordBatch, ArrowError>>,
{
    type Item = std::result::Result<RecordBatch, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.batches.next() {
            Some(batch) => Some(batch.map_err(|e| e.to_string())),
            None => {
                self.done = true;
                let ended = self.ended.load(std::sync::atomic::Ordering::Relaxed);
                ended.then(|| Err(STREAM_WITHOUT_END.to_owned()))
            }
        }
    }
}

std::thread_local! {
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is running a decoder under [`guarded`], where a panic becomes an
/// error: a panic hook can keep quiet about it then.
pub fn panic_is_an_error() -> bool {
    GUARDED.with(std::cell::Cell::get)
}

/// Runs a decoder on bytes that may be malformed. arrow and parquet panic on some malformed
/// inputs (an offset past the end of a buffer, say) where they should fail: such a panic
/// becomes a decode error naming what the decoder tripped on. (Where panics abort, as in
/// the browser's WebAssembly build, there is nothing to catch.)
fn guarded<T>(format: Format, decode: impl FnOnce() -> Result<T>) -> Result<T> {
    let outer = GUARDED.with(|g| g.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode));
    GUARDED.with(|g| g.set(outer));
    result.unwrap_or_else(|panic| {
        Err(format.error(format!(
            "the input is malformed: {}",
            crate::error::panic_message(panic.as_ref())
        )))
    })
}

/// Batches decoded under [`guarded`], ending at the first error.
struct Guarded<I> {
    batches: Option<I>,
    format: Format,
}

impl<I, E> Guarded<I>
where
    I: Iterator<Item = std::result::Result<RecordBatch, E>> + Send + 'static,
    E: std::fmt::Display,
{
    fn batches(batches: I, format: Format) -> BatchIter<'static> {
        Box::new(Guarded {
            batches: Some(batches),
            format,
        })
    }
}

impl<I, E> Iterator for Guarded<I>
where
    I: Iterator<Item = std::result::Result<RecordBatch, E>>,
    E: std::fmt::Display,
{
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let batches = self.batches.as_mut()?;
        let format = self.format;
        let next = guarded(format, || {
            batches.next().transpose().map_err(|e| format.error(e))
        });
        if !matches!(next, Ok(Some(_))) {
            // A decoder that failed (or panicked) is not asked again.
            self.batches = None;
        }
        next.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Vec<u8> {
        let batch = RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(arrow_array::Int64Array::from(vec![1, 2, 3])) as arrow_array::ArrayRef,
            ),
            (
                "name",
                Arc::new(arrow_array::StringArray::from(vec![
                    Some("a"),
                    None,
                    Some("ccc"),
                ])),
            ),
        ])
        .unwrap();
        crate::bundle::batch_to_ipc(&batch).unwrap()
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn an_arrow_file_decodes_in_place_like_the_reader() {
        let bytes = file();
        let t = decode(Bytes::from(bytes.clone()), Format::ArrowFile).unwrap();
        let r = arrow_ipc::reader::FileReader::try_new(Cursor::new(bytes), None).unwrap();
        let want: Vec<RecordBatch> = r.map(|b| b.unwrap()).collect();
        assert_eq!(t.batches(), &want[..]);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_truncated_arrow_file_is_an_error() {
        let bytes = file();
        for n in 0..bytes.len() {
            let got = decode(Bytes::copy_from_slice(&bytes[..n]), Format::ArrowFile);
            assert!(got.is_err(), "{n} of {} bytes decoded", bytes.len());
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn an_arrow_file_tells_its_rows_from_headers() {
        let column = |n: i64| -> RecordBatch {
            let a = arrow_array::Int64Array::from_iter_values(0..n);
            RecordBatch::try_from_iter([("id", Arc::new(a) as arrow_array::ArrayRef)]).unwrap()
        };
        let mut bytes = Vec::new();
        let schema = column(0).schema();
        let mut w = arrow_ipc::writer::FileWriter::try_new(&mut bytes, &schema).unwrap();
        for n in [3, 0, 1_000, 7] {
            w.write(&column(n)).unwrap();
        }
        w.finish().unwrap();
        drop(w);
        assert_eq!(arrow_file_rows(Cursor::new(&bytes)), Some(1_010));
        // Not a file (a stream, cut short, or nothing): no hint, and no panic.
        let mut stream = Vec::new();
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut stream, &schema).unwrap();
        w.write(&column(3)).unwrap();
        w.finish().unwrap();
        drop(w);
        assert_eq!(arrow_file_rows(Cursor::new(&stream)), None);
        for n in [0, 5, bytes.len() / 2, bytes.len() - 1] {
            let _ = arrow_file_rows(Cursor::new(&bytes[..n]));
        }
    }

    /// A file of batches of these sizes: ids, names and a dictionary column.
    fn batches_file(sizes: &[i64]) -> (Vec<u8>, Vec<RecordBatch>) {
        let batch = |n: i64| -> RecordBatch {
            let ids = arrow_array::Int64Array::from_iter_values(0..n);
            let names = arrow_array::StringArray::from_iter_values((0..n).map(|i| format!("n{i}")));
            // One dictionary for every batch, as the file format requires.
            let keys = arrow_array::Int32Array::from_iter_values((0..n).map(|i| (i % 3) as i32));
            let values = Arc::new(arrow_array::StringArray::from(vec!["a", "b", "c"]));
            let kinds = arrow_array::DictionaryArray::try_new(keys, values).unwrap();
            RecordBatch::try_from_iter([
                ("id", Arc::new(ids) as arrow_array::ArrayRef),
                ("name", Arc::new(names)),
                ("kind", Arc::new(kinds)),
            ])
            .unwrap()
        };
        let batches: Vec<RecordBatch> = sizes.iter().map(|&n| batch(n)).collect();
        (ipc(Format::ArrowFile, &batches), batches)
    }

    /// Batches written as an Arrow IPC file or stream.
    fn ipc(format: Format, batches: &[RecordBatch]) -> Vec<u8> {
        use arrow_array::RecordBatchWriter;
        fn write_all(mut w: impl RecordBatchWriter, batches: &[RecordBatch]) {
            for b in batches {
                w.write(b).unwrap();
            }
            w.close().unwrap();
        }
        let (mut bytes, schema) = (Vec::new(), batches[0].schema());
        match format {
            Format::ArrowFile => write_all(
                arrow_ipc::writer::FileWriter::try_new(&mut bytes, &schema).unwrap(),
                batches,
            ),
            _ => write_all(
                arrow_ipc::writer::StreamWriter::try_new(&mut bytes, &schema).unwrap(),
                batches,
            ),
        }
        bytes
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn an_arrow_file_read_block_by_block_reuses_dropped_batches_memory() {
        let (bytes, want) = batches_file(&[5_000, 1_000, 1_000, 10, 3]);
        let (schema, batches) = read_batches(Cursor::new(bytes), Format::ArrowFile).unwrap();
        assert_eq!(schema, want[0].schema());
        let ids = |b: &RecordBatch| b.column(0).to_data().buffers()[0].as_ptr();
        let (mut reused, mut previous) = (0, None);
        for (got, want) in batches.zip(&want) {
            let got = got.unwrap();
            assert_eq!(&got, want);
            reused += usize::from(previous == Some(ids(&got)));
            previous = Some(ids(&got));
            // `got` is dropped here: the next block, no larger, is read into its memory.
        }
        assert_eq!(
            reused,
            want.len() - 1,
            "every block after the first reuses memory"
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn an_arrow_file_read_block_by_block_reads_every_batch_whole() {
        // Larger blocks after smaller ones and an empty one: memory grows where it must.
        let (bytes, want) = batches_file(&[1_000, 10, 0, 5_000, 1_000, 3]);
        let (_, batches) = read_batches(Cursor::new(bytes.clone()), Format::ArrowFile).unwrap();
        for (got, want) in batches.zip(&want) {
            assert_eq!(&got.unwrap(), want);
        }
        // Batches that are kept are not overwritten.
        let (_, batches) = read_batches(Cursor::new(bytes.clone()), Format::ArrowFile).unwrap();
        let kept: Vec<RecordBatch> = batches.map(|b| b.unwrap()).collect();
        assert_eq!(kept, want);
        // And every cut of the file is an error, not a panic.
        for n in 0..bytes.len() {
            let read = read_batches(Cursor::new(bytes[..n].to_vec()), Format::ArrowFile)
                .and_then(|(_, batches)| batches.collect::<Result<Vec<_>>>());
            assert!(read.is_err(), "{n} of {} bytes read", bytes.len());
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn malformed_arrow_bytes_are_errors_even_where_the_decoder_panics() {
        let (file, batches) = batches_file(&[20, 20, 10]);
        let stream = ipc(Format::ArrowStream, &batches);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut random = move |below: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % below as u64) as usize
        };
        for (format, bytes) in [(Format::ArrowFile, file), (Format::ArrowStream, stream)] {
            let mut caught = 0;
            for _ in 0..300 {
                let mut m = bytes.clone();
                for _ in 0..1 + random(4) {
                    let i = random(m.len());
                    m[i] = random(256) as u8;
                }
                // In memory and from a reader: an error or batches, never a panic.
                for read in [
                    decode(Bytes::from(m.clone()), format).map(|t| t.batches().to_vec()),
                    read_batches(Cursor::new(m), format)
                        .and_then(|(_, batches)| batches.collect::<Result<Vec<_>>>()),
                ] {
                    if let Err(e) = read {
                        caught += usize::from(e.to_string().contains("the input is malformed"));
                    }
                }
            }
            // Random damage to these bytes trips arrow's own panics often (about one case
            // in six), so the guard is exercised here, not only present.
            assert!(caught > 10, "{format}: {caught} panics caught");
        }
    }
}
