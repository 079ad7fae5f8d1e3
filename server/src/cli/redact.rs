//! `pipeproof redact`: removes ended runs' diff details and kept data from a server's store
//! (`POST /api/v1/runs/{id}/redact`), for data that must not be kept: named runs (an erasure
//! request), or every run that ended before a time (a retention period, run from a
//! scheduler). What proves each run stays, and its bundles still verify.

use std::process::ExitCode;

use anyhow::{Result, bail};
use pipeproof_core::api::{Page, RedactRun, Redacted, Run, RunDetail, RunStatus};

use super::Output;
use crate::client::{Client, ServerArgs, segment};
use crate::outln;
use crate::style::{bold, count, counted, dim};

/// Arguments of `pipeproof redact`.
#[derive(clap::Args)]
pub struct Args {
    /// The runs (ids); or give --ended-before.
    #[arg(required_unless_present = "ended_before", value_parser = super::run_id)]
    runs: Vec<String>,
    /// Why: kept with every step redacted and shown in the runs' bundles.
    #[arg(long)]
    reason: String,
    /// Also remove the steps' column statistics: their minimum and maximum are values of
    /// the data (for an erasure). What they were stays bound by the records' digests.
    #[arg(long)]
    statistics: bool,
    /// Only these steps (indices) of the runs named; all steps by default.
    #[arg(long = "step", value_name = "INDEX", conflicts_with = "ended_before")]
    steps: Vec<u64>,
    /// Every run that ended (sealed or failed) before this time: RFC 3339
    /// (2026-09-01T00:00:00Z) or a date (2026-09-01, midnight UTC).
    #[arg(long, value_name = "TIME", conflicts_with = "runs")]
    ended_before: Option<String>,
    /// With --ended-before: only this pipeline's runs.
    #[arg(long, requires = "ended_before")]
    pipeline: Option<String>,
    /// List the runs that would be redacted; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    server: ServerArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    format: Output,
}

/// A time given on the command line, as RFC 3339.
fn parse_time(t: &str) -> Result<String> {
    if crate::store::instant(t).is_some() {
        return Ok(t.to_string());
    }
    let date = format!("{t}T00:00:00Z");
    if crate::store::instant(&date).is_some() {
        return Ok(date);
    }
    bail!(
        "--ended-before `{t}` is no time: give a date (2026-09-01) or RFC 3339 (2026-09-01T00:00:00Z)"
    )
}

/// Whether `t` is before `before` (both RFC 3339).
fn is_before(t: &str, before: &str) -> bool {
    crate::store::not_after(t, before) && !crate::store::not_after(before, t)
}

/// The runs (of `pipeline`) that ended before `before`, oldest first; and how many open
/// runs were created before it (a retention job cannot redact them until they end).
fn ended_before(client: &Client, before: &str, pipeline: Option<&str>) -> Result<(Vec<Run>, u64)> {
    let mut found = Vec::new();
    let mut open = 0;
    let mut offset = 0;
    loop {
        let mut path = format!("/runs?limit=500&offset={offset}");
        if let Some(p) = pipeline {
            path.push_str(&format!("&pipeline={}", segment(p)));
        }
        let page: Page<Run> = client.get(&path)?.json("GET /runs")?;
        let n = page.items.len() as u64;
        for r in page.items {
            if r.status == RunStatus::Open {
                open += u64::from(is_before(&r.created_at, before));
            } else if r.sealed_at.as_deref().is_some_and(|t| is_before(t, before)) {
                found.push(r);
            }
        }
        offset += n;
        if n == 0 || offset >= page.total {
            break;
        }
    }
    found.reverse();
    Ok((found, open))
}

/// Whether a run holds something a redaction of `steps` (all when empty) would remove.
fn has_data(client: &Client, id: &str, steps: &[u64], statistics: bool) -> Result<bool> {
    let run: RunDetail = client
        .get(&format!("/runs/{}", segment(id)))?
        .json("GET /runs/{id}")?;
    Ok(run.steps.iter().any(|s| {
        (steps.is_empty() || steps.contains(&s.record.index))
            && ((s.redacted.is_none() && (s.diff.is_some() || s.artifact))
                || (statistics && s.statistics_redacted.is_none()))
    }))
}

