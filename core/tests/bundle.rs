//! Bundles: a run built step by step, sealed, written and verified; and every kind of
//! tampering detected, down to any single flipped byte.

#[macro_use]
mod common;

use std::sync::Arc;

use arrow_array::*;
use common::table;
use pipeproof_core::bundle::{
    BUNDLE_SPEC_V2, BUNDLE_SPEC_V3, Bundle, BundleStep, DataClaim, RedactedStep, RunInfo,
    StepContext, build_step, verify, verify_bytes,
};
use pipeproof_core::diff::DiffConfig;
use pipeproof_core::sign::KeyPair;
use pipeproof_core::{Table, record::StepRecord};

fn steps() -> Vec<(&'static str, Table)> {
    let t = |ids: Vec<i64>, amounts: Vec<f64>, names: Vec<&str>| {
        table(vec![
            ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
            ("amount", Arc::new(Float64Array::from(amounts)) as ArrayRef),
            ("name", Arc::new(StringArray::from(names)) as ArrayRef),
        ])
    };
    vec![
        (
            "load",
            t(
                vec![1, 2, 3, 4],
                vec![1.0, 2.0, 3.0, 4.0],
                vec!["a", "b", "c", "d"],
            ),
        ),
        (
            "clean",
            t(
                vec![4, 2, 3, 5],
                vec![4.0, 2.5, 3.0, 5.0],
                vec!["d", "b", "c", "e"],
            ),
        ),
        (
            "enrich",
            t(
                vec![4, 2, 3, 5],
                vec![4.0, 2.5, 3.0, 5.0],
                vec!["D", "b", "c", "e"],
            ),
        ),
    ]
}

fn run_info() -> RunInfo {
    RunInfo {
        id: "run-1".into(),
        pipeline: "daily".into(),
        labels: Default::default(),
        code_version: Some("abc123".into()),
        params: serde_json::json!({}),
        status: "sealed".into(),
        error: None,
        created_at: "2026-11-24T10:00:00Z".into(),
        sealed_at: Some("2026-11-24T10:05:00Z".into()),
    }
}

fn key() -> KeyPair {
    KeyPair::from_bytes(&[42; 32])
}

fn make_bundle() -> Bundle {
    make_bundle_with(|_| DiffConfig::keyed(["id"]))
}

/// A bundle whose step `i` is diffed with `config(i)`.
fn make_bundle_with(config: impl Fn(usize) -> DiffConfig) -> Bundle {
    bundle_of(steps(), config)
}

/// A bundle of these steps, step `i` diffed with `config(i)`.
fn bundle_of(data: Vec<(&str, Table)>, config: impl Fn(usize) -> DiffConfig) -> Bundle {
    let run = run_info();
    let mut records: Vec<StepRecord> = Vec::new();
    let mut stored: Vec<BundleStep> = Vec::new();
    for (i, (name, t)) in data.iter().enumerate() {
        let previous = (i > 0).then(|| {
            (
                &records[i - 1],
                &data[i - 1].1 as &dyn pipeproof_core::BatchSource,
            )
        });
        let built = build_step(
            t,
            StepContext {
                run: &run,
                index: i as u64,
                step: name,
                created_at: "2026-11-24T10:01:00Z",
                params: serde_json::json!({
                    "key": config(i).key,
                    "ignore_columns": config(i).ignore_columns,
                }),
                config: &config(i),
                previous,
                previous_stored: (i > 0).then(|| {
                    let s: &pipeproof_core::bundle::BundleStep = &stored[i - 1];
                    (s.row_table.clone(), s.stats.clone())
                }),
            },
        )
        .unwrap();
        records.push(built.record);
        stored.push(built.stored);
    }
    let head = records.last().unwrap().hash();
    let seal = key().seal(&run, records.len() as u64, head).unwrap();
    Bundle {
        manifest: pipeproof_core::bundle::Manifest {
            spec: pipeproof_core::bundle::BUNDLE_SPEC.into(),
            run,
            records,
            seal: Some(seal),
            redacted: Vec::new(),
            statistics_redacted: Vec::new(),
        },
        steps: stored,
    }
}

/// A bundle whose step 1's details were redacted.
fn redacted_bundle() -> Bundle {
    let mut b = make_bundle();
    b.steps[1].details = None;
    b.manifest.redacted = vec![RedactedStep {
        step: 1,
        at: "2026-11-25T09:00:00.000Z".into(),
        reason: "erasure request 42".into(),
    }];
    b.manifest.spec = BUNDLE_SPEC_V2.into();
    b
}

/// [`redacted_bundle`] with the statistics of steps 0 and 1 redacted too (an erasure):
/// theirs, and the diff summaries that hold them (of steps 1 and 2) are not in the bundle.
fn statistics_redacted_bundle() -> Bundle {
    let mut b = redacted_bundle();
    for i in [0, 1] {
        b.steps[i].stats.clear();
        b.steps[i + 1].diff = None;
    }
    b.manifest.statistics_redacted = [0, 1]
        .map(|step| RedactedStep {
            step,
            at: "2026-11-28T09:00:00.000Z".into(),
            reason: "erasure request 43".into(),
        })
        .into();
    b.manifest.spec = BUNDLE_SPEC_V3.into();
    b
}

