//! CSV input: the quoting check, the inference of the columns' types, and the read (section
//! 13 of the fingerprint v1 spec).

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, DataType, Schema, SchemaRef, TimeUnit};

use super::{DEFAULT_BATCH_ROWS, Format, Guarded};
use crate::error::Result;
use crate::par;
use crate::table::BatchIter;

/// About how many bytes of a CSV input each thread reads at a time (the piece ends at the
/// end of the record this many bytes in).
const PIECE: usize = 4 << 20;

/// Streams the batches of a CSV input whose columns' types are known: those that
/// [`super::read_batches`] inferred from the same input, which is read again without
/// inferring them again. Its pieces are read in parallel ([`Pieces`]); an error is the
/// one reading the input from its start in one pass finds, the line it names counted from
/// the input's start.
pub fn read_csv<R: Read + Seek + Send + 'static>(
    reader: R,
    schema: SchemaRef,
) -> Result<BatchIter<'static>> {
    read_csv_in(reader, schema, PIECE)
}

fn read_csv_in<R: Read + Seek + Send + 'static>(
    mut reader: R,
    schema: SchemaRef,
    piece: usize,
) -> Result<BatchIter<'static>> {
    let format = Format::Csv;
    let start = reader.stream_position().map_err(|e| format.error(e))?;
    Ok(Guarded::batches(
        PieceBatches {
            pieces: Pieces::new(reader, piece),
            start,
            schema,
            ready: VecDeque::new(),
            error: None,
            done: false,
        },
        format,
    ))
}

/// Reads the records of one piece with the given types: the header row too if it is the
/// first piece.
fn read_piece(
    piece: &[u8],
    schema: &SchemaRef,
    first: bool,
) -> std::result::Result<Vec<RecordBatch>, ArrowError> {
    arrow_csv::ReaderBuilder::new(Arc::clone(schema))
        .with_header(first)
        .with_batch_size(DEFAULT_BATCH_ROWS)
        .build(piece)?
        .collect()
}

/// The batches of a CSV input's pieces, as many pieces read at once as there are threads,
/// in order.
struct PieceBatches<R> {
    pieces: Pieces<R>,
    /// Where the input starts in the reader.
    start: u64,
    schema: SchemaRef,
    ready: VecDeque<RecordBatch>,
    /// The error to give once the batches before it are given.
    error: Option<String>,
    done: bool,
}

impl<R: Read + Seek> PieceBatches<R> {
    /// Reads the next pieces into batches; their error, if any, in `self.error`.
    fn read_more(&mut self) {
        let first = self.pieces.taken == 0;
        let pieces = match self.pieces.take(par::threads()) {
            Ok(pieces) => pieces,
            Err(e) => {
                self.error = Some(e.to_string());
                self.done = true;
                return;
            }
        };
        self.done = pieces.is_empty();
        let read = par::map(&pieces, |(i, piece)| {
            read_piece(piece, &self.schema, first && *i == 0)
        });
        for batches in read {
            match batches {
                Ok(batches) => self.ready.extend(batches),
                Err(e) => {
                    self.error = Some(self.error_from_start(e));
                    self.done = true;
                    return;
                }
            }
        }
    }

    /// The first error that reading the input from its start in one pass finds: the same
    /// as `e`, found in a piece, but with its line counted from the input's start.
    fn error_from_start(&mut self, e: ArrowError) -> String {
        let reader = &mut self.pieces.reader;
        let whole = reader.seek(SeekFrom::Start(self.start)).and_then(|_| {
            arrow_csv::ReaderBuilder::new(Arc::clone(&self.schema))
                .with_header(true)
                .with_batch_size(DEFAULT_BATCH_ROWS)
                .build(std::io::BufReader::new(&mut *reader))
                .map_err(std::io::Error::other)
        });
        match whole {
            Ok(mut batches) => batches.find_map(|b| b.err()).unwrap_or(e).to_string(),
            Err(_) => e.to_string(),
        }
    }
}

