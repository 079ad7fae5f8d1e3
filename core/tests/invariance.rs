//! The invariances fingerprint v1 promises: what must not change a hash (physical layout)
//! and what must (any value, the row order for the order root, the column order for the
//! schema hash). Runs natively and, in a browser, under wasm32.

#[macro_use]
mod common;

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::*;
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use common::{fp, permute, table};
use pipeproof_core::{Format, Table, decode};

fn ids() -> ArrayRef {
    Arc::new(Int64Array::from(vec![1, 2, 3, 4]))
}

fn names() -> ArrayRef {
    Arc::new(StringArray::from(vec![
        Some("a"),
        None,
        Some("c"),
        Some("a"),
    ]))
}

both! {
    fn int_widths_hash_alike() {
        let a = table(vec![("x", Arc::new(Int32Array::from(vec![1, -2, 3])) as ArrayRef)]);
        let b = table(vec![("x", Arc::new(Int64Array::from(vec![1, -2, 3])) as ArrayRef)]);
        let c = table(vec![("x", Arc::new(Int8Array::from(vec![1, -2, 3])) as ArrayRef)]);
        let d = table(vec![("x", Arc::new(UInt16Array::from(vec![1, 2, 3])) as ArrayRef)]);
        assert_eq!(fp(&a).row_hashes, fp(&b).row_hashes);
        assert_eq!(fp(&a).fingerprint.content_root, fp(&c).fingerprint.content_root);
        assert_ne!(fp(&a).fingerprint.schema_hash, fp(&b).fingerprint.schema_hash);
        assert_ne!(fp(&a).row_hashes[1], fp(&d).row_hashes[1], "-2 and 2 differ");
        assert_eq!(fp(&a).row_hashes[0], fp(&d).row_hashes[0]);
    }

    fn dictionary_equals_plain_strings() {
        let plain = table(vec![("s", names())]);
        let dict: DictionaryArray<Int32Type> =
            vec![Some("a"), None, Some("c"), Some("a")].into_iter().collect();
        let dict = table(vec![("s", Arc::new(dict) as ArrayRef)]);
        let large = table(vec![(
            "s",
            Arc::new(LargeStringArray::from(vec![Some("a"), None, Some("c"), Some("a")])) as ArrayRef,
        )]);
        let view = table(vec![(
            "s",
            Arc::new(StringViewArray::from(vec![Some("a"), None, Some("c"), Some("a")])) as ArrayRef,
        )]);
        let p = fp(&plain);
        assert_eq!(p.row_hashes, fp(&dict).row_hashes);
        assert_eq!(p.row_hashes, fp(&large).row_hashes);
        assert_eq!(p.row_hashes, fp(&view).row_hashes);
        assert_eq!(p.fingerprint.columns[0].digest, fp(&dict).fingerprint.columns[0].digest);
    }

    fn shuffled_rows_keep_content_root_not_order_root() {
        let t = table(vec![("id", ids()), ("s", names())]);
        let s = permute(&t, &[3, 1, 0, 2]);
        let (a, b) = (fp(&t).fingerprint, fp(&s).fingerprint);
        assert_eq!(a.content_root, b.content_root);
        assert_ne!(a.order_root, b.order_root);
        assert_eq!(a.rows, b.rows);
    }

    fn reordered_columns_keep_row_hashes_not_schema_hash() {
        let t = table(vec![("id", ids()), ("s", names())]);
        let r = table(vec![("s", names()), ("id", ids())]);
        assert_eq!(fp(&t).row_hashes, fp(&r).row_hashes);
        assert_eq!(fp(&t).fingerprint.content_root, fp(&r).fingerprint.content_root);
        assert_ne!(fp(&t).fingerprint.schema_hash, fp(&r).fingerprint.schema_hash);
    }

    fn renamed_column_changes_row_hashes() {
        let t = table(vec![("id", ids()), ("s", names())]);
        let r = table(vec![("id", ids()), ("t", names())]);
        assert_ne!(fp(&t).row_hashes[0], fp(&r).row_hashes[0]);
    }

    fn batch_boundaries_do_not_matter() {
        let t = table(vec![("id", ids()), ("s", names())]);
        let whole = fp(&t);
        for rows in [1, 2, 3] {
            let cut = fp(&t.rechunk(rows));
            assert_eq!(whole.row_hashes, cut.row_hashes);
            assert_eq!(whole.fingerprint, cut.fingerprint, "batches of {rows}");
        }
        // Sliced arrays (non-zero offsets) hash as their logical values.
        let batch = t.concat().unwrap().slice(1, 3);
        let sliced = Table::from_batches(vec![batch]).unwrap();
        assert_eq!(fp(&sliced).row_hashes, whole.row_hashes[1..].to_vec());
    }

    fn nan_negative_zero_and_null() {
        let f = |v: Vec<Option<f64>>| fp(&table(vec![("x", Arc::new(Float64Array::from(v)) as ArrayRef)]));
        let nan_bits = f(vec![Some(f64::NAN), Some(f64::from_bits(0xFFF8_0000_0000_0001))]);
        assert_eq!(nan_bits.row_hashes[0], nan_bits.row_hashes[1], "all NaNs are one NaN");
        let zeros = f(vec![Some(0.0), Some(-0.0)]);
        assert_eq!(zeros.row_hashes[0], zeros.row_hashes[1], "-0.0 == 0.0");
        let mixed = f(vec![Some(f64::NAN), None, Some(0.0)]);
        assert_ne!(mixed.row_hashes[0], mixed.row_hashes[1], "NaN is not null");
        assert_ne!(mixed.row_hashes[1], mixed.row_hashes[2], "null is not zero");
        let f32s = fp(&table(vec![("x", Arc::new(Float32Array::from(vec![0.5f32, f32::NAN, -0.0])) as ArrayRef)]));
        let f64s = f(vec![Some(0.5), Some(f64::NAN), Some(0.0)]);
        assert_eq!(f32s.row_hashes, f64s.row_hashes, "float32 widens exactly to float64");
        // A null of any type encodes alike.
        let null_int = fp(&table(vec![("x", Arc::new(Int64Array::from(vec![None::<i64>])) as ArrayRef)]));
        let null_str = fp(&table(vec![("x", Arc::new(StringArray::from(vec![None::<&str>])) as ArrayRef)]));
        let null_null = fp(&table(vec![("x", Arc::new(NullArray::new(1)) as ArrayRef)]));
        assert_eq!(null_int.row_hashes, null_str.row_hashes);
        assert_eq!(null_int.row_hashes, null_null.row_hashes);
    }

    fn timestamps_same_instant_any_unit_or_zone() {
        let secs = 1_700_000_000i64;
        let s = TimestampSecondArray::from(vec![secs]).with_timezone("UTC");
        let ms = TimestampMillisecondArray::from(vec![secs * 1_000]).with_timezone("+01:00");
        let us = TimestampMicrosecondArray::from(vec![secs * 1_000_000]);
        let ns = TimestampNanosecondArray::from(vec![secs * 1_000_000_000]).with_timezone("America/New_York");
        let hashes: Vec<_> = [Arc::new(s) as ArrayRef, Arc::new(ms), Arc::new(us), Arc::new(ns)]
            .into_iter()
            .map(|a| fp(&table(vec![("t", a)])).row_hashes[0])
            .collect();
        assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");
        let later = TimestampSecondArray::from(vec![secs + 1]);
        assert_ne!(fp(&table(vec![("t", Arc::new(later) as ArrayRef)])).row_hashes[0], hashes[0]);
        // Far outside the i64-nanosecond range still encodes (wide form), and distinctly.
        let far = TimestampSecondArray::from(vec![i64::MAX / 2, i64::MAX / 2 + 1]);
        let far = fp(&table(vec![("t", Arc::new(far) as ArrayRef)]));
        assert_ne!(far.row_hashes[0], far.row_hashes[1]);
    }

    fn decimals_normalise_scale() {
        let a = Decimal128Array::from(vec![150i128, 0]).with_precision_and_scale(10, 2).unwrap();
        let b = Decimal128Array::from(vec![15i128, 0]).with_precision_and_scale(12, 1).unwrap();
        let ta = fp(&table(vec![("d", Arc::new(a) as ArrayRef)]));
        let tb = fp(&table(vec![("d", Arc::new(b) as ArrayRef)]));
        assert_eq!(ta.row_hashes, tb.row_hashes, "1.50 == 1.5 and 0.00 == 0.0");
    }

    fn empty_table_has_defined_roots() {
        let t = table(vec![("id", Arc::new(Int64Array::from(Vec::<i64>::new())) as ArrayRef)]);
        let f = fp(&t).fingerprint;
        assert_eq!(f.rows, 0);
        let u = table(vec![("id", Arc::new(Int64Array::from(vec![1])) as ArrayRef)]);
        assert_ne!(f.content_root, fp(&u).fingerprint.content_root);
    }

    fn empty_and_all_null_dictionaries_hash_like_plain_strings() {
        let empty: DictionaryArray<Int32Type> = Vec::<Option<&str>>::new().into_iter().collect();
        let t = table(vec![("s", Arc::new(empty) as ArrayRef)]);
        let plain = table(vec![("s", Arc::new(StringArray::from(Vec::<&str>::new())) as ArrayRef)]);
        assert_eq!(fp(&t).fingerprint.content_root, fp(&plain).fingerprint.content_root);
        let nulls = DictionaryArray::<Int32Type>::new(
            Int32Array::from(vec![None, None]),
            Arc::new(StringArray::from(Vec::<&str>::new())),
        );
        let t = table(vec![("s", Arc::new(nulls) as ArrayRef)]);
        let plain = table(vec![("s", Arc::new(StringArray::from(vec![None::<&str>, None])) as ArrayRef)]);
        assert_eq!(fp(&t).row_hashes, fp(&plain).row_hashes);
    }

    fn duplicate_rows_count_in_the_multiset() {
        let one = table(vec![("id", Arc::new(Int64Array::from(vec![7])) as ArrayRef)]);
        let two = table(vec![("id", Arc::new(Int64Array::from(vec![7, 7])) as ArrayRef)]);
        assert_ne!(fp(&one).fingerprint.content_root, fp(&two).fingerprint.content_root);
    }

    fn same_frame_through_parquet_csv_and_arrow_ipc() {
        let t = table(vec![
            ("id", ids()),
            ("name", names()),
            ("amount", Arc::new(Float64Array::from(vec![Some(1.5), Some(-2.25), None, Some(1e10)])) as ArrayRef),
            ("ok", Arc::new(BooleanArray::from(vec![Some(true), Some(false), None, Some(true)])) as ArrayRef),
            ("day", Arc::new(Date32Array::from(vec![Some(19000), None, Some(19002), Some(0)])) as ArrayRef),
            ("at", Arc::new(TimestampMicrosecondArray::from(vec![Some(1_700_000_000_123_456), None, Some(0), Some(-1_000_000)])) as ArrayRef),
        ]);
        let want = fp(&t);
        let batch = t.concat().unwrap();
        for format in [Format::Parquet, Format::ArrowFile, Format::ArrowStream, Format::Csv] {
            let bytes = encode(&batch, format);
            assert_eq!(Format::sniff(&bytes), format);
            let back = decode::decode(Bytes::from(bytes), format).unwrap();
            let got = fp(&back);
            assert_eq!(got.row_hashes, want.row_hashes, "{format}");
            assert_eq!(got.fingerprint.content_root, want.fingerprint.content_root, "{format}");
        }
    }

    fn compressed_files_written_by_pyarrow_read_as_one_table() {
        let file = |name: &str| -> &'static [u8] {
            match name {
                "lz4.arrow" => include_bytes!("data/compressed/lz4.arrow"),
                "lz4.arrows" => include_bytes!("data/compressed/lz4.arrows"),
                "zstd.arrow" => include_bytes!("data/compressed/zstd.arrow"),
                "zstd.parquet" => include_bytes!("data/compressed/zstd.parquet"),
                "snappy.parquet" => include_bytes!("data/compressed/snappy.parquet"),
                _ => unreachable!(),
            }
        };
        let t = table(vec![
            ("id", Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as ArrayRef),
            ("name", Arc::new(StringArray::from(vec![Some("a"), None, Some("é"), Some("d")])) as ArrayRef),
            ("amount", Arc::new(Float64Array::from(vec![Some(1.5), None, Some(-2.25), Some(1e10)])) as ArrayRef),
        ]);
        let want = fp(&t).fingerprint;
        for name in ["lz4.arrow", "lz4.arrows", "zstd.arrow", "zstd.parquet", "snappy.parquet"] {
            let bytes = file(name);
            let format = Format::sniff(bytes);
            let read = decode::decode(Bytes::from_static(bytes), format);
            if cfg!(target_arch = "wasm32") && name.starts_with("zstd") {
                let e = read.expect_err(name).to_string();
                assert!(e.contains("zstd") && e.contains("the browser cannot"), "{name}: {e}");
                continue;
            }
            let got = fp(&read.unwrap_or_else(|e| panic!("{name}: {e}"))).fingerprint;
            assert_eq!(got, want, "{name}");
        }
    }

    fn unsupported_types_are_named() {
        let list = ListArray::from_iter_primitive::<arrow_array::types::Int32Type, _, _>(vec![Some(vec![Some(1)])]);
        let t = table(vec![("id", Arc::new(Int64Array::from(vec![1])) as ArrayRef), ("tags", Arc::new(list) as ArrayRef)]);
        let err = pipeproof_core::fingerprint(&t).unwrap_err().to_string();
        assert!(err.contains("`tags`") && err.contains("not support") && err.contains("flatten"), "{err}");
        // Each unsupported kind gets the hint that fits it.
        let run_ends = arrow_array::RunArray::<arrow_array::types::Int32Type>::try_new(
            &arrow_array::Int32Array::from(vec![2]),
            &Int64Array::from(vec![7]),
        )
        .unwrap();
        let t = table(vec![("x", Arc::new(run_ends) as ArrayRef)]);
        let err = pipeproof_core::fingerprint(&t).unwrap_err().to_string();
        assert!(err.contains("`x`") && err.contains("run_end_decode") && !err.contains("nested"), "{err}");
    }

    fn duplicate_column_names_are_rejected() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true), Field::new("a", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(schema, vec![ids(), ids()]).unwrap();
        let t = Table::from_batches(vec![batch]).unwrap();
        let err = pipeproof_core::fingerprint(&t).unwrap_err().to_string();
        assert!(err.contains("`a` appears more than once"), "{err}");
    }

    fn truncated_inputs_fail_cleanly() {
        let t = table(vec![("id", ids()), ("name", names())]);
        let batch = t.concat().unwrap();
        for format in [Format::Parquet, Format::ArrowFile, Format::ArrowStream] {
            let bytes = encode(&batch, format);
            for cut in [bytes.len() / 2, bytes.len() - 3, 9] {
                let r = decode::decode(Bytes::from(bytes[..cut].to_vec()), format);
                assert!(r.is_err(), "{format} cut at {cut} decoded");
            }
        }
    }

    fn row_proofs_verify_for_every_row_and_fail_for_others() {
        let n = 3000i64;
        let t = table(vec![("id", Arc::new(Int64Array::from_iter_values(0..n)) as ArrayRef)]);
        let f = fp(&t);
        let mut sorted = f.row_hashes.clone();
        pipeproof_core::fingerprint::sort_content(&mut sorted);
        for h in f.row_hashes.iter().step_by(97) {
            let proof = pipeproof_core::fingerprint::RowProof::new(&sorted, h).unwrap();
            assert!(proof.verify(&f.fingerprint.content_root));
            let mut forged = proof.clone();
            forged.row_hash.0[31] ^= 1;
            assert!(!forged.verify(&f.fingerprint.content_root));
        }
        let absent = pipeproof_core::Hash([0xAB; 32]);
        assert!(pipeproof_core::fingerprint::RowProof::new(&sorted, &absent).is_none());
    }
}

fn encode(batch: &RecordBatch, format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    match format {
        Format::Parquet => {
            let mut w =
                parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
            w.write(batch).unwrap();
            w.close().unwrap();
        }
        Format::ArrowFile => {
            let mut w = arrow_ipc::writer::FileWriter::try_new(&mut out, &batch.schema()).unwrap();
            w.write(batch).unwrap();
            w.finish().unwrap();
        }
        Format::ArrowStream => {
            let mut w =
                arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema()).unwrap();
            w.write(batch).unwrap();
            w.finish().unwrap();
        }
        Format::Csv => {
            let mut w = arrow_csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            w.write(batch).unwrap();
        }
    }
    out
}