/// The bundle's members, each passed through `f` (which drops one by giving `None`), zipped
/// again as the bundle was: stored, in the same order.
fn rezip(bytes: &[u8], f: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..zip.len() {
        let mut member = zip.by_index(i).unwrap();
        let name = member.name().unwrap().to_string();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut member, &mut content).unwrap();
        if let Some(content) = f(&name, content) {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            out.start_file(name, options).unwrap();
            std::io::Write::write_all(&mut out, &content).unwrap();
        }
    }
    out.finish().unwrap().into_inner()
}

fn verified(b: &Bundle) -> pipeproof_core::bundle::VerifyReport {
    verify_bytes(&b.write().unwrap(), Some(&key().public_hex()), None)
}

fn failed(r: &pipeproof_core::bundle::VerifyReport) -> Vec<String> {
    r.checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| {
            format!(
                "{} [{}]: {}",
                c.name,
                c.step.clone().unwrap_or_default(),
                c.detail
            )
        })
        .collect()
}

both! {
    fn a_bundle_whose_details_were_redacted_verifies_and_says_so() {
        let b = redacted_bundle();
        assert!(b.steps.len() >= 3);
        let bytes = b.write().unwrap();
        let r = verified(&b);
        assert_eq!(failed(&r), Vec::<String>::new());
        let details = |r: &pipeproof_core::bundle::VerifyReport, step: &str| {
            r.checks
                .iter()
                .find(|c| c.name == "diff details" && c.step.as_deref() == Some(step))
                .unwrap()
                .detail
                .clone()
        };
        let step1 = format!("1 {}", b.manifest.records[1].step);
        assert_eq!(
            details(&r, &step1),
            "not in the bundle: redacted at 2026-11-25T09:00:00.000Z (erasure request 42), the \
             manifest says; the record keeps their hash"
        );
        let step2 = format!("2 {}", b.manifest.records[2].step);
        assert_eq!(details(&r, &step2), "details match the record");
        let listed = r.checks.iter().find(|c| c.name == "redactions").unwrap();
        assert!(listed.passed);
        assert!(listed.detail.contains("(it is not signed) that the diff details of step 1 were removed"));
        // The list is read back, and the diff counts are still checked from the row tables.
        assert_eq!(Bundle::read(&bytes).unwrap().manifest.redacted, b.manifest.redacted);
        assert!(r.checks.iter().any(|c| c.name == "diff counts"
            && c.step.as_deref() == Some(step1.as_str())
            && c.passed));
        // A bundle with no redaction has no such check, and its manifest no such member.
        let plain = make_bundle();
        assert!(!verified(&plain).checks.iter().any(|c| c.name == "redactions"));
        let manifest = |bytes: &[u8]| {
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut zip.by_name("manifest.json").unwrap(), &mut text)
                .unwrap();
            serde_json::from_str::<serde_json::Value>(&text).unwrap()
        };
        let plain = manifest(&plain.write().unwrap());
        assert_eq!((plain.get("redacted"), &plain["spec"]), (None, &serde_json::json!("pipeproof-bundle-v1")));
        let listed = manifest(&bytes);
        assert_eq!(listed["spec"], "pipeproof-bundle-v2");
        assert_eq!(listed["redacted"][0]["reason"], "erasure request 42");
    }

    fn details_missing_or_kept_against_the_manifest_fail() {
        // Removed without the manifest saying so.
        let mut stripped = redacted_bundle();
        stripped.manifest.redacted.clear();
        stripped.manifest.spec = pipeproof_core::bundle::BUNDLE_SPEC.into();
        let f = failed(&verified(&stripped));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].contains("disagree on whether there are details"), "{f:?}");
        // Listed as redacted, yet there.
        let mut kept = make_bundle();
        kept.manifest.redacted = redacted_bundle().manifest.redacted;
        kept.manifest.spec = BUNDLE_SPEC_V2.into();
        let f = failed(&verified(&kept));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].contains("yet the bundle holds them"), "{f:?}");
        // A step without details (the first), one past the last, twice, out of order.
        let entry = |step: u64| RedactedStep {
            step,
            at: "2026-11-25T09:00:00.000Z".into(),
            reason: "r".into(),
        };
        let n = make_bundle().steps.len() as u64;
        // Redactions listed under v1, none under v2; a reason that would steer a terminal.
        let mut v1 = redacted_bundle();
        v1.manifest.spec = pipeproof_core::bundle::BUNDLE_SPEC.into();
        let f = failed(&verified(&v1));
        assert!(f.iter().any(|f| f.starts_with("redactions [") && f.contains("is pipeproof-bundle-v1 but lists 1")), "{f:?}");
        let mut v2 = make_bundle();
        v2.manifest.spec = BUNDLE_SPEC_V2.into();
        let f = failed(&verified(&v2));
        assert!(f.iter().any(|f| f.contains("is pipeproof-bundle-v2 but lists 0")), "{f:?}");
        let mut steering = redacted_bundle();
        steering.manifest.redacted[0].reason = "ok\u{1b}[2A\u{1b}[J  pass  all".into();
        let f = failed(&verified(&steering));
        assert!(f.iter().any(|f| f.contains("control characters")), "{f:?}");
        for (list, says) in [
            (vec![0], "step 0 is listed, but the run has no step 0 with diff details"),
            (vec![1, n], "is listed, but the run has no step"),
            (vec![1, 1], "not listed once each, in step order"),
            (vec![2, 1], "not listed once each, in step order"),
        ] {
            let mut b = make_bundle();
            let last = b.steps.len() - 1;
            for &i in &list {
                b.steps[(i as usize).min(last)].details = None;
            }
            b.manifest.redacted = list.iter().map(|&i| entry(i)).collect();
            b.manifest.spec = BUNDLE_SPEC_V2.into();
            let f = failed(&verified(&b));
            assert!(
                f.iter().any(|f| f.starts_with("redactions [") && f.contains(says)),
                "{list:?}: {f:?}"
            );
        }
    }

    fn a_bundle_whose_statistics_were_redacted_verifies_and_says_so() {
        let b = statistics_redacted_bundle();
        let bytes = b.write().unwrap();
        let r = verified(&b);
        assert_eq!(failed(&r), Vec::<String>::new());
        let statistics = |step: usize| {
            let step = format!("{step} {}", b.manifest.records[step].step);
            r.checks
                .iter()
                .find(|c| c.name == "statistics" && c.step.as_deref() == Some(step.as_str()))
                .unwrap()
                .detail
                .clone()
        };
        for i in [0, 1] {
            assert_eq!(
                statistics(i),
                "not in the bundle: redacted at 2026-11-28T09:00:00.000Z (erasure request 43), \
                 the manifest says; the record keeps their digest"
            );
        }
        assert_eq!(statistics(2), "statistics match the record");
        let summary = |step: usize| {
            let step = format!("{step} {}", b.manifest.records[step].step);
            r.checks
                .iter()
                .find(|c| c.name == "diff summary" && c.step.as_deref() == Some(step.as_str()))
                .unwrap()
                .detail
                .clone()
        };
        assert_eq!(
            summary(1),
            "not in the bundle: it held the statistics of step 1, redacted at \
             2026-11-28T09:00:00.000Z (erasure request 43), the manifest says; the record keeps \
             its hash. Its counts cannot be checked without it"
        );
        assert!(summary(2).starts_with("not in the bundle: it held the statistics of step 1,"), "{}", summary(2));
        assert!(!r.checks.iter().any(|c| c.name == "diff counts"), "no counts without summaries");
        // A summary given for such a step is not written: its statistics would be in it.
        let mut given = statistics_redacted_bundle();
        given.steps[2].diff = make_bundle().steps[2].diff.clone();
        assert_eq!(given.write().unwrap(), bytes);
        let listed = r.checks.iter().find(|c| c.name == "redactions").unwrap();
        assert!(
            listed.detail.contains(
                "that the diff details of step 1 and the column statistics of steps 0, 1 were \
                 removed"
            ),
            "{listed:?}"
        );
        // No stats.json for those steps; the lists are read back; the same bytes again.
        let zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes[..])).unwrap();
        let names: Vec<String> = zip.file_names().map(|n| n.unwrap().to_string()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(!names.contains(&"steps/00000/stats.json") && !names.contains(&"steps/00001/stats.json"));
        assert!(names.contains(&"steps/00002/stats.json"), "{names:?}");
        assert!(!names.contains(&"steps/00001/diff.json") && !names.contains(&"steps/00002/diff.json"));
        let read = Bundle::read(&bytes).unwrap();
        assert_eq!(read.manifest.statistics_redacted, b.manifest.statistics_redacted);
        assert!(read.steps[0].stats.is_empty() && !read.steps[2].stats.is_empty());
        assert_eq!(read.write().unwrap(), bytes);
        // Only statistics redacted: v3 too, without a list of details.
        let mut only = make_bundle();
        only.steps[0].stats.clear();
        only.manifest.statistics_redacted = b.manifest.statistics_redacted[..1].to_vec();
        only.manifest.spec = BUNDLE_SPEC_V3.into();
        assert_eq!(failed(&verified(&only)), Vec::<String>::new());
        // A writer given statistics for a step listed without them refuses.
        let mut given = statistics_redacted_bundle();
        given.steps[1].stats = make_bundle().steps[1].stats.clone();
        let e = given.write().unwrap_err().to_string();
        assert!(e.contains("step 1: statistics given, but the manifest lists them as redacted"), "{e}");
    }

    fn statistics_missing_or_kept_against_the_manifest_fail() {
        let b = statistics_redacted_bundle();
        let bytes = b.write().unwrap();
        // Removed without the manifest saying so: step 1's listing dropped from the manifest.
        let unlisted = {
            let mut m = b.manifest.clone();
            m.statistics_redacted.truncate(1);
            rezip(&bytes, |name, content| match name {
                "manifest.json" => Some(serde_json::to_vec(&m).unwrap()),
                _ => Some(content),
            })
        };
        let f = failed(&verify_bytes(&unlisted, Some(&key().public_hex()), None));
        assert!(
            f.iter().any(|f| f.starts_with("statistics [1 ")
                && f.contains("steps/00001/stats.json is missing, and the manifest does not list")),
            "{f:?}"
        );
        // Listed as redacted, yet there.
        let kept = rezip(&make_bundle().write().unwrap(), |name, content| match name {
            "manifest.json" => Some(serde_json::to_vec(&b.manifest).unwrap()),
            _ => Some(content),
        });
        let f = failed(&verify_bytes(&kept, Some(&key().public_hex()), None));
        assert!(
            f.iter().any(|f| f.starts_with("statistics [0 ") && f.contains("yet the bundle holds them")),
            "{f:?}"
        );
        let mut in_memory = make_bundle();
        in_memory.manifest = b.manifest.clone();
        in_memory.steps[1].details = None;
        let f = failed(&pipeproof_core::bundle::verify(&in_memory, None, None));
        assert!(f.iter().any(|f| f.starts_with("statistics [1 ") && f.contains("yet the bundle holds them")), "{f:?}");
        // A summary kept (and so, unbound, anything it says) for a step whose statistics it
        // held; a summary removed with no statistics listed.
        let mut forged = statistics_redacted_bundle();
        let mut d = make_bundle().steps[2].diff.clone().unwrap();
        d.stats.clear();
        d.changed += 5;
        forged.steps[2].diff = Some(d);
        let f = failed(&pipeproof_core::bundle::verify(&forged, None, None));
        assert!(f.iter().any(|f| f.starts_with("diff summary [2 ") && f.contains("yet the bundle holds it")), "{f:?}");
        let mut unlisted = make_bundle();
        unlisted.steps[2].diff = None;
        let f = failed(&verified(&unlisted));
        assert!(f.iter().any(|f| f.starts_with("diff summary [2 ") && f.contains("disagree on whether there is a diff")), "{f:?}");
        // Listed under v2; one past the last step, twice, out of order, control characters.
        let mut v2 = statistics_redacted_bundle();
        v2.manifest.spec = BUNDLE_SPEC_V2.into();
        let f = failed(&verified(&v2));
        assert!(f.iter().any(|f| f.contains("is pipeproof-bundle-v2 but lists 1 redacted steps and 2 with redacted statistics")), "{f:?}");
        let n = b.steps.len() as u64;
        for (list, says) in [
            (vec![0, n], format!("the statistics of step {n} are listed, but the run has no step {n}")),
            (vec![0, 0], "the statistics of steps [0, 0] are not listed once each".to_string()),
            (vec![1, 0], "the statistics of steps [1, 0] are not listed once each".to_string()),
        ] {
            let mut b = statistics_redacted_bundle();
            b.manifest.statistics_redacted = list
                .iter()
                .map(|&step| RedactedStep { step, at: "t".into(), reason: "r".into() })
                .collect();
            let r = pipeproof_core::bundle::verify(&b, None, None);
            let f = failed(&r);
            assert!(f.iter().any(|f| f.starts_with("redactions [") && f.contains(&says)), "{list:?}: {f:?}");
        }
        let mut steering = statistics_redacted_bundle();
        steering.manifest.statistics_redacted[1].reason = "ok\u{1b}[2A".into();
        let f = failed(&verified(&steering));
        assert!(f.iter().any(|f| f.contains("the redaction of the statistics of step 1 holds control characters")), "{f:?}");
        // A build that reads only v1 and v2 does not know v3: this one names all three.
        let mut v4 = statistics_redacted_bundle();
        v4.manifest.spec = "pipeproof-bundle-v4".into();
        let r = verified(&v4);
        assert!(failed(&r).iter().any(|f| f.contains("unknown bundle version `pipeproof-bundle-v4` (this build reads pipeproof-bundle-v1, pipeproof-bundle-v2 and pipeproof-bundle-v3)")), "{:?}", failed(&r));
    }

    fn keyed_step_after_an_unkeyed_one_verifies_and_its_counts_are_checked() {
        let unkeyed_first = |i: usize| {
            if i == 0 { DiffConfig::default() } else { DiffConfig::keyed(["id"]) }
        };
        let b = make_bundle_with(unkeyed_first);
        let r = verify_bytes(&b.write().unwrap(), Some(&key().public_hex()), None);
        assert!(r.passed(), "{:?}", failed(&r));
        let check = r
            .checks
            .iter()
            .find(|c| c.name == "diff counts" && c.step.as_deref() == Some("1 clean"))
            .expect("the keyed step after the unkeyed one has its diff checked");
        assert!(check.detail.contains("not keyed by (id)"), "{}", check.detail);
        // A summary that claims one more unchanged row than the row hashes show fails.
        let mut b = make_bundle_with(unkeyed_first);
        let d = b.steps[1].diff.as_mut().unwrap();
        d.unchanged += 1;
        d.changed -= 1;
        let r = pipeproof_core::bundle::verify(&b, None, None);
        assert!(
            failed(&r).iter().any(|f| f.contains("unchanged")),
            "{:?}",
            failed(&r)
        );
    }

    fn unkeyed_diffs_of_some_columns_verify_and_their_counts_are_bounded() {
        let t = |cols: Vec<(&str, ArrayRef)>| table(cols);
        let ids = || Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as ArrayRef;
        let amounts = || Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0])) as ArrayRef;
        let names = |n: [&str; 4]| Arc::new(StringArray::from(n.to_vec())) as ArrayRef;
        let data = vec![
            ("load", t(vec![("id", ids()), ("amount", amounts()), ("name", names(["a", "b", "c", "d"]))])),
            // `name` dropped: compared on `id` and `amount`, the rows are all unchanged.
            ("drop", t(vec![("id", ids()), ("amount", amounts())])),
            // `name` back, one changed: compared on what both have.
            ("add", t(vec![("id", ids()), ("amount", amounts()), ("name", names(["a", "b", "c", "D"]))])),
            // `name` changed back, but ignored.
            ("ignore", t(vec![("id", ids()), ("amount", amounts()), ("name", names(["a", "b", "c", "d"]))])),
        ];
        let config = |i: usize| DiffConfig {
            ignore_columns: if i == 3 { vec!["name".into()] } else { Vec::new() },
            ..DiffConfig::default()
        };
        let b = bundle_of(data.clone(), config);
        for s in &b.steps[1..] {
            let d = s.diff.as_ref().unwrap();
            assert_eq!((d.added, d.removed, d.unchanged), (0, 0, 4), "{d:?}");
        }
        let r = verify_bytes(&b.write().unwrap(), Some(&key().public_hex()), None);
        assert!(r.passed(), "{:#?}", failed(&r));
        let counts = |r: &pipeproof_core::bundle::VerifyReport, step: &str| {
            r.checks
                .iter()
                .find(|c| c.name == "diff counts" && c.step.as_deref() == Some(step))
                .expect("the step's counts are checked")
                .detail
                .clone()
        };
        assert!(counts(&r, "1 drop").contains("different columns"), "{}", counts(&r, "1 drop"));
        let ignoring = counts(&r, "3 ignore");
        assert!(ignoring.contains("ignored") && ignoring.contains("3 are the same as a whole"), "{ignoring}");
        // Fewer unchanged rows than rows the same as a whole (3 at step 3) fails; so do
        // counts that do not add up, and changed rows in a diff without a key.
        let tampered = |edit: &dyn Fn(&mut pipeproof_core::diff::DiffSummary)| {
            let mut b = bundle_of(data.clone(), config);
            edit(b.steps[3].diff.as_mut().unwrap());
            failed(&pipeproof_core::bundle::verify(&b, None, None))
        };
        let f = tampered(&|d| { d.unchanged = 2; d.added = 2; d.removed = 2; });
        assert!(f.iter().any(|f| f.contains("3 rows are in both row tables as a whole")), "{f:?}");
        let f = tampered(&|d| d.added += 1);
        assert!(f.iter().any(|f| f.contains("do not add up")), "{f:?}");
        let f = tampered(&|d| { d.unchanged -= 1; d.changed += 1; });
        assert!(f.iter().any(|f| f.contains("no changed rows")), "{f:?}");
    }

    fn the_runs_description_is_checked_against_its_records_and_seal() {
        let good = pipeproof_core::bundle::verify(&make_bundle(), None, None);
        let run = good.checks.iter().find(|c| c.name == "run").expect("a run check");
        assert!(run.passed && run.detail.contains("the whole description (labels, parameters, status, failure message, times) is the one the seal signs"), "{run:?}");
        type Edit<'a> = (&'a str, &'a dyn Fn(&mut RunInfo));
        const UNSIGNED: &str = "not the one the seal signs";
        let edits: [Edit; 10] = [
            ("pipeline `evil`", &|r| r.pipeline = "evil".into()),
            ("says it is open, but it has a seal", &|r| r.status = "open".into()),
            ("code version none", &|r| r.code_version = None),
            ("code version `def456`", &|r| r.code_version = Some("def456".into())),
            ("sealed at 2026-11-25", &|r| r.sealed_at = Some("2026-11-25T00:00:00Z".into())),
            // What no record carries, the seal v2 signs.
            (UNSIGNED, &|r| { r.labels.insert("approved-by".into(), "cfo".into()); }),
            (UNSIGNED, &|r| r.params = serde_json::json!({"date": "2026-11-23"})),
            (UNSIGNED, &|r| r.created_at = "2026-11-23T10:00:00Z".into()),
            (UNSIGNED, &|r| r.status = "failed".into()),
            (UNSIGNED, &|r| r.error = Some("the load step raised".into())),
        ];
        for (want, edit) in edits {
            let mut b = make_bundle();
            edit(&mut b.manifest.run);
            // Written and read back: the canonical form of an edited manifest is its own.
            let r = verify_bytes(&b.write().unwrap(), Some(&key().public_hex()), None);
            let f = failed(&r);
            assert!(f.len() == 1 && f[0].starts_with("run") && f[0].contains(want), "{want}: {f:#?}");
        }
    }

    fn data_is_checked_against_every_step_of_a_shared_name() {
        let data: Vec<(&str, Table)> = steps()
            .into_iter()
            .enumerate()
            .map(|(i, (_, t))| (if i < 2 { "again" } else { "last" }, t))
            .collect();
        let b = bundle_of(data.clone(), |_| DiffConfig::keyed(["id"]));
        for (i, t) in data.iter().map(|(_, t)| t).enumerate() {
            let claim = DataClaim { step: Some("again"), data: t };
            let r = verify(&b, None, Some(claim));
            let c = r.checks.iter().find(|c| c.name == "data").unwrap();
            assert_eq!(c.passed, i < 2, "step {i}: {c:?}");
            if i == 2 {
                assert!(c.detail.contains("nor is it that of the other steps named `again` (at 1)"), "{c:?}");
            } else {
                assert_eq!(c.step.as_deref(), Some(format!("{i} again").as_str()), "{c:?}");
            }
        }
        // By index, the step at that index alone: step 0's data is not step 1's.
        let data_check = |step: &str, t: &Table| {
            let r = verify(&b, None, Some(DataClaim { step: Some(step), data: t }));
            r.checks.into_iter().find(|c| c.name == "data").unwrap()
        };
        assert!(data_check("1", &data[1].1).passed);
        assert!(!data_check("1", &data[0].1).passed);
        assert!(data_check("2", &data[2].1).passed);
        let c = data_check("9", &data[2].1);
        assert!(!c.passed && c.detail.contains("no step named `9`, nor at index `9`"), "{c:?}");
    }

    fn a_good_bundle_verifies() {
        let b = make_bundle();
        let bytes = b.write().unwrap();
        assert_eq!(bytes, b.write().unwrap(), "writing is deterministic");
        let r = verify_bytes(&bytes, Some(&key().public_hex()), None);
        assert!(r.passed(), "{:#?}", failed(&r));
        let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
        for want in ["canonical form", "chain", "content root", "diff counts", "diff details", "seal", "signature"] {
            assert!(names.contains(&want), "no `{want}` check in {names:?}");
        }
        let d = &b.steps[1].diff.as_ref().unwrap();
        assert_eq!((d.added, d.removed, d.changed), (1, 1, 1));
    }

    fn data_file_is_recognised_as_its_step() {
        let b = make_bundle();
        let data = steps();
        let shuffled = common::permute(&data[1].1, &[3, 2, 1, 0]);
        let r = verify(&b, None, Some(DataClaim { step: Some("clean"), data: &shuffled }));
        assert!(r.passed(), "{:#?}", failed(&r));
        let r = verify(&b, None, Some(DataClaim { step: None, data: &data[2].1 }));
        let c = r.checks.last().unwrap();
        assert!(c.passed && c.detail.contains("`enrich`"), "{c:?}");
        let r = verify(&b, None, Some(DataClaim { step: Some("load"), data: &data[1].1 }));
        assert!(!r.passed());
        assert!(failed(&r)[0].starts_with("data [0 load]"), "{:?}", failed(&r));
    }

    fn edited_manifests_are_detected_at_the_right_step() {
        let good = make_bundle();
        let check = |b: &Bundle, want: &str| {
            let r = verify_bytes(&b.write().unwrap(), Some(&key().public_hex()), None);
            let f = failed(&r);
            assert!(f.iter().any(|m| m.starts_with(want)), "wanted `{want}` in {f:#?}");
        };
        let mut b = good.clone();
        b.manifest.records[1].rows = 5;
        check(&b, "row count [1 clean]");
        let mut b = good.clone();
        b.manifest.records[2].content_root.0[0] ^= 1;
        check(&b, "content root [2 enrich]");
        let mut b = good.clone();
        b.manifest.records[0].step = "renamed".into();
        check(&b, "chain [1 clean]");
        let mut b = good.clone();
        b.manifest.records.swap(1, 2);
        b.steps.swap(1, 2);
        check(&b, "record [");
        let mut b = good.clone();
        b.manifest.records.remove(1);
        b.steps.remove(1);
        check(&b, "chain [");
        let mut b = good.clone();
        b.manifest.records.pop();
        b.steps.pop();
        check(&b, "seal []");
        let mut b = good.clone();
        b.steps[1].row_table.row_hashes[0].0[3] ^= 1;
        check(&b, "content root [1 clean]");
        let mut b = good.clone();
        b.steps[1].diff.as_mut().unwrap().changed = 0;
        check(&b, "diff summary [1 clean]");
        let mut b = good.clone();
        b.steps[2].stats[0].nulls = 9;
        check(&b, "statistics [2 enrich]");
        let mut b = good.clone();
        b.steps[1].details = None;
        check(&b, "diff details [1 clean]");
        // Re-signed by another key: valid signature, but not by the trusted key.
        let mut b = good.clone();
        let other = KeyPair::from_bytes(&[7; 32]);
        let s = b.manifest.seal.clone().unwrap();
        b.manifest.seal = Some(other.seal(&b.manifest.run, s.steps, s.head).unwrap());
        check(&b, "signature []");
        assert!(verify(&b, None, None).passed(), "without a trusted key the signature itself is valid");
        let mut b = good.clone();
        b.manifest.seal = None;
        check(&b, "seal []");
    }
}