impl<R: Read + Seek> Iterator for PieceBatches<R> {
    type Item = std::result::Result<RecordBatch, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                return Some(Ok(batch));
            }
            if let Some(e) = self.error.take() {
                return Some(Err(e));
            }
            if self.done {
                return None;
            }
            self.read_more();
        }
    }
}

/// A CSV input cut into pieces of whole records, read one after another: each piece but
/// the last ends at the first line break after about `size` bytes that is not inside a
/// quoted field ([`Quoting`]), so that the records of each can be read on their own, in
/// parallel. The first piece holds the header row.
struct Pieces<R> {
    reader: R,
    size: usize,
    /// The quoting of the bytes of the pieces so far.
    quoting: Quoting,
    /// Bytes read past the end of the last piece: the start of the next.
    carry: Vec<u8>,
    ended: bool,
    /// How many pieces were taken.
    taken: usize,
}

impl<R: Read> Pieces<R> {
    fn new(reader: R, size: usize) -> Pieces<R> {
        Pieces {
            reader,
            size: size.max(1),
            quoting: Quoting::default(),
            carry: Vec::new(),
            ended: false,
            taken: 0,
        }
    }

    /// The next piece, or `None` at the end of the input.
    fn next_piece(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        // Enough to find the end of the record `size` bytes in, mostly, in one read.
        let more = self.size.min(64 * 1024);
        let mut buf = std::mem::take(&mut self.carry);
        self.fill(&mut buf, self.size + more)?;
        // The bytes of `buf` the quoting has followed.
        let mut fed = self.size.min(buf.len());
        self.quoting.feed(&buf[..fed]);
        loop {
            match memchr::memchr(b'\n', &buf[fed..]) {
                Some(n) => {
                    let end = fed + n + 1;
                    self.quoting.feed(&buf[fed..end]);
                    fed = end;
                    if self.quoting.at_field_start() {
                        self.carry = buf.split_off(end);
                        break;
                    }
                }
                None if !self.ended => {
                    let len = buf.len() + more;
                    self.fill(&mut buf, len)?;
                }
                None => {
                    self.quoting.feed(&buf[fed..]);
                    break;
                }
            }
        }
        if buf.is_empty() {
            return Ok(None);
        }
        self.taken += 1;
        Ok(Some(buf))
    }

    /// Reads the input into `buf` until it holds `len` bytes, or the input ends.
    fn fill(&mut self, buf: &mut Vec<u8>, len: usize) -> std::io::Result<()> {
        let want = len.saturating_sub(buf.len());
        if want == 0 || self.ended {
            return Ok(());
        }
        buf.reserve_exact(want);
        if (&mut self.reader).take(want as u64).read_to_end(buf)? < want {
            self.ended = true;
        }
        Ok(())
    }

    /// Up to `n` next pieces, each with its number among those taken this call.
    fn take(&mut self, n: usize) -> std::io::Result<Vec<(usize, Vec<u8>)>> {
        let mut pieces = Vec::new();
        while pieces.len() < n.max(1) {
            match self.next_piece()? {
                Some(piece) => pieces.push((pieces.len(), piece)),
                None => break,
            }
        }
        Ok(pieces)
    }
}

/// Infers the types of a CSV input's columns, leaving the reader where it found it. An
/// input that ends inside a quoted field is an error ([`Quoting`]). The input's pieces are
/// inferred in parallel ([`infer_in_pieces`]); where that cannot answer, the input is read
/// in one pass, whose answer or error is the input's.
pub(super) fn infer_csv_schema<R: Read + Seek>(reader: &mut R) -> Result<SchemaRef> {
    infer_csv_schema_in(reader, PIECE)
}

fn infer_csv_schema_in<R: Read + Seek>(reader: &mut R, piece: usize) -> Result<SchemaRef> {
    let format = Format::Csv;
    let start = reader.stream_position().map_err(|e| format.error(e))?;
    let in_pieces = infer_in_pieces(reader, piece);
    reader
        .seek(SeekFrom::Start(start))
        .map_err(|e| format.error(e))?;
    match in_pieces {
        Some(schema) => Ok(schema),
        None => infer_in_one_pass(reader, start),
    }
}

