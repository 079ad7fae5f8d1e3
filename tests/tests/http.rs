//! The HTTP server over real loopback HTTP: the real `pipeproof serve` binary on a free
//! port with a temp data directory. A keyed three-step run end to end (diff counts, detail
//! pages, trace, seal, bundle that verifies against the server's published key), idempotent
//! retries, tokens and scopes, the SPA fallback, the demo run, and every kind of bad input
//! answered with a problem document that changes nothing stored.

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use pipeproof_tests::*;
use serde_json::{Value, json};

fn trades(ids: &[i64], amounts: &[f64], names: &[&str]) -> RecordBatch {
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

fn step_path(run: &str, step: &str, key: &str) -> String {
    format!("/api/v1/runs/{run}/steps?step={step}&key={key}")
}

const ARROW: &str = "application/vnd.apache.arrow.stream";

fn started() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    (dir, server)
}

#[test]
fn keyed_run_end_to_end_verifies() {
    let (dir, s) = started();
    let a = &s.addr;
    let run = create_run(a, "trades");

    // Step 0 as an Arrow stream, step 1 as Parquet, step 2 as CSV.
    let s0 = trades(
        &[1, 2, 3, 4],
        &[10.0, 20.0, 30.0, 40.0],
        &["a", "b", "c", "d"],
    );
    let r = post(
        a,
        &step_path(&run, "load", "id"),
        ADMIN,
        ARROW,
        &ipc_stream(&s0),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let step0 = r.json();
    assert_eq!(step0["record"]["index"], 0);
    assert_eq!(step0["record"]["rows"], 4);
    assert!(step0["diff"].is_null());
    assert_eq!(step0["schema"][0]["name"], "id");

    // 1 removed, 5 added, 2 changed amount, 3 changed name.
    let s1 = trades(
        &[2, 3, 4, 5],
        &[21.0, 30.0, 40.0, 50.0],
        &["b", "C", "d", "e"],
    );
    let r = post(
        a,
        &step_path(&run, "clean", "id"),
        ADMIN,
        "application/vnd.apache.parquet",
        &parquet(&s1),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let step1 = r.json();
    let d = &step1["diff"];
    assert_eq!(
        (d["added"].as_u64(), d["removed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (d["changed"].as_u64(), d["unchanged"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(step1["record"]["prev"], step0["hash"]);

    let csv = "id,amount,name\n2,21.0,b\n3,30.0,C\n4,44.0,d\n5,50.0,e\n6,60.0,f\n";
    let r = post(
        a,
        &step_path(&run, "enrich", "id"),
        ADMIN,
        "text/csv",
        csv.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["diff"]["added"], 1);
    assert_eq!(r.json()["diff"]["changed"], 1);

    // Diff summary route.
    let r = get(a, &format!("/api/v1/runs/{run}/steps/1/diff"), Some(ADMIN));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["removed"], 1);
    get(a, &format!("/api/v1/runs/{run}/steps/0/diff"), Some(ADMIN)).problem(404);
    get(a, &format!("/api/v1/runs/{run}/steps/7"), Some(ADMIN)).problem(404);

    // Detail pages: changed cells, filtered by column and by key; added rows; paging.
    let page = get(
        a,
        &format!("/api/v1/runs/{run}/steps/1/details?kind=changed"),
        Some(ADMIN),
    )
    .json();
    assert_eq!(page["total"], 2);
    assert_eq!(page["columns"], json!(["id", "column", "old", "new"]));
    let page = get(
        a,
        &format!("/api/v1/runs/{run}/steps/1/details?kind=changed&column=name"),
        Some(ADMIN),
    )
    .json();
    assert_eq!(page["total"], 1);
    assert_eq!(page["rows"][0]["old"], "c");
    assert_eq!(page["rows"][0]["new"], "C");
    let page = get(
        a,
        &format!("/api/v1/runs/{run}/steps/1/details?kind=changed&key=2"),
        Some(ADMIN),
    )
    .json();
    assert_eq!(page["total"], 1);
    assert_eq!(page["rows"][0]["column"], "amount");
    let page = get(
        a,
        &format!("/api/v1/runs/{run}/steps/1/details?kind=added"),
        Some(ADMIN),
    )
    .json();
    assert_eq!(page["rows"][0]["id"], 5);
    assert_eq!(page["rows"][0]["name"], "e");
    let page = get(
        a,
        &format!("/api/v1/runs/{run}/steps/1/details?kind=changed&offset=1&limit=1"),
        Some(ADMIN),
    )
    .json();
    assert_eq!(
        (
            page["total"].as_u64(),
            page["rows"].as_array().unwrap().len()
        ),
        (Some(2), 1)
    );
    get(
        a,
        &format!("/api/v1/runs/{run}/steps/1/details?kind=sideways"),
        Some(ADMIN),
    )
    .problem(400);

    // Trace of id 2: added, changed (amount 20 -> 21), unchanged; of id 1: removed at 1.
    let t = get(a, &format!("/api/v1/runs/{run}/trace?key=2"), Some(ADMIN)).json();
    let states: Vec<&str> = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["added", "changed", "unchanged"]);
    assert_eq!(t["steps"][1]["changes"][0]["column"], "amount");
    let t = get(a, &format!("/api/v1/runs/{run}/trace?key=1"), Some(ADMIN)).json();
    let states: Vec<&str> = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["added", "removed", "absent"]);
    let t = get(a, &format!("/api/v1/runs/{run}/trace?key=5"), Some(ADMIN)).json();
    assert_eq!(t["steps"][1]["state"], "added");
    assert_eq!(t["steps"][1]["values"]["name"], "e");
    get(
        a,
        &format!("/api/v1/runs/{run}/trace?key=not-a-number"),
        Some(ADMIN),
    )
    .problem(422);
    // A value is read as its column's type: `02` is the key 2, its changed cell included.
    let t = get(a, &format!("/api/v1/runs/{run}/trace?key=02"), Some(ADMIN)).json();
    assert_eq!(t["steps"][1]["state"], "changed");
    assert_eq!(t["steps"][1]["changes"][0]["column"], "amount", "{t}");

    // Listing.
    let runs = get(a, "/api/v1/runs?pipeline=trades", Some(ADMIN)).json();
    assert_eq!(runs["total"], 1);
    assert_eq!(runs["items"][0]["steps"], 3);
    assert_eq!(runs["items"][0]["rows"], 5);
    let runs = get(a, "/api/v1/runs?label=env=test&status=open", Some(ADMIN)).json();
    assert_eq!(runs["total"], 1);
    let runs = get(a, "/api/v1/runs?label=env=prod", Some(ADMIN)).json();
    assert_eq!(runs["total"], 0);
    let p = get(a, "/api/v1/pipelines", Some(ADMIN)).json();
    assert_eq!(p[0]["name"], "trades");
    assert_eq!(p[0]["runs"], 1);

    // Seal, then the bundle verifies against the published key.
    let r = post(
        a,
        &format!("/api/v1/runs/{run}/seal"),
        ADMIN,
        "application/json",
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "sealed");
    let detail = get(a, &format!("/api/v1/runs/{run}"), Some(ADMIN)).json();
    assert_eq!(detail["steps"].as_array().unwrap().len(), 3);
    assert_eq!(detail["seal"]["steps"], 3);
    let key = get(a, "/api/v1/keys", Some(ADMIN)).json()["keys"][0]["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let bundle = get(a, &format!("/api/v1/runs/{run}/bundle"), Some(ADMIN));
    assert_eq!(bundle.status, 200);
    assert_eq!(bundle.header("content-type"), Some("application/zip"));
    let report = pipeproof_core::bundle::verify_bytes(&bundle.body, Some(&key), None);
    assert!(report.passed(), "{report:#?}");
    // The seal signs the run's description too: relabelled, the bundle fails.
    assert_eq!(detail["seal"]["spec"], pipeproof_core::sign::SEAL_SPEC);
    assert_run_is_signed(&bundle.body, &key, &|r| {
        r.labels.insert("env".into(), "prod".into());
    });
    // A flipped byte fails.
    let mut bad = bundle.body.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    assert!(!pipeproof_core::bundle::verify_bytes(&bad, Some(&key), None).passed());
    assert_eq!(
        bundle.header("content-disposition"),
        Some(format!("attachment; filename=\"{run}.pipeproof.zip\"").as_str())
    );
    assert_eq!(
        bundle.header("content-length"),
        Some(bundle.body.len().to_string().as_str())
    );
    // Exported again, the same bytes: the bundle of the sealed run is kept under its hash
    // and served as it is, with an ETag a resumed download can name; nothing is left in tmp/.
    let again = get(a, &format!("/api/v1/runs/{run}/bundle"), Some(ADMIN));
    assert_eq!(again.body, bundle.body);
    let data = dir.path().join("data");
    let tmp: Vec<_> = std::fs::read_dir(data.join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "left in tmp/: {tmp:?}");
    let kept: Vec<_> = std::fs::read_dir(data.join("exports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let kept = kept[0].clone();
    let name = kept.file_name().unwrap().to_str().unwrap();
    let hash = blake3::hash(&bundle.body).to_hex();
    assert!(
        name.starts_with(&format!("{run}.")) && name.ends_with(&format!(".{hash}.zip")),
        "{name}"
    );
    assert_eq!(std::fs::read(&kept).unwrap(), bundle.body);
    let etag = bundle
        .header("etag")
        .expect("a kept bundle has an ETag")
        .to_string();
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let auth = bearer(ADMIN);
    let resumed = request_raw(
        a,
        "GET",
        &format!("/api/v1/runs/{run}/bundle"),
        &[
            ("Authorization", &auth),
            ("Range", "bytes=100-"),
            ("If-Range", &etag),
        ],
        b"",
        None,
    );
    assert_eq!(resumed.status, 206, "{}", resumed.text());
    assert_eq!(resumed.body, bundle.body[100..]);
    // The kept file damaged on disk: it is not served, but written again from the blobs.
    let mut damaged = bundle.body.clone();
    damaged[mid] ^= 1;
    std::fs::write(&kept, &damaged).unwrap();
    let again = get(a, &format!("/api/v1/runs/{run}/bundle"), Some(ADMIN));
    assert_eq!(again.body, bundle.body);
    assert_eq!(std::fs::read(&kept).unwrap(), bundle.body);

    // A row table's blob damaged on disk: the export fails naming it, rather than serving a
    // bundle that would not verify.
    let mut rows = Vec::new();
    for prefix in std::fs::read_dir(data.join("blobs")).unwrap() {
        for b in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let path = b.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            if bytes.windows(8).any(|w| w == b"row_hash") {
                rows.push((bytes, path));
            }
        }
    }
    let damage = |path: &std::path::Path, bytes: &[u8]| {
        // Without the kept bundle (as when the cache let it go), written from the blobs.
        std::fs::remove_file(&kept).unwrap();
        let mut bytes = bytes.to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(path, bytes).unwrap();
        let blob = path.file_name().unwrap().to_str().unwrap();
        let detail = get(a, &format!("/api/v1/runs/{run}/bundle"), Some(ADMIN)).problem(500);
        assert!(
            detail.contains("damaged") && detail.contains(blob),
            "{detail}"
        );
    };
    let (bytes, path) = rows.pop().expect("a stored row table");
    damage(&path, &bytes);
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(
        get(a, &format!("/api/v1/runs/{run}/bundle"), Some(ADMIN)).body,
        bundle.body
    );
    // A details table's blob (changed cells: `old` and `new`), likewise.
    let changed = std::fs::read_dir(data.join("blobs"))
        .unwrap()
        .flat_map(|prefix| std::fs::read_dir(prefix.unwrap().path()).unwrap())
        .map(|b| b.unwrap().path())
        .find(|p| {
            let bytes = std::fs::read(p).unwrap();
            bytes.windows(3).any(|w| w == b"old") && bytes.windows(3).any(|w| w == b"new")
        })
        .expect("a stored table of changed cells");
    damage(&changed, &std::fs::read(&changed).unwrap());
}

#[test]
fn kept_data_comes_back_as_posted() {
    let (_dir, s) = started();
    let a = &s.addr;
    let run = create_run(a, "kept");
    let s0 = trades(&[1, 2], &[1.5, 2.5], &["a", "b"]);
    let body0 = parquet(&s0);
    let r = post(
        a,
        &format!("{}&artifact=true", step_path(&run, "load", "id")),
        ADMIN,
        "application/vnd.apache.parquet",
        &body0,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["artifact"], true);
    let r = post(
        a,
        &step_path(&run, "next", "id"),
        ADMIN,
        ARROW,
        &ipc_stream(&s0),
    );
    assert_eq!(r.status, 201, "{}", r.text());

    let got = get(
        a,
        &format!("/api/v1/runs/{run}/steps/0/artifact"),
        Some(ADMIN),
    );
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body, body0);
    assert_eq!(
        got.header("content-type"),
        Some("application/vnd.apache.parquet")
    );
    assert!(
        got.header("content-disposition")
            .is_some_and(|d| d.contains(&format!("{run}-0.parquet"))),
        "{:?}",
        got.headers
    );
    // A step stored without its data, a step that does not exist, and no token.
    let detail = get(
        a,
        &format!("/api/v1/runs/{run}/steps/1/artifact"),
        Some(ADMIN),
    )
    .problem(404);
    assert!(detail.contains("artifact=true"), "{detail}");
    let detail = get(
        a,
        &format!("/api/v1/runs/{run}/steps/7/artifact"),
        Some(ADMIN),
    )
    .problem(404);
    assert!(detail.contains("no step 7"), "{detail}");
    get(a, &format!("/api/v1/runs/{run}/steps/0/artifact"), None).problem(401);
}

/// The detail rows' key search compares a key as a value of its columns' types, on every
/// key column, as the trace does: `EU|007` finds region EU, id 7; a value missing a key
/// column's part, or not of its type, finds nothing.
#[test]
fn detail_rows_are_searched_by_every_key_column_as_values() {
    let (_dir, s) = started();
    let a = &s.addr;
    let run = create_run(a, "regions");
    let batch = |amounts: &[f64]| {
        RecordBatch::try_from_iter(vec![
            (
                "region",
                Arc::new(StringArray::from(vec!["EU", "US", "EU"])) as ArrayRef,
            ),
            ("id", Arc::new(Int64Array::from(vec![7, 7, 70]))),
            ("amount", Arc::new(Float64Array::from(amounts.to_vec()))),
        ])
        .unwrap()
    };
    for (step, body) in [
        ("load", batch(&[1.0, 2.0, 3.0])),
        ("fix", batch(&[1.5, 2.5, 3.5])),
    ] {
        let r = post(
            a,
            &step_path(&run, step, "region,id"),
            ADMIN,
            ARROW,
            &ipc_stream(&body),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let found = |key: &str| -> Vec<(String, i64)> {
        let page = get(
            a,
            &format!("/api/v1/runs/{run}/steps/1/details?kind=changed&key={key}"),
            Some(ADMIN),
        )
        .json();
        let rows = page["rows"].as_array().unwrap();
        assert_eq!(page["total"], rows.len(), "{page}");
        rows.iter()
            .map(|r| {
                (
                    r["region"].as_str().unwrap().into(),
                    r["id"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(found("EU%7C7"), [("EU".to_string(), 7)]);
    assert_eq!(found("EU%7C007"), [("EU".to_string(), 7)]);
    assert_eq!(found("US%7C7"), [("US".to_string(), 7)]);
    assert_eq!(found("EU%7C70"), [("EU".to_string(), 70)]);
    for nothing in ["EU", "7", "EU%7Cseven", "EU%7C7%7Cx", "eu%7C7"] {
        assert_eq!(found(nothing), [], "{nothing}");
    }
}

/// A key of two columns whose values contain `|`: traced with one `key` per column; a
/// single joined value is split at every `|`, and the count that does not fit is named.
#[test]
fn a_composite_key_with_bars_in_its_values_is_traced() {
    let (dir, s) = started();
    let a = &s.addr;
    let run = create_run(a, "codes");
    let batch = |codes: &[&str], amounts: &[f64]| {
        RecordBatch::try_from_iter(vec![
            (
                "region",
                Arc::new(StringArray::from(vec!["EU"; codes.len()])) as ArrayRef,
            ),
            ("code", Arc::new(StringArray::from(codes.to_vec()))),
            ("amount", Arc::new(Float64Array::from(amounts.to_vec()))),
        ])
        .unwrap()
    };
    for (step, body) in [
        ("load", batch(&["A|7", "B|8"], &[1.0, 2.0])),
        ("fix", batch(&["A|7", "B|8"], &[1.5, 2.0])),
    ] {
        let r = post(
            a,
            &step_path(&run, step, "region,code"),
            ADMIN,
            ARROW,
            &ipc_stream(&body),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let t = get(
        a,
        &format!("/api/v1/runs/{run}/trace?key=EU&key=A%7C7"),
        Some(ADMIN),
    )
    .json();
    let states: Vec<&str> = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["added", "changed"], "{t}");
    assert_eq!(t["steps"][1]["changes"][0]["new"], "1.5", "{t}");
    let d = get(
        a,
        &format!("/api/v1/runs/{run}/trace?key=EU%7CA%7C7"),
        Some(ADMIN),
    )
    .problem(422);
    assert!(
        d.contains("3 value(s) for 2 key column(s)") && d.contains("once per key column"),
        "{d}"
    );
    let d = get(a, &format!("/api/v1/runs/{run}/trace"), Some(ADMIN)).problem(400);
    assert!(d.contains("no key value"), "{d}");
    // The bundle of an open run is written for each export, and not kept.
    let bundle = get(a, &format!("/api/v1/runs/{run}/bundle"), Some(ADMIN));
    assert_eq!(bundle.status, 200);
    assert_eq!(bundle.header("etag"), None);
    let exports = dir.path().join("data").join("exports");
    assert_eq!(std::fs::read_dir(exports).unwrap().count(), 0);
}

/// Every seal is entered in the log in the order runs end: the signed tree head covers
/// them, each run's inclusion proof checks against it, and a kept head is the start of a
/// later one.
#[test]
fn the_log_of_seals_grows_and_proves() {
    use pipeproof_core::api::{LogEntries, LogInclusion};
    use pipeproof_core::log::{self, ConsistencyProof, TreeHead};
    let (_dir, s) = started();
    let a = &s.addr;
    let key = get(a, "/api/v1/keys", Some(ADMIN)).json()["keys"][0]["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let head = || -> TreeHead {
        let h: TreeHead =
            serde_json::from_value(get(a, "/api/v1/log", Some(ADMIN)).json()).unwrap();
        log::verify_tree_head(&h, Some(&key)).unwrap();
        h
    };
    let empty = head();
    assert_eq!(empty.size, 0);
    let body = ipc_stream(&trades(&[1, 2], &[1.0, 2.0], &["a", "b"]));
    let mut runs = Vec::new();
    let mut kept = None;
    for end in ["seal", "fail", "seal"] {
        let run = create_run(a, "logged");
        let r = post(a, &step_path(&run, "load", "id"), ADMIN, ARROW, &body);
        assert_eq!(r.status, 201, "{}", r.text());
        let r = post_json(
            a,
            &format!("/api/v1/runs/{run}/{end}"),
            ADMIN,
            &json!({"error": "it broke"}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        runs.push(run);
        if runs.len() == 2 {
            kept = Some(head());
        }
    }
    let kept = kept.expect("a head kept at two entries");
    assert_eq!(kept.size, 2);
    let now = head();
    assert_eq!(now.size, 3);
    // Each run's leaf is its seal's, and its proof checks against the head.
    let leaves: Vec<_> = runs
        .iter()
        .map(|run| {
            let detail = get(a, &format!("/api/v1/runs/{run}"), Some(ADMIN)).json();
            let seal: pipeproof_core::sign::Seal =
                serde_json::from_value(detail["seal"].clone()).unwrap();
            log::leaf_of(&seal)
        })
        .collect();
    assert_eq!(now.root, pipeproof_core::merkle::root(&leaves));
    for (i, run) in runs.iter().enumerate() {
        let p: LogInclusion = serde_json::from_value(
            get(a, &format!("/api/v1/log/inclusion?run={run}"), Some(ADMIN)).json(),
        )
        .unwrap();
        assert_eq!((p.proof.index, p.leaf), (i as u64, leaves[i]));
        log::verify_inclusion(&leaves[i], &p.proof, &now).unwrap();
    }
    // The head kept at two entries is the start of the head now.
    let c: ConsistencyProof =
        serde_json::from_value(get(a, "/api/v1/log/consistency?from=2", Some(ADMIN)).json())
            .unwrap();
    log::verify_consistency(&kept, &now, &c).unwrap();
    log::verify_consistency(&empty, &now, &log::consistency_proof(&leaves, 0)).unwrap();
    // In the log of two entries the third run is not, and an old size is proved as asked.
    let d = get(
        a,
        &format!("/api/v1/log/inclusion?run={}&size=2", runs[2]),
        Some(ADMIN),
    )
    .problem(422);
    assert!(d.contains("entry 2") && d.contains("size above 2"), "{d}");
    let p: LogInclusion = serde_json::from_value(
        get(
            a,
            &format!("/api/v1/log/inclusion?run={}&size=2", runs[0]),
            Some(ADMIN),
        )
        .json(),
    )
    .unwrap();
    log::verify_inclusion(&leaves[0], &p.proof, &kept).unwrap();
    let d = get(a, "/api/v1/log/consistency?from=4", Some(ADMIN)).problem(422);
    assert!(d.contains("beyond the log, which has 3 entries"), "{d}");
    let open = create_run(a, "logged");
    let d = get(a, &format!("/api/v1/log/inclusion?run={open}"), Some(ADMIN)).problem(422);
    assert!(d.contains("is open and has no seal in the log"), "{d}");
    get(a, "/api/v1/log/inclusion?run=nope", Some(ADMIN)).problem(404);
    let e: LogEntries =
        serde_json::from_value(get(a, "/api/v1/log/entries?start=1&limit=5", Some(ADMIN)).json())
            .unwrap();
    assert_eq!(e.size, 3);
    let listed: Vec<_> = e
        .entries
        .iter()
        .map(|e| (e.index, e.run_id.clone(), e.leaf))
        .collect();
    assert_eq!(
        listed,
        [
            (1, runs[1].clone(), leaves[1]),
            (2, runs[2].clone(), leaves[2])
        ]
    );
    get(a, "/api/v1/log", None).problem(401);
}

/// The bundle passes the run check as signed, and fails it once `edit` changes its run's
/// description (written again canonically, so that no other check fails).
#[track_caller]
fn assert_run_is_signed(
    bundle: &[u8],
    key: &str,
    edit: &dyn Fn(&mut pipeproof_core::bundle::RunInfo),
) {
    use pipeproof_core::bundle::{Bundle, verify_bytes};
    let report = verify_bytes(bundle, Some(key), None);
    let run = report.checks.iter().find(|c| c.name == "run").unwrap();
    assert!(
        run.passed && run.detail.contains("is the one the seal signs"),
        "{run:?}"
    );
    let mut b = Bundle::read(bundle).unwrap();
    edit(&mut b.manifest.run);
    let report = verify_bytes(&b.write().unwrap(), Some(key), None);
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed).collect();
    assert!(
        failed.len() == 1
            && failed[0].name == "run"
            && failed[0].detail.contains("not the one the seal signs"),
        "{failed:#?}"
    );
}

/// A run ended as failed is sealed like a sealed one, and its status and failure message
/// are signed: a bundle that passes it off as sealed, or tells another failure, fails.
#[test]
fn a_failed_run_is_signed_as_failed() {
    let (_dir, s) = started();
    let a = &s.addr;
    let run = create_run(a, "failing");
    let body = ipc_stream(&trades(&[1, 2], &[1.0, 2.0], &["a", "b"]));
    let r = post(a, &step_path(&run, "load", "id"), ADMIN, ARROW, &body);
    assert_eq!(r.status, 201, "{}", r.text());
    let r = post_json(
        a,
        &format!("/api/v1/runs/{run}/fail"),
        ADMIN,
        &json!({"error": "enrich: the rates service timed out"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "failed");
    let key = get(a, "/api/v1/keys", Some(ADMIN)).json()["keys"][0]["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    // Two first exports at once: one writes the bundle, the other waits and serves the
    // file it kept (the same bytes, the same ETag).
    let path = format!("/api/v1/runs/{run}/bundle");
    let (one, two) = std::thread::scope(|s| {
        let one = s.spawn(|| get(a, &path, Some(ADMIN)));
        let two = s.spawn(|| get(a, &path, Some(ADMIN)));
        (one.join().unwrap(), two.join().unwrap())
    });
    assert_eq!((one.status, two.status), (200, 200));
    assert_eq!(one.body, two.body);
    assert!(one.header("etag").is_some());
    assert_eq!(one.header("etag"), two.header("etag"));
    let bundle = one.body;
    let report = pipeproof_core::bundle::verify_bytes(&bundle, Some(&key), None);
    assert!(report.passed(), "{report:#?}");
    let b = pipeproof_core::bundle::Bundle::read(&bundle).unwrap();
    assert_eq!(b.manifest.run.status, "failed");
    assert_eq!(
        b.manifest.run.error.as_deref(),
        Some("enrich: the rates service timed out")
    );
    assert_run_is_signed(&bundle, &key, &|r| {
        r.status = "sealed".into();
        r.error = None;
    });
    assert_run_is_signed(&bundle, &key, &|r| {
        r.error = Some("cancelled by the operator".into());
    });
    assert_run_is_signed(&bundle, &key, &|r| {
        r.params = json!({"as_of": "2026-01-01"});
    });
}

#[test]
fn idempotent_retry_stores_once() {
    let (_dir, s) = started();
    let a = &s.addr;
    let run = create_run(a, "retry");
    let body = ipc_stream(&trades(&[1, 2], &[1.0, 2.0], &["a", "b"]));
    let auth = bearer(ADMIN);
    let send_data = |step: &str, key: &str, body: &[u8]| {
        request_raw(
            a,
            "POST",
            &step_path(&run, step, key),
            &[
                ("Authorization", &auth),
                ("Content-Type", ARROW),
                ("Idempotency-Key", "load-attempt-1"),
            ],
            body,
            None,
        )
    };
    let send_as = |step: &str, key: &str| send_data(step, key, &body);
    let send = || send_as("load", "id");
    let first = send();
    assert_eq!(first.status, 201, "{}", first.text());
    let again = send();
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(first.json(), again.json(), "the stored step, unchanged");
    // The key again with another step name, or other options, is not a retry: refused.
    for (step, key) in [("clean", "id"), ("load", "name")] {
        let d = send_as(step, key).problem(409);
        assert!(
            d.contains("`load-attempt-1` was used for step 0 `load`") && d.contains("new key"),
            "{d}"
        );
    }
    // The key again with the same name and options but other data is not a retry either:
    // a 200 would tell the client that this data was stored.
    let other = ipc_stream(&trades(&[1, 2], &[1.0, 2.5], &["a", "b"]));
    let d = send_data("load", "id", &other).problem(409);
    assert!(
        d.contains("`load-attempt-1` stored step 0 `load`")
            && d.contains("with other data: this body holds other rows (content root ")
            && d.contains("new key"),
        "{d}"
    );
    // Each way the data can differ is named.
    for (body, says) in [
        (
            ipc_stream(&trades(&[2, 1], &[2.0, 1.0], &["b", "a"])),
            "the same rows in another order",
        ),
        (
            ipc_stream(&trades(&[1], &[1.0], &["a"])),
            "1 row where it stored 2 rows",
        ),
    ] {
        let d = send_data("load", "id", &body).problem(409);
        assert!(d.contains(says), "{d}");
    }
    let detail = get(a, &format!("/api/v1/runs/{run}"), Some(ADMIN)).json();
    assert_eq!(detail["run"]["steps"], 1);
    // A retry whose first attempt's reply was lost while the run was sealed is answered
    // with its step; other data under its key still is not.
    let r = post(
        a,
        &format!("/api/v1/runs/{run}/seal"),
        ADMIN,
        "application/json",
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let again = send();
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(first.json(), again.json());
    send_data("load", "id", &other).problem(409);
    // The metrics count one stored step of two rows, and need a token.
    get(a, "/metrics", None).problem(401);
    let m = get(a, "/metrics", Some(ADMIN)).text();
    assert!(m.contains("pipeproof_ingests_total 1\n"), "{m}");
    assert!(m.contains("pipeproof_ingest_rows_total 2\n"), "{m}");
}

/// Asserts a run still has `steps` steps (nothing stored by a bad request).
#[track_caller]
fn assert_steps(a: &str, run: &str, steps: u64) {
    let detail = get(a, &format!("/api/v1/runs/{run}"), Some(ADMIN)).json();
    assert_eq!(detail["run"]["steps"], steps, "{detail}");
}

/// A body cut short is refused, never stored as a table of fewer rows: an Arrow IPC stream
/// cut where a batch ends (so without its end-of-stream marker), a CSV file cut inside a
/// quoted field.
#[test]
fn a_body_cut_short_is_refused_and_stores_nothing() {
    let (_dir, s) = started();
    let a = &s.addr;
    let run = create_run(a, "cut");
    let first = trades(&[1, 2, 3], &[1.0, 2.0, 3.0], &["a", "b", "c"]);
    let mut w = arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &first.schema()).unwrap();
    w.write(&first).unwrap();
    let cut_at = w.get_ref().len();
    w.write(&trades(&[4, 5], &[4.0, 5.0], &["d", "e"])).unwrap();
    w.finish().unwrap();
    let whole = w.into_inner().unwrap();
    for cut in [cut_at, whole.len() - 8] {
        for content_type in [ARROW, "application/octet-stream"] {
            let d = post(
                a,
                &step_path(&run, "load", "id"),
                ADMIN,
                content_type,
                &whole[..cut],
            )
            .problem(400);
            assert!(
                d.contains(
                    "the Arrow IPC stream ends without its end-of-stream marker: it is \
                     incomplete (cut short?)"
                ),
                "{d}"
            );
        }
    }
    let csv = "id,amount,name\n1,1.0,a\n2,2.0,\"b\n3,3.0,c\n";
    let d = post(
        a,
        &step_path(&run, "load", "id"),
        ADMIN,
        "text/csv",
        csv.as_bytes(),
    )
    .problem(400);
    assert!(
        d.contains("a quoted field opened on line 3 is never closed (is the file cut short?)"),
        "{d}"
    );
    assert_steps(a, &run, 0);
    // Whole, both are stored, with every row.
    let r = post(a, &step_path(&run, "load", "id"), ADMIN, ARROW, &whole);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["record"]["rows"], 5, "{}", r.text());
    let csv = csv.replace("\"b", "\"b\"");
    let r = post(
        a,
        &step_path(&run, "csv", "id"),
        ADMIN,
        "text/csv",
        csv.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["record"]["rows"], 3, "{}", r.text());
    assert_steps(a, &run, 2);
}

#[test]
fn bad_input_gets_problems_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), &["--max-body", "4KiB"]);
    let a = &s.addr;
    let run = create_run(a, "bad");
    let good = ipc_stream(&trades(&[1, 2], &[1.0, 2.0], &["a", "b"]));

    // Unknown run.
    let d = post(a, &step_path("nope", "x", "id"), ADMIN, ARROW, &good).problem(404);
    assert!(d.contains("nope"), "{d}");
    get(a, "/api/v1/runs/nope", Some(ADMIN)).problem(404);
    // Wrong or missing Content-Type.
    let d = post(a, &step_path(&run, "x", "id"), ADMIN, "image/png", &good).problem(415);
    assert!(d.contains("text/csv"), "names the accepted types: {d}");
    let auth = bearer(ADMIN);
    request_raw(
        a,
        "POST",
        &step_path(&run, "x", "id"),
        &[("Authorization", &auth)],
        &good,
        None,
    )
    .problem(415);
    // Malformed and truncated bodies.
    post(
        a,
        &step_path(&run, "x", "id"),
        ADMIN,
        ARROW,
        b"not arrow at all",
    )
    .problem(400);
    post(
        a,
        &step_path(&run, "x", "id"),
        ADMIN,
        ARROW,
        &good[..good.len() / 2],
    )
    .problem(400);
    let r = request_raw(
        a,
        "POST",
        &step_path(&run, "x", "id"),
        &[("Authorization", &auth), ("Content-Type", ARROW)],
        &good[..good.len() / 2],
        Some(good.len()),
    );
    assert!(
        r.status == 400,
        "truncated upload: {} {}",
        r.status,
        r.text()
    );
    // Damage on which arrow's decoder panics: a 400 like any malformed body, not a 500.
    let damaged = ipc_stream_arrow_panics_on(&trades(&[1, 2], &[1.0, 2.0], &["a", "b"]));
    let d = post(a, &step_path(&run, "x", "id"), ADMIN, ARROW, &damaged).problem(400);
    assert!(d.contains("the input is malformed"), "{d}");
    // Too big: by Content-Length, and by counting a body sent without one.
    let big = vec![b'x'; 5000];
    let d = post(a, &step_path(&run, "x", "id"), ADMIN, "text/csv", &big).problem(413);
    assert!(d.contains("--max-body"), "{d}");
    // Missing key column, null keys, duplicate keys, unsupported type, bad options.
    // At a run's first step, the key is checked against the step's own table.
    let d = post(a, &step_path(&run, "x", "account"), ADMIN, ARROW, &good).problem(422);
    assert!(d.contains("`account` is not in the step's table"), "{d}");
    let with_null = {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from(vec![Some(1), None]))],
        )
        .unwrap()
    };
    let d = post(
        a,
        &step_path(&run, "x", "id"),
        ADMIN,
        ARROW,
        &ipc_stream(&with_null),
    )
    .problem(422);
    assert!(d.contains("in the step's table has 1 null"), "{d}");
    let dup = trades(&[1, 1], &[1.0, 2.0], &["a", "b"]);
    let d = post(
        a,
        &step_path(&run, "x", "id"),
        ADMIN,
        ARROW,
        &ipc_stream(&dup),
    )
    .problem(422);
    assert!(d.contains("not unique in the step's table"), "{d}");
    let nested = {
        let mut b = ListBuilder::new(StringBuilder::new());
        b.values().append_value("x");
        b.append(true);
        let list: ArrayRef = Arc::new(b.finish());
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("tags", list.data_type().clone(), true),
        ]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1])), list]).unwrap()
    };
    let d = post(
        a,
        &step_path(&run, "x", "id"),
        ADMIN,
        ARROW,
        &ipc_stream(&nested),
    )
    .problem(422);
    assert!(d.contains("tags"), "{d}");
    post(
        a,
        &format!("/api/v1/runs/{run}/steps?step=x&summary_only_threshold=7"),
        ADMIN,
        ARROW,
        &good,
    )
    .problem(422);
    post(a, &format!("/api/v1/runs/{run}/steps"), ADMIN, ARROW, &good).problem(400);
    assert_steps(a, &run, 0);
    // Still open and working after all that.
    let r = post(a, &step_path(&run, "load", "id"), ADMIN, ARROW, &good);
    assert_eq!(r.status, 201, "{}", r.text());
    // A key the previous step does not have says so.
    let with_account = {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "account",
            DataType::Int64,
            false,
        )]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![7, 8]))]).unwrap()
    };
    let d = post(
        a,
        &step_path(&run, "y", "account"),
        ADMIN,
        ARROW,
        &ipc_stream(&with_account),
    )
    .problem(422);
    assert!(
        d.contains("`account` is not in the previous step's table")
            && d.contains("send this step without a key"),
        "{d}"
    );
    // A sealed run takes no step and no second seal.
    let r = post(
        a,
        &format!("/api/v1/runs/{run}/seal"),
        ADMIN,
        "application/json",
        b"",
    );
    assert_eq!(r.status, 200);
    let d = post(a, &step_path(&run, "more", "id"), ADMIN, ARROW, &good).problem(409);
    assert!(d.contains("sealed"), "{d}");
    post(
        a,
        &format!("/api/v1/runs/{run}/seal"),
        ADMIN,
        "application/json",
        b"",
    )
    .problem(409);
    assert_steps(a, &run, 1);
    // Bad JSON.
    post(a, "/api/v1/runs", ADMIN, "application/json", b"{\"pipe").problem(400);
    post_json(a, "/api/v1/runs", ADMIN, &json!({"pipeline": ""})).problem(422);
}

