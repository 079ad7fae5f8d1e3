//! `pipeproof log`: the server's log of seals, checked with core alone. `head` fetches and
//! checks the signed tree head (keep it); `check OLD` proves that the log of a kept head is
//! the start of the log now (nothing logged was changed or dropped since); `prove BUNDLE`
//! proves that a bundle's seal is in the log of a head.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use pipeproof_core::api::LogInclusion;
use pipeproof_core::bundle::Manifest;
use pipeproof_core::log::{self, ConsistencyProof, TreeHead};

use super::Output;
use super::verify::trusted_key;
use crate::client::{Client, ServerArgs, segment};
use crate::file_at::FileAt;
use crate::outln;
use crate::style::{added, count, dim, removed};

/// Arguments of `pipeproof log`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Fetch the log's signed head and check its signature; keep it (-o) to check the log
    /// against later.
    Head {
        /// Write the head (JSON) to this file.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Prove that the log of a kept head is the start of the log now: no seal logged by
    /// then was changed, dropped or reordered.
    ///
    /// Exit status: 0 when proved, 1 when not, 2 on error.
    Check {
        /// A head kept earlier (`pipeproof log head -o FILE`).
        old: PathBuf,
        /// Write the head now (JSON) to this file, to check against next time.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Prove that a bundle's seal is in the log: of a kept head (--head), or of the log now.
    ///
    /// Exit status: 0 when proved, 1 when not, 2 on error.
    Prove {
        /// The bundle (`pipeproof export`).
        bundle: PathBuf,
        /// A head kept earlier; without it, the log's head now.
        #[arg(long, value_name = "FILE")]
        head: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(clap::Args)]
struct Common {
    /// The public key you trust to have signed the heads: 64 hex digits, or a file holding
    /// them or the JSON of `GET /api/v1/keys`. Without it each head is checked against the
    /// key written in it, which proves integrity but not origin.
    #[arg(long, value_name = "HEX|FILE")]
    pubkey: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    format: Output,
}

/// "1 seal", "2 seals".
fn seals(n: u64) -> String {
    format!("{} seal{}", count(n), if n == 1 { "" } else { "s" })
}

/// A proof's outcome: what was proved, or why not.
struct Outcome {
    passed: bool,
    detail: String,
    head: TreeHead,
}

/// Runs `pipeproof log`.
pub fn run(args: Args) -> Result<ExitCode> {
    let (common, outcome, output) = match args.command {
        Command::Head { output, common } => {
            let head = fetch_head(&common)?;
            let outcome = check_head(&head, &common, "the log's head")
                .map(|trust| Outcome {
                    passed: true,
                    detail: format!(
                        "the log holds {}, root {}, signed at {} {trust}",
                        seals(head.size),
                        head.root.to_hex(),
                        head.timestamp
                    ),
                    head: head.clone(),
                })
                .unwrap_or_else(|detail| Outcome {
                    passed: false,
                    detail,
                    head,
                });
            (common, outcome, output)
        }
        Command::Check {
            old,
            output,
            common,
        } => {
            let outcome = check(&old, &common)?;
            (common, outcome, output)
        }
        Command::Prove {
            bundle,
            head,
            common,
        } => {
            let outcome = prove(&bundle, head.as_deref(), &common)?;
            (common, outcome, None)
        }
    };
    if let Some(path) = &output
        && outcome.passed
    {
        std::fs::write(path, serde_json::to_string_pretty(&outcome.head)? + "\n")
            .with_context(|| format!("cannot write the head to {}", path.display()))?;
    }
    let mut out = String::new();
    match common.format {
        Output::Json => outln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "passed": outcome.passed,
                "detail": outcome.detail,
                "head": outcome.head,
            }))?
        ),
        Output::Table => {
            let mark = if outcome.passed {
                added("✔")
            } else {
                removed("✘")
            };
            outln!(out, "{mark} {}", outcome.detail);
            if let Some(path) = output.filter(|_| outcome.passed) {
                outln!(
                    out,
                    "{}",
                    dim(&format!(
                        "head kept in {}; later: pipeproof log check {}",
                        path.display(),
                        path.display()
                    ))
                );
            }
        }
    }
    crate::style::emit(&out)?;
    Ok(if outcome.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn fetch_head(common: &Common) -> Result<TreeHead> {
    Client::new(&common.server)?.get("/log")?.json("GET /log")
}

/// Checks a head's signature, by the trusted key when one is given; says by which key.
fn check_head(head: &TreeHead, common: &Common, what: &str) -> Result<String, String> {
    let trusted = match &common.pubkey {
        Some(arg) => {
            let keys = trusted_key(arg).map_err(|e| format!("{e:#}"))?;
            let key = keys
                .iter()
                .find(|k| k.eq_ignore_ascii_case(&head.public_key))
                .unwrap_or(&keys[0])
                .clone();
            Some(key)
        }
        None => None,
    };
    log::verify_tree_head(head, trusted.as_deref()).map_err(|e| {
        format!(
            "{what}: {}",
            e.to_string().trim_start_matches("verification failed: ")
        )
    })?;
    let key = &head.public_key[..16.min(head.public_key.len())];
    Ok(match trusted {
        Some(_) => format!("by the trusted key {key}…"),
        None => format!("by key {key}… (no trusted key given: pass --pubkey to check the signer)"),
    })
}

fn read_head(path: &std::path::Path) -> Result<TreeHead> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the head {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a log head (the JSON `pipeproof log head -o FILE` writes)",
            path.display()
        )
    })
}