/// The columns' types inferred piece by piece, as many pieces at once as there are
/// threads, and the pieces' columns merged as one pass over the input would have merged
/// their values ([`Column`]). `None` where one pass would find an error, or might: a piece
/// that cannot be read, or whose records have another number of fields than the header; a
/// quoted field still open at the end; no header.
fn infer_in_pieces<R: Read + Seek>(reader: &mut R, size: usize) -> Option<SchemaRef> {
    let threads = par::threads();
    let mut names: Option<Vec<String>> = None;
    let mut columns: Vec<Column> = Vec::new();
    let mut pieces = Pieces::new(&mut *reader, size);
    loop {
        let first = names.is_none();
        let group = pieces.take(threads).ok()?;
        if group.is_empty() {
            break;
        }
        let inferred = par::map(&group, |(i, piece)| infer_piece(piece, first && *i == 0));
        for inferred in inferred {
            let (header, piece_columns) = inferred?;
            if let Some(header) = header {
                columns = vec![Column::default(); header.len()];
                names = Some(header);
            }
            if piece_columns.is_empty() {
                continue; // no records
            }
            if piece_columns.len() != columns.len() {
                return None;
            }
            for (column, piece) in columns.iter_mut().zip(piece_columns) {
                column.merge(piece);
            }
        }
    }
    if pieces.quoting.open_at().is_some() {
        return None;
    }
    let names = names.filter(|n| !n.is_empty())?;
    let fields: Vec<_> = (names.iter().zip(&columns))
        .map(|(name, column)| arrow_schema::Field::new(name, column.data_type(), true))
        .collect();
    Some(Arc::new(Schema::new(fields)))
}

/// The header's names (of the first piece) and the columns of one piece's records (none if
/// it has none), read as arrow's inference reads them; `None` where its reading finds an
/// error (its records' numbers of fields differ, a record is not UTF-8).
#[allow(clippy::type_complexity)]
fn infer_piece(piece: &[u8], header: bool) -> Option<(Option<Vec<String>>, Vec<Column>)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(header)
        .from_reader(piece);
    // Without a header, the first record, not consumed, tells the number of fields.
    let first = reader.headers().ok()?;
    let names = header.then(|| first.iter().map(String::from).collect::<Vec<_>>());
    let mut columns = vec![Column::default(); first.len()];
    let mut record = csv::StringRecord::new();
    let mut records = 0;
    while reader.read_record(&mut record).ok()? {
        records += 1;
        for (column, value) in columns.iter_mut().zip(record.iter()) {
            // Empty is null, and text stays text whatever comes after.
            if !value.is_empty() && !column.kinds.is_text() {
                column.add(value);
            }
        }
    }
    if records == 0 {
        columns.clear();
    }
    Some((names, columns))
}

/// What the values of one column so far make: their kinds, and the types (by the bit of
/// their kind) that one of them cannot be read as. The column is text if its kinds make
/// one of those types (13.4); a value is checked only against the types its kind can end
/// in, which are those that [`text_columns`] checks it against, once the type is known.
#[derive(Debug, Default, Clone, Copy)]
struct Column {
    kinds: Inferred,
    unreadable: u16,
}

impl Column {
    /// Adds a value (not empty: empty is null).
    fn add(&mut self, value: &str) {
        let kind = Inferred::bit_of(value);
        self.kinds.0 |= kind;
        if kind != Inferred::TEXT {
            self.unreadable |= unreadable_as(kind, value);
        }
    }

    fn merge(&mut self, other: Column) {
        self.kinds.0 |= other.kinds.0;
        self.unreadable |= other.unreadable;
    }

    /// The column's type: what its kinds make, unless a value cannot be read as that.
    fn data_type(self) -> DataType {
        let inferred = self.kinds.data_type();
        match kind_bit(&inferred) {
            Some(bit) if self.unreadable & bit != 0 => DataType::Utf8,
            _ => inferred,
        }
    }
}

