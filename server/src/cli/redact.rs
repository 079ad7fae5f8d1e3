//! `pipeproof redact`: removes ended runs' diff details and kept data from a server's store
//! (`POST /api/v1/runs/{id}/redact`), for data that must not be kept: named runs (an erasure
//! request), or every run that ended before a time (a retention period, run from a
//! scheduler). What proves each run stays, and its bundles still verify.

use std::process::ExitCode;

use anyhow::{Result, bail};
use pipeproof_core::api::{Page, RedactRun, Redacted, Run, RunStatus};

use super::Output;
use crate::client::{Client, ServerArgs, segment};
use crate::outln;
use crate::style::{bold, count, counted, dim};

/// Arguments of `pipeproof redact`.
#[derive(clap::Args)]
pub struct Args {
    /// The runs (ids); or give --ended-before.
    #[arg(required_unless_present = "ended_before")]
    runs: Vec<String>,
    /// Why: kept with every step redacted and shown in the runs' bundles.
    #[arg(long)]
    reason: String,
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

/// The ended runs (of `pipeline`) sealed before `before`, oldest first.
fn ended_before(client: &Client, before: &str, pipeline: Option<&str>) -> Result<Vec<Run>> {
    let mut found = Vec::new();
    let mut offset = 0;
    loop {
        let mut path = format!("/runs?limit=500&offset={offset}");
        if let Some(p) = pipeline {
            path.push_str(&format!("&pipeline={}", segment(p)));
        }
        let page: Page<Run> = client.get(&path)?.json("GET /runs")?;
        let n = page.items.len() as u64;
        found.extend(page.items.into_iter().filter(|r| {
            r.status != RunStatus::Open
                && r.sealed_at.as_deref().is_some_and(|t| {
                    crate::store::not_after(t, before) && !crate::store::not_after(before, t)
                })
        }));
        offset += n;
        if n == 0 || offset >= page.total {
            break;
        }
    }
    found.reverse();
    Ok(found)
}

/// Runs `pipeproof redact`.
pub fn run(args: Args) -> Result<ExitCode> {
    if args.reason.trim().is_empty() {
        bail!("--reason is empty: say why the data is removed (it is kept with each step)");
    }
    let client = Client::new(&args.server)?;
    let runs: Vec<String> = match &args.ended_before {
        Some(t) => ended_before(&client, &parse_time(t)?, args.pipeline.as_deref())?
            .into_iter()
            .map(|r| r.id)
            .collect(),
        None => args.runs.clone(),
    };
    let mut out = String::new();
    if args.dry_run {
        match args.format {
            Output::Json => outln!(out, "{}", serde_json::to_string_pretty(&runs)?),
            Output::Table => {
                for id in &runs {
                    outln!(out, "{id}");
                }
                outln!(
                    out,
                    "{}",
                    dim(&format!(
                        "{} would be redacted (--dry-run: nothing changed)",
                        counted(runs.len() as u64, "run", "runs")
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
    };
    let mut done: Vec<Redacted> = Vec::new();
    for id in &runs {
        let path = format!("/runs/{}/redact", segment(id));
        match client.post_json(&path, &request) {
            Ok(reply) => done.push(reply.json("POST /runs/{id}/redact")?),
            Err(e) => {
                // What was redacted before the failure is said, then the failure.
                print(&mut out, args.format, &done)?;
                crate::style::emit(&out)?;
                return Err(e.context(format!(
                    "run {id} was not redacted ({} of {} done)",
                    done.len(),
                    runs.len()
                )));
            }
        }
    }
    print(&mut out, args.format, &done)?;
    crate::style::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn print(out: &mut String, format: Output, done: &[Redacted]) -> Result<()> {
    if format == Output::Json {
        outln!(out, "{}", serde_json::to_string_pretty(done)?);
        return Ok(());
    }
    let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    for r in done {
        let mut line = format!("{} {}: ", bold("run"), r.run_id);
        if r.steps.is_empty() {
            line.push_str("nothing to redact");
        } else {
            line.push_str(&format!(
                "redacted {} {} ({} removed, {} bytes)",
                if r.steps.len() == 1 { "step" } else { "steps" },
                list(&r.steps),
                counted(r.blobs_removed, "file", "files"),
                count(r.bytes_freed)
            ));
        }
        if !r.already.is_empty() {
            line.push_str(&format!("; redacted before: {}", list(&r.already)));
        }
        outln!(out, "{line}");
    }
    if done.is_empty() {
        outln!(out, "{}", dim("no run to redact"));
    }
    Ok(())
}
