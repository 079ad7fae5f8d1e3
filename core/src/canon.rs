//! The canonical cell encoding of fingerprint v1: every value is encoded by its logical type
//! family, never by its physical Arrow layout, so int32 and int64, dictionary and plain
//! strings, or timestamps in different units of the same instant encode alike.
//!
//! The byte layout is normative: docs/spec/fingerprint-v1.md describes it and the golden
//! vectors pin it. Changing it means a new spec version.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayAccessor, ArrowPrimitiveType, GenericByteArray, PrimitiveArray};
use arrow_buffer::ArrowNativeType;
use arrow_buffer::i256;
use arrow_schema::{DataType, IntervalUnit, TimeUnit};

use crate::error::{Error, Result};

/// The logical type family of a column: what its values mean, not how Arrow stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Arrow `Null`: every value is null.
    Null,
    /// Booleans.
    Bool,
    /// Signed and unsigned integers of every width.
    Int,
    /// Float16, Float32 and Float64.
    Float,
    /// Utf8, LargeUtf8, Utf8View.
    String,
    /// Binary, LargeBinary, BinaryView, FixedSizeBinary.
    Binary,
    /// Timestamps of every unit and zone: an instant.
    Timestamp,
    /// Date32 and Date64: a calendar day.
    Date,
    /// Time32 and Time64: a time of day.
    Time,
    /// Durations of every unit.
    Duration,
    /// Decimal32, Decimal64, Decimal128, Decimal256.
    Decimal,
    /// Year-month, day-time and month-day-nano intervals.
    Interval,
}

/// The type tag that starts every encoded cell.
pub mod tag {
    /// A null of any type.
    pub const NULL: u8 = 0x00;
    /// A boolean: one byte, 0 or 1.
    pub const BOOL: u8 = 0x01;
    /// An integer in the i64 range: i64 little-endian.
    pub const INT: u8 = 0x02;
    /// A float: the IEEE-754 binary64 bits, little-endian, NaN and -0.0 canonicalised.
    pub const FLOAT: u8 = 0x03;
    /// A string: the byte length as unsigned LEB128 (shortest form), then the UTF-8 bytes.
    pub const STRING: u8 = 0x04;
    /// Binary: the length as unsigned LEB128 (shortest form), then the bytes.
    pub const BINARY: u8 = 0x05;
    /// A timestamp in the i64 range of nanoseconds: i64 LE nanoseconds since
    /// 1970-01-01T00:00:00Z.
    pub const TIMESTAMP: u8 = 0x06;
    /// A date: i64 LE days since 1970-01-01.
    pub const DATE: u8 = 0x07;
    /// A time of day: i64 LE nanoseconds since midnight.
    pub const TIME: u8 = 0x08;
    /// A duration in the i64 range of nanoseconds: i64 LE nanoseconds.
    pub const DURATION: u8 = 0x09;
    /// A decimal: i32 LE scale, then the unscaled value as i256 LE, normalised.
    pub const DECIMAL: u8 = 0x0A;
    /// An interval: i32 LE months, i32 LE days, i64 LE nanoseconds.
    pub const INTERVAL: u8 = 0x0B;
    /// An integer outside the i64 range (a large uint64): i128 LE.
    pub const INT_WIDE: u8 = 0x12;
    /// A timestamp outside the i64 range of nanoseconds: i128 LE nanoseconds.
    pub const TIMESTAMP_WIDE: u8 = 0x16;
    /// A duration outside the i64 range of nanoseconds: i128 LE nanoseconds.
    pub const DURATION_WIDE: u8 = 0x19;
}

/// The longest encoding of a fixed-width cell (a decimal: tag, scale, i256).
const MAX_FIXED: usize = 37;

/// The longest encoding of a fixed-width cell other than a decimal: a tag and an i128 (a
/// wide integer, timestamp or duration), or an interval's 16 bytes.
const WIDE_CELL: usize = 17;

/// The canonical NaN: the quiet NaN with no payload.
pub const CANONICAL_NAN_BITS: u64 = 0x7FF8_0000_0000_0000;

impl Family {
    /// The family's name as the spec spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Null => "null",
            Family::Bool => "bool",
            Family::Int => "int",
            Family::Float => "float",
            Family::String => "string",
            Family::Binary => "binary",
            Family::Timestamp => "timestamp",
            Family::Date => "date",
            Family::Time => "time",
            Family::Duration => "duration",
            Family::Decimal => "decimal",
            Family::Interval => "interval",
        }
    }

    /// The family of an Arrow type, or `None` for a type v1 does not support.
    pub fn of(data_type: &DataType) -> Option<Family> {
        use DataType as D;
        Some(match data_type {
            D::Null => Family::Null,
            D::Boolean => Family::Bool,
            D::Int8 | D::Int16 | D::Int32 | D::Int64 => Family::Int,
            D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => Family::Int,
            D::Float16 | D::Float32 | D::Float64 => Family::Float,
            D::Utf8 | D::LargeUtf8 | D::Utf8View => Family::String,
            D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => Family::Binary,
            D::Timestamp(_, _) => Family::Timestamp,
            D::Date32 | D::Date64 => Family::Date,
            D::Time32(_) | D::Time64(_) => Family::Time,
            D::Duration(_) => Family::Duration,
            D::Decimal32(_, _) | D::Decimal64(_, _) | D::Decimal128(_, _) | D::Decimal256(_, _) => {
                Family::Decimal
            }
            D::Interval(_) => Family::Interval,
            D::Dictionary(key, value) if key.is_dictionary_key_type() => Family::of(value)?,
            _ => return None,
        })
    }

    /// Like [`Family::of`], with the error v1 gives for an unsupported column.
    pub fn of_column(column: &str, data_type: &DataType) -> Result<Family> {
        Family::of(data_type).ok_or_else(|| Error::UnsupportedType {
            column: column.to_string(),
            data_type: type_name(data_type),
        })
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn unit_name(unit: &TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    }
}

