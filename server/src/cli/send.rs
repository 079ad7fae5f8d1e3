//! `pipeproof send FILE --run RUN --step NAME`: posts a data file as a step of a run
//! (`POST /api/v1/runs/{id}/steps`), streaming the file as the body, and prints the stored
//! record and its diff against the previous step. With `--new-run --pipeline NAME` it first
//! creates the run (`POST /api/v1/runs`), and ends it as failed if the server refuses its first
//! step. The server does all the hashing and diffing; the options, and with `--new-run` the
//! file's schema and key columns, are checked here first, by the server's own checks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use pipeproof_core::Format;
use pipeproof_core::api::{CreateRun, FailRun, IDEMPOTENCY_HEADER, Run, Step, StepQuery};

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
    #[arg(
        long,
        required_unless_present = "new_run",
        conflicts_with = "new_run",
        value_parser = super::run_id
    )]
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
    #[arg(long, allow_negative_numbers = true, value_parser = super::tolerance)]
    abs_tol: Option<f64>,
    /// Float cells within this relative difference count as equal.
    #[arg(long, allow_negative_numbers = true, value_parser = super::tolerance)]
    rel_tol: Option<f64>,
    /// Rows per partition of the server's diff.
    #[arg(long, value_parser = super::at_least_one)]
    chunk_rows: Option<usize>,
    /// Above this share of differing rows (0 to 1), the server keeps the summary only.
    #[arg(long, allow_negative_numbers = true, value_parser = super::share)]
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
    // The options are checked as the server checks them (the same function), before
    // anything is sent: a wrong value is said here, not as a refusal after a run exists.
    let query = step_query(&args);
    let (config, _) = crate::store::ingest::step_options(&query).map_err(|e| {
        let detail = e.detail.trim_end_matches("; fix the query string");
        anyhow::anyhow!("{detail}; {}", nothing_sent(&args))
    })?;
    // Read the file's schema before creating a run, and check it and the key as the server
    // checks a run's first step (core's diff against an empty table of the file's own
    // schema, here with no rows on either side: no row is read), so a typo, a file that is
    // not data, a type fingerprint v1 cannot encode, twice the same column name or a wrong
    // key does not leave an empty run behind. Duplicate or null keys need every row read:
    // the server finds those. Sending to a run that exists, only opening it: the server
    // reads it all anyway, and a refused step leaves nothing behind.
    if args.new_run {
        let source = super::input(&args.file, args.input_format)?;
        let empty = pipeproof_core::Table::try_new(
            pipeproof_core::BatchSource::schema(&source),
            Vec::new(),
        )?;
        if let Err(e) = pipeproof_core::diff(&empty, &empty, &config) {
            bail!(
                "{}: {}; {}",
                args.file.display(),
                e.in_steps(true),
                nothing_sent(&args)
            );
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

    let pairs = query_pairs(&query)?;
    let query: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
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

/// What a refusal of the options before anything was sent leaves behind.
fn nothing_sent(args: &Args) -> &'static str {
    if args.new_run {
        "no run was created"
    } else {
        "nothing was sent"
    }
}

/// The query of the step post.
fn step_query(args: &Args) -> StepQuery {
    let list = |v: &[String]| (!v.is_empty()).then(|| v.join(","));
    StepQuery {
        step: args.step.clone(),
        key: list(&args.key),
        abs_tol: args.abs_tol,
        rel_tol: args.rel_tol,
        chunk_rows: args.chunk_rows,
        summary_only_threshold: args.summary_only_threshold,
        ignore: list(&args.ignore),
        max_detail_rows: args.max_detail_rows,
        artifact: args.artifact.then_some(true),
        params: args.params.clone(),
    }
}

/// The query's fields as URL query pairs, by their serialised names; the unset ones left
/// out.
fn query_pairs(q: &StepQuery) -> Result<Vec<(String, String)>> {
    let serde_json::Value::Object(fields) = serde_json::to_value(q)? else {
        bail!("the step query is not an object");
    };
    Ok(fields
        .into_iter()
        .filter_map(|(name, v)| match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some((name, s)),
            other => Some((name, other.to_string())),
        })
        .collect())
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
