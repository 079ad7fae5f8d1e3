//! Diffs between two tables: keyed (added, removed and changed rows, cell by cell) or, with
//! no key, a multiset diff of whole rows; plus the schema diff and per-column statistics.
//!
//! The inputs are [`BatchSource`]s, read twice: pass 1 fingerprints each side and keeps 40
//! bytes a row (key hash, compare hash, row number); the rows are matched by a sort-merge on
//! key hashes, partitioned so that no partition holds more than `chunk_rows` rows; pass 2
//! takes only the rows that differ, at most `chunk_rows` pairs at a time, to count changed
//! cells per column and to build the details. Memory is bounded by the 40-byte entries and
//! one group of differing rows, not by the size of the tables.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::canon::{self, Family};
use crate::error::{Error, Result, Side};
use crate::fingerprint::{Fingerprinted, Fingerprinter, RowHasher, column_list};
use crate::hash::Hash;
use crate::par;
use crate::stats::{ColumnStats, StatsBuilder};
use crate::table::BatchSource;

/// How to diff two tables. The field names are part of the product's vocabulary.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiffConfig {
    /// Key column(s). With a key: added, removed and changed rows with cell-level changes.
    /// Without: a multiset diff of whole rows (added and removed only).
    pub key: Vec<String>,
    /// Process at most this many rows per partition and per group of differing rows.
    pub chunk_rows: usize,
    /// When the share of differing rows (added + removed + changed, over all rows of either
    /// side with a matched pair counted once) is above this, keep the summary only and skip
    /// the details. At 1 (the default) details are always kept.
    pub summary_only_threshold: f64,
    /// Float cells within this absolute difference count as equal (reported apart).
    pub abs_tol: f64,
    /// Float cells within this relative difference count as equal (reported apart).
    pub rel_tol: f64,
    /// Columns left out of the comparison (still fingerprinted).
    pub ignore_columns: Vec<String>,
    /// The most rows kept in each kind of detail (added, removed, changed).
    pub max_detail_rows: usize,
}

impl Default for DiffConfig {
    fn default() -> Self {
        DiffConfig {
            key: Vec::new(),
            chunk_rows: 1_000_000,
            summary_only_threshold: 1.0,
            abs_tol: 0.0,
            rel_tol: 0.0,
            ignore_columns: Vec::new(),
            max_detail_rows: 10_000,
        }
    }
}

impl DiffConfig {
    /// A keyed configuration with defaults otherwise.
    pub fn keyed<S: Into<String>>(key: impl IntoIterator<Item = S>) -> Self {
        DiffConfig {
            key: key.into_iter().map(Into::into).collect(),
            ..DiffConfig::default()
        }
    }

    /// Checks the values are in range.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidConfig(m));
        if self.chunk_rows == 0 {
            return bad("chunk_rows must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.summary_only_threshold) {
            return bad(format!(
                "summary_only_threshold must be between 0 and 1, got {}",
                self.summary_only_threshold
            ));
        }
        for (name, v) in [("abs_tol", self.abs_tol), ("rel_tol", self.rel_tol)] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(format!("{name} must be a finite number >= 0, got {v}"));
            }
        }
        let mut seen = BTreeSet::new();
        for k in &self.key {
            if !seen.insert(k) {
                return bad(format!("key column `{k}` is named twice"));
            }
            if self.ignore_columns.contains(k) {
                return bad(format!("key column `{k}` cannot also be ignored"));
            }
        }
        Ok(())
    }

    /// How many bytes of decoded input a [`crate::table::CachedSource`] may keep per side:
    /// 256 bytes per `chunk_rows` row, so lowering `chunk_rows` also bounds the cache.
    pub fn cache_budget(&self) -> usize {
        self.chunk_rows.saturating_mul(256)
    }

    fn tolerant(&self) -> bool {
        self.abs_tol > 0.0 || self.rel_tol > 0.0
    }
}

/// A column as the schema diff reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnType {
    /// Column name.
    pub name: String,
    /// Physical type, in the fingerprint spec's spelling.
    pub data_type: String,
    /// Logical family.
    pub family: Family,
}

/// A column whose type changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Retyped {
    /// Column name.
    pub name: String,
    /// Type before.
    pub before: String,
    /// Type after.
    pub after: String,
    /// True when the family changed (int to string): every value changes. False for a
    /// width or encoding change within a family (int32 to int64, dictionary to plain).
    pub family_changed: bool,
}

/// What changed in the schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SchemaDiff {
    /// Columns only in the after table.
    pub added: Vec<ColumnType>,
    /// Columns only in the before table.
    pub removed: Vec<ColumnType>,
    /// Columns in both whose type differs.
    pub retyped: Vec<Retyped>,
    /// True when the columns present in both appear in a different order.
    pub reordered: bool,
}

impl SchemaDiff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.retyped.is_empty()
            && !self.reordered
    }
}

/// Per-column result of the comparison.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnChanges {
    /// Column name.
    pub name: String,
    /// Cells that changed, among matched rows.
    pub changed: u64,
    /// Float cells that differ but within tolerance (not counted in `changed`).
    pub within_tolerance: u64,
}

/// Statistics of one column on each side.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatsPair {
    /// Column name.
    pub name: String,
    /// Statistics in the before table, if the column is there.
    pub before: Option<ColumnStats>,
    /// Statistics in the after table, if the column is there.
    pub after: Option<ColumnStats>,
}