/// The spec's own spelling of an Arrow type, used in the schema hash. It does not depend on
/// how any arrow release prints types.
pub fn type_name(data_type: &DataType) -> String {
    use DataType as D;
    match data_type {
        D::Null => "null".into(),
        D::Boolean => "bool".into(),
        D::Int8 => "int8".into(),
        D::Int16 => "int16".into(),
        D::Int32 => "int32".into(),
        D::Int64 => "int64".into(),
        D::UInt8 => "uint8".into(),
        D::UInt16 => "uint16".into(),
        D::UInt32 => "uint32".into(),
        D::UInt64 => "uint64".into(),
        D::Float16 => "float16".into(),
        D::Float32 => "float32".into(),
        D::Float64 => "float64".into(),
        D::Utf8 => "utf8".into(),
        D::LargeUtf8 => "large_utf8".into(),
        D::Utf8View => "utf8_view".into(),
        D::Binary => "binary".into(),
        D::LargeBinary => "large_binary".into(),
        D::BinaryView => "binary_view".into(),
        D::FixedSizeBinary(n) => format!("fixed_size_binary[{n}]"),
        D::Timestamp(unit, None) => format!("timestamp[{}]", unit_name(unit)),
        D::Timestamp(unit, Some(tz)) => format!("timestamp[{}, tz={}]", unit_name(unit), tz),
        D::Date32 => "date32".into(),
        D::Date64 => "date64".into(),
        D::Time32(unit) | D::Time64(unit) => {
            let bits = if matches!(data_type, D::Time32(_)) {
                32
            } else {
                64
            };
            format!("time{bits}[{}]", unit_name(unit))
        }
        D::Duration(unit) => format!("duration[{}]", unit_name(unit)),
        D::Decimal32(p, s) => format!("decimal32({p},{s})"),
        D::Decimal64(p, s) => format!("decimal64({p},{s})"),
        D::Decimal128(p, s) => format!("decimal128({p},{s})"),
        D::Decimal256(p, s) => format!("decimal256({p},{s})"),
        D::Interval(IntervalUnit::YearMonth) => "interval[year_month]".into(),
        D::Interval(IntervalUnit::DayTime) => "interval[day_time]".into(),
        D::Interval(IntervalUnit::MonthDayNano) => "interval[month_day_nano]".into(),
        D::Dictionary(k, v) => format!("dictionary<{}, {}>", type_name(k), type_name(v)),
        // Unsupported in v1; spelled for error messages only.
        other => format!("{other}").to_ascii_lowercase(),
    }
}

/// Encodes the cells of one column of a batch.
pub(crate) trait CellEncoder: Send + Sync {
    /// Appends the encoding of row `row`.
    fn encode(&self, row: usize, out: &mut Vec<u8>);
    /// Adds the cells of rows `start..end` to `out`, in order. (A default method is
    /// instantiated per encoder type, so the loop makes no dynamic call per cell.)
    fn encode_column(&self, start: usize, end: usize, out: &mut EncodedColumn) {
        out.bytes.truncate(out.len());
        for row in start..end {
            self.encode(row, &mut out.bytes);
            out.ends.push(out.bytes.len() as u32);
        }
    }
    /// Whether every cell encoded so far was a valid value of its column: only an encoder
    /// that checks its input as it goes ([`text_from_bytes`]) can find one that is not.
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// One column's cells of some rows, encoded back to back, with each cell's end offset.
/// The buffer may run on past the last cell: room that in-place writers made for earlier
/// rows, kept so that writing the next rows' cells need not zero it again. Its bytes are
/// stale, never part of a cell: [`EncodedColumn::cells`] are the encoding.
#[derive(Default)]
pub(crate) struct EncodedColumn {
    pub(crate) bytes: Vec<u8>,
    pub(crate) ends: Vec<u32>,
}

impl EncodedColumn {
    /// Forgets the cells, keeping the buffer and its room for the next rows'.
    pub(crate) fn clear(&mut self) {
        self.ends.clear();
    }

    /// Where cell `i` starts: where the one before it ends.
    #[inline(always)]
    pub(crate) fn start(&self, i: usize) -> usize {
        if i == 0 { 0 } else { self.ends[i - 1] as usize }
    }

    /// Where the last cell ends.
    pub(crate) fn len(&self) -> usize {
        self.ends.last().map_or(0, |&end| end as usize)
    }

