//! CSV input: the quoting check, the inference of the columns' types, and the read (section
//! 13 of the fingerprint v1 spec).

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use arrow_schema::{DataType, Schema, SchemaRef};

use super::{DEFAULT_BATCH_ROWS, Format, Guarded, guarded};
use crate::error::Result;
use crate::table::BatchIter;

/// Streams the batches of a CSV input whose columns' types are known: those that
/// [`read_batches`] inferred from the same input, which is read again without inferring
/// them again (a pass over the whole input, the costliest of the three).
pub fn read_csv<R: Read + Send + 'static>(
    reader: R,
    schema: SchemaRef,
) -> Result<BatchIter<'static>> {
    let format = Format::Csv;
    guarded(format, || {
        let r = arrow_csv::ReaderBuilder::new(schema)
            .with_header(true)
            .with_batch_size(DEFAULT_BATCH_ROWS)
            .build(std::io::BufReader::new(reader))
            .map_err(|e| format.error(e))?;
        Ok(Guarded::batches(r, format))
    })
}

/// Infers the types of a CSV input's columns, leaving the reader where it found it. An
/// input that ends inside a quoted field is an error ([`Quoting`]).
pub(super) fn infer_csv_schema<R: Read + Seek>(reader: &mut R) -> Result<SchemaRef> {
    let format = Format::Csv;
    let start = reader.stream_position().map_err(|e| format.error(e))?;
    // The inference reads every record, so the quoting is checked as it reads; what an
    // error leaves unread is read after it, and a field left open is the error to report:
    // a file that ends inside one is misread whole (its fields miscounted, say).
    let mut scanned = Scanned {
        inner: &mut *reader,
        quoting: Quoting::default(),
    };
    let inferred = arrow_csv::reader::Format::default()
        .with_header(true)
        .infer_schema(&mut scanned, None);
    let rest = std::io::copy(&mut scanned, &mut std::io::sink());
    if let (Ok(_), Some(offset)) = (&rest, scanned.quoting.open_at()) {
        reader
            .seek(SeekFrom::Start(start))
            .map_err(|e| format.error(e))?;
        let line = line_at(&mut *reader, offset).map_err(|e| format.error(e))?;
        return Err(format.error(format!(
            "a quoted field opened on line {line} is never closed (is the file cut short?)"
        )));
    }
    let (schema, _) = inferred.map_err(|e| format.error(e))?;
    rest.map_err(|e| format.error(e))?;
    if schema.fields().is_empty() {
        return Err(format.error("no header row: the first line must name the columns"));
    }
    let rewind = |reader: &mut R| {
        reader
            .seek(SeekFrom::Start(start))
            .map_err(|e| format.error(e))
    };
    rewind(reader)?;
    let text = text_columns(&schema, &mut *reader)?;
    rewind(reader)?;
    let fields: Vec<arrow_schema::Field> = schema
        .fields()
        .iter()
        .zip(text)
        .map(|(field, text)| match text {
            true => field.as_ref().clone().with_data_type(DataType::Utf8),
            false => field.as_ref().clone(),
        })
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// The quoting of a CSV input (section 13.1 of the fingerprint v1 spec), followed as its
/// bytes are read: whether the bytes so far end inside a quoted field, and where it opened.
/// A field that begins with `"` is quoted up to the next `"` that is not doubled, however
/// many lines that takes; at the end of the input, a field still open would be read as
/// holding the rest of the file: an input cut short, most likely.
#[derive(Debug, Default)]
struct Quoting {
    state: QuoteState,
    /// The bytes so far.
    read: u64,
    /// Where the `"` that opened the quoted field is, counted in bytes.
    opened: u64,
    /// The bytes of a byte order mark at the start matched so far.
    bom_matched: usize,
    /// Past the byte order mark, or past where one would be.
    past_bom: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    /// At the start of a field.
    #[default]
    FieldStart,
    /// In a field that is not quoted, or after a quoted one's closing quote.
    Unquoted,
    /// In a quoted field.
    Quoted,
    /// After a `"` in a quoted field: its end, or the first of two.
    QuoteInQuoted,
}

impl Quoting {
    const BOM: &'static [u8] = b"\xEF\xBB\xBF";

    fn feed(&mut self, bytes: &[u8]) {
        let (mut i, start) = (0, self.read);
        self.read += bytes.len() as u64;
        // A byte order mark at the start is not part of the first field.
        while !self.past_bom {
            let Some(&b) = bytes.get(i) else {
                return;
            };
            if b == Self::BOM[self.bom_matched] {
                i += 1;
                self.bom_matched += 1;
                self.past_bom = self.bom_matched == Self::BOM.len();
            } else {
                if self.bom_matched > 0 {
                    self.state = QuoteState::Unquoted; // the bytes matched began a field
                }
                self.past_bom = true;
            }
        }
        let ends_field = |b: u8| matches!(b, b',' | b'\n' | b'\r');
        while let Some(&b) = bytes.get(i) {
            use QuoteState::*;
            let (state, next) = match self.state {
                // In a quoted field, only a quote matters: skip to the next.
                Quoted => match memchr::memchr(b'"', &bytes[i..]) {
                    Some(n) => (QuoteInQuoted, i + n + 1),
                    None => (Quoted, bytes.len()),
                },
                QuoteInQuoted if b == b'"' => (Quoted, i + 1),
                QuoteInQuoted if ends_field(b) => (FieldStart, i + 1),
                QuoteInQuoted => (Unquoted, i + 1),
                // Outside quotes, a quote opens a field only where a field starts, and the
                // bytes before the next quote hold none: skip to it, and look at the byte
                // before it (most files have few quotes, or none).
                FieldStart | Unquoted => match memchr::memchr(b'"', &bytes[i..]) {
                    Some(n) => {
                        let at = i + n;
                        let field_starts = match n {
                            0 => self.state == FieldStart,
                            _ => ends_field(bytes[at - 1]),
                        };
                        if field_starts {
                            self.opened = start + at as u64;
                            (Quoted, at + 1)
                        } else {
                            (Unquoted, at + 1)
                        }
                    }
                    None => match ends_field(bytes[bytes.len() - 1]) {
                        true => (FieldStart, bytes.len()),
                        false => (Unquoted, bytes.len()),
                    },
                },
            };
            (self.state, i) = (state, next);
        }
    }

    /// Where the quoted field the bytes so far end in opened, counted in bytes, if they do.
    fn open_at(&self) -> Option<u64> {
        (self.state == QuoteState::Quoted).then_some(self.opened)
    }
}

/// The line (counted from 1) that the byte at `offset` of a reader is on: one more than the
/// line breaks before it, each LF, CR or CR LF.
fn line_at<R: Read>(reader: R, offset: u64) -> std::io::Result<u64> {
    let (mut breaks, mut cr) = (0, false);
    let mut buf = vec![0; 64 * 1024];
    let mut reader = reader.take(offset);
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(breaks + 1);
        }
        for &b in &buf[..n] {
            breaks += u64::from(b == b'\r' || (b == b'\n' && !cr));
            cr = b == b'\r';
        }
    }
}

