//! Redaction over real loopback HTTP and the CLI: an ended run's details and kept data are
//! removed from a real store (files and all, unless another run's step still names them),
//! refused for open runs, tokens without `admin` and requests that say no reason; what
//! proves the run stays, and its new bundle verifies and says what was redacted.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use pipeproof_tests::*;
use serde_json::{Value, json};

const ARROW: &str = "application/vnd.apache.arrow.stream";

fn people(ids: &[i64], balances: &[f64], names: &[&str]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("balance", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef,
            Arc::new(Float64Array::from(balances.to_vec())),
            Arc::new(StringArray::from(names.to_vec())),
        ],
    )
    .unwrap()
}

/// The three snapshots of a run: load, then a balance and a name changed, a row added and
/// one removed; then another name changed.
fn snapshots() -> [RecordBatch; 3] {
    [
        people(&[1, 2, 3], &[10.0, 20.0, 30.0], &["Ada", "Bo", "Cy"]),
        people(&[1, 2, 4], &[10.0, 25.0, 40.0], &["Ada", "Bob", "Di"]),
        people(&[1, 2, 4], &[10.0, 25.0, 40.0], &["Ada L.", "Bob", "Di"]),
    ]
}

/// A run of `steps` of [`snapshots`], the first kept with `artifact=true` when asked; sealed
/// unless `open`.
fn run_of(addr: &str, pipeline: &str, steps: usize, artifact: bool, open: bool) -> String {
    let id = create_run(addr, pipeline);
    for (i, b) in snapshots().iter().take(steps).enumerate() {
        let kept = if artifact && i == 0 {
            "&artifact=true"
        } else {
            ""
        };
        let r = post(
            addr,
            &format!("/api/v1/runs/{id}/steps?step=s{i}&key=id{kept}"),
            ADMIN,
            ARROW,
            &ipc_stream(b),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    if !open {
        let r = post_json(addr, &format!("/api/v1/runs/{id}/seal"), ADMIN, &json!({}));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    id
}

fn blob_files(data: &Path) -> usize {
    std::fs::read_dir(data.join("blobs"))
        .unwrap()
        .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum()
}

fn redact(addr: &str, id: &str, token: &str, body: Value) -> Reply {
    post_json(addr, &format!("/api/v1/runs/{id}/redact"), token, &body)
}

fn bundle(addr: &str, id: &str, dir: &Path, name: &str) -> (Vec<u8>, String) {
    let r = get(addr, &format!("/api/v1/runs/{id}/bundle"), Some(ADMIN));
    assert_eq!(r.status, 200, "{}", r.text());
    let path = dir.join(name);
    std::fs::write(&path, &r.body).unwrap();
    (r.body, path.to_string_lossy().into_owned())
}

#[test]
fn an_ended_runs_details_are_redacted_and_its_proofs_stay() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data, &[]);
    let a = s.addr.clone();
    let keys = get(&a, "/api/v1/keys", Some(ADMIN)).json();
    let pubkey = keys["keys"][0]["public_key"].as_str().unwrap().to_string();

    let id = run_of(&a, "accounts", 3, true, false);
    // Another run with the same first two snapshots: its step 1 details are the same
    // blobs as the first run's.
    let twin = run_of(&a, "accounts", 2, false, false);
    let open = run_of(&a, "accounts", 1, false, true);
    let (before, before_path) = bundle(&a, &id, dir.path(), "before.zip");
    let o = run(&["verify", &before_path, "--pubkey", &pubkey]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Refused: a token without admin, no reason, a step that is not there, an open run.
    let r = post_json(
        &a,
        "/api/v1/tokens",
        ADMIN,
        &json!({"name": "pipeline", "scopes": ["ingest", "read"]}),
    );
    let ingest = r.json()["token"].as_str().unwrap().to_string();
    redact(&a, &id, &ingest, json!({"reason": "erasure"})).problem(403);
    let d = redact(&a, &id, ADMIN, json!({"reason": "  "})).problem(400);
    assert!(d.contains("needs a reason"), "{d}");
    let d = redact(&a, &id, ADMIN, json!({"reason": "r", "steps": [1, 9]})).problem(404);
    assert!(d.contains("no step 9"), "{d}");
    let d = redact(&a, &open, ADMIN, json!({"reason": "erasure"})).problem(409);
    assert!(
        d.contains("is open") && d.contains("seal or fail it"),
        "{d}"
    );
    redact(&a, "nope", ADMIN, json!({"reason": "erasure"})).problem(404);
    let d = redact(&a, &id, ADMIN, json!({"reason": "r", "steps": []})).problem(400);
    assert!(d.contains("`steps` is empty"), "{d}");
    let d = redact(&a, &id, ADMIN, json!({"reason": "ok\u{1b}[2A"})).problem(400);
    assert!(d.contains("control character"), "{d}");

    // What a retention job would redact: the ended runs, not the open one (said apart).
    let url = format!("http://{a}");
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--server", &url, "--token", ADMIN]);
        run(&all)
    };
    let dry = |cli: &dyn Fn(&[&str]) -> std::process::Output| {
        let o = cli(&[
            "redact",
            "--ended-before",
            "2999-01-01",
            "--reason",
            "retention",
            "--dry-run",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        text(&o)
    };
    let out = dry(&cli);
    assert!(
        out.contains(&id) && out.contains(&twin) && !out.contains(&format!("{open}\n")),
        "{out}"
    );
    assert!(out.contains("2 runs would be redacted"), "{out}");
    assert!(
        out.contains("1 open run created before 2999-01-01 is skipped"),
        "{out}"
    );
    let files = blob_files(&data);
    assert_eq!(
        get(&a, &format!("/api/v1/runs/{id}"), Some(ADMIN)).json()["steps"][1]["redacted"],
        Value::Null,
        "nothing changed by the refusals"
    );

    // The run redacted whole.
    let r = redact(&a, &id, ADMIN, json!({"reason": "erasure request 42"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let done = r.json();
    assert_eq!(done["steps"], json!([0, 1, 2]), "{done}");
    assert_eq!(done["already"], json!([]));
    // Step 0's kept data and step 2's detail tables: its changed cells and its empty added
    // and removed rows (one blob: the same bytes). Step 1's are the twin's too, and stay.
    let removed = done["blobs_removed"].as_u64().unwrap();
    assert_eq!(removed, 3, "{done}");
    assert_eq!(blob_files(&data), files - removed as usize);
    assert!(done["bytes_freed"].as_u64().unwrap() > 0);

    let steps = get(&a, &format!("/api/v1/runs/{id}"), Some(ADMIN)).json()["steps"].clone();
    for i in 0..3 {
        assert_eq!(steps[i]["redacted"]["reason"], "erasure request 42");
    }
    assert_eq!(steps[0]["artifact"], false);
    for kind in ["added", "removed", "changed"] {
        let d = get(
            &a,
            &format!("/api/v1/runs/{id}/steps/1/details?kind={kind}"),
            Some(ADMIN),
        )
        .problem(410);
        assert!(
            d.contains("step 1 of run")
                && d.contains("its diff details were removed")
                && d.contains("erasure request 42"),
            "{d}"
        );
    }
    let d = get(
        &a,
        &format!("/api/v1/runs/{id}/steps/0/artifact"),
        Some(ADMIN),
    )
    .problem(410);
    assert!(
        d.contains("step 0 of run") && d.contains("its kept data was removed"),
        "{d}"
    );
    // A step stored without its data never had any, redacted or not.
    let d = get(
        &a,
        &format!("/api/v1/runs/{id}/steps/1/artifact"),
        Some(ADMIN),
    )
    .problem(404);
    assert!(d.contains("artifact=true"), "{d}");
    // A first step has no diff, redacted or not.
    let d = get(
        &a,
        &format!("/api/v1/runs/{id}/steps/0/details?kind=added"),
        Some(ADMIN),
    )
    .problem(404);
    assert!(d.contains("first of its run"), "{d}");
    // The twin's details, sharing blobs, are all there.
    for kind in ["added", "removed", "changed"] {
        let r = get(
            &a,
            &format!("/api/v1/runs/{twin}/steps/1/details?kind={kind}"),
            Some(ADMIN),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // A trace still follows the row by its hashes; what the details said is gone.
    let t = get(&a, &format!("/api/v1/runs/{id}/trace?key=2"), Some(ADMIN)).json();
    let states: Vec<&str> = (t["steps"].as_array().unwrap().iter())
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["added", "changed", "unchanged"], "{t}");
    assert_eq!(t["steps"][1]["redacted"], true);
    assert_eq!(
        t["steps"][0].get("redacted"),
        None,
        "step 0's kept data is not what a trace reads"
    );
    assert_eq!(t["steps"][1]["changes"], json!([]));
    assert_eq!(t["steps"][2]["values"], Value::Null);

    // The bundle is written anew (the kept one held the details) and verifies.
    let (after, after_path) = bundle(&a, &id, dir.path(), "after.zip");
    assert_ne!(after, before);
    assert!(after.len() < before.len());
    let o = run(&["verify", &after_path, "--pubkey", &pubkey]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("redacted at") && out.contains("erasure request 42"),
        "{out}"
    );
    let listed = run(&["verify", &after_path, "--format", "json"]);
    let report: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let redactions: Vec<&Value> = (report["checks"].as_array().unwrap().iter())
        .filter(|c| c["name"] == "redactions")
        .collect();
    assert_eq!(redactions.len(), 1, "{report}");
    assert!(
        redactions[0]["detail"]
            .as_str()
            .unwrap()
            .contains("steps 1, 2")
    );

    // Again: nothing more to do, the first redaction stays.
    let again = redact(&a, &id, ADMIN, json!({"reason": "another"})).json();
    assert_eq!(again["steps"], json!([]));
    assert_eq!(again["already"], json!([0, 1, 2]));
    assert_eq!(again["blobs_removed"], 0);
    let steps = get(&a, &format!("/api/v1/runs/{id}"), Some(ADMIN)).json()["steps"].clone();
    assert_eq!(steps[1]["redacted"]["reason"], "erasure request 42");

    // The CLI: one step of the twin; then nothing is left to redact.
    let o = cli(&["redact", &twin, "--step", "1", "--reason", "retention"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("run {twin}: redacted step 1 (")),
        "{}",
        text(&o)
    );
    assert!(dry(&cli).contains("0 runs would be redacted"));
    let o = cli(&["redact", "--ended-before", "2000-01-01", "--reason", "r"]);
    assert!(text(&o).contains("no run to redact"), "{}", text(&o));
    // A run that cannot be redacted does not stop the others; the failure is said at the end.
    let o = cli(&["redact", &open, &twin, "--reason", "r"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains(&format!("run {twin}: nothing to redact")),
        "{out}"
    );
    assert!(
        out.contains(&format!("run {open} was not redacted")) && out.contains("is open"),
        "{out}"
    );
    assert!(out.contains("1 run of 2 not redacted"), "{out}");
    // One run named, and not redacted: its error alone, not "no run to redact" before it.
    let o = cli(&["redact", "no-such-run", "--reason", "r"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(!out.contains("no run to redact"), "{out}");
    assert_eq!(out.matches("error").count(), 1, "{out}");
    assert!(out.contains("run no-such-run was not redacted"), "{out}");

    // A redacted store checks clean.
    assert!(s.terminate());
    let o = run(&[
        "check",
        "--data-dir",
        data.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// An erasure with `statistics`: the steps' column statistics go too (their minimum and
/// maximum are values of the data), the records keep their digest, and the run's new bundle
/// (v3) verifies, saying so; statistics stay where they were not asked for.
#[test]
fn statistics_are_redacted_when_asked_and_the_bundle_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data, &[]);
    let a = s.addr.clone();
    let id = run_of(&a, "accounts", 3, false, false);
    let other = run_of(&a, "accounts", 2, false, false);
    let step = |id: &str, i: usize| {
        let r = get(&a, &format!("/api/v1/runs/{id}"), Some(ADMIN));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["steps"][i].clone()
    };
    assert!(!step(&id, 0)["stats"].as_array().unwrap().is_empty());

    // Step 0 has no details, but has statistics: with `statistics`, it has something to go.
    let r = redact(
        &a,
        &id,
        ADMIN,
        json!({"reason": "erasure 7", "steps": [0], "statistics": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let done = r.json();
    assert_eq!(
        (&done["steps"], &done["statistics"]),
        (&json!([]), &json!([0]))
    );
    let first = step(&id, 0);
    assert_eq!(first["stats"], json!([]));
    assert_eq!(first["statistics_redacted"]["reason"], "erasure 7");
    assert!(first.get("redacted").is_none(), "{first}");
    // The next step's summary held them (its "before" side): they went from it too.
    let second = step(&id, 1);
    assert!(second["statistics_redacted"].is_null());
    assert_eq!(second["diff"]["stats"], json!([]), "{second}");
    assert!(!second["stats"].as_array().unwrap().is_empty());
    assert!(!step(&id, 2)["diff"]["stats"].as_array().unwrap().is_empty());
    let r = get(&a, &format!("/api/v1/runs/{id}/steps/1/diff"), Some(ADMIN));
    assert_eq!(r.json()["stats"], json!([]), "{}", r.text());

    // The rest, details and statistics; then nothing is left.
    let done = redact(
        &a,
        &id,
        ADMIN,
        json!({"reason": "erasure 8", "statistics": true}),
    )
    .json();
    assert_eq!(
        (&done["steps"], &done["statistics"]),
        (&json!([1, 2]), &json!([1, 2]))
    );
    assert_eq!(done["already"], json!([0]));
    let done = redact(
        &a,
        &id,
        ADMIN,
        json!({"reason": "again", "statistics": true}),
    )
    .json();
    assert_eq!(
        (&done["statistics"], &done["already"]),
        (&json!([]), &json!([0, 1, 2]))
    );
    assert_eq!(
        step(&id, 0)["statistics_redacted"]["reason"],
        "erasure 7",
        "the first stays"
    );
    // Without `statistics`, statistics stay.
    let r = redact(&a, &other, ADMIN, json!({"reason": "retention"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!step(&other, 1)["stats"].as_array().unwrap().is_empty());
    assert!(step(&other, 1)["statistics_redacted"].is_null());

    let (bytes, path) = bundle(&a, &id, dir.path(), "erased.zip");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    assert!(zip.by_name("steps/00000/stats.json").is_err());
    let mut manifest = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("manifest.json").unwrap(), &mut manifest)
        .unwrap();
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(manifest["spec"], "pipeproof-bundle-v3");
    assert_eq!(manifest["statistics_redacted"][2]["reason"], "erasure 8");
    let o = run(&["verify", &path]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("not in the bundle: redacted at") && out.contains("keeps their digest"),
        "{out}"
    );
    let (_, path) = bundle(&a, &other, dir.path(), "retained.zip");
    let o = run(&["verify", &path]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // The CLI asks for statistics too, and says what it did.
    let third = run_of(&a, "accounts", 2, false, false);
    let url = format!("http://{a}");
    let o = run(&[
        "redact",
        &third,
        "--reason",
        "erasure 9",
        "--statistics",
        "--server",
        &url,
        "--token",
        ADMIN,
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("statistics removed from steps 0, 1"), "{out}");
    assert!(s.terminate());
    let o = run(&["check", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