    /// The cells, back to back.
    pub(crate) fn cells(&self) -> &[u8] {
        &self.bytes[..self.len()]
    }
}

/// Makes `out` at least `len` bytes long, zero-filling only what it adds.
#[inline(always)]
fn room(out: &mut Vec<u8>, len: usize) {
    if out.len() < len {
        out.resize(len, 0);
    }
}

/// Builds the encoder for one column of a batch. `column` names it in errors.
pub(crate) fn encoder<'a>(column: &str, array: &'a dyn Array) -> Result<Box<dyn CellEncoder + 'a>> {
    use DataType as D;
    Family::of_column(column, array.data_type())?;
    Ok(match array.data_type() {
        D::Null => Box::new(AllNull),
        D::Boolean => Box::new(Bools(array.as_boolean())),
        D::Int8 => int::<Int8Type>(array),
        D::Int16 => int::<Int16Type>(array),
        D::Int32 => int::<Int32Type>(array),
        D::Int64 => int::<Int64Type>(array),
        D::UInt8 => int::<UInt8Type>(array),
        D::UInt16 => int::<UInt16Type>(array),
        D::UInt32 => int::<UInt32Type>(array),
        D::UInt64 => int::<UInt64Type>(array),
        D::Float16 => prim::<Float16Type>(array, |v, o| fixed(o, tag::FLOAT, &float(v.to_f64()))),
        D::Float32 => prim::<Float32Type>(array, |v, o| fixed(o, tag::FLOAT, &float(v as f64))),
        D::Float64 => prim::<Float64Type>(array, |v, o| fixed(o, tag::FLOAT, &float(v))),
        D::Utf8 => offsets(array.as_string::<i32>(), tag::STRING),
        D::LargeUtf8 => offsets(array.as_string::<i64>(), tag::STRING),
        D::Utf8View => var(array.as_string_view(), tag::STRING),
        D::Binary => offsets(array.as_binary::<i32>(), tag::BINARY),
        D::LargeBinary => offsets(array.as_binary::<i64>(), tag::BINARY),
        D::BinaryView => var(array.as_binary_view(), tag::BINARY),
        D::FixedSizeBinary(_) => var(array.as_fixed_size_binary(), tag::BINARY),
        D::Timestamp(unit, _) => {
            let t = (tag::TIMESTAMP, tag::TIMESTAMP_WIDE);
            match unit {
                TimeUnit::Second => nanos::<TimestampSecondType>(array, t, unit),
                TimeUnit::Millisecond => nanos::<TimestampMillisecondType>(array, t, unit),
                TimeUnit::Microsecond => nanos::<TimestampMicrosecondType>(array, t, unit),
                TimeUnit::Nanosecond => nanos::<TimestampNanosecondType>(array, t, unit),
            }
        }
        D::Duration(unit) => {
            let t = (tag::DURATION, tag::DURATION_WIDE);
            match unit {
                TimeUnit::Second => nanos::<DurationSecondType>(array, t, unit),
                TimeUnit::Millisecond => nanos::<DurationMillisecondType>(array, t, unit),
                TimeUnit::Microsecond => nanos::<DurationMicrosecondType>(array, t, unit),
                TimeUnit::Nanosecond => nanos::<DurationNanosecondType>(array, t, unit),
            }
        }
        D::Date32 => {
            prim::<Date32Type>(array, |d, o| fixed(o, tag::DATE, &(d as i64).to_le_bytes()))
        }
        D::Date64 => prim::<Date64Type>(array, |ms, o| {
            fixed(o, tag::DATE, &ms.div_euclid(86_400_000).to_le_bytes())
        }),
        D::Time32(TimeUnit::Second) => prim::<Time32SecondType>(array, |v, o| {
            fixed(o, tag::TIME, &(v as i64 * 1_000_000_000).to_le_bytes())
        }),
        D::Time32(_) => prim::<Time32MillisecondType>(array, |v, o| {
            fixed(o, tag::TIME, &(v as i64 * 1_000_000).to_le_bytes())
        }),
        // A valid time of day fits with room to spare; a value no time of day can have
        // (Arrow does not validate) wraps modulo 2^64 rather than panicking, alike in debug
        // and release builds (docs/spec/fingerprint-v1.md, "Times").
        D::Time64(TimeUnit::Microsecond) => prim::<Time64MicrosecondType>(array, |v, o| {
            fixed(o, tag::TIME, &v.wrapping_mul(1_000).to_le_bytes())
        }),
        D::Time64(_) => {
            prim::<Time64NanosecondType>(array, |v, o| fixed(o, tag::TIME, &v.to_le_bytes()))
        }
        D::Decimal32(_, s) => {
            let s = *s as i32;
            prim::<Decimal32Type>(array, move |v, o| {
                fixed(o, tag::DECIMAL, &decimal(v as i128, s))
            })
        }
        D::Decimal64(_, s) => {
            let s = *s as i32;
            prim::<Decimal64Type>(array, move |v, o| {
                fixed(o, tag::DECIMAL, &decimal(v as i128, s))
            })
        }
        D::Decimal128(_, s) => {
            let s = *s as i32;
            prim::<Decimal128Type>(array, move |v, o| fixed(o, tag::DECIMAL, &decimal(v, s)))
        }
        D::Decimal256(_, s) => {
            let s = *s as i32;
            prim::<Decimal256Type>(array, move |v, o| fixed(o, tag::DECIMAL, &decimal256(v, s)))
        }
        D::Interval(IntervalUnit::YearMonth) => {
            prim::<IntervalYearMonthType>(array, |m, o| fixed(o, tag::INTERVAL, &interval(m, 0, 0)))
        }
        D::Interval(IntervalUnit::DayTime) => prim::<IntervalDayTimeType>(array, |v, o| {
            fixed(
                o,
                tag::INTERVAL,
                &interval(0, v.days, v.milliseconds as i64 * 1_000_000),
            )
        }),
        D::Interval(IntervalUnit::MonthDayNano) => {
            prim::<IntervalMonthDayNanoType>(array, |v, o| {
                fixed(o, tag::INTERVAL, &interval(v.months, v.days, v.nanoseconds))
            })
        }
        D::Dictionary(_, _) => Box::new(Dictionary::new(column, array)?),
        other => {
            return Err(Error::UnsupportedType {
                column: column.to_string(),
                data_type: type_name(other),
            });
        }
    })
}

