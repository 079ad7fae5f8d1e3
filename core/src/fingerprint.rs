//! Fingerprint v1 of a table: a hash per row (cells in column-name order), a digest per
//! column, the physical schema hash, an order-independent content root over the multiset of
//! row hashes, an order root, and inclusion proofs of one row in the content root.
//! docs/spec/fingerprint-v1.md is the normative description.

use std::collections::BTreeSet;

use arrow_array::RecordBatch;
use arrow_schema::Schema;

use crate::canon::{self, EncodedColumn, Family, OVERRUN, copy_cell};
use crate::error::{Error, Result};
use crate::hash::{FINGERPRINT_SPEC, Hash, HashBytes, Keyed, context, names_material, put_str};
use crate::lanes::{Lanes, MAX_LANES, MAX_LEN, Slots};
use crate::merkle;
use crate::par;
use crate::table::BatchSource;

/// Rows hashed per parallel task.
const ROWS_PER_TASK: usize = 8 * 1024;

/// Rows of a task encoded at a time, then gathered and hashed: a dozen columns' cells of
/// this many rows stay in a core's cache between the two.
const ROWS_PER_BLOCK: usize = 512;

const _: () = assert!(
    crate::lanes::SLOT >= MAX_LEN + OVERRUN,
    "a lane has room for overruns"
);

/// One column of a fingerprinted table, in the table's physical column order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnFingerprint {
    /// The column name.
    pub name: String,
    /// The physical type, in the spec's spelling (`int64`, `dictionary<int32, utf8>`, ...).
    pub data_type: String,
    /// The logical type family, which is what the cell encoding depends on.
    pub family: Family,
    /// Whether the schema allows nulls.
    pub nullable: bool,
    /// How many cells are null.
    pub nulls: u64,
    /// The column digest: its encoded cells in row order.
    pub digest: Hash,
}

/// The fingerprint of a table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// The spec version, `pipeproof-fingerprint-v1`.
    pub spec: String,
    /// The number of rows.
    pub rows: u64,
    /// The physical schema hash (names, types, nullability, in column order).
    pub schema_hash: Hash,
    /// The order-independent Merkle root over the multiset of row hashes.
    pub content_root: Hash,
    /// The hash of the row hashes in row order: differs when only the order differs.
    pub order_root: Hash,
    /// The columns, in physical order.
    pub columns: Vec<ColumnFingerprint>,
}

/// A fingerprint and the row hashes it was computed from, in row order.
#[derive(Debug, Clone)]
pub struct Fingerprinted {
    /// The fingerprint.
    pub fingerprint: Fingerprint,
    /// One hash per row, in row order.
    pub row_hashes: Vec<Hash>,
    /// One key hash per row, in row order, when a keyed diff computed them.
    pub key_hashes: Option<Vec<Hash>>,
}

/// Hashes chosen columns of each row under one key: the row hash (all columns in name
/// order, context `row`) and the key hash (key columns in key order, context `key`).
#[derive(Clone)]
pub struct RowHasher {
    /// Column indices in the order their cells are encoded.
    columns: Vec<usize>,
    names: Vec<String>,
    key: Keyed,
    lanes: Lanes,
}

impl RowHasher {
    /// The row hasher of a schema: every column, ordered by name (bytewise UTF-8).
    pub fn rows(schema: &Schema) -> Result<RowHasher> {
        check_schema(schema)?;
        let mut columns: Vec<usize> = (0..schema.fields().len()).collect();
        columns.sort_by(|&a, &b| schema.field(a).name().cmp(schema.field(b).name()));
        RowHasher::with(schema, columns, context::ROW)
    }

