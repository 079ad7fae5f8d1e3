//! `pipeproof verify BUNDLE`: re-checks an exported bundle offline with core alone
//! (`core::bundle::verify_stream`, reading the file a step at a time), optionally against a
//! trusted public key and a data file.
//! This module only reads the inputs and prints the report; every check lives in core.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, bail};
use pipeproof_core::api::Keys;
use pipeproof_core::bundle::{Check, DataClaim, Manifest, VerifyReport, verify_stream};
use pipeproof_core::sign::{parse_public_key, pick_key};

use super::{FormatArg, Output, input};
use crate::file_at::FileAt;
use crate::outln;
use crate::style::{added, bold, dim, removed};

/// Arguments of `pipeproof verify`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle file (`GET /api/v1/runs/{id}/bundle`, or `pipeproof export`).
    bundle: PathBuf,
    /// The public key you trust to have signed the run: 64 hex digits, or a file holding
    /// them or the JSON of `GET /api/v1/keys`. Without it the signature is checked against
    /// the key written in the bundle, which proves integrity but not origin.
    #[arg(long, value_name = "HEX|FILE")]
    pubkey: Option<String>,
    /// A data file (Parquet, CSV, Arrow) to prove to be exactly one step's output.
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// The step the data file should be: by name (any of the steps so named), or by index
    /// (0 for the first) when no step has that name; without it, verify finds which step's
    /// output the file is, if any.
    #[arg(long, value_name = "NAME|INDEX", requires = "data")]
    step: Option<String>,
    /// Read the data file as this format instead of detecting it.
    #[arg(long, value_enum, requires = "data")]
    data_format: Option<FormatArg>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    format: Output,
}

/// Runs `pipeproof verify`: exit 0 when every check passed, 1 when one failed (a file that
/// is damaged, or not a bundle at all, fails the `bundle` check: it was read, and it is not
/// a valid bundle), 2 when it could not be checked (the file cannot be read, or an option is
/// wrong).
pub fn run(args: Args) -> Result<ExitCode> {
    let cannot = || format!("cannot read the bundle {}", args.bundle.display());
    let file = std::fs::File::open(&args.bundle).with_context(cannot)?;
    if file.metadata().with_context(cannot)?.is_file() {
        return verify_and_report(FileAt::new(file), &args);
    }
    // A pipe (`<(curl ...)`, /dev/stdin) cannot be read at two places: read it whole.
    let mut bytes = Vec::new();
    (&file).read_to_end(&mut bytes).with_context(cannot)?;
    verify_and_report(Cursor::new(&bytes[..]), &args)
}

/// A reader that keeps the first error its reads met (a disk's EIO, say), shared by its
/// clones: the checks see any failed read as a damaged bundle, but a bundle that could not
/// be read was not checked.
#[derive(Clone)]
struct Watched<R> {
    inner: R,
    error: Arc<OnceLock<String>>,
}

impl<R> Watched<R> {
    fn new(inner: R) -> Watched<R> {
        Watched {
            inner,
            error: Arc::default(),
        }
    }

    /// Keeps a read's error if it is the device's. An offset the bundle gives that no file
    /// has (past 2^63: EINVAL) is the bundle's fault, as are the errors of its contents:
    /// those fail the checks, they do not make the bundle unreadable.
    fn note<T>(&self, r: std::io::Result<T>) -> std::io::Result<T> {
        use std::io::ErrorKind::{Interrupted, InvalidData, InvalidInput, UnexpectedEof};
        if let Err(e) = &r
            && !matches!(
                e.kind(),
                Interrupted | InvalidInput | InvalidData | UnexpectedEof
            )
        {
            let _ = self.error.set(e.to_string());
        }
        r
    }
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = self.inner.read(buf);
        self.note(r)
    }
}

impl<R: Seek> Seek for Watched<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let r = self.inner.seek(to);
        self.note(r)
    }
}

