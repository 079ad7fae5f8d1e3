//! The reference workload: a transactions table and its next step, generated
//! deterministically from a seed.
//!
//! Every value of row `id` comes from a ChaCha8 stream keyed by `(seed, id)`, and every
//! change made to it in the next step from a second stream keyed by `(seed, id, 1)`; the
//! choice of changed, removed and added rows and the shuffle of the next step come from a
//! third stream. So any batch can be built on its own, in parallel, and the same seed gives
//! the same values on every machine (ChaCha's output is specified, unlike `StdRng`'s).
//!
//! The changes are chosen so that every tool agrees on them: a changed cell always differs
//! under null-safe, NaN-aware comparison, and a float never changes between null and NaN
//! (pandas cannot tell those apart) nor between `0.0` and `-0.0`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use rand::RngExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// The seed `pipeproof-gen` uses unless told otherwise.
pub const DEFAULT_SEED: u64 = 20_240_101;

/// The key column.
pub const KEY: &str = "id";

/// The column names, in schema order. `id` is the key; the other eleven can change.
pub const COLUMNS: [&str; 12] = [
    "id",
    "account_id",
    "created_at",
    "settled_at",
    "amount",
    "fee",
    "quantity",
    "currency",
    "merchant",
    "status",
    "description",
    "flagged",
];

const CURRENCIES: [&str; 10] = [
    "EUR", "USD", "GBP", "CHF", "JPY", "SEK", "NOK", "DKK", "PLN", "CZK",
];
/// Cumulative weights (out of 100) of [`CURRENCIES`].
const CURRENCY_WEIGHTS: [u32; 10] = [40, 70, 80, 85, 89, 92, 94, 96, 98, 100];
const STATUSES: [&str; 5] = ["settled", "pending", "refunded", "disputed", "cancelled"];
/// Cumulative weights (out of 100) of [`STATUSES`].
const STATUS_WEIGHTS: [u32; 5] = [70, 85, 93, 97, 100];
const MERCHANTS: u32 = 2_000;
const WORDS: [&str; 48] = [
    "payment",
    "invoice",
    "refund",
    "order",
    "subscription",
    "monthly",
    "annual",
    "fee",
    "transfer",
    "card",
    "online",
    "store",
    "grocery",
    "fuel",
    "travel",
    "hotel",
    "flight",
    "train",
    "café",
    "Zürich",
    "München",
    "São Paulo",
    "office",
    "supplies",
    "software",
    "licence",
    "consulting",
    "services",
    "rent",
    "utilities",
    "insurance",
    "premium",
    "claim",
    "reimbursement",
    "salary",
    "bonus",
    "tax",
    "VAT",
    "adjustment",
    "chargeback",
    "deposit",
    "withdrawal",
    "ATM",
    "interest",
    "dividend",
    "pharmacy",
    "clinic",
    "donation",
];
/// 2024-01-01T00:00:00Z in microseconds.
const BASE_MICROS: i64 = 1_704_067_200_000_000;
const SECOND: i64 = 1_000_000;
const DAY: i64 = 86_400 * SECOND;

/// The workload's schema: 12 columns of ints, floats, timestamps, strings and booleans.
pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("account_id", DataType::Int64, false),
        Field::new("created_at", ts.clone(), false),
        Field::new("settled_at", ts, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("fee", DataType::Float64, true),
        Field::new("quantity", DataType::Int32, true),
        Field::new("currency", DataType::Utf8, false),
        Field::new("merchant", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, true),
        Field::new("description", DataType::Utf8, true),
        Field::new("flagged", DataType::Boolean, true),
    ]))
}

/// Which table of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first step: ids `1..=rows` in order.
    Before,
    /// The next step: changed, with rows removed and added, shuffled.
    After,
}

/// The counts a correct keyed diff of the pair finds, known from the generation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Expected {
    /// The seed the pair was generated from.
    pub seed: u64,
    /// The key column.
    pub key: String,
    /// Rows of the before table.
    pub rows_before: u64,
    /// Rows of the after table.
    pub rows_after: u64,
    /// Rows only in the after table.
    pub added: u64,
    /// Rows only in the before table.
    pub removed: u64,
    /// Rows in both with at least one differing cell.
    pub changed: u64,
    /// Rows in both with no differing cell.
    pub unchanged: u64,
    /// Changed cells per non-key column (every column is listed, zeros included).
    pub columns: BTreeMap<String, u64>,
}