/// Encodes one cell into a fresh buffer (for keys, tests and the spec's examples).
pub fn encode_cell(column: &str, array: &dyn Array, row: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encoder(column, array)?.encode(row, &mut out);
    Ok(out)
}

/// Writes `tag || payload` at the start of `out`, returning the length.
#[inline(always)]
fn fixed(out: &mut [u8; MAX_FIXED], tag: u8, payload: &[u8]) -> usize {
    out[0] = tag;
    out[1..1 + payload.len()].copy_from_slice(payload);
    1 + payload.len()
}

/// An integer-like value: `narrow` tag and i64 LE when it fits, else `wide` tag and i128 LE.
#[inline(always)]
fn integer(out: &mut [u8; MAX_FIXED], (narrow, wide): (u8, u8), v: i128) -> usize {
    match i64::try_from(v) {
        Ok(v) => fixed(out, narrow, &v.to_le_bytes()),
        Err(_) => fixed(out, wide, &v.to_le_bytes()),
    }
}

fn nanos_per(unit: &TimeUnit) -> i128 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// The canonical bits of a float: one NaN, and -0.0 as +0.0.
#[inline]
pub fn float(v: f64) -> [u8; 8] {
    let bits = if v.is_nan() {
        CANONICAL_NAN_BITS
    } else if v == 0.0 {
        0
    } else {
        v.to_bits()
    };
    bits.to_le_bytes()
}

fn interval(months: i32, days: i32, nanos: i64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&months.to_le_bytes());
    out[4..8].copy_from_slice(&days.to_le_bytes());
    out[8..].copy_from_slice(&nanos.to_le_bytes());
    out
}

/// A decimal as (scale, unscaled) with trailing decimal zeros removed, so 1.50 and 1.5
/// encode alike; zero is (0, 0). The scale may become negative (100 = 1 × 10²).
fn decimal(mut v: i128, mut scale: i32) -> [u8; 36] {
    if v == 0 {
        scale = 0;
    } else {
        while v % 10 == 0 {
            v /= 10;
            scale -= 1;
        }
    }
    decimal_bytes(scale, i256::from_i128(v))
}

fn decimal256(mut v: i256, mut scale: i32) -> [u8; 36] {
    let ten = i256::from_i128(10);
    if v == i256::ZERO {
        scale = 0;
    } else {
        while v.wrapping_rem(ten) == i256::ZERO {
            v = v.wrapping_div(ten);
            scale -= 1;
        }
    }
    decimal_bytes(scale, v)
}

fn decimal_bytes(scale: i32, v: i256) -> [u8; 36] {
    let mut out = [0u8; 36];
    out[..4].copy_from_slice(&scale.to_le_bytes());
    out[4..].copy_from_slice(&v.to_le_bytes());
    out
}

/// Unsigned LEB128, shortest form: 7 bits a byte, low group first, high bit = more follows.
#[inline(always)]
fn leb128(mut v: u64, out: &mut [u8; 10]) -> usize {
    let mut n = 0;
    loop {
        let byte = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out[n] = byte;
            return n + 1;
        }
        out[n] = byte | 0x80;
        n += 1;
    }
}

#[cfg(test)]
fn leb128_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

struct AllNull;

impl CellEncoder for AllNull {
    fn encode(&self, _row: usize, out: &mut Vec<u8>) {
        out.push(tag::NULL);
    }
}

struct Bools<'a>(&'a arrow_array::BooleanArray);

impl Bools<'_> {
    #[inline(always)]
    fn cell(&self, row: usize) -> ([u8; 2], usize) {
        if self.0.is_null(row) {
            ([tag::NULL, 0], 1)
        } else {
            ([tag::BOOL, self.0.value(row) as u8], 2)
        }
    }
}

impl CellEncoder for Bools<'_> {
    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        let (c, n) = self.cell(row);
        out.extend_from_slice(&c[..n]);
    }

    fn encode_column(&self, start: usize, end: usize, out: &mut EncodedColumn) {
        // Room for two bytes a row: each cell is written whole in place (a null's second
        // byte is overwritten by the next cell, or is room past the last), where appending
        // the cell's one or two bytes would be a call to memcpy for every row.
        let mut pos = out.len();
        room(&mut out.bytes, pos + 2 * (end - start));
        for row in start..end {
            let (c, n) = self.cell(row);
            out.bytes[pos..pos + 2].copy_from_slice(&c);
            pos += n;
            out.ends.push(pos as u32);
        }
    }
}

