//! `pipeproof fingerprint FILE`: the fingerprint v1 of one file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use pipeproof_core::fingerprint_only;

use super::{FormatArg, Output, input};
use crate::outln;
use crate::style::{bold, count, dim};

/// Arguments of `pipeproof fingerprint`.
#[derive(clap::Args)]
pub struct Args {
    /// The file: .parquet, .arrow/.feather/.ipc, .arrows (stream) or .csv.
    file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    format: Output,
    /// Read the file as this format instead of detecting it.
    #[arg(long, value_enum)]
    input_format: Option<FormatArg>,
}

/// Runs `pipeproof fingerprint`.
pub fn run(args: Args) -> Result<ExitCode> {
    let source = input(&args.file, args.input_format)?;
    let f = fingerprint_only(&source)
        .with_context(|| format!("cannot fingerprint {}", args.file.display()))?;
    let mut out = String::new();
    match args.format {
        Output::Json => {
            let doc = serde_json::json!({
                "file": args.file,
                "format": source.format(),
                "fingerprint": f,
            });
            outln!(out, "{}", serde_json::to_string_pretty(&doc)?);
        }
        Output::Table => {
            outln!(
                out,
                "{}  {} ({})",
                bold("file"),
                args.file.display(),
                source.format()
            );
            outln!(out, "{}  {}", bold("spec"), f.spec);
            outln!(out, "{}  {}", bold("rows"), count(f.rows));
            outln!(out, "{}  {}", bold("content root"), f.content_root);
            outln!(out, "{}  {}", bold("order root"), f.order_root);
            outln!(out, "{}  {}", bold("schema hash"), f.schema_hash);
            outln!(out, "{}", bold("columns"));
            let w = f.columns.iter().map(|c| c.name.len()).max().unwrap_or(0);
            let t = f
                .columns
                .iter()
                .map(|c| c.data_type.len())
                .max()
                .unwrap_or(0);
            for c in &f.columns {
                outln!(
                    out,
                    "  {:w$}  {:t$}  {:9}  {} {}",
                    c.name,
                    c.data_type,
                    c.family.as_str(),
                    dim(&format!("nulls {:>10}", count(c.nulls))),
                    dim(&c.digest.to_hex()[..16]),
                );
            }
        }
    }
    crate::style::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}
