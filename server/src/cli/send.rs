//! `pipeproof send FILE --run RUN --step NAME`: posts a data file as a step of a run
//! (`POST /api/v1/runs/{id}/steps`), streaming the file as the body, and prints the stored
//! record and its diff against the previous step. With `--new-run --pipeline NAME` it first
//! creates the run (`POST /api/v1/runs`), and ends it as failed if the server refuses its first
//! step. The server does all the hashing and diffing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use pipeproof_core::Format;
use pipeproof_core::api::{CreateRun, FailRun, IDEMPOTENCY_HEADER, Run, Step};

use super::{FormatArg, Output};
use crate::client::{Client, ServerArgs, idempotency_key, segment};
use crate::outln;
use crate::style::{added, bold, changed, count, dim, removed};

/// Arguments of `pipeproof send`.
#[derive(clap::Args)]
pub struct Args {
    /// The data file: .parquet, .arrow/.feather/.ipc, .arrows (stream) or .csv.
    file: PathBuf,
    /// The run to add the step to.
    #[arg(long, required_unless_present = "new_run", conflicts_with = "new_run")]
    run: Option<String>,
    /// Create a new run first (needs --pipeline); its id is printed.
    #[arg(long, requires = "pipeline")]
    new_run: bool,
    /// The pipeline of the new run.
    #[arg(long, requires = "new_run")]
    pipeline: Option<String>,
    /// A label of the new run, `name=value`; repeat for more.
    #[arg(long = "label", value_name = "NAME=VALUE", requires = "new_run")]
    labels: Vec<String>,
    /// The pipeline code's version for the new run (a git commit, a package version).
    #[arg(long, requires = "new_run")]
    code_version: Option<String>,
    /// The step's name.
    #[arg(long)]
    step: String,
    /// Key column(s); repeat or comma-separate. Without a key the step is diffed against the
    /// previous one as a multiset of rows.
    #[arg(long, short, value_delimiter = ',')]
    key: Vec<String>,
    /// Float cells within this absolute difference count as equal.
    #[arg(long, allow_negative_numbers = true)]
    abs_tol: Option<f64>,
    /// Float cells within this relative difference count as equal.
    #[arg(long, allow_negative_numbers = true)]
    rel_tol: Option<f64>,
    /// Rows per partition of the server's diff.
    #[arg(long)]
    chunk_rows: Option<usize>,
    /// Above this share of differing rows (0 to 1), the server keeps the summary only.
    #[arg(long, allow_negative_numbers = true)]
    summary_only_threshold: Option<f64>,
    /// Columns the diff ignores; repeat or comma-separate.
    #[arg(long, value_delimiter = ',')]
    ignore: Vec<String>,
    /// The most detail rows kept of each kind.
    #[arg(long)]
    max_detail_rows: Option<usize>,
    /// Keep the full snapshot on the server as an artifact.
    #[arg(long)]
    artifact: bool,
    /// Step parameters, a JSON object recorded verbatim in the step record.
    #[arg(long, value_name = "JSON")]
    params: Option<String>,
    /// Send the file as this format instead of detecting it from its name or first bytes.
    #[arg(long, value_enum)]
    input_format: Option<FormatArg>,
    /// The Idempotency-Key header (default: a fresh random one). Re-sending with the same
    /// key returns the step already stored instead of storing it twice.
    #[arg(long)]
    idempotency_key: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    format: Output,
}

/// How often a post is tried when the server cannot be reached (the Idempotency-Key makes a
/// retry safe even if the first attempt was stored).
const ATTEMPTS: usize = 3;

