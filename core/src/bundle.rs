//! Bundle v1: one zip file that carries a run's records, seal, per-step row tables, diff
//! summaries, statistics and diff details, and [`verify`], which re-checks all of it with
//! nothing but this crate (natively, or in a browser through wasm).
//!
//! docs/spec/bundle-v1.md is the normative description of the layout and the checks.

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::sync::Arc;

use arrow_array::{Array, FixedSizeBinaryArray, RecordBatch};
use arrow_buffer::Buffer;
use arrow_schema::{DataType, Field, Schema};

use crate::diff::DiffSummary;
use crate::error::{Error, Result};
use crate::fingerprint::{self, ColumnFingerprint, Fingerprint, order_root};
use crate::hash::{Hash, Keyed};
use crate::record::{self, StepRecord, diff_summary_hash, row_table_hash, stats_digest};
use crate::sign::{Seal, verify_seal};
use crate::stats::ColumnStats;
use crate::table::BatchSource;

/// The version string of bundles.
pub const BUNDLE_SPEC: &str = "pipeproof-bundle-v1";
/// The version of a bundle whose manifest lists redacted steps ([`Manifest::redacted`]):
/// v1 and that list. A bundle without one is written v1, so its bytes are those earlier
/// builds wrote, and a build that reads only v1 says it does not know the version rather
/// than taking the missing details for tampering.
pub const BUNDLE_SPEC_V2: &str = "pipeproof-bundle-v2";
/// The version of a bundle whose manifest lists steps with redacted statistics
/// ([`Manifest::statistics_redacted`]): v2 and that list. Written only then, for the same
/// reason as v2.
pub const BUNDLE_SPEC_V3: &str = "pipeproof-bundle-v3";

/// The largest bundle member read (guards against zip bombs).
const MAX_MEMBER_BYTES: u64 = 16 << 30;

/// A step's key hashes (for keyed diffs) and row hashes, in row order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowTable {
    /// Key hashes, when the step was diffed by key.
    pub key_hashes: Option<Vec<Hash>>,
    /// Row hashes.
    pub row_hashes: Vec<Hash>,
}

impl RowTable {
    /// The table's hash, as recorded in [`StepRecord::row_table_hash`].
    pub fn hash(&self) -> Hash {
        row_table_hash(self.key_hashes.as_deref(), &self.row_hashes)
    }

    /// Encodes as an Arrow IPC file: `row_hash` and, if present, `key_hash`, both
    /// fixed_size_binary[32].
    pub fn to_ipc(&self) -> Result<Vec<u8>> {
        let rows = self.row_hashes.len() * (1 + usize::from(self.key_hashes.is_some()));
        let mut out = Vec::with_capacity(rows * 32 + 4096);
        self.write_ipc(&mut out)?;
        Ok(out)
    }

    /// [`RowTable::to_ipc`], written to `w` as it is encoded.
    pub fn write_ipc(&self, w: impl Write) -> Result<()> {
        let col = |hashes: &[Hash]| Buffer::from_vec(flat(hashes));
        write_hash_columns(
            col(&self.row_hashes),
            self.key_hashes.as_deref().map(col),
            w,
        )
    }

    /// Decodes [`RowTable::to_ipc`]'s output.
    pub fn from_ipc(bytes: Vec<u8>) -> Result<RowTable> {
        Ok(RowBytes::from_ipc(bytes)?.table())
    }
}

/// Hashes back to back, 32 bytes each.
fn flat(hashes: &[Hash]) -> Vec<u8> {
    let mut flat = Vec::with_capacity(hashes.len() * 32);
    for h in hashes {
        flat.extend_from_slice(&h.0);
    }
    flat
}

/// [`RowTable::write_ipc`] of a row table given as its columns' bytes, hashes back to back.
fn write_hash_columns(rows: Buffer, keys: Option<Buffer>, w: impl Write) -> Result<()> {
    let col = |bytes: Buffer| -> Result<Arc<dyn Array>> {
        Ok(Arc::new(FixedSizeBinaryArray::try_new(32, bytes, None)?))
    };
    let mut fields = vec![Field::new("row_hash", DataType::FixedSizeBinary(32), false)];
    let mut columns = vec![col(rows)?];
    if let Some(keys) = keys {
        fields.push(Field::new("key_hash", DataType::FixedSizeBinary(32), false));
        columns.push(col(keys)?);
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    write_batch_ipc(&batch, w)
}

/// A row table where its hashes lie in one buffer: as read, the bytes of its `rows.arrow`
/// member, which the decoded columns slice. A step is verified from these without copying
/// them: hashed in row order, written again for the comparison with the canonical form,
/// then sorted where they are into content order ([`RowBytes::into_sorted`]). A copy of
/// them, the decoder's or a [`RowTable`]'s, would be one more step's worth of memory at
/// the peak, beside the previous step's sorted hashes.
struct RowBytes {
    buffer: Buffer,
    /// Where the row hashes lie in `buffer`.
    rows: Range<usize>,
    /// Where the key hashes lie, when the table has them.
    keys: Option<Range<usize>>,
}

impl RowBytes {
    /// Decodes [`RowTable::to_ipc`]'s output, leaving the hashes in `bytes`.
    fn from_ipc(bytes: Vec<u8>) -> Result<RowBytes> {
        let buffer = Buffer::from_vec(bytes);
        let batch = crate::decode::decode_arrow_file(buffer.clone())?.concat()?;
        let column = |name: &str| -> Result<Option<&FixedSizeBinaryArray>> {
            let Some(col) = batch.column_by_name(name) else {
                return Ok(None);
            };
            let col = col
                .as_any()
                .downcast_ref::<FixedSizeBinaryArray>()
                .filter(|c| c.value_length() == 32)
                .ok_or_else(|| Error::Verification(format!("`{name}` is not 32-byte binary")))?;
            Ok(Some(col))
        };
        let rows = column("row_hash")?
            .ok_or_else(|| Error::Verification("row table has no `row_hash` column".into()))?;
        let keys = column("key_hash")?;
        fn hashes(col: &FixedSizeBinaryArray) -> &[u8] {
            &col.value_data()[..col.len() * 32]
        }
        // Where a column's hashes lie in `buffer`; `None` when they are not in it (the
        // decoder made them anew).
        let within = |col: &FixedSizeBinaryArray| {
            let start = (hashes(col).as_ptr() as usize).checked_sub(buffer.as_ptr() as usize)?;
            let range = start..start + col.len() * 32;
            (range.end <= buffer.len()).then_some(range)
        };
        let placed = match (within(rows), keys.map(within)) {
            (Some(r), None) => Some((r, None)),
            // Sorted in place, each column needs bytes of its own.
            (Some(r), Some(Some(k))) if r.end <= k.start || k.end <= r.start => Some((r, Some(k))),
            _ => None,
        };
        Ok(match placed {
            Some((rows, keys)) => RowBytes { buffer, rows, keys },
            None => RowBytes::copied(hashes(rows), keys.map(hashes)),
        })
    }

    /// A copy of a table's hashes.
    fn of_table(t: &RowTable) -> RowBytes {
        let keys = t.key_hashes.as_deref().map(flat);
        RowBytes::copied(&flat(&t.row_hashes), keys.as_deref())
    }

    /// Row and key hashes' bytes, copied into one buffer.
    fn copied(rows: &[u8], keys: Option<&[u8]>) -> RowBytes {
        let mut buffer = Vec::with_capacity(rows.len() + keys.map_or(0, <[u8]>::len));
        buffer.extend_from_slice(rows);
        let keys = keys.map(|k| {
            buffer.extend_from_slice(k);
            rows.len()..buffer.len()
        });
        RowBytes {
            buffer: Buffer::from_vec(buffer),
            rows: 0..rows.len(),
            keys,
        }
    }

    /// The row hashes, in row order.
    fn rows(&self) -> &[[u8; 32]] {
        self.buffer[self.rows.clone()].as_chunks().0
    }

    /// The key hashes, in row order.
    fn keys(&self) -> Option<&[[u8; 32]]> {
        (self.keys.clone()).map(|k| self.buffer[k].as_chunks().0)
    }

    /// The table ([`RowTable`]), copied.
    fn table(&self) -> RowTable {
        let hashes = |h: &[[u8; 32]]| h.iter().copied().map(Hash).collect();
        RowTable {
            key_hashes: self.keys().map(hashes),
            row_hashes: hashes(self.rows()),
        }
    }

    /// Writes the table as [`RowTable::write_ipc`] does.
    fn write_ipc(&self, w: impl Write) -> Result<()> {
        let col = |r: &Range<usize>| self.buffer.slice_with_length(r.start, r.len());
        write_hash_columns(col(&self.rows), self.keys.as_ref().map(col), w)
    }

    /// The hashes sorted into content order, each column where it lies.
    fn into_sorted(self) -> SortedRows {
        // The buffer is no one else's by now: the columns decoded from it were dropped.
        let mut bytes = (self.buffer.into_vec::<u8>()).unwrap_or_else(|b| b.to_vec());
        for range in std::iter::once(&self.rows).chain(&self.keys) {
            fingerprint::sort_content_of(bytes[range.clone()].as_chunks_mut::<32>().0);
        }
        SortedRows {
            bytes,
            content: self.rows,
            keys: self.keys,
        }
    }
}

/// One batch as an Arrow IPC file.
pub fn batch_to_ipc(batch: &RecordBatch) -> Result<Vec<u8>> {
    // Room for the body up front: a row table is tens of MB, which growing by doubling
    // would copy several times over.
    let mut out = Vec::with_capacity(batch.get_array_memory_size() + 4096);
    write_batch_ipc(batch, &mut out)?;
    Ok(out)
}

/// [`batch_to_ipc`], written to `w` as it is encoded.
pub fn write_batch_ipc(batch: &RecordBatch, w: impl Write) -> Result<()> {
    let mut w = arrow_ipc::writer::FileWriter::try_new(w, &batch.schema())?;
    w.write(batch)?;
    w.finish()?;
    Ok(())
}

/// The batches of an Arrow IPC file, concatenated; the arrays slice `bytes` (no copy: a
/// stored row table or a bundle member is tens of MB).
pub fn batch_from_ipc(bytes: Vec<u8>) -> Result<RecordBatch> {
    let table = crate::decode::decode(bytes::Bytes::from(bytes), crate::Format::ArrowFile)?;
    table.concat()
}

/// The diff details of a step.
#[derive(Debug, Clone)]
pub struct Details {
    /// Added rows.
    pub added: RecordBatch,
    /// Removed rows.
    pub removed: RecordBatch,
    /// Changed cells.
    pub changed: RecordBatch,
}

impl Details {
    /// The hash recorded in [`StepRecord::details_hash`]: the schema hashes and order roots
    /// of the three detail tables, so any changed detail cell changes it.
    pub fn hash(&self) -> Result<Hash> {
        let mut buf = Vec::new();
        for batch in [&self.added, &self.removed, &self.changed] {
            let mut rows = Vec::with_capacity(batch.num_rows());
            fingerprint::RowHasher::rows(&batch.schema())?.hash_batch(batch, &mut rows)?;
            buf.extend_from_slice(&fingerprint::schema_hash(&batch.schema()).0);
            buf.extend_from_slice(&order_root(&rows).0);
        }
        Ok(Keyed::new(record::context::DETAILS, &[]).hash(&buf))
    }

    /// From a diff's details.
    pub fn from_diff(d: &crate::diff::DiffDetails) -> Details {
        Details {
            added: d.added.clone(),
            removed: d.removed.clone(),
            changed: d.changed.clone(),
        }
    }
}

/// What a bundle says about its run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunInfo {
    /// Run id.
    pub id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Labels.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Code version.
    pub code_version: Option<String>,
    /// Run parameters.
    #[serde(default)]
    pub params: serde_json::Value,
    /// open, sealed or failed.
    pub status: String,
    /// Why a failed run failed, as its client said; absent otherwise (and from bundles
    /// exported before it was carried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the run was created.
    pub created_at: String,
    /// When it was sealed.
    pub sealed_at: Option<String>,
}