    /// The key hasher for the named key columns, in the given order.
    pub fn keys(schema: &Schema, key: &[String]) -> Result<RowHasher> {
        check_schema(schema)?;
        let columns = key
            .iter()
            .map(|k| {
                schema.index_of(k).map_err(|_| Error::MissingKey {
                    column: k.clone(),
                    side: crate::error::Side::Before,
                    available: column_list(schema),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        RowHasher::with(schema, columns, context::KEY)
    }

    /// A hasher over the given columns, in name order as row hashes take them, under a
    /// `row`-context key derived from their names: the row hash of a table of those columns
    /// alone. Used by diffs to compare rows on a subset of columns.
    pub fn subset(schema: &Schema, mut columns: Vec<usize>) -> Result<RowHasher> {
        check_schema(schema)?;
        columns.sort_by(|&a, &b| schema.field(a).name().cmp(schema.field(b).name()));
        RowHasher::with(schema, columns, context::ROW)
    }

    fn with(schema: &Schema, columns: Vec<usize>, ctx: &str) -> Result<RowHasher> {
        let names: Vec<String> = columns
            .iter()
            .map(|&i| schema.field(i).name().clone())
            .collect();
        let key = Keyed::new(ctx, &names_material(names.iter().map(String::as_str)));
        Ok(RowHasher {
            columns,
            names,
            key,
            lanes: Lanes::detect(),
        })
    }

    /// The column indices hashed, in encoding order.
    pub fn columns(&self) -> &[usize] {
        &self.columns
    }

    /// The derived BLAKE3 key (for the golden vectors).
    pub fn derived_key(&self) -> &[u8; 32] {
        self.key.key()
    }

    /// Appends the hash of every row of `batch` to `out`.
    pub fn hash_batch(&self, batch: &RecordBatch, out: &mut Vec<Hash>) -> Result<()> {
        let start = out.len();
        out.resize(start + batch.num_rows(), Hash::default());
        self.hash_rows(batch, &[], &mut out[start..], &mut Vec::new(), |_, _| {})
    }

    /// Writes the hash of every row of `batch` into `out` (`out.len() == batch.num_rows()`).
    pub fn hash_batch_into(&self, batch: &RecordBatch, out: &mut [Hash]) -> Result<()> {
        self.hash_rows(batch, &[], out, &mut Vec::new(), |_, _| {})
    }

    /// Hashes every row into `out`. Each parallel task takes its rows a block at a time:
    /// encodes the block column by column (one monomorphic loop per column), then gathers
    /// each row's cells and hashes them, 16 or 8 rows at a time where the CPU can ([`Lanes`]).
    /// Tasks encode into buffers taken from `spare` (those of earlier tasks, whose memory is
    /// already faulted in), and each task's encoded columns (in hashing order), which are
    /// exactly the bytes the column digests need, go to `consume` with the task's row
    /// hashes, task after task in row order, then back to `spare`. The columns marked in
    /// `text_as_bytes` (by index in the batch; none if it is empty) are utf8 columns read as
    /// binary ones, checked to be UTF-8 as they are encoded: the rows are hashed whatever
    /// their bytes, then the first that is not UTF-8, if any, is the error.
    fn hash_rows(
        &self,
        batch: &RecordBatch,
        text_as_bytes: &[bool],
        out: &mut [Hash],
        spare: &mut Vec<TaskColumns>,
        mut consume: impl FnMut(&TaskColumns, &[Hash]) + Send,
    ) -> Result<()> {
        assert_eq!(out.len(), batch.num_rows());
        let encoders = self
            .columns
            .iter()
            .zip(&self.names)
            .map(|(&i, name)| match text_as_bytes.get(i) {
                Some(true) => canon::text_from_bytes(name, batch.column(i).as_ref()),
                _ => canon::encoder(name, batch.column(i).as_ref()),
            })
            .collect::<Result<Vec<_>>>()?;
        let spare = std::sync::Mutex::new(spare);
        // Each task's rows' hashes, written by the task, then read by `consume`.
        let chunks: Vec<_> = out
            .chunks_mut(ROWS_PER_TASK)
            .map(std::sync::Mutex::new)
            .collect();
        let work = |task: usize| {
            let start = task * ROWS_PER_TASK;
            let mut chunk = chunks[task].lock().expect("no panics while held");
            let mut columns = spare
                .lock()
                .expect("no panics while held")
                .pop()
                .unwrap_or_default();
            columns.resize_with(encoders.len(), EncodedColumn::default);
            for column in columns.iter_mut() {
                column.clear();
                let room = chunk.len() * 10;
                column
                    .bytes
                    .reserve(room.saturating_sub(column.bytes.len()));
                column.ends.reserve(chunk.len());
            }
            let mut long = Vec::new();
            Slots::with(|slots| {
                for from in (0..chunk.len()).step_by(ROWS_PER_BLOCK) {
                    let to = (from + ROWS_PER_BLOCK).min(chunk.len());
                    // The block's cells, encoded just before they are gathered, are still in
                    // the core's cache when they are.
                    for (column, e) in columns.iter_mut().zip(&encoders) {
                        e.encode_column(start + from, start + to, column);
                    }
                    // When the longest cells of the block's columns fit the lanes together,
                    // every row does, and no row's length need be counted before it is
                    // gathered into a lane.
                    let all_fit = columns
                        .iter()
                        .map(|c| longest_cell(c, from..to))
                        .sum::<usize>()
                        <= MAX_LEN;
                    if all_fit {
                        let width = self.lanes.width();
                        for first in (from..to).step_by(width) {
                            let n = width.min(to - first);
                            gather_rows(&columns, first, n, slots);
                            let out = &mut chunk[first..first + n];
                            self.lanes.hash(self.key.key(), slots, n, out);
                        }
                    } else {
                        self.hash_row_by_row(&columns, from..to, slots, &mut long, &mut chunk);
                    }
                }
            });
            columns
        };
        par::map_consume_in_order(chunks.len(), work, |task, columns| {
            let hashes = chunks[task].lock().expect("no panics while held");
            consume(&columns, &hashes);
            spare.lock().expect("no panics while held").push(columns);
        });
        encoders.iter().try_for_each(|e| e.check())
    }

    /// Hashes rows `rows` of a task's encoded columns into `out`, one row at a time into
    /// the lanes, a row too long for them on its own.
    fn hash_row_by_row(
        &self,
        columns: &[EncodedColumn],
        rows: std::ops::Range<usize>,
        slots: &mut Slots,
        long: &mut Vec<u8>,
        out: &mut [Hash],
    ) {
        let width = self.lanes.width();
        let mut in_lanes = [0usize; MAX_LANES];
        let mut lane = 0;
        let mut hashes = [Hash::default(); MAX_LANES];
        for i in rows {
            let len = row_len(columns, i);
            if len > MAX_LEN {
                long.resize(len + OVERRUN, 0);
                let gathered = gather_row(columns, i, long);
                debug_assert_eq!(gathered, len);
                out[i] = self.key.hash(&long[..len]);
                continue;
            }
            let gathered = gather_row(columns, i, slots.slot_mut(lane));
            debug_assert_eq!(gathered, len);
            slots.set_len(lane, len);
            in_lanes[lane] = i;
            lane += 1;
            if lane == width {
                self.lanes.hash(self.key.key(), slots, lane, &mut hashes);
                for (&row, h) in in_lanes[..lane].iter().zip(&hashes) {
                    out[row] = *h;
                }
                lane = 0;
            }
        }
        if lane > 0 {
            self.lanes.hash(self.key.key(), slots, lane, &mut hashes);
            for (&row, h) in in_lanes[..lane].iter().zip(&hashes) {
                out[row] = *h;
            }
        }
    }

    /// The canonical encoding of one row's hashed cells (what [`RowHasher::hash_batch`]
    /// hashes), for tests and the spec's worked examples.
    pub fn encode_row(&self, batch: &RecordBatch, row: usize) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        for (&i, name) in self.columns.iter().zip(&self.names) {
            canon::encoder(name, batch.column(i).as_ref())?.encode(row, &mut buf);
        }
        Ok(buf)
    }
}

/// The encoded length of row `i` of a task's columns.
#[inline]
fn row_len(columns: &[EncodedColumn], i: usize) -> usize {
    columns
        .iter()
        .map(|column| column.ends[i] as usize - column.start(i))
        .sum()
}

/// The length of the longest of some rows' cells in one column of a task.
fn longest_cell(column: &EncodedColumn, rows: std::ops::Range<usize>) -> usize {
    let mut from = column.start(rows.start) as u32;
    let mut longest = 0;
    for &end in &column.ends[rows] {
        longest = longest.max(end - from);
        from = end;
    }
    longest as usize
}

/// Copies row `i`'s cells, in hashing order, to the start of `row`, which has room for the
/// row and [`OVERRUN`] bytes more; returns the row's length.
#[inline]
fn gather_row(columns: &[EncodedColumn], i: usize, row: &mut [u8]) -> usize {
    let mut pos = 0;
    for column in columns {
        let (from, to) = (column.start(i), column.ends[i] as usize);
        copy_cell(&column.bytes, from, to, &mut row[pos..]);
        pos += to - from;
    }
    pos
}

/// Copies rows `first..first + n` (`n <= MAX_LANES`) of a task's columns, in hashing order, to
/// the lanes' slots, one row to a lane: column by column, each column's cells of the rows
/// read in one run. Every row fits its slot.
#[inline]
fn gather_rows(columns: &[EncodedColumn], first: usize, n: usize, slots: &mut Slots) {
    let mut pos = [0usize; MAX_LANES];
    for column in columns {
        let mut from = column.start(first);
        let ends = &column.ends[first..first + n];
        // Each lane's slot by iteration, not by index: no slicing of the slots per cell.
        for ((slot, &end), pos) in slots.each_mut().zip(ends).zip(&mut pos) {
            let to = end as usize;
            copy_cell(&column.bytes, from, to, &mut slot[*pos..]);
            *pos += to - from;
            from = to;
        }
    }
    for (lane, &len) in pos[..n].iter().enumerate() {
        slots.set_len(lane, len);
    }
}

/// The encoded columns of one task, in hashing order.
pub(crate) type TaskColumns = Vec<EncodedColumn>;

/// Checks what v1 requires of a schema: distinct column names, supported types.
pub fn check_schema(schema: &Schema) -> Result<()> {
    let mut seen = BTreeSet::new();
    for field in schema.fields() {
        if !seen.insert(field.name().as_str()) {
            return Err(Error::DuplicateColumn(field.name().clone()));
        }
        Family::of_column(field.name(), field.data_type())?;
    }
    Ok(())
}

pub(crate) fn column_list(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The physical schema hash: field count, then each field's name, type spelling and
/// nullability, in column order. Schema metadata is not hashed.
pub fn schema_hash(schema: &Schema) -> Hash {
    let mut buf = Vec::new();
    buf.extend_from_slice(&(schema.fields().len() as u64).to_le_bytes());
    for field in schema.fields() {
        put_str(&mut buf, field.name());
        put_str(&mut buf, &canon::type_name(field.data_type()));
        buf.push(field.is_nullable() as u8);
    }
    Keyed::new(context::SCHEMA, &[]).hash(&buf)
}

/// Computes a fingerprint incrementally, one batch at a time.
pub struct Fingerprinter {
    schema: arrow_schema::SchemaRef,
    rows: RowHasher,
    column_hashers: Vec<blake3::Hasher>,
    nulls: Vec<u64>,
    order: blake3::Hasher,
    /// Every row hash so far in row order, or (unless kept) the last batch's only.
    row_hashes: Vec<Hash>,
    keep_rows: bool,
    row_count: u64,
    /// Unless the row hashes are kept: the row hashes so far grouped by first byte, the
    /// content tree's buckets. Each batch's are added as it is hashed, so finishing only
    /// sorts each bucket on its own. (Kept row hashes are sorted when finishing instead: a
    /// diff holding them has no room to spare for a second copy during its scan.)
    buckets: Vec<Vec<Hash>>,
    last_batch_rows: usize,
    batches: usize,
    distinct: Option<Vec<crate::stats::Distinct>>,
    /// The last batch's encoded columns, reused by the next.
    spare: Vec<TaskColumns>,
    /// When batches come with their utf8 columns read as binary ones: the schema they have,
    /// and which columns those are ([`Fingerprinter::text_read_as_bytes`]).
    text_as_bytes: Option<(arrow_schema::SchemaRef, Vec<bool>)>,
}

impl Fingerprinter {
    /// Starts a fingerprint of a table with this schema.
    pub fn new(schema: arrow_schema::SchemaRef) -> Result<Fingerprinter> {
        let rows = RowHasher::rows(&schema)?;
        let column_hashers = schema
            .fields()
            .iter()
            .map(|f| {
                Keyed::new(
                    context::COLUMN,
                    &names_material([f.name().as_str()].into_iter()),
                )
                .hasher()
            })
            .collect();
        Ok(Fingerprinter {
            nulls: vec![0; schema.fields().len()],
            column_hashers,
            rows,
            schema,
            order: Keyed::new(context::ORDER, &[]).hasher(),
            row_hashes: Vec::new(),
            keep_rows: true,
            row_count: 0,
            buckets: vec![Vec::new(); BUCKETS],
            last_batch_rows: 0,
            batches: 0,
            distinct: None,
            spare: Vec::new(),
            text_as_bytes: None,
        })
    }

    /// [`Fingerprinter::new`], also counting each column's distinct values (for statistics)
    /// from the encodings it hashes.
    pub fn with_distinct(schema: arrow_schema::SchemaRef) -> Result<Fingerprinter> {
        let columns = schema.fields().len();
        let mut f = Fingerprinter::new(schema)?;
        f.distinct = Some(vec![crate::stats::Distinct::default(); columns]);
        Ok(f)
    }

    /// Keeps only the fingerprint: [`Fingerprinted::row_hashes`] will be empty, and the row
    /// hashes take half the memory (only the content buckets hold them, and no sorted copy
    /// is made when finishing).
    pub fn without_row_hashes(mut self) -> Fingerprinter {
        self.keep_rows = false;
        self
    }

    /// Takes batches whose utf8 columns were read as binary ones, their bytes not checked
    /// ([`crate::decode::text_as_bytes`]): each such column is checked to be UTF-8 as it is
    /// hashed, and [`Fingerprinter::push`] fails on a batch with a row that is not, as
    /// reading the batch as text would have. The fingerprint is the same as of the text.
    pub fn text_read_as_bytes(mut self) -> Fingerprinter {
        let (schema, columns) = crate::decode::text_as_bytes(&self.schema);
        self.text_as_bytes = Some((std::sync::Arc::new(schema), columns));
        self
    }

    /// Makes room for `rows` more row hashes. The content buckets' memory is also faulted
    /// in, a write to each page of it, here (while the first batch is read, where a
    /// thread has nothing else to do) instead of by the pushes of row hashes, in the
    /// consumer of hashed rows that the threads take turns at: tens of megabytes.
    pub fn reserve(&mut self, rows: usize) {
        if self.keep_rows {
            self.row_hashes.reserve_exact(rows);
            return;
        }
        // Row hashes are uniform: a bucket gets rows / 256, give or take a few times its
        // square root; with room for four, few buckets have to grow.
        let per_bucket = rows / BUCKETS;
        let room = per_bucket + 4 * per_bucket.isqrt() + 16;
        const PAGE: usize = 4096 / std::mem::size_of::<Hash>();
        par::for_each_mut(&mut self.buckets, |bucket| {
            bucket.reserve(room);
            for hash in bucket.spare_capacity_mut().iter_mut().step_by(PAGE) {
                hash.write(Hash::default());
            }
        });
    }

    /// Adds the next batch of rows.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let (read_as, text_as_bytes) = match &self.text_as_bytes {
            Some((schema, columns)) => (schema, columns.as_slice()),
            None => (&self.schema, &[][..]),
        };
        crate::table::check_batch_schema(read_as, batch, self.batches)?;
        let first_row = self.row_count;
        self.batches += 1;
        if !self.keep_rows {
            self.row_hashes.clear();
        }
        let start = self.row_hashes.len();
        self.row_hashes
            .resize(start + batch.num_rows(), Hash::default());
        self.row_count += batch.num_rows() as u64;
        self.last_batch_rows = batch.num_rows();
        // The row hasher encodes columns in name order; digests are kept in physical order.
        let mut digests: Vec<(&mut blake3::Hasher, usize)> = Vec::new();
        for (pos, hasher) in self.column_hashers.iter_mut().enumerate() {
            let in_hash_order = self.rows.columns.iter().position(|&c| c == pos);
            digests.push((hasher, in_hash_order.expect("every column is hashed")));
        }
        let mut distinct: Vec<Option<&mut crate::stats::Distinct>> = match &mut self.distinct {
            Some(d) => d.iter_mut().map(Some).collect(),
            None => digests.iter().map(|_| None).collect(),
        };
        let order = &mut self.order;
        let mut buckets = (!self.keep_rows).then_some(&mut self.buckets);
        let mut grouped = Vec::new();
        // Each task's row hashes and encoded cells are taken in row order, as the task is
        // done, while other threads hash the next tasks' rows.
        let hashed = self.rows.hash_rows(
            batch,
            text_as_bytes,
            &mut self.row_hashes[start..],
            &mut self.spare,
            |columns, hashes| {
                crate::hash::update_hashes(order, hashes);
                if let Some(buckets) = buckets.as_mut() {
                    // Grouped by bucket first, so that each bucket grows by one run of a
                    // task's hashes (about 1 KB) instead of a hash at a time across 32 MB.
                    grouped.resize(hashes.len(), Hash::default());
                    let starts = scatter(hashes, BUCKETS, |h| h.0[0] as usize, &mut grouped);
                    for (bucket, run) in buckets.iter_mut().zip(starts.windows(2)) {
                        bucket.extend_from_slice(&grouped[run[0]..run[1]]);
                    }
                }
                for ((hasher, c), distinct) in digests.iter_mut().zip(distinct.iter_mut()) {
                    let column = &columns[*c];
                    hasher.update(column.cells());
                    if let Some(d) = distinct {
                        d.add_cells(column.cells(), &column.ends);
                    }
                }
            },
        );
        // The encoders count rows within the batch.
        hashed.map_err(|e| match e {
            Error::InvalidText { column, row } => Error::InvalidText {
                column,
                row: first_row + row,
            },
            e => e,
        })?;
        for (i, column) in batch.columns().iter().enumerate() {
            self.nulls[i] += column.logical_null_count() as u64;
        }
        Ok(())
    }

    /// The row hashes of the last batch pushed, in row order.
    pub fn last_row_hashes(&self) -> &[Hash] {
        &self.row_hashes[self.row_hashes.len() - self.last_batch_rows..]
    }

    /// The distinct-count sketches of the columns so far, in column order (the canonical
    /// encodings the fingerprint hashes are what they count); `None` unless made
    /// [`Fingerprinter::with_distinct`].
    pub fn distinct(&self) -> Option<&[crate::stats::Distinct]> {
        self.distinct.as_deref()
    }

    /// Finishes: sorts the row hashes (or each content bucket) for the content root.
    pub fn finish(mut self) -> Fingerprinted {
        let content_root = if self.keep_rows {
            content_root(&self.row_hashes)
        } else {
            self.row_hashes = Vec::new();
            top_root(&par::map(&self.buckets, |bucket| {
                Hash::with_scratch(|sorted| {
                    sorted.resize(bucket.len(), Hash::default());
                    sort_bucket_into(bucket, sorted);
                    bucket_root(sorted)
                })
            }))
        };
        let columns = self
            .schema
            .fields()
            .iter()
            .zip(self.column_hashers)
            .zip(self.nulls)
            .map(|((f, h), nulls)| ColumnFingerprint {
                name: f.name().clone(),
                data_type: canon::type_name(f.data_type()),
                family: Family::of(f.data_type()).expect("checked in new"),
                nullable: f.is_nullable(),
                nulls,
                digest: h.finalize().into(),
            })
            .collect();
        let fingerprint = Fingerprint {
            spec: FINGERPRINT_SPEC.to_string(),
            rows: self.row_count,
            schema_hash: schema_hash(&self.schema),
            content_root,
            order_root: self.order.finalize().into(),
            columns,
        };
        Fingerprinted {
            fingerprint,
            row_hashes: self.row_hashes,
            key_hashes: None,
        }
    }
}

/// Fingerprints every batch of a source, keeping its row hashes; the next batch is read (and
/// decoded) while one is hashed.
pub fn fingerprint(source: &dyn BatchSource) -> Result<Fingerprinted> {
    fingerprint_with(Fingerprinter::new(source.schema())?, source)
}

/// The fingerprint of a source alone, without its row hashes (which then need half the
/// memory: a million rows' take 32 MB instead of 64).
pub fn fingerprint_only(source: &dyn BatchSource) -> Result<Fingerprint> {
    let f = Fingerprinter::new(source.schema())?.without_row_hashes();
    Ok(fingerprint_with(f, source)?.fingerprint)
}

fn fingerprint_with(f: Fingerprinter, source: &dyn BatchSource) -> Result<Fingerprinted> {
    let rows = source.rows_to_reserve();
    // Text read as bytes is checked as it is hashed, in the pass over its bytes the hashing
    // makes anyway, instead of in one of its own as it is read.
    let (mut f, mut batches) = match source.scan_text_as_bytes()? {
        Some(batches) => (f.text_read_as_bytes(), batches),
        None => (f, source.scan()?),
    };
    let ((), first) = par::join(|| f.reserve(rows), || batches.next().transpose());
    let mut next = first?;
    while let Some(batch) = next {
        let (pushed, read) = par::join(|| f.push(&batch), || batches.next().transpose());
        pushed?;
        next = read?;
    }
    Ok(f.finish())
}

/// The number of buckets of the content tree: row hashes are bucketed by their first byte.
pub const BUCKETS: usize = 256;

/// The most row hashes one leaf of a bucket tree packs (32 × 32 bytes = one BLAKE3 chunk).
pub const ROWS_PER_LEAF: usize = 32;

/// The order root of row hashes given in row order.
pub fn order_root(row_hashes: &[Hash]) -> Hash {
    order_root_of(row_hashes)
}

/// [`order_root`] of row hashes in either form.
pub(crate) fn order_root_of<T: HashBytes>(row_hashes: &[T]) -> Hash {
    let mut h = Keyed::new(context::ORDER, &[]).hasher();
    crate::hash::update_hashes_of(&mut h, row_hashes);
    h.finalize().into()
}

/// Sorts row hashes into content order (ascending bytes) in place.
pub fn sort_content(row_hashes: &mut [Hash]) {
    sort_content_of(row_hashes);
}

/// [`sort_content`] of row hashes in either form, without a second buffer: grouped into
/// the 256 first-byte buckets in place ([`distribute`]), then each bucket (in parallel)
/// sorted as [`sorted_content`] sorts it.
pub(crate) fn sort_content_of<T: HashBytes>(row_hashes: &mut [T]) {
    let starts = distribute(row_hashes, BUCKETS, |h| h.bytes()[0] as usize);
    par::for_each_mut(&mut buckets_of(row_hashes, &starts), |bucket| {
        sort_bucket(bucket)
    });
}

/// `items` cut into the runs that `starts` (as [`scatter`] returns them) gives.
fn buckets_of<'a, T>(items: &'a mut [T], starts: &[usize]) -> Vec<&'a mut [T]> {
    let mut buckets = Vec::with_capacity(starts.len() - 1);
    let mut rest = items;
    for run in starts.windows(2) {
        let (bucket, tail) = rest.split_at_mut(run[1] - run[0]);
        buckets.push(bucket);
        rest = tail;
    }
    buckets
}