/// The bit of the kind whose values alone make this type.
fn kind_bit(data_type: &DataType) -> Option<u16> {
    Some(match data_type {
        DataType::Boolean => 1,
        DataType::Int64 => 1 << 1,
        DataType::Float64 => 1 << 2,
        DataType::Date32 => 1 << 3,
        DataType::Timestamp(TimeUnit::Second, None) => 1 << 4,
        DataType::Timestamp(TimeUnit::Millisecond, None) => 1 << 5,
        DataType::Timestamp(TimeUnit::Microsecond, None) => 1 << 6,
        DataType::Timestamp(TimeUnit::Nanosecond, None) => 1 << 7,
        _ => return None,
    })
}

/// Of the types a value of kind `kind` (one bit) can end up in, the bits of those it
/// cannot be read as ([`reads_as`]): an int's column may be int64 or float64; a date's,
/// date32 or a timestamp of any unit; a timestamp's, one of its unit or finer.
fn unreadable_as(kind: u16, value: &str) -> u16 {
    let may_be: u16 = match kind {
        0b1000 => 0b1111_1000,
        0b10 => 0b110,
        k if k >= 1 << 4 => !(k - 1) & 0b1111_0000,
        k => k,
    };
    let mut unreadable = 0;
    // Timestamps of every unit read alike, but for the range of nanoseconds.
    let mut timestamp = None;
    for bit in (0..8).map(|b| 1 << b).filter(|b| may_be & b != 0) {
        let reads = match Inferred(bit).data_type() {
            DataType::Timestamp(unit, None) => {
                let fits_ns = *timestamp.get_or_insert_with(|| reads_as_timestamp(value));
                fits_ns.is_some_and(|fits_ns| unit != TimeUnit::Nanosecond || fits_ns)
            }
            data_type => reads_as(&data_type, value),
        };
        if !reads {
            unreadable |= bit;
        }
    }
    unreadable
}

/// The types that all the values of a column so far can be read as, one bit each, kept as
/// arrow's CSV inference keeps them (sections 13.3 and 13.4 of the spec): 0 Boolean, 1 Int64,
/// 2 Float64, 3 Date32, 4 to 7 Timestamp in seconds, milliseconds, microseconds and
/// nanoseconds, 8 Utf8. The bits of all of a column's values, however they are grouped,
/// give its type.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Inferred(u16);

impl Inferred {
    const TEXT: u16 = 1 << 8;

    /// The type the values make: integers widened to numbers, times to the finest unit,
    /// anything else mixed is text.
    fn data_type(self) -> DataType {
        match self.0 {
            0 => DataType::Null,
            1 => DataType::Boolean,
            2 => DataType::Int64,
            4 | 6 => DataType::Float64,
            b if self.only_times() => match 15 - b.leading_zeros() {
                7 => DataType::Timestamp(TimeUnit::Nanosecond, None),
                6 => DataType::Timestamp(TimeUnit::Microsecond, None),
                5 => DataType::Timestamp(TimeUnit::Millisecond, None),
                4 => DataType::Timestamp(TimeUnit::Second, None),
                _ => DataType::Date32,
            },
            _ => DataType::Utf8,
        }
    }

    /// Dates and timestamps only.
    fn only_times(self) -> bool {
        self.0 != 0 && self.0 & !0b1111_1000 == 0
    }

    /// Whether the values are text, which no value to come can change.
    fn is_text(self) -> bool {
        !matches!(self.0, 0 | 1 | 2 | 4 | 6) && !self.only_times()
    }