/// The summary of a diff: everything but the detail rows.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiffSummary {
    /// Key columns (empty for a multiset diff).
    pub key: Vec<String>,
    /// Rows in the before table.
    pub rows_before: u64,
    /// Rows in the after table.
    pub rows_after: u64,
    /// Rows only in the after table.
    pub added: u64,
    /// Rows only in the before table.
    pub removed: u64,
    /// Matched rows with at least one changed cell (always 0 without a key).
    pub changed: u64,
    /// Matched rows with no changed cell (including rows equal only within tolerance).
    pub unchanged: u64,
    /// Rows counted unchanged only thanks to the float tolerances.
    pub within_tolerance: u64,
    /// Columns compared cell by cell, in name order.
    pub compared_columns: Vec<String>,
    /// Per-column change counts, for the compared columns.
    pub columns: Vec<ColumnChanges>,
    /// The schema diff.
    pub schema: SchemaDiff,
    /// Per-column statistics of both sides, in name order.
    pub stats: Vec<StatsPair>,
    /// True when the details were skipped by `summary_only_threshold`.
    pub summary_only: bool,
    /// True when some kind of detail was cut at `max_detail_rows`.
    pub details_truncated: bool,
}

impl DiffSummary {
    /// True when the tables hold the same rows (and, keyed, the same cells per key) of the
    /// same columns: a column added or removed, or one whose values changed type family
    /// (int to string), is a difference. What fingerprint v1 holds to be the same content
    /// is not: columns in another order, int32 for int64, dictionary for plain strings (the
    /// schema diff still reports them).
    pub fn is_same(&self) -> bool {
        self.is_same_ignoring(&[])
    }

    /// True when a matched row whose row hash differs between the sides is a row this diff
    /// counts as changed; `columns` is the after table's number of columns. So it is when
    /// the diff compared every column but the key's (none added, removed or ignored) and no
    /// row was equal only within the tolerances: a row hash then differs only where a
    /// compared cell does. Otherwise a row can be unchanged to the diff with another hash.
    pub fn row_hash_difference_is_a_change(&self, columns: usize) -> bool {
        self.schema.added.is_empty()
            && self.schema.removed.is_empty()
            && self.within_tolerance == 0
            && self.compared_columns.len() + self.key.len() == columns
    }

    /// [`DiffSummary::is_same`], the columns of a diff's `ignore_columns` left out of the
    /// schema's comparison as they were out of the rows'.
    pub fn is_same_ignoring(&self, ignored: &[String]) -> bool {
        let counts = |name: &str| !ignored.iter().any(|i| i == name);
        self.added == 0
            && self.removed == 0
            && self.changed == 0
            && !self.schema.added.iter().any(|c| counts(&c.name))
            && !self.schema.removed.iter().any(|c| counts(&c.name))
            && !self
                .schema
                .retyped
                .iter()
                .any(|r| r.family_changed && counts(&r.name))
    }
}

/// Detail rows, as Arrow batches.
#[derive(Debug, Clone)]
pub struct DiffDetails {
    /// Added rows (after schema, plus `_row`, their 0-based row number in the after table).
    pub added: RecordBatch,
    /// Removed rows (before schema, plus `_row`, their row number in the before table).
    pub removed: RecordBatch,
    /// Changed cells: key columns (as in the after table), `column`, `old`, `new` (both
    /// formatted as text), in after-row order, then column name order.
    pub changed: RecordBatch,
}

/// A complete diff.
#[derive(Debug, Clone)]
pub struct Diff {
    /// Counts, schema diff, statistics.
    pub summary: DiffSummary,
    /// The detail rows (empty when `summary.summary_only`).
    pub details: DiffDetails,
    /// Fingerprint and row hashes of the before table.
    pub before: Fingerprinted,
    /// Fingerprint and row hashes of the after table.
    pub after: Fingerprinted,
}

/// Pass 1 result for one side.
struct Scanned {
    fingerprinted: Fingerprinted,
    /// (key hash, compare hash, row) per row; key hash is 0 for a multiset diff.
    entries: Vec<Entry>,
    stats: Vec<ColumnStats>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    key: u128,
    cmp: u128,
    row: u64,
}

fn truncate(h: &Hash) -> u128 {
    u128::from_le_bytes(h.0[..16].try_into().expect("16 bytes"))
}

/// The columns a diff compares: in both tables, not ignored, not key; in name order.
fn compared_columns(before: &Schema, after: &Schema, config: &DiffConfig) -> Vec<String> {
    let after_names: BTreeSet<&str> = after.fields().iter().map(|f| f.name().as_str()).collect();
    let mut names: Vec<String> = before
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| after_names.contains(n.as_str()))
        .filter(|n| !config.ignore_columns.contains(n) && !config.key.contains(n))
        .collect();
    names.sort();
    names
}

/// What is already known of a diff's before table (when it was stored as a step): its
/// fingerprint, row hashes, key hashes under `key`, and statistics in column order. Pass 1
/// then takes them instead of reading and hashing the table again. The caller vouches that
/// they are of that very table (a server checks the row table against the step's record);
/// the diff checks only that they fit its schema and configuration.
#[derive(Debug, Clone)]
pub struct Known {
    /// The fingerprint, its row hashes and (keyed by `key`) key hashes.
    pub fingerprinted: Fingerprinted,
    /// The key columns the key hashes are of (empty when there are none).
    pub key: Vec<String>,
    /// Per-column statistics, in the table's column order.
    pub stats: Vec<ColumnStats>,
}

/// Diffs `before` against `after`. Each side's key hashes are not kept (`key_hashes` is
/// `None`): a diff matches rows on a shorter form of them, and the full ones, 32 bytes a row,
/// only serve a step's row table ([`diff_known`] keeps them).
pub fn diff(
    before: &dyn BatchSource,
    after: &dyn BatchSource,
    config: &DiffConfig,
) -> Result<Diff> {
    diff_sides(before, None, after, config, false)
}