/// Every byte of a bundle flipped in turn is detected (native only: thousands of runs).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn every_flipped_byte_is_detected() {
    let bytes = make_bundle().write().unwrap();
    let key = key().public_hex();
    assert!(verify_bytes(&bytes, Some(&key), None).passed());
    let mut undetected = Vec::new();
    for i in 0..bytes.len() {
        let mut m = bytes.clone();
        m[i] ^= 0x01;
        if verify_bytes(&m, Some(&key), None).passed() {
            undetected.push(i);
        }
    }
    assert!(
        undetected.is_empty(),
        "{} of {} flips undetected, first at {:?}",
        undetected.len(),
        bytes.len(),
        &undetected[..undetected.len().min(10)]
    );
}

/// The canonical form is compared as it is written: for a bundle's bytes with any one byte
/// flipped, cut short or run on, the first difference is exactly where the bytes changed,
/// placeholders the writer fills in later included (native only: thousands of writes).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn the_first_difference_from_the_canonical_form_is_where_the_bytes_changed() {
    let b = make_bundle();
    let bytes = b.write().unwrap();
    assert_eq!(b.first_difference(&bytes).unwrap(), None);
    for i in 0..bytes.len() {
        for flip in [0x01, 0xFF] {
            let mut m = bytes.clone();
            m[i] ^= flip;
            assert_eq!(
                b.first_difference(&m).unwrap(),
                Some(i as u64),
                "byte {i} ^ {flip:#x}"
            );
        }
    }
    let n = bytes.len();
    for (what, m, at) in [
        ("cut short by one", bytes[..n - 1].to_vec(), n - 1),
        ("cut to half", bytes[..n / 2].to_vec(), n / 2),
        ("empty", Vec::new(), 0),
        ("one byte more", [&bytes[..], &[0]].concat(), n),
    ] {
        assert_eq!(b.first_difference(&m).unwrap(), Some(at as u64), "{what}");
    }
}

