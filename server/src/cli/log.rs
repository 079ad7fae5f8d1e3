//! `pipeproof log`: the server's log of seals, checked with core alone. `head` fetches and
//! checks the signed tree head (keep it); `check OLD` proves that the log of a kept head is
//! the start of the log now (nothing logged was changed or dropped since); `prove BUNDLE`
//! proves that a bundle's seal is in the log of a head.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use pipeproof_core::api::{Keys, LogEntries, LogInclusion};
use pipeproof_core::bundle::Manifest;
use pipeproof_core::log::{self, ConsistencyProof, TreeHead};
use pipeproof_core::merkle;
use pipeproof_core::sign::{KeyHandover, Seal, keys_before, keys_from, verify_seal};

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
        /// Write the head (JSON) to this new file (an existing one is a kept head: move it
        /// forward with `log check FILE -o FILE`).
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
        /// Write the head now (JSON) to this file, to check against next time (it may be the
        /// kept head's file: it is replaced only once the proof holds).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Also read every entry of the log now, as a monitor: each seal signed and of its
        /// own run (none sealed twice), each leaf its seal's, all making the head's root.
        #[arg(long)]
        entries: bool,
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
    crate::style::counted(n, "seal", "seals")
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
            if let Some(path) = output.as_ref().filter(|p| p.exists()) {
                bail!(
                    "{} exists: a kept head is moved forward only once the log is proved to \
                     have grown from it (pipeproof log check {} -o {})",
                    path.display(),
                    path.display(),
                    path.display()
                );
            }
            let trust = Trust::of(&common)?;
            let head = fetch_head(&common)?;
            let outcome = match trust.check(&head, None, "the log's head") {
                Ok(by) => Outcome {
                    passed: true,
                    detail: format!(
                        "the log holds {}, root {}, signed at {} {by}",
                        seals(head.size),
                        head.root.to_hex(),
                        head.timestamp
                    ),
                    head,
                },
                Err(detail) => Outcome {
                    passed: false,
                    detail,
                    head,
                },
            };
            (common, outcome, output)
        }
        Command::Check {
            old,
            output,
            entries,
            common,
        } => {
            let outcome = check(&old, entries, &common)?;
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
        write_atomically(path, &(serde_json::to_string_pretty(&outcome.head)? + "\n"))
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
                        "head kept in {}; later: pipeproof log check {} -o {}",
                        path.display(),
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

/// Writes `text` to `path` through a temporary file beside it, renamed into place: a kept
/// head is never left half written.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let tmp = dir.unwrap_or(Path::new(".")).join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&tmp, text)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn fetch_head(common: &Common) -> Result<TreeHead> {
    Client::new(&common.server)?.get("/log")?.json("GET /log")
}

/// The keys `--pubkey` names, read before anything is fetched (a wrong option is an error,
/// exit 2, not a failed proof), and the server's key hand-overs, by which a key relied on
/// passes trust to the key it was rotated to.
struct Trust {
    pinned: Option<Vec<String>>,
    handovers: Vec<KeyHandover>,
}

impl Trust {
    fn of(common: &Common) -> Result<Trust> {
        Ok(Trust {
            pinned: common.pubkey.as_deref().map(trusted_key).transpose()?,
            handovers: Vec::new(),
        })
    }

    /// Fetches the server's hand-overs (`GET /keys`). Each is checked where it is used
    /// (`keys_from` follows only those signed by both keys).
    fn with_handovers(mut self, client: &Client) -> Result<Trust> {
        let keys: Keys = client.get("/keys")?.json("GET /keys")?;
        self.handovers = keys.handovers();
        Ok(self)
    }

    /// The keys relied on: the trusted ones when --pubkey named some, else `anchor`'s.
    fn base(&self, anchor: Option<&str>) -> Vec<String> {
        match (&self.pinned, anchor) {
            (Some(keys), _) => keys.clone(),
            (None, Some(anchor)) => vec![anchor.to_string()],
            (None, None) => Vec::new(),
        }
    }

    /// The key among those relied on, or those they handed over to, that `signer` is (the
    /// first relied on when it is none of them, for the error to name); None when no key
    /// is relied on.
    fn key_for(&self, anchor: Option<&str>, signer: &str) -> Option<String> {
        let base = self.base(anchor);
        let reach = keys_from(&base, &self.handovers);
        let found = reach.iter().find(|k| k.eq_ignore_ascii_case(signer));
        found.or(base.first()).cloned()
    }