    /// The bit of one value: what the first of arrow's inference patterns that matches it
    /// says, in their order (boolean, integer, decimal, date, then timestamps by the digits
    /// of their fraction); an integer too large for Int64, `NaN`, `nan`, `inf` and `-inf`
    /// as arrow takes them; else text. A value with characters other than ASCII (digits of
    /// other scripts, a long s in `falſe`) is left to arrow's own inference.
    fn bit_of(value: &str) -> u16 {
        let b = value.as_bytes();
        if value.starts_with('"') {
            return Inferred::TEXT;
        }
        if !value.is_ascii() {
            return Inferred::bit_by_arrow(value);
        }
        if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") {
            return 1;
        }
        let unsigned = b.strip_prefix(b"+").or(b.strip_prefix(b"-")).unwrap_or(b);
        if !unsigned.is_empty() && unsigned.iter().all(u8::is_ascii_digit) {
            return match b.len() >= 19 && value.parse::<i64>().is_err() {
                true => Inferred::TEXT,
                false => 1 << 1,
            };
        }
        if is_decimal(unsigned) {
            return 1 << 2;
        }
        if let Some(bit) = time_bit(b) {
            return bit;
        }
        match value {
            "NaN" | "nan" | "inf" | "-inf" => 1 << 2,
            _ => Inferred::TEXT,
        }
    }

    /// The bit of one value, as arrow's inference finds it, asked about a column of that
    /// one value.
    fn bit_by_arrow(value: &str) -> u16 {
        let csv = format!("c\n\"{}\"\n", value.replace('"', "\"\""));
        let inferred = arrow_csv::reader::Format::default()
            .with_header(true)
            .infer_schema(csv.as_bytes(), None);
        let Ok((schema, _)) = inferred else {
            return Inferred::TEXT;
        };
        kind_bit(schema.field(0).data_type()).unwrap_or(Inferred::TEXT)
    }
}

/// Whether an unsigned ASCII number is a decimal as arrow's inference reads one: digits
/// with a point somewhere among them and at least one digit (`1.`, `.5`, `1.5`), or
/// digits alone, followed by an exponent (`e5`, `E-3`), which digits alone need.
fn is_decimal(b: &[u8]) -> bool {
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let whole = digits(0);
    let mut at = whole;
    let mut point = false;
    if b.get(at) == Some(&b'.') {
        point = true;
        at += 1 + digits(at + 1);
    }
    let mantissa = at - usize::from(point);
    if mantissa == 0 {
        return false;
    }
    if at == b.len() {
        return point;
    }
    if !matches!(b[at], b'e' | b'E') {
        return false;
    }
    at += 1;
    if matches!(b.get(at), Some(b'+' | b'-')) {
        at += 1;
    }
    let exponent = digits(at.min(b.len()));
    exponent > 0 && at + exponent == b.len()
}