/// Row hashes in content order (ascending bytes). Hashes are uniform, so a radix sort on
/// their first bits leaves few to compare: scattered into the 256 first-byte buckets, then
/// each bucket (in parallel) counting-sorted on the bits after ([`sort_bucket`]).
pub fn sorted_content(row_hashes: &[Hash]) -> Vec<Hash> {
    let mut out = vec![Hash::default(); row_hashes.len()];
    let starts = scatter(row_hashes, BUCKETS, |h| h.0[0] as usize, &mut out);
    par::for_each_mut(&mut buckets_of(&mut out, &starts), |bucket| {
        sort_bucket(bucket)
    });
    out
}

/// Sorts the row hashes of one first-byte bucket in place, through a copy in a scratch
/// buffer of the thread's, kept from bucket to bucket ([`sort_bucket_into`]).
fn sort_bucket<T: HashBytes>(bucket: &mut [T]) {
    T::with_scratch(|copy| {
        copy.clear();
        copy.extend_from_slice(bucket);
        sort_bucket_into(copy, bucket);
    });
}

/// Writes the row hashes of one first-byte bucket to `out` in content order: a counting
/// sort on the bits after the first byte, as many as it takes for most hashes to have a
/// digit of their own (12 for a bucket of a few thousand: hashes are uniform), then the
/// few groups of more than one sorted on their own.
fn sort_bucket_into<T: HashBytes>(bucket: &[T], out: &mut [T]) {
    if bucket.len() < 64 {
        out.copy_from_slice(bucket);
        out.sort_unstable();
        return;
    }
    let bits = bucket
        .len()
        .next_power_of_two()
        .trailing_zeros()
        .clamp(8, 16);
    let digit = |h: &T| (u16::from_be_bytes([h.bytes()[1], h.bytes()[2]]) >> (16 - bits)) as usize;
    let runs = scatter(bucket, 1 << bits, digit, out);
    for run in runs.windows(2) {
        if run[1] - run[0] > 1 {
            out[run[0]..run[1]].sort_unstable();
        }
    }
}