/// Runs `pipeproof redact`.
pub fn run(args: Args) -> Result<ExitCode> {
    if args.reason.trim().is_empty() {
        bail!("--reason is empty: say why the data is removed (it is kept with each step)");
    }
    let client = Client::new(&args.server)?;
    let (runs, open) = match &args.ended_before {
        Some(t) => {
            let (runs, open) = ended_before(&client, &parse_time(t)?, args.pipeline.as_deref())?;
            (runs.into_iter().map(|r| r.id).collect(), open)
        }
        None => (args.runs.clone(), 0),
    };
    let mut out = String::new();
    if open > 0 && args.format == Output::Table {
        eprintln!(
            "{} {} created before {} {} skipped: an open run keeps its last step's data until \
             it ends; seal or fail {} to redact {}",
            dim("note:"),
            counted(open, "open run", "open runs"),
            args.ended_before.as_deref().unwrap_or(""),
            if open == 1 { "is" } else { "are" },
            if open == 1 { "it" } else { "them" },
            if open == 1 { "it" } else { "them" },
        );
    }
    if args.dry_run {
        let mut would = Vec::new();
        for id in &runs {
            if has_data(&client, id, &args.steps, args.statistics)? {
                would.push(id.clone());
            }
        }
        match args.format {
            Output::Json => outln!(out, "{}", serde_json::to_string_pretty(&would)?),
            Output::Table => {
                for id in &would {
                    outln!(out, "{id}");
                }
                outln!(
                    out,
                    "{}",
                    dim(&format!(
                        "{} would be redacted (--dry-run: nothing changed)",
                        counted(would.len() as u64, "run", "runs")
                    ))
                );
            }
        }
        crate::style::emit(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let request = RedactRun {
        reason: args.reason.clone(),
        steps: (!args.steps.is_empty()).then(|| args.steps.clone()),
        statistics: args.statistics,
    };
    // Every run is tried; the ones that failed are said at the end.
    let mut done: Vec<Redacted> = Vec::new();
    let mut failed = Vec::new();
    for id in &runs {
        let path = format!("/runs/{}/redact", segment(id));
        match client
            .post_json(&path, &request)
            .and_then(|r| r.json::<Redacted>("POST /runs/{id}/redact"))
        {
            Ok(r) => done.push(r),
            Err(e) => failed.push((id.clone(), format!("{e:#}"))),
        }
    }
    print(&mut out, args.format, &done, failed.is_empty())?;
    crate::style::emit(&out)?;
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    // One run named, and not redacted: its error is all there is to say.
    if let [(id, e)] = &failed[..]
        && runs.len() == 1
    {
        bail!("run {id} was not redacted: {e}");
    }
    for (id, e) in &failed {
        eprintln!("error: run {id} was not redacted: {e}");
    }
    bail!(
        "{} of {} not redacted",
        counted(failed.len() as u64, "run", "runs"),
        runs.len()
    )
}

/// Prints the runs redacted; `none_failed`: no run was refused (else "no run to redact"
/// would contradict the errors that follow).
fn print(out: &mut String, format: Output, done: &[Redacted], none_failed: bool) -> Result<()> {
    if format == Output::Json {
        outln!(out, "{}", serde_json::to_string_pretty(done)?);
        return Ok(());
    }
    let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    for r in done {
        let mut line = format!("{} {}: ", bold("run"), r.run_id);
        if r.steps.is_empty() && r.statistics.is_empty() {
            line.push_str("nothing to redact");
        }
        if !r.steps.is_empty() {
            line.push_str(&format!(
                "redacted {} {} ({} removed, {} bytes)",
                if r.steps.len() == 1 { "step" } else { "steps" },
                list(&r.steps),
                counted(r.blobs_removed, "file", "files"),
                count(r.bytes_freed)
            ));
        }
        if !r.statistics.is_empty() {
            line.push_str(&format!(
                "{}statistics removed from {} {}",
                if r.steps.is_empty() { "" } else { "; " },
                if r.statistics.len() == 1 {
                    "step"
                } else {
                    "steps"
                },
                list(&r.statistics),
            ));
        }
        if !r.already.is_empty() {
            line.push_str(&format!("; redacted before: {}", list(&r.already)));
        }
        if r.blobs_pending > 0 {
            line.push_str(&format!(
                "; {} left to remove at the server's next redaction or start (a backup or \
                 check was reading)",
                counted(r.blobs_pending, "file", "files")
            ));
        }
        outln!(out, "{line}");
    }
    if done.is_empty() && none_failed {
        outln!(out, "{}", dim("no run to redact"));
    }
    Ok(())
}
