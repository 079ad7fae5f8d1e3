//! Per-column statistics of a table, for the statistics drift a diff shows: null and NaN
//! counts, a distinct-count estimate (HyperLogLog over the canonical cell encodings, so it
//! agrees with the fingerprint's notion of equal values), min, max and mean.
//! Statistics are informational: they are not part of the fingerprint.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema};

use crate::canon::{self, Family};
use crate::error::Result;

/// Statistics of one column.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ColumnStats {
    /// Cell count.
    pub count: u64,
    /// Null cells.
    pub nulls: u64,
    /// NaN cells (floats only).
    pub nans: u64,
    /// Estimated number of distinct non-null values (HyperLogLog with 4,096 registers:
    /// about 1.6 % error, and linear counting keeps small counts near exact), never more
    /// than the non-null values.
    pub distinct: u64,
    /// The smallest non-null value, as text (numbers, strings, temporal values, booleans).
    pub min: Option<String>,
    /// The largest non-null value, as text.
    pub max: Option<String>,
    /// The mean of non-null, non-NaN numbers (the share of `true` for booleans).
    pub mean: Option<f64>,
}

const HLL_BITS: u32 = 12;
const HLL_REGISTERS: usize = 1 << HLL_BITS;

/// Builds [`ColumnStats`] for every column, batch by batch.
pub struct StatsBuilder {
    columns: Vec<ColumnBuilder>,
}

struct ColumnBuilder {
    family: Option<Family>,
    count: u64,
    nulls: u64,
    nans: u64,
    min: Option<Extreme>,
    max: Option<Extreme>,
    sum: ExactSum,
    summed: u64,
}

/// An extreme value: the key it is ordered by, and its display.
#[derive(Clone)]
struct Extreme {
    key: Key,
    shown: String,
}

#[derive(Clone, PartialEq, PartialOrd)]
enum Key {
    Number(f64),
    Integer(i64),
    Text(String),
}

impl StatsBuilder {
    /// Starts the statistics of a table with this schema.
    pub fn new(schema: &Schema) -> StatsBuilder {
        StatsBuilder {
            columns: schema
                .fields()
                .iter()
                .map(|f| ColumnBuilder {
                    family: Family::of(f.data_type()),
                    count: 0,
                    nulls: 0,
                    nans: 0,
                    min: None,
                    max: None,
                    sum: ExactSum::default(),
                    summed: 0,
                })
                .collect(),
        }
    }

    /// Adds a batch.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let results = crate::par::map(
            &self.columns.iter().enumerate().collect::<Vec<_>>(),
            |(i, c)| c.partial(batch.column(*i)),
        );
        for (c, r) in self.columns.iter_mut().zip(results) {
            c.merge(r?);
        }
        Ok(())
    }

    /// The statistics, in column order, with the distinct counts of the fingerprint pass.
    pub fn finish(self, distinct: &[Distinct]) -> Vec<ColumnStats> {
        self.columns
            .into_iter()
            .zip(distinct)
            .map(|(c, d)| c.finish(d.estimate()))
            .collect()
    }
}

/// What one batch contributes to a column's statistics.
struct Partial {
    count: u64,
    nulls: u64,
    nans: u64,
    min: Option<Extreme>,
    max: Option<Extreme>,
    sum: ExactSum,
    summed: u64,
}

