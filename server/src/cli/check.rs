//! `pipeproof check`: re-verifies every run in a store (roots, diff summaries, chain, seals),
//! every blob against its hash and the database's own structure, and reports damage.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::Output;
use crate::store::maintain::{self, CheckReport};
use crate::style;

/// Check a store for damage.
#[derive(clap::Args)]
pub struct Args {
    /// The server's data directory. Default: `.data` in the current directory.
    #[arg(long, env = "PIPEPROOF_DATA_DIR", default_value = ".data")]
    data_dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Output,
}

/// Prints a report for people.
pub fn print(report: &CheckReport) {
    for d in &report.damage {
        println!("{} {}: {}", style::removed("DAMAGED"), d.place, d.detail);
    }
    if report.unnamed_blobs > 0 {
        println!(
            "{} {} ({} bytes) {} named by no step: freed by a redaction and not removed yet, \
             or written by a step that failed before its commit; the server removes them as \
             it starts",
            style::dim("note:"),
            style::counted(report.unnamed_blobs, "blob file", "blob files"),
            style::count(report.unnamed_bytes),
            if report.unnamed_blobs == 1 {
                "is"
            } else {
                "are"
            }
        );
    }
    if report.damage.is_empty() {
        println!(
            "{}: {} ({}) re-verified, {} re-hashed, database sound",
            style::added("ok"),
            style::counted(report.runs, "run", "runs"),
            style::counted(report.steps, "step", "steps"),
            style::counted(report.blobs, "blob", "blobs")
        );
    } else {
        println!(
            "{} problems found in {} runs and {} blobs",
            report.damage.len(),
            report.runs,
            report.blobs
        );
    }
}

/// Runs `pipeproof check`. Exit status: 0 sound, 1 damage found, 2 error.
pub fn run(args: Args) -> Result<ExitCode> {
    let report = maintain::check(&args.data_dir)?;
    match args.format {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Table => print(&report),
    }
    Ok(if report.damage.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