/// Row status in the next step.
const KEPT: u8 = 0;
const CHANGED: u8 = 1;
const REMOVED: u8 = 2;

/// A generated pair of tables, described by the seed and the plan of changes; batches are
/// built on demand.
pub struct Workload {
    rows: u64,
    seed: u64,
    /// Per before id (index `id - 1`): kept, changed or removed.
    status: Vec<u8>,
    /// The ids of the after table in row order.
    after_ids: Vec<u64>,
}

fn rng_for(seed: u64, id: u64, stream: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&id.to_le_bytes());
    key[16..24].copy_from_slice(&stream.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

const PLAN_STREAM: u64 = u64::MAX;
const CHANGE_STREAM: u64 = 1;

impl Workload {
    /// Plans the pair for `rows` before rows: `rows / 100` changed, `rows / 200` removed and
    /// `rows / 200` added.
    pub fn new(rows: u64, seed: u64) -> Workload {
        let changed = rows / 100;
        let removed = rows / 200;
        let added = rows / 200;
        let mut rng = rng_for(seed, 0, PLAN_STREAM);
        let mut status = vec![KEPT; rows as usize];
        let mut ids: Vec<u64> = (1..=rows).collect();
        for i in 0..(changed + removed) as usize {
            let j = rng.random_range(i..ids.len());
            ids.swap(i, j);
            status[ids[i] as usize - 1] = if (i as u64) < changed {
                CHANGED
            } else {
                REMOVED
            };
        }
        drop(ids);
        let mut after_ids: Vec<u64> = (1..=rows)
            .filter(|id| status[*id as usize - 1] != REMOVED)
            .chain(rows + 1..=rows + added)
            .collect();
        for i in (1..after_ids.len()).rev() {
            let j = rng.random_range(0..=i);
            after_ids.swap(i, j);
        }
        Workload {
            rows,
            seed,
            status,
            after_ids,
        }
    }

    /// Rows of one side.
    pub fn num_rows(&self, side: Side) -> usize {
        match side {
            Side::Before => self.rows as usize,
            Side::After => self.after_ids.len(),
        }
    }

    /// The counts a correct diff finds, computed by replaying the planned changes.
    pub fn expected(&self) -> Expected {
        let mut columns: BTreeMap<String, u64> =
            COLUMNS[1..].iter().map(|c| (c.to_string(), 0)).collect();
        let mut changed = 0;
        let mut removed = 0;
        for (i, s) in self.status.iter().enumerate() {
            match *s {
                CHANGED => {
                    changed += 1;
                    let mut row = Row::generate(self.seed, i as u64 + 1);
                    for c in row.change(self.seed, i as u64 + 1) {
                        *columns.get_mut(COLUMNS[c]).expect("column") += 1;
                    }
                }
                REMOVED => removed += 1,
                _ => {}
            }
        }
        let rows_after = self.after_ids.len() as u64;
        Expected {
            seed: self.seed,
            key: KEY.to_string(),
            rows_before: self.rows,
            rows_after,
            added: rows_after - (self.rows - removed),
            removed,
            changed,
            unchanged: self.rows - removed - changed,
            columns,
        }
    }

    fn id_at(&self, side: Side, index: usize) -> u64 {
        match side {
            Side::Before => index as u64 + 1,
            Side::After => self.after_ids[index],
        }
    }

    /// The rows `range` of one side as one batch.
    pub fn batch(&self, side: Side, range: Range<usize>) -> RecordBatch {
        let mut b = Builders::with_capacity(range.len());
        for index in range {
            let id = self.id_at(side, index);
            let mut row = Row::generate(self.seed, id);
            if side == Side::After && id <= self.rows && self.status[id as usize - 1] == CHANGED {
                row.change(self.seed, id);
            }
            b.push(id, &row);
        }
        b.finish()
    }

    /// Calls `each` with the batches of one side in row order, `batch_rows` rows each,
    /// building a few batches at a time in parallel.
    pub fn for_each_batch<E>(
        &self,
        side: Side,
        batch_rows: usize,
        mut each: impl FnMut(RecordBatch) -> Result<(), E>,
    ) -> Result<(), E> {
        let n = self.num_rows(side);
        let batch_rows = batch_rows.max(1);
        let starts: Vec<usize> = (0..n).step_by(batch_rows).collect();
        let group = 2 * rayon::current_num_threads().max(1);
        for window in starts.chunks(group) {
            let batches: Vec<RecordBatch> = window
                .par_iter()
                .map(|&s| self.batch(side, s..(s + batch_rows).min(n)))
                .collect();
            for b in batches {
                each(b)?;
            }
        }
        Ok(())
    }

    /// All batches of one side, in memory.
    pub fn batches(&self, side: Side, batch_rows: usize) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        self.for_each_batch::<std::convert::Infallible>(side, batch_rows, |b| {
            out.push(b);
            Ok(())
        })
        .unwrap_or_else(|e| match e {});
        out
    }
}