/// A primitive column; `f` writes a non-null cell (tag included) and returns its length.
struct Prim<'a, T: ArrowPrimitiveType, F> {
    array: &'a PrimitiveArray<T>,
    f: F,
    /// The longest cell `f` writes: [`MAX_FIXED`] for a decimal, else [`WIDE_CELL`].
    longest: usize,
}

impl<T, F> Prim<'_, T, F>
where
    T: ArrowPrimitiveType,
    F: Fn(T::Native, &mut [u8; MAX_FIXED]) -> usize + Send + Sync,
{
    #[inline(always)]
    fn cell(&self, row: usize, out: &mut [u8; MAX_FIXED]) -> usize {
        if self.array.is_null(row) {
            out[0] = tag::NULL;
            1
        } else {
            (self.f)(self.array.value(row), out)
        }
    }
}

impl<T, F> CellEncoder for Prim<'_, T, F>
where
    T: ArrowPrimitiveType,
    F: Fn(T::Native, &mut [u8; MAX_FIXED]) -> usize + Send + Sync,
{
    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        let mut c = [0u8; MAX_FIXED];
        let n = self.cell(row, &mut c);
        // Copying the whole array and cutting it back is a few moves; a copy of `n` bytes
        // would be a call to memcpy for every cell.
        let len = out.len();
        out.extend_from_slice(&c);
        out.truncate(len + n);
    }

    fn encode_column(&self, start: usize, end: usize, out: &mut EncodedColumn) {
        // Room for the longest cell of each row: each cell is written in place, with no
        // growth to check per cell.
        let longest = self.longest;
        let mut pos = out.len();
        room(
            &mut out.bytes,
            pos + (end - start) * longest + (MAX_FIXED - longest),
        );
        for row in start..end {
            let cell: &mut [u8; MAX_FIXED] = (&mut out.bytes[pos..pos + MAX_FIXED])
                .try_into()
                .expect("room for the longest cell");
            pos += self.cell(row, cell);
            out.ends.push(pos as u32);
        }
    }
}

fn prim<'a, T>(
    array: &'a dyn Array,
    f: impl Fn(T::Native, &mut [u8; MAX_FIXED]) -> usize + Send + Sync + 'a,
) -> Box<dyn CellEncoder + 'a>
where
    T: ArrowPrimitiveType,
{
    let longest = match Family::of(array.data_type()) {
        Some(Family::Decimal) => MAX_FIXED,
        _ => WIDE_CELL,
    };
    Box::new(Prim {
        array: array.as_primitive::<T>(),
        f,
        longest,
    })
}

fn int<'a, T>(array: &'a dyn Array) -> Box<dyn CellEncoder + 'a>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i128>,
{
    prim::<T>(array, |v, o| {
        integer(o, (tag::INT, tag::INT_WIDE), v.into())
    })
}

fn nanos<'a, T>(array: &'a dyn Array, tags: (u8, u8), unit: &TimeUnit) -> Box<dyn CellEncoder + 'a>
where
    T: ArrowPrimitiveType<Native = i64>,
{
    let m = nanos_per(unit);
    prim::<T>(array, move |v, o| integer(o, tags, v as i128 * m))
}

/// Cells up to this long are copied by a copy of this fixed length (into a row to hash, or
/// a string's bytes into its cell)...
const SHORT: usize = 16;

/// ... cells up to this long by a copy of this one...
const MEDIUM: usize = 64;

/// ... and cells up to this long by a copy of this one.
const LONG: usize = 128;

/// How far past a cell's end [`copy_cell`] can write, at most: a fixed copy is used only
/// for a cell longer than the tier below it.
pub(crate) const OVERRUN: usize = LONG - MEDIUM;
const _: () = assert!(
    OVERRUN >= SHORT && OVERRUN >= MEDIUM - SHORT,
    "every tier's overrun is within OVERRUN"
);

/// Copies the cell `bytes[from..to]` to the start of `out` (a row being gathered, or a
/// string cell after its head), which has room for it and [`OVERRUN`] bytes more.
#[inline(always)]
pub(crate) fn copy_cell(bytes: &[u8], from: usize, to: usize, out: &mut [u8]) {
    let n = to - from;
    // Most cells are short: copying a fixed SHORT, MEDIUM or LONG bytes (the bytes past the
    // cell are overwritten by the next one or cut off) is a few moves, where a copy of `n`
    // bytes would call memcpy.
    if n <= SHORT && from + SHORT <= bytes.len() {
        copy_words::<{ SHORT / 16 }>(&bytes[from..], out);
    } else if n <= MEDIUM && from + MEDIUM <= bytes.len() {
        copy_words::<{ MEDIUM / 16 }>(&bytes[from..], out);
    } else if n <= LONG && from + LONG <= bytes.len() {
        copy_words::<{ LONG / 16 }>(&bytes[from..], out);
    } else {
        out[..n].copy_from_slice(&bytes[from..to]);
    }
}

/// Copies the first `K` 16-byte words of `from` to `to`, as `K` loads and stores. (Written
/// as three fixed-size `copy_from_slice`s, the compiler may merge [`copy_cell`]'s tiers into
/// one memcpy call of a variable length, which is the call they are there to avoid.)
#[inline(always)]
fn copy_words<const K: usize>(from: &[u8], to: &mut [u8]) {
    let (from, to) = (&from[..16 * K], &mut to[..16 * K]);
    for k in 0..K {
        let word = u128::from_ne_bytes(from[16 * k..16 * k + 16].try_into().expect("16 bytes"));
        to[16 * k..16 * k + 16].copy_from_slice(&word.to_ne_bytes());
    }
}

