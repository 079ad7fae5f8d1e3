//! Operations on a live store: a backup taken while steps are ingested restores to a store
//! that `pipeproof check` passes; `check` finds a byte changed in a blob or in the database;
//! a graceful shutdown under load loses no acknowledged step; a second server on a data
//! directory in use is refused.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use pipeproof_tests::*;

/// Step `n` of a run: 5k rows sliding by 7 ids a step, some amounts changed.
fn batch(n: i64) -> RecordBatch {
    let ids: Vec<i64> = (n * 7..n * 7 + 5_000).collect();
    let amounts: Vec<f64> = ids
        .iter()
        .map(|i| (i % 500) as f64 + if i % 11 == n % 11 { 0.5 } else { 0.0 })
        .collect();
    let desk: Vec<String> = ids.iter().map(|i| format!("desk-{}", i % 17)).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("desk", DataType::Utf8, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(Float64Array::from(amounts)),
            Arc::new(StringArray::from(desk)),
        ],
    )
    .unwrap()
}

/// Posts step `n`; the acknowledged (index, record hash), or None when not acknowledged.
fn post_step(addr: &str, run: &str, n: i64) -> Option<(u64, String)> {
    let body = ipc_stream(&batch(n));
    let r = std::panic::catch_unwind(|| {
        post(
            addr,
            &format!("/api/v1/runs/{run}/steps?step=s{n}&key=id"),
            ADMIN,
            "application/vnd.apache.arrow.stream",
            &body,
        )
    })
    .ok()?;
    if r.status != 201 {
        return None;
    }
    let j = r.json();
    Some((
        j["record"]["index"].as_u64().unwrap(),
        j["hash"].as_str().unwrap().to_string(),
    ))
}