/// One row's values, before any change.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    account_id: i64,
    created_at: i64,
    settled_at: Option<i64>,
    amount: Option<f64>,
    fee: Option<f64>,
    quantity: Option<i32>,
    currency: usize,
    merchant: u32,
    status: Option<usize>,
    description: Option<String>,
    flagged: Option<bool>,
}

fn weighted(rng: &mut ChaCha8Rng, cumulative: &[u32]) -> usize {
    let r = rng.random_range(0..*cumulative.last().expect("weights"));
    cumulative.iter().position(|&w| r < w).expect("in range")
}

fn words(rng: &mut ChaCha8Rng) -> String {
    let n = rng.random_range(3..=10);
    let mut s = String::with_capacity(n * 9 + 8);
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    if rng.random_bool(0.3) {
        s.push_str(&format!(" #{}", rng.random_range(10_000..100_000u32)));
    }
    s
}

fn money(rng: &mut ChaCha8Rng, max_cents: i64) -> f64 {
    rng.random_range(1..=max_cents) as f64 / 100.0
}

impl Row {
    fn generate(seed: u64, id: u64) -> Row {
        let rng = &mut rng_for(seed, id, 0);
        let created_at = BASE_MICROS + rng.random_range(0..365 * DAY);
        let per_mille = |rng: &mut ChaCha8Rng| rng.random_range(0..1000u32);
        Row {
            account_id: rng.random_range(1..=200_000),
            created_at,
            settled_at: (per_mille(rng) >= 100).then(|| created_at + rng.random_range(0..5 * DAY)),
            amount: match per_mille(rng) {
                0..20 => None,
                20..30 => Some(f64::NAN),
                30..33 => Some(0.0),
                33..35 => Some(-0.0),
                35..85 => Some(-money(rng, 500_000)),
                _ => Some(money(rng, 1_000_000)),
            },
            fee: match per_mille(rng) {
                0..50 => None,
                50..55 => Some(f64::NAN),
                _ => Some(money(rng, 5_000)),
            },
            quantity: (per_mille(rng) >= 30).then(|| rng.random_range(1..=500)),
            currency: weighted(rng, &CURRENCY_WEIGHTS),
            merchant: rng.random_range(0..MERCHANTS),
            status: (per_mille(rng) >= 10).then(|| weighted(rng, &STATUS_WEIGHTS)),
            description: (per_mille(rng) >= 10).then(|| words(rng)),
            flagged: (per_mille(rng) >= 20).then(|| rng.random_bool(0.03)),
        }
    }

    /// Applies the planned change of row `id` and returns the changed columns (indices
    /// into [`COLUMNS`], ascending). Every change is a real difference under null-safe,
    /// NaN-aware comparison.
    fn change(&mut self, seed: u64, id: u64) -> Vec<usize> {
        let rng = &mut rng_for(seed, id, CHANGE_STREAM);
        let mut columns: Vec<usize> = (1..COLUMNS.len()).collect();
        let k = rng.random_range(1..=3);
        for i in 0..k {
            let j = rng.random_range(i..columns.len());
            columns.swap(i, j);
        }
        columns.truncate(k);
        columns.sort_unstable();
        for &c in &columns {
            self.change_column(c, rng);
        }
        columns
    }

