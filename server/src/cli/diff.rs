//! `pipeproof diff BEFORE AFTER`: a local diff of two files, no server involved.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use pipeproof_core::diff::{Diff, DiffConfig, format_column};
use pipeproof_core::fingerprint::check_schema;
use pipeproof_core::table::CachedSource;
use pipeproof_core::{BatchSource, Error, Side};

use super::{FormatArg, Output, input};
use crate::outln;
use crate::style::{added, bold, changed, count, dim, removed};

/// Arguments of `pipeproof diff`.
#[derive(clap::Args)]
pub struct Args {
    /// The earlier file.
    before: PathBuf,
    /// The later file.
    after: PathBuf,
    /// Key column; repeat or comma-separate for a composite key. Without a key the files
    /// are compared as multisets of rows (added and removed rows only).
    #[arg(long, short, value_delimiter = ',')]
    key: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    format: Output,
    /// Float cells within this absolute difference count as equal.
    #[arg(long, allow_negative_numbers = true, value_parser = super::tolerance, default_value_t = 0.0)]
    abs_tol: f64,
    /// Float cells within this relative difference count as equal.
    #[arg(long, allow_negative_numbers = true, value_parser = super::tolerance, default_value_t = 0.0)]
    rel_tol: f64,
    /// Process at most this many rows per partition and per group of differing rows;
    /// lower it to bound memory on large files.
    #[arg(long, value_parser = super::at_least_one, default_value_t = DiffConfig::default().chunk_rows)]
    chunk_rows: usize,
    /// Above this share of differing rows (of all rows of either side, a matched pair counted
    /// once; 0 to 1), print the summary only.
    #[arg(long, allow_negative_numbers = true, value_parser = super::share, default_value_t = 1.0)]
    summary_only_threshold: f64,
    /// Columns to leave out of the comparison; repeat or comma-separate.
    #[arg(long, value_delimiter = ',')]
    ignore: Vec<String>,
    /// The most detail rows kept of each kind (added, removed, changed).
    #[arg(long, default_value_t = DiffConfig::default().max_detail_rows)]
    max_detail_rows: usize,
    /// The most changed cells shown in the table output (0: none), each value cut to its
    /// first 80 characters and its length; `--format json` has them all, whole.
    #[arg(long, default_value_t = 20)]
    show: usize,
    /// Read BEFORE as this format instead of detecting it.
    #[arg(long, value_enum)]
    before_format: Option<FormatArg>,
    /// Read AFTER as this format instead of detecting it.
    #[arg(long, value_enum)]
    after_format: Option<FormatArg>,
}

