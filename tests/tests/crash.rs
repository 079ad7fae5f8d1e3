//! Crash safety of the store: a stream of step posts, the server killed with SIGKILL in
//! the middle of it, restarted on the same data directory. Every acknowledged (2xx) step is
//! there with the same record hash, no half-written step or leftover file is visible, the
//! run takes further steps (the carried data of its head survived), and the sealed run's
//! bundle verifies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use pipeproof_tests::*;

/// Step `n` of the stream: 20k rows, a few rows changed, added and removed per step.
fn step(n: i64) -> RecordBatch {
    let ids: Vec<i64> = (n * 10..n * 10 + 20_000).collect();
    let amounts: Vec<f64> = ids
        .iter()
        .map(|i| (i * 7 % 1000) as f64 + n as f64 * (i % 13 == 0) as i64 as f64)
        .collect();
    let names: Vec<String> = ids.iter().map(|i| format!("name-{}", i % 977)).collect();
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

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &[]);
    let addr = server.addr.clone();
    let run = create_run(&addr, "crash");
    let bodies: Vec<Vec<u8>> = (0..40).map(|n| ipc_stream(&step(n))).collect();
    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let poster = {
        let (acked, stop, run, addr) = (acked.clone(), stop.clone(), run.clone(), addr.clone());
        std::thread::spawn(move || {
            for (n, body) in bodies.iter().enumerate() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let r = std::panic::catch_unwind(|| {
                    post(
                        &addr,
                        &format!("/api/v1/runs/{run}/steps?step=s{n}&key=id"),
                        ADMIN,
                        "application/vnd.apache.arrow.stream",
                        body,
                    )
                });
                match r {
                    Ok(r) if r.status == 201 => {
                        let j = r.json();
                        acked.lock().unwrap().push((
                            j["record"]["index"].as_u64().unwrap(),
                            j["hash"].as_str().unwrap().to_string(),
                        ));
                    }
                    // The connection died with the server: not acknowledged.
                    _ => break,
                }
            }
        })
    };
    // Let a few steps through, then kill while the next one is in flight.
    while acked.lock().unwrap().len() < 4 {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(60));
    server.kill();
    stop.store(true, Ordering::SeqCst);
    poster.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 4);

    let server = Server::start(&data, &[]);
    let a = &server.addr;
    let detail = get(a, &format!("/api/v1/runs/{run}"), Some(ADMIN)).json();
    let steps = detail["steps"].as_array().unwrap();
    assert!(
        steps.len() >= acked.len(),
        "{} steps stored, {} acknowledged",
        steps.len(),
        acked.len()
    );
    assert_eq!(
        detail["run"]["steps"].as_u64().unwrap() as usize,
        steps.len()
    );
    for (index, hash) in &acked {
        assert_eq!(&steps[*index as usize]["hash"].as_str().unwrap(), hash);
    }
    // Nothing half-written: tmp/ is empty, one carry file (the head's data).
    assert_eq!(std::fs::read_dir(data.join("tmp")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(data.join("carry")).unwrap().count(), 1);
    // The run goes on: the next step diffs against the restored head.
    let n = steps.len() as i64;
    let r = post(
        a,
        &format!("/api/v1/runs/{run}/steps?step=after-restart&key=id"),
        ADMIN,
        "application/vnd.apache.arrow.stream",
        &ipc_stream(&step(n)),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["diff"]["added"], 10);
    assert_eq!(r.json()["diff"]["removed"], 10);
    let r = post(
        a,
        &format!("/api/v1/runs/{run}/seal"),
        ADMIN,
        "application/json",
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(std::fs::read_dir(data.join("carry")).unwrap().count(), 0);
    let key = get(a, "/api/v1/keys", Some(ADMIN)).json()["keys"][0]["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let bundle = get(a, &format!("/api/v1/runs/{run}/bundle"), Some(ADMIN));
    let report = pipeproof_core::bundle::verify_bytes(&bundle.body, Some(&key), None);
    assert!(report.passed(), "{report:#?}");
}