/// [`diff`] for recording a step: it keeps each side's key hashes (for its row table), and
/// takes pass 1 of the before side from `known` when it fits this diff: the same key (with
/// its key hashes), the table's own schema, and a comparison on whole rows (no column
/// ignored, none added or dropped). Otherwise the before table is scanned as usual.
pub fn diff_known(
    before: &dyn BatchSource,
    known: Option<Known>,
    after: &dyn BatchSource,
    config: &DiffConfig,
) -> Result<Diff> {
    diff_sides(before, known, after, config, true)
}

fn diff_sides(
    before: &dyn BatchSource,
    known: Option<Known>,
    after: &dyn BatchSource,
    config: &DiffConfig,
    keep_keys: bool,
) -> Result<Diff> {
    config.validate()?;
    let (bs, as_) = (before.schema(), after.schema());
    for (schema, side) in [(&bs, Side::Before), (&as_, Side::After)] {
        crate::fingerprint::check_schema(schema)?;
        for k in &config.key {
            if schema.index_of(k).is_err() {
                return Err(Error::MissingKey {
                    column: k.clone(),
                    side,
                    available: column_list(schema),
                });
            }
        }
        // The detail tables' own columns: `_row` beside every column of added and removed
        // rows, `column`, `old` and `new` beside the key in changed cells.
        let reserved = |what, column: &str| Error::ReservedName {
            what,
            column: column.to_string(),
            side,
        };
        if schema.index_of(ROW_NUMBER).is_ok() {
            return Err(reserved("column", ROW_NUMBER));
        }
        if let Some(k) = config
            .key
            .iter()
            .find(|k| CHANGE_COLUMNS.contains(&k.as_str()))
        {
            return Err(reserved("key column", k));
        }
    }
    for ignored in &config.ignore_columns {
        if bs.index_of(ignored).is_err() && as_.index_of(ignored).is_err() {
            return Err(Error::InvalidConfig(format!(
                "ignored column `{ignored}` is in neither table"
            )));
        }
    }
    let compared = compared_columns(&bs, &as_, config);
    let schema = schema_diff(&bs, &as_);

    let known = known.filter(|k| fits(k, &bs, config, &compared));
    let (b, a) = par::join(
        || match known {
            Some(k) => Ok(scanned_from(k)),
            None => scan(before, Side::Before, config, &compared, keep_keys),
        },
        || scan(after, Side::After, config, &compared, keep_keys),
    );
    let (b, a) = (b?, a?);
    let matched = if config.key.is_empty() {
        match_multiset(&b.entries, &a.entries)
    } else {
        let m = match_keys(b.entries, a.entries, config.chunk_rows);
        if let Some((side, rows, count)) = m.duplicates.clone() {
            let source = if side == Side::Before { before } else { after };
            return Err(duplicate_error(source, side, &config.key, &rows, count));
        }
        m
    };
    let rows_before = b.fingerprinted.fingerprint.rows;
    let rows_after = a.fingerprinted.fingerprint.rows;
    let mut summary = DiffSummary {
        key: config.key.clone(),
        rows_before,
        rows_after,
        added: matched.added.len() as u64,
        removed: matched.removed.len() as u64,
        changed: 0,
        unchanged: matched.unchanged,
        within_tolerance: 0,
        compared_columns: compared.clone(),
        columns: compared
            .iter()
            .map(|n| ColumnChanges {
                name: n.clone(),
                changed: 0,
                within_tolerance: 0,
            })
            .collect(),
        schema,
        stats: stats_pairs(&bs, b.stats, &as_, a.stats),
        summary_only: false,
        details_truncated: false,
    };

    // Pass 2: compare the candidate pairs cell by cell, a group at a time; keep the rows of
    // the first `max_detail_rows` changed pairs for the details.
    let mut kept_rows = 0usize;
    let mut kept: Vec<KeptRows> = Vec::new();
    for group in matched.candidates.chunks(config.chunk_rows) {
        let cmp = compare_group(before, after, group, &compared, config)?;
        let mut pick: Vec<u64> = Vec::new();
        let mut meta = Vec::new();
        for (i, (pair, cols)) in group.iter().zip(cmp.changed_columns).enumerate() {
            for &c in &cols.changed {
                summary.columns[c].changed += 1;
            }
            for &c in &cols.within_tolerance {
                summary.columns[c].within_tolerance += 1;
            }
            if cols.changed.is_empty() {
                summary.unchanged += 1;
                if !cols.within_tolerance.is_empty() {
                    summary.within_tolerance += 1;
                }
            } else {
                summary.changed += 1;
                if kept_rows < config.max_detail_rows {
                    kept_rows += 1;
                    pick.push(i as u64);
                    meta.push((pair.1, cols.changed));
                }
            }
        }
        if !pick.is_empty() {
            let idx = UInt64Array::from(pick);
            kept.push((
                arrow_select::take::take_record_batch(&cmp.before, &idx)?,
                arrow_select::take::take_record_batch(&cmp.after, &idx)?,
                meta,
            ));
        }
    }
    // Over the rows of either side, a matched pair counted once: at most 1, so the default
    // threshold of 1 never skips the details.
    let differing = summary.added + summary.removed + summary.changed;
    let share = differing as f64 / (differing + summary.unchanged).max(1) as f64;
    summary.summary_only = share > config.summary_only_threshold;
    let max = config.max_detail_rows as u64;
    summary.details_truncated = !summary.summary_only
        && (summary.added > max || summary.removed > max || summary.changed > max);

    let details = if summary.summary_only {
        DiffDetails::empty(&bs, &as_, &config.key)?
    } else {
        let take = config.max_detail_rows;
        let mut added: Vec<u64> = matched.added.iter().copied().take(take).collect();
        let mut removed: Vec<u64> = matched.removed.iter().copied().take(take).collect();
        added.sort_unstable();
        removed.sort_unstable();
        DiffDetails {
            added: with_row_numbers(take_rows(after, &added)?, &added)?,
            removed: with_row_numbers(take_rows(before, &removed)?, &removed)?,
            changed: changed_cells(&bs, &as_, kept, &compared, &config.key)?,
        }
    };
    Ok(Diff {
        summary,
        details,
        before: b.fingerprinted,
        after: a.fingerprinted,
    })
}