impl ColumnBuilder {
    fn partial(&self, array: &ArrayRef) -> Result<Partial> {
        let mut p = Partial {
            count: array.len() as u64,
            nulls: array.logical_null_count() as u64,
            nans: 0,
            min: None,
            max: None,
            sum: ExactSum::default(),
            summed: 0,
        };
        let Some(family) = self.family else {
            return Ok(p);
        };
        match family {
            Family::Int | Family::Float | Family::Decimal => {
                let f = arrow_cast::cast(array, &DataType::Float64)?;
                for v in f.as_primitive::<Float64Type>().iter().flatten() {
                    if v.is_nan() {
                        p.nans += 1;
                        continue;
                    }
                    p.sum.add(v);
                    p.summed += 1;
                    let e = || Extreme {
                        key: Key::Number(v),
                        shown: show_number(v),
                    };
                    consider(&mut p.min, &mut p.max, Key::Number(v), e);
                }
            }
            Family::Bool => {
                for v in array.as_boolean().iter().flatten() {
                    p.sum.add(v as u8 as f64);
                    p.summed += 1;
                    let e = || Extreme {
                        key: Key::Integer(v as i64),
                        shown: v.to_string(),
                    };
                    consider(&mut p.min, &mut p.max, Key::Integer(v as i64), e);
                }
            }
            Family::String => {
                // A dictionary's extremes are among its values: look only at those in use.
                let used;
                let source: &ArrayRef = match array.as_any_dictionary_opt() {
                    Some(dict) => {
                        let mut in_use = vec![false; dict.values().len()];
                        let valid = dict.keys().logical_nulls();
                        for (i, k) in dict.normalized_keys().into_iter().enumerate() {
                            if valid.as_ref().is_none_or(|n| n.is_valid(i)) {
                                in_use[k] = true;
                            }
                        }
                        let idx = arrow_array::UInt32Array::from_iter_values(
                            (0..in_use.len() as u32).filter(|&i| in_use[i as usize]),
                        );
                        used = arrow_select::take::take(dict.values(), &idx, None)?;
                        &used
                    }
                    None => array,
                };
                let s = arrow_cast::cast(source, &DataType::Utf8)?;
                for v in s.as_string::<i32>().iter().flatten() {
                    let e = || Extreme {
                        key: Key::Text(v.to_string()),
                        shown: shorten(v),
                    };
                    consider_text(&mut p.min, &mut p.max, v, e);
                }
            }
            Family::Timestamp | Family::Date | Family::Time | Family::Duration => {
                let plain = match array.data_type() {
                    DataType::Dictionary(_, v) => arrow_cast::cast(array, v)?,
                    _ => array.clone(),
                };
                if let Ok(ints) = arrow_cast::cast(&plain, &DataType::Int64) {
                    let ints = ints.as_primitive::<Int64Type>();
                    let mut lo: Option<(i64, usize)> = None;
                    let mut hi: Option<(i64, usize)> = None;
                    for (i, v) in ints.iter().enumerate() {
                        if let Some(v) = v {
                            if lo.is_none_or(|(m, _)| v < m) {
                                lo = Some((v, i));
                            }
                            if hi.is_none_or(|(m, _)| v > m) {
                                hi = Some((v, i));
                            }
                        }
                    }
                    let shown = |i: usize| -> Result<String> {
                        let cell = plain.slice(i, 1);
                        Ok(crate::diff::format_column(&cell)?[0]
                            .clone()
                            .unwrap_or_default())
                    };
                    if let (Some((lv, li)), Some((hv, hi))) = (lo, hi) {
                        p.min = Some(Extreme {
                            key: Key::Integer(lv),
                            shown: shown(li)?,
                        });
                        p.max = Some(Extreme {
                            key: Key::Integer(hv),
                            shown: shown(hi)?,
                        });
                    }
                }
            }
            Family::Binary | Family::Interval | Family::Null => {}
        }
        Ok(p)
    }

    fn merge(&mut self, p: Partial) {
        self.count += p.count;
        self.nulls += p.nulls;
        self.nans += p.nans;
        self.sum.merge(&p.sum);
        self.summed += p.summed;
        if let Some(m) = p.min
            && self.min.as_ref().is_none_or(|cur| m.key < cur.key)
        {
            self.min = Some(m);
        }
        if let Some(m) = p.max
            && self.max.as_ref().is_none_or(|cur| m.key > cur.key)
        {
            self.max = Some(m);
        }
    }

    /// The statistics, with the distinct estimate bounded by the non-null values counted
    /// (HyperLogLog may overshoot a small count by a few).
    fn finish(self, distinct: u64) -> ColumnStats {
        ColumnStats {
            count: self.count,
            nulls: self.nulls,
            nans: self.nans,
            distinct: distinct.min(self.count - self.nulls),
            min: self.min.map(|e| e.shown),
            max: self.max.map(|e| e.shown),
            mean: (self.summed > 0).then(|| self.sum.value() / self.summed as f64),
        }
    }
}