/// `pipeproof log check OLD`.
fn check(old_path: &std::path::Path, common: &Common) -> Result<Outcome> {
    let old = read_head(old_path)?;
    let new = fetch_head(common)?;
    let fail = |detail: String| Outcome {
        passed: false,
        detail,
        head: new.clone(),
    };
    if let Err(e) = check_head(
        &old,
        common,
        &format!("the kept head {}", old_path.display()),
    ) {
        return Ok(fail(e));
    }
    let trust = match check_head(&new, common, "the log's head now") {
        Ok(t) => t,
        Err(e) => return Ok(fail(e)),
    };
    if common.pubkey.is_none() && !new.public_key.eq_ignore_ascii_case(&old.public_key) {
        return Ok(fail(format!(
            "the log's head is signed by key {} now, the kept head by {}: pass --pubkey with \
             the keys you trust",
            new.public_key, old.public_key
        )));
    }
    let proof: ConsistencyProof = Client::new(&common.server)?
        .get(&format!(
            "/log/consistency?from={}&to={}",
            old.size, new.size
        ))?
        .json("GET /log/consistency")?;
    Ok(match log::verify_consistency(&old, &new, &proof) {
        Ok(()) => Outcome {
            passed: true,
            detail: format!(
                "the log of {} signed at {} is the start of the log of {} signed at {} {trust}: \
                 no seal logged by then was changed, dropped or reordered",
                seals(old.size),
                old.timestamp,
                seals(new.size),
                new.timestamp
            ),
            head: new,
        },
        Err(e) => fail(format!(
            "{}; the server's history is not the one it signed at {}",
            e.to_string().trim_start_matches("verification failed: "),
            old.timestamp
        )),
    })
}

/// `pipeproof log prove BUNDLE`.
fn prove(
    bundle: &std::path::Path,
    head: Option<&std::path::Path>,
    common: &Common,
) -> Result<Outcome> {
    let file = std::fs::File::open(bundle)
        .with_context(|| format!("cannot read the bundle {}", bundle.display()))?;
    let manifest = Manifest::read_from(FileAt::new(file))
        .with_context(|| format!("{} is not a bundle", bundle.display()))?;
    let head = match head {
        Some(path) => read_head(path)?,
        None => fetch_head(common)?,
    };
    let fail = |detail: String| Outcome {
        passed: false,
        detail,
        head: head.clone(),
    };
    let Some(seal) = &manifest.seal else {
        return Ok(fail(format!(
            "run {} is not sealed in this bundle: there is no seal to find in the log",
            manifest.run.id
        )));
    };
    let trust = match check_head(&head, common, "the head") {
        Ok(t) => t,
        Err(e) => return Ok(fail(e)),
    };
    let leaf = log::leaf_of(seal);
    let run = &seal.run_id;
    let reply = Client::new(&common.server)?.get(&format!(
        "/log/inclusion?run={}&size={}",
        segment(run),
        head.size
    ));
    let found: LogInclusion = match reply {
        Ok(r) => r.json("GET /log/inclusion")?,
        Err(e) if !Client::is_transport(&e) => {
            return Ok(fail(format!(
                "the log of {} has no entry for run {run}: {e:#}",
                seals(head.size)
            )));
        }
        Err(e) => return Err(e),
    };
    if found.leaf != leaf {
        return Ok(fail(format!(
            "the log holds another seal for run {run} (leaf {}, this bundle's is {}): the run \
             was sealed otherwise than this bundle says",
            found.leaf.to_hex(),
            leaf.to_hex()
        )));
    }
    Ok(match log::verify_inclusion(&leaf, &found.proof, &head) {
        Ok(()) => Outcome {
            passed: true,
            detail: format!(
                "the seal of run {run} is entry {} of the log of {} signed at {} {trust}",
                found.proof.index,
                seals(head.size),
                head.timestamp
            ),
            head,
        },
        Err(e) => fail(
            e.to_string()
                .trim_start_matches("verification failed: ")
                .to_string(),
        ),
    })
}