impl DiffDetails {
    fn empty(before: &SchemaRef, after: &SchemaRef, key: &[String]) -> Result<DiffDetails> {
        let empty = |s: &SchemaRef| -> Result<RecordBatch> {
            with_row_numbers(RecordBatch::new_empty(Arc::clone(s)), &[])
        };
        Ok(DiffDetails {
            added: empty(after)?,
            removed: empty(before)?,
            changed: RecordBatch::new_empty(changed_schema(after, key)),
        })
    }
}

/// Pass 1: fingerprint, statistics, key and compare hashes of one side.
fn scan(
    source: &dyn BatchSource,
    side: Side,
    config: &DiffConfig,
    compared: &[String],
    keep_keys: bool,
) -> Result<Scanned> {
    let schema = source.schema();
    let mut fp = Fingerprinter::with_distinct(Arc::clone(&schema))?;
    let mut stats = StatsBuilder::new(&schema);
    let keys = if config.key.is_empty() {
        None
    } else {
        Some(RowHasher::keys(&schema, &config.key)?)
    };
    // Compare on the row hash itself when it covers exactly the compared columns and the
    // key (which matches anyway); otherwise hash those columns, which is the row hash of a
    // table of them alone: so both sides compare alike whichever of the two each takes.
    let subset = if row_hash_compares(&schema, config, compared) {
        None
    } else {
        let cols = compared
            .iter()
            .chain(&config.key)
            .map(|n| {
                schema
                    .index_of(n)
                    .expect("compared and key columns are in both")
            })
            .collect();
        Some(RowHasher::subset(&schema, cols)?)
    };

    let rows = source.rows_to_reserve();
    fp.reserve(rows);
    let mut entries: Vec<Entry> = Vec::with_capacity(rows);
    let mut all_keys: Vec<Hash> = Vec::with_capacity(if keep_keys { rows } else { 0 });
    let mut key_hashes: Vec<Hash> = Vec::new();
    let mut cmp_hashes: Vec<Hash> = Vec::new();
    let mut row = 0u64;
    let mut null_keys: BTreeMap<String, (u64, Vec<u64>)> = BTreeMap::new();
    for batch in source.scan()? {
        let batch = batch?;
        let n = batch.num_rows();
        fp.push(&batch)?;
        stats.push(&batch)?;
        if let Some(keys) = &keys {
            for k in &config.key {
                let col = batch.column(schema.index_of(k).expect("checked"));
                if col.logical_null_count() > 0 {
                    let e = null_keys.entry(k.clone()).or_default();
                    let nulls = col.logical_nulls().expect("has nulls");
                    for i in (0..n).filter(|&i| nulls.is_null(i)) {
                        e.0 += 1;
                        if e.1.len() < 5 {
                            e.1.push(row + i as u64);
                        }
                    }
                }
            }
            key_hashes.clear();
            keys.hash_batch(&batch, &mut key_hashes)?;
            if keep_keys {
                all_keys.extend_from_slice(&key_hashes);
            }
        }
        let cmp: &[Hash] = match &subset {
            Some(h) => {
                cmp_hashes.clear();
                h.hash_batch(&batch, &mut cmp_hashes)?;
                &cmp_hashes
            }
            None => fp.last_row_hashes(),
        };
        entries.reserve(n);
        for i in 0..n {
            entries.push(Entry {
                key: if keys.is_some() {
                    truncate(&key_hashes[i])
                } else {
                    0
                },
                cmp: truncate(&cmp[i]),
                row: row + i as u64,
            });
        }
        row += n as u64;
    }
    if let Some((column, (count, rows))) = null_keys.into_iter().next() {
        return Err(Error::NullKeys {
            column,
            side,
            count,
            examples: rows
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let stats = stats.finish(fp.distinct().expect("made with_distinct"));
    let mut fingerprinted = fp.finish();
    if keys.is_some() && keep_keys {
        fingerprinted.key_hashes = Some(all_keys);
    }
    Ok(Scanned {
        fingerprinted,
        entries,
        stats,
    })
}

/// Whether `known` can stand for scanning a before table of schema `schema` in this diff.
fn fits(known: &Known, schema: &Schema, config: &DiffConfig, compared: &[String]) -> bool {
    let f = &known.fingerprinted;
    let keyed = !config.key.is_empty();
    known.key == config.key
        && f.key_hashes.as_ref().map(Vec::len) == keyed.then_some(f.row_hashes.len())
        && f.row_hashes.len() as u64 == f.fingerprint.rows
        && f.fingerprint.schema_hash == crate::fingerprint::schema_hash(schema)
        && known.stats.len() == schema.fields().len()
        && row_hash_compares(schema, config, compared)
}

/// Whether a table's row hash is what the diff compares: the compared columns and the key
/// are all of its columns.
fn row_hash_compares(schema: &Schema, config: &DiffConfig, compared: &[String]) -> bool {
    let all: BTreeSet<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut wanted: BTreeSet<&str> = compared.iter().map(String::as_str).collect();
    wanted.extend(config.key.iter().map(String::as_str));
    wanted == all
}

/// Pass 1's result for a before table, from what is known of it.
fn scanned_from(known: Known) -> Scanned {
    let f = known.fingerprinted;
    let entries = f
        .row_hashes
        .iter()
        .enumerate()
        .map(|(i, h)| Entry {
            key: f.key_hashes.as_ref().map_or(0, |k| truncate(&k[i])),
            cmp: truncate(h),
            row: i as u64,
        })
        .collect();
    Scanned {
        fingerprinted: f,
        entries,
        stats: known.stats,
    }
}

struct Matched {
    /// Row numbers in the after table with no match.
    added: Vec<u64>,
    /// Row numbers in the before table with no match.
    removed: Vec<u64>,
    /// Pairs whose compare hashes are equal.
    unchanged: u64,
    /// (before row, after row) pairs whose compare hashes differ.
    candidates: Vec<(u64, u64)>,
    /// A side with duplicate keys: (side, example rows, rows involved).
    duplicates: Option<(Side, Vec<u64>, u64)>,
}

/// Sort-merge on key hashes, in partitions of at most about `chunk_rows` rows.
fn match_keys(mut before: Vec<Entry>, mut after: Vec<Entry>, chunk_rows: usize) -> Matched {
    let n = before.len().max(after.len());
    let parts = n.div_ceil(chunk_rows).max(1).next_power_of_two();
    let bits = parts.trailing_zeros();
    let part = |e: &Entry| {
        if bits == 0 {
            0
        } else {
            (e.key >> (128 - bits)) as usize
        }
    };
    // Grouped by partition in place: a copy would hold twice the entries' memory.
    let b_starts = crate::fingerprint::distribute(&mut before, parts, part);
    let a_starts = crate::fingerprint::distribute(&mut after, parts, part);
    let mut pairs: Vec<(&mut [Entry], &mut [Entry])> = runs(&mut before, &b_starts)
        .zip(runs(&mut after, &a_starts))
        .collect();
    par::for_each_mut(&mut pairs, |(b, a)| {
        par::join(|| sort_entries(b, bits), || sort_entries(a, bits));
    });
    let results = par::map(&pairs, |(b, a)| merge_keys(b, a));
    let mut m = Matched {
        added: Vec::new(),
        removed: Vec::new(),
        unchanged: 0,
        candidates: Vec::new(),
        duplicates: None,
    };
    for r in results {
        m.added.extend(r.added);
        m.removed.extend(r.removed);
        m.unchanged += r.unchanged;
        m.candidates.extend(r.candidates);
        if let Some((side, rows, count)) = r.duplicates {
            let d = m.duplicates.get_or_insert((side, Vec::new(), 0));
            if d.0 == side {
                d.2 += count;
                d.1.extend(rows);
                d.1.truncate(6);
            }
        }
    }
    m.candidates.sort_unstable();
    m
}

/// Sorts one partition's entries (by key, then compare hash, then row). Their keys are
/// uniform hashes whose top `skip` bits the partition fixed: an MSD radix sort groups them in
/// place (no second buffer: the two sides sort at once) on the next byte, then each group on
/// the byte after, leaving runs of a few entries to sort. A byte at a time, the 256 runs being
/// filled advance through memory in step, where one pass on 16 bits would write all over it.
fn sort_entries(entries: &mut [Entry], skip: u32) {
    const DIGIT: u32 = 8;
    if entries.len() < 64 || skip + DIGIT > 128 {
        entries.sort_unstable();
        return;
    }
    let starts = crate::fingerprint::distribute(entries, 1 << DIGIT, |e| {
        ((e.key << skip) >> (128 - DIGIT)) as usize
    });
    for run in runs(entries, &starts) {
        sort_entries(run, skip + DIGIT);
    }
}

/// The runs of `items` that `starts` (as [`crate::fingerprint::distribute`] returns them)
/// mark, as separate slices.
fn runs<'a, T>(items: &'a mut [T], starts: &[usize]) -> impl Iterator<Item = &'a mut [T]> {
    let mut rest = items;
    starts.windows(2).map(move |w| {
        let (run, tail) = std::mem::take(&mut rest).split_at_mut(w[1] - w[0]);
        rest = tail;
        run
    })
}

fn merge_keys(b: &[Entry], a: &[Entry]) -> Matched {
    let mut m = Matched {
        added: Vec::new(),
        removed: Vec::new(),
        unchanged: 0,
        candidates: Vec::new(),
        duplicates: None,
    };
    for (side, entries) in [(Side::Before, b), (Side::After, a)] {
        let mut rows = Vec::new();
        let mut count = 0u64;
        for w in entries.chunk_by(|x, y| x.key == y.key) {
            if w.len() > 1 {
                count += w.len() as u64;
                if rows.len() < 6 {
                    rows.extend(w.iter().take(2).map(|e| e.row));
                }
            }
        }
        if count > 0 && m.duplicates.is_none() {
            m.duplicates = Some((side, rows, count));
        }
    }
    if m.duplicates.is_some() {
        return m;
    }
    let (mut i, mut j) = (0, 0);
    while i < b.len() && j < a.len() {
        match b[i].key.cmp(&a[j].key) {
            std::cmp::Ordering::Less => {
                m.removed.push(b[i].row);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                m.added.push(a[j].row);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if b[i].cmp == a[j].cmp {
                    m.unchanged += 1;
                } else {
                    m.candidates.push((b[i].row, a[j].row));
                }
                i += 1;
                j += 1;
            }
        }
    }
    m.removed.extend(b[i..].iter().map(|e| e.row));
    m.added.extend(a[j..].iter().map(|e| e.row));
    m
}

/// Multiset diff on compare hashes: a row hash present k times before and l times after
/// counts max(k - l, 0) removed and max(l - k, 0) added.
fn match_multiset(before: &[Entry], after: &[Entry]) -> Matched {
    let sorted = |e: &[Entry]| {
        let mut v: Vec<(u128, u64)> = e.iter().map(|e| (e.cmp, e.row)).collect();
        par::sort(&mut v);
        v
    };
    let (b, a) = (sorted(before), sorted(after));
    let mut m = Matched {
        added: Vec::new(),
        removed: Vec::new(),
        unchanged: 0,
        candidates: Vec::new(),
        duplicates: None,
    };
    let (mut i, mut j) = (0, 0);
    while i < b.len() && j < a.len() {
        match b[i].0.cmp(&a[j].0) {
            std::cmp::Ordering::Less => {
                m.removed.push(b[i].1);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                m.added.push(a[j].1);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                m.unchanged += 1;
                i += 1;
                j += 1;
            }
        }
    }
    m.removed.extend(b[i..].iter().map(|e| e.1));
    m.added.extend(a[j..].iter().map(|e| e.1));
    m
}

/// Takes the given rows (ascending row numbers) from a source, in that order.
pub fn take_rows(source: &dyn BatchSource, rows: &[u64]) -> Result<RecordBatch> {
    debug_assert!(rows.is_sorted());
    let schema = source.schema();
    if rows.is_empty() {
        return Ok(RecordBatch::new_empty(schema));
    }
    let mut parts = Vec::new();
    let mut offset = 0u64;
    let mut next = 0usize;
    for batch in source.scan()? {
        let batch = batch?;
        let end = offset + batch.num_rows() as u64;
        let from = next;
        while next < rows.len() && rows[next] < end {
            next += 1;
        }
        if next > from {
            let idx = UInt64Array::from_iter_values(rows[from..next].iter().map(|r| r - offset));
            parts.push(arrow_select::take::take_record_batch(&batch, &idx)?);
        }
        offset = end;
        if next == rows.len() {
            break;
        }
    }
    Ok(arrow_select::concat::concat_batches(&schema, &parts)?)
}

/// Takes rows in any order: sorts, takes, then restores the requested order.
fn take_rows_unordered(source: &dyn BatchSource, rows: &[u64]) -> Result<RecordBatch> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| rows[i]);
    let sorted: Vec<u64> = order.iter().map(|&i| rows[i]).collect();
    let taken = take_rows(source, &sorted)?;
    // taken[k] is rows[order[k]]; put it back at position order[k].
    let mut inverse = vec![0u64; rows.len()];
    for (k, &i) in order.iter().enumerate() {
        inverse[i] = k as u64;
    }
    Ok(arrow_select::take::take_record_batch(
        &taken,
        &UInt64Array::from(inverse),
    )?)
}