impl RunInfo {
    /// What a bundle carries of a run as the API shows it.
    pub fn of(run: &crate::api::Run) -> RunInfo {
        RunInfo {
            id: run.id.clone(),
            pipeline: run.pipeline.clone(),
            labels: run.labels.clone(),
            code_version: run.code_version.clone(),
            params: run.params.clone(),
            status: run.status.as_str().into(),
            error: run.error.clone(),
            created_at: run.created_at.clone(),
            sealed_at: run.sealed_at.clone(),
        }
    }

    /// The hash a seal v2 signs: of this object's canonical JSON, every member as the
    /// manifest has it, under the context `pipeproof run v1`.
    pub fn hash(&self) -> Hash {
        crate::record::digest(crate::record::context::RUN, self)
    }
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// `pipeproof-bundle-v1`.
    pub spec: String,
    /// The run.
    pub run: RunInfo,
    /// The step records, in order.
    pub records: Vec<StepRecord>,
    /// The seal, when the run is sealed.
    pub seal: Option<Seal>,
    /// The steps whose diff details were redacted from the store, in step order: the
    /// bundle holds no detail members for them. Absent when there are none (and from
    /// bundles of earlier builds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<RedactedStep>,
    /// The steps whose column statistics were redacted from the store, in step order: the
    /// bundle holds no `stats.json` for them (their records keep the digest). Absent when
    /// there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statistics_redacted: Vec<RedactedStep>,
}

impl Manifest {
    /// The bundle version for a manifest with these redactions: of details (`redacted`)
    /// and of statistics (`statistics`).
    pub fn spec_for(redacted: &[RedactedStep], statistics: &[RedactedStep]) -> &'static str {
        if !statistics.is_empty() {
            BUNDLE_SPEC_V3
        } else if !redacted.is_empty() {
            BUNDLE_SPEC_V2
        } else {
            BUNDLE_SPEC
        }
    }

    /// The redaction of step `i`'s statistics, when the manifest lists one.
    pub fn statistics_redaction(&self, i: usize) -> Option<&RedactedStep> {
        statistics_redaction_in(&self.statistics_redacted, i)
    }

    /// For a step with a diff: the redaction of statistics its summary held (its own, or
    /// the previous step's, its `before` side), when the manifest lists one. The bundle then
    /// holds no `diff.json` for the step: a summary without them would no longer hash to
    /// what its record binds, and nothing would bind what it says.
    pub fn summary_redaction(&self, i: usize) -> Option<&RedactedStep> {
        summary_redaction_in(&self.statistics_redacted, i)
    }
}

/// [`Manifest::statistics_redaction`] in a list of statistics redactions.
fn statistics_redaction_in(list: &[RedactedStep], i: usize) -> Option<&RedactedStep> {
    list.iter().find(|r| r.step == i as u64)
}

/// [`Manifest::summary_redaction`] in a list of statistics redactions.
fn summary_redaction_in(list: &[RedactedStep], i: usize) -> Option<&RedactedStep> {
    (statistics_redaction_in(list, i)).or_else(|| {
        i.checked_sub(1)
            .and_then(|p| statistics_redaction_in(list, p))
    })
}

/// A step of [`Manifest::redacted`] or [`Manifest::statistics_redacted`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RedactedStep {
    /// The step's index.
    pub step: u64,
    /// When its details (or statistics) were redacted.
    pub at: String,
    /// Why.
    pub reason: String,
}

/// One step's data in a bundle.
#[derive(Debug, Clone)]
pub struct BundleStep {
    /// Key and row hashes.
    pub row_table: RowTable,
    /// The diff summary against the previous step.
    pub diff: Option<DiffSummary>,
    /// Column statistics (none when the manifest lists them as redacted).
    pub stats: Vec<ColumnStats>,
    /// Diff details.
    pub details: Option<Details>,
}

/// A whole bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The manifest.
    pub manifest: Manifest,
    /// Per-step data, in record order.
    pub steps: Vec<BundleStep>,
}

fn member(index: usize, name: &str) -> String {
    format!("steps/{index:05}/{name}")
}

impl Bundle {
    /// Writes the zip file in canonical form: members in a fixed order, stored (not
    /// compressed), with fixed timestamps and permissions, JSON members in canonical JSON.
    /// The same bundle always gives the same bytes, which is what lets [`verify_bytes`]
    /// detect a change to any byte.
    pub fn write(&self) -> Result<Vec<u8>> {
        Ok(self.write_to(Cursor::new(Vec::new()))?.into_inner())
    }

    /// Where the canonical form of this bundle first differs from `bytes` (at the end of the
    /// shorter, when one is the start of the other), or `None` when `bytes` are exactly what
    /// [`Bundle::write`] gives. The canonical form is compared as it is written, never held
    /// whole: a check of a large bundle needs no second copy of it.
    pub fn first_difference(&self, bytes: &[u8]) -> Result<Option<u64>> {
        let compare = Compare::new(Cursor::new(bytes))
            .map_err(|e| Error::Io(format!("cannot read the file: {e}")))?;
        Ok(self.write_to(compare)?.first_difference())
    }

    /// Writes the bundle's zip into `out` (a file, a buffer), a step at a time; gives `out`
    /// back once the zip is finished.
    pub fn write_to<W: Write + Seek>(&self, out: W) -> Result<W> {
        let mut w = BundleWriter::new(out, &self.manifest)?;
        for s in &self.steps {
            w.step(
                RowsMember::Table(&s.row_table),
                &s.stats,
                s.diff.as_ref(),
                s.details.as_ref(),
            )?;
        }
        w.finish()
    }

    /// Reads a bundle written by [`Bundle::write`].
    pub fn read(bytes: &[u8]) -> Result<Bundle> {
        let mut zip = open_zip(Cursor::new(bytes))?;
        let manifest = read_manifest(&mut zip)?;
        let steps = (0..manifest.records.len())
            .map(|i| read_step(&mut zip, i))
            .collect::<Result<_>>()?;
        Ok(Bundle { manifest, steps })
    }

    /// Reads only the manifest of a bundle: the run, its records and seal, without the
    /// step tables.
    pub fn read_manifest(bytes: &[u8]) -> Result<Manifest> {
        Manifest::read_from(Cursor::new(bytes))
    }
}

impl Manifest {
    /// Reads the manifest of the bundle in `source`, without its step tables.
    pub fn read_from<R: Read + Seek>(source: R) -> Result<Manifest> {
        read_manifest(&mut open_zip(source)?)
    }
}

/// Reads step `i`'s members.
fn read_step<R: Read + Seek>(zip: &mut Zip<R>, i: usize) -> Result<BundleStep> {
    let step = read_members(zip, i)?;
    Ok(BundleStep {
        row_table: step.rows.table(),
        diff: step.diff,
        stats: step.stats.unwrap_or_default(),
        details: step.details,
    })
}

/// A step's members as read, its row table left where the member's bytes hold it.
struct ReadStep {
    rows: RowBytes,
    diff: Option<DiffSummary>,
    /// None when the bundle has no `stats.json` for the step.
    stats: Option<Vec<ColumnStats>>,
    details: Option<Details>,
}

/// Reads step `i`'s members, its row table as [`RowBytes`].
fn read_members<R: Read + Seek>(zip: &mut Zip<R>, i: usize) -> Result<ReadStep> {
    let mut get = |what: &str| member_bytes(zip, &member(i, what));
    let need = |what: &str, v: Option<Vec<u8>>| {
        v.ok_or_else(|| Error::Verification(format!("step {i}: {} is missing", member(i, what))))
    };
    let json = |what: &str, bytes: &[u8]| -> Result<serde_json::Value> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::Verification(format!("step {i}: {what} is malformed: {e}")))
    };
    let rows = RowBytes::from_ipc(need("rows.arrow", get("rows.arrow")?)?)
        .map_err(|e| Error::Verification(format!("step {i}: rows.arrow: {e}")))?;
    let stats = match get("stats.json")? {
        Some(b) => Some(
            serde_json::from_value(json("stats.json", &b)?)
                .map_err(|e| Error::Verification(format!("step {i}: stats.json: {e}")))?,
        ),
        None => None,
    };
    let diff = match get("diff.json")? {
        Some(b) => Some(
            serde_json::from_value(json("diff.json", &b)?)
                .map_err(|e| Error::Verification(format!("step {i}: diff.json: {e}")))?,
        ),
        None => None,
    };
    let details = match (
        get("added.arrow")?,
        get("removed.arrow")?,
        get("changed.arrow")?,
    ) {
        (Some(a), Some(r), Some(c)) => {
            let table = |what: &str, bytes: Vec<u8>| {
                batch_from_ipc(bytes)
                    .map_err(|e| Error::Verification(format!("step {i}: {what}: {e}")))
            };
            Some(Details {
                added: table("added.arrow", a)?,
                removed: table("removed.arrow", r)?,
                changed: table("changed.arrow", c)?,
            })
        }
        (None, None, None) => None,
        _ => {
            return Err(Error::Verification(format!(
                "step {i}: some of added/removed/changed.arrow are missing"
            )));
        }
    };
    Ok(ReadStep {
        rows,
        diff,
        stats,
        details,
    })
}