/// Runs `pipeproof diff`.
pub fn run(args: Args) -> Result<ExitCode> {
    let config = DiffConfig {
        key: args.key.clone(),
        chunk_rows: args.chunk_rows,
        summary_only_threshold: args.summary_only_threshold,
        abs_tol: args.abs_tol,
        rel_tol: args.rel_tol,
        ignore_columns: args.ignore.clone(),
        max_detail_rows: args.max_detail_rows,
    };
    // Keep decoded batches for the diff's second pass while they fit the budget.
    let before = CachedSource::new(
        input(&args.before, args.before_format)?,
        config.cache_budget(),
    );
    let after = CachedSource::new(
        input(&args.after, args.after_format)?,
        config.cache_budget(),
    );
    let mut out = String::new();
    // An error names the file it is about: each file's schema is checked on its own first,
    // and an error of one side of the diff is said with that side's file.
    let cannot = |file: Option<&PathBuf>, e: pipeproof_core::Error| {
        let file = file.map_or(String::new(), |f| format!("{}: ", f.display()));
        anyhow::anyhow!(
            "cannot diff {} against {}: {file}{e}",
            args.before.display(),
            args.after.display()
        )
    };
    for (file, source) in [(&args.before, &before), (&args.after, &after)] {
        check_schema(&source.schema()).map_err(|e| cannot(Some(file), e))?;
    }
    let d = pipeproof_core::diff(&before, &after, &config).map_err(|e| {
        let side = match &e {
            Error::MissingKey { side, .. }
            | Error::ReservedName { side, .. }
            | Error::NullKeys { side, .. }
            | Error::DuplicateKeys { side, .. } => Some(*side),
            _ => None,
        };
        let file = match side {
            Some(Side::Before) => Some(&args.before),
            Some(Side::After) => Some(&args.after),
            _ => None,
        };
        cannot(file, e)
    })?;
    match args.format {
        Output::Json => crate::style::emit_with(|w| write_json(w, &args, &d))?,
        Output::Table => {
            print_table(&mut out, &args, &d)?;
            crate::style::emit(&out)?;
        }
    }
    Ok(if d.summary.is_same_ignoring(&config.ignore_columns) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Writes the diff as JSON: the files, fingerprints and summary, then the detail rows,
/// written by arrow's JSON writer straight to `w` (a million detail rows are not held as
/// JSON values first).
fn write_json(w: &mut dyn Write, args: &Args, d: &Diff) -> Result<()> {
    let head = serde_json::to_string_pretty(&serde_json::json!({
        "before": { "file": args.before, "fingerprint": d.before.fingerprint },
        "after": { "file": args.after, "fingerprint": d.after.fingerprint },
        "summary": d.summary,
    }))?;
    // A pretty object ends with its closing brace on a line of its own: the details go
    // before it.
    let head = head.strip_suffix("\n}").expect("a JSON object");
    write!(w, "{head},\n  \"details\": {{")?;
    let kinds = [
        ("added", &d.details.added),
        ("removed", &d.details.removed),
        ("changed", &d.details.changed),
    ];
    for (i, (name, rows)) in kinds.into_iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        write!(w, "{comma}\n    \"{name}\": ")?;
        if rows.num_rows() == 0 {
            // arrow's writer writes nothing for no rows.
            w.write_all(b"[]")?;
        } else {
            // Every column of every row, a null as `null`: a changed cell's `old` or `new`
            // is null where the cell was (or became) empty, not missing.
            let mut rows_out = arrow_json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow_json::writer::JsonArray>(&mut *w);
            rows_out.write(rows)?;
            rows_out.finish()?;
        }
    }
    w.write_all(b"\n  }\n}\n")?;
    Ok(())
}

fn print_table(out: &mut String, args: &Args, d: &Diff) -> Result<()> {
    let s = &d.summary;
    let key = if s.key.is_empty() {
        "none (rows compared as a multiset)".to_string()
    } else {
        s.key.join(", ")
    };
    outln!(
        out,
        "{} {} → {}   {} {}",
        bold("pipeproof diff"),
        args.before.display(),
        args.after.display(),
        dim("key:"),
        key
    );
    out.push('\n');
    // The value is padded before it is styled, so colour codes take no room.
    let line = |out: &mut String, label: &str, value: &str, style: fn(&str) -> String| {
        outln!(out, "  {:<11}{}", label, style(&format!("{value:>14}")))
    };
    let plain = |s: &str| s.to_string();
    line(
        out,
        "rows",
        &format!("{} → {}", count(s.rows_before), count(s.rows_after)),
        plain,
    );
    line(out, "added", &count(s.added), added);
    line(out, "removed", &count(s.removed), removed);
    if !s.key.is_empty() {
        line(out, "changed", &count(s.changed), changed);
    }
    line(out, "unchanged", &count(s.unchanged), plain);
    if s.within_tolerance > 0 {
        line(out, "within tol.", &count(s.within_tolerance), plain);
    }

    out.push('\n');
    let sc = &s.schema;
    if sc.is_empty() {
        outln!(out, "{} {}", bold("schema"), dim("unchanged"));
    } else {
        outln!(out, "{}", bold("schema"));
        for c in &sc.added {
            outln!(out, "  {} {} ({})", added("+"), c.name, c.data_type);
        }
        for c in &sc.removed {
            outln!(out, "  {} {} ({})", removed("-"), c.name, c.data_type);
        }
        for r in &sc.retyped {
            let kind = if r.family_changed {
                "type family changed"
            } else {
                "width or encoding"
            };
            outln!(
                out,
                "  {} {}: {} → {} {}",
                changed("~"),
                r.name,
                r.before,
                r.after,
                dim(&format!("({kind})"))
            );
        }
        if sc.reordered {
            outln!(out, "  {} columns reordered", changed("~"));
        }
    }

    if !s.key.is_empty() && s.changed > 0 {
        out.push('\n');
        outln!(out, "{}", bold("changed cells by column"));
        let max = s
            .columns
            .iter()
            .map(|c| c.changed)
            .max()
            .unwrap_or(0)
            .max(1);
        let w = s.columns.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in s
            .columns
            .iter()
            .filter(|c| c.changed > 0 || c.within_tolerance > 0)
        {
            let bar = "█".repeat(((c.changed as f64 / max as f64) * 30.0).ceil() as usize);
            let tol = if c.within_tolerance > 0 {
                dim(&format!(
                    "  (+{} within tolerance)",
                    count(c.within_tolerance)
                ))
            } else {
                String::new()
            };
            outln!(
                out,
                "  {:w$}  {:>10}  {}{}",
                c.name,
                count(c.changed),
                changed(&bar),
                tol
            );
        }
    }

    if s.summary_only {
        out.push('\n');
        outln!(
            out,
            "{}",
            dim("details skipped: the share of differing rows is above --summary-only-threshold")
        );
    } else {
        print_cells(out, args, d)?;
    }

    out.push('\n');
    outln!(out, "{}", bold("content roots"));
    let same = d.before.fingerprint.content_root == d.after.fingerprint.content_root;
    outln!(out, "  before  {}", d.before.fingerprint.content_root);
    outln!(
        out,
        "  after   {}  {}",
        d.after.fingerprint.content_root,
        dim(if same { "(same rows)" } else { "" })
    );
    Ok(())
}

fn print_cells(out: &mut String, args: &Args, d: &Diff) -> Result<()> {
    let c = &d.details.changed;
    // `--show 0` asks for no cells: the counts by column above are all there is to say.
    if c.num_rows() == 0 || args.show == 0 {
        return Ok(());
    }
    let shown = c.num_rows().min(args.show);
    // Only the rows shown are formatted.
    let c = &c.slice(0, shown);
    out.push('\n');
    outln!(
        out,
        "{} {}",
        bold("first changed cells"),
        dim(&format!(
            "({} of {})",
            count(shown as u64),
            count(d.summary.columns.iter().map(|c| c.changed).sum())
        ))
    );
    let key_cols: Vec<Vec<Option<String>>> = d
        .summary
        .key
        .iter()
        .map(|k| format_column(c.column_by_name(k).expect("key column")))
        .collect::<pipeproof_core::Result<_>>()?;
    let column = format_column(c.column_by_name("column").expect("column"))?;
    let old = format_column(c.column_by_name("old").expect("old"))?;
    let new = format_column(c.column_by_name("new").expect("new"))?;
    let key_text: Vec<String> = (0..shown)
        .map(|i| {
            key_cols
                .iter()
                .map(|k| k[i].as_deref().map_or("null".into(), cut))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let kw = key_text
        .iter()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(d.summary.key.join(", ").chars().count());
    let column: Vec<String> = column
        .iter()
        .map(|c| cut(c.as_deref().unwrap_or("")))
        .collect();
    let cw = column
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    outln!(
        out,
        "  {}",
        dim(&format!(
            "{:kw$}  {:cw$}  old → new",
            d.summary.key.join(", "),
            "column"
        ))
    );
    let show = |v: &Option<String>| v.as_deref().map_or("null".into(), cut);
    for i in 0..shown {
        outln!(
            out,
            "  {:kw$}  {:cw$}  {} → {}",
            key_text[i],
            column[i],
            removed(&show(&old[i])),
            added(&show(&new[i])),
        );
    }
    Ok(())
}

/// The most characters of a value the table output shows.
const CELL_CHARS: usize = 80;

/// A value as the table output shows it: whole when short, else its first [`CELL_CHARS`]
/// characters and its length (`--format json` has every value whole).
fn cut(value: &str) -> String {
    match value.char_indices().nth(CELL_CHARS) {
        None => value.to_string(),
        Some((end, _)) => format!("{}… ({} bytes)", &value[..end], count(value.len() as u64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        assert_eq!(cut("short"), "short");
        let exact = "é".repeat(CELL_CHARS);
        assert_eq!(cut(&exact), exact);
        let long = format!("{exact}x");
        assert_eq!(
            cut(&long),
            format!("{exact}… ({} bytes)", count(long.len() as u64))
        );
    }
}
