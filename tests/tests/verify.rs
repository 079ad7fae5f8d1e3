//! `pipeproof verify` on real bundles built with core: what it prints for a good bundle and
//! for each kind of tampering (which check failed, at which step), its exit codes (0 all
//! passed, 1 a check failed, 2 when it cannot check at all), `--pubkey` in its three
//! spellings, and `--data`.
//! core/tests/bundle.rs covers the checks themselves; this file covers the command.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use pipeproof_core::bundle::{
    BUNDLE_SPEC, Bundle, BundleStep, Manifest, RunInfo, StepContext, build_step,
};
use pipeproof_core::diff::DiffConfig;
use pipeproof_core::record::StepRecord;
use pipeproof_core::sign::KeyPair;
use pipeproof_core::{BatchSource, Table};
use pipeproof_tests::{run, text};

fn batch(ids: Vec<i64>, amounts: Vec<f64>, names: Vec<&str>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("name", DataType::Utf8, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(Float64Array::from(amounts)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .unwrap()
}

/// A three-step run: 4 is moved and 2 changed, 1 removed, 5 added; then a name changes.
fn steps() -> Vec<(&'static str, RecordBatch)> {
    vec![
        (
            "load",
            batch(
                vec![1, 2, 3, 4],
                vec![1.0, 2.0, 3.0, 4.0],
                vec!["a", "b", "c", "d"],
            ),
        ),
        (
            "clean",
            batch(
                vec![4, 2, 3, 5],
                vec![4.0, 2.5, 3.0, 5.0],
                vec!["d", "b", "c", "e"],
            ),
        ),
        (
            "enrich",
            batch(
                vec![4, 2, 3, 5],
                vec![4.0, 2.5, 3.0, 5.0],
                vec!["D", "b", "c", "e"],
            ),
        ),
    ]
}

fn signer() -> KeyPair {
    KeyPair::from_bytes(&[42; 32])
}

fn intruder() -> KeyPair {
    KeyPair::from_bytes(&[7; 32])
}

/// Builds the run the way the server does (core's `build_step`) and seals it with `key`.
fn make_bundle(key: &KeyPair) -> Bundle {
    let run = RunInfo {
        id: "run-7".into(),
        pipeline: "daily".into(),
        labels: Default::default(),
        code_version: Some("abc123".into()),
        params: serde_json::json!({}),
        status: "sealed".into(),
        error: None,
        created_at: "2026-11-24T10:00:00Z".into(),
        sealed_at: Some("2026-11-24T10:05:00Z".into()),
    };
    let config = DiffConfig::keyed(["id"]);
    let tables: Vec<(&str, Table)> = steps()
        .into_iter()
        .map(|(n, b)| (n, Table::from_batches(vec![b]).unwrap()))
        .collect();
    let mut records: Vec<StepRecord> = Vec::new();
    let mut stored: Vec<BundleStep> = Vec::new();
    for (i, (name, t)) in tables.iter().enumerate() {
        let previous = (i > 0).then(|| (&records[i - 1], &tables[i - 1].1 as &dyn BatchSource));
        let built = build_step(
            t,
            StepContext {
                run: &run,
                index: i as u64,
                step: name,
                created_at: "2026-11-24T10:01:00Z",
                params: serde_json::json!({"key": ["id"]}),
                config: &config,
                previous,
                previous_stored: None,
            },
        )
        .unwrap();
        records.push(built.record);
        stored.push(built.stored);
    }
    let head = records.last().unwrap().hash();
    let seal = key.seal(&run, records.len() as u64, head).unwrap();
    Bundle {
        manifest: Manifest {
            spec: BUNDLE_SPEC.into(),
            run,
            records,
            seal: Some(seal),
            redacted: Vec::new(),
            statistics_redacted: Vec::new(),
        },
        steps: stored,
    }
}

fn save(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

fn write_parquet(dir: &Path, name: &str, b: &RecordBatch) -> String {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, b.schema(), None).unwrap();
    w.write(b).unwrap();
    w.close().unwrap();
    path.to_string_lossy().into_owned()
}

fn write_csv(dir: &Path, name: &str, b: &RecordBatch) -> String {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap();
    let mut w = arrow_csv::WriterBuilder::new()
        .with_header(true)
        .build(file);
    w.write(b).unwrap();
    path.to_string_lossy().into_owned()
}

/// The `FAIL` lines of the table output.
fn failures(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.trim_start().starts_with("FAIL"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Runs verify, expects exit 1 and a failed check whose line starts with `want`
/// (`FAIL <check> <step index> <step name> <reason>`, whitespace collapsed).
#[track_caller]
fn assert_fails(args: &[&str], want: &str) -> Output {
    let o = run(args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let f = failures(&o);
    assert!(
        f.iter().any(|l| l.starts_with(want)),
        "wanted a line starting `{want}` among the failures {f:#?}\n{}",
        text(&o)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("NOT VERIFIED:"), "{out}");
    o
}

#[test]
fn a_good_bundle_verifies_and_says_what_the_signature_proves() {
    let dir = tempfile::tempdir().unwrap();
    let path = save(
        dir.path(),
        "run.zip",
        &make_bundle(&signer()).write().unwrap(),
    );

    let o = run(&["verify", &path]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(failures(&o).is_empty(), "{out}");
    for want in [
        "run run-7 · pipeline daily · 3 steps · sealed",
        "pass  canonical form",
        "chain",
        "1 clean",
        "diff counts",
        "+1 -1 ~1 recomputed from the row hashes",
        "signature",
        "checked against the public key written in the bundle itself",
        "--pubkey",
        "verified: all",
    ] {
        assert!(out.contains(want), "no `{want}` in:\n{out}");
    }

    // With the signer's key: no caveat, the key is named as trusted.
    let o = run(&["verify", &path, "--pubkey", &signer().public_hex()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("by the trusted key"), "{out}");
    assert!(!out.contains("written in the bundle itself"), "{out}");

    // From a pipe (`curl ... | pipeproof verify /dev/stdin`), which cannot be read at two
    // places: the same report; and a flipped byte still fails.
    let piped = |bytes: Vec<u8>| {
        let mut child = std::process::Command::new(pipeproof_tests::binary())
            .args(["verify", "/dev/stdin", "--pubkey", &signer().public_hex()])
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&bytes));
        let o = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        o
    };
    let bytes = std::fs::read(&path).unwrap();
    let o = piped(bytes.clone());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("by the trusted key"));
    let mut bad = bytes;
    let last = bad.len() - 30;
    bad[last] ^= 1;
    let o = piped(bad);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn json_output_lists_every_check() {
    let dir = tempfile::tempdir().unwrap();
    let good = make_bundle(&signer());
    let path = save(dir.path(), "run.zip", &good.write().unwrap());
    let o = run(&["verify", &path, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["passed"], true);
    assert_eq!(j["trusted_key"], serde_json::Value::Null);
    let checks = j["checks"].as_array().unwrap();
    // Per step: record, chain, row count, content root, order root, row table, statistics;
    // steps 1 and 2 add diff summary, diff counts, diff details; plus bundle, canonical
    // form, seal, signature, run.
    assert_eq!(checks.len(), 3 * 7 + 2 * 3 + 5, "{checks:#?}");
    assert!(checks.iter().all(|c| c["passed"] == true));
    assert!(
        checks
            .iter()
            .any(|c| c["name"] == "content root" && c["step"] == "2 enrich")
    );

    let mut bad = good.clone();
    bad.manifest.records[2].content_root.0[0] ^= 1;
    let path = save(dir.path(), "bad.zip", &bad.write().unwrap());
    let o = run(&["verify", &path, "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["passed"], false);
    let failed: Vec<(&str, &str)> = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["step"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(failed.contains(&("content root", "2 enrich")), "{failed:?}");
}

#[test]
fn a_flipped_byte_fails_the_canonical_form_check() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = make_bundle(&signer()).write().unwrap();
    let key = signer().public_hex();
    // One byte in a row hash of step 1's rows.arrow, one in the manifest's text, one in the
    // zip central directory at the end.
    let rows = find(&bytes, b"steps/00001/rows.arrow") + 200;
    let manifest = find(&bytes, b"\"content_root\"") + 20;
    let central = bytes.len() - 30;
    for (i, at) in [rows, manifest, central].into_iter().enumerate() {
        let mut m = bytes.clone();
        m[at] ^= 0x01;
        let path = save(dir.path(), &format!("flip{i}.zip"), &m);
        let o = run(&["verify", &path, "--pubkey", &key]);
        let f = failures(&o);
        // A failed verification, whether or not the flip left the bundle readable.
        assert_eq!(o.status.code(), Some(1), "byte {at}: {}", text(&o));
        assert!(
            f.iter()
                .any(|l| l.starts_with("FAIL canonical form") || l.starts_with("FAIL bundle")),
            "byte {at}: {f:#?}"
        );
    }
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{} not in the bundle", String::from_utf8_lossy(needle)))
}

/// Reads a zip's members in order.
fn members(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut out = Vec::new();
            f.read_to_end(&mut out).unwrap();
            (f.name().unwrap().to_string(), out)
        })
        .collect()
}

/// Zips members the way a person with a zip tool would: deflated, today's defaults.
fn rezip(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in members {
        zip.start_file(
            name.as_str(),
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated),
        )
        .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[test]
fn an_unreadable_table_is_named_by_step_and_member() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = make_bundle(&signer()).write().unwrap();
    for table in ["rows", "added", "removed", "changed"] {
        let name = format!("steps/00001/{table}.arrow");
        let mut m = members(&bytes);
        let member = m.iter_mut().find(|(n, _)| *n == name).unwrap();
        member.1 = b"ARROW1 but not an Arrow file".to_vec();
        let path = save(dir.path(), &format!("{table}.zip"), &rezip(&m));
        let o = run(&["verify", &path]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let want = format!("cannot read the bundle: step 1: {table}.arrow: cannot read the input");
        assert!(text(&o).contains(&want), "no `{want}` in {}", text(&o));
    }
}

#[test]
fn an_edited_and_rezipped_manifest_fails_naming_the_check_and_step() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = make_bundle(&signer()).write().unwrap();
    let key = signer().public_hex();

    // Edit manifest.json as text (step 1 claims one row more) and re-zip with a zip tool.
    let mut m = members(&bytes);
    let manifest = &mut m[0];
    assert_eq!(manifest.0, "manifest.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&manifest.1).unwrap();
    doc["records"][1]["rows"] = serde_json::json!(5);
    manifest.1 = serde_json::to_vec(&doc).unwrap();
    let path = save(dir.path(), "edited.zip", &rezip(&m));
    let o = assert_fails(
        &["verify", &path, "--pubkey", &key],
        "FAIL row count 1 clean",
    );
    let f = failures(&o);
    for want in ["FAIL canonical form", "FAIL chain 2 enrich"] {
        assert!(
            f.iter().any(|l| l.starts_with(want)),
            "no `{want}` in {f:#?}"
        );
    }

    // The same edit written in perfectly canonical form still breaks the chain and seal.
    let mut b = Bundle::read(&bytes).unwrap();
    b.manifest.records[1].rows = 5;
    let path = save(dir.path(), "canonical-edit.zip", &b.write().unwrap());
    let o = assert_fails(
        &["verify", &path, "--pubkey", &key],
        "FAIL row count 1 clean",
    );
    let f = failures(&o);
    assert!(
        !f.iter().any(|l| l.starts_with("FAIL canonical form")),
        "{f:#?}"
    );
    assert!(
        f.iter().any(|l| l.starts_with("FAIL chain 2 enrich")),
        "{f:#?}"
    );

    // Unchanged content re-zipped by another tool: only the canonical form differs.
    let path = save(dir.path(), "rezipped.zip", &rezip(&members(&bytes)));
    let o = assert_fails(&["verify", &path, "--pubkey", &key], "FAIL canonical form");
    assert_eq!(failures(&o).len(), 1, "{}", text(&o));
    assert!(text(&o).contains("changed after export"), "{}", text(&o));
}

#[test]
fn swapped_and_removed_steps_fail() {
    let dir = tempfile::tempdir().unwrap();
    let good = make_bundle(&signer());
    let key = signer().public_hex();

    let mut b = good.clone();
    b.manifest.records.swap(1, 2);
    b.steps.swap(1, 2);
    let path = save(dir.path(), "swapped.zip", &b.write().unwrap());
    let o = assert_fails(&["verify", &path, "--pubkey", &key], "FAIL record 2 enrich");
    assert!(
        failures(&o)
            .iter()
            .any(|l| l.starts_with("FAIL chain 1 clean")),
        "{}",
        text(&o)
    );

    let mut b = good.clone();
    b.manifest.records.remove(1);
    b.steps.remove(1);
    let path = save(dir.path(), "middle-removed.zip", &b.write().unwrap());
    assert_fails(&["verify", &path, "--pubkey", &key], "FAIL chain 2 enrich");

    let mut b = good.clone();
    b.manifest.records.pop();
    b.steps.pop();
    let path = save(dir.path(), "last-removed.zip", &b.write().unwrap());
    let o = assert_fails(&["verify", &path, "--pubkey", &key], "FAIL seal");
    assert!(text(&o).contains("with 3 records"), "{}", text(&o));
}

#[test]
fn a_bundle_resigned_under_another_key_fails_against_the_trusted_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = save(
        dir.path(),
        "resigned.zip",
        &make_bundle(&intruder()).write().unwrap(),
    );

    // Without a trusted key the signature is valid in itself: passes, with the caveat.
    let o = run(&["verify", &path]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("written in the bundle itself"),
        "{}",
        text(&o)
    );

    // Against the original signer's key, given three ways.
    let key = signer().public_hex();
    let key_file = save(dir.path(), "server.pub", format!("{key}\n").as_bytes());
    let keys_json = save(
        dir.path(),
        "keys.json",
        serde_json::json!({"keys": [{"algorithm": "ed25519", "public_key": key,
            "created_at": "2026-11-24T09:00:00Z"}]})
        .to_string()
        .as_bytes(),
    );
    for k in [key.as_str(), key_file.as_str(), keys_json.as_str()] {
        let o = assert_fails(&["verify", &path, "--pubkey", k], "FAIL signature");
        assert!(
            text(&o).contains(&format!("not by the trusted key {key}")),
            "{}",
            text(&o)
        );
    }

    // A keys.json listing the intruder's key among others trusts it.
    let both = save(
        dir.path(),
        "both.json",
        serde_json::json!({"keys": [
            {"algorithm": "ed25519", "public_key": key, "created_at": "2026-11-24T09:00:00Z"},
            {"algorithm": "ed25519", "public_key": intruder().public_hex(),
             "created_at": "2026-01-01T00:00:00Z"}]})
        .to_string()
        .as_bytes(),
    );
    let o = run(&["verify", &path, "--pubkey", &both]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn data_files_are_proved_to_be_a_step_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = save(
        dir.path(),
        "run.zip",
        &make_bundle(&signer()).write().unwrap(),
    );
    let data = steps();
    let clean_parquet = write_parquet(dir.path(), "clean.parquet", &data[1].1);
    let clean_csv = write_csv(dir.path(), "clean.csv", &data[1].1);

    for (file, step) in [
        (&clean_parquet, "clean"),
        (&clean_csv, "clean"),
        (&clean_parquet, "1"),
    ] {
        let o = run(&["verify", &bundle, "--data", file, "--step", step]);
        assert_eq!(o.status.code(), Some(0), "{file} {step}: {}", text(&o));
        assert!(
            text(&o).contains("the data is exactly this step's rows (4 rows"),
            "{}",
            text(&o)
        );
    }
    // Without --step, verify finds which step it is.
    let o = run(&["verify", &bundle, "--data", &clean_csv]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("exactly the output of step 1 `clean`"),
        "{}",
        text(&o)
    );

    // One changed cell: not the step's output.
    let changed = batch(
        vec![4, 2, 3, 5],
        vec![4.0, 2.5, 3.0, 5.5],
        vec!["d", "b", "c", "e"],
    );
    let changed = write_parquet(dir.path(), "changed.parquet", &changed);
    let o = assert_fails(
        &["verify", &bundle, "--data", &changed, "--step", "clean"],
        "FAIL data 1 clean",
    );
    assert!(
        text(&o).contains("not this step's output")
            && text(&o).contains("(the columns whose values differ (in row order): `amount`)"),
        "{}",
        text(&o)
    );
    // The same values under another column's name (a pandas index written under its own
    // name, say): the names are what differ.
    let renamed = data[1].1.clone();
    let mut fields: Vec<Field> = (renamed.schema().fields().iter())
        .map(|f| f.as_ref().clone())
        .collect();
    fields[2] = Field::new("__index_level_0__", DataType::Utf8, false);
    let renamed =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), renamed.columns().to_vec()).unwrap();
    let renamed = write_parquet(dir.path(), "renamed.parquet", &renamed);
    let o = assert_fails(
        &["verify", &bundle, "--data", &renamed, "--step", "clean"],
        "FAIL data 1 clean",
    );
    assert!(
        text(&o).contains(
            "(the data has columns the step has not: `__index_level_0__`; the step has \
             columns the data has not: `name`)"
        ),
        "{}",
        text(&o)
    );
    // The right file named as the wrong step.
    assert_fails(
        &[
            "verify",
            &bundle,
            "--data",
            &clean_parquet,
            "--step",
            "load",
        ],
        "FAIL data 0 load",
    );
    assert_fails(
        &[
            "verify",
            &bundle,
            "--data",
            &clean_parquet,
            "--step",
            "nosuch",
        ],
        "FAIL data",
    );
}

#[test]
fn errors_exit_2_and_bad_files_exit_1_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = save(
        dir.path(),
        "run.zip",
        &make_bundle(&signer()).write().unwrap(),
    );

    let o = run(&["verify", &dir.path().join("missing.zip").to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot read the bundle"), "{}", text(&o));

    let o = run(&["verify", &bundle, "--pubkey", "xyz"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("neither 64 hex digits nor a file"),
        "{}",
        text(&o)
    );

    let o = run(&[
        "verify",
        &bundle,
        "--data",
        &dir.path().join("nope.parquet").to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("nope.parquet"), "{}", text(&o));

    // A file that is read but is not a bundle at all is not a valid bundle: it fails (exit
    // 1), as a damaged one does, and the report says why.
    let not_zip = save(dir.path(), "notes.txt", b"hello");
    let o = run(&["verify", &not_zip]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(failures(&o).len(), 1, "{}", text(&o));
    assert!(failures(&o)[0].starts_with("FAIL bundle"), "{}", text(&o));
    assert!(text(&o).contains("not a readable zip"), "{}", text(&o));

    // A byte flipped in the manifest's data: its CRC-32 fails, the bundle cannot be read,
    // and that is a failed verification (exit 1), not a failure to verify.
    let mut flipped = std::fs::read(&bundle).unwrap();
    flipped[100] ^= 0x20;
    let flipped = save(dir.path(), "flipped.zip", &flipped);
    let o = run(&["verify", &flipped]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(failures(&o)[0].starts_with("FAIL bundle"), "{}", text(&o));
}
