//! The two checks the verify page makes, run alike in its worker and, when no worker can be
//! started, on the page itself: a bundle file through core's `verify_read`, and a data file
//! against a bundle's records through core's `verify`. Their results cross from the worker to
//! the page as JSON plus the Arrow IPC files of the detail tables, which this module writes and
//! reads. Verifying is core's alone: nothing here decides whether a check passes, except that
//! a file which stopped the worker (a decoder panicked on it, see [`Stopped`]) fails as an
//! unreadable one.

use arrow_array::RecordBatch;
use pipeproof_core::DiffSummary;
use pipeproof_core::bundle::{
    Bundle, Check, DataClaim, Details, Manifest, VerifyReport, batch_from_ipc, batch_to_ipc,
    verify, verify_read,
};
use pipeproof_core::stats::ColumnStats;
use serde::{Deserialize, Serialize};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen::JsCast;

/// Milliseconds since the page (or the worker) started.
#[cfg(target_arch = "wasm32")]
pub fn now() -> f64 {
    js_sys::Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
        .map_or(0.0, |p| p.now())
}

/// No clock outside the browser (the native unit tests).
#[cfg(not(target_arch = "wasm32"))]
pub fn now() -> f64 {
    0.0
}

/// A verified bundle: the report, and what the pages show of the bundle when it could be read.
#[derive(Debug)]
pub struct Verified {
    /// Every check core made.
    pub report: VerifyReport,
    /// The bundle, for display, when it could be read.
    pub shown: Option<Shown>,
    /// How long core's verification took, in milliseconds (reading the file excluded).
    pub millis: f64,
}

/// What the pages show of a bundle: its manifest and each step's statistics, diff summary and
/// details; not the row tables, which only verification needs (they are most of the file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shown {
    /// The manifest: run, records, seal.
    pub manifest: Manifest,
    /// Each step, in record order.
    pub steps: Vec<ShownStep>,
}

/// One step of [`Shown`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShownStep {
    /// Column statistics.
    pub stats: Vec<ColumnStats>,
    /// The diff summary against the previous step.
    pub diff: Option<DiffSummary>,
    /// The diff details (sent beside the JSON, as Arrow IPC).
    #[serde(skip)]
    pub details: Option<Details>,
}

impl Shown {
    fn of(bundle: Bundle) -> Shown {
        Shown {
            manifest: bundle.manifest,
            steps: bundle
                .steps
                .into_iter()
                .map(|s| ShownStep {
                    stats: s.stats,
                    diff: s.diff,
                    details: s.details,
                })
                .collect(),
        }
    }
}

/// Verifies a bundle file with core: every check of `verify_bytes`, and the bundle it read.
pub fn verify_bundle(bytes: &[u8], trusted_key: Option<&str>) -> Verified {
    let start = now();
    let (report, bundle) = verify_read(bytes, trusted_key, None);
    let millis = now() - start;
    Verified {
        report,
        shown: bundle.map(Shown::of),
        millis,
    }
}

/// Whether a data file (Parquet, CSV or Arrow, sniffed) is exactly the output of a step of
/// the bundle whose manifest this is (`step`: a named one, or any). Core's `verify` makes the
/// check; it is given the manifest alone, since the data check needs only the records, and its
/// own result is the `data` check.
pub fn check_data(manifest: &Manifest, bytes: Vec<u8>, step: Option<&str>) -> Check {
    let table = match pipeproof_core::decode::decode_sniffed(bytes::Bytes::from(bytes)) {
        Ok((_, t)) => t,
        Err(e) => return unreadable_data(&e),
    };
    let records_only = Bundle {
        manifest: manifest.clone(),
        steps: Vec::new(),
    };
    let report = verify(&records_only, None, Some(DataClaim { step, data: &table }));
    report
        .checks
        .into_iter()
        .rfind(|c| c.name == "data")
        .unwrap_or(Check {
            name: "data".into(),
            step: None,
            passed: false,
            detail: "the data was not checked".into(),
        })
}

/// Why a worker stopped on a file before it could answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Stopped {
    /// A decoder panicked on the file (natively, core turns such a panic into a decode error;
    /// in the browser, panics abort): what it tripped on.
    Panicked(String),
    /// The worker died without a word (it ran out of memory, say): the browser's error.
    Died(String),
}

impl Stopped {
    fn why(&self) -> String {
        match self {
            Stopped::Panicked(what) => format!("the input is malformed: {what}"),
            Stopped::Died(error) => format!(
                "reading it stopped the verifier with no message ({error}): the file may be \
                 damaged, or too large for this tab's memory"
            ),
        }
    }
}

/// The report on a bundle file that stopped its worker: the `bundle` check fails, as it does
/// for any bundle that cannot be read (and natively for this one), saying why.
pub fn stopped_on_bundle(stopped: &Stopped, millis: f64) -> Verified {
    Verified {
        report: VerifyReport {
            checks: vec![Check {
                name: "bundle".into(),
                step: None,
                passed: false,
                detail: format!("cannot read the bundle: {}", stopped.why()),
            }],
        },
        shown: None,
        millis,
    }
}