/// The column of added and removed rows giving their row numbers.
pub const ROW_NUMBER: &str = "_row";
/// The columns of changed cells beside the key: the column, its old and new value.
pub const CHANGE_COLUMNS: [&str; 3] = ["column", "old", "new"];

fn with_row_numbers(batch: RecordBatch, rows: &[u64]) -> Result<RecordBatch> {
    let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(ROW_NUMBER, DataType::UInt64, false)));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(UInt64Array::from(rows.to_vec())));
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Rows of changed pairs kept for the details: before rows, after rows, and per row its
/// after-row number and changed columns.
type KeptRows = (RecordBatch, RecordBatch, Vec<(u64, Vec<usize>)>);

struct RowComparison {
    changed: Vec<usize>,
    within_tolerance: Vec<usize>,
}

struct GroupComparison {
    changed_columns: Vec<RowComparison>,
    /// The group's before rows, in group order.
    before: RecordBatch,
    /// The group's after rows, in group order.
    after: RecordBatch,
}

/// Compares a group of (before row, after row) pairs on the compared columns.
fn compare_group(
    before: &dyn BatchSource,
    after: &dyn BatchSource,
    group: &[(u64, u64)],
    compared: &[String],
    config: &DiffConfig,
) -> Result<GroupComparison> {
    let b_rows: Vec<u64> = group.iter().map(|p| p.0).collect();
    let a_rows: Vec<u64> = group.iter().map(|p| p.1).collect();
    let (b, a) = par::join(
        || take_rows_unordered(before, &b_rows),
        || take_rows_unordered(after, &a_rows),
    );
    let (b, a) = (b?, a?);
    let per_column = par::map(compared, |name| -> Result<(Vec<bool>, Vec<bool>)> {
        let bc = b.column(b.schema().index_of(name)?);
        let ac = a.column(a.schema().index_of(name)?);
        compare_column(name, bc, ac, config)
    });
    let mut rows: Vec<RowComparison> = (0..group.len())
        .map(|_| RowComparison {
            changed: Vec::new(),
            within_tolerance: Vec::new(),
        })
        .collect();
    for (c, result) in per_column.into_iter().enumerate() {
        let (changed, tolerated) = result?;
        for (i, r) in rows.iter_mut().enumerate() {
            if changed[i] {
                r.changed.push(c);
            } else if tolerated[i] {
                r.within_tolerance.push(c);
            }
        }
    }
    Ok(GroupComparison {
        changed_columns: rows,
        before: b,
        after: a,
    })
}