    fn change_column(&mut self, column: usize, rng: &mut ChaCha8Rng) {
        let one_in = |rng: &mut ChaCha8Rng, n: u32| rng.random_range(0..n) == 0;
        match COLUMNS[column] {
            "account_id" => self.account_id += rng.random_range(1..=1_000),
            "created_at" => self.created_at += rng.random_range(1..=86_400) * SECOND,
            "settled_at" => {
                self.settled_at = match self.settled_at {
                    None => Some(self.created_at + rng.random_range(1..=48) * 3_600 * SECOND),
                    Some(_) if one_in(rng, 10) => None,
                    Some(t) => Some(t + rng.random_range(1..=3_600) * SECOND),
                }
            }
            "amount" => self.amount = change_float(self.amount, rng, 1_000_000),
            "fee" => self.fee = change_float(self.fee, rng, 5_000),
            "quantity" => {
                self.quantity = match self.quantity {
                    None => Some(rng.random_range(1..=500)),
                    Some(_) if one_in(rng, 10) => None,
                    Some(q) => Some(q + rng.random_range(1..=10)),
                }
            }
            "currency" => {
                self.currency =
                    (self.currency + rng.random_range(1..CURRENCIES.len())) % CURRENCIES.len()
            }
            "merchant" => {
                self.merchant = (self.merchant + rng.random_range(1..MERCHANTS)) % MERCHANTS
            }
            "status" => {
                self.status = match self.status {
                    None => Some(rng.random_range(0..STATUSES.len())),
                    Some(_) if one_in(rng, 10) => None,
                    Some(s) => Some((s + rng.random_range(1..STATUSES.len())) % STATUSES.len()),
                }
            }
            "description" => {
                self.description = match self.description.take() {
                    None => Some(words(rng)),
                    Some(_) if one_in(rng, 10) => None,
                    Some(s) => Some(format!("{s} (amended)")),
                }
            }
            "flagged" => {
                self.flagged = match self.flagged {
                    None => Some(rng.random_bool(0.5)),
                    Some(_) if one_in(rng, 5) => None,
                    Some(b) => Some(!b),
                }
            }
            other => unreachable!("column {other} cannot change"),
        }
    }
}

/// A changed float: null and NaN become a number (never each other, which pandas cannot
/// tell apart); a number becomes null, NaN, or moves by at least 0.01 (never to `-0.0`
/// from `0.0` or back, which compare equal).
fn change_float(old: Option<f64>, rng: &mut ChaCha8Rng, max_cents: i64) -> Option<f64> {
    match old {
        None => Some(money(rng, max_cents)),
        Some(v) if v.is_nan() => Some(money(rng, max_cents)),
        Some(v) => match rng.random_range(0..20) {
            0 => None,
            1 => Some(f64::NAN),
            _ => Some(v + money(rng, 10_000)),
        },
    }
}

struct Builders {
    id: Int64Builder,
    account_id: Int64Builder,
    created_at: TimestampMicrosecondBuilder,
    settled_at: TimestampMicrosecondBuilder,
    amount: Float64Builder,
    fee: Float64Builder,
    quantity: Int32Builder,
    currency: StringBuilder,
    merchant: StringBuilder,
    status: StringBuilder,
    description: StringBuilder,
    flagged: BooleanBuilder,
    merchant_name: String,
}

impl Builders {
    fn with_capacity(n: usize) -> Builders {
        let ts = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        Builders {
            id: Int64Builder::with_capacity(n),
            account_id: Int64Builder::with_capacity(n),
            created_at: ts(),
            settled_at: ts(),
            amount: Float64Builder::with_capacity(n),
            fee: Float64Builder::with_capacity(n),
            quantity: Int32Builder::with_capacity(n),
            currency: StringBuilder::with_capacity(n, n * 3),
            merchant: StringBuilder::with_capacity(n, n * 13),
            status: StringBuilder::with_capacity(n, n * 8),
            description: StringBuilder::with_capacity(n, n * 60),
            flagged: BooleanBuilder::with_capacity(n),
            merchant_name: String::new(),
        }
    }

    fn push(&mut self, id: u64, r: &Row) {
        use std::fmt::Write;
        self.id.append_value(id as i64);
        self.account_id.append_value(r.account_id);
        self.created_at.append_value(r.created_at);
        self.settled_at.append_option(r.settled_at);
        self.amount.append_option(r.amount);
        self.fee.append_option(r.fee);
        self.quantity.append_option(r.quantity);
        self.currency.append_value(CURRENCIES[r.currency]);
        self.merchant_name.clear();
        write!(self.merchant_name, "merchant-{:04}", r.merchant).expect("write to String");
        self.merchant.append_value(&self.merchant_name);
        self.status.append_option(r.status.map(|s| STATUSES[s]));
        self.description.append_option(r.description.as_deref());
        self.flagged.append_option(r.flagged);
    }