/// A variable-length column (strings or binary): tag, LEB128 length, bytes.
struct Var<A> {
    array: A,
    tag: u8,
}

impl<A> CellEncoder for Var<A>
where
    A: ArrayAccessor + Send + Sync,
    A::Item: AsRef<[u8]>,
{
    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        if self.array.is_null(row) {
            out.push(tag::NULL);
        } else {
            let value = self.array.value(row);
            let bytes = value.as_ref();
            let mut head = [0u8; MAX_HEAD];
            let n = put_head(self.tag, bytes.len(), &mut head);
            out.extend_from_slice(&head[..n]);
            out.extend_from_slice(bytes);
        }
    }
}

/// The longest head of a variable-length cell: a tag and a LEB128 length.
const MAX_HEAD: usize = 11;

/// Writes the head of a variable-length cell at the start of `out`: its tag, then its
/// length in LEB128; returns the head's length.
#[inline(always)]
fn put_head(tag: u8, len: usize, out: &mut [u8]) -> usize {
    out[0] = tag;
    if len < 0x80 {
        // LEB128 of a length below 128 is the length itself.
        out[1] = len as u8;
        2
    } else {
        let leb: &mut [u8; 10] = (&mut out[1..MAX_HEAD]).try_into().expect("10 bytes");
        1 + leb128(len as u64, leb)
    }
}

fn var<'a, A>(array: A, tag: u8) -> Box<dyn CellEncoder + 'a>
where
    A: ArrayAccessor + Send + Sync + 'a,
    A::Item: AsRef<[u8]>,
{
    Box::new(Var { array, tag })
}

/// A string or binary column held as offsets into one buffer of values: encoded as [`Var`]
/// encodes it, with each cell's bytes copied straight from that buffer.
struct Offsets<'a, T: ByteArrayType> {
    array: &'a GenericByteArray<T>,
    tag: u8,
}

impl<T: ByteArrayType> Offsets<'_, T> {
    /// Writes row `row`'s cell at the start of `out`, which has room for it and
    /// [`OVERRUN`] bytes more; returns the cell's length.
    #[inline(always)]
    fn put(&self, row: usize, offsets: &[T::Offset], values: &[u8], out: &mut [u8]) -> usize {
        if self.array.is_null(row) {
            out[0] = tag::NULL;
            return 1;
        }
        let (from, to) = (offsets[row].as_usize(), offsets[row + 1].as_usize());
        let head = put_head(self.tag, to - from, out);
        copy_cell(values, from, to, &mut out[head..]);
        head + to - from
    }

    /// Writes the cells of rows `start..end` into `out` from `pos` on, giving each one's
    /// end to `cell_end`; returns where the last one ends. Room for the cells (their bytes
    /// and the longest head each) and for the last one's copy to overrun is made first:
    /// each cell is written in place, with no growth to check per cell.
    #[inline(always)]
    fn write(
        &self,
        start: usize,
        end: usize,
        out: &mut Vec<u8>,
        mut pos: usize,
        mut cell_end: impl FnMut(u32),
    ) -> usize {
        let (offsets, values) = (self.array.value_offsets(), self.array.values().as_slice());
        let bytes = offsets[end].as_usize() - offsets[start].as_usize();
        room(out, pos + bytes + MAX_HEAD * (end - start) + OVERRUN);
        for row in start..end {
            pos += self.put(row, offsets, values, &mut out[pos..]);
            cell_end(pos as u32);
        }
        pos
    }
}

impl<T: ByteArrayType> CellEncoder for Offsets<'_, T> {
    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        let end = self.write(row, row + 1, out, out.len(), |_| {});
        out.truncate(end);
    }

    fn encode_column(&self, start: usize, end: usize, out: &mut EncodedColumn) {
        let pos = out.len();
        self.write(start, end, &mut out.bytes, pos, |end| out.ends.push(end));
    }
}

fn offsets<'a, T: ByteArrayType>(
    array: &'a GenericByteArray<T>,
    tag: u8,
) -> Box<dyn CellEncoder + 'a> {
    Box::new(Offsets { array, tag })
}

/// A utf8 column read as a binary one, its bytes not checked when read (see
/// [`crate::decode::text_as_bytes`]): encoded as the string column it is, while checking, a
/// block of rows at a time just before their cells are copied, what reading it as text would
/// have: that its bytes are UTF-8 and that every cell starts on a character boundary. The
/// first row found not to be is kept for [`CellEncoder::check`].
struct TextFromBytes<'a, T: ByteArrayType> {
    cells: Offsets<'a, T>,
    column: String,
    /// The first row found not to be UTF-8, or `usize::MAX`.
    invalid: std::sync::atomic::AtomicUsize,
}