/// A sum of numbers kept exact until it is read, as a list of partial sums that do not
/// overlap (Shewchuk's, as Python's `math.fsum` keeps them): what is read is the exact sum
/// rounded to the nearest float, whatever the order the numbers came in and however they
/// were split into batches. A mean of the same values is then the same whether they came
/// as one batch or many (a plain float sum differs in its last digits).
#[derive(Debug, Default, Clone)]
struct ExactSum {
    /// Nonzero, in increasing magnitude; their exact sum is the finite numbers' sum.
    partials: Vec<f64>,
    /// Whether a +inf or a -inf was added, or the finite sum overflowed that way.
    pos_inf: bool,
    neg_inf: bool,
}

impl ExactSum {
    /// Adds a number (not NaN).
    fn add(&mut self, v: f64) {
        if v.is_infinite() {
            self.pos_inf |= v > 0.0;
            self.neg_inf |= v < 0.0;
            return;
        }
        let mut x = v;
        let mut kept = 0;
        for i in 0..self.partials.len() {
            let mut y = self.partials[i];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        self.partials.truncate(kept);
        if x.is_infinite() {
            // The finite sum overflowed.
            self.pos_inf |= x > 0.0;
            self.neg_inf |= x < 0.0;
            self.partials.clear();
        } else {
            self.partials.push(x);
        }
    }

    /// Adds another sum.
    fn merge(&mut self, other: &ExactSum) {
        for &p in &other.partials {
            self.add(p);
        }
        self.pos_inf |= other.pos_inf;
        self.neg_inf |= other.neg_inf;
    }

    /// The sum, rounded to the nearest float (ties to even); NaN if it holds both
    /// infinities.
    fn value(&self) -> f64 {
        match (self.pos_inf, self.neg_inf) {
            (true, true) => return f64::NAN,
            (true, false) => return f64::INFINITY,
            (false, true) => return f64::NEG_INFINITY,
            (false, false) => {}
        }
        // From the largest partial down, until the rest cannot change the rounding; then
        // a half-way case rounds the way the rest says.
        let p = &self.partials;
        let Some(mut n) = p.len().checked_sub(1) else {
            return 0.0;
        };
        let mut hi = p[n];
        let mut lo = 0.0;
        while n > 0 {
            n -= 1;
            let (x, y) = (hi, p[n]);
            hi = x + y;
            lo = y - (hi - x);
            if lo != 0.0 {
                break;
            }
        }
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
        hi
    }
}

fn consider(
    min: &mut Option<Extreme>,
    max: &mut Option<Extreme>,
    key: Key,
    e: impl Fn() -> Extreme,
) {
    if min.as_ref().is_none_or(|m| key < m.key) {
        *min = Some(e());
    }
    if max.as_ref().is_none_or(|m| key > m.key) {
        *max = Some(e());
    }
}

fn consider_text(
    min: &mut Option<Extreme>,
    max: &mut Option<Extreme>,
    v: &str,
    e: impl Fn() -> Extreme,
) {
    let less = |m: &Extreme| matches!(&m.key, Key::Text(t) if v < t.as_str());
    let more = |m: &Extreme| matches!(&m.key, Key::Text(t) if v > t.as_str());
    if min.as_ref().is_none_or(less) {
        *min = Some(e());
    }
    if max.as_ref().is_none_or(more) {
        *max = Some(e());
    }
}

fn show_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX - 1).collect();
        t.push('…');
        t
    }
}

/// A fast, fixed 64-bit hash of bytes (not cryptographic: for distinct estimates only).
#[cfg(test)]
fn hash64(bytes: &[u8]) -> u64 {
    hash64_at(bytes, 0, bytes.len())
}

