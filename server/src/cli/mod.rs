//! Command-line parsing and dispatch. Each subcommand lives in its own module and returns
//! its exit code.

mod backup;
mod check;
mod diff;
mod export;
mod fingerprint;
mod healthcheck;
mod key;
mod log;
mod redact;
mod seal;
mod send;
mod serve;
mod token;
mod verify;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use pipeproof_core::Format;

/// Audit-grade fingerprints and diffs of data-pipeline tables.
#[derive(Parser)]
#[command(name = "pipeproof", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a file's fingerprint: row count, content and order roots, schema, column digests.
    Fingerprint(fingerprint::Args),
    /// Compare two files (Parquet, CSV or Arrow, in any mix) locally, by key or as multisets.
    ///
    /// Exit status: 0 when the files hold the same data, 1 when they differ, 2 on error.
    Diff(diff::Args),
    /// Re-check an exported bundle offline: roots, diff counts, chain, seal and signature,
    /// and with --data that a file is exactly one step's output.
    ///
    /// Exit status: 0 when every check passed, 1 when one failed (a file that is damaged or
    /// not a bundle at all fails the `bundle` check), 2 when it could not run (a file that
    /// cannot be read, a wrong option).
    Verify(verify::Args),
    /// Post a data file as a step of a run on a server (or of a new run with --new-run).
    Send(Box<send::Args>),
    /// Download a run's bundle from a server, for `pipeproof verify` or the web app.
    Export(export::Args),
    /// Seal a run on a server (the server signs its chain head), or end it as failed.
    Seal(seal::Args),
    /// Remove ended runs' diff details and kept data from a server (an erasure request, a
    /// retention period); their records, hashes, seals and bundles' proofs stay.
    Redact(redact::Args),
    /// Serve the HTTP API and the web app (SQLite store in --data-dir).
    Serve(serve::Args),
    /// Manage API tokens in a server's store.
    Token(token::Args),
    /// Rotate a stopped server's signing key.
    Key(key::Args),
    /// Back up a store (database, blobs, signing key) while the server runs.
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty data directory, then check it.
    Restore(backup::RestoreArgs),
    /// Re-verify every stored run, blob, the database and the log of seals; report damage.
    ///
    /// Exit status: 0 when the store is sound, 1 when damage was found, 2 on error.
    Check(check::Args),
    /// Ask a running server's /healthz (for container health checks).
    Healthcheck(healthcheck::Args),
    /// Check the server's log of seals: keep its signed head, prove later that the log only
    /// grew, prove that a bundle's seal is in it.
    Log(log::Args),
}

/// How results are printed.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people: aligned, coloured on a terminal.
    Table,
    /// For scripts: one JSON document.
    Json,
}

/// A file format named on the command line.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Apache Parquet.
    Parquet,
    /// Arrow IPC file (Feather v2).
    Arrow,
    /// Arrow IPC stream.
    ArrowStream,
    /// CSV with a header row.
    Csv,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Parquet => Format::Parquet,
            FormatArg::Arrow => Format::ArrowFile,
            FormatArg::ArrowStream => Format::ArrowStream,
            FormatArg::Csv => Format::Csv,
        }
    }
}

/// An input file and an optional format override.
pub fn input(
    path: &std::path::Path,
    format: Option<FormatArg>,
) -> Result<crate::source::FileSource> {
    crate::source::FileSource::open(path, format.map(Into::into))
}

/// A run id given on the command line: not empty (an unset shell variable, `--run "$RUN"`,
/// would otherwise name no run at all).
fn run_id(s: &str) -> Result<String, String> {
    match s.trim() {
        "" => Err(
            "a run id is empty; give the id `pipeproof send --new-run` printed \
                   (16 hex digits), or see the runs in the web app"
                .into(),
        ),
        id => Ok(id.to_string()),
    }
}

/// A tolerance (`--abs-tol`, `--rel-tol`): a finite number, 0 or more.
fn tolerance(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        Ok(_) => Err("must be a finite number, 0 or more (0 compares floats exactly)".into()),
        Err(e) => Err(format!("{e}: give a number such as 0.001")),
    }
}

/// A share of rows (`--summary-only-threshold`): 0 to 1.
fn share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        Ok(_) => Err("must be between 0 and 1 (0.2 is a fifth of the rows)".into()),
        Err(e) => Err(format!("{e}: give a number between 0 and 1")),
    }
}

/// A count that must be at least 1 (`--chunk-rows`).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(format!("{e}: give a whole number, 1 or more")),
    }
}

/// Parses the arguments and runs the subcommand.
pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Fingerprint(args) => fingerprint::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Send(args) => send::run(*args),
        Command::Export(args) => export::run(args),
        Command::Seal(args) => seal::run(args),
        Command::Redact(args) => redact::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Token(args) => token::run(args),
        Command::Key(args) => key::run(args),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
        Command::Check(args) => check::run(args),
        Command::Healthcheck(args) => healthcheck::run(args),
        Command::Log(args) => log::run(args),
    }
}