    fn finish(mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.account_id.finish()),
            Arc::new(self.created_at.finish()),
            Arc::new(self.settled_at.finish()),
            Arc::new(self.amount.finish()),
            Arc::new(self.fee.finish()),
            Arc::new(self.quantity.finish()),
            Arc::new(self.currency.finish()),
            Arc::new(self.merchant.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.description.finish()),
            Arc::new(self.flagged.finish()),
        ];
        RecordBatch::try_new(schema(), columns).expect("columns match the schema")
    }
}

/// The batch with its timestamps' zone written as the offset `+00:00`: arrow-csv formats
/// named zones only with chrono-tz, and the instants are the same.
pub fn for_csv(batch: &RecordBatch) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        match column
            .as_any()
            .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
        {
            Some(ts) => {
                let ts = ts.clone().with_timezone("+00:00");
                fields.push(
                    field
                        .as_ref()
                        .clone()
                        .with_data_type(ts.data_type().clone()),
                );
                columns.push(Arc::new(ts) as ArrayRef);
            }
            None => {
                fields.push(field.as_ref().clone());
                columns.push(Arc::clone(column));
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_plan() {
        let w = Workload::new(20_000, DEFAULT_SEED);
        let e = w.expected();
        assert_eq!((e.changed, e.removed, e.added), (200, 100, 100));
        assert_eq!(e.rows_after, 20_000);
        assert_eq!(e.unchanged, 20_000 - 300);
        let cells: u64 = e.columns.values().sum();
        assert!(cells >= e.changed && cells <= 3 * e.changed, "{cells}");
        assert_eq!(e.columns.len(), 11);
        assert!(!e.columns.contains_key(KEY));
    }

    #[test]
    fn same_seed_same_batches_other_seed_other_values() {
        let a = Workload::new(5_000, 7);
        let b = Workload::new(5_000, 7);
        let c = Workload::new(5_000, 8);
        for side in [Side::Before, Side::After] {
            assert_eq!(a.batches(side, 1_000), b.batches(side, 1_000));
        }
        assert_ne!(
            a.batches(Side::Before, 1_000),
            c.batches(Side::Before, 1_000)
        );
        // Batch boundaries do not change the values.
        let whole = a.batch(Side::After, 0..5_000);
        let mut offset = 0;
        for part in a.batches(Side::After, 777) {
            assert_eq!(whole.slice(offset, part.num_rows()), part);
            offset += part.num_rows();
        }
        assert_eq!(offset, 5_000);
    }

    #[test]
    fn after_is_a_shuffle_with_the_planned_rows() {
        let w = Workload::new(10_000, DEFAULT_SEED);
        let mut ids = w.after_ids.clone();
        assert_ne!(
            ids.iter().take(100).copied().collect::<Vec<_>>(),
            (1..=100).collect::<Vec<_>>()
        );
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), w.after_ids.len(), "after ids are unique");
        let removed: Vec<u64> = (1..=10_000)
            .filter(|id| w.status[*id as usize - 1] == REMOVED)
            .collect();
        assert!(removed.iter().all(|id| ids.binary_search(id).is_err()));
        assert_eq!(ids.iter().filter(|id| **id > 10_000).count(), 50);
    }

    #[test]
    fn every_change_is_a_real_difference() {
        let seed = DEFAULT_SEED;
        for id in 1..=5_000u64 {
            let before = Row::generate(seed, id);
            let mut after = before.clone();
            let cols = after.change(seed, id);
            assert!((1..=3).contains(&cols.len()));
            for c in cols {
                let differs = match COLUMNS[c] {
                    "amount" => float_differs(before.amount, after.amount),
                    "fee" => float_differs(before.fee, after.fee),
                    "account_id" => before.account_id != after.account_id,
                    "created_at" => before.created_at != after.created_at,
                    "settled_at" => before.settled_at != after.settled_at,
                    "quantity" => before.quantity != after.quantity,
                    "currency" => before.currency != after.currency,
                    "merchant" => before.merchant != after.merchant,
                    "status" => before.status != after.status,
                    "description" => before.description != after.description,
                    "flagged" => before.flagged != after.flagged,
                    other => panic!("unexpected column {other}"),
                };
                assert!(differs, "row {id} column {}", COLUMNS[c]);
            }
        }
    }

    /// Null-safe and NaN-aware; a change between null and NaN does not count, since pandas
    /// cannot see it (the generator must never make one).
    fn float_differs(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (None, None) => false,
            (Some(x), Some(y)) if x.is_nan() && y.is_nan() => false,
            (Some(x), Some(y)) => x != y,
            (Some(x), None) | (None, Some(x)) => !x.is_nan(),
        }
    }
}