fn pipeproof(args: &[&str]) -> (i32, String) {
    let out = Command::new(binary()).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn check(data: &Path) -> (i32, serde_json::Value, String) {
    let (code, text) = pipeproof(&[
        "check",
        "--data-dir",
        data.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (code, json, text)
}

fn seal(addr: &str, run: &str) {
    let r = post(
        addr,
        &format!("/api/v1/runs/{run}/seal"),
        ADMIN,
        "application/json",
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn step_hashes(addr: &str, run: &str) -> Vec<String> {
    get(addr, &format!("/api/v1/runs/{run}"), Some(ADMIN)).json()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["hash"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn backup_during_ingest_restores_to_a_store_that_checks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let addr = server.addr.clone();
    let sealed = create_run(&addr, "ops-sealed");
    for n in 0..3 {
        post_step(&addr, &sealed, n).expect("acknowledged");
    }
    seal(&addr, &sealed);
    let live = create_run(&addr, "ops-live");
    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let poster = {
        let (acked, addr, live) = (acked.clone(), addr.clone(), live.clone());
        std::thread::spawn(move || {
            for n in 0..12 {
                let a = post_step(&addr, &live, n).expect("acknowledged");
                acked.lock().unwrap().push(a);
            }
        })
    };
    while acked.lock().unwrap().len() < 3 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let backup = dir.path().join("backup");
    let (code, text) = pipeproof(&[
        "backup",
        backup.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    poster.join().unwrap();
    assert_eq!(acked.lock().unwrap().len(), 12);

    let restored = dir.path().join("restored");
    let (code, text) = pipeproof(&[
        "restore",
        backup.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    let (code, report, text) = check(&restored);
    assert_eq!(code, 0, "{text}");
    assert_eq!(report["damage"].as_array().unwrap().len(), 0, "{text}");
    assert_eq!(report["runs"], 2, "{text}");

    // The restored store serves what the original had when the backup was taken: the
    // sealed run whole, and a prefix of the live run with the same record hashes.
    let original = step_hashes(&addr, &live);
    let again = Server::start(&restored, &[]);
    let copy = step_hashes(&again.addr, &live);
    assert!(copy.len() >= 3 && copy.len() <= original.len(), "{copy:?}");
    assert_eq!(copy[..], original[..copy.len()]);
    assert_eq!(
        step_hashes(&again.addr, &sealed),
        step_hashes(&addr, &sealed)
    );
    // The restored live run goes on taking steps: its head's data came along.
    let r = post(
        &again.addr,
        &format!("/api/v1/runs/{live}/steps?step=after-restore&key=id"),
        ADMIN,
        "application/vnd.apache.arrow.stream",
        &ipc_stream(&batch(40)),
    );
    assert_eq!(r.status, 201, "{}", r.text());

    // A backup never lands on top of something.
    let (code, text) = pipeproof(&[
        "backup",
        backup.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("is not empty"), "{text}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn check_finds_a_byte_changed_in_a_blob_or_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &[]);
    let run = create_run(&server.addr, "ops-damage");
    for n in 0..3 {
        post_step(&server.addr, &run, n).expect("acknowledged");
    }
    seal(&server.addr, &run);
    let log = get(&server.addr, "/api/v1/log/entries", Some(ADMIN)).json();
    let leaf = log["entries"][0]["leaf"].as_str().unwrap().to_string();
    assert!(server.terminate(), "the server stops cleanly on SIGTERM");
    let (code, _, text) = check(&data);
    assert_eq!(code, 0, "{text}");
    assert!(
        !data.join("pipeproof.sqlite-wal").exists()
            || std::fs::metadata(data.join("pipeproof.sqlite-wal"))
                .unwrap()
                .len()
                == 0,
        "the database is checkpointed after a clean stop"
    );

    // A blob: one byte in the middle of the largest (a row table or detail table).
    let blob_copy = dir.path().join("blob-damage");
    copy_dir(&data, &blob_copy);
    let mut blobs = Vec::new();
    for prefix in std::fs::read_dir(blob_copy.join("blobs")).unwrap() {
        for b in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let p = b.unwrap().path();
            blobs.push((std::fs::metadata(&p).unwrap().len(), p));
        }
    }
    blobs.sort();
    let (len, victim) = blobs.last().unwrap().clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[len as usize / 2] ^= 0x01;
    std::fs::write(&victim, bytes).unwrap();
    let (code, report, text) = check(&blob_copy);
    assert_eq!(code, 1, "{text}");
    let damage = report["damage"].as_array().unwrap();
    let name = victim.file_name().unwrap().to_str().unwrap();
    assert!(
        damage
            .iter()
            .any(|d| d["place"].as_str().unwrap().starts_with("blob ")
                && d["place"].as_str().unwrap().ends_with(name)),
        "{text}"
    );
    // The run whose bundle cannot be made of it says why, in the words of the store: not
    // as a server answering a request.
    let run_damage = damage
        .iter()
        .find(|d| d["place"].as_str().unwrap().starts_with("run "))
        .unwrap_or_else(|| panic!("the run is reported: {text}"));
    let detail = run_damage["detail"].as_str().unwrap();
    assert!(
        detail.contains(name) && !detail.contains("retry it"),
        "{text}"
    );

    // The database: one hex digit of a stored record's content root. SQLite may hold stale
    // copies of a row in free pages, so every copy of that root is changed.
    let db_copy = dir.path().join("db-damage");
    copy_dir(&data, &db_copy);
    let db = db_copy.join("pipeproof.sqlite");
    let mut bytes = std::fs::read(&db).unwrap();
    let marker = b"\"content_root\":\"";
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("a stored record in the database file")
        + marker.len();
    let root = bytes[at..at + 64].to_vec();
    let mut changed = root.clone();
    changed[10] = if changed[10] == b'0' { b'1' } else { b'0' };
    let mut copies = 0;
    let mut i = 0;
    while i + 64 <= bytes.len() {
        if bytes[i..i + 64] == root[..] {
            bytes[i..i + 64].copy_from_slice(&changed);
            copies += 1;
            i += 64;
        } else {
            i += 1;
        }
    }
    assert!(copies >= 1);
    std::fs::write(&db, bytes).unwrap();
    let (code, report, text) = check(&db_copy);
    assert_eq!(code, 1, "{text}");
    assert!(
        report["damage"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["place"]
                .as_str()
                .unwrap()
                .starts_with(&format!("run {run}"))),
        "{text}"
    );

    // The log: its one entry's leaf (a 32-byte blob in the database), every copy changed.
    let log_copy = dir.path().join("log-damage");
    copy_dir(&data, &log_copy);
    let db = log_copy.join("pipeproof.sqlite");
    let mut bytes = std::fs::read(&db).unwrap();
    let leaf = pipeproof_core::Hash::from_hex(&leaf).unwrap().0;
    let mut copies = 0;
    for i in 0..bytes.len().saturating_sub(31) {
        if bytes[i..i + 32] == leaf {
            bytes[i + 7] ^= 0x40;
            copies += 1;
        }
    }
    assert!(copies >= 1, "the leaf is in the database file");
    std::fs::write(&db, bytes).unwrap();
    let (code, report, text) = check(&log_copy);
    assert_eq!(code, 1, "{text}");
    let damage = report["damage"].as_array().unwrap();
    assert!(
        damage
            .iter()
            .any(|d| d["place"] == format!("log entry 0 (run {run})")
                && d["detail"]
                    .as_str()
                    .unwrap()
                    .contains("not the leaf of the run's seal")),
        "{text}"
    );
}

#[test]
fn graceful_shutdown_under_load_loses_no_acknowledged_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &[]);
    let addr = server.addr.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(String, u64, String)>>> = Arc::default();
    let runs: Vec<String> = (0..4)
        .map(|i| create_run(&addr, &format!("load-{i}")))
        .collect();
    let posters: Vec<_> = runs
        .iter()
        .map(|run| {
            let (acked, stop, addr, run) = (acked.clone(), stop.clone(), addr.clone(), run.clone());
            std::thread::spawn(move || {
                for n in 0..200 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    match post_step(&addr, &run, n) {
                        Some((index, hash)) => {
                            acked.lock().unwrap().push((run.clone(), index, hash))
                        }
                        None => break,
                    }
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 8 {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(server.terminate(), "the server exits 0 after SIGTERM");
    stop.store(true, Ordering::SeqCst);
    for p in posters {
        p.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let again = Server::start(&data, &[]);
    for (run, index, hash) in &acked {
        let stored = step_hashes(&again.addr, run);
        assert_eq!(
            stored.get(*index as usize),
            Some(hash),
            "run {run} step {index} was acknowledged"
        );
    }
    drop(again);
    let (code, _, text) = check(&data);
    assert_eq!(code, 0, "nothing half-written: {text}");
}

/// A second server on a data directory a server is using is refused before it touches
/// anything (it would empty the first's `tmp/` as it started), naming the first's process;
/// once the first has stopped, the directory can be served again.
#[test]
fn a_second_server_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Server::start(dir.path(), &[]);
    // A body being received by the first server, as `tmp/` holds it.
    let in_flight = dir.path().join("tmp").join("body-in-flight");
    std::fs::write(&in_flight, b"part of a request body").unwrap();
    let second = Command::new(binary())
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--bind", "127.0.0.1:0"])
        .env("PIPEPROOF_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2), "{second:?}");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another pipeproof server is using the data directory")
            && err.contains(&format!("process {}", first.pid())),
        "{err}"
    );
    assert!(in_flight.exists(), "the refused server emptied tmp/");
    assert_eq!(get(&first.addr, "/healthz", None).status, 200);
    assert!(first.terminate());
    let mut again = Server::start(dir.path(), &[]);
    assert!(again.terminate());
}