impl<T: ByteArrayType> TextFromBytes<'_, T> {
    /// Checks rows `start..end`, keeping the first that is not UTF-8.
    fn check_rows(&self, start: usize, end: usize) {
        let (offsets, values) = (
            self.cells.array.value_offsets(),
            self.cells.array.values().as_slice(),
        );
        let (from, to) = (offsets[start].as_usize(), offsets[end].as_usize());
        let span = &values[from..to];
        // ASCII (most text in tables) is UTF-8, and has no continuation byte to start a
        // cell on: checked in one quick pass.
        if span.is_ascii() {
            return;
        }
        let bad = match simdutf8::basic::from_utf8(span) {
            // Valid as a whole, the bytes still split a character where a cell starts
            // on one of its continuation bytes (0b10xx_xxxx).
            Ok(_) => (start + 1..end).find(|&row| {
                let at = offsets[row].as_usize();
                at < to && (values[at] as i8) < -0x40
            }),
            // The cell the first invalid byte belongs to (the last to start at or before
            // it), found by checking again, more slowly, to learn where that byte is.
            Err(_) => {
                let valid =
                    simdutf8::compat::from_utf8(span).map_or_else(|e| e.valid_up_to(), |_| 0);
                let at = from + valid;
                Some(start + offsets[start + 1..=end].partition_point(|o| o.as_usize() <= at))
            }
        };
        if let Some(row) = bad {
            self.invalid
                .fetch_min(row, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl<T: ByteArrayType> CellEncoder for TextFromBytes<'_, T> {
    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        self.check_rows(row, row + 1);
        self.cells.encode(row, out);
    }

    fn encode_column(&self, start: usize, end: usize, out: &mut EncodedColumn) {
        self.check_rows(start, end);
        self.cells.encode_column(start, end, out);
    }

    fn check(&self) -> Result<()> {
        match self.invalid.load(std::sync::atomic::Ordering::Relaxed) {
            usize::MAX => Ok(()),
            row => Err(Error::InvalidText {
                column: self.column.clone(),
                row: row as u64,
            }),
        }
    }
}

/// The encoder of a utf8 column read as a binary one (`Binary` or `LargeBinary`), which
/// checks its bytes as it encodes them; [`CellEncoder::check`] then tells whether they were
/// all UTF-8.
pub(crate) fn text_from_bytes<'a>(
    column: &str,
    array: &'a dyn Array,
) -> Result<Box<dyn CellEncoder + 'a>> {
    fn of<'a, T: ByteArrayType>(
        column: &str,
        array: &'a GenericByteArray<T>,
    ) -> Box<dyn CellEncoder + 'a> {
        Box::new(TextFromBytes {
            cells: Offsets {
                array,
                tag: tag::STRING,
            },
            column: column.to_string(),
            invalid: std::sync::atomic::AtomicUsize::new(usize::MAX),
        })
    }
    match array.data_type() {
        DataType::Binary => Ok(of(column, array.as_binary::<i32>())),
        DataType::LargeBinary => Ok(of(column, array.as_binary::<i64>())),
        other => Err(Error::InvalidConfig(format!(
            "column `{column}` was to be text read as bytes, but it is {}",
            type_name(other)
        ))),
    }
}

/// A dictionary column: the encoding of the value each key points at. The values are
/// encoded once per batch, then copied per row.
struct Dictionary {
    keys: Vec<usize>,
    key_valid: Option<arrow_buffer::NullBuffer>,
    encoded: Vec<u8>,
    offsets: Vec<usize>,
}

impl Dictionary {
    fn new(column: &str, array: &dyn Array) -> Result<Dictionary> {
        let dict = array
            .as_any_dictionary_opt()
            .ok_or_else(|| Error::UnsupportedType {
                column: column.to_string(),
                data_type: type_name(array.data_type()),
            })?;
        let values = dict.values();
        let inner = encoder(column, values.as_ref())?;
        let mut encoded = Vec::new();
        let mut offsets = Vec::with_capacity(values.len() + 1);
        offsets.push(0);
        for i in 0..values.len() {
            inner.encode(i, &mut encoded);
            offsets.push(encoded.len());
        }
        // `normalized_keys` divides by the dictionary's length: an empty dictionary (every
        // key null, or no rows at all, as in an empty detail table) has no key to normalise.
        let keys = if values.is_empty() {
            vec![0; dict.len()]
        } else {
            dict.normalized_keys()
        };
        Ok(Dictionary {
            keys,
            key_valid: dict.keys().logical_nulls(),
            encoded,
            offsets,
        })
    }

    #[inline(always)]
    fn cell(&self, row: usize) -> &[u8] {
        if self.key_valid.as_ref().is_some_and(|n| n.is_null(row)) {
            &[tag::NULL]
        } else {
            let k = self.keys[row];
            &self.encoded[self.offsets[k]..self.offsets[k + 1]]
        }
    }
}