/// The `data` check of a data file that stopped its worker, failed as for any file that
/// cannot be read.
pub fn stopped_on_data(stopped: &Stopped) -> Check {
    unreadable_data(&stopped.why())
}

fn unreadable_data(why: &dyn std::fmt::Display) -> Check {
    Check {
        name: "data".into(),
        step: None,
        passed: false,
        detail: format!("the file cannot be read as Parquet, CSV or Arrow IPC: {why}"),
    }
}

/// A [`Verified`] as it crosses between threads: JSON, and the Arrow IPC files of the detail
/// tables (added, removed, changed) of each step that has details, in step order.
#[derive(Debug)]
pub struct Wire {
    /// The report, the manifest and the steps' statistics and diff summaries.
    pub head: String,
    /// The detail tables.
    pub tables: Vec<Vec<u8>>,
}

#[derive(Serialize)]
struct HeadOut<'a> {
    report: &'a VerifyReport,
    shown: Option<&'a Shown>,
    millis: f64,
    details: Vec<bool>,
}

#[derive(Deserialize)]
struct HeadIn {
    report: VerifyReport,
    shown: Option<Shown>,
    millis: f64,
    details: Vec<bool>,
}

impl Verified {
    /// Written for the page.
    pub fn to_wire(&self) -> Result<Wire, String> {
        let steps = self.shown.as_ref().map_or(&[][..], |s| &s.steps[..]);
        let mut tables = Vec::new();
        for d in steps.iter().filter_map(|s| s.details.as_ref()) {
            for batch in [&d.added, &d.removed, &d.changed] {
                tables.push(batch_to_ipc(batch).map_err(|e| e.to_string())?);
            }
        }
        let head = serde_json::to_string(&HeadOut {
            report: &self.report,
            shown: self.shown.as_ref(),
            millis: self.millis,
            details: steps.iter().map(|s| s.details.is_some()).collect(),
        })
        .map_err(|e| e.to_string())?;
        Ok(Wire { head, tables })
    }