/// A counting sort of `src` into `out` on a digit below `digits`; returns where each digit's
/// run starts in `out`, and, last, where the final one ends. The radix sort of content order
/// starts with it ([`distribute`] does the same in place).
pub(crate) fn scatter<T: Copy>(
    src: &[T],
    digits: usize,
    digit: impl Fn(&T) -> usize,
    out: &mut [T],
) -> Vec<usize> {
    let starts = digit_starts(src, digits, &digit);
    let mut next = starts.clone();
    for x in src {
        let d = digit(x);
        out[next[d]] = *x;
        next[d] += 1;
    }
    starts
}

/// Counts of each digit below `digits` in `items`, as run starts: entry `d` is where digit
/// `d`'s run starts once the items are grouped by digit, and the last entry is the total.
fn digit_starts<T>(items: &[T], digits: usize, digit: &impl Fn(&T) -> usize) -> Vec<usize> {
    let mut starts = vec![0usize; digits + 1];
    for x in items {
        starts[digit(x) + 1] += 1;
    }
    for d in 0..digits {
        starts[d + 1] += starts[d];
    }
    starts
}

/// Groups `items` by a digit below `digits` in place, without a second buffer (one pass of
/// an American flag sort: each misplaced item is swapped straight into its digit's run);
/// returns the runs' starts as [`scatter`] does. Order within a run is not kept.
pub(crate) fn distribute<T>(
    items: &mut [T],
    digits: usize,
    digit: impl Fn(&T) -> usize,
) -> Vec<usize> {
    let starts = digit_starts(items, digits, &digit);
    let mut next = starts.clone();
    for d in 0..digits {
        let end = starts[d + 1];
        while next[d] < end {
            let to = digit(&items[next[d]]);
            if to == d {
                next[d] += 1;
            } else {
                items.swap(next[d], next[to]);
                next[to] += 1;
            }
        }
    }
    starts
}