/// Writes a bundle's zip in canonical form member by member, without holding the bundle
/// whole: the manifest, then each step's members in record order ([`Bundle::write`] is
/// this for a bundle in memory). A server exports a run of any size through it a step at a
/// time, its row tables copied from their stored encodings.
pub struct BundleWriter<W: Write + Seek> {
    zip: zip::ZipWriter<Output<W>>,
    steps: usize,
    records: usize,
    /// The manifest's statistics redactions: those steps are written without statistics,
    /// and they and the next ones without their diff summaries.
    statistics_redacted: Vec<RedactedStep>,
}

/// A step's row table for [`BundleWriter::step`]: the table, or its encoding as
/// [`RowTable::write_ipc`] wrote it (`len` bytes from `bytes`).
pub enum RowsMember<'a> {
    /// The table, encoded as it is written.
    Table(&'a RowTable),
    /// The table's encoding, copied as it is.
    Ipc {
        /// Its length in bytes.
        len: u64,
        /// Its bytes.
        bytes: &'a mut dyn Read,
    },
}

impl<W: Write + Seek> BundleWriter<W> {
    /// Starts a bundle with this manifest, whose records the steps must then follow, one
    /// each.
    pub fn new(out: W, manifest: &Manifest) -> Result<BundleWriter<W>> {
        let mut w = BundleWriter {
            zip: zip::ZipWriter::new(Output::new(out)),
            steps: 0,
            records: manifest.records.len(),
            statistics_redacted: manifest.statistics_redacted.clone(),
        };
        w.put_bytes("manifest.json".into(), &record::canonical_json(manifest))?;
        Ok(w)
    }

    /// Writes the next step's members. A step whose statistics the manifest lists as
    /// redacted is given none, and has no `stats.json`.
    pub fn step(
        &mut self,
        rows: RowsMember<'_>,
        stats: &[ColumnStats],
        diff: Option<&DiffSummary>,
        details: Option<&Details>,
    ) -> Result<()> {
        self.write_step(StepRows::Member(rows), stats, diff, details)
    }

    fn write_step(
        &mut self,
        rows: StepRows<'_>,
        stats: &[ColumnStats],
        diff: Option<&DiffSummary>,
        details: Option<&Details>,
    ) -> Result<()> {
        let i = self.steps;
        if i == self.records {
            return Err(Error::Verification(format!(
                "a bundle of {} steps was given another",
                self.records
            )));
        }
        match rows {
            StepRows::Member(RowsMember::Table(t)) => {
                // The hashes are still copied once, into Arrow's buffers.
                let hashes = t.row_hashes.len() + t.key_hashes.as_ref().map_or(0, Vec::len);
                self.put_row_table(i, hashes, |w| t.write_ipc(w))?;
            }
            StepRows::Read(t) => {
                let hashes = t.rows.len() / 32 + t.keys.as_ref().map_or(0, |k| k.len() / 32);
                self.put_row_table(i, hashes, |w| t.write_ipc(w))?;
            }
            StepRows::Member(RowsMember::Ipc { len, bytes }) => {
                self.start(member(i, "rows.arrow"), len)?;
                let copied = std::io::copy(&mut bytes.take(len), &mut self.zip)
                    .map_err(|e| Error::Io(format!("step {i}: cannot copy rows.arrow: {e}")))?;
                if copied != len {
                    return Err(Error::Verification(format!(
                        "step {i}: rows.arrow ended after {copied} of its {len} bytes"
                    )));
                }
            }
        }
        if statistics_redaction_in(&self.statistics_redacted, i).is_none() {
            self.put_bytes(member(i, "stats.json"), &record::canonical_json(&stats))?;
        } else if !stats.is_empty() {
            return Err(Error::Verification(format!(
                "step {i}: statistics given, but the manifest lists them as redacted"
            )));
        }
        let summary_redacted = summary_redaction_in(&self.statistics_redacted, i).is_some();
        if let Some(d) = diff.filter(|_| !summary_redacted) {
            self.put_bytes(member(i, "diff.json"), &record::canonical_json(d))?;
        }
        if let Some(d) = details {
            self.put_bytes(member(i, "added.arrow"), &batch_to_ipc(&d.added)?)?;
            self.put_bytes(member(i, "removed.arrow"), &batch_to_ipc(&d.removed)?)?;
            self.put_bytes(member(i, "changed.arrow"), &batch_to_ipc(&d.changed)?)?;
        }
        self.steps += 1;
        Ok(())
    }

    /// Ends the zip once every step is written; gives back the writer.
    pub fn finish(self) -> Result<W> {
        if self.steps != self.records {
            return Err(Error::Verification(format!(
                "a bundle of {} steps was given {}",
                self.records, self.steps
            )));
        }
        let out = self.zip.finish().map_err(zip_error)?;
        match out.failed {
            Some(e) => Err(Error::Io(e)),
            None => Ok(out.inner),
        }
    }

    /// Writes step `i`'s `rows.arrow`, a table of `hashes` hashes as `write` encodes it. The
    /// encoding is the hashes and well under a megabyte of framing: below 4 GiB (no zip64),
    /// it is written straight into the zip rather than into a buffer of its own.
    fn put_row_table(
        &mut self,
        i: usize,
        hashes: usize,
        write: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        let at_most = hashes as u64 * 32 + (1 << 20);
        if at_most < u32::MAX as u64 {
            self.start(member(i, "rows.arrow"), at_most)?;
            write(&mut self.zip)
        } else {
            let mut bytes = Vec::with_capacity(hashes * 32 + 4096);
            write(&mut bytes)?;
            self.put_bytes(member(i, "rows.arrow"), &bytes)
        }
    }

    /// Starts a member of `len` bytes (or of at most `len`, below 4 GiB: only whether it needs
    /// zip64 matters): stored (not compressed), with a fixed time and permissions.
    fn start(&mut self, name: String, len: u64) -> Result<()> {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644)
            .large_file(len >= u32::MAX as u64);
        self.zip.start_file(name, opts).map_err(zip_error)
    }

    fn put_bytes(&mut self, name: String, bytes: &[u8]) -> Result<()> {
        self.start(name, bytes.len() as u64)?;
        self.zip.write_all(bytes).map_err(|e| zip_error(e.into()))
    }
}

/// A step's row table for [`BundleWriter::write_step`]: as [`BundleWriter::step`] takes it,
/// or as read from a bundle being verified.
enum StepRows<'a> {
    Member(RowsMember<'a>),
    Read(&'a RowBytes),
}

/// Where a seek leads in a file of `end` bytes read or written at `pos`.
fn seek_within(to: SeekFrom, pos: u64, end: u64) -> std::io::Result<u64> {
    match to {
        SeekFrom::Start(p) => Some(p),
        SeekFrom::End(d) => end.checked_add_signed(d),
        SeekFrom::Current(d) => pos.checked_add_signed(d),
    }
    .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"))
}

/// The bundle writer's output. Once a write or seek fails, it takes every later one without
/// doing it (keeping count of the position, as the zip writer checks it): a zip writer
/// dropped after an error (the caller gave up on the bundle) then does not try again to
/// finish the archive into an output that failed, and print that it could not. `finish`
/// gives back the first error.
struct Output<W> {
    inner: W,
    pos: u64,
    end: u64,
    failed: Option<String>,
}

impl<W> Output<W> {
    fn new(inner: W) -> Output<W> {
        Output {
            inner,
            pos: 0,
            end: 0,
            failed: None,
        }
    }

    fn moved(&mut self, to: u64) {
        self.pos = to;
        self.end = self.end.max(to);
    }
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.failed.is_none() {
            match self.inner.write(buf) {
                Ok(n) => {
                    self.moved(self.pos + n as u64);
                    return Ok(n);
                }
                Err(e) => {
                    self.failed = Some(e.to_string());
                    return Err(e);
                }
            }
        }
        self.moved(self.pos + buf.len() as u64);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.failed.is_none() {
            self.inner
                .flush()
                .inspect_err(|e| self.failed = Some(e.to_string()))?;
        }
        Ok(())
    }
}

impl<W: Seek> Seek for Output<W> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        if self.failed.is_none() {
            let at = self
                .inner
                .seek(to)
                .inspect_err(|e| self.failed = Some(e.to_string()))?;
            self.moved(at);
            return Ok(at);
        }
        let at = seek_within(to, self.pos, self.end)?;
        self.moved(at);
        Ok(at)
    }
}

/// A writer that keeps none of what is written: it compares it with the bytes `expected`
/// holds at the same offsets, following seeks. The zip writer writes a member's header
/// before its data, then seeks back to fill in the sizes and checksum, so a run of bytes
/// that differed is forgotten once written again with what `expected` has there.
struct Compare<R> {
    expected: R,
    /// The length of `expected`.
    len: u64,
    /// `expected`'s bytes for the write being compared.
    scratch: Vec<u8>,
    /// How many bytes of a write are compared at a time.
    piece: usize,
    pos: u64,
    /// The furthest byte written (the stream's end, for `SeekFrom::End`).
    end: u64,
    /// The runs written with bytes other than `expected`'s (or past its end), not written
    /// since: sorted, disjoint, the earliest `max_runs` of them.
    differ: Vec<Range<u64>>,
    /// How many runs are kept: bytes that shifted by one against `expected` can differ
    /// every other byte, and the file is the untrusted side.
    max_runs: usize,
    /// Where the earliest run left out of `differ` starts, if one was. The check then fails
    /// whatever is written later, at this byte or before: a run of the canonical form
    /// never waits for more than its member's header to be filled in, so only a file that
    /// differs anyway has more runs waiting than are kept.
    dropped: Option<u64>,
}

impl<R: Read + Seek> Compare<R> {
    fn new(expected: R) -> std::io::Result<Compare<R>> {
        Compare::keeping(expected, 64)
    }

