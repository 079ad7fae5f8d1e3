//! Inputs cut short are errors, never shorter tables: a CSV file that ends inside a quoted
//! field, an Arrow IPC stream that ends without its end-of-stream marker. Runs natively and,
//! in a browser, under wasm32.

#[macro_use]
mod common;

use std::io::Cursor;
use std::sync::Arc;

use arrow_array::*;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use bytes::Bytes;
use pipeproof_core::decode::{decode, read_batches};
use pipeproof_core::{Format, Table};

const NO_END: &str = "cannot read the input as Arrow IPC stream: the Arrow IPC stream ends \
    without its end-of-stream marker: it is incomplete (cut short?); a writer writes the \
    marker when it is closed";

fn open_quote(line: u64) -> String {
    format!(
        "cannot read the input as CSV: a quoted field opened on line {line} is never closed \
         (is the file cut short?)"
    )
}

/// An input read both ways core reads it: whole in memory, and batch by batch from a reader.
fn read(bytes: &[u8], format: Format) -> [Result<Table, String>; 2] {
    let whole = decode(Bytes::copy_from_slice(bytes), format).map_err(|e| e.to_string());
    let streamed = read_batches(Cursor::new(bytes.to_vec()), format)
        .and_then(|(schema, batches)| {
            let batches = batches.collect::<pipeproof_core::Result<Vec<_>>>()?;
            Table::try_new(schema, batches)
        })
        .map_err(|e| e.to_string());
    [whole, streamed]
}

#[track_caller]
fn refused(bytes: &[u8], format: Format, message: &str) {
    let input = match format {
        Format::Csv => format!("{:?}", String::from_utf8_lossy(bytes)),
        _ => format!("{} bytes of {format}", bytes.len()),
    };
    for got in read(bytes, format) {
        match got {
            Ok(t) => panic!(
                "{input} read as {} rows, not refused with {message:?}",
                t.num_rows()
            ),
            Err(e) => assert_eq!(e, message, "{input}"),
        }
    }
}

/// The values of column `i` of a table read from CSV, as text.
#[track_caller]
fn csv_column(text: &str, i: usize) -> Vec<Option<String>> {
    let [whole, streamed] = read(text.as_bytes(), Format::Csv);
    let (whole, streamed) = (whole.unwrap(), streamed.unwrap());
    let values = |t: &Table| -> Vec<Option<String>> {
        let batch = t.concat().unwrap();
        let column = arrow_cast::cast(batch.column(i), &arrow_schema::DataType::Utf8).unwrap();
        let column = column.as_any().downcast_ref::<StringArray>().unwrap();
        column.iter().map(|v| v.map(str::to_owned)).collect()
    };
    assert_eq!(values(&whole), values(&streamed));
    values(&whole)
}

fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
    let names = StringArray::from_iter_values(ids.clone().map(|i| format!("n{i}")));
    RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int64Array::from_iter_values(ids)) as ArrayRef,
        ),
        ("name", Arc::new(names)),
    ])
    .unwrap()
}

/// A stream of these batches, with where each message ends (the schema's, each batch's).
fn stream(batches: &[RecordBatch], options: IpcWriteOptions) -> (Vec<u8>, Vec<usize>) {
    let mut w =
        StreamWriter::try_new_with_options(Vec::new(), &batches[0].schema(), options).unwrap();
    let mut ends = Vec::new();
    for b in batches {
        w.write(b).unwrap();
        ends.push(w.get_ref().len());
    }
    w.finish().unwrap();
    let bytes = w.into_inner().unwrap();
    (bytes, ends)
}