/// The content root, independent of row order: sort the row hashes, bucket them by first
/// byte, pack each bucket's hashes 32 to a leaf, Merkle-hash each bucket's leaves, then
/// Merkle-hash the 256 bucket roots.
pub fn content_root(row_hashes: &[Hash]) -> Hash {
    content_root_sorted(&sorted_content(row_hashes))
}

/// The content root of row hashes already in content order.
pub fn content_root_sorted(sorted: &[Hash]) -> Hash {
    content_root_sorted_of(sorted)
}

/// [`content_root_sorted`] of row hashes in either form.
pub(crate) fn content_root_sorted_of<T: HashBytes>(sorted: &[T]) -> Hash {
    top_root(&bucket_roots_of(sorted))
}

/// The content root from the 256 bucket roots, which can be computed apart (by partition).
pub fn top_root(bucket_roots: &[Hash]) -> Hash {
    assert_eq!(bucket_roots.len(), BUCKETS);
    merkle::root(&top_leaves(bucket_roots))
}

/// The leaves of the top tree: a leaf hash of each bucket root.
fn top_leaves(bucket_roots: &[Hash]) -> Vec<Hash> {
    let mut leaves = vec![Hash::default(); bucket_roots.len()];
    merkle::leaf_hashes(
        |i, buf| {
            buf[..32].copy_from_slice(&bucket_roots[i].0);
            32
        },
        &mut leaves,
    );
    leaves
}