/// Per row: (changed, equal only within tolerance). Equality is equality of the canonical
/// encodings (so NaN equals NaN and null equals null); floats may then be within tolerance.
fn compare_column(
    name: &str,
    b: &ArrayRef,
    a: &ArrayRef,
    config: &DiffConfig,
) -> Result<(Vec<bool>, Vec<bool>)> {
    let n = b.len();
    let (eb, ea) = (
        canon::encoder(name, b.as_ref())?,
        canon::encoder(name, a.as_ref())?,
    );
    let (mut bb, mut ab) = (Vec::new(), Vec::new());
    let mut changed = vec![false; n];
    for (i, c) in changed.iter_mut().enumerate() {
        bb.clear();
        ab.clear();
        eb.encode(i, &mut bb);
        ea.encode(i, &mut ab);
        *c = bb != ab;
    }
    let mut tolerated = vec![false; n];
    let floats = Family::of(b.data_type()) == Some(Family::Float)
        && Family::of(a.data_type()) == Some(Family::Float);
    if config.tolerant() && floats && changed.iter().any(|&c| c) {
        let bf = arrow_cast::cast(b, &DataType::Float64)?;
        let af = arrow_cast::cast(a, &DataType::Float64)?;
        let (bf, af) = (
            bf.as_any()
                .downcast_ref::<arrow_array::Float64Array>()
                .expect("cast"),
            af.as_any()
                .downcast_ref::<arrow_array::Float64Array>()
                .expect("cast"),
        );
        for i in 0..n {
            if changed[i] && bf.is_valid(i) && af.is_valid(i) {
                let (x, y) = (bf.value(i), af.value(i));
                let d = (x - y).abs();
                // An infinity is within no tolerance of anything else (the differences
                // would be infinite or NaN, and inf <= rel_tol * inf).
                let finite = x.is_finite() && y.is_finite();
                if finite && (d <= config.abs_tol || d <= config.rel_tol * x.abs().max(y.abs())) {
                    changed[i] = false;
                    tolerated[i] = true;
                }
            }
        }
    }
    Ok((changed, tolerated))
}

