//! `pipeproof-gen`: writes the reference workload pair (DESIGN.md "Performance targets") to a
//! directory: `before.parquet`, `after.parquet`, `before.arrow` (Arrow IPC file), optionally
//! `before.csv` and `after.csv`, and `expected.json` with the counts a correct keyed diff on
//! `id` finds. The same `--rows` and `--seed` give the same bytes every time.
//!
//! Every file is written under a temporary name and renamed when complete; `expected.json`
//! comes last, so its presence means the directory is complete.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use arrow_array::RecordBatch;
use clap::Parser;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use pipeproof_benches::workload::{DEFAULT_SEED, Side, Workload, for_csv, schema};

/// Rows per generated batch (and per Arrow IPC record batch).
const BATCH_ROWS: usize = 64 * 1024;

/// Writes the reference workload pair and its expected diff counts.
#[derive(Parser)]
#[command(name = "pipeproof-gen", version, about)]
struct Args {
    /// Rows of the before table; accepts suffixes k and m (100k, 1m, 10m).
    #[arg(long, value_parser = parse_rows)]
    rows: u64,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Seed of the generator.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Also write before.csv and after.csv.
    #[arg(long)]
    csv: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
}

fn parse_rows(s: &str) -> Result<u64, String> {
    let lower = s.trim().to_ascii_lowercase().replace('_', "");
    let (digits, factor) = match lower.strip_suffix('k') {
        Some(d) => (d, 1_000),
        None => match lower.strip_suffix('m') {
            Some(d) => (d, 1_000_000),
            None => (lower.as_str(), 1),
        },
    };
    let n: u64 = digits.parse().map_err(|_| {
        format!("`{s}` is not a row count: use a number such as 100000, 100k or 1m")
    })?;
    match n.checked_mul(factor) {
        Some(0) | None => Err(format!("`{s}`: the row count must be between 1 and 2^64")),
        Some(n) => Ok(n),
    }
}

/// One output file, written under `NAME.tmp` and renamed on [`Out::commit`].
struct Out<W> {
    writer: W,
    tmp: PathBuf,
    path: PathBuf,
}

fn create(dir: &Path, name: &str) -> Result<(BufWriter<File>, PathBuf, PathBuf)> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    Ok((BufWriter::with_capacity(1 << 20, file), tmp, path))
}

fn commit(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::rename(tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

/// The writers of one side.
struct SideWriters {
    parquet: Out<ArrowWriter<BufWriter<File>>>,
    arrow: Option<Out<arrow_ipc::writer::FileWriter<BufWriter<File>>>>,
    csv: Option<Out<arrow_csv::Writer<BufWriter<File>>>>,
}

impl SideWriters {
    fn open(dir: &Path, stem: &str, arrow: bool, csv: bool) -> Result<SideWriters> {
        let schema = schema();
        // Snappy and 1 Mi-row row groups, as pyarrow and pandas write by default; column
        // chunk statistics, no page index.
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk)
            .build();
        let (w, tmp, path) = create(dir, &format!("{stem}.parquet"))?;
        let parquet = Out {
            writer: ArrowWriter::try_new(w, schema.clone(), Some(props))?,
            tmp,
            path,
        };
        let arrow = if arrow {
            let (w, tmp, path) = create(dir, &format!("{stem}.arrow"))?;
            Some(Out {
                writer: arrow_ipc::writer::FileWriter::try_new(w, &schema)?,
                tmp,
                path,
            })
        } else {
            None
        };
        let csv = if csv {
            let (w, tmp, path) = create(dir, &format!("{stem}.csv"))?;
            Some(Out {
                writer: arrow_csv::WriterBuilder::new().with_header(true).build(w),
                tmp,
                path,
            })
        } else {
            None
        };
        Ok(SideWriters {
            parquet,
            arrow,
            csv,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.parquet.writer.write(batch)?;
        if let Some(a) = &mut self.arrow {
            a.writer.write(batch)?;
        }
        if let Some(c) = &mut self.csv {
            c.writer.write(&for_csv(batch)?)?;
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<PathBuf>> {
        let mut done = Vec::new();
        let p = self.parquet;
        p.writer.into_inner()?.flush()?;
        commit(&p.tmp, &p.path)?;
        done.push(p.path);
        if let Some(mut a) = self.arrow {
            a.writer.finish()?;
            a.writer.into_inner()?.flush()?;
            commit(&a.tmp, &a.path)?;
            done.push(a.path);
        }
        if let Some(c) = self.csv {
            c.writer.into_inner().flush()?;
            commit(&c.tmp, &c.path)?;
            done.push(c.path);
        }
        Ok(done)
    }
}

fn run(args: Args) -> Result<()> {
    if args.rows > u32::MAX as u64 {
        bail!("--rows {} is too large: at most {}", args.rows, u32::MAX);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let started = Instant::now();
    let say = |m: String| {
        if !args.quiet {
            eprintln!("pipeproof-gen: {m}");
        }
    };
    // A stale expected.json must not vouch for files being rewritten.
    let expected_path = args.out.join("expected.json");
    if expected_path.exists() {
        std::fs::remove_file(&expected_path)
            .with_context(|| format!("cannot remove {}", expected_path.display()))?;
    }
    let w = Workload::new(args.rows, args.seed);
    for (side, stem, arrow) in [
        (Side::Before, "before", true),
        (Side::After, "after", false),
    ] {
        let mut writers = SideWriters::open(&args.out, stem, arrow, args.csv)?;
        w.for_each_batch(side, BATCH_ROWS, |b| writers.write(&b))?;
        for path in writers.finish()? {
            say(format!(
                "wrote {} ({:.1} MB)",
                path.display(),
                std::fs::metadata(&path)?.len() as f64 / 1e6
            ));
        }
    }
    let expected = w.expected();
    let (mut f, tmp, path) = create(&args.out, "expected.json")?;
    serde_json::to_writer_pretty(&mut f, &expected)?;
    f.write_all(b"\n")?;
    f.into_inner()?.sync_all()?;
    commit(&tmp, &path)?;
    say(format!(
        "wrote {}: {} rows before, {} after; {} added, {} removed, {} changed ({:.1} s)",
        path.display(),
        expected.rows_before,
        expected.rows_after,
        expected.added,
        expected.removed,
        expected.changed,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipeproof-gen: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
