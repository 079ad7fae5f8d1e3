//! `pipeproof send`, `seal` and `export` against the real `pipeproof serve` over loopback
//! HTTP: a run made from files in three formats, its diff counts as the server computed
//! them, an idempotent re-send, a sealed run's bundle that `pipeproof verify` accepts with
//! the server's key, and the server's problem details passed on as clear errors.

use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use pipeproof_tests::{ADMIN, Server, binary, get, post_json, text, write};

fn batch(ids: &[i64], amounts: &[f64], names: &[&str]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef,
            Arc::new(Float64Array::from(amounts.to_vec())),
            Arc::new(StringArray::from(names.to_vec())),
        ],
    )
    .unwrap()
}

/// Runs the CLI against a server, with the server and token from the environment.
fn cli(server: &Server, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env("PIPEPROOF_URL", format!("http://{}", server.addr))
        .env_remove("PIPEPROOF_TOKEN");
    if let Some(t) = token {
        cmd.env("PIPEPROOF_TOKEN", t);
    }
    let out = cmd.output().expect("run pipeproof");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "pipeproof panicked: {stderr}");
    out
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

#[test]
fn send_seal_export_and_verify_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let files = dir.path();
    let load = write(
        files,
        "load.parquet",
        &batch(&[1, 2, 3, 4], &[1.0, 2.0, 3.0, 4.0], &["a", "b", "c", "d"]),
    );
    // 1 removed, 5 added, 2 changed; rows shuffled.
    let clean = write(
        files,
        "clean.csv",
        &batch(&[4, 2, 3, 5], &[4.0, 2.5, 3.0, 5.0], &["d", "b", "c", "e"]),
    );
    // 4's name changed.
    let enrich = write(
        files,
        "enrich.arrows",
        &batch(&[4, 2, 3, 5], &[4.0, 2.5, 3.0, 5.0], &["D", "b", "c", "e"]),
    );

    // A new run with the first step.
    let o = cli(
        &server,
        Some(ADMIN),
        &[
            "send",
            &load,
            "--new-run",
            "--pipeline",
            "daily",
            "--label",
            "env=test",
            "--code-version",
            "v1.2",
            "--step",
            "load",
            "--key",
            "id",
            "--format",
            "json",
        ],
    );
    let j = json(&o);
    let run = j["run_id"].as_str().unwrap().to_string();
    assert_eq!(j["run"]["pipeline"], "daily");
    assert_eq!(j["run"]["labels"]["env"], "test");
    assert_eq!(j["run"]["code_version"], "v1.2");
    assert_eq!(j["step"]["record"]["index"], 0);
    assert_eq!(j["step"]["record"]["rows"], 4);
    assert_eq!(j["step"]["diff"], serde_json::Value::Null);
    assert_eq!(j["replayed"], false);

    // The second step from CSV, table output.
    let o = cli(
        &server,
        Some(ADMIN),
        &[
            "send", &clean, "--run", &run, "--step", "clean", "--key", "id",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    for want in [
        &format!("step 1 `clean` of run {run}"),
        "(CSV)",
        "+1 -1 ~1",
        "(4 → 4 rows)",
        "record hash",
    ] {
        assert!(out.contains(want), "no `{want}` in:\n{out}");
    }

    // The third step as an Arrow stream, sent twice with the same Idempotency-Key.
    let args = [
        "send",
        &enrich,
        "--run",
        &run,
        "--step",
        "enrich",
        "--key",
        "id",
        "--idempotency-key",
        "enrich-once",
        "--format",
        "json",
    ];
    let first = json(&cli(&server, Some(ADMIN), &args));
    assert_eq!(first["replayed"], false);
    assert_eq!(first["step"]["diff"]["changed"], 1);
    let again = json(&cli(&server, Some(ADMIN), &args));
    assert_eq!(again["replayed"], true);
    assert_eq!(again["step"]["hash"], first["step"]["hash"]);
    assert_eq!(again["step"]["record"]["index"], 2, "stored once");

    // Seal, export, verify against the server's key.
    let o = cli(&server, Some(ADMIN), &["seal", &run]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("run {run} is sealed with 3 steps")),
        "{}",
        text(&o)
    );
    let bundle = dir.path().join("out").join("run.zip");
    std::fs::create_dir_all(bundle.parent().unwrap()).unwrap();
    let bundle = bundle.to_string_lossy().into_owned();
    let o = cli(
        &server,
        Some(ADMIN),
        &["export", &run, "-o", &bundle, "--verify"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("verified: all"), "{}", text(&o));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec!["run.zip"], "no temporary file left behind");
    // Into a directory: under the run's name.
    let into = dir.path().join("into");
    std::fs::create_dir(&into).unwrap();
    let o = cli(
        &server,
        Some(ADMIN),
        &["export", &run, "-o", &into.to_string_lossy()],
    );
    assert!(o.status.success(), "{}", text(&o));
    let named = into.join(format!("{run}.pipeproof.zip"));
    assert_eq!(
        std::fs::read(&named).unwrap(),
        std::fs::read(&bundle).unwrap()
    );

    let keys = get(&server.addr, "/api/v1/keys", Some(ADMIN));
    assert_eq!(keys.status, 200, "{}", keys.text());
    let keys = keys.json();
    let key = keys["keys"][0]["public_key"].as_str().unwrap();
    let o = cli(
        &server,
        None,
        &[
            "verify", &bundle, "--pubkey", key, "--data", &clean, "--step", "clean",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("by the trusted key"), "{}", text(&o));

    // A sealed run takes no more steps: the server's 409 detail is passed on.
    let o = cli(
        &server,
        Some(ADMIN),
        &["send", &clean, "--run", &run, "--step", "late"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("409"), "{out}");
    assert!(out.contains("create a new run"), "{out}");
}

#[test]
fn server_problems_become_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let file = write(
        dir.path(),
        "dups.parquet",
        &batch(&[1, 1], &[1.0, 2.0], &["a", "b"]),
    );

    // No token.
    let o = cli(&server, None, &["send", &file, "--run", "r", "--step", "s"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("401"), "{}", text(&o));
    assert!(text(&o).contains("PIPEPROOF_TOKEN"), "{}", text(&o));

    // Unknown run.
    let o = cli(
        &server,
        Some(ADMIN),
        &["send", &file, "--run", "no-such-run", "--step", "s"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("404") && text(&o).contains("no-such-run"),
        "{}",
        text(&o)
    );

    // An empty run id (an unset `$RUN`) is refused before anything is sent, by every
    // command that takes one.
    let runs_before = get(&server.addr, "/api/v1/runs", Some(ADMIN)).json();
    for args in [
        &["send", &file, "--run", "", "--step", "s"][..],
        &["seal", " "],
        &["export", "", "--output", "x.zip"],
        &["redact", "", "--reason", "erasure"],
    ] {
        let o = cli(&server, Some(ADMIN), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("a run id is empty"), "{}", text(&o));
    }
    assert_eq!(
        get(&server.addr, "/api/v1/runs", Some(ADMIN)).json(),
        runs_before
    );

    // Duplicate keys: 422 with the server's explanation; the new run is ended as failed
    // with it, not left open and empty.
    let o = cli(
        &server,
        Some(ADMIN),
        &[
            "send",
            &file,
            "--new-run",
            "--pipeline",
            "p",
            "--step",
            "s",
            "--key",
            "id",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("422"), "{out}");
    assert!(out.to_lowercase().contains("duplicate"), "{out}");
    assert!(
        out.contains("was created; it is ended as failed, with the reason"),
        "{out}"
    );
    let runs = get(
        &server.addr,
        "/api/v1/runs?pipeline=p&status=failed",
        Some(ADMIN),
    )
    .json();
    assert_eq!(runs["total"], 1, "{runs}");
    let failed = &runs["items"][0];
    assert_eq!(failed["steps"], 0, "{failed}");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("the first step `s` was refused:") && error.contains("422"),
        "{failed}"
    );

    // What the file and the options show the server would refuse, before a row is read: a
    // key the file does not have, a file that is not data, a type fingerprint v1 cannot
    // encode, a column name twice, options out of range. Refused before a run is created.
    let runs_before = get(&server.addr, "/api/v1/runs", Some(ADMIN)).json()["total"].clone();
    let not_data = dir.path().join("notes.parquet");
    std::fs::write(&not_data, b"not parquet").unwrap();
    let nested = {
        let tags = arrow_array::ListArray::from_iter_primitive::<arrow_array::types::Int64Type, _, _>(
            vec![Some(vec![Some(1)])],
        );
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("tags", arrow_array::Array::data_type(&tags).clone(), true),
        ]));
        let columns = vec![
            Arc::new(Int64Array::from(vec![1])) as ArrayRef,
            Arc::new(tags),
        ];
        write(
            dir.path(),
            "nested.parquet",
            &RecordBatch::try_new(schema, columns).unwrap(),
        )
    };
    let twice = dir.path().join("twice.csv");
    std::fs::write(&twice, "id,name,name\n1,a,b\n").unwrap();
    let (twice, not_data) = (twice.to_string_lossy(), not_data.to_string_lossy());
    for (data, options, want) in [
        (
            &*file,
            &["--key", "nope"][..],
            "key column `nope` is not in",
        ),
        (&*not_data, &["--key", "id"], "notes.parquet"),
        (
            &*nested,
            &["--key", "id"],
            "nested.parquet: column `tags` has type list",
        ),
        (
            &*twice,
            &["--key", "id"],
            "twice.csv: column name `name` appears more than once",
        ),
        (
            &*file,
            &["--abs-tol", "-1"],
            "invalid value '-1' for '--abs-tol <ABS_TOL>': must be a finite number, 0 or more",
        ),
        (
            &*file,
            &["--summary-only-threshold", "2"],
            "invalid value '2' for '--summary-only-threshold <SUMMARY_ONLY_THRESHOLD>': must be \
             between 0 and 1",
        ),
        (
            &*file,
            &["--key", "id", "--ignore", "id"],
            "key column `id` cannot also be ignored; no run was created",
        ),
    ] {
        let o = cli(
            &server,
            Some(ADMIN),
            &[
                &["send", data, "--new-run", "--pipeline", "p", "--step", "s"][..],
                options,
            ]
            .concat(),
        );
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(want), "{options:?}: {}", text(&o));
    }
    let runs_after = get(&server.addr, "/api/v1/runs", Some(ADMIN)).json()["total"].clone();
    assert_eq!(runs_before, runs_after, "no run was created");

    // A read-only token cannot send.
    let made = post_json(
        &server.addr,
        "/api/v1/tokens",
        ADMIN,
        &serde_json::json!({"name": "viewer", "scopes": ["read"]}),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let made = made.json();
    let viewer = made["token"].as_str().unwrap();
    let o = cli(
        &server,
        Some(viewer),
        &["send", &file, "--run", "r", "--step", "s"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("403"), "{}", text(&o));

    // Export of an unknown run: an error, and no file written.
    let out = dir.path().join("x.zip");
    let o = cli(
        &server,
        Some(ADMIN),
        &["export", "nope", "-o", &out.to_string_lossy()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!out.exists());

    // Nothing listening.
    let o = Command::new(binary())
        .args([
            "seal",
            "r",
            "--server",
            "http://127.0.0.1:1",
            "--token",
            "t",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("cannot reach a pipeproof server"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_bundle_with_seventeen_digit_floats_verifies() {
    // 25.026954311228902 prints as 17 digits; serde_json's default parser reads that
    // text back one ULP off, which changed the statistics digest of a stored step (its
    // mean) and broke verification of real data. The server must read back exactly.
    let x = 25.026954311228902_f64;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let a = write(
        dir.path(),
        "a.parquet",
        &batch(&[1, 2], &[x, x], &["a", "b"]),
    );
    let b = write(
        dir.path(),
        "b.csv",
        &batch(&[1, 2, 3], &[x, x, 250.62897644515778], &["a", "b", "c"]),
    );
    let j = json(&cli(
        &server,
        Some(ADMIN),
        &[
            "send",
            &a,
            "--new-run",
            "--pipeline",
            "floats",
            "--step",
            "a",
            "--key",
            "id",
            "--format",
            "json",
        ],
    ));
    let run = j["run_id"].as_str().unwrap().to_string();
    let o = cli(
        &server,
        Some(ADMIN),
        &["send", &b, "--run", &run, "--step", "b", "--key", "id"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = cli(&server, Some(ADMIN), &["seal", &run]);
    assert!(o.status.success(), "{}", text(&o));
    let bundle = dir.path().join("floats.zip").to_string_lossy().into_owned();
    let o = cli(
        &server,
        Some(ADMIN),
        &["export", &run, "-o", &bundle, "--verify"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("verified: all"), "{}", text(&o));
    // And the CLI reports the value exactly as stored.
    assert_eq!(j["step"]["stats"][1]["mean"].as_f64(), Some(x));
}

/// A new run of one step, sealed; its id.
fn sealed_run(server: &Server, file: &str) -> String {
    let o = cli(
        server,
        Some(ADMIN),
        &[
            "send",
            file,
            "--new-run",
            "--pipeline",
            "logged",
            "--step",
            "load",
            "--format",
            "json",
        ],
    );
    let run = json(&o)["run_id"].as_str().unwrap().to_string();
    let o = cli(server, Some(ADMIN), &["seal", &run]);
    assert!(o.status.success(), "{}", text(&o));
    run
}

/// `pipeproof log`: a head kept, then proved to be the start of the log later, and a bundle
/// proved to be in it; against a server that lost that history (the same key, another log),
/// neither proof holds.
#[test]
fn the_log_is_kept_checked_and_proved_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let files = dir.path();
    let file = write(
        files,
        "load.parquet",
        &batch(&[1, 2], &[1.0, 2.0], &["a", "b"]),
    );
    let path = |name: &str| files.join(name).to_string_lossy().to_string();
    let first = sealed_run(&server, &file);
    let o = cli(
        &server,
        Some(ADMIN),
        &["log", "head", "-o", &path("h1.json")],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("the log holds 1 seal, root"),
        "{}",
        text(&o)
    );
    // A kept head is not overwritten by whatever the server says next.
    let o = cli(
        &server,
        Some(ADMIN),
        &["log", "head", "-o", &path("h1.json")],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("exists"), "{}", text(&o));
    let keys = get(&server.addr, "/api/v1/keys", Some(ADMIN)).text();
    std::fs::write(path("keys.json"), keys).unwrap();
    sealed_run(&server, &file);
    let o = cli(
        &server,
        Some(ADMIN),
        &[
            "log",
            "check",
            &path("h1.json"),
            "-o",
            &path("h2.json"),
            "--pubkey",
            &path("keys.json"),
            "--entries",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("its 2 entries are seals signed by the trusted key"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("the log of 1 seal signed at")
            && text(&o).contains("is the start of the log of 2 seals")
            && text(&o).contains("by the trusted key"),
        "{}",
        text(&o)
    );
    let o = cli(
        &server,
        Some(ADMIN),
        &["export", &first, "-o", &path("first.zip")],
    );
    assert!(o.status.success(), "{}", text(&o));
    for head in ["h1.json", "h2.json"] {
        let o = cli(
            &server,
            Some(ADMIN),
            &["log", "prove", &path("first.zip"), "--head", &path(head)],
        );
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains(&format!("the seal of run {first} is entry 0")),
            "{}",
            text(&o)
        );
    }
    // A wrong token is a failure to check (exit 2), not a failed proof.
    let o = cli(
        &server,
        Some("pp_wrong"),
        &[
            "log",
            "prove",
            &path("first.zip"),
            "--head",
            &path("h2.json"),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // A head edited after it was signed is refused.
    let mut edited: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("h2.json")).unwrap()).unwrap();
    edited["size"] = 1.into();
    std::fs::write(path("edited.json"), edited.to_string()).unwrap();
    let o = cli(
        &server,
        Some(ADMIN),
        &["log", "check", &path("edited.json")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("signature does not match"),
        "{}",
        text(&o)
    );
    // An open run's bundle has no seal to find.
    let o = cli(
        &server,
        Some(ADMIN),
        &[
            "send",
            &file,
            "--new-run",
            "--pipeline",
            "open",
            "--step",
            "load",
            "--format",
            "json",
        ],
    );
    let open = json(&o)["run_id"].as_str().unwrap().to_string();
    cli(
        &server,
        Some(ADMIN),
        &["export", &open, "-o", &path("open.zip")],
    );
    let o = cli(&server, Some(ADMIN), &["log", "prove", &path("open.zip")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("is not sealed in this bundle"),
        "{}",
        text(&o)
    );
    drop(server);

    // The same key, another history: the runs sealed before are not in it.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(data.join("signing.key"), other.join("signing.key")).unwrap();
    let forked = Server::start(&other, &[]);
    sealed_run(&forked, &file);
    let o = cli(&forked, Some(ADMIN), &["log", "check", &path("h2.json")]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("the log shrank: it held 2 seals when signed at"),
        "{}",
        text(&o)
    );
    sealed_run(&forked, &file);
    let o = cli(
        &forked,
        Some(ADMIN),
        &[
            "log",
            "check",
            &path("h2.json"),
            "--pubkey",
            &path("keys.json"),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("the log of 2 entries is not the start of the log of 2 entries")
            && text(&o).contains("the server's history is not the one it signed"),
        "{}",
        text(&o)
    );
    let o = cli(
        &forked,
        Some(ADMIN),
        &[
            "log",
            "prove",
            &path("first.zip"),
            "--pubkey",
            &path("keys.json"),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("has no entry for run {first}")),
        "{}",
        text(&o)
    );
    drop(forked);

    // Another server, another key: without --pubkey, a head is checked against the key
    // that signed the bundle's seal.
    let stranger = Server::start(&dir.path().join("stranger"), &[]);
    sealed_run(&stranger, &file);
    let o = cli(
        &stranger,
        Some(ADMIN),
        &["log", "prove", &path("first.zip")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("not by the trusted key"), "{}", text(&o));
}

/// `pipeproof key rotate`: refused while the server runs; after it the server signs with a
/// new key, lists both with the hand-over, and everything sealed or kept before still
/// verifies: an old bundle with the published keys, a head kept before (the kept head's key
/// handed over), a bundle's seal in the log, and `pipeproof check`.
#[test]
fn a_rotated_key_hands_over_and_the_past_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &[]);
    let files = dir.path();
    let file = write(
        files,
        "load.parquet",
        &batch(&[1, 2], &[1.0, 2.0], &["a", "b"]),
    );
    let path = |name: &str| files.join(name).to_string_lossy().to_string();
    let first = sealed_run(&server, &file);
    let o = cli(
        &server,
        Some(ADMIN),
        &["export", &first, "-o", &path("first.zip")],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = cli(
        &server,
        Some(ADMIN),
        &["log", "head", "-o", &path("h1.json")],
    );
    assert!(o.status.success(), "{}", text(&o));
    let keys = get(&server.addr, "/api/v1/keys", Some(ADMIN)).json();
    let old_key = keys["keys"][0]["public_key"].as_str().unwrap().to_string();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);

    let rotate = || {
        Command::new(binary())
            .args(["key", "rotate", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap()
    };
    let o = rotate();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("another pipeproof server is using"),
        "{}",
        text(&o)
    );
    server.kill();
    std::fs::copy(data.join("signing.key"), path("old.key")).unwrap();
    let o = rotate();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("retired      {old_key}")),
        "{}",
        text(&o)
    );
    assert!(!data.join("signing.key.next").exists());
    let server = Server::start(&data, &[]);

    // Both keys listed, the new one first, with the hand-over both signed.
    let keys = get(&server.addr, "/api/v1/keys", Some(ADMIN)).json();
    let listed = keys["keys"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{keys}");
    let new_key = listed[0]["public_key"].as_str().unwrap().to_string();
    assert_ne!(new_key, old_key);
    assert!(listed[0].get("retired_at").is_none(), "{keys}");
    assert_eq!(listed[1]["public_key"], old_key.as_str());
    assert!(listed[1]["retired_at"].is_string(), "{keys}");
    let handover: pipeproof_core::sign::KeyHandover =
        serde_json::from_value(listed[0]["handover"].clone()).unwrap();
    pipeproof_core::sign::verify_handover(&handover).unwrap();
    assert_eq!((&handover.from, &handover.to), (&old_key, &new_key));
    std::fs::write(path("keys.json"), keys.to_string()).unwrap();

    // A run sealed now is signed by the new key.
    let second = sealed_run(&server, &file);
    let o = cli(
        &server,
        Some(ADMIN),
        &["export", &second, "-o", &path("second.zip")],
    );
    assert!(o.status.success(), "{}", text(&o));
    let verify = |bundle: &str, key: &str| {
        Command::new(binary())
            .args(["verify", &path(bundle), "--pubkey", key])
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let o = verify("second.zip", &new_key);
    assert!(o.status.success(), "{}", text(&o));
    let o = verify("second.zip", &old_key);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a pinned old key does not vouch: {}",
        text(&o)
    );
    // The old bundle verifies with the keys the server lists.
    let o = verify("first.zip", &path("keys.json"));
    assert!(o.status.success(), "{}", text(&o));

    // The head kept before: the new head is signed by the key the kept head's handed over
    // to; every entry's seal by one of the two.
    let o = cli(
        &server,
        Some(ADMIN),
        &[
            "log",
            "check",
            &path("h1.json"),
            "-o",
            &path("h2.json"),
            "--entries",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let short = |k: &str| k[..16].to_string();
    assert!(
        text(&o).contains(&format!(
            "by key {}…, to which the kept head's key {}… handed over",
            short(&new_key),
            short(&old_key)
        )) && text(&o).contains("or a key handed over to or from it"),
        "{}",
        text(&o)
    );
    let o = cli(&server, Some(ADMIN), &["log", "prove", &path("first.zip")]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("to which the key that signed the bundle's seal"),
        "{}",
        text(&o)
    );
    // A monitor that starts after the rotation reads the entries sealed before it: the new
    // key's signature on the hand-over vouches for the old key until then.
    let o = cli(
        &server,
        Some(ADMIN),
        &["log", "head", "-o", &path("h3.json")],
    );
    assert!(o.status.success(), "{}", text(&o));
    sealed_run(&server, &file);
    let o = cli(
        &server,
        Some(ADMIN),
        &["log", "check", &path("h3.json"), "--entries"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("its 3 entries are seals"), "{}", text(&o));
    // Pinned to the old key alone, the same holds through the hand-over.
    let o = cli(
        &server,
        Some(ADMIN),
        &[
            "log",
            "check",
            &path("h1.json"),
            "--pubkey",
            &old_key,
            "--entries",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("to which a trusted key handed over"),
        "{}",
        text(&o)
    );

    // The store checks whole, each run against the key that sealed it.
    drop(server);
    let o = Command::new(binary())
        .args(["check", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));

    // The retired key put back in place (from a copy of the file alone) is refused: it
    // signs nothing again.
    std::fs::copy(path("old.key"), data.join("signing.key")).unwrap();
    let o = Command::new(binary())
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("holds the key {old_key}, rotated away at")),
        "{}",
        text(&o)
    );
}
