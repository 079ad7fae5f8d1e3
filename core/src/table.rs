//! An in-memory table (a schema and its record batches) and [`BatchSource`], the one trait
//! through which core reads tables that may be too large to hold in memory. Core never opens
//! files: the binary implements `BatchSource` over files, core implements it over [`Table`].

use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::error::{Error, Result};

/// An iterator of record batches produced by a [`BatchSource`].
pub type BatchIter<'a> = Box<dyn Iterator<Item = Result<RecordBatch>> + Send + 'a>;

/// Something that can produce the batches of one table, possibly more than once.
///
/// Diffs scan their inputs twice (hashes first, then the few rows that differ), so a source
/// over a file reopens it on each [`BatchSource::scan`] instead of keeping it in memory.
pub trait BatchSource: Sync {
    /// The schema every batch has.
    fn schema(&self) -> SchemaRef;
    /// Iterates over the batches from the first row.
    fn scan(&self) -> Result<BatchIter<'_>>;
    /// The number of rows, when known without a scan.
    fn num_rows_hint(&self) -> Option<u64> {
        None
    }
    /// Iterates over the batches as [`BatchSource::scan`] does, but with the utf8 columns
    /// read as binary ones and their bytes not yet checked to be UTF-8
    /// ([`crate::decode::text_as_bytes`]), for a reader that checks them as it goes; `None`
    /// where the source cannot read its text so (the default).
    fn scan_text_as_bytes(&self) -> Result<Option<BatchIter<'_>>> {
        Ok(None)
    }

    /// How many rows to size per-row buffers for before a scan: the hint, believed up to
    /// 16M rows (a file's metadata can claim any number; larger tables grow as they are read).
    fn rows_to_reserve(&self) -> usize {
        self.num_rows_hint().unwrap_or(0).min(1 << 24) as usize
    }
}

/// A table held in memory: one schema, any number of batches.
#[derive(Debug, Clone)]
pub struct Table {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl Table {
    /// Builds a table, checking that every batch has the given schema's fields.
    pub fn try_new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self> {
        for (index, batch) in batches.iter().enumerate() {
            check_batch_schema(&schema, batch, index)?;
        }
        Ok(Table { schema, batches })
    }

    /// Builds a table from batches that share the first batch's schema.
    pub fn from_batches(batches: Vec<RecordBatch>) -> Result<Self> {
        let schema = match batches.first() {
            Some(b) => b.schema(),
            None => {
                return Err(Error::InvalidConfig(
                    "a table needs a schema; got no batches".into(),
                ));
            }
        };
        Table::try_new(schema, batches)
    }

    /// The table's schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The record batches, in row order.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// The total number of rows.
    pub fn num_rows(&self) -> u64 {
        self.batches.iter().map(|b| b.num_rows() as u64).sum()
    }

    /// Concatenates the batches into one (cheap for a single batch).
    pub fn concat(&self) -> Result<RecordBatch> {
        Ok(arrow_select::concat::concat_batches(
            &self.schema,
            &self.batches,
        )?)
    }

    /// The same rows re-cut into batches of at most `rows` rows (zero-copy slices).
    pub fn rechunk(&self, rows: usize) -> Table {
        let rows = rows.max(1);
        let mut out = Vec::new();
        for batch in &self.batches {
            let mut offset = 0;
            while offset < batch.num_rows() {
                let len = rows.min(batch.num_rows() - offset);
                out.push(batch.slice(offset, len));
                offset += len;
            }
        }
        Table {
            schema: Arc::clone(&self.schema),
            batches: out,
        }
    }
}

impl BatchSource for Table {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn scan(&self) -> Result<BatchIter<'_>> {
        Ok(Box::new(self.batches.iter().cloned().map(Ok)))
    }

    fn num_rows_hint(&self) -> Option<u64> {
        Some(self.num_rows())
    }
}

/// Checks that `batch` has the same column names and types as `schema`.
pub(crate) fn check_batch_schema(
    schema: &SchemaRef,
    batch: &RecordBatch,
    index: usize,
) -> Result<()> {
    let got = batch.schema();
    if got.fields().len() != schema.fields().len() {
        return Err(Error::SchemaMismatch {
            index,
            message: format!(
                "{} columns instead of {}",
                got.fields().len(),
                schema.fields().len()
            ),
        });
    }
    for (want, have) in schema.fields().iter().zip(got.fields().iter()) {
        if want.name() != have.name() || want.data_type() != have.data_type() {
            return Err(Error::SchemaMismatch {
                index,
                message: format!(
                    "column `{}` ({}) where `{}` ({}) was expected",
                    have.name(),
                    have.data_type(),
                    want.name(),
                    want.data_type()
                ),
            });
        }
    }
    Ok(())
}

/// A source that keeps the batches of its first complete scan in memory, as long as they
/// fit in `budget` bytes, so that later scans (a diff's second pass) do not decode the
/// input again. Past the budget it forgets them and every scan streams from the inner
/// source, which keeps memory bounded for inputs larger than the budget.
pub struct CachedSource<S> {
    inner: S,
    budget: usize,
    cache: Mutex<Cache>,
}

enum Cache {
    /// Not scanned to the end yet.
    Empty,
    /// The whole table, in order.
    Full(Vec<RecordBatch>),
    /// Larger than the budget.
    TooLarge,
}

impl<S: BatchSource> CachedSource<S> {
    /// Wraps `inner`, keeping up to `budget` bytes of decoded batches.
    pub fn new(inner: S, budget: usize) -> Self {
        CachedSource {
            inner,
            budget,
            cache: Mutex::new(Cache::Empty),
        }
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: BatchSource> BatchSource for CachedSource<S> {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn scan(&self) -> Result<BatchIter<'_>> {
        let state = self.cache.lock().expect("cache lock");
        match &*state {
            Cache::Full(batches) => {
                let batches = batches.clone();
                return Ok(Box::new(batches.into_iter().map(Ok)));
            }
            Cache::TooLarge => return self.inner.scan(),
            Cache::Empty => {}
        }
        drop(state);
        let mut kept: Option<Vec<RecordBatch>> = Some(Vec::new());
        let mut bytes = 0usize;
        let mut iter = self.inner.scan()?;
        Ok(Box::new(std::iter::from_fn(move || {
            let next = iter.next();
            match &next {
                Some(Ok(batch)) => {
                    if let Some(k) = &mut kept {
                        bytes += batch_bytes(batch);
                        if bytes > self.budget {
                            kept = None;
                            *self.cache.lock().expect("cache lock") = Cache::TooLarge;
                        } else {
                            k.push(batch.clone());
                        }
                    }
                }
                Some(Err(_)) => kept = None,
                None => {
                    if let Some(k) = kept.take() {
                        let mut state = self.cache.lock().expect("cache lock");
                        if matches!(*state, Cache::Empty) {
                            *state = Cache::Full(k);
                        }
                    }
                }
            }
            next
        })))
    }

    fn num_rows_hint(&self) -> Option<u64> {
        self.inner.num_rows_hint()
    }
}

/// The bytes a batch's values take. Not `get_array_memory_size`, which counts a buffer's
/// whole capacity for every array that slices it: the columns of a batch decoded from Arrow
/// IPC all slice one message buffer, and would each be counted as all of it.
fn batch_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or(usize::MAX / 64)
        })
        .sum()
}