/// [`hash64`] of `buf[from..to]`. Its last 0-7 bytes are read as one little-endian word,
/// zero-padded: with a word's room left in `buf`, by one load and a mask (a copy of a
/// variable length would be a call to memcpy for every cell).
fn hash64_at(buf: &[u8], from: usize, to: usize) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let word = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
    let mut h = ((to - from) as u64).wrapping_mul(K);
    let mut at = from;
    while at + 8 <= to {
        h = (h ^ word(at)).wrapping_mul(K).rotate_left(29);
        at += 8;
    }
    let rest = to - at;
    let tail = if rest == 0 {
        0
    } else if at + 8 <= buf.len() {
        word(at) & (u64::MAX >> (64 - 8 * rest))
    } else {
        buf[at..to]
            .iter()
            .enumerate()
            .fold(0u64, |t, (i, &b)| t | (b as u64) << (8 * i))
    };
    h = (h ^ tail).wrapping_mul(K);
    // Final avalanche (splitmix64).
    h ^= h >> 30;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// A HyperLogLog sketch of the distinct non-null cells of a column, fed with canonical
/// cell encodings (so two cells count as one value exactly when they encode alike).
#[derive(Clone)]
pub struct Distinct {
    registers: Vec<u8>,
}

impl Default for Distinct {
    fn default() -> Self {
        Distinct {
            registers: vec![0; HLL_REGISTERS],
        }
    }
}

impl Distinct {
    /// Adds encoded cells laid end to end, `ends[i]` being where cell `i` ends.
    pub(crate) fn add_cells(&mut self, bytes: &[u8], ends: &[u32]) {
        let mut from = 0usize;
        for &end in ends {
            let (at, to) = (from, end as usize);
            from = to;
            if to - at != 1 || bytes[at] != canon::tag::NULL {
                let h = hash64_at(bytes, at, to);
                let register = (h >> (64 - HLL_BITS)) as usize;
                let rank = ((h << HLL_BITS) | (1 << (HLL_BITS - 1))).leading_zeros() as u8 + 1;
                self.registers[register] = self.registers[register].max(rank);
            }
        }
    }

    /// The estimated number of distinct values.
    pub fn estimate(&self) -> u64 {
        hll_estimate(&self.registers)
    }
}

fn hll_estimate(registers: &[u8]) -> u64 {
    let m = registers.len() as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let sum: f64 = registers.iter().map(|&r| 2f64.powi(-(r as i32))).sum();
    let raw = alpha * m * m / sum;
    let zeros = registers.iter().filter(|&&r| r == 0).count();
    let estimate = if raw <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        raw
    };
    estimate.round() as u64
}