    fn keeping(mut expected: R, max_runs: usize) -> std::io::Result<Compare<R>> {
        let len = expected.seek(SeekFrom::End(0))?;
        Ok(Compare {
            expected,
            len,
            scratch: Vec::new(),
            piece: 1 << 20,
            pos: 0,
            end: 0,
            differ: Vec::new(),
            max_runs,
            dropped: None,
        })
    }

    /// The first byte at which what was written differs from `expected`, counting the end of
    /// the shorter of the two when their lengths differ; `None` when they are the same.
    /// When more runs differed at once than are kept, a byte at or before the first that
    /// differs.
    fn first_difference(&self) -> Option<u64> {
        let short = (self.end != self.len).then_some(self.end.min(self.len));
        [self.differ.first().map(|r| r.start), self.dropped, short]
            .into_iter()
            .flatten()
            .min()
    }

    /// Forgets what differed in `at` (just written again), then records the runs of `buf`
    /// (written at `at.start`) that differ.
    fn record(&mut self, at: Range<u64>, buf: &[u8]) -> std::io::Result<()> {
        let mut kept = Vec::with_capacity(self.differ.len() + 1);
        for r in self.differ.drain(..) {
            if r.end <= at.start || r.start >= at.end {
                kept.push(r);
                continue;
            }
            if r.start < at.start {
                kept.push(r.start..at.start);
            }
            if r.end > at.end {
                kept.push(at.end..r.end);
            }
        }
        self.differ = kept;
        // The part of `buf` that `expected` has bytes for, compared a piece at a time.
        let within = at.end.min(self.len).saturating_sub(at.start) as usize;
        for from in (0..within).step_by(self.piece) {
            let to = (from + self.piece).min(within);
            // A failed read is the file's, not the writer's: say so.
            let reading = |e: std::io::Error| {
                std::io::Error::new(e.kind(), format!("cannot read the file: {e}"))
            };
            self.expected
                .seek(SeekFrom::Start(at.start + from as u64))
                .map_err(reading)?;
            self.scratch.resize(to - from, 0);
            self.expected
                .read_exact(&mut self.scratch)
                .map_err(reading)?;
            let (expected, written) = (&self.scratch, &buf[from..to]);
            if expected == written {
                continue;
            }
            let mut runs = Vec::new();
            let mut i = 0;
            while i < expected.len() {
                if expected[i] == written[i] {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < expected.len() && expected[i] != written[i] {
                    i += 1;
                }
                runs.push(start..i);
            }
            let base = at.start + from as u64;
            for r in runs {
                self.add(base + r.start as u64..base + r.end as u64);
            }
        }
        if buf.len() > within {
            self.add(at.start + within as u64..at.end);
        }
        Ok(())
    }

    fn add(&mut self, run: Range<u64>) {
        let i = self.differ.partition_point(|r| r.start < run.start);
        // A run that goes on where the one before ends (across pieces) joins it.
        if i > 0 && self.differ[i - 1].end == run.start {
            self.differ[i - 1].end = run.end;
            return;
        }
        self.differ.insert(i, run);
        if self.differ.len() > self.max_runs {
            let last = self.differ.pop().expect("more than the most kept");
            self.dropped = Some(self.dropped.map_or(last.start, |d| d.min(last.start)));
        }
    }
}

impl<R: Read + Seek> Write for Compare<R> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // A write past the end leaves zeros before it, as in a file or a `Cursor<Vec<u8>>`.
        while self.end < self.pos {
            let zeros = [0u8; 4096];
            let n = (self.pos - self.end).min(zeros.len() as u64);
            self.record(self.end..self.end + n, &zeros[..n as usize])?;
            self.end += n;
        }
        let at = self.pos..self.pos + buf.len() as u64;
        self.record(at.clone(), buf)?;
        self.pos = at.end;
        self.end = self.end.max(at.end);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<R> Seek for Compare<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = seek_within(to, self.pos, self.end)?;
        Ok(self.pos)
    }
}

/// A bundle's zip being read, and the length of its file.
struct Zip<R> {
    archive: zip::ZipArchive<R>,
    len: u64,
}

fn open_zip<R: Read + Seek>(mut source: R) -> Result<Zip<R>> {
    let not_a_zip = |e: &dyn std::fmt::Display| {
        Error::Verification(format!(
            "not a bundle: the file is not a readable zip ({e})"
        ))
    };
    let len = source.seek(SeekFrom::End(0)).map_err(|e| not_a_zip(&e))?;
    let archive = zip::ZipArchive::new(source).map_err(|e| not_a_zip(&e))?;
    Ok(Zip { archive, len })
}

/// A member's bytes, `None` when the bundle has no such member. Read to its end, so its
/// CRC-32 is checked (by the zip reader): a damaged member is refused before any decoder
/// sees it.
fn member_bytes<R: Read + Seek>(zip: &mut Zip<R>, name: &str) -> Result<Option<Vec<u8>>> {
    let mut f = match zip.archive.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(Error::Verification(format!("cannot read {name}: {e}"))),
    };
    let too_long = || {
        Error::Verification(format!(
            "cannot read {name}: longer than the {MAX_MEMBER_BYTES} bytes a member may have"
        ))
    };
    if f.size() > MAX_MEMBER_BYTES {
        return Err(too_long());
    }
    // Room for what it says it holds, as far as the file could hold that (a compressed
    // member's length is only known once read).
    let room = f.size().min(zip.len);
    let mut out = Vec::with_capacity(usize::try_from(room).unwrap_or(0));
    (&mut f)
        .take(MAX_MEMBER_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Verification(format!("cannot read {name}: {e}")))?;
    if out.len() as u64 > MAX_MEMBER_BYTES {
        return Err(too_long());
    }
    Ok(Some(out))
}

fn read_manifest<R: Read + Seek>(zip: &mut Zip<R>) -> Result<Manifest> {
    let manifest: Manifest = serde_json::from_slice(
        &member_bytes(zip, "manifest.json")?
            .ok_or_else(|| Error::Verification("not a bundle: no manifest.json".into()))?,
    )
    .map_err(|e| Error::Verification(format!("manifest.json is malformed: {e}")))?;
    if ![BUNDLE_SPEC, BUNDLE_SPEC_V2, BUNDLE_SPEC_V3].contains(&manifest.spec.as_str()) {
        return Err(Error::Verification(format!(
            "unknown bundle version `{}` (this build reads {BUNDLE_SPEC}, {BUNDLE_SPEC_V2} \
             and {BUNDLE_SPEC_V3})",
            manifest.spec
        )));
    }
    Ok(manifest)
}

/// An error of the zip writer: its output failed (a full disk; in verification, a failed
/// read of the file it is compared with).
fn zip_error(e: zip::result::ZipError) -> Error {
    match e {
        zip::result::ZipError::Io(e) => Error::Io(e.to_string()),
        e => Error::Io(format!("zip: {e}")),
    }
}

/// One check of a verification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Check {
    /// What was checked (`content root`, `chain`, `signature`, ...).
    pub name: String,
    /// The step it concerns, as `index name`, when it concerns one.
    pub step: Option<String>,
    /// Whether it passed.
    pub passed: bool,
    /// What was found.
    pub detail: String,
}

/// The result of verifying a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct VerifyReport {
    /// Every check made, in order.
    pub checks: Vec<Check>,
}

impl VerifyReport {
    /// True when every check passed (and there was at least one).
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.passed)
    }

    fn check(&mut self, name: &str, step: Option<&StepRecord>, passed: bool, detail: String) {
        self.checks.push(Check {
            name: name.into(),
            step: step.map(|r| format!("{} {}", r.index, r.step)),
            passed,
            detail,
        });
    }
}