both! {
    fn a_csv_file_ending_inside_a_quoted_field_is_refused() {
        // The trial's file: the rest of the file would have been row 1's value.
        refused(b"id,v\n1,\"unterminated\n2,b\n", Format::Csv, &open_quote(2));
        // Lines are counted as lines of text, line breaks in quoted fields included, and
        // CR and CR LF each end one.
        refused(
            b"id,v\r\n1,\"a\r\nb\"\r\n2,x\r3,\"c\"\"d\n4,e\n",
            Format::Csv,
            &open_quote(5),
        );
        // In the header; after a byte order mark.
        refused(b"\"id,v\n1,2\n", Format::Csv, &open_quote(1));
        refused(b"\xEF\xBB\xBF\"id\",\"v\n1,2\n", Format::Csv, &open_quote(1));
        // Even where the fields left would be miscounted: the quote is what is wrong.
        refused(b"id,v,w\n1,\"x,y\n2,b,c\n", Format::Csv, &open_quote(2));
        // A doubled quote last is a quote in the value, not its end.
        refused(b"id,v\n1,\"abc\"\"\n", Format::Csv, &open_quote(2));
        // Cut inside the last field, with no rows read after it.
        refused(b"id,v\n1,a\n2,\"b", Format::Csv, &open_quote(3));

        // Quotes that close still read: a quoted field closed at the very end; a quote
        // inside an unquoted field; text after a closing quote, a quote in it included;
        // doubled quotes; a byte order mark.
        let text = "\u{feff}id,v\n1,\"a\nb\"\n2,x\"y\n3,\"ab\"c\"d\n4,\"\"\"\"\n5,\"\"\n6,\"z\"";
        assert_eq!(
            csv_column(text, 1),
            [Some("a\nb"), Some("x\"y"), Some("abc\"d"), Some("\""), None, Some("z")]
                .map(|v| v.map(str::to_owned))
                .to_vec()
        );
        assert_eq!(csv_column("\"id\"\n1\n", 0), [Some("1".to_owned())]);
    }

    fn an_arrow_stream_without_its_end_of_stream_marker_is_refused() {
        let batches = [batch(0..3), batch(3..5), batch(5..9)];
        let (bytes, ends) = stream(&batches, IpcWriteOptions::default());
        assert_eq!(&bytes[bytes.len() - 8..], [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]);
        for got in read(&bytes, Format::ArrowStream) {
            assert_eq!(got.unwrap().num_rows(), 9);
        }
        // Cut at the end of a message (the schema's or a batch's): it read as a shorter
        // table. Every cut is refused, most with arrow's own message.
        for &end in &ends {
            refused(&bytes[..end], Format::ArrowStream, NO_END);
        }
        refused(&bytes[..bytes.len() - 8], Format::ArrowStream, NO_END);
        refused(&bytes[..ends[0] + 2], Format::ArrowStream, NO_END);
        for n in 0..bytes.len() {
            for got in read(&bytes[..n], Format::ArrowStream) {
                assert!(got.is_err(), "{n} of {} bytes read", bytes.len());
            }
        }
        // A table of no rows: the schema, then the marker.
        let mut w = StreamWriter::try_new(Vec::new(), &batches[0].schema()).unwrap();
        w.finish().unwrap();
        let empty = w.into_inner().unwrap();
        for got in read(&empty, Format::ArrowStream) {
            assert_eq!(got.unwrap().num_rows(), 0);
        }
        refused(&empty[..empty.len() - 8], Format::ArrowStream, NO_END);
    }

    fn a_legacy_arrow_stream_ends_at_its_own_marker() {
        // Before Arrow 0.15 the marker was four zero bytes.
        let options =
            IpcWriteOptions::try_new(8, true, arrow_ipc::MetadataVersion::V4).unwrap();
        let (bytes, ends) = stream(&[batch(0..3), batch(3..5)], options);
        assert_eq!(&bytes[bytes.len() - 4..], [0, 0, 0, 0]);
        for got in read(&bytes, Format::ArrowStream) {
            assert_eq!(got.unwrap().num_rows(), 5);
        }
        refused(&bytes[..ends[1]], Format::ArrowStream, NO_END);
    }
}