/// A member whose bytes no longer match its CRC-32 is refused as it is read, before any
/// decoder sees it.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn a_member_that_fails_its_crc_is_refused_before_it_is_decoded() {
    let bytes = make_bundle().write().unwrap();
    let name = b"steps/00001/rows.arrow";
    // The member's data follows its local header (30 bytes, then the name).
    let header = bytes
        .windows(name.len())
        .position(|w| w == name)
        .expect("the member is in the bundle")
        - 30;
    let mut m = bytes.clone();
    m[header + 30 + name.len() + 100] ^= 0x01;
    let e = Bundle::read(&m).unwrap_err().to_string();
    assert!(
        e.contains("steps/00001/rows.arrow") && e.contains("checksum"),
        "{e}"
    );
    let r = verify_bytes(&m, Some(&key().public_hex()), None);
    assert_eq!(r.checks.len(), 1, "{r:#?}");
    assert!(r.checks[0].detail.contains("checksum"), "{r:#?}");
}

/// Verification sorts a row table's hashes where they were read, each column in bytes of
/// its own: a `rows.arrow` whose key hashes' buffer overlaps its row hashes' is checked as
/// the same table read whole is.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn a_row_table_whose_columns_share_bytes_is_checked_as_the_table_read() {
    use pipeproof_core::bundle::{BundleWriter, RowsMember};
    let b = make_bundle();
    let table = &b.steps[1].row_table;
    let n = table.row_hashes.len();
    let key = key().public_hex();
    for start in [16i64, 32] {
        // The key hashes' buffer (offset, length), the last of the record batch header's
        // buffers, where the row hashes' ends; moved to start within them.
        let mut ipc = table.to_ipc().unwrap();
        let len = (n as i64 * 32).to_le_bytes();
        let buffer = [len, len].concat();
        let at = (0..ipc.len() - 16)
            .rfind(|&i| ipc[i..i + 16] == buffer[..])
            .unwrap();
        ipc[at..at + 8].copy_from_slice(&start.to_le_bytes());
        let mut w = BundleWriter::new(std::io::Cursor::new(Vec::new()), &b.manifest).unwrap();
        for (i, s) in b.steps.iter().enumerate() {
            let mut member = &ipc[..];
            let rows = match i {
                1 => RowsMember::Ipc {
                    len: ipc.len() as u64,
                    bytes: &mut member,
                },
                _ => RowsMember::Table(&s.row_table),
            };
            w.step(rows, &s.stats, s.diff.as_ref(), s.details.as_ref())
                .unwrap();
        }
        let bytes = w.finish().unwrap().into_inner();
        let read = Bundle::read(&bytes).unwrap();
        let keys = read.steps[1].row_table.key_hashes.as_ref().unwrap();
        assert_eq!(keys.len(), n);
        assert_eq!(read.steps[1].row_table.row_hashes, table.row_hashes);
        let whole = verify(&read, Some(&key), None);
        // The key hashes changed, the row hashes did not.
        let passed = |name: &str| (whole.checks.iter()).all(|c| c.name != name || c.passed);
        assert!(!passed("row table") && passed("content root"), "{whole:#?}");
        let streamed = verify_bytes(&bytes, Some(&key), None);
        let checks: Vec<_> = (streamed.checks.iter())
            .filter(|c| c.name != "canonical form")
            .cloned()
            .collect();
        assert_eq!(checks, whole.checks, "key hashes from byte {start}");
    }
}

