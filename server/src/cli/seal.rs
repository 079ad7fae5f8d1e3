//! `pipeproof seal RUN_ID`: finishes a run (`POST /api/v1/runs/{id}/seal`), so the server
//! signs the head of its record chain; with `--failed MESSAGE` ends it as failed instead
//! (`POST /api/v1/runs/{id}/fail`), which is signed too.

use std::process::ExitCode;

use anyhow::Result;
use pipeproof_core::api::{FailRun, Run};

use super::Output;
use crate::client::{Client, ServerArgs, segment};
use crate::outln;
use crate::style::{bold, dim};

/// Arguments of `pipeproof seal`.
#[derive(clap::Args)]
pub struct Args {
    /// The run's id.
    #[arg(value_parser = super::run_id)]
    run: String,
    /// End the run as failed, with this error message, instead of sealing it as finished.
    #[arg(long, value_name = "MESSAGE")]
    failed: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    format: Output,
}

/// Runs `pipeproof seal`.
pub fn run(args: Args) -> Result<ExitCode> {
    let client = Client::new(&args.server)?;
    let id = segment(&args.run);
    let run: Run = match &args.failed {
        None => client
            .post_json(&format!("/runs/{id}/seal"), &serde_json::json!({}))?
            .json("POST /runs/{id}/seal")?,
        Some(error) => client
            .post_json(
                &format!("/runs/{id}/fail"),
                &FailRun {
                    error: error.clone(),
                },
            )?
            .json("POST /runs/{id}/fail")?,
    };
    let mut out = String::new();
    match args.format {
        Output::Json => outln!(out, "{}", serde_json::to_string_pretty(&run)?),
        Output::Table => {
            outln!(
                out,
                "{} {} is {} with {}",
                bold("run"),
                run.id,
                run.status.as_str(),
                crate::style::counted(run.steps, "step", "steps")
            );
            if let Some(h) = &run.head {
                outln!(out, "  {:<10}{}", "head", h.to_hex());
            }
            if let Some(t) = &run.sealed_at {
                outln!(out, "  {:<10}{}", "signed at", t);
            }
            outln!(
                out,
                "{}",
                dim(&format!(
                    "export and check it: pipeproof export {} --verify",
                    run.id
                ))
            );
        }
    }
    crate::style::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}
