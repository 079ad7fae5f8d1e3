//! `pipeproof backup DIR` and `pipeproof restore DIR`: a consistent copy of a store, taken
//! while the server runs, and its return into an empty data directory.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::store::maintain;

/// Back up a store while the server runs.
#[derive(clap::Args)]
pub struct BackupArgs {
    /// Where the backup goes: a new or empty directory.
    out: PathBuf,
    /// The server's data directory. Default: `.data` in the current directory.
    #[arg(long, env = "PIPEPROOF_DATA_DIR", default_value = ".data")]
    data_dir: PathBuf,
}

/// Restore a backup into an empty data directory.
#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The backup, as `pipeproof backup` wrote it.
    backup: PathBuf,
    /// The data directory to restore into: new or empty. Default: `.data`.
    #[arg(long, env = "PIPEPROOF_DATA_DIR", default_value = ".data")]
    data_dir: PathBuf,
}

/// Runs `pipeproof backup`.
pub fn backup(args: BackupArgs) -> Result<ExitCode> {
    let r = maintain::backup(&args.data_dir, &args.out)?;
    println!(
        "backed up {}, {}, {} ({}) from {} to {}",
        crate::style::counted(r.runs, "run", "runs"),
        crate::style::counted(r.steps, "step", "steps"),
        crate::style::counted(r.blobs, "blob", "blobs"),
        crate::style::counted(r.bytes, "byte", "bytes"),
        args.data_dir.display(),
        args.out.display()
    );
    for name in &r.missing_carry {
        println!(
            "note: open run data {name} moved on during the backup; after a restore, that run's next step has no previous data to diff against"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `pipeproof restore`.
pub fn restore(args: RestoreArgs) -> Result<ExitCode> {
    let report = maintain::restore(&args.backup, &args.data_dir)?;
    println!(
        "restored {} into {}: {} runs, {} blobs",
        args.backup.display(),
        args.data_dir.display(),
        report.runs,
        report.blobs
    );
    super::check::print(&report);
    Ok(if report.damage.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