/// A bundle written by an earlier build (docs/spec/vectors/bundle-v1/bundle.zip, this file's
/// test bundle): it must still verify, its canonical form included, so that bundles already
/// exported (and row tables already stored, which exports copy as they are) stay
/// verifiable. A change to how Arrow members or JSON are written fails this; the file is
/// written again only with a new bundle version, by the ignored test below.
const GOLDEN: &[u8] = include_bytes!("../../docs/spec/vectors/bundle-v1/bundle.zip");

/// The same run sealed with a seal v2 (the seal signs the run's description too), as this
/// build writes it: it must verify and be written again byte for byte by later builds.
const GOLDEN_SEAL_V2: &[u8] = include_bytes!("../../docs/spec/vectors/bundle-v1/seal-v2.zip");

/// The same run, its step 1's details redacted (`pipeproof-bundle-v2`).
const GOLDEN_REDACTED: &[u8] = include_bytes!("../../docs/spec/vectors/bundle-v2/redacted.zip");

/// The same run, its step 1's details and the statistics of steps 0 and 1 redacted
/// (`pipeproof-bundle-v3`).
const GOLDEN_STATISTICS: &[u8] = include_bytes!("../../docs/spec/vectors/bundle-v3/statistics.zip");

both! {
    fn a_bundle_written_by_an_earlier_build_still_verifies() {
        for golden in [GOLDEN, GOLDEN_SEAL_V2, GOLDEN_REDACTED, GOLDEN_STATISTICS] {
            let r = verify_bytes(golden, Some(&key().public_hex()), None);
            assert!(r.passed(), "{:#?}", failed(&r));
            assert!(r.checks.iter().any(|c| c.name == "canonical form" && c.passed));
            assert_eq!(Bundle::read(golden).unwrap().write().unwrap(), golden);
        }
        let v1 = Bundle::read(GOLDEN).unwrap();
        assert_eq!(v1.manifest.seal.as_ref().unwrap().spec, pipeproof_core::sign::SEAL_SPEC_V1);
        assert_eq!(Bundle::read(GOLDEN_SEAL_V2).unwrap().write().unwrap(), make_bundle().write().unwrap());
        assert_eq!(Bundle::read(GOLDEN_REDACTED).unwrap().write().unwrap(), redacted_bundle().write().unwrap());
        assert_eq!(GOLDEN_STATISTICS, statistics_redacted_bundle().write().unwrap());
    }

    fn a_v2_seal_without_its_run_hash_fails_the_run_check_too() {
        let mut b = make_bundle();
        b.manifest.seal.as_mut().unwrap().run_hash = None;
        let r = verify_bytes(&b.write().unwrap(), Some(&key().public_hex()), None);
        let f = failed(&r);
        assert!(f.iter().any(|f| f.starts_with("signature") && f.contains("no `run_hash`")), "{f:#?}");
        assert!(f.iter().any(|f| f.starts_with("run") && f.contains("cannot be checked")), "{f:#?}");
        assert!(!f.iter().any(|f| f.contains("seal v1 signs")), "{f:#?}");
    }

    fn under_a_seal_v1_the_runs_labels_are_bound_by_nothing_and_the_check_says_so() {
        // The earlier bundle relabelled, re-written canonically: every check passes, as it
        // did before seals signed the description; the run check's detail tells the reader.
        let mut b = Bundle::read(GOLDEN).unwrap();
        b.manifest.run.labels.insert("approved-by".into(), "cfo".into());
        let r = verify_bytes(&b.write().unwrap(), Some(&key().public_hex()), None);
        assert!(r.passed(), "{:#?}", failed(&r));
        let run = r.checks.iter().find(|c| c.name == "run").expect("a run check");
        assert!(run.detail.contains("are in no record or seal (a seal v1 signs the records alone)"), "{run:?}");
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
#[ignore = "writes the golden bundle of this version; only with a new bundle or seal version"]
fn write_the_golden_bundle() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/spec/vectors/bundle-v1/seal-v2.zip"
    );
    std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
    std::fs::write(path, make_bundle().write().unwrap()).unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/spec/vectors/bundle-v2/redacted.zip"
    );
    std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
    std::fs::write(path, redacted_bundle().write().unwrap()).unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/spec/vectors/bundle-v3/statistics.zip"
    );
    std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
    std::fs::write(path, statistics_redacted_bundle().write().unwrap()).unwrap();
}