    /// The key to check an entry's seal against: one relied on (a trusted key, else
    /// `anchor`) or one of those handed over to ([`Trust::key_for`]); or a key that one of
    /// those took over from, for a seal made before that key handed over (the taker's
    /// signature on the hand-over vouches for it until then: a monitor that started after a
    /// rotation reads the entries sealed before it).
    fn seal_key(&self, anchor: &str, seal: &Seal) -> Option<String> {
        let forward = self.key_for(Some(anchor), &seal.public_key);
        if forward
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case(&seal.public_key))
        {
            return forward;
        }
        let base = self.base(Some(anchor));
        keys_before(&base, &self.handovers)
            .into_iter()
            .find(|(key, until)| {
                key.eq_ignore_ascii_case(&seal.public_key)
                    && crate::store::not_after(&seal.sealed_at, until)
            })
            .map(|(key, _)| key)
            .or(forward)
    }

    /// Checks a head's signature: by a trusted key when --pubkey named some, else by
    /// `anchor` (a key already relied on, and whose it is: the kept head's, the bundle
    /// seal's) when there is one, else by the key written in the head; or by a key one of
    /// those handed over to. Says by which.
    fn check(
        &self,
        head: &TreeHead,
        anchor: Option<(&str, &str)>,
        what: &str,
    ) -> Result<String, String> {
        let key = self.key_for(anchor.map(|(k, _)| k), &head.public_key);
        log::verify_tree_head(head, key.as_deref()).map_err(|e| {
            format!(
                "{what}: {}",
                e.to_string().trim_start_matches("verification failed: ")
            )
        })?;
        let short = |k: &str| format!("{}…", &k[..16.min(k.len())]);
        let signer = short(&head.public_key);
        let base = self.base(anchor.map(|(k, _)| k));
        let direct = base
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&head.public_key));
        Ok(match (&self.pinned, anchor, direct) {
            (Some(_), _, true) => format!("by the trusted key {signer}"),
            (Some(_), _, false) => {
                format!("by key {signer}, to which a trusted key handed over")
            }
            (None, Some((_, whose)), true) => {
                format!("by key {signer}, {whose} (pass --pubkey to check the signer)")
            }
            (None, Some((anchor, whose)), false) => format!(
                "by key {signer}, to which {whose} {} handed over (pass --pubkey to check the \
                 signer)",
                short(anchor)
            ),
            (None, None, _) => {
                format!("by key {signer} (no trusted key given: pass --pubkey to check the signer)")
            }
        })
    }
}

fn read_head(path: &Path) -> Result<TreeHead> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the head {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a log head (the JSON `pipeproof log head -o FILE` writes)",
            path.display()
        )
    })
}

/// Whether an error is the server's answer that it has no such thing (an unknown run, a
/// size or run not in the log): a failed proof, where other errors are failures to check.
fn not_in_log(e: &anyhow::Error) -> bool {
    Client::answered(e).is_some_and(|a| a.status == 404 || a.status == 422)
}

/// `pipeproof log check OLD [--entries]`.
fn check(old_path: &Path, entries: bool, common: &Common) -> Result<Outcome> {
    let trust = Trust::of(common)?;
    let old = read_head(old_path)?;
    let new = fetch_head(common)?;
    let client = Client::new(&common.server)?;
    let trust = trust.with_handovers(&client)?;
    let fail = |detail: String| Outcome {
        passed: false,
        detail,
        head: new.clone(),
    };
    if let Err(e) = trust.check(&old, None, &format!("the kept head {}", old_path.display())) {
        return Ok(fail(e));
    }
    // Without --pubkey, the kept head's key is the one relied on.
    let by = match trust.check(
        &new,
        Some((&old.public_key, "the kept head's key")),
        "the log's head now",
    ) {
        Ok(by) => by,
        Err(e) => return Ok(fail(e)),
    };
    if new.size < old.size {
        return Ok(fail(format!(
            "the log shrank: it held {} when signed at {}, and {} when signed at {}; the \
             server's history is not the one it signed",
            seals(old.size),
            old.timestamp,
            seals(new.size),
            new.timestamp
        )));
    }
    let asked = client.get(&format!(
        "/log/consistency?from={}&to={}",
        old.size, new.size
    ));
    let proof: ConsistencyProof = match asked {
        Ok(r) => r.json("GET /log/consistency")?,
        Err(e) if not_in_log(&e) => {
            return Ok(fail(format!(
                "the server gives no proof that its log of {} is the start of its log of {}: \
                 {e:#}",
                seals(old.size),
                seals(new.size)
            )));
        }
        Err(e) => return Err(e),
    };
    if let Err(e) = log::verify_consistency(&old, &new, &proof) {
        return Ok(fail(format!(
            "{}; the server's history is not the one it signed at {}",
            e.to_string().trim_start_matches("verification failed: "),
            old.timestamp
        )));
    }
    let mut detail = format!(
        "the log of {} signed at {} is the start of the log of {} signed at {} {by}: no seal \
         logged by then was changed, dropped or reordered",
        seals(old.size),
        old.timestamp,
        seals(new.size),
        new.timestamp
    );
    if entries {
        match read_entries(&client, &new, &trust, &old.public_key)? {
            Ok(()) => detail.push_str(&format!(
                "; its {} entries are seals signed by the trusted key{}, of as many runs, \
                 and make its root",
                count(new.size),
                if trust.handovers.is_empty() {
                    ""
                } else {
                    " or a key handed over to or from it"
                }
            )),
            Err(problem) => return Ok(fail(problem)),
        }
    }
    Ok(Outcome {
        passed: true,
        detail,
        head: new,
    })
}