/// Where data that is not a step's output parts from it, column by column: the columns one
/// has and the other has not (a column named otherwise changes every row's hash, such as a
/// pandas index written as `__index_level_0__`), else those whose values in row order
/// differ. Empty when the columns agree.
fn columns_apart(rec: &StepRecord, f: &Fingerprint) -> String {
    let names = |columns: &[ColumnFingerprint]| -> std::collections::BTreeSet<String> {
        columns.iter().map(|c| c.name.clone()).collect()
    };
    let (theirs, ours) = (names(&f.columns), names(&rec.columns));
    let list = |v: Vec<&String>| {
        v.iter()
            .map(|n| format!("`{}`", n.escape_debug()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let only_data: Vec<&String> = theirs.difference(&ours).collect();
    let only_step: Vec<&String> = ours.difference(&theirs).collect();
    let mut parts = Vec::new();
    if !only_data.is_empty() {
        parts.push(format!(
            "the data has columns the step has not: {}",
            list(only_data)
        ));
    }
    if !only_step.is_empty() {
        parts.push(format!(
            "the step has columns the data has not: {}",
            list(only_step)
        ));
    }
    if parts.is_empty() {
        let differ: Vec<&String> = (rec.columns.iter())
            .filter(|c| {
                let theirs = f.columns.iter().find(|d| d.name == c.name);
                theirs.is_none_or(|d| d.digest != c.digest)
            })
            .map(|c| &c.name)
            .collect();
        if !differ.is_empty() && differ.len() < rec.columns.len() {
            parts.push(format!(
                "the columns whose values differ (in row order): {}",
                list(differ)
            ));
        }
    }
    match parts.is_empty() {
        true => String::new(),
        false => format!(" ({})", parts.join("; ")),
    }
}

fn short(h: &Hash) -> String {
    h.to_hex()[..16].to_string()
}

/// Data offered as a step's output: which step it should be (by name, or any), and the data.
pub struct DataClaim<'a> {
    /// The step: a name (any of the steps so named), else an index (`2`, the third step)
    /// when no step has that name; `None` to find which step it is.
    pub step: Option<&'a str>,
    /// The data.
    pub data: &'a dyn BatchSource,
}

/// Re-checks a bundle: every root from its row hashes, every diff summary's counts from
/// consecutive row tables, the hashes the records bind, the chain, the seal and its key;
/// with `data`, whether that file is exactly a step's output.
pub fn verify(
    bundle: &Bundle,
    trusted_key: Option<&str>,
    data: Option<DataClaim<'_>>,
) -> VerifyReport {
    let mut v = Verifier::new(&bundle.manifest, bundle.steps.len());
    for (i, step) in bundle
        .steps
        .iter()
        .take(bundle.manifest.records.len())
        .enumerate()
    {
        // As the bundle is written: no statistics for a step listed without them.
        let listed = bundle.manifest.statistics_redaction(i).is_some();
        v.step(
            RowBytes::of_table(&step.row_table),
            (!listed || !step.stats.is_empty()).then_some(&step.stats[..]),
            step.diff.as_ref(),
            step.details.as_ref(),
        );
    }
    v.finish(trusted_key, data)
}

/// Whether the manifest's redactions name steps with details (and steps, for statistics),
/// once each, in step order, and the version is the one they call for; what they say.
fn redactions(manifest: &Manifest) -> (bool, String) {
    let want = Manifest::spec_for(&manifest.redacted, &manifest.statistics_redacted);
    if manifest.spec != want {
        return (
            false,
            format!(
                "the bundle is {} but lists {} redacted steps and {} with redacted statistics: \
                 a bundle with redacted statistics is {BUNDLE_SPEC_V3}, one with only redacted \
                 details {BUNDLE_SPEC_V2}, one without either {BUNDLE_SPEC}",
                manifest.spec,
                manifest.redacted.len(),
                manifest.statistics_redacted.len(),
            ),
        );
    }
    let records = &manifest.records;
    let details = redaction_list(
        &manifest.redacted,
        "",
        |i| records.get(i).is_some_and(|r| r.details_hash.is_some()),
        |bad| {
            format!(
                "step {bad} is listed, but the run has no step {bad} with diff details ({} \
                 steps; the first has none)",
                records.len()
            )
        },
    );
    let statistics = redaction_list(
        &manifest.statistics_redacted,
        "the statistics of ",
        |i| i < records.len(),
        |bad| {
            format!(
                "the statistics of step {bad} are listed, but the run has no step {bad} ({} \
                 steps)",
                records.len()
            )
        },
    );
    let (details, statistics) = match (details, statistics) {
        (Ok(d), Ok(s)) => (d, s),
        (Err(e), _) | (_, Err(e)) => return (false, e),
    };
    let mut said = Vec::new();
    for (steps, what) in [(details, "diff details"), (statistics, "column statistics")] {
        if !steps.is_empty() {
            let list = steps.iter().map(u64::to_string).collect::<Vec<_>>();
            said.push(format!(
                "the {what} of step{} {}",
                if steps.len() == 1 { "" } else { "s" },
                list.join(", ")
            ));
        }
    }
    (
        true,
        format!(
            "the manifest says (it is not signed) that {} were removed from the store after \
             they were recorded",
            said.join(" and ")
        ),
    )
}

/// The steps of one list of [`Manifest`]'s redactions (of `what`: `""` for details),
/// checked: once each, in step order, each a step `exists` allows (else `not_there` says
/// why), without control characters. The error names the first problem.
fn redaction_list(
    list: &[RedactedStep],
    what: &str,
    exists: impl Fn(usize) -> bool,
    not_there: impl Fn(u64) -> String,
) -> std::result::Result<Vec<u64>, String> {
    let steps: Vec<u64> = list.iter().map(|r| r.step).collect();
    if !steps.is_sorted_by(|a, b| a < b) {
        return Err(format!(
            "{what}steps {steps:?} are not listed once each, in step order"
        ));
    }
    if let Some(&bad) = (steps.iter()).find(|&&i| !usize::try_from(i).is_ok_and(&exists)) {
        return Err(not_there(bad));
    }
    if let Some(r) = list
        .iter()
        .find(|r| r.at.chars().chain(r.reason.chars()).any(char::is_control))
    {
        return Err(format!(
            "the redaction of {what}step {} holds control characters in its time or reason",
            r.step
        ));
    }
    Ok(steps)
}

/// [`verify`]'s checks, made as the steps come, so that a bundle read from a file need
/// not be held whole: only the previous step's row hashes are kept, for the diff counts.
struct Verifier<'a> {
    manifest: &'a Manifest,
    report: VerifyReport,
    /// The steps checked so far.
    steps: usize,
    /// The hash of the last record checked.
    prev_hash: Option<Hash>,
    /// The previous step's row hashes in content order, for the diff counts.
    prev_sorted: SortedRows,
}

impl<'a> Verifier<'a> {
    /// Starts the checks of a bundle with this manifest and `tables` step tables.
    fn new(manifest: &'a Manifest, tables: usize) -> Verifier<'a> {
        let mut report = VerifyReport::default();
        let records = manifest.records.len();
        report.check(
            "bundle",
            None,
            records == tables,
            format!("{records} records, {tables} step tables"),
        );
        if !manifest.redacted.is_empty()
            || !manifest.statistics_redacted.is_empty()
            || manifest.spec != BUNDLE_SPEC
        {
            let (passed, detail) = redactions(manifest);
            report.check("redactions", None, passed, detail);
        }
        Verifier {
            manifest,
            report,
            steps: 0,
            prev_hash: None,
            prev_sorted: SortedRows::default(),
        }
    }

    /// Checks the next step against its record: its row table, as [`RowBytes`] (consumed:
    /// sorted where it lies), and its other members.
    fn step(
        &mut self,
        table: RowBytes,
        stats: Option<&[ColumnStats]>,
        diff: Option<&DiffSummary>,
        details: Option<&Details>,
    ) {
        let i = self.steps;
        self.steps += 1;
        let records = &self.manifest.records;
        let rec = &records[i];
        let rec_ref = Some(rec);
        let rows = table.rows();
        // Identity of the record within the run.
        let ok = rec.index == i as u64 && rec.run_id == self.manifest.run.id;
        self.report.check(
            "record",
            rec_ref,
            ok,
            if ok {
                format!("record {i} of run {}", rec.run_id)
            } else {
                format!(
                    "record says index {} of run {}, found at position {i} of run {}",
                    rec.index, rec.run_id, self.manifest.run.id
                )
            },
        );
        // Chain.
        let ok = rec.prev == self.prev_hash;
        self.report.check(
            "chain",
            rec_ref,
            ok,
            if ok {
                match self.prev_hash {
                    Some(h) => format!("links to {}", short(&h)),
                    None => "first record".into(),
                }
            } else {
                let link = |h: Option<Hash>| h.map_or("none".to_string(), |h| short(&h));
                format!(
                    "the record links to {}, the previous record hashes to {}",
                    link(rec.prev),
                    link(self.prev_hash)
                )
            },
        );
        self.prev_hash = Some(rec.hash());
        // Roots from row hashes.
        let ok = rows.len() as u64 == rec.rows;
        self.report.check(
            "row count",
            rec_ref,
            ok,
            format!("{} row hashes, record says {}", rows.len(), rec.rows),
        );
        // What row order gives, before the hashes are sorted where they lie.
        let or = fingerprint::order_root_of(rows);
        let rt = record::row_table_hash_of(table.keys(), rows);
        let row_count = rows.len();
        let sorted = table.into_sorted();
        let cr = fingerprint::content_root_sorted_of(sorted.content());
        self.report.check(
            "content root",
            rec_ref,
            cr == rec.content_root,
            if cr == rec.content_root {
                format!("{} recomputed from {} row hashes", short(&cr), row_count)
            } else {
                format!(
                    "recomputed {}, record says {}",
                    short(&cr),
                    short(&rec.content_root)
                )
            },
        );
        self.report.check(
            "order root",
            rec_ref,
            or == rec.order_root,
            if or == rec.order_root {
                short(&or)
            } else {
                format!(
                    "recomputed {}, record says {}",
                    short(&or),
                    short(&rec.order_root)
                )
            },
        );
        self.report.check(
            "row table",
            rec_ref,
            rt == rec.row_table_hash,
            if rt == rec.row_table_hash {
                "key and row hashes match the record".into()
            } else {
                format!(
                    "row table hashes to {}, record says {}",
                    short(&rt),
                    short(&rec.row_table_hash)
                )
            },
        );
        let (passed, detail) = match (stats, self.manifest.statistics_redaction(i)) {
            (Some(stats), None) => {
                let sd = stats_digest(stats);
                if sd == rec.stats_digest {
                    (true, "statistics match the record".into())
                } else {
                    let detail = format!(
                        "statistics digest {}, record says {}",
                        short(&sd),
                        short(&rec.stats_digest)
                    );
                    (false, detail)
                }
            }
            (None, Some(r)) => (
                true,
                format!(
                    "not in the bundle: redacted at {} ({}), the manifest says; the record \
                     keeps their digest",
                    r.at, r.reason
                ),
            ),
            (Some(_), Some(r)) => (
                false,
                format!(
                    "the manifest says they were redacted at {}, yet the bundle holds them",
                    r.at
                ),
            ),
            (None, None) => (
                false,
                format!(
                    "{} is missing, and the manifest does not list the step's statistics as \
                     redacted",
                    member(i, "stats.json")
                ),
            ),
        };
        self.report.check("statistics", rec_ref, passed, detail);
        // Diff summary: bound by the record, and its counts recomputed from the row tables.
        match (diff, rec.diff_summary_hash) {
            (None, None) => {}
            // A summary holds the statistics of both its sides: it goes with either step's.
            (None, Some(_)) if self.manifest.summary_redaction(i).is_some() => {
                let r = self.manifest.summary_redaction(i).expect("listed");
                self.report.check(
                    "diff summary",
                    rec_ref,
                    true,
                    format!(
                        "not in the bundle: it held the statistics of step {}, redacted at {} \
                         ({}), the manifest says; the record keeps its hash. Its counts cannot \
                         be checked without it",
                        r.step, r.at, r.reason
                    ),
                );
            }
            (Some(_), Some(_)) if self.manifest.summary_redaction(i).is_some() => {
                let r = self.manifest.summary_redaction(i).expect("listed");
                self.report.check(
                    "diff summary",
                    rec_ref,
                    false,
                    format!(
                        "the manifest says it held the statistics of step {}, redacted at {}, \
                         yet the bundle holds it",
                        r.step, r.at
                    ),
                );
            }
            (Some(d), Some(h)) => {
                let got = diff_summary_hash(d);
                self.report.check(
                    "diff summary",
                    rec_ref,
                    got == h,
                    if got == h {
                        "summary matches the record".into()
                    } else {
                        format!(
                            "summary hashes to {}, record says {}",
                            short(&got),
                            short(&h)
                        )
                    },
                );
                if i > 0 {
                    let (passed, detail) =
                        recount(&self.prev_sorted, &sorted, d, &records[i - 1], rec);
                    self.report.check("diff counts", rec_ref, passed, detail);
                }
            }
            _ => self.report.check(
                "diff summary",
                rec_ref,
                false,
                "the record and the bundle disagree on whether there is a diff".into(),
            ),
        }
        let redacted = self.manifest.redacted.iter().find(|r| r.step == i as u64);
        match (details, rec.details_hash, redacted) {
            (None, None, _) => {}
            (Some(d), Some(h), None) => {
                let (passed, detail) = match d.hash() {
                    Ok(got) if got == h => (true, "details match the record".to_string()),
                    Ok(got) => (
                        false,
                        format!("details hash to {}, record says {}", short(&got), short(&h)),
                    ),
                    Err(e) => (false, format!("details cannot be read: {e}")),
                };
                self.report.check("diff details", rec_ref, passed, detail);
            }
            (None, Some(_), Some(r)) => self.report.check(
                "diff details",
                rec_ref,
                true,
                format!(
                    "not in the bundle: redacted at {} ({}), the manifest says; the record \
                     keeps their hash",
                    r.at, r.reason
                ),
            ),
            (Some(_), _, Some(r)) => self.report.check(
                "diff details",
                rec_ref,
                false,
                format!(
                    "the manifest says they were redacted at {}, yet the bundle holds them",
                    r.at
                ),
            ),
            _ => self.report.check(
                "diff details",
                rec_ref,
                false,
                "the record and the bundle disagree on whether there are details".into(),
            ),
        }
        self.prev_sorted = sorted;
    }

    /// The seal, its signature, and the data claim, after the steps.
    fn finish(mut self, trusted_key: Option<&str>, data: Option<DataClaim<'_>>) -> VerifyReport {
        let records = &self.manifest.records;
        // Seal.
        match &self.manifest.seal {
            None => self.report.check(
                "seal",
                None,
                false,
                "the run is not sealed: nothing signs its records".into(),
            ),
            Some(seal) => {
                let head = self.prev_hash.unwrap_or_default();
                let ok = seal.run_id == self.manifest.run.id
                    && seal.covers(records.len(), self.prev_hash);
                self.report.check("seal", None, ok, if ok {
                    format!("seals {} records, head {}", seal.steps, short(&head))
                } else {
                    format!(
                        "seal covers run {} with {} records and head {}; the bundle has run {} with {} records and head {}",
                        seal.run_id, seal.steps, short(&seal.head), self.manifest.run.id, records.len(), short(&head)
                    )
                });
                match verify_seal(seal, trusted_key) {
                    Ok(()) => self.report.check("signature", None, true, match trusted_key {
                        Some(_) => format!("valid, by the trusted key {}", &seal.public_key[..16]),
                        None => format!("valid, by key {} (no trusted key was given, so who signed it is not checked)", &seal.public_key[..16]),
                    }),
                    Err(e) => self.report.check("signature", None, false, e.to_string().trim_start_matches("verification failed: ").to_string()),
                }
            }
        }
        self.check_run();
        if let Some(claim) = data {
            verify_data(&mut self.report, records, claim);
        }
        self.report
    }

    /// The manifest's description of the run, against what the records and the seal say of
    /// it: each record carries the pipeline and the code version, the seal its time, and a
    /// seal v2 the hash of the whole description. Under a seal v1 (or none) the run's
    /// labels, parameters, creation time and end are bound by nothing: the detail says so.
    fn check_run(&mut self) {
        let run = &self.manifest.run;
        let mut problems = Vec::new();
        if let Some(r) = self
            .manifest
            .records
            .iter()
            .find(|r| r.pipeline != run.pipeline)
        {
            problems.push(format!(
                "the run says pipeline `{}`, record {} says `{}`",
                run.pipeline, r.index, r.pipeline
            ));
        }
        let version = |v: &Option<String>| v.as_deref().map_or("none".into(), |v| format!("`{v}`"));
        if let Some(r) = self
            .manifest
            .records
            .iter()
            .find(|r| r.code_version != run.code_version)
        {
            problems.push(format!(
                "the run says code version {}, record {} says {}",
                version(&run.code_version),
                r.index,
                version(&r.code_version)
            ));
        }
        if let Some(seal) = &self.manifest.seal
            && run.sealed_at.as_deref() != Some(seal.sealed_at.as_str())
        {
            problems.push(format!(
                "the run says it was sealed at {}, the seal says {}",
                run.sealed_at.as_deref().unwrap_or("no time"),
                seal.sealed_at
            ));
        }
        // A seal ends a run, sealed or failed (both are signed alike); without one it is open.
        let ended = matches!(run.status.as_str(), "sealed" | "failed");
        match (&self.manifest.seal, ended) {
            (Some(_), false) => problems.push(format!(
                "the run says it is {}, but it has a seal: it ended",
                run.status
            )),
            (None, true) => problems.push(format!(
                "the run says it is {}, but nothing seals it",
                run.status
            )),
            _ => {}
        }
        let signed = self.manifest.seal.as_ref().and_then(|s| s.run_hash);
        let v1 = self
            .manifest
            .seal
            .as_ref()
            .is_some_and(|s| s.spec == crate::sign::SEAL_SPEC_V1);
        if self.manifest.seal.is_some() && signed.is_none() && !v1 {
            problems.push(
                "the seal is not a seal v1 and has no `run_hash`: the run's description \
                 cannot be checked against it"
                    .into(),
            );
        }
        if let Some(signed) = signed
            && signed != run.hash()
        {
            problems.push(format!(
                "the run's description is not the one the seal signs (hash {}, the seal's {}): \
                 its labels, parameters, status, failure message or times were changed",
                short(&run.hash()),
                short(&signed)
            ));
        }
        let passed = problems.is_empty();
        let records = if self.manifest.records.is_empty() {
            "no records to compare it with".to_string()
        } else {
            format!(
                "pipeline `{}` and code version {} as every record says",
                run.pipeline,
                version(&run.code_version)
            )
        };
        let detail = if !passed {
            problems.join("; ")
        } else if signed.is_some() {
            format!(
                "{records}; the whole description (labels, parameters, status, failure message, \
                 times) is the one the seal signs"
            )
        } else {
            format!(
                "{records}{}; the run's labels, parameters, creation time, and whether it ended \
                 sealed or failed are in no record or seal{}",
                if self.manifest.seal.is_some() {
                    ", sealed at the time the seal signs"
                } else {
                    ""
                },
                if v1 {
                    " (a seal v1 signs the records alone)"
                } else {
                    ""
                }
            )
        };
        self.report.check("run", None, passed, detail);
    }
}

/// Verifies a bundle file: reads it, checks that it is in canonical form (re-writing what
/// was read gives the same bytes, so no byte can change unnoticed), then runs [`verify`].
pub fn verify_bytes(
    bytes: &[u8],
    trusted_key: Option<&str>,
    data: Option<DataClaim<'_>>,
) -> VerifyReport {
    verify_from(Cursor::new(bytes), false, trusted_key, data).0
}

/// [`verify_bytes`], also giving back the bundle it read (when it could be read), so a
/// caller that shows the bundle does not read it twice.
pub fn verify_read(
    bytes: &[u8],
    trusted_key: Option<&str>,
    data: Option<DataClaim<'_>>,
) -> (VerifyReport, Option<Bundle>) {
    verify_from(Cursor::new(bytes), true, trusted_key, data)
}

/// [`verify_bytes`] of a bundle read from `source` as it is checked, a step at a time: one
/// step's members (row table and details; the row table is sorted where it was read) and
/// the previous step's sorted row hashes are in memory, and none of the file, so a bundle
/// of any size verifies in the memory its two largest consecutive row tables take. `source` is cloned to read at two places at once (the members, and the bytes the
/// canonical form is compared with), so clones must keep positions of their own, as a
/// `Cursor` over bytes does. The file is read twice over: if it changes meanwhile, the
/// report may describe no single state of it (it then fails, or describes a valid bundle).
pub fn verify_stream<R: Read + Seek + Clone>(
    source: R,
    trusted_key: Option<&str>,
    data: Option<DataClaim<'_>>,
) -> VerifyReport {
    verify_from(source, false, trusted_key, data).0
}

/// Reads a bundle a step at a time, checking each step against its record and writing it
/// in canonical form, compared with the file as it is written; keeps the steps when asked.
fn verify_from<R: Read + Seek + Clone>(
    source: R,
    keep: bool,
    trusted_key: Option<&str>,
    data: Option<DataClaim<'_>>,
) -> (VerifyReport, Option<Bundle>) {
    let unreadable = |e: Error| {
        let mut r = VerifyReport::default();
        let detail = e
            .to_string()
            .trim_start_matches("verification failed: ")
            .to_string();
        r.check(
            "bundle",
            None,
            false,
            format!("cannot read the bundle: {detail}"),
        );
        (r, None)
    };
    let mut zip = match open_zip(source.clone()) {
        Ok(z) => z,
        Err(e) => return unreadable(e),
    };
    let manifest = match read_manifest(&mut zip) {
        Ok(m) => m,
        Err(e) => return unreadable(e),
    };
    let records = manifest.records.len();
    let mut verifier = Verifier::new(&manifest, records);
    // The canonical form, compared as it is written; the first error ends it.
    let mut canonical = Compare::new(source)
        .map_err(|e| Error::Io(format!("cannot read the file: {e}")))
        .and_then(|c| BundleWriter::new(c, &manifest));
    let mut kept = Vec::new();
    for i in 0..records {
        let step = match read_members(&mut zip, i) {
            Ok(s) => s,
            Err(e) => return unreadable(e),
        };
        // Written before it is checked: the checks sort the row table where it lies.
        if let Ok(w) = &mut canonical
            && let Err(e) = w.write_step(
                StepRows::Read(&step.rows),
                step.stats.as_deref().unwrap_or_default(),
                step.diff.as_ref(),
                step.details.as_ref(),
            )
        {
            canonical = Err(e);
        }
        let row_table = keep.then(|| step.rows.table());
        verifier.step(
            step.rows,
            step.stats.as_deref(),
            step.diff.as_ref(),
            step.details.as_ref(),
        );
        if let Some(row_table) = row_table {
            kept.push(BundleStep {
                row_table,
                diff: step.diff,
                stats: step.stats.unwrap_or_default(),
                details: step.details,
            });
        }
    }
    let mut report = verifier.finish(trusted_key, data);
    let len = zip.len;
    let (passed, detail) = match canonical.and_then(BundleWriter::finish) {
        Ok(c) => match c.first_difference() {
            None => (
                true,
                format!("all {len} bytes are as this bundle's content writes them"),
            ),
            Some(at) => (
                false,
                format!(
                    "the file differs from its canonical form from byte {at} on: it was changed after export"
                ),
            ),
        },
        Err(e) => (
            false,
            format!("the file could not be compared with its canonical form: {e}"),
        ),
    };
    let check = Check {
        name: "canonical form".into(),
        step: None,
        passed,
        detail,
    };
    report.checks.insert(1.min(report.checks.len()), check);
    let bundle = keep.then(|| Bundle {
        manifest,
        steps: kept,
    });
    (report, bundle)
}

/// A step's row hashes and (when it has them) key hashes, each in content order (ascending):
/// what the diff counts are recomputed from. Each step's are sorted once, for its diff with
/// the previous step and for the next step's diff with it ([`RowBytes::into_sorted`]).
#[derive(Default)]
struct SortedRows {
    bytes: Vec<u8>,
    /// Where the row hashes lie in `bytes`.
    content: Range<usize>,
    /// Where the key hashes lie.
    keys: Option<Range<usize>>,
}

impl SortedRows {
    fn content(&self) -> &[[u8; 32]] {
        self.bytes[self.content.clone()].as_chunks().0
    }

    fn keys(&self) -> Option<&[[u8; 32]]> {
        (self.keys.clone()).map(|k| self.bytes[k].as_chunks().0)
    }
}

/// Added, removed and matched-but-different rows between two keyed row tables, from their
/// sorted key hashes and row hashes: keys in one table only are added or removed; a matched
/// key's row is unchanged exactly when its row hash is in both tables (a row hash covers the
/// key columns too, so with the same columns equal row hashes mean the same key). `Err`
/// names the side whose key hashes are not unique.
fn keyed_counts<T: Ord>(
    prev: (&[T], &[T]),
    cur: (&[T], &[T]),
) -> std::result::Result<(u64, u64, u64), &'static str> {
    let repeats = |keys: &[T]| keys.windows(2).any(|w| w[0] == w[1]);
    if repeats(prev.0) {
        return Err("previous");
    }
    if repeats(cur.0) {
        return Err("current");
    }
    let matched = common(prev.0, cur.0);
    let unchanged = common(prev.1, cur.1);
    Ok((
        cur.0.len() as u64 - matched,
        prev.0.len() as u64 - matched,
        matched.saturating_sub(unchanged),
    ))
}

/// How many hashes two multisets in content order (ascending) have in common.
fn common<T: Ord>(a: &[T], b: &[T]) -> u64 {
    let (mut i, mut j, mut same) = (0, 0, 0u64);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                same += 1;
                i += 1;
                j += 1;
            }
        }
    }
    same
}