#[cfg(test)]
mod tests {
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn an_exact_sum_is_the_same_however_its_numbers_come() {
        let sum = |values: &[f64]| {
            let mut s = ExactSum::default();
            values.iter().for_each(|&v| s.add(v));
            s.value()
        };
        // Where adding in order rounds at each step (Python's math.fsum agrees).
        assert_eq!(sum(&[0.1; 10]), 1.0);
        assert_eq!(sum(&[1.0, 1e-16, 1e-16]), 1.0000000000000002);
        assert_eq!(sum(&[1e16, 1.0, 1e-16]), 1.0000000000000002e16);
        assert_eq!(sum(&[1e100, 1.0, -1e100, 1e-100]), 1.0);
        assert_eq!(sum(&[]), 0.0);
        assert_eq!(sum(&[f64::MAX, f64::MAX]), f64::INFINITY);
        assert_eq!(sum(&[f64::INFINITY, 1.0]), f64::INFINITY);
        assert!(sum(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        // Numbers of every magnitude and sign, in any order, split into batches anyhow.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let values: Vec<f64> = (0..2000)
            .map(|_| {
                let r = next();
                let mantissa = (r >> 11) as f64 / (1u64 << 53) as f64;
                let sign = if r & 1 == 0 { 1.0 } else { -1.0 };
                sign * mantissa * 10f64.powi((r % 61) as i32 - 30)
            })
            .collect();
        let whole = sum(&values);
        for round in 0..20 {
            let mut shuffled = values.clone();
            for i in (1..shuffled.len()).rev() {
                shuffled.swap(i, next() as usize % (i + 1));
            }
            let mut total = ExactSum::default();
            for batch in shuffled.chunks(1 + round * 37) {
                let mut part = ExactSum::default();
                batch.iter().for_each(|&v| part.add(v));
                total.merge(&part);
            }
            assert_eq!(total.value().to_bits(), whole.to_bits(), "round {round}");
        }
        let naive: f64 = values.iter().sum();
        assert!((whole - naive).abs() <= naive.abs() * 1e-12);
    }

    use super::*;
    use std::sync::Arc;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn hash64_reads_a_cell_alike_wherever_it_lies() {
        // The same bytes hash alike at the end of a buffer (tail read byte by byte) and
        // inside one (tail read as a masked word), and the values are those the byte-by-byte
        // reading gave before (they feed recorded distinct estimates).
        let bytes: Vec<u8> = (0..40u8).map(|b| b.wrapping_mul(37)).collect();
        for len in 0..=17 {
            let cell = &bytes[3..3 + len];
            assert_eq!(hash64_at(&bytes, 3, 3 + len), hash64(cell), "{len} bytes");
        }
        assert_eq!(hash64(b""), 0);
        assert_eq!(hash64(b"abc"), 0x5642_46c2_dc39_3777);
        assert_eq!(hash64(&[7u8; 13]), 0x04ff_fa15_06ab_3d4e);
    }

    /// The statistics of one nullable Int64 column.
    fn stats_of(values: Vec<Option<i64>>) -> ColumnStats {
        let a: ArrayRef = Arc::new(arrow_array::Int64Array::from(values));
        let schema = Schema::new(vec![arrow_schema::Field::new("x", DataType::Int64, true)]);
        let schema = Arc::new(schema);
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![a]).unwrap();
        let mut b = StatsBuilder::new(&schema);
        b.push(&batch).unwrap();
        let mut f = crate::fingerprint::Fingerprinter::with_distinct(Arc::clone(&schema)).unwrap();
        f.push(&batch).unwrap();
        b.finish(f.distinct().unwrap()).remove(0)
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn distinct_never_exceeds_the_values() {
        // The estimate may overshoot (304 for 300 values); the values bound it.
        for n in (1..=1200).step_by(7) {
            let mut values: Vec<Option<i64>> = (0..n).map(|i| Some(i * 7919)).collect();
            values.push(None);
            let s = stats_of(values);
            assert!(
                s.distinct <= n as u64,
                "{} distinct of {n} values",
                s.distinct
            );
            assert!(
                s.distinct as f64 >= n as f64 * 0.95,
                "{} of {n}",
                s.distinct
            );
        }
        assert_eq!(stats_of(vec![None, None]).distinct, 0);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn distinct_estimate_is_close() {
        let n = 200_000i64;
        let a: ArrayRef = Arc::new(arrow_array::Int64Array::from_iter_values(0..n));
        let schema = Schema::new(vec![arrow_schema::Field::new("x", DataType::Int64, false)]);
        let schema = Arc::new(schema);
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![a]).unwrap();
        let mut b = StatsBuilder::new(&schema);
        b.push(&batch).unwrap();
        let mut f = crate::fingerprint::Fingerprinter::with_distinct(Arc::clone(&schema)).unwrap();
        f.push(&batch).unwrap();
        let s = &b.finish(f.distinct().unwrap())[0];
        // Counting distinct values changes nothing of the fingerprint itself.
        let mut plain = crate::fingerprint::Fingerprinter::new(Arc::clone(&schema)).unwrap();
        plain.push(&batch).unwrap();
        assert!(plain.distinct().is_none());
        let (counted, plain) = (f.finish(), plain.finish());
        assert_eq!(counted.fingerprint, plain.fingerprint);
        assert_eq!(counted.row_hashes, plain.row_hashes);
        let err = (s.distinct as f64 - n as f64).abs() / n as f64;
        assert!(err < 0.05, "estimate {} for {n}", s.distinct);
        assert_eq!(s.min.as_deref(), Some("0"));
        assert_eq!(s.max.as_deref(), Some("199999"));
        assert_eq!(s.mean, Some((n - 1) as f64 / 2.0));
    }
}
