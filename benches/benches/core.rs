//! Criterion benches of core on the reference workload at 100k rows (in memory, no files):
//! decode (Parquet, Arrow, CSV), fingerprint, content root and the keyed diff. Sized so that
//! `cargo bench -p pipeproof-benches` finishes in a few minutes on 2 cores.

use std::hint::black_box;
use std::time::Duration;

use arrow_array::RecordBatch;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parquet::arrow::ArrowWriter;
use pipeproof_benches::workload::{DEFAULT_SEED, KEY, Side, Workload, for_csv, schema};
use pipeproof_core::decode::{Format, decode};
use pipeproof_core::fingerprint::content_root;
use pipeproof_core::{DiffConfig, Table, diff, fingerprint};

const ROWS: u64 = 100_000;
const BATCH_ROWS: usize = 64 * 1024;

fn table(w: &Workload, side: Side) -> Table {
    Table::from_batches(w.batches(side, BATCH_ROWS)).expect("generated batches share a schema")
}

fn parquet_bytes(batches: &[RecordBatch]) -> Bytes {
    let mut w = ArrowWriter::try_new(Vec::new(), schema(), None).expect("parquet writer");
    for b in batches {
        w.write(b).expect("write parquet");
    }
    Bytes::from(w.into_inner().expect("finish parquet"))
}

fn arrow_bytes(batches: &[RecordBatch]) -> Bytes {
    let mut w =
        arrow_ipc::writer::FileWriter::try_new(Vec::new(), &schema()).expect("arrow writer");
    for b in batches {
        w.write(b).expect("write arrow");
    }
    w.finish().expect("finish arrow");
    Bytes::from(w.into_inner().expect("arrow bytes"))
}

/// The batches as CSV, written as `pipeproof-gen --csv` writes them.
fn csv_bytes(batches: &[RecordBatch]) -> Bytes {
    let mut w = arrow_csv::WriterBuilder::new()
        .with_header(true)
        .build(Vec::new());
    for b in batches {
        w.write(&for_csv(b).expect("csv batch")).expect("write csv");
    }
    Bytes::from(w.into_inner())
}

fn benches(c: &mut Criterion) {
    let w = Workload::new(ROWS, DEFAULT_SEED);
    let before = table(&w, Side::Before);
    let after = table(&w, Side::After);
    let expected = w.expected();

    let mut g = c.benchmark_group("100k");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(ROWS));

    let parquet = parquet_bytes(before.batches());
    let arrow = arrow_bytes(before.batches());
    g.bench_function("decode parquet", |b| {
        b.iter(|| decode(black_box(parquet.clone()), Format::Parquet).expect("decode"))
    });
    g.bench_function("decode arrow ipc file", |b| {
        b.iter(|| decode(black_box(arrow.clone()), Format::ArrowFile).expect("decode"))
    });
    // CSV is read by the spec's own rules (fingerprint-v1.md section 13), types inferred
    // from every value, and checked for an open quote first.
    let csv = csv_bytes(before.batches());
    g.bench_function("decode csv", |b| {
        b.iter(|| decode(black_box(csv.clone()), Format::Csv).expect("decode"))
    });

    g.bench_function("fingerprint", |b| {
        b.iter(|| fingerprint(black_box(&before)).expect("fingerprint"))
    });

    let hashes = fingerprint(&before).expect("fingerprint").row_hashes;
    g.bench_function("content root", |b| {
        b.iter(|| content_root(black_box(&hashes)))
    });

    let config = DiffConfig::keyed([KEY]);
    // The bench measures a correct diff, not just a fast one.
    let d = diff(&before, &after, &config).expect("diff");
    assert_eq!(
        (d.summary.added, d.summary.removed, d.summary.changed),
        (expected.added, expected.removed, expected.changed)
    );
    g.bench_function("keyed diff", |b| {
        b.iter(|| diff(black_box(&before), black_box(&after), &config).expect("diff"))
    });
    g.finish();
}

criterion_group!(core, benches);
criterion_main!(core);