/// Runs `pipeproof send`.
pub fn run(args: Args) -> Result<ExitCode> {
    let format: Format = match args.input_format {
        Some(f) => f.into(),
        None => crate::source::detect(&args.file)?,
    };
    if let Some(p) = &args.params {
        let v: serde_json::Value =
            serde_json::from_str(p).with_context(|| format!("--params `{p}` is not JSON"))?;
        if !v.is_object() {
            bail!("--params must be a JSON object, like '{{\"threshold\": 3}}'");
        }
    }
    // Read the file's schema before creating a run (and check the key against it), so a
    // typo, a file that is not data, or a wrong key does not leave an empty run behind.
    // Sending to a run that exists, only opening it: the server reads it all anyway.
    if args.new_run {
        let source = super::input(&args.file, args.input_format)?;
        let schema = pipeproof_core::BatchSource::schema(&source);
        if let Some(k) = args.key.iter().find(|k| schema.index_of(k).is_err()) {
            let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            // The server's own refusal of it, said before a run exists.
            let e = pipeproof_core::Error::MissingKey {
                column: k.clone(),
                side: pipeproof_core::Side::Step,
                available: columns.join(", "),
            };
            bail!("{}: {e}; no run was created", args.file.display());
        }
    } else {
        std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
    }
    let client = Client::new(&args.server)?;
    let mut out = String::new();

    let created: Option<Run> = if args.new_run {
        let labels = parse_labels(&args.labels)?;
        let run: Run = client
            .post_json(
                "/runs",
                &CreateRun {
                    pipeline: args.pipeline.clone().unwrap_or_default(),
                    labels,
                    code_version: args.code_version.clone(),
                    params: serde_json::json!({}),
                },
            )?
            .json("POST /runs")?;
        if args.format == Output::Table {
            outln!(out, "{} {}", bold("run"), run.id);
        }
        Some(run)
    } else {
        None
    };
    let run_id = match (&created, &args.run) {
        (Some(r), _) => r.id.clone(),
        (None, Some(id)) => id.clone(),
        (None, None) => bail!("give --run RUN_ID, or --new-run --pipeline NAME"),
    };

    let query = step_query(&args);
    let idem = match &args.idempotency_key {
        Some(k) => k.clone(),
        None => idempotency_key()?,
    };
    let path = format!("/runs/{}/steps", segment(&run_id));
    let mut attempt = 0;
    let reply = loop {
        attempt += 1;
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        match client.post_file(
            &path,
            &query,
            file,
            format.media_type(),
            &[(IDEMPOTENCY_HEADER, idem.as_str())],
        ) {
            Ok(r) => break r,
            // The request may or may not have been done (no answer, a timeout, a gateway's
            // 502/504, a busy server): the same Idempotency-Key makes the retry safe.
            Err(e) if attempt < ATTEMPTS && Client::is_retryable(&e) => {
                eprintln!(
                    "{} {e:#}; retrying with the same Idempotency-Key",
                    dim("retry:")
                );
                let wait = Client::answered(&e)
                    .and_then(|a| a.retry_after)
                    .map_or(500 * attempt as u64, |s| s.min(30) * 1000);
                std::thread::sleep(std::time::Duration::from_millis(wait));
            }
            Err(e) => {
                let created = match &created {
                    Some(r) => format!(" ({})", end_refused_run(&client, &r.id, &args.step, &e)),
                    None => String::new(),
                };
                let outcome = if Client::is_refusal(&e) {
                    "was not stored".to_string()
                } else {
                    format!(
                        "may or may not have been stored (send it again with --run {run_id} \
                         --idempotency-key {idem}: stored once either way)"
                    )
                };
                return Err(e.context(format!(
                    "{} {outcome} as step `{}`{created}",
                    args.file.display(),
                    args.step,
                )));
            }
        }
    };
    let replayed = reply.status == 200;
    let step: Step = reply.json("POST /runs/{id}/steps")?;
    match args.format {
        Output::Json => {
            let doc = serde_json::json!({
                "run": created,
                "run_id": run_id,
                "replayed": replayed,
                "step": step,
            });
            outln!(out, "{}", serde_json::to_string_pretty(&doc)?);
        }
        Output::Table => print_step(&mut out, &args, format, &step, replayed),
    }
    crate::style::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// A run this command created whose first step was not stored: ended as failed with the
/// reason when the server refused the step (a 4xx: it was not stored), so that no empty run
/// is left open. Left open when it is not known whether the step was stored (no answer, a
/// timeout, a 5xx after the retries): failing it then could sign a false reason onto a run
/// that holds the step. Says which.
fn end_refused_run(client: &Client, run_id: &str, step: &str, e: &anyhow::Error) -> String {
    if !Client::is_refusal(e) {
        return format!(
            "run {run_id} was created and is left open: whether its first step was stored is \
             not known"
        );
    }
    let failed = client.post_json(
        &format!("/runs/{}/fail", segment(run_id)),
        &FailRun {
            error: format!("the first step `{step}` was refused: {e:#}"),
        },
    );
    match failed {
        Ok(_) => format!("run {run_id} was created; it is ended as failed, with the reason"),
        Err(f) => format!("run {run_id} was created and is left open, empty: {f:#}"),
    }
}

fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>> {
    labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => bail!("--label `{l}` is not NAME=VALUE"),
        })
        .collect()
}