    /// Read back on the page.
    pub fn from_wire(wire: Wire) -> Result<Verified, String> {
        let head: HeadIn = serde_json::from_str(&wire.head).map_err(|e| e.to_string())?;
        let mut shown = head.shown;
        let steps = shown.as_mut().map_or(&mut [][..], |s| &mut s.steps[..]);
        if steps.len() != head.details.len()
            || wire.tables.len() != 3 * head.details.iter().filter(|d| **d).count()
        {
            return Err("the detail tables do not match the steps".into());
        }
        let mut tables = wire.tables.into_iter().map(batch_from_ipc);
        let mut next = || -> Result<RecordBatch, String> {
            tables
                .next()
                .ok_or("a detail table is missing")?
                .map_err(|e| e.to_string())
        };
        for (step, has) in steps.iter_mut().zip(head.details) {
            if has {
                step.details = Some(Details {
                    added: next()?,
                    removed: next()?,
                    changed: next()?,
                });
            }
        }
        Ok(Verified {
            report: head.report,
            shown,
            millis: head.millis,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden bundle of the spec, verified, then written and read back as it crosses from
    /// the worker to the page: the same report, manifest, steps and detail tables.
    #[test]
    fn a_verified_bundle_crosses_to_the_page_unchanged() {
        let bytes = include_bytes!("../../docs/spec/vectors/bundle-v1/bundle.zip");
        let (report, bundle) = verify_read(bytes, None, None);
        let bundle = bundle.expect("the golden bundle reads");
        assert!(report.passed(), "{report:?}");
        let verified = verify_bundle(bytes, None);
        let back = Verified::from_wire(verified.to_wire().unwrap()).unwrap();
        assert_eq!(back.report, report);
        let shown = back.shown.expect("the bundle is shown");
        assert_eq!(shown.manifest, bundle.manifest);
        assert_eq!(shown.steps.len(), bundle.steps.len());
        assert!(bundle.steps.iter().any(|s| s.details.is_some()));
        for (got, want) in shown.steps.iter().zip(&bundle.steps) {
            assert_eq!(got.stats, want.stats);
            assert_eq!(got.diff, want.diff);
            match (&got.details, &want.details) {
                (Some(g), Some(w)) => {
                    assert_eq!(g.added, w.added);
                    assert_eq!(g.removed, w.removed);
                    assert_eq!(g.changed, w.changed);
                }
                (None, None) => {}
                _ => panic!("details lost or made up"),
            }
        }
    }

    /// A bundle whose details of a step were redacted crosses with no tables for that step,
    /// the others' tables in place, and the manifest's redactions; it passes, with its
    /// `redactions` check.
    #[test]
    fn a_redacted_bundle_crosses_without_the_redacted_details() {
        let golden = include_bytes!("../../docs/spec/vectors/bundle-v1/bundle.zip");
        let mut bundle = Bundle::read(golden).expect("the golden bundle reads");
        let with: Vec<usize> = (0..bundle.steps.len())
            .filter(|&i| bundle.steps[i].details.is_some())
            .collect();
        let [redacted, ..] = with[..] else {
            panic!("the golden bundle has details")
        };
        bundle.steps[redacted].details = None;
        bundle.manifest.redacted = vec![pipeproof_core::bundle::RedactedStep {
            step: redacted as u64,
            at: "2026-11-28T08:00:00.000Z".into(),
            reason: "erasure request 7".into(),
        }];
        bundle.manifest.spec = pipeproof_core::bundle::Manifest::spec_for(
            &bundle.manifest.redacted,
            &bundle.manifest.statistics_redacted,
        )
        .into();
        let verified = verify_bundle(&bundle.write().unwrap(), None);
        assert!(verified.report.passed(), "{:?}", verified.report);
        assert!(
            verified
                .report
                .checks
                .iter()
                .any(|c| c.name == "redactions" && c.passed),
            "{:?}",
            verified.report
        );
        let wire = verified.to_wire().unwrap();
        assert_eq!(wire.tables.len(), 3 * (with.len() - 1));
        let back = Verified::from_wire(wire).unwrap();
        assert_eq!(back.report, verified.report);
        let shown = back.shown.expect("the bundle is shown");
        assert_eq!(shown.manifest.redacted, bundle.manifest.redacted);
        for (i, step) in shown.steps.iter().enumerate() {
            let kept = with.contains(&i) && i != redacted;
            assert_eq!(step.details.is_some(), kept, "step {i}");
        }
        assert!(shown.steps[redacted].diff.is_some(), "the counts stay");
    }

    /// A bundle whose statistics of a step were redacted crosses with no statistics for that
    /// step, the others' in place, and the manifest's list of them; it passes.
    #[test]
    fn a_bundle_without_a_steps_statistics_crosses_without_them() {
        let golden = include_bytes!("../../docs/spec/vectors/bundle-v1/bundle.zip");
        let mut bundle = Bundle::read(golden).expect("the golden bundle reads");
        assert!(bundle.steps.iter().all(|s| !s.stats.is_empty()));
        bundle.steps[0].stats.clear();
        bundle.manifest.statistics_redacted = vec![pipeproof_core::bundle::RedactedStep {
            step: 0,
            at: "2026-11-28T08:00:00.000Z".into(),
            reason: "erasure request 8".into(),
        }];
        bundle.manifest.spec = pipeproof_core::bundle::Manifest::spec_for(
            &bundle.manifest.redacted,
            &bundle.manifest.statistics_redacted,
        )
        .into();
        let verified = verify_bundle(&bundle.write().unwrap(), None);
        assert!(verified.report.passed(), "{:?}", verified.report);
        let back = Verified::from_wire(verified.to_wire().unwrap()).unwrap();
        let shown = back.shown.expect("the bundle is shown");
        assert_eq!(
            shown.manifest.statistics_redacted,
            bundle.manifest.statistics_redacted
        );
        assert!(shown.steps[0].stats.is_empty());
        assert!(shown.steps[1..].iter().all(|s| !s.stats.is_empty()));
    }

    #[test]
    fn an_unreadable_bundle_crosses_with_its_report_alone() {
        let verified = verify_bundle(b"not a zip", None);
        assert!(!verified.report.passed());
        let back = Verified::from_wire(verified.to_wire().unwrap()).unwrap();
        assert_eq!(back.report, verified.report);
        assert!(back.shown.is_none());
    }

    /// A bundle that stopped the worker reads as natively, where the decoder's panic is
    /// caught: the bundle check fails, naming what the decoder tripped on.
    #[test]
    fn a_bundle_that_stopped_the_worker_fails_its_bundle_check() {
        let what = "slice offset=9 length=8 selflen=4";
        let v = stopped_on_bundle(&Stopped::Panicked(what.into()), 3.0);
        assert!(!v.report.passed());
        assert!(v.shown.is_none());
        let [check] = &v.report.checks[..] else {
            panic!("one check: {:?}", v.report)
        };
        assert_eq!((check.name.as_str(), check.passed), ("bundle", false));
        assert_eq!(
            check.detail,
            format!("cannot read the bundle: the input is malformed: {what}")
        );
        let back = Verified::from_wire(v.to_wire().unwrap()).unwrap();
        assert_eq!(back.report, v.report);
        let data = stopped_on_data(&Stopped::Died("RuntimeError: unreachable".into()));
        assert_eq!((data.name.as_str(), data.passed), ("data", false));
        assert!(data.detail.contains("(RuntimeError: unreachable)"));
    }

    #[test]
    fn tables_that_do_not_match_the_steps_are_refused() {
        let bytes = include_bytes!("../../docs/spec/vectors/bundle-v1/bundle.zip");
        let mut wire = verify_bundle(bytes, None).to_wire().unwrap();
        wire.tables.pop();
        assert!(Verified::from_wire(wire).is_err());
    }
}