#[test]
fn tokens_and_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data, &[]);
    let a = &s.addr;
    // No token, a wrong token, a malformed header: 401 with a hint.
    let d = get(a, "/api/v1/runs", None).problem(401);
    assert!(d.contains("Bearer"), "{d}");
    get(a, "/api/v1/runs", Some("pp_wrong")).problem(401);
    request_raw(
        a,
        "GET",
        "/api/v1/runs",
        &[("Authorization", "Basic abc")],
        &[],
        None,
    )
    .problem(401);
    // /healthz needs none.
    let h = get(a, "/healthz", None);
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["status"], "ok");
    // A read token made over the API reads but cannot ingest or make tokens.
    let r = post_json(
        a,
        "/api/v1/tokens",
        ADMIN,
        &json!({"name": "dash", "scopes": ["read"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let read = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(get(a, "/api/v1/runs", Some(&read)).status, 200);
    let who = get(a, "/api/v1/whoami", Some(&read)).json();
    assert_eq!(who, json!({"name": "dash", "scopes": ["read"]}));
    let d = post_json(a, "/api/v1/runs", &read, &json!({"pipeline": "p"})).problem(403);
    assert!(d.contains("ingest"), "{d}");
    post_json(
        a,
        "/api/v1/tokens",
        &read,
        &json!({"name": "x", "scopes": ["admin"]}),
    )
    .problem(403);
    // An ingest token made with the CLI, while the server runs.
    let out = std::process::Command::new(binary())
        .args([
            "token",
            "create",
            "--scope",
            "ingest",
            "--name",
            "etl",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ingest = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let r = post_json(a, "/api/v1/runs", &ingest, &json!({"pipeline": "p"}));
    assert_eq!(r.status, 201, "{}", r.text());
    get(a, "/api/v1/runs", Some(&ingest)).problem(403);
    // Secrets are not stored: neither token's text is in the database files.
    for name in ["pipeproof.sqlite", "pipeproof.sqlite-wal"] {
        let bytes = std::fs::read(data.join(name)).unwrap_or_default();
        for secret in [&read, &ingest] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
    }
}

/// `pipeproof token ARGS... --data-dir DATA`: its stdout, or a panic with its stderr.
fn token_cli(data: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(binary())
        .arg("token")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "token {args:?}: {stderr}");
    stdout.into_owned()
}

#[test]
fn tokens_are_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start(&data, &[]);
    let a = &s.addr;
    let delete = |id: &str, token: &str| {
        let auth = bearer(token);
        let path = format!("/api/v1/tokens/{id}");
        request_raw(a, "DELETE", &path, &[("Authorization", &auth)], &[], None)
    };
    let r = post_json(
        a,
        "/api/v1/tokens",
        ADMIN,
        &json!({"name": "dash", "scopes": ["read"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let (dash_id, dash) = (r.json()["id"].clone(), r.json()["token"].clone());
    let (dash_id, dash) = (dash_id.as_str().unwrap(), dash.as_str().unwrap());
    let etl = token_cli(&data, &["create", "--scope", "ingest", "--name", "etl"]);
    let etl = etl.trim();

    // Listed in the order made, without secrets; only admins may list.
    let list = get(a, "/api/v1/tokens", Some(ADMIN)).json();
    let names: Vec<&str> = (list.as_array().unwrap().iter())
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin (PIPEPROOF_ADMIN_TOKEN)", "dash", "etl"]);
    for t in list.as_array().unwrap() {
        assert!(
            t.get("token").is_none() && t.get("revoked_at").is_none(),
            "{t}"
        );
    }
    get(a, "/api/v1/tokens", Some(dash)).problem(403);
    assert_eq!(get(a, "/api/v1/runs", Some(dash)).status, 200);

    // Revoked over the API: refused from the next request on, saying so.
    let r = delete(dash_id, ADMIN);
    assert_eq!(r.status, 200, "{}", r.text());
    let revoked_at = r.json()["revoked_at"].as_str().unwrap().to_string();
    let d = get(a, "/api/v1/runs", Some(dash)).problem(401);
    assert!(
        d.contains(&format!("token `dash` was revoked at {revoked_at}")),
        "{d}"
    );
    // Again: nothing changes.
    assert_eq!(
        delete(dash_id, ADMIN).json()["revoked_at"],
        revoked_at.as_str()
    );
    let d = delete("pp_not-an-id", ADMIN).problem(404);
    assert!(d.contains("`pipeproof token list`"), "{d}");
    delete(dash_id, etl).problem(403);

    // Revoked with the CLI while the server runs.
    let r = post_json(a, "/api/v1/runs", etl, &json!({"pipeline": "p"}));
    assert_eq!(r.status, 201, "{}", r.text());
    let listed: Value =
        serde_json::from_str(&token_cli(&data, &["list", "--format", "json"])).unwrap();
    let etl_id = listed[2]["id"].as_str().unwrap().to_string();
    let out = token_cli(&data, &["revoke", &etl_id]);
    assert!(
        out.starts_with(&format!("revoked token `etl` ({etl_id}) at ")),
        "{out}"
    );
    post_json(a, "/api/v1/runs", etl, &json!({"pipeline": "p"})).problem(401);
    let out = token_cli(&data, &["revoke", &etl_id]);
    assert!(out.contains("was already revoked at"), "{out}");
    let table = token_cli(&data, &["list"]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 4, "{table}");
    assert!(
        rows[0].starts_with("id ") && rows[0].ends_with("revoked"),
        "{table}"
    );
    assert!(
        rows[1].contains("admin") && rows[1].ends_with(" -"),
        "{table}"
    );
    assert!(
        rows[2].contains(&revoked_at) && rows[3].contains("etl"),
        "{table}"
    );

    // The last admin token cannot be revoked; once another is made, it can.
    let admin_id = listed[0]["id"].as_str().unwrap().to_string();
    let d = delete(&admin_id, ADMIN).problem(409);
    assert!(
        d.contains("is the last admin token") && d.contains("make another"),
        "{d}"
    );
    let r = post_json(
        a,
        "/api/v1/tokens",
        ADMIN,
        &json!({"name": "ops", "scopes": ["admin"]}),
    );
    let ops = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(delete(&admin_id, &ops).status, 200);
    get(a, "/api/v1/whoami", Some(ADMIN)).problem(401);
    assert_eq!(get(a, "/api/v1/whoami", Some(&ops)).status, 200);

    // A revoked PIPEPROOF_ADMIN_TOKEN is not made valid again by a restart: refused.
    s.kill();
    let out = std::process::Command::new(binary())
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("PIPEPROOF_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("PIPEPROOF_ADMIN_TOKEN is a token revoked at"),
        "{stderr}"
    );
    let s = Server::start_env(&data, &[], &[]);
    get(&s.addr, "/api/v1/whoami", Some(ADMIN)).problem(401);
    assert_eq!(get(&s.addr, "/api/v1/whoami", Some(&ops)).status, 200);
}

#[test]
fn first_start_prints_admin_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start_env(&data, &[], &[]);
    assert!(
        s.banner
            .contains(&format!("pipeproof listening on http://{}/", s.addr))
    );
    let token = s
        .banner
        .lines()
        .find_map(|l| l.strip_prefix("admin token: "))
        .expect("an admin token is printed")
        .to_string();
    assert_eq!(
        get(&s.addr, "/api/v1/whoami", Some(&token)).json()["scopes"],
        json!(["admin"])
    );
    s.kill();
    let s = Server::start_env(&data, &[], &[]);
    assert!(!s.banner.contains("admin token"), "{}", s.banner);
    assert_eq!(get(&s.addr, "/api/v1/whoami", Some(&token)).status, 200);
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(data.join("signing.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600);
}

#[test]
fn spa_is_served_with_fallback_and_api_paths_stay_api() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(web.join("index.html"), "<html>pipeproof app</html>").unwrap();
    std::fs::write(web.join("app.js"), "console.log(1)").unwrap();
    std::fs::write(web.join("app-17a50fca03cebfb_bg.wasm"), "wasm").unwrap();
    let s = Server::start(
        &dir.path().join("data"),
        &["--static-dir", web.to_str().unwrap()],
    );
    let a = &s.addr;
    assert!(get(a, "/", None).text().contains("pipeproof app"));
    assert_eq!(get(a, "/app.js", None).text(), "console.log(1)");
    let r = get(a, "/runs/abc/steps/2", None);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("pipeproof app"));
    // Files named by their content are kept; the rest are checked again at every load, so
    // an upgrade is seen at once. The API says nothing of caching.
    let cache = |path: &str| {
        let r = get(a, path, Some(ADMIN));
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.header("cache-control").map(String::from)
    };
    for path in ["/", "/index.html", "/app.js", "/runs/abc/steps/2"] {
        assert_eq!(cache(path).as_deref(), Some("no-cache"), "{path}");
    }
    assert_eq!(
        cache("/app-17a50fca03cebfb_bg.wasm").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(cache("/api/v1/runs"), None);
    assert_eq!(cache("/healthz"), None);
    get(a, "/api/v1/nothing-here", Some(ADMIN)).problem(404);
    get(a, "/api/v2/runs", Some(ADMIN)).problem(404);
    get(a, "/api/v1/runs/", Some(ADMIN)).problem(404);
    get(a, "/api/v1/runs/abc/steps/1/nothing", Some(ADMIN)).problem(404);
    // A route's path with a method it does not take: 405, with the methods it does.
    let auth = bearer(ADMIN);
    let headers = [("Authorization", auth.as_str())];
    for (method, path, allow) in [
        ("DELETE", "/api/v1/runs/abc", "GET"),
        ("PUT", "/api/v1/runs", "GET, POST"),
        ("GET", "/api/v1/runs/abc/seal", "POST"),
        ("POST", "/api/v1/tokens/pp_x", "DELETE"),
    ] {
        let r = request_raw(a, method, path, &headers, &[], None);
        let detail = r.problem(405);
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
        assert!(
            detail.contains(&format!("does not take {method}; it takes {allow}")),
            "{detail}"
        );
    }
    let spec = get(a, "/api/v1/openapi.json", Some(ADMIN));
    assert_eq!(spec.status, 200);
    let _: Value = spec.json();
}

/// Without a web app, the server says where it looked and how to give it one, as it starts
/// and at its pages' addresses; the API is unaffected.
#[test]
fn without_a_web_app_the_server_says_where_it_looked() {
    let (_dir, s) = started();
    let r = get(&s.addr, "/runs/abc", None);
    assert_eq!(r.status, 404);
    let text = r.text();
    assert!(
        text.contains("web/dist/index.html") && text.contains("--static-dir DIR"),
        "{text}"
    );
    assert_eq!(get(&s.addr, "/api/v1/runs", Some(ADMIN)).status, 200);
}

#[test]
fn demo_run_is_loaded_sealed_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), &["--demo"]);
    let a = &s.addr;
    let runs = get(a, "/api/v1/runs", Some(ADMIN)).json();
    assert_eq!(runs["total"], 1);
    let run = &runs["items"][0];
    assert_eq!(run["status"], "sealed");
    assert_eq!(run["steps"], 5);
    let id = run["id"].as_str().unwrap();
    let detail = get(a, &format!("/api/v1/runs/{id}"), Some(ADMIN)).json();
    let names: Vec<&str> = detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["record"]["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "load",
            "deduplicate",
            "fix_currencies",
            "enrich",
            "aggregate"
        ]
    );
    let fix = &detail["steps"][2]["diff"];
    assert!(
        fix["changed"].as_u64().unwrap() > 0,
        "currencies were fixed: {fix}"
    );
    let enrich = &detail["steps"][3]["diff"];
    assert!(
        enrich["removed"].as_u64().unwrap() > 0,
        "unbooked trades left: {enrich}"
    );
    let key = get(a, "/api/v1/keys", Some(ADMIN)).json()["keys"][0]["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let bundle = get(a, &format!("/api/v1/runs/{id}/bundle"), Some(ADMIN));
    let report = pipeproof_core::bundle::verify_bytes(&bundle.body, Some(&key), None);
    assert!(report.passed(), "{report:#?}");
}

/// A trace gives the diff's word on a row, not its hash's: a column added, dropped or
/// ignored, or a float within the tolerance, changes a row's hash but not the row; where
/// the details that would tell were not kept, the state is unknown unless every hash
/// difference is a change.
#[test]
fn a_trace_agrees_with_the_diff_on_what_changed() {
    let (_dir, s) = started();
    let a = &s.addr;
    let run = create_run(a, "trace");
    let steps = [
        ("load", "", "id,x,note\n1,1.0,a\n2,2.0,b\n"),
        ("widen", "", "id,x,note,extra\n1,1.0,a,p\n2,2.0,b,q\n"),
        (
            "narrow",
            "&abs_tol=0.001&ignore=note",
            "id,x,note\n1,1.0000001,a\n2,2.0,zzz\n",
        ),
        (
            "fix",
            "&abs_tol=0.001&ignore=note",
            "id,x,note\n1,5.0,a\n2,2.0,zzz\n",
        ),
        (
            "exact",
            "&summary_only_threshold=0",
            "id,x,note\n1,6.0,a\n2,2.0,zzz\n",
        ),
        (
            "blind",
            "&summary_only_threshold=0&ignore=note",
            "id,x,note\n1,7.0,b\n2,2.0,yyy\n",
        ),
    ];
    for (step, options, body) in steps {
        let r = post(
            a,
            &format!("{}{options}", step_path(&run, step, "id")),
            ADMIN,
            "text/csv",
            body.as_bytes(),
        );
        assert_eq!(r.status, 201, "{step}: {}", r.text());
    }
    let trace = |key: u32| {
        let t = get(
            a,
            &format!("/api/v1/runs/{run}/trace?key={key}"),
            Some(ADMIN),
        )
        .json();
        let steps = t["steps"].as_array().unwrap().clone();
        (t, steps)
    };
    let states = |steps: &[serde_json::Value]| -> Vec<String> {
        steps
            .iter()
            .map(|s| s["state"].as_str().unwrap().to_string())
            .collect()
    };
    let (t, one) = trace(1);
    assert_eq!(
        states(&one),
        [
            "added",
            "unchanged",
            "unchanged",
            "changed",
            "changed",
            "unknown"
        ],
        "{t}"
    );
    // Unchanged to the diff, with another hash: the values of its columns are not known.
    assert_ne!(one[1]["row_hash"], one[0]["row_hash"], "{t}");
    assert!(
        one[1]["values"].is_null() && one[2]["values"].is_null(),
        "{t}"
    );
    assert_eq!(one[3]["changes"][0]["column"], "x", "{t}");
    assert_eq!(one[3]["changes"].as_array().unwrap().len(), 1, "{t}");
    // Read from the rule, without details: no cells to show.
    assert_eq!(one[4]["changes"], serde_json::json!([]), "{t}");
    let (t, two) = trace(2);
    assert_eq!(
        states(&two),
        [
            "added",
            "unchanged",
            "unchanged",
            "unchanged",
            "unchanged",
            "unknown"
        ],
        "{t}"
    );
}

/// A misspelled option is refused, naming it, rather than dropped: `keys=id` for `key=id`
/// would otherwise store a keyed step as a multiset diff, for good once the run is sealed.
#[test]
fn unknown_options_and_fields_are_refused_by_name() {
    let (_dir, s) = started();
    let a = &s.addr;
    let run = create_run(a, "typos");
    let body = b"id,x\n1,2\n";
    let path = format!("/api/v1/runs/{run}/steps?step=load&keys=id&abs-tol=0.5");
    let d = post(a, &path, ADMIN, "text/csv", body).problem(400);
    assert!(
        d.contains("unknown field `keys`") && d.contains("`key`"),
        "{d}"
    );
    let detail = get(a, &format!("/api/v1/runs/{run}"), Some(ADMIN)).json();
    assert_eq!(
        detail["steps"],
        serde_json::json!([]),
        "nothing stored: {detail}"
    );
    let d = post_json(
        a,
        "/api/v1/runs",
        ADMIN,
        &serde_json::json!({"pipeline": "p", "lables": {"env": "prod"}}),
    )
    .problem(400);
    assert!(d.contains("unknown field `lables`"), "{d}");
    let d = post_json(
        a,
        &format!("/api/v1/runs/{run}/redact"),
        ADMIN,
        &serde_json::json!({"reason": "r", "step": [0]}),
    )
    .problem(400);
    assert!(d.contains("unknown field `step`"), "{d}");
    let d = get(a, "/api/v1/runs?pipelin=p", Some(ADMIN)).problem(400);
    assert!(d.contains("unknown field `pipelin`"), "{d}");
    // A bad value names its parameter.
    let d = get(a, "/api/v1/runs?limit=-1", Some(ADMIN)).problem(400);
    assert!(d.contains("`limit`: invalid digit found in string"), "{d}");
    let d = get(a, &format!("/api/v1/runs/{run}/trace?kye=1"), Some(ADMIN)).problem(400);
    assert!(d.contains("unknown parameter `kye`"), "{d}");
    let r = post(
        a,
        &format!("/api/v1/runs/{run}/steps?step=load&key=id"),
        ADMIN,
        "text/csv",
        body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

/// Names are one line of plain text, of a bounded length: a pipeline, a label, a step.
#[test]
fn names_with_control_characters_or_too_long_are_refused() {
    let (_dir, s) = started();
    let a = &s.addr;
    let refused = |body: serde_json::Value| post_json(a, "/api/v1/runs", ADMIN, &body).problem(422);
    let d = refused(serde_json::json!({"pipeline": "x\u{0}y"}));
    assert!(
        d.contains("`pipeline` holds a control character ('\\0')"),
        "{d}"
    );
    let d = refused(serde_json::json!({"pipeline": "p".repeat(201)}));
    assert!(
        d.contains("`pipeline` is 201 bytes long; at most 200"),
        "{d}"
    );
    let d = refused(serde_json::json!({"pipeline": "p", "labels": {"env": "a\nb"}}));
    assert!(d.contains("label `env` holds a control character"), "{d}");
    let d = refused(serde_json::json!({"pipeline": "p", "labels": {" ": "x"}}));
    assert!(d.contains("a label has an empty name"), "{d}");
    let d = refused(serde_json::json!({"pipeline": "p", "params": [1, 2]}));
    assert!(d.contains("`params` must be a JSON object"), "{d}");
    let runs = get(a, "/api/v1/runs", Some(ADMIN)).json();
    assert_eq!(runs["total"], 0, "none was made: {runs}");
    let run = create_run(a, "names");
    let d = post(
        a,
        &format!("/api/v1/runs/{run}/steps?step=load%0Aclean"),
        ADMIN,
        "text/csv",
        b"id\n1\n",
    )
    .problem(422);
    assert!(
        d.contains("`step` holds a control character ('\\n')"),
        "{d}"
    );
}