/// Verifies the bundle in `bundle` (clones read at positions of their own) and prints the
/// report; an error when a read of it failed.
fn verify_and_report<R: Read + Seek + Clone>(bundle: R, args: &Args) -> Result<ExitCode> {
    let bundle = Watched::new(bundle);
    let unread = |bundle: &Watched<R>| match bundle.error.get() {
        Some(e) => Err(anyhow::anyhow!(
            "cannot read the bundle {}: {e}; it was not checked (copy it to a sound disk and \
             verify it again)",
            args.bundle.display()
        )),
        None => Ok(()),
    };
    // For what the report prints besides the checks; the checks read it again.
    let manifest = Manifest::read_from(bundle.clone()).ok();
    let trusted = args.pubkey.as_deref().map(trusted_key).transpose()?;
    let sealed_by = manifest.as_ref().and_then(|m| m.seal.as_ref());
    let trusted = trusted
        .as_deref()
        .and_then(|keys| pick_key(keys, sealed_by.map(|s| s.public_key.as_str())).cloned());
    let data = match &args.data {
        Some(path) => Some(input(path, args.data_format)?),
        None => None,
    };
    let report = verify_stream(
        bundle.clone(),
        trusted.as_deref(),
        data.as_ref().map(|d| DataClaim {
            step: args.step.as_deref(),
            data: d,
        }),
    );
    unread(&bundle)?;
    let mut out = String::new();
    match args.format {
        Output::Json => {
            let doc = serde_json::json!({
                "bundle": args.bundle,
                "passed": report.passed(),
                "trusted_key": trusted,
                "data": args.data,
                "checks": report.checks,
            });
            outln!(out, "{}", serde_json::to_string_pretty(&doc)?);
        }
        Output::Table => print_table(
            &mut out,
            args,
            manifest.as_ref(),
            trusted.as_deref(),
            &report,
        ),
    }
    crate::style::emit(&out)?;
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The trusted keys named by `--pubkey`: hex digits, or a file with hex digits or the JSON
/// of `GET /api/v1/keys`.
pub(super) fn trusted_key(arg: &str) -> Result<Vec<String>> {
    let arg = arg.trim();
    if arg.len() == 64 && arg.bytes().all(|b| b.is_ascii_hexdigit()) {
        parse_public_key(arg)?;
        return Ok(vec![arg.to_ascii_lowercase()]);
    }
    let path = Path::new(arg);
    if !path.exists() {
        bail!(
            "--pubkey `{arg}` is neither 64 hex digits nor a file: pass the server's Ed25519 \
             public key (`public_key` in GET /api/v1/keys) or a file holding it"
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the public key file {}", path.display()))?;
    let text = text.trim();
    let keys = if text.starts_with('{') {
        let keys: Keys = serde_json::from_str(text).with_context(|| {
            format!(
                "{} is JSON but not the reply of GET /api/v1/keys",
                path.display()
            )
        })?;
        keys.keys.into_iter().map(|k| k.public_key).collect()
    } else {
        vec![text.to_string()]
    };
    if keys.is_empty() {
        bail!("{} lists no public key", path.display());
    }
    for k in &keys {
        parse_public_key(k).with_context(|| format!("in {}", path.display()))?;
    }
    Ok(keys.into_iter().map(|k| k.to_ascii_lowercase()).collect())
}

fn print_table(
    out: &mut String,
    args: &Args,
    manifest: Option<&Manifest>,
    trusted: Option<&str>,
    report: &VerifyReport,
) {
    outln!(
        out,
        "{} {}",
        bold("pipeproof verify"),
        args.bundle.display()
    );
    if let Some(m) = manifest {
        let run = &m.run;
        outln!(
            out,
            "{}",
            dim(&format!(
                "run {} · pipeline {} · {} · {}",
                run.id,
                run.pipeline,
                crate::style::counted(m.records.len() as u64, "step", "steps"),
                run.status
            ))
        );
    }
    out.push('\n');
    let name_w = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    let step_w = report
        .checks
        .iter()
        .map(|c| c.step.as_deref().map_or(0, str::len))
        .max()
        .unwrap_or(0);
    for c in &report.checks {
        outln!(out, "{}", check_line(c, name_w, step_w));
    }
    out.push('\n');
    let signature_ok = report
        .checks
        .iter()
        .any(|c| c.name == "signature" && c.passed);
    if trusted.is_none() && signature_ok {
        outln!(
            out,
            "{} the signature was checked against the public key written in the bundle itself:",
            bold("note:")
        );
        outln!(
            out,
            "      this proves the bundle is unchanged since it was signed, not who signed it."
        );
        outln!(
            out,
            "      Pass --pubkey with the server's key (GET /api/v1/keys) to prove its origin."
        );
    }
    let failed: Vec<&Check> = report.checks.iter().filter(|c| !c.passed).collect();
    if report.passed() {
        outln!(
            out,
            "{} all {} checks passed",
            added("verified:"),
            report.checks.len()
        );
    } else {
        let names: Vec<String> = failed
            .iter()
            .map(|c| match &c.step {
                Some(s) => format!("{} (step {s})", c.name),
                None => c.name.clone(),
            })
            .collect();
        outln!(
            out,
            "{} {} of {} checks failed: {}",
            removed("NOT VERIFIED:"),
            failed.len(),
            report.checks.len(),
            names.join(", ")
        );
    }
}

fn check_line(c: &Check, name_w: usize, step_w: usize) -> String {
    let mark = if c.passed {
        added("pass")
    } else {
        removed("FAIL")
    };
    let step = c.step.as_deref().unwrap_or("");
    let detail = one_line(&c.detail);
    let detail = if c.passed { dim(&detail) } else { detail };
    format!("  {mark}  {:name_w$}  {step:step_w$}  {detail}", c.name)
        .trim_end()
        .to_string()
}

/// A check's detail on one line of the report. Its line breaks and tabs (a decoder's error
/// that says where it was, a line under another) become one space; any other control
/// character is shown escaped: a bundle's own text (a step's name, a redaction's reason) is
/// shown, never obeyed by the terminal.
fn one_line(detail: &str) -> String {
    let mut line = String::with_capacity(detail.len());
    let mut chars = detail.chars().peekable();
    while let Some(ch) = chars.next() {
        if matches!(ch, '\n' | '\r' | '\t') {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            if !line.ends_with(' ') {
                line.push(' ');
            }
        } else if ch.is_control() {
            line.extend(ch.escape_default());
        } else {
            line.push(ch);
        }
    }
    line.truncate(line.trim_end().len());
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden bundle, whose reads fail past `bad_from` as a failing disk's would.
    #[derive(Clone)]
    struct FailingDisk {
        bytes: Arc<Vec<u8>>,
        pos: u64,
        bad_from: u64,
        errno: i32,
    }

    impl Read for FailingDisk {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.pos + buf.len().min(1) as u64 > self.bad_from {
                return Err(std::io::Error::from_raw_os_error(self.errno));
            }
            let mut c = Cursor::new(&self.bytes[..]);
            c.set_position(self.pos);
            let end = buf.len().min((self.bad_from - self.pos) as usize);
            let n = c.read(&mut buf[..end])?;
            self.pos += n as u64;
            Ok(n)
        }
    }

    impl Seek for FailingDisk {
        fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
            let mut c = Cursor::new(&self.bytes[..]);
            c.set_position(self.pos);
            self.pos = c.seek(to)?;
            Ok(self.pos)
        }
    }

    fn args() -> Args {
        Args {
            bundle: "bundle.zip".into(),
            pubkey: None,
            data: None,
            step: None,
            data_format: None,
            format: Output::Json,
        }
    }

    #[test]
    fn a_bundles_text_cannot_steer_the_terminal() {
        let c = Check {
            name: "diff details".into(),
            step: Some("1 clean".into()),
            passed: false,
            detail: "ok\u{1b}[2A\u{1b}[J  pass  everything\nfine".into(),
        };
        let line = check_line(&c, 12, 8);
        assert!(!line.chars().any(|ch| ch.is_control()), "{line:?}");
        assert!(
            line.ends_with("ok\\u{1b}[2A\\u{1b}[J  pass  everything fine"),
            "{line:?}"
        );
    }

    #[test]
    fn a_detail_of_several_lines_is_shown_on_one() {
        // An Arrow decoder's error, as a flipped byte in a bundle's member gives it.
        let detail = "changed.arrow: the footer is malformed: Range [65788, 65792) is out of \
                      bounds.\n\t while verifying union variant `Type::Int` at position 228\n\t\
                      while verifying table field `type_` at position 228\r\n";
        let c = Check {
            name: "bundle".into(),
            step: None,
            passed: false,
            detail: detail.into(),
        };
        assert_eq!(
            check_line(&c, 6, 0),
            "  FAIL  bundle    changed.arrow: the footer is malformed: Range [65788, 65792) is out of bounds. \
             while verifying union variant `Type::Int` at position 228 while verifying table \
             field `type_` at position 228"
        );
    }

    #[test]
    fn a_bundle_that_cannot_be_read_is_an_error_not_a_failed_check() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/spec/vectors/bundle-v1/bundle.zip"
        );
        let bytes = Arc::new(std::fs::read(path).unwrap());
        let disk = |bad_from: u64| FailingDisk {
            bytes: Arc::clone(&bytes),
            pos: 0,
            bad_from,
            errno: 5,
        };
        let sound = verify_and_report(disk(u64::MAX), &args()).unwrap();
        assert_eq!(sound, ExitCode::SUCCESS);
        // Past the start (the members), in the middle, and at the end (the directory).
        let len = bytes.len() as u64;
        for bad_from in [100, len / 2, len - 30] {
            let e = verify_and_report(disk(bad_from), &args()).unwrap_err();
            let e = format!("{e:#}");
            assert!(
                e.starts_with("cannot read the bundle bundle.zip: ")
                    && e.contains("os error 5")
                    && e.contains("it was not checked"),
                "{e}"
            );
        }
        // A read the bundle itself makes fail (an offset past 2^63: EINVAL) fails the
        // checks: the bundle was read, and is not a valid one.
        let crafted = FailingDisk {
            errno: 22,
            ..disk(len / 2)
        };
        assert_eq!(
            verify_and_report(crafted, &args()).unwrap(),
            ExitCode::from(1)
        );
    }
}