/// Recomputes added / removed / changed counts from two row tables (and their row hashes in
/// content order).
fn recount(
    prev: &SortedRows,
    cur: &SortedRows,
    d: &DiffSummary,
    prev_rec: &StepRecord,
    rec: &StepRecord,
) -> (bool, String) {
    let same_columns = {
        let names = |r: &StepRecord| {
            let mut v: Vec<String> = r.columns.iter().map(|c| c.name.clone()).collect();
            v.sort_unstable();
            v
        };
        names(prev_rec) == names(rec)
    };
    let ignoring = rec
        .params
        .get("ignore_columns")
        .and_then(|v| v.as_array())
        .is_some_and(|a| !a.is_empty());
    let keyed = !d.key.is_empty();
    // The previous step's key hashes match this diff's rows only when it was keyed by the
    // same columns.
    let prev_keys = prev.keys().filter(|_| prev_rec.key == d.key);
    let (prev_sorted, cur_sorted) = (prev.content(), cur.content());
    let (added, removed, differing) = match (keyed, prev_keys, cur.keys()) {
        (true, Some(pk), Some(ck)) => match keyed_counts((pk, prev_sorted), (ck, cur_sorted)) {
            Ok(counts) => counts,
            Err(side) => {
                return (
                    false,
                    format!(
                        "the {side} row table repeats a key hash: keys of a keyed diff are unique"
                    ),
                );
            }
        },
        (true, _, _) => {
            let whole = if same_columns && !ignoring {
                WholeRows::Decide
            } else {
                WholeRows::Bound
            };
            let why = format!("the previous step was not keyed by ({})", d.key.join(", "));
            return recount_on_record(prev_sorted, cur_sorted, d, whole, &why);
        }
        (false, _, _) if !same_columns || ignoring => {
            let why = if same_columns {
                "the diff ignored some columns, so rows were compared on the others"
            } else {
                "the steps have different columns, so rows were compared on the columns of both"
            };
            return recount_on_record(prev_sorted, cur_sorted, d, WholeRows::Bound, why);
        }
        (false, _, _) => {
            let same = common(prev_sorted, cur_sorted);
            (
                cur_sorted.len() as u64 - same,
                prev_sorted.len() as u64 - same,
                0,
            )
        }
    };
    let mut problems = Vec::new();
    if added != d.added {
        problems.push(format!(
            "{added} rows added by the row hashes, summary says {}",
            d.added
        ));
    }
    if removed != d.removed {
        problems.push(format!(
            "{removed} rows removed by the row hashes, summary says {}",
            d.removed
        ));
    }
    if d.rows_before != prev_sorted.len() as u64 || d.rows_after != cur_sorted.len() as u64 {
        problems.push("row counts differ from the row tables".into());
    }
    // With the same columns and nothing ignored, a matched row changed exactly when its row
    // hash changed (or it is equal only within tolerance).
    if keyed && same_columns && !ignoring && differing != d.changed + d.within_tolerance {
        problems.push(format!(
            "{differing} matched rows have a new row hash, summary says {} changed and {} within tolerance",
            d.changed, d.within_tolerance
        ));
    }
    if problems.is_empty() {
        (
            true,
            format!(
                "+{added} -{removed} ~{} recomputed from the row hashes",
                d.changed
            ),
        )
    } else {
        (false, problems.join("; "))
    }
}