/// A reader whose bytes are followed by a [`Quoting`] as they are read.
struct Scanned<R> {
    inner: R,
    quoting: Quoting,
}

impl<R: Read> Read for Scanned<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.quoting.feed(&buf[..n]);
        Ok(n)
    }
}

/// Which of the columns inferred as booleans, numbers, dates or timestamps are read as text
/// instead, their values read as text the way the CSV reader will read them (quotes, escapes
/// and all): a numeric column holding a zero-padded value, and any column holding a value
/// that its inferred type cannot read (`2024-02-30` among dates, a timestamp with a zone's
/// name or out of the range of nanoseconds, digits of other scripts), which would otherwise
/// fail the whole file. No pass is made when no column is of these types.
fn text_columns<R: Read>(inferred: &Schema, reader: R) -> Result<Vec<bool>> {
    let format = Format::Csv;
    let checked: Vec<usize> = (inferred.fields().iter().enumerate())
        .filter(|(_, f)| {
            matches!(
                f.data_type(),
                DataType::Boolean
                    | DataType::Int64
                    | DataType::Float64
                    | DataType::Date32
                    | DataType::Timestamp(..)
            )
        })
        .map(|(i, _)| i)
        .collect();
    let mut text = vec![false; inferred.fields().len()];
    if checked.is_empty() {
        return Ok(text);
    }
    let as_text = Schema::new(
        (inferred.fields().iter())
            .map(|f| arrow_schema::Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    );
    let batches = arrow_csv::ReaderBuilder::new(Arc::new(as_text))
        .with_header(true)
        .with_batch_size(DEFAULT_BATCH_ROWS)
        .with_projection(checked.clone())
        .build(std::io::BufReader::new(reader))
        .map_err(|e| format.error(e))?;
    for batch in batches {
        let batch = batch.map_err(|e| format.error(e))?;
        for (column, &i) in batch.columns().iter().zip(&checked) {
            if text[i] {
                continue;
            }
            let values = column
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .ok_or_else(|| format.error("a column read as text is not text"))?;
            let data_type = inferred.field(i).data_type();
            text[i] = values.iter().flatten().any(|v| !reads_as(data_type, v));
        }
        if checked.iter().all(|&i| text[i]) {
            break; // every checked column is text already: the rest changes nothing
        }
    }
    Ok(text)
}

/// Whether the CSV reader reads `value` as `data_type`, an inferred type, with the parsers
/// it uses itself; a number's text must not be zero-padded besides.
fn reads_as(data_type: &DataType, value: &str) -> bool {
    use arrow_array::types::{Date32Type, Float64Type, Int64Type};
    use arrow_cast::parse::Parser;
    match data_type {
        // arrow infers `true` and `false` ignoring case as Unicode does (`falſe` with a long
        // s), and reads them ignoring ASCII case only.
        DataType::Boolean => {
            value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
        }
        DataType::Int64 => !is_zero_padded(value) && Int64Type::parse(value).is_some(),
        DataType::Float64 => !is_zero_padded(value) && Float64Type::parse(value).is_some(),
        DataType::Date32 => Date32Type::parse(value).is_some(),
        DataType::Timestamp(unit, None) => {
            // The reader reads a timestamp with no zone as UTC, a fixed offset of zero.
            let utc: arrow_array::timezone::Tz = "+00:00".parse().expect("a fixed offset");
            match arrow_cast::parse::string_to_datetime(&utc, value) {
                Ok(t) => {
                    has_fixed_offset(value)
                        && (*unit != arrow_schema::TimeUnit::Nanosecond
                            || t.timestamp_nanos_opt().is_some())
                }
                Err(_) => false,
            }
        }
        _ => true,
    }
}

/// Whether a timestamp that arrow reads has no zone, `Z`, or a fixed offset (`+02:00`),
/// rather than a zone's name (`Europe/Paris`, `UTC`). arrow reads names only when its
/// `chrono-tz` feature is on, which another crate of a build may turn on: a name would
/// then read as a timestamp in one build and not in another (the browser's), and an
/// instant would depend on the version of the zone database. A name makes the column text
/// in every build.
fn has_fixed_offset(value: &str) -> bool {
    let Some(rest) = value.get(19..) else {
        return true; // a date alone
    };
    let zone = match rest.strip_prefix('.') {
        Some(fraction) => fraction.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    };
    zone.is_empty() || zone == "Z" || zone == "z" || zone.trim_start().starts_with(['+', '-'])
}

/// Whether a number's text has a zero before its first significant digit (`007`, `-00.5`,
/// `00`), which `0`, `0.5` and `-0e3` have not.
fn is_zero_padded(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text).as_bytes();
    matches!(digits, [b'0', next, ..] if next.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode;
    use crate::table::Table;
    use bytes::Bytes;

    fn csv(text: &str) -> Table {
        decode(Bytes::from(text.to_owned()), Format::Csv).unwrap()
    }

    fn types(t: &Table) -> Vec<(String, DataType)> {
        (t.schema().fields().iter())
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn csv_keeps_zero_padded_numbers_as_text() {
        let t = csv("id,zip,code,amount,n\n1,00123,\"-007\",00.5,0\n2,12345,8,1.5,-0\n3,,9,,\n");
        use DataType::{Float64, Int64, Utf8};
        let want = [
            ("id", Int64),
            ("zip", Utf8),
            ("code", Utf8),
            ("amount", Utf8),
            ("n", Int64),
        ];
        let want: Vec<(String, DataType)> = want.map(|(n, t)| (n.to_owned(), t)).to_vec();
        assert_eq!(types(&t), want);
        let batch = arrow_select::concat::concat_batches(t.schema(), t.batches()).unwrap();
        let text = |i: usize| -> Vec<Option<String>> {
            let column = batch.column(i).as_any();
            let values = column.downcast_ref::<arrow_array::StringArray>().unwrap();
            values.iter().map(|v| v.map(str::to_owned)).collect()
        };
        let owned = |v: &[Option<&str>]| -> Vec<Option<String>> {
            v.iter().map(|v| v.map(str::to_owned)).collect()
        };
        assert_eq!(text(1), owned(&[Some("00123"), Some("12345"), None]));
        assert_eq!(text(2), owned(&[Some("-007"), Some("8"), Some("9")]));
        assert_eq!(text(3), owned(&[Some("00.5"), Some("1.5"), None]));

        // Zero before a point or an exponent, or alone, is no padding.
        let t = csv("a,b,c\n0.5,0,-0e3\n-0.25,10,1.5\n");
        let numbers = [("a", Float64), ("b", Int64), ("c", Float64)];
        let numbers: Vec<(String, DataType)> = numbers.map(|(n, t)| (n.to_owned(), t)).to_vec();
        assert_eq!(types(&t), numbers);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn csv_reads_a_column_its_type_cannot_read_as_text() {
        // Each value looks like its column's type but is none: the column is text, and the
        // file reads (it used to fail whole).
        let t = csv("day,zone,far,past,digit,real,offset,ok,flag\n\
                     2024-02-30,2024-01-01T10:00:00 UTC,2300-01-01T00:00:00.000000001,\
                     2024-01-01T24:00:00,\u{663},\u{663}.5,2024-01-01T10:00:00+24:00,\
                     2024-02-29T10:00:00.5+01:00,fal\u{17f}e\n\
                     2024-02-29,2024-01-01T10:00:00Z,2024-01-01T00:00:00.000000001,\
                     2024-01-01T23:00:00,1,1.5,2024-01-01T10:00:00+23:59,\
                     2024-02-29 10:00:00.25,true\n");
        let mut want: Vec<(String, DataType)> =
            ["day", "zone", "far", "past", "digit", "real", "offset"]
                .map(|n| (n.to_owned(), DataType::Utf8))
                .to_vec();
        let ms = DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, None);
        want.push(("ok".to_owned(), ms));
        want.push(("flag".to_owned(), DataType::Utf8));
        assert_eq!(types(&t), want);
        let batch = arrow_select::concat::concat_batches(t.schema(), t.batches()).unwrap();
        let day = batch.column(0).as_any();
        let day = day.downcast_ref::<arrow_array::StringArray>().unwrap();
        assert_eq!(day.value(0), "2024-02-30");
        let ok = batch.column(7).as_any();
        let ok = ok
            .downcast_ref::<arrow_array::TimestampMillisecondArray>()
            .unwrap();
        // 09:00:00.5 and 10:00:00.25 UTC on 2024-02-29 (day 19782).
        let day_ms = 19_782 * 86_400_000;
        assert_eq!(ok.values(), &[day_ms + 32_400_500, day_ms + 36_000_250]);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn csv_quoting_is_followed_across_reads() {
        // Whatever the reads' sizes: a byte order mark split between two is one mark, and
        // lines are counted with a CR LF as one line break.
        let cases: [(&[u8], Option<u64>); 8] = [
            (b"a,b\r\n1,\"x\r\n\r\ny\"\r\n2,\"z", Some(5)),
            (b"a,b\r\n1,\"x\r\n\r\ny\"\r\n2,\"z\"", None),
            (b"\xEF\xBB\xBF\"a\n", Some(1)),
            (b"\xEF\xBB\xBF\"a\"\n", None),
            // Not a mark: the quote is inside a field.
            (b"\xEF\xBB\"a\n", None),
            (b"a\r\r\n\n\"b\"\"c\n", Some(4)),
            (b"a\n\"b\"c\"d\n", None),
            (b"a\nb\"c\n\"", Some(3)),
        ];
        // Fields longer than the blocks that `find` passes over.
        let long = format!(
            "a\n\"{}\"\"{}\"\n{},\"{}",
            "x".repeat(40),
            "y".repeat(70),
            "z".repeat(70),
            "w".repeat(50)
        );
        let closed = format!("{long}\"");
        let cases = cases
            .into_iter()
            .chain([(long.as_bytes(), Some(3)), (closed.as_bytes(), None)]);
        for (bytes, want) in cases {
            for size in 1..=bytes.len() {
                let mut q = Quoting::default();
                bytes.chunks(size).for_each(|c| q.feed(c));
                let line = q.open_at().map(|at| line_at(bytes, at).unwrap());
                assert_eq!(line, want, "{bytes:?} read {size} bytes at a time");
            }
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn zero_padding_is_a_zero_before_a_digit() {
        for padded in ["00", "007", "-007", "+01", "00.5", "-0012.5", "01e3"] {
            assert!(is_zero_padded(padded), "{padded}");
        }
        for plain in [
            "0", "-0", "0.5", "-0.0", "0e5", "10", "100", "", "-", "1.05", ".5",
        ] {
            assert!(!is_zero_padded(plain), "{plain}");
        }
    }
}
