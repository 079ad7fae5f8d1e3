//! `pipeproof export RUN_ID -o FILE`: downloads a run's bundle (`GET
//! /api/v1/runs/{id}/bundle`) to a file, streamed to a temporary file beside it and renamed
//! into place only when complete, so an interrupted download never leaves a partial bundle.
//! With `--verify`, checks it at once against the server's published key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use pipeproof_core::api::Keys;
use pipeproof_core::bundle::{Manifest, verify_stream};

use crate::client::{Client, ServerArgs, segment};
use crate::file_at::FileAt;
use crate::style::{added, count, dim, removed};

/// Arguments of `pipeproof export`.
#[derive(clap::Args)]
pub struct Args {
    /// The run's id.
    #[arg(value_parser = super::run_id)]
    run: String,
    /// Where to write the bundle (default: RUN_ID.pipeproof.zip; into a directory named,
    /// under that name).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Verify the bundle after download against the server's public key (GET
    /// /api/v1/keys); exit 1 if a check fails. `pipeproof verify` prints every check.
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs `pipeproof export`.
pub fn run(args: Args) -> Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let name = PathBuf::from(format!("{}.pipeproof.zip", args.run));
    let output = match args.output.clone() {
        Some(dir) if dir.is_dir() => dir.join(name),
        Some(path) => path,
        None => name,
    };
    // A busy server (503 while it writes other bundles) says when to ask again.
    let path = format!("/runs/{}/bundle", segment(&args.run));
    let mut attempt = 0;
    let reply = loop {
        attempt += 1;
        match client.get(&path) {
            Ok(r) => break r,
            Err(e) if attempt < 5 && Client::is_retryable(&e) => {
                let wait = Client::answered(&e)
                    .and_then(|a| a.retry_after)
                    .map_or(attempt as u64, |s| s.min(30));
                eprintln!("{} {e:#}; asking again in {wait} s", dim("retry:"));
                std::thread::sleep(std::time::Duration::from_secs(wait));
            }
            Err(e) => return Err(e),
        }
    };
    let bytes = write_atomically(&output, |f| reply.copy_to(f))
        .with_context(|| format!("cannot write the bundle to {}", output.display()))?;
    eprintln!(
        "wrote {} ({} bytes), the bundle of run {}",
        output.display(),
        count(bytes),
        args.run
    );
    if !args.verify {
        return Ok(ExitCode::SUCCESS);
    }
    let keys: Keys = client.get("/keys")?.json("GET /keys")?;
    let bundle =
        FileAt::open(&output).with_context(|| format!("cannot read back {}", output.display()))?;
    // The server's current key, or an older one if that is the one that signed.
    let seal_key = Manifest::read_from(bundle.clone())
        .ok()
        .and_then(|m| m.seal.map(|s| s.public_key));
    let key = keys
        .keys
        .iter()
        .map(|k| k.public_key.clone())
        .find(|k| Some(k) == seal_key.as_ref())
        .or_else(|| keys.keys.first().map(|k| k.public_key.clone()));
    let report = verify_stream(bundle, key.as_deref(), None);
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| match &c.step {
            Some(s) => format!("{} (step {s}): {}", c.name, c.detail),
            None => format!("{}: {}", c.name, c.detail),
        })
        .collect();
    if report.passed() {
        eprintln!(
            "{} all {} checks passed, signed by the server's key {}",
            added("verified:"),
            report.checks.len(),
            key.as_deref().unwrap_or("?")
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{} {}", removed("NOT VERIFIED:"), failed.join("; "));
        Ok(ExitCode::from(1))
    }
}

/// Writes through `fill` into a temporary file beside `path`, synced, then renamed to `path`.
fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> Result<u64>,
) -> Result<u64> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    let tmp = dir.join(format!(".{name}.part-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let n = fill(&mut f)?;
        f.flush()?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(n)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