fn changed_schema(after: &SchemaRef, key: &[String]) -> SchemaRef {
    let mut fields: Vec<Field> = key
        .iter()
        .filter_map(|k| after.field_with_name(k).ok())
        .map(|f| f.clone().with_nullable(false))
        .collect();
    let [column, old, new] = CHANGE_COLUMNS;
    fields.push(Field::new(column, DataType::Utf8, false));
    fields.push(Field::new(old, DataType::Utf8, true));
    fields.push(Field::new(new, DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

/// Builds the changed-cells batch, one row per changed cell, in after-row order, from the
/// kept groups: (before rows, after rows, (after row number, changed columns) per row).
fn changed_cells(
    before_schema: &SchemaRef,
    after_schema: &SchemaRef,
    kept: Vec<KeptRows>,
    compared: &[String],
    key: &[String],
) -> Result<RecordBatch> {
    let schema = changed_schema(after_schema, key);
    let meta: Vec<(u64, Vec<usize>)> = kept.iter().flat_map(|k| k.2.iter().cloned()).collect();
    if meta.is_empty() {
        return Ok(RecordBatch::new_empty(schema));
    }
    let b = arrow_select::concat::concat_batches(before_schema, kept.iter().map(|k| &k.0))?;
    let a = arrow_select::concat::concat_batches(after_schema, kept.iter().map(|k| &k.1))?;
    // One output row per changed cell, ordered by after row, then column name.
    let mut order: Vec<usize> = (0..meta.len()).collect();
    order.sort_by_key(|&i| meta[i].0);
    let mut which_row = Vec::new();
    let mut which_col = Vec::new();
    for &i in &order {
        for &c in &meta[i].1 {
            which_row.push(i as u64);
            which_col.push(c);
        }
    }
    let idx = UInt64Array::from(which_row.clone());
    let mut columns: Vec<ArrayRef> = Vec::new();
    for k in key {
        columns.push(arrow_select::take::take(
            a.column(a.schema().index_of(k)?),
            &idx,
            None,
        )?);
    }
    let formatted = |batch: &RecordBatch| -> Result<Vec<Vec<Option<String>>>> {
        compared
            .iter()
            .map(|name| format_column(batch.column(batch.schema().index_of(name)?)))
            .collect()
    };
    let (bf, af) = (formatted(&b)?, formatted(&a)?);
    let names: Vec<&str> = which_col.iter().map(|&c| compared[c].as_str()).collect();
    let old: Vec<Option<&str>> = which_row
        .iter()
        .zip(&which_col)
        .map(|(&r, &c)| bf[c][r as usize].as_deref())
        .collect();
    let new: Vec<Option<&str>> = which_row
        .iter()
        .zip(&which_col)
        .map(|(&r, &c)| af[c][r as usize].as_deref())
        .collect();
    columns.push(Arc::new(StringArray::from(names)));
    columns.push(Arc::new(StringArray::from(old)));
    columns.push(Arc::new(StringArray::from(new)));
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Formats every cell of a column as text (`None` for null), as Arrow displays it.
/// Timestamps with a time zone are shown as their UTC instant with a `Z` suffix (the zone
/// belongs to the schema; naming it would need the time-zone database in every build).
pub fn format_column(array: &ArrayRef) -> Result<Vec<Option<String>>> {
    let (array, suffix) = match array.data_type() {
        DataType::Timestamp(unit, Some(_)) => (without_zone(array, *unit), "Z"),
        _ => (Arc::clone(array), ""),
    };
    let options = arrow_cast::display::FormatOptions::default();
    let f = arrow_cast::display::ArrayFormatter::try_new(array.as_ref(), &options)?;
    Ok((0..array.len())
        .map(|i| array.is_valid(i).then(|| format!("{}{suffix}", f.value(i))))
        .collect())
}

fn without_zone(array: &ArrayRef, unit: arrow_schema::TimeUnit) -> ArrayRef {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    use arrow_schema::TimeUnit as U;
    match unit {
        U::Second => Arc::new(
            array
                .as_primitive::<TimestampSecondType>()
                .clone()
                .with_timezone_opt(None::<&str>),
        ),
        U::Millisecond => Arc::new(
            array
                .as_primitive::<TimestampMillisecondType>()
                .clone()
                .with_timezone_opt(None::<&str>),
        ),
        U::Microsecond => Arc::new(
            array
                .as_primitive::<TimestampMicrosecondType>()
                .clone()
                .with_timezone_opt(None::<&str>),
        ),
        U::Nanosecond => Arc::new(
            array
                .as_primitive::<TimestampNanosecondType>()
                .clone()
                .with_timezone_opt(None::<&str>),
        ),
    }
}

fn duplicate_error(
    source: &dyn BatchSource,
    side: Side,
    key: &[String],
    rows: &[u64],
    count: u64,
) -> Error {
    let mut rows = rows.to_vec();
    rows.sort_unstable();
    rows.dedup();
    let examples = match take_rows(source, &rows) {
        Ok(batch) => {
            let cols: Vec<Vec<Option<String>>> = key
                .iter()
                .filter_map(|k| batch.schema().index_of(k).ok())
                .filter_map(|i| format_column(batch.column(i)).ok())
                .collect();
            let mut seen = BTreeSet::new();
            (0..batch.num_rows())
                .map(|r| {
                    let parts: Vec<String> = key
                        .iter()
                        .zip(&cols)
                        .map(|(k, c)| format!("{k}={}", c[r].as_deref().unwrap_or("null")))
                        .collect();
                    parts.join(", ")
                })
                .filter(|s| seen.insert(s.clone()))
                .take(3)
                .map(|s| format!("({s})"))
                .collect::<Vec<_>>()
                .join("; ")
        }
        Err(e) => format!("(could not read the rows: {e})"),
    };
    Error::DuplicateKeys {
        key: key.join(", "),
        side,
        count,
        examples,
    }
}

/// The schema diff, by column name.
pub fn schema_diff(before: &Schema, after: &Schema) -> SchemaDiff {
    let col = |f: &Field| ColumnType {
        name: f.name().clone(),
        data_type: canon::type_name(f.data_type()),
        family: Family::of(f.data_type()).unwrap_or(Family::Null),
    };
    let mut d = SchemaDiff::default();
    for f in after.fields() {
        if before.field_with_name(f.name()).is_err() {
            d.added.push(col(f));
        }
    }
    for f in before.fields() {
        match after.field_with_name(f.name()) {
            Err(_) => d.removed.push(col(f)),
            Ok(g) if f.data_type() != g.data_type() => d.retyped.push(Retyped {
                name: f.name().clone(),
                before: canon::type_name(f.data_type()),
                after: canon::type_name(g.data_type()),
                family_changed: Family::of(f.data_type()) != Family::of(g.data_type()),
            }),
            Ok(_) => {}
        }
    }
    let common = |s: &Schema, other: &Schema| -> Vec<String> {
        s.fields()
            .iter()
            .filter(|f| other.field_with_name(f.name()).is_ok())
            .map(|f| f.name().clone())
            .collect()
    };
    d.reordered = common(before, after) != common(after, before);
    d
}

fn stats_pairs(
    bs: &Schema,
    b: Vec<ColumnStats>,
    as_: &Schema,
    a: Vec<ColumnStats>,
) -> Vec<StatsPair> {
    let mut map: BTreeMap<String, StatsPair> = BTreeMap::new();
    for (f, s) in bs.fields().iter().zip(b) {
        map.entry(f.name().clone())
            .or_insert_with(|| StatsPair {
                name: f.name().clone(),
                before: None,
                after: None,
            })
            .before = Some(s);
    }
    for (f, s) in as_.fields().iter().zip(a) {
        map.entry(f.name().clone())
            .or_insert_with(|| StatsPair {
                name: f.name().clone(),
                before: None,
                after: None,
            })
            .after = Some(s);
    }
    map.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn entries_sort_as_a_plain_sort_would() {
        let h = |i: u64| truncate(&Hash(*blake3::hash(&i.to_le_bytes()).as_bytes()));
        // Uniform keys, keys repeated (duplicate keys must end up side by side), and keys
        // sharing their top bits, under a partition that fixed the first 0 or 3 bits.
        for skip in [0u32, 3] {
            let fixed = |k: u128| {
                if skip == 0 {
                    k
                } else {
                    (k >> skip) | (5u128 << 125)
                }
            };
            let mut entries: Vec<Entry> = (0..20_000u64)
                .map(|i| Entry {
                    key: fixed(h(i % 15_000)),
                    cmp: h(i + 1_000_000),
                    row: i,
                })
                .collect();
            entries.extend((0..3_000u64).map(|i| Entry {
                key: fixed(h(7) ^ (i as u128)),
                cmp: 0,
                row: 50_000 + i,
            }));
            let mut want = entries.clone();
            want.sort_unstable();
            sort_entries(&mut entries, skip);
            assert_eq!(entries, want, "skip {skip}");
        }
    }

    #[test]
    fn partitions_match_as_one_partition_does() {
        let h = |i: u64| truncate(&Hash(*blake3::hash(&i.to_le_bytes()).as_bytes()));
        // Keys 0..30k before, 10k..40k after; every third matched key has another row.
        let side = |keys: std::ops::Range<u64>, changed: bool| -> Vec<Entry> {
            keys.enumerate()
                .map(|(row, k)| Entry {
                    key: h(k),
                    cmp: h(1_000_000 + k + u64::from(changed && k % 3 == 0)),
                    row: row as u64,
                })
                .collect()
        };
        let whole = match_keys(side(0..30_000, false), side(10_000..40_000, true), 1 << 20);
        assert_eq!((whole.added.len(), whole.removed.len()), (10_000, 10_000));
        assert_eq!((whole.unchanged, whole.candidates.len()), (13_334, 6_666));
        for chunk_rows in [1_000, 4_096, 29_999] {
            let parts = match_keys(
                side(0..30_000, false),
                side(10_000..40_000, true),
                chunk_rows,
            );
            let sorted = |mut v: Vec<u64>| {
                v.sort_unstable();
                v
            };
            assert_eq!(
                sorted(parts.added),
                sorted(whole.added.clone()),
                "{chunk_rows}"
            );
            assert_eq!(
                sorted(parts.removed),
                sorted(whole.removed.clone()),
                "{chunk_rows}"
            );
            assert_eq!(parts.unchanged, whole.unchanged, "{chunk_rows}");
            assert_eq!(parts.candidates, whole.candidates, "{chunk_rows}");
            assert!(parts.duplicates.is_none());
        }
    }
}