/// What the row hashes say of a diff's unchanged rows when they cannot match its rows.
#[derive(Clone, Copy)]
enum WholeRows {
    /// Equal row hashes are exactly the unchanged rows (all columns compared, keys unique).
    Decide,
    /// The diff compared only some columns: rows equal as a whole are unchanged, so there
    /// are at least as many unchanged rows as rows in both row tables.
    Bound,
}

/// A diff whose rows the row tables cannot match as the diff did: a keyed diff against a
/// step that was not keyed by the same columns (the previous row table has no key hashes to
/// match by), or a diff of only some columns (some added, removed or ignored). What the row
/// hashes still prove is checked: the row counts, the partition of each side into unchanged
/// and other rows, and the number of unchanged rows, exactly or as a bound.
fn recount_on_record(
    prev_sorted: &[[u8; 32]],
    cur_sorted: &[[u8; 32]],
    d: &DiffSummary,
    whole: WholeRows,
    why: &str,
) -> (bool, String) {
    let (before, after) = (prev_sorted.len() as u64, cur_sorted.len() as u64);
    // `unchanged` counts the rows equal only within tolerance too.
    let matched = d.unchanged + d.changed;
    let mut problems = Vec::new();
    if d.rows_before != before || d.rows_after != after {
        problems.push("row counts differ from the row tables".to_string());
    }
    if d.added + matched != after || d.removed + matched != before {
        problems.push(format!(
            "+{} -{} and {matched} matched rows do not add up to {before} rows before and {after} after",
            d.added, d.removed
        ));
    }
    if d.key.is_empty() && d.changed > 0 {
        problems.push(format!(
            "a diff without a key has no changed rows, summary says {}",
            d.changed
        ));
    }
    let same = common(prev_sorted, cur_sorted);
    let exact = d.unchanged.saturating_sub(d.within_tolerance);
    match whole {
        WholeRows::Decide if same != exact => problems.push(format!(
            "{same} rows are in both row tables, summary says {exact} unchanged exactly"
        )),
        WholeRows::Bound if same > d.unchanged => problems.push(format!(
            "{same} rows are in both row tables as a whole, summary says only {} unchanged",
            d.unchanged
        )),
        _ => {}
    }
    if !problems.is_empty() {
        return (false, problems.join("; "));
    }
    let unchanged = match whole {
        WholeRows::Decide => format!(
            "{} unchanged rows recomputed from the row hashes",
            d.unchanged
        ),
        WholeRows::Bound => format!(
            "{} unchanged rows, of which {same} are the same as a whole by the row hashes",
            d.unchanged
        ),
    };
    (
        true,
        format!(
            "{why}: {unchanged}; the split of the others into +{} -{} ~{} rests on the signed record",
            d.added, d.removed, d.changed
        ),
    )
}

/// The records a claim's step names: every step of that name, else the step at that index.
fn step_named<'a>(records: &'a [StepRecord], step: &str) -> Vec<&'a StepRecord> {
    let named: Vec<&StepRecord> = records.iter().filter(|rec| rec.step == step).collect();
    if !named.is_empty() {
        return named;
    }
    step.parse::<usize>()
        .ok()
        .and_then(|i| records.get(i))
        .into_iter()
        .collect()
}

fn verify_data(r: &mut VerifyReport, records: &[StepRecord], claim: DataClaim<'_>) {
    let f = match fingerprint::fingerprint_only(claim.data) {
        Ok(f) => f,
        Err(e) => {
            r.check(
                "data",
                None,
                false,
                format!("cannot fingerprint the data: {e}"),
            );
            return;
        }
    };
    let matches = |rec: &StepRecord| rec.content_root == f.content_root && rec.rows == f.rows;
    match claim.step {
        // Several steps may share a name (a step repeated in a loop): the data is claimed
        // to be one of them. A name no step has may be an index: that step alone.
        Some(name) => match step_named(records, name)[..] {
            [] => r.check(
                "data",
                None,
                false,
                format!("the bundle has no step named `{name}`, nor at index `{name}`"),
            ),
            ref named => {
                let rec = named
                    .iter()
                    .copied()
                    .find(|r| matches(r))
                    .unwrap_or(named[0]);
                let ok = matches(rec);
                let detail = if ok {
                    let order = if rec.order_root == f.order_root {
                        "in the same row order"
                    } else {
                        "in a different row order"
                    };
                    let schema = if rec.schema_hash == f.schema_hash {
                        "same physical schema"
                    } else {
                        "different physical schema (types or column order)"
                    };
                    format!(
                        "the data is exactly this step's rows ({} rows, {order}, {schema})",
                        f.rows
                    )
                } else {
                    let others = if named.len() > 1 {
                        let at: Vec<String> =
                            named[1..].iter().map(|r| r.index.to_string()).collect();
                        format!(
                            "; nor is it that of the other steps named `{name}` (at {})",
                            at.join(", ")
                        )
                    } else {
                        String::new()
                    };
                    format!(
                        "the data is not this step's output: {} rows with content root {}, the step has {} rows with {}{}{others}",
                        f.rows,
                        short(&f.content_root),
                        rec.rows,
                        short(&rec.content_root),
                        columns_apart(rec, &f)
                    )
                };
                r.check("data", Some(rec), ok, detail);
            }
        },
        None => match records.iter().find(|rec| matches(rec)) {
            Some(rec) => r.check(
                "data",
                Some(rec),
                true,
                format!(
                    "the data is exactly the output of step {} `{}`",
                    rec.index, rec.step
                ),
            ),
            None => r.check(
                "data",
                None,
                false,
                format!(
                    "the data ({} rows, content root {}) is the output of no step of this run",
                    f.rows,
                    short(&f.content_root)
                ),
            ),
        },
    }
}