/// The query of the step post ([`pipeproof_core::api::StepQuery`]'s fields).
fn step_query(args: &Args) -> Vec<(&'static str, String)> {
    let mut q = vec![("step", args.step.clone())];
    if !args.key.is_empty() {
        q.push(("key", args.key.join(",")));
    }
    let mut opt = |name: &'static str, v: Option<String>| {
        if let Some(v) = v {
            q.push((name, v));
        }
    };
    opt("abs_tol", args.abs_tol.map(|v| v.to_string()));
    opt("rel_tol", args.rel_tol.map(|v| v.to_string()));
    opt("chunk_rows", args.chunk_rows.map(|v| v.to_string()));
    opt(
        "summary_only_threshold",
        args.summary_only_threshold.map(|v| v.to_string()),
    );
    opt(
        "ignore",
        (!args.ignore.is_empty()).then(|| args.ignore.join(",")),
    );
    opt(
        "max_detail_rows",
        args.max_detail_rows.map(|v| v.to_string()),
    );
    opt("artifact", args.artifact.then(|| "true".to_string()));
    opt("params", args.params.clone());
    q
}

fn print_step(out: &mut String, args: &Args, format: Format, step: &Step, replayed: bool) {
    let r = &step.record;
    outln!(
        out,
        "{} {} `{}` of run {}  {}",
        bold("step"),
        r.index,
        r.step,
        r.run_id,
        dim(&if replayed {
            "already stored (same Idempotency-Key): nothing new was stored".to_string()
        } else {
            format!("stored from {} ({format})", args.file.display())
        })
    );
    let line = |out: &mut String, label: &str, value: String| {
        outln!(out, "  {:<13}{}", label, value);
    };
    line(out, "rows", count(r.rows));
    line(out, "columns", step.schema.len().to_string());
    line(out, "record hash", step.hash.to_hex());
    line(out, "content root", r.content_root.to_hex());
    if step.artifact {
        line(out, "artifact", "the full snapshot is kept".into());
    }
    match &step.diff {
        None => line(
            out,
            "diff",
            dim("first step of the run: nothing to compare with"),
        ),
        Some(d) => {
            let mut s = format!(
                "{} {} ",
                added(&format!("+{}", count(d.added))),
                removed(&format!("-{}", count(d.removed)))
            );
            if !d.key.is_empty() {
                s.push_str(&changed(&format!("~{} ", count(d.changed))));
            }
            s.push_str(&dim(&format!(
                "={} vs step {} ({} → {} rows)",
                count(d.unchanged),
                r.index.saturating_sub(1),
                count(d.rows_before),
                count(d.rows_after)
            )));
            line(out, "diff", s);
            if !d.schema.is_empty() {
                line(
                    out,
                    "schema",
                    changed("changed (see the web app or GET .../diff)"),
                );
            }
        }
    }
}