/// Reads the first `head.size` entries of the log, with their seals, and checks what a
/// monitor can: each leaf is its seal's, each seal is signed (by a trusted key, else `key`,
/// or a key one of them handed over to) and names the run it is listed under, no run is in the log twice, and the leaves make the
/// head's root. `Err` inside: the first problem.
fn read_entries(
    client: &Client,
    head: &TreeHead,
    trust: &Trust,
    key: &str,
) -> Result<Result<(), String>> {
    let mut leaves = Vec::with_capacity(head.size as usize);
    let mut runs: std::collections::HashMap<String, u64> = Default::default();
    while (leaves.len() as u64) < head.size {
        let page: LogEntries = client
            .get(&format!("/log/entries?start={}&limit=1000", leaves.len()))?
            .json("GET /log/entries")?;
        if page.entries.is_empty() {
            return Ok(Err(format!(
                "the server lists {} of the {} entries its head signs",
                count(leaves.len() as u64),
                count(head.size)
            )));
        }
        for e in page.entries {
            let at = leaves.len() as u64;
            if at == head.size {
                break;
            }
            if e.index != at {
                return Ok(Err(format!("entry {at} is listed as entry {}", e.index)));
            }
            if log::leaf_of(&e.seal) != e.leaf {
                return Ok(Err(format!(
                    "entry {at} (run {}): its leaf is not its seal's",
                    e.run_id
                )));
            }
            if e.seal.run_id != e.run_id {
                return Ok(Err(format!(
                    "entry {at} is listed as run {} but seals run {}",
                    e.run_id, e.seal.run_id
                )));
            }
            let signer = trust.seal_key(key, &e.seal);
            if let Err(problem) = verify_seal(&e.seal, signer.as_deref()) {
                return Ok(Err(format!(
                    "entry {at} (run {}): {}",
                    e.run_id,
                    problem
                        .to_string()
                        .trim_start_matches("verification failed: ")
                )));
            }
            if let Some(first) = runs.insert(e.seal.run_id.clone(), at) {
                return Ok(Err(format!(
                    "run {} is sealed twice in the log: entries {first} and {at}",
                    e.seal.run_id
                )));
            }
            leaves.push(e.leaf);
        }
    }
    if merkle::root(&leaves) != head.root {
        return Ok(Err(
            "the entries listed do not make the root the head signs".to_string(),
        ));
    }
    Ok(Ok(()))
}

/// `pipeproof log prove BUNDLE`.
fn prove(bundle: &Path, head: Option<&Path>, common: &Common) -> Result<Outcome> {
    let trust = Trust::of(common)?;
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
    let client = Client::new(&common.server)?;
    let trust = trust.with_handovers(&client)?;
    // Without --pubkey, the head must be signed by the key that signed the seal.
    let by = match trust.check(
        &head,
        Some((&seal.public_key, "the key that signed the bundle's seal")),
        "the head",
    ) {
        Ok(by) => by,
        Err(e) => return Ok(fail(e)),
    };
    let leaf = log::leaf_of(seal);
    let run = &seal.run_id;
    let reply = client.get(&format!(
        "/log/inclusion?run={}&size={}",
        segment(run),
        head.size
    ));
    let found: LogInclusion = match reply {
        Ok(r) => r.json("GET /log/inclusion")?,
        Err(e) if not_in_log(&e) => {
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
                "the seal of run {run} is entry {} of the log of {} signed at {} {by}",
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