/// The 256 bucket roots of row hashes in content order.
pub fn bucket_roots(sorted: &[Hash]) -> Vec<Hash> {
    bucket_roots_of(sorted)
}

fn bucket_roots_of<T: HashBytes>(sorted: &[T]) -> Vec<Hash> {
    let ranges = bucket_ranges(sorted);
    par::map(&ranges, |r| bucket_root_of(&sorted[r.clone()]))
}

/// The root of one bucket: its sorted row hashes packed into leaves of up to 32.
pub fn bucket_root(bucket: &[Hash]) -> Hash {
    bucket_root_of(bucket)
}

fn bucket_root_of<T: HashBytes>(bucket: &[T]) -> Hash {
    merkle::root(&bucket_leaves(bucket))
}

/// The leaf hashes of a bucket: `H(0x00 || h_1 || ... || h_k)` for each run of up to
/// [`ROWS_PER_LEAF`] of its row hashes.
fn bucket_leaves<T: HashBytes>(bucket: &[T]) -> Vec<Hash> {
    let mut leaves = vec![Hash::default(); bucket.len().div_ceil(ROWS_PER_LEAF)];
    merkle::leaf_hashes(
        |i, buf| {
            let end = ((i + 1) * ROWS_PER_LEAF).min(bucket.len());
            put_leaf(&bucket[i * ROWS_PER_LEAF..end], buf)
        },
        &mut leaves,
    );
    leaves
}

/// Writes up to [`ROWS_PER_LEAF`] row hashes back to back into `buf`; returns their length.
fn put_leaf<T: HashBytes>(hashes: &[T], buf: &mut [u8]) -> usize {
    debug_assert!(hashes.len() <= ROWS_PER_LEAF);
    for (i, h) in hashes.iter().enumerate() {
        buf[i * 32..(i + 1) * 32].copy_from_slice(h.bytes());
    }
    hashes.len() * 32
}

/// The leaf hash of up to [`ROWS_PER_LEAF`] row hashes.
fn leaf_of(hashes: &[Hash]) -> Hash {
    let mut buf = [0u8; ROWS_PER_LEAF * 32];
    let len = put_leaf(hashes, &mut buf);
    merkle::leaf_hash(&buf[..len])
}

fn bucket_ranges<T: HashBytes>(sorted: &[T]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::with_capacity(BUCKETS);
    let mut start = 0;
    for b in 0..BUCKETS {
        let end = start + sorted[start..].partition_point(|h| h.bytes()[0] as usize <= b);
        ranges.push(start..end);
        start = end;
    }
    ranges
}

/// A proof that one row hash is in a table's content root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RowProof {
    /// The row hash proved.
    pub row_hash: Hash,
    /// The row hashes of its leaf (itself among them), in content order.
    pub leaf: Vec<Hash>,
    /// The leaf's index within its bucket (the bucket is the row hash's first byte).
    pub leaf_index: u64,
    /// How many leaves the bucket has.
    pub leaf_count: u64,
    /// The audit path of the leaf within the bucket.
    pub bucket_path: Vec<Hash>,
    /// The audit path of the bucket root among the 256 bucket roots.
    pub top_path: Vec<Hash>,
}

impl RowProof {
    /// Builds the proof for `row_hash` from row hashes in content order; `None` when the
    /// row is not in the table.
    pub fn new(sorted: &[Hash], row_hash: &Hash) -> Option<RowProof> {
        let ranges = bucket_ranges(sorted);
        let b = row_hash.0[0] as usize;
        let bucket = &sorted[ranges[b].clone()];
        let index = bucket.binary_search(row_hash).ok()?;
        let leaf_index = index / ROWS_PER_LEAF;
        let leaves = bucket_leaves(bucket);
        let top = top_leaves(&bucket_roots(sorted));
        Some(RowProof {
            row_hash: *row_hash,
            leaf: bucket.chunks(ROWS_PER_LEAF).nth(leaf_index)?.to_vec(),
            leaf_index: leaf_index as u64,
            leaf_count: leaves.len() as u64,
            bucket_path: merkle::audit_path(&leaves, leaf_index),
            top_path: merkle::audit_path(&top, b),
        })
    }