/// An empty table with a given schema, as the "previous step" of a run's first step.
struct Empty(arrow_schema::SchemaRef);

impl BatchSource for Empty {
    fn schema(&self) -> arrow_schema::SchemaRef {
        Arc::clone(&self.0)
    }
    fn scan(&self) -> Result<crate::table::BatchIter<'_>> {
        Ok(Box::new(std::iter::empty()))
    }
}

/// What the server knows of a new step besides its data.
pub struct StepContext<'a> {
    /// The run.
    pub run: &'a RunInfo,
    /// The step's position (0-based).
    pub index: u64,
    /// The step's name.
    pub step: &'a str,
    /// When the step is stored (RFC 3339, UTC).
    pub created_at: &'a str,
    /// The step's parameters as sent, recorded verbatim.
    pub params: serde_json::Value,
    /// The diff options.
    pub config: &'a crate::diff::DiffConfig,
    /// The previous step's record and data, unless this is the first step.
    pub previous: Option<(&'a StepRecord, &'a dyn BatchSource)>,
    /// What was stored of the previous step, its row table and statistics, when at hand:
    /// the diff then takes the previous side's hashes and statistics from them (once both
    /// are checked against the record's hashes) instead of hashing its data again.
    pub previous_stored: Option<(RowTable, Vec<ColumnStats>)>,
}

/// A built step: its record, what a bundle stores of it, and the full diff (for replies).
pub struct BuiltStep {
    /// The chained record.
    pub record: StepRecord,
    /// Row table, diff summary, statistics and details.
    pub stored: BundleStep,
    /// The diff against the previous step (for the first step: against an empty table,
    /// which checks the key; not stored).
    pub diff: crate::diff::Diff,
}

/// Fingerprints a step, diffs it against the previous one, and builds its chained record:
/// the one implementation of "what a step records", used by the server and by tests.
pub fn build_step(data: &dyn BatchSource, ctx: StepContext<'_>) -> Result<BuiltStep> {
    let empty = Empty(data.schema());
    let (prev_record, prev_data): (Option<&StepRecord>, &dyn BatchSource) = match ctx.previous {
        Some((r, d)) => (Some(r), d),
        None => (None, &empty),
    };
    let known = match (prev_record, ctx.previous_stored) {
        (Some(rec), Some((rows, stats)))
            if rows.hash() == rec.row_table_hash && stats_digest(&stats) == rec.stats_digest =>
        {
            Some(crate::diff::Known {
                fingerprinted: fingerprint::Fingerprinted {
                    fingerprint: fingerprint::Fingerprint {
                        spec: crate::hash::FINGERPRINT_SPEC.into(),
                        rows: rec.rows,
                        schema_hash: rec.schema_hash,
                        content_root: rec.content_root,
                        order_root: rec.order_root,
                        columns: rec.columns.clone(),
                    },
                    row_hashes: rows.row_hashes,
                    key_hashes: rows.key_hashes,
                },
                key: rec.key.clone(),
                stats,
            })
        }
        _ => None,
    };
    let d = crate::diff::diff_known(prev_data, known, data, ctx.config)
        .map_err(|e| e.in_steps(prev_record.is_none()))?;
    let f = &d.after.fingerprint;
    let stats: Vec<ColumnStats> = {
        let schema = data.schema();
        schema
            .fields()
            .iter()
            .map(|field| {
                d.summary
                    .stats
                    .iter()
                    .find(|p| &p.name == field.name())
                    .and_then(|p| p.after.clone())
                    .expect("the diff has statistics for every column")
            })
            .collect()
    };
    let row_table = RowTable {
        key_hashes: d.after.key_hashes.clone(),
        row_hashes: d.after.row_hashes.clone(),
    };
    let (diff, details) = match prev_record {
        Some(_) => (
            Some(d.summary.clone()),
            Some(Details::from_diff(&d.details)),
        ),
        None => (None, None),
    };
    let record = StepRecord {
        spec: record::RECORD_SPEC.into(),
        run_id: ctx.run.id.clone(),
        pipeline: ctx.run.pipeline.clone(),
        index: ctx.index,
        step: ctx.step.into(),
        created_at: ctx.created_at.into(),
        code_version: ctx.run.code_version.clone(),
        params: ctx.params,
        key: ctx.config.key.clone(),
        rows: f.rows,
        schema_hash: f.schema_hash,
        content_root: f.content_root,
        order_root: f.order_root,
        columns: f.columns.clone(),
        stats_digest: stats_digest(&stats),
        diff_summary_hash: diff.as_ref().map(diff_summary_hash),
        details_hash: details.as_ref().map(Details::hash).transpose()?,
        row_table_hash: row_table.hash(),
        prev: prev_record.map(StepRecord::hash),
    };
    Ok(BuiltStep {
        record,
        stored: BundleStep {
            row_table,
            diff,
            stats,
            details,
        },
        diff: d,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `ops` leave in a file: writes at the position, and seeks from the start, the end
    /// and the position.
    #[cfg(not(target_arch = "wasm32"))]
    fn replay<W: Write + Seek>(mut w: W, ops: &[(u8, i64, Vec<u8>)]) -> W {
        for (kind, by, bytes) in ops {
            let to = match kind % 3 {
                0 => SeekFrom::Start(by.unsigned_abs() % 300),
                1 => SeekFrom::End(-(by.abs() % 40)),
                _ => SeekFrom::Current(by % 40),
            };
            if w.seek(to).is_ok() {
                w.write_all(bytes).unwrap();
            }
        }
        w
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever is written where, with gaps, rewrites and seeks, the comparison finds
            /// the first byte at which the file written would differ from the bytes expected.
            #[test]
            fn compare_finds_the_first_difference_of_what_a_file_would_hold(
                ops in proptest::collection::vec(
                    (any::<u8>(), any::<i64>(), proptest::collection::vec(0u8..4, 1..60)),
                    0..30,
                ),
                changes in proptest::collection::vec((any::<usize>(), 1u8..4), 0..3),
                cut in proptest::option::of(any::<usize>()),
                more in proptest::collection::vec(0u8..4, 0..3),
            ) {
                let file = replay(Cursor::new(Vec::new()), &ops).into_inner();
                let mut expected = file.clone();
                for (at, x) in changes {
                    if !expected.is_empty() {
                        let at = at % expected.len();
                        expected[at] ^= x;
                    }
                }
                if let Some(cut) = cut {
                    expected.truncate(cut % (expected.len() + 1));
                }
                expected.extend(more);
                let want = file
                    .iter()
                    .zip(&expected)
                    .position(|(a, b)| a != b)
                    .or((file.len() != expected.len()).then_some(file.len().min(expected.len())))
                    .map(|p| p as u64);
                let compared = replay(Compare::keeping(Cursor::new(&expected), usize::MAX).unwrap(), &ops);
                prop_assert_eq!(compared.first_difference(), want);
                // Compared a few bytes at a time, runs that go on across pieces are one.
                let mut few_at_a_time = Compare::keeping(Cursor::new(&expected), usize::MAX).unwrap();
                few_at_a_time.piece = 7;
                prop_assert_eq!(replay(few_at_a_time, &ops).first_difference(), want);
                // Keeping few runs, it still finds a difference where there is one, never one
                // past the first (and may find one in a file that ends up the same).
                let few = replay(Compare::keeping(Cursor::new(&expected), 2).unwrap(), &ops).first_difference();
                if let Some(want) = want {
                    prop_assert!(few.is_some_and(|f| f <= want), "{:?} for {}", few, want);
                }
            }
        }
    }

    fn h(n: u32) -> Hash {
        Hash(*blake3::hash(&n.to_le_bytes()).as_bytes())
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn keyed_counts_match_rows_by_key() {
        // Keys 0..6 before, 2..9 after; of the 4 matched, keys 3 and 4 have new rows. A
        // row's hash stands for all its cells, the key among them: here k -> 100 + k.
        let sorted = |v: Vec<Hash>| fingerprint::sorted_content(&v);
        let keys_before = sorted((0..6).map(h).collect());
        let keys_after = sorted((2..9).map(h).collect());
        let rows_before = sorted((0..6).map(|k| h(100 + k)).collect());
        let rows_after = sorted(
            (2..9)
                .map(|k| h(if k == 3 || k == 4 { 200 + k } else { 100 + k }))
                .collect(),
        );
        let p = (&keys_before[..], &rows_before[..]);
        let c = (&keys_after[..], &rows_after[..]);
        assert_eq!(keyed_counts(p, c), Ok((3, 2, 2)));
        let repeated = sorted(vec![h(1), h(2), h(1)]);
        let rows = sorted(vec![h(7), h(8), h(9)]);
        assert_eq!(keyed_counts(p, (&repeated, &rows)), Err("current"));
        assert_eq!(keyed_counts((&repeated, &rows), c), Err("previous"));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn common_counts_a_multiset_intersection() {
        let a = fingerprint::sorted_content(&[h(1), h(1), h(1), h(2), h(3)]);
        let b = fingerprint::sorted_content(&[h(1), h(1), h(3), h(3), h(4)]);
        assert_eq!(common(&a, &b), 3);
        assert_eq!(common(&a, &[]), 0);
    }
}