/// A writer that takes `room` bytes, then fails as a full disk does.
#[cfg(not(target_arch = "wasm32"))]
struct FullDisk {
    at: u64,
    end: u64,
    room: u64,
}

#[cfg(not(target_arch = "wasm32"))]
impl std::io::Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.at + buf.len() as u64 > self.room {
            // ENOSPC, as a full disk gives it.
            return Err(std::io::Error::from_raw_os_error(28));
        }
        self.at += buf.len() as u64;
        self.end = self.end.max(self.at);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl std::io::Seek for FullDisk {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        match to {
            std::io::SeekFrom::Start(p) => self.at = p,
            std::io::SeekFrom::Current(d) => {
                self.at = self.at.checked_add_signed(d).expect("within the file")
            }
            std::io::SeekFrom::End(d) => {
                self.at = self.end.checked_add_signed(d).expect("within the file")
            }
        }
        Ok(self.at)
    }
}

/// A full disk while a bundle is written is an I/O error naming its cause, not a failed
/// verification (the server's export reports it as it is).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn a_bundle_writer_that_runs_out_of_room_says_so() {
    let b = make_bundle();
    let write = |room: u64| -> pipeproof_core::Result<()> {
        b.write_to(FullDisk {
            at: 0,
            end: 0,
            room,
        })
        .map(drop)
    };
    let full = b.write().unwrap().len() as u64;
    write(full).expect("room for the whole bundle");
    for room in [0, 100, full / 2, full - 1] {
        let e = write(room).unwrap_err();
        assert!(
            matches!(e, pipeproof_core::Error::Io(_)),
            "room {room}: {e:?}"
        );
        let e = e.to_string();
        assert!(e.contains("No space left on device"), "room {room}: {e}");
        assert!(!e.contains("verification"), "room {room}: {e}");
    }
}