impl CellEncoder for Dictionary {
    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(self.cell(row));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn decimal_normalisation() {
        assert_eq!(decimal(150, 2), decimal(15, 1));
        assert_eq!(decimal(0, 5), decimal(0, 0));
        assert_eq!(decimal(100, 0), decimal(1, -2));
        assert_ne!(decimal(15, 1), decimal(15, 2));
        assert_eq!(decimal(-2500, 3), decimal256(i256::from_i128(-25), 1));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn strings_and_binary_encode_as_the_spec_lays_them_out() {
        use arrow_array::{BinaryArray, LargeStringArray, StringArray, StringViewArray};
        use std::sync::Arc;
        // Lengths on both sides of the 16-, 64- and 128-byte copies and of a two-byte
        // length, nulls among them, one of a three-byte length, the last cells ending at
        // the end of the values buffer.
        let values: Vec<Option<String>> = (0..300)
            .map(|n| (n % 7 != 3).then(|| "é".repeat(n / 2) + &"x".repeat(n % 2)))
            .chain([Some("y".repeat(20_000)), Some("z".into())])
            .collect();
        let spec = |tag: u8, v: &Option<String>| -> Vec<u8> {
            let Some(v) = v else { return vec![tag::NULL] };
            let mut out = vec![tag];
            let mut head = [0u8; 10];
            let n = leb128(v.len() as u64, &mut head);
            out.extend_from_slice(&head[..n]);
            out.extend_from_slice(v.as_bytes());
            out
        };
        let arrays: Vec<(u8, Arc<dyn Array>)> = vec![
            (tag::STRING, Arc::new(StringArray::from(values.clone()))),
            (
                tag::STRING,
                Arc::new(LargeStringArray::from(values.clone())),
            ),
            (tag::STRING, Arc::new(StringViewArray::from(values.clone()))),
            (
                tag::BINARY,
                Arc::new(BinaryArray::from_iter(values.iter().map(|v| v.as_deref()))),
            ),
        ];
        for (tag, array) in arrays {
            // The whole array, and a slice of it that starts and ends inside the values.
            for (offset, len) in [(0, values.len()), (41, 200)] {
                let array = array.slice(offset, len);
                let e = encoder("s", array.as_ref()).unwrap();
                assert_layout(e.as_ref(), len, &array.data_type().to_string(), |i| {
                    spec(tag, &values[offset + i])
                });
            }
        }
    }

    /// Encodes rows `0..len` with `e` over a buffer of stale bytes (as an earlier task's
    /// longer cells leave them), in two runs (as a task encodes its blocks of rows), and
    /// checks that each cell, and each row encoded alone, is `want(row)`; `what` names the
    /// column's type in failures.
    fn assert_layout(e: &dyn CellEncoder, len: usize, what: &str, want: impl Fn(usize) -> Vec<u8>) {
        let mut column = EncodedColumn {
            bytes: vec![0xAB; 50_000],
            ends: vec![17],
        };
        column.clear();
        e.encode_column(0, len / 3, &mut column);
        e.encode_column(len / 3, len, &mut column);
        assert_eq!(column.ends.len(), len, "{what}: cells");
        for (i, &end) in column.ends.iter().enumerate() {
            let want = want(i);
            assert_eq!(
                &column.bytes[column.start(i)..end as usize],
                want,
                "{what} row {i}"
            );
            let mut one = Vec::new();
            e.encode(i, &mut one);
            assert_eq!(one, want, "{what} row {i} alone");
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn booleans_encode_as_the_spec_lays_them_out() {
        let values: Vec<Option<bool>> = (0..100)
            .map(|i| (i % 3 != 0).then_some(i % 2 == 0))
            .collect();
        let array = arrow_array::BooleanArray::from(values.clone());
        for (offset, len) in [(0, values.len()), (7, 50)] {
            let array = array.slice(offset, len);
            let e = encoder("b", &array).unwrap();
            assert_layout(e.as_ref(), len, "boolean", |i| match values[offset + i] {
                None => vec![tag::NULL],
                Some(v) => vec![tag::BOOL, v as u8],
            });
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn leb128_shortest_form() {
        let mut b = [0u8; 10];
        for (v, want) in [
            (0u64, &[0x00][..]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (300, &[0xAC, 0x02]),
            (
                u64::MAX,
                &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            ),
        ] {
            let n = leb128(v, &mut b);
            assert_eq!(&b[..n], want, "{v}");
            assert_eq!(leb128_len(v), n, "{v}");
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn integers_narrow_unless_they_must_be_wide() {
        let mut o = [0u8; MAX_FIXED];
        let t = (tag::INT, tag::INT_WIDE);
        assert_eq!(integer(&mut o, t, -1), 9);
        assert_eq!(o[0], tag::INT);
        assert_eq!(integer(&mut o, t, i64::MAX as i128), 9);
        assert_eq!(integer(&mut o, t, u64::MAX as i128), 17);
        assert_eq!(o[0], tag::INT_WIDE);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn out_of_range_time64_us_wraps_instead_of_panicking() {
        let a = arrow_array::Time64MicrosecondArray::from(vec![i64::MAX, 5_400_000_000]);
        let cell = encode_cell("t", &a, 0).unwrap();
        assert_eq!(cell[0], tag::TIME);
        assert_eq!(cell[1..], i64::MAX.wrapping_mul(1_000).to_le_bytes());
        let valid = encode_cell("t", &a, 1).unwrap();
        assert_eq!(valid[1..], 5_400_000_000_000i64.to_le_bytes());
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn float_canonical() {
        assert_eq!(float(-0.0), float(0.0));
        assert_eq!(float(f64::NAN), float(-f64::NAN));
        assert_eq!(
            float(f64::from_bits(0x7FF0_0000_0000_0001)),
            float(f64::NAN)
        );
        assert_ne!(float(f64::INFINITY), float(f64::NAN));
        assert_eq!(u64::from_le_bytes(float(f64::NAN)), CANONICAL_NAN_BITS);
    }
}