    /// Whether the proof shows `row_hash` in a table with this content root.
    pub fn verify(&self, content_root: &Hash) -> bool {
        if !self.leaf.contains(&self.row_hash) || self.leaf.len() > ROWS_PER_LEAF {
            return false;
        }
        let leaf = leaf_of(&self.leaf);
        let Some(bucket_root) =
            merkle::root_from_path(&leaf, self.leaf_index, self.leaf_count, &self.bucket_path)
        else {
            return false;
        };
        let b = self.row_hash.0[0] as u64;
        let top_leaf = merkle::leaf_hash(&bucket_root.0);
        merkle::root_from_path(&top_leaf, b, BUCKETS as u64, &self.top_path) == Some(*content_root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn every_row_hash_is_the_keyed_hash_of_its_encoding() {
        use arrow_array::{ArrayRef, Int64Array, StringArray};
        use std::sync::Arc;
        // Rows from empty strings to well past two chunks (2048 bytes, the most the lanes
        // take), of one and two chunks and longer mixed within each group of eight hashed
        // together, over more than one task.
        // A last cell of 50 to 140 bytes, copied as a fixed 64 or 128 bytes, ends some rows
        // a few bytes short of 2048: its copy runs past the row, to the end of the lane.
        let n = ROWS_PER_TASK + 1_000;
        let text: Vec<String> = (0..n).map(|i| "x".repeat((i * 37) % 3_000)).collect();
        let tail: Vec<String> = (0..n).map(|i| "y".repeat(50 + i % 91)).collect();
        let batch = RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(Int64Array::from_iter_values(0..n as i64)) as ArrayRef,
            ),
            (
                "text",
                Arc::new(StringArray::from_iter_values(&text)) as ArrayRef,
            ),
            (
                "z_tail",
                Arc::new(StringArray::from_iter_values(&tail)) as ArrayRef,
            ),
        ])
        .unwrap();
        let rows = RowHasher::rows(&batch.schema()).unwrap();
        let mut hashes = Vec::new();
        rows.hash_batch(&batch, &mut hashes).unwrap();
        let key = Keyed::new(
            context::ROW,
            &names_material(["id", "text", "z_tail"].into_iter()),
        );
        let (mut two_chunks, mut long, mut near_full) = (0, 0, 0);
        for (r, h) in hashes.iter().enumerate() {
            let encoded = rows.encode_row(&batch, r).unwrap();
            two_chunks += usize::from((1025..=crate::lanes::MAX_LEN).contains(&encoded.len()));
            long += usize::from(encoded.len() > crate::lanes::MAX_LEN);
            near_full += usize::from((1_990..=crate::lanes::MAX_LEN).contains(&encoded.len()));
            assert_eq!(*h, key.hash(&encoded), "row {r}");
        }
        assert!(two_chunks > 1_000, "rows of two chunks: {two_chunks}");
        assert!(long > 1_000, "rows past two chunks: {long}");
        assert!(near_full > 50, "rows just short of two chunks: {near_full}");
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn content_order_is_bytewise_order() {
        let h = |i: u32| Hash(*blake3::hash(&i.to_le_bytes()).as_bytes());
        // Uniform hashes, many sharing their first two bytes (a crafted bundle can hold
        // any bytes), and duplicates.
        let mut hashes: Vec<Hash> = (0..20_000).map(h).collect();
        for i in 0..3_000u32 {
            let mut x = h(i).0;
            x[0] = 7;
            x[1] = (i % 3) as u8;
            hashes.push(Hash(x));
        }
        hashes.extend((0..500).map(h));
        for n in [0, 1, 63, 64, 65, 1_000, hashes.len()] {
            let mut want: Vec<[u8; 32]> = hashes[..n].iter().map(|h| h.0).collect();
            want.sort_unstable();
            let got: Vec<[u8; 32]> = sorted_content(&hashes[..n]).iter().map(|h| h.0).collect();
            assert_eq!(got, want, "{n} hashes");
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn batches_reusing_encoding_buffers_hash_as_one_batch() {
        use arrow_array::{ArrayRef, Int64Array, StringArray};
        use std::sync::Arc;
        let batch = |ids: Vec<i64>| {
            let names = ids.iter().map(|i| format!("n{}", i * 7 % 1_000));
            RecordBatch::try_from_iter([
                ("id", Arc::new(Int64Array::from(ids.clone())) as ArrayRef),
                (
                    "name",
                    Arc::new(StringArray::from_iter_values(names)) as ArrayRef,
                ),
            ])
            .unwrap()
        };
        // Batches of uneven sizes, an empty one among them: each reuses the encoding
        // buffers of fewer or more tasks than it has.
        let t = ROWS_PER_TASK as i64;
        let ranges = [0..3 * t + 5, 0..0, 10 * t..10 * t + 10, 20 * t..22 * t];
        let batches: Vec<RecordBatch> = ranges.iter().map(|r| batch(r.clone().collect())).collect();
        let cut = crate::table::Table::try_new(batches[0].schema(), batches.clone()).unwrap();
        let whole = batch(ranges.iter().flat_map(|r| r.clone()).collect());
        let whole = crate::table::Table::try_new(whole.schema(), vec![whole]).unwrap();
        let (cut, whole) = (fingerprint(&cut).unwrap(), fingerprint(&whole).unwrap());
        assert_eq!(cut.fingerprint, whole.fingerprint);
        assert_eq!(cut.row_hashes, whole.row_hashes);
        // And each batch hashed by a row hasher of its own, with buffers of its own.
        let mut one_by_one = Vec::new();
        let hasher = RowHasher::rows(&batches[0].schema()).unwrap();
        for b in &batches {
            hasher.hash_batch(b, &mut one_by_one).unwrap();
        }
        assert_eq!(cut.row_hashes, one_by_one);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_content_buckets_filled_batch_by_batch_give_the_content_root() {
        use arrow_array::{ArrayRef, Int64Array};
        use std::sync::Arc;
        let batch = |r: std::ops::Range<i64>| {
            let ids = Arc::new(Int64Array::from_iter_values(r)) as ArrayRef;
            RecordBatch::try_from_iter([("id", ids)]).unwrap()
        };
        // Buckets of a few rows and of many, more rows than the hint made room for, and a
        // duplicate row.
        for (ranges, hint) in [
            (vec![0..3, 0..0, 3..300], 300),
            (vec![0..5_000, 5_000..40_000, 39_999..40_000], 1_000),
        ] {
            let batches: Vec<RecordBatch> = ranges.into_iter().map(batch).collect();
            let table = crate::table::Table::try_new(batches[0].schema(), batches.clone()).unwrap();
            let full = fingerprint(&table).unwrap();
            assert_eq!(full.row_hashes.len() as u64, full.fingerprint.rows);
            assert_eq!(
                full.fingerprint.content_root,
                content_root(&full.row_hashes)
            );
            assert_eq!(fingerprint_only(&table).unwrap(), full.fingerprint);
            let mut f = Fingerprinter::new(batches[0].schema())
                .unwrap()
                .without_row_hashes();
            f.reserve(hint);
            for b in &batches {
                f.push(b).unwrap();
                assert_eq!(f.last_row_hashes().len(), b.num_rows());
            }
            let only = f.finish();
            assert!(only.row_hashes.is_empty());
            assert_eq!(only.fingerprint, full.fingerprint);
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn distribute_groups_in_place_as_scatter_does() {
        // Digits uneven (some empty, one holding most items), each item unique.
        let digit = |x: &u32| ((x.wrapping_mul(2_654_435_761) >> 7) % 13).min(9) as usize;
        for n in [0u32, 1, 2, 17, 5_000] {
            let items: Vec<u32> = (0..n).collect();
            let mut scattered = vec![0u32; items.len()];
            let want = scatter(&items, 12, digit, &mut scattered);
            let mut grouped = items.clone();
            let starts = distribute(&mut grouped, 12, digit);
            assert_eq!(starts, want, "{n} items");
            for run in starts.windows(2) {
                let (mut a, mut b) = (
                    grouped[run[0]..run[1]].to_vec(),
                    scattered[run[0]..run[1]].to_vec(),
                );
                a.sort_unstable();
                b.sort_unstable();
                assert_eq!(a, b, "{n} items, run at {}", run[0]);
            }
        }
    }
}

#[cfg(test)]
mod text_as_bytes_tests {
    use super::*;
    use crate::error::Error;
    use arrow_array::{ArrayRef, BinaryArray, Int64Array, LargeStringArray, StringArray};
    use std::sync::Arc;

    /// A table of `rows` rows, in batches of `batch` rows, with utf8 (ASCII, non-ASCII,
    /// empty, null), large utf8, a genuine binary column and a key.
    fn batches(rows: usize, batch: usize) -> Vec<RecordBatch> {
        let text = |i: usize| match i % 5 {
            0 => None,
            1 => Some(String::new()),
            2 => Some(format!("café {i} São Paulo")),
            3 => Some(format!("plain {i}")),
            _ => Some(format!("München €{i}")),
        };
        (0..rows)
            .step_by(batch)
            .map(|start| {
                let r = start..(start + batch).min(rows);
                RecordBatch::try_from_iter([
                    (
                        "id",
                        Arc::new(Int64Array::from_iter_values(r.clone().map(|i| i as i64)))
                            as ArrayRef,
                    ),
                    (
                        "name",
                        Arc::new(r.clone().map(text).collect::<StringArray>()),
                    ),
                    (
                        "note",
                        Arc::new(r.clone().map(|i| text(i + 1)).collect::<LargeStringArray>()),
                    ),
                    (
                        "raw",
                        Arc::new(BinaryArray::from_iter(
                            r.map(|i| text(i + 2).map(String::into_bytes)),
                        )),
                    ),
                ])
                .unwrap()
            })
            .collect()
    }

    /// The batch as read with its text as bytes.
    fn as_bytes(batch: &RecordBatch) -> RecordBatch {
        let (schema, _) = crate::decode::text_as_bytes(&batch.schema());
        let schema = Arc::new(schema);
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(c, f)| arrow_cast::cast(c, f.data_type()).unwrap())
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    fn fingerprint_of(batches: &[RecordBatch], text_as_bytes: bool) -> Result<Fingerprint> {
        let schema = batches[0].schema();
        let mut f = Fingerprinter::new(schema)?.without_row_hashes();
        if text_as_bytes {
            f = f.text_read_as_bytes();
        }
        for b in batches {
            if text_as_bytes {
                f.push(&as_bytes(b))?;
            } else {
                f.push(b)?;
            }
        }
        Ok(f.finish().fingerprint)
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn text_read_as_bytes_fingerprints_as_the_text_does() {
        let (schema, made) = crate::decode::text_as_bytes(&batches(1, 1)[0].schema());
        assert_eq!(made, [false, true, true, false]);
        assert_eq!(schema.field(1).data_type(), &arrow_schema::DataType::Binary);
        assert_eq!(
            schema.field(2).data_type(),
            &arrow_schema::DataType::LargeBinary
        );
        // Several tasks and blocks to a batch, a batch of one row, an empty batch.
        for (rows, batch) in [(20_000, 9_000), (3, 1), (1_000, 1_000)] {
            let mut b = batches(rows, batch);
            b.push(b[0].slice(0, 0));
            let text = fingerprint_of(&b, false).unwrap();
            assert_eq!(fingerprint_of(&b, true).unwrap(), text, "{rows} rows");
        }
    }

    /// A one-column batch of `name` (read as bytes) whose cells are `cells`.
    fn bytes_batch(cells: &[&[u8]]) -> RecordBatch {
        let name = BinaryArray::from_iter_values(cells.iter().copied());
        RecordBatch::try_from_iter([("name", Arc::new(name) as ArrayRef)]).unwrap()
    }

    fn first_bad_row(batches: &[RecordBatch]) -> Option<u64> {
        let text = arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "name",
            arrow_schema::DataType::Utf8,
            true,
        )]);
        let mut f = Fingerprinter::new(Arc::new(text))
            .unwrap()
            .text_read_as_bytes();
        for b in batches {
            match f.push(b) {
                Ok(()) => {}
                Err(Error::InvalidText { column, row }) => {
                    assert_eq!(column, "name");
                    return Some(row);
                }
                Err(e) => panic!("{e}"),
            }
        }
        None
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn text_read_as_bytes_that_is_not_utf8_is_an_error_naming_the_row() {
        let ok: &[u8] = "é".as_bytes();
        assert_eq!(first_bad_row(&[bytes_batch(&[b"a", ok, b""])]), None);
        // A byte no UTF-8 has; a character cut short at the end of the rows.
        assert_eq!(
            first_bad_row(&[bytes_batch(&[b"a", b"b\xff", b"c"])]),
            Some(1)
        );
        assert_eq!(first_bad_row(&[bytes_batch(&[b"a", b"\xc3"])]), Some(1));
        // Each cell's bytes run on into the next's: together they are UTF-8 ("xé"), but
        // the second cell starts inside the character.
        assert_eq!(first_bad_row(&[bytes_batch(&[b"x\xc3", b"\xa9"])]), Some(1));
        // The first bad row of the table, counted across batches and across the tasks
        // and blocks of a batch, which are checked in parallel.
        let mut cells = vec![&b"text"[..]; 30_000];
        cells[9_000] = b"\xc3(";
        cells[25_000] = b"\xff";
        let big = bytes_batch(&cells);
        assert_eq!(first_bad_row(std::slice::from_ref(&big)), Some(9_000));
        let first = bytes_batch(&[b"a", b"b"]);
        assert_eq!(
            first_bad_row(&[first, big.slice(8_000, 2_000)]),
            Some(1_002)
        );
    }
}