/// A bundle file whose reads fail where it is compared with its canonical form: the check
/// says the file could not be read, with the cause, rather than that it could not be
/// written. (The zip reader reads through a clone of the source, which does not fail.)
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn a_failed_read_of_the_file_being_compared_is_named_as_one() {
    use std::io::{Cursor, Read, Seek, SeekFrom};
    #[derive(Debug)]
    struct Failing {
        bytes: Cursor<Arc<[u8]>>,
        fail_from: u64,
    }
    impl Clone for Failing {
        fn clone(&self) -> Failing {
            Failing {
                bytes: self.bytes.clone(),
                fail_from: u64::MAX,
            }
        }
    }
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.bytes.position() >= self.fail_from {
                return Err(std::io::Error::other("the disk is gone"));
            }
            self.bytes.read(buf)
        }
    }
    impl Seek for Failing {
        fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
            self.bytes.seek(to)
        }
    }
    let bytes: Arc<[u8]> = make_bundle().write().unwrap().into();
    let half = bytes.len() as u64 / 2;
    let r = pipeproof_core::bundle::verify_stream(
        Failing {
            bytes: Cursor::new(bytes),
            fail_from: half,
        },
        Some(&key().public_hex()),
        None,
    );
    let failed = failed(&r);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let c = r.checks.iter().find(|c| !c.passed).unwrap();
    assert_eq!(c.name, "canonical form");
    assert!(
        c.detail.contains("could not be compared")
            && c.detail.contains("cannot read the file")
            && c.detail.contains("the disk is gone"),
        "{}",
        c.detail
    );
}