/// The bit of an ASCII date (`2024-01-31`) or timestamp (`2024-01-31T10:00:00`, a space for
/// the `T`) as arrow's inference reads them: a timestamp's unit is the finest its fraction's
/// digits need (at most nine); after the seconds, or the fraction, anything else may follow
/// that does not begin with a digit (or, after the seconds, a point) and holds no line
/// break past its first character.
fn time_bit(b: &[u8]) -> Option<u16> {
    let digits = |from: usize, to: usize| {
        b.get(from..to)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let is = |at: usize, c: &[u8]| b.get(at).is_some_and(|b| c.contains(b));
    let date = digits(0, 4) && is(4, b"-") && digits(5, 7) && is(7, b"-") && digits(8, 10);
    if !date {
        return None;
    }
    if b.len() == 10 {
        return Some(1 << 3);
    }
    let time = is(10, b"T ")
        && digits(11, 13)
        && is(13, b":")
        && digits(14, 16)
        && is(16, b":")
        && digits(17, 19);
    if !time {
        return None;
    }
    // What follows may not hold a line break past its first character.
    let tail_ok = |tail: &[u8]| tail.len() < 2 || !tail[1..].contains(&b'\n');
    let rest = &b[19..];
    match rest.first() {
        None => Some(1 << 4),
        Some(b'.') => {
            let fraction = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            let bit = match fraction {
                1..=3 => 1 << 5,
                4..=6 => 1 << 6,
                7..=9 => 1 << 7,
                _ => return None,
            };
            tail_ok(&rest[1 + fraction..]).then_some(bit)
        }
        Some(c) if c.is_ascii_digit() => None,
        Some(_) => tail_ok(rest).then_some(1 << 4),
    }
}

/// The inferred schema with the columns marked read as text.
fn with_text(inferred: &Schema, text: &[bool]) -> SchemaRef {
    let fields: Vec<arrow_schema::Field> = (inferred.fields().iter())
        .zip(text)
        .map(|(field, &text)| match text {
            true => field.as_ref().clone().with_data_type(DataType::Utf8),
            false => field.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// [`infer_csv_schema`] in one pass over the input for the types, and one for the text
/// columns.
fn infer_in_one_pass<R: Read + Seek>(reader: &mut R, start: u64) -> Result<SchemaRef> {
    let format = Format::Csv;
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
    Ok(with_text(&schema, &text))
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

    /// Whether the bytes so far end where a field starts (so, after a line break, where a
    /// record starts).
    fn at_field_start(&self) -> bool {
        self.past_bom && self.state == QuoteState::FieldStart
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
        DataType::Timestamp(unit, None) => reads_as_timestamp(value)
            .is_some_and(|fits_ns| *unit != TimeUnit::Nanosecond || fits_ns),
        _ => true,
    }
}

/// Whether the CSV reader reads `value` as a timestamp of every unit: `None` if it does not
/// read it as one, else whether the instant fits the range of nanoseconds.
fn reads_as_timestamp(value: &str) -> Option<bool> {
    // The reader reads a timestamp with no zone as UTC, a fixed offset of zero.
    let utc: arrow_array::timezone::Tz = "+00:00".parse().expect("a fixed offset");
    let t = arrow_cast::parse::string_to_datetime(&utc, value).ok()?;
    has_fixed_offset(value).then(|| t.timestamp_nanos_opt().is_some())
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

    /// A CSV text of random values: each column mostly of one kind (integers, numbers,
    /// dates, timestamps of several precisions, booleans, text), now and then a value of
    /// another, null, zero-padded, quoted across lines or not readable as its kind; LF or
    /// CR LF line ends.
    fn random_csv(seed: u64) -> String {
        const KINDS: [&[&str]; 7] = [
            &["1", "-7", "42", "+3", "0", "-0"],
            &["1.5", "-0.25", "1e3", "2.", ".5", "NaN", "inf", "7"],
            &["2024-01-31", "1999-12-01", "2000-02-29"],
            &[
                "2024-01-31T10:00:00",
                "2024-01-31 10:00:00.123",
                "2024-01-31",
                "1600-01-01",
            ],
            &[
                "2024-01-31T10:00:00.123456Z",
                "2024-01-31T10:00:00.123456789+02:00",
                "2300-01-01T00:00:00.5",
            ],
            &["true", "FALSE", "True"],
            &[
                "x",
                "a b",
                "\"q,uote\"",
                "\"multi\nline\"",
                "\"say \"\"hi\"\"\"",
                "é",
            ],
        ];
        const ODD: [&str; 10] = [
            "",
            "007",
            "2024-02-30",
            "99999999999999999999",
            "-",
            "\"1\"",
            "x",
            "1",
            "2024-01-31T10:00:00 Europe/Paris",
            "2300-01-01T00:00:00.000000001",
        ];
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let columns = 1 + next(5);
        let kinds: Vec<usize> = (0..columns).map(|_| next(KINDS.len())).collect();
        let end = if next(3) == 0 { "\r\n" } else { "\n" };
        let mut text = (0..columns)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(",");
        text.push_str(end);
        for _ in 0..next(40) {
            let row: Vec<&str> = (kinds.iter())
                .map(|&k| match next(12) {
                    0 => ODD[next(ODD.len())],
                    _ => KINDS[k][next(KINDS[k].len())],
                })
                .collect();
            text.push_str(&row.join(","));
            text.push_str(end);
        }
        if next(4) == 0 {
            text.truncate(text.len() - end.len()); // no line break at the end
        }
        text
    }

    /// The batches of a CSV text read in one pass with the given types, as one batch.
    fn read_in_one_pass(text: &str, schema: &SchemaRef) -> RecordBatch {
        let batches = arrow_csv::ReaderBuilder::new(Arc::clone(schema))
            .with_header(true)
            .build(text.as_bytes())
            .unwrap()
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap();
        arrow_select::concat::concat_batches(schema, &batches).unwrap()
    }

    fn read_in_pieces(text: &str, schema: &SchemaRef, piece: usize) -> Result<RecordBatch> {
        let reader = std::io::Cursor::new(text.as_bytes().to_vec());
        let batches =
            read_csv_in(reader, Arc::clone(schema), piece)?.collect::<Result<Vec<_>>>()?;
        Ok(arrow_select::concat::concat_batches(schema, &batches).unwrap())
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn pieces_are_whole_records_that_make_up_the_input() {
        for seed in 0..200 {
            let text = random_csv(seed);
            for size in [1, 2, 7, 30, 100, 1000] {
                let mut pieces = Pieces::new(text.as_bytes(), size);
                let mut all = Vec::new();
                while let Some(piece) = pieces.next_piece().unwrap() {
                    assert!(!piece.is_empty());
                    all.push(piece);
                }
                assert_eq!(all.concat(), text.as_bytes(), "seed {seed}, size {size}");
                // Each piece but the last ends with a record: with a line break outside
                // quotes (in these inputs, quotes come in pairs: a quoted field's two and
                // the doubled ones inside it).
                let mut upto = 0;
                for piece in &all[..all.len().saturating_sub(1)] {
                    upto += piece.len();
                    assert!(
                        piece.len() >= size.min(text.len()),
                        "seed {seed}, size {size}"
                    );
                    assert_eq!(piece.last(), Some(&b'\n'));
                    let quotes = text[..upto].matches('"').count();
                    assert!(
                        quotes.is_multiple_of(2),
                        "seed {seed}, size {size}: {piece:?}"
                    );
                }
            }
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn pieces_infer_and_read_as_one_pass_does() {
        let mut inferred_in_pieces = 0;
        for seed in 0..120 {
            let text = random_csv(seed);
            let mut reader = std::io::Cursor::new(text.as_bytes());
            let one_pass = infer_in_one_pass(&mut reader, 0);
            for piece in [1, 20, 1 << 20] {
                let mut reader = std::io::Cursor::new(text.as_bytes());
                let in_pieces = infer_in_pieces(&mut reader, piece);
                let Ok(schema) = &one_pass else {
                    // Where one pass fails, pieces must not answer.
                    assert!(in_pieces.is_none(), "seed {seed}, piece {piece}");
                    continue;
                };
                let in_pieces = in_pieces.unwrap_or_else(|| panic!("seed {seed}, piece {piece}"));
                assert_eq!(in_pieces, *schema, "seed {seed}, piece {piece}\n{text}");
                inferred_in_pieces += 1;
                assert_eq!(
                    read_in_pieces(&text, schema, piece).unwrap(),
                    read_in_one_pass(&text, schema),
                    "seed {seed}, piece {piece}"
                );
            }
        }
        // The random inputs are mostly well-formed.
        assert!(inferred_in_pieces > 200, "{inferred_in_pieces}");
    }

    /// The type arrow's inference gives a column of these values.
    fn arrow_type(values: &[&str]) -> DataType {
        let quoted: Vec<String> = (values.iter())
            .map(|v| format!("\"{}\"", v.replace('"', "\"\"")))
            .collect();
        let text = format!("c\n{}\n", quoted.join("\n"));
        let (schema, _) = arrow_csv::reader::Format::default()
            .with_header(true)
            .infer_schema(text.as_bytes(), None)
            .unwrap();
        schema.field(0).data_type().clone()
    }

    /// A value of each bit's type alone, by bit.
    const OF_BIT: [&str; 9] = [
        "true",
        "1",
        "1.5",
        "2000-01-01",
        "2000-01-01T00:00:00",
        "2000-01-01T00:00:00.000",
        "2000-01-01T00:00:00.000000",
        "2000-01-01T00:00:00.000000000",
        "x",
    ];

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn every_set_of_types_makes_the_type_arrow_makes_of_their_values() {
        for (bit, value) in OF_BIT.iter().enumerate() {
            assert_eq!(Inferred::bit_of(value), 1 << bit, "{value}");
        }
        for set in 0u16..1 << OF_BIT.len() {
            let values: Vec<&str> = (0..OF_BIT.len())
                .filter(|bit| set & (1 << bit) != 0)
                .map(|bit| OF_BIT[bit])
                .collect();
            let expected = match values.is_empty() {
                true => DataType::Null,
                false => arrow_type(&values),
            };
            let inferred = Inferred(set);
            assert_eq!(inferred.data_type(), expected, "{values:?}");
            assert_eq!(inferred.is_text(), expected == DataType::Utf8, "{values:?}");
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn each_value_is_typed_as_arrow_types_it() {
        // Pieces of values that make, and nearly make, each type.
        const BITS: [&str; 40] = [
            "0",
            "1",
            "9",
            "12",
            "007",
            "-",
            "+",
            ".",
            "e",
            "E",
            "T",
            " ",
            ":",
            "2024",
            "-01",
            "-31",
            "10",
            "00",
            "Z",
            "+02:00",
            "\n",
            "\r",
            "x",
            "true",
            "FALSE",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "\u{661}",
            "\u{17F}",
            "é",
            "\"",
            "1234567890",
            "9223372036854775807",
            "2024-01-31",
            "2024-01-31T10:00:00",
            ".123",
            ".1234567",
            "e-3",
        ];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut values: Vec<String> = (0..6000)
            .map(|_| (0..1 + next(5)).map(|_| BITS[next(BITS.len())]).collect())
            .collect();
        // Timestamps with every length of fraction, and what may follow them.
        for fraction in 0..12 {
            for tail in ["", "Z", "+02:00", " UTC", "\n", "Z\n", "\nZ", "1", ".", "é"] {
                for sep in ["T", " "] {
                    let digits = "123456789012"[..fraction].to_string();
                    let point = if fraction > 0 { "." } else { "" };
                    values.push(format!("2024-01-31{sep}10:00:00{point}{digits}{tail}"));
                }
            }
        }
        values.extend(
            [
                "-9223372036854775808",
                "9223372036854775808",
                "+9223372036854775807",
            ]
            .map(String::from),
        );
        for value in values.iter().filter(|v| !v.is_empty()) {
            let arrow = arrow_type(&[value]);
            assert_eq!(
                Inferred(Inferred::bit_of(value)).data_type(),
                arrow,
                "{value:?}"
            );
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn an_error_in_a_piece_is_the_one_of_one_pass_with_its_line() {
        let rows: String = (0..50).map(|i| format!("{i},{i}.5\n")).collect();
        // A record with a field too many, a quoted field never closed, bytes that are not
        // UTF-8, far from the first piece.
        for bad in [&b"1,2,3\n"[..], b"7,\"open\n", b"1,\xFF\n"] {
            let text = [b"id,amount\n", rows.as_bytes(), bad, rows.as_bytes()].concat();
            let one_pass = infer_in_one_pass(&mut std::io::Cursor::new(&text), 0)
                .unwrap_err()
                .to_string();
            assert!(one_pass.contains("line"), "{one_pass}");
            for piece in [1, 10, 1 << 20] {
                let mut reader = std::io::Cursor::new(&text);
                assert!(infer_in_pieces(&mut reader, piece).is_none());
                let mut reader = std::io::Cursor::new(&text);
                let got = infer_csv_schema_in(&mut reader, piece).unwrap_err();
                assert_eq!(got.to_string(), one_pass);
            }
        }
        // A value its column's type cannot read, given the types (as a re-scan is), far
        // into the input: the line is counted from the input's start.
        let text = format!("id,amount\n{rows}x,1\n{rows}");
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            arrow_schema::Field::new("id", DataType::Int64, true),
            arrow_schema::Field::new("amount", DataType::Float64, true),
        ]));
        let one_pass = arrow_csv::ReaderBuilder::new(Arc::clone(&schema))
            .with_header(true)
            .build(text.as_bytes())
            .unwrap()
            .find_map(|b| b.err())
            .unwrap()
            .to_string();
        assert!(one_pass.contains("line 51"), "{one_pass}");
        for piece in [1, 10, 1 << 20] {
            let got = read_in_pieces(&text, &schema, piece)
                .unwrap_err()
                .to_string();
            assert!(got.ends_with(&one_pass), "{got}");
        }
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
