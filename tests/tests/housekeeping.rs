//! What a real server does on its own (`--fail-idle-after`, `--retain`), over loopback HTTP
//! and a real store: an idle open run is failed, saying why, unless a step's body is still
//! arriving; an ended run is redacted once its retention is over; bad settings are refused.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use pipeproof_tests::*;
use serde_json::Value;

const ARROW: &str = "application/vnd.apache.arrow.stream";

fn ids(values: &[i64]) -> Vec<u8> {
    let col: ArrayRef = Arc::new(Int64Array::from(values.to_vec()));
    ipc_stream(&RecordBatch::try_from_iter([("id", col)]).unwrap())
}

fn run(addr: &str, id: &str) -> Value {
    let r = get(addr, &format!("/api/v1/runs/{id}"), Some(ADMIN));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Polls the run until `done` holds of it, for at most 30 s.
fn wait_for(addr: &str, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let r = run(addr, id);
        if done(&r) {
            return r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: not so after 30 s: {r}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts a step post of `body` to `run` over a raw connection; returns it, the body
/// not sent yet.
fn start_post(addr: &str, run: &str, len: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST /api/v1/runs/{run}/steps?step=load&key=id HTTP/1.1\r\nHost: {addr}\r\n\
         Connection: close\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: {ARROW}\r\n\
         Content-Length: {len}\r\n\r\n"
    )
    .unwrap();
    s
}

fn reply(mut s: TcpStream) -> String {
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn idle_runs_are_failed_and_ended_runs_redacted_by_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--fail-idle-after", "3s", "--retain", "4s"],
    );
    let addr = server.addr.as_str();
    let idle = create_run(addr, "nightly");
    let r = post(
        addr,
        &format!("/api/v1/runs/{idle}/steps?step=load&key=id&artifact=true"),
        ADMIN,
        ARROW,
        &ids(&[1, 2, 3]),
    );
    assert_eq!(r.status, 201, "{}", r.text());

    // A run whose step arrives slowly, but steadily, is not idle; one whose step stalls is.
    let (slow, stalled) = (create_run(addr, "nightly"), create_run(addr, "nightly"));
    let body = ids(&[1, 2, 3, 4]);
    let mut steady = start_post(addr, &slow, body.len());
    let mut stalls = start_post(addr, &stalled, body.len());
    stalls.write_all(&body[..10]).unwrap();
    let parts: Vec<&[u8]> = body.chunks(body.len() / 7 + 1).collect();
    for part in &parts {
        steady.write_all(part).unwrap();
        steady.flush().unwrap();
        std::thread::sleep(Duration::from_secs(1));
    }
    let reply_to_steady = reply(steady);
    assert!(
        reply_to_steady.starts_with("HTTP/1.1 201"),
        "{reply_to_steady}"
    );
    assert!(
        parts.len() >= 7,
        "the steady post took longer than the setting"
    );

    let failed = wait_for(addr, &idle, "the idle run failed", |r| {
        r["run"]["status"] == "failed"
    });
    let error = failed["run"]["error"].as_str().unwrap();
    assert!(
        error.contains("no step arrived for more than 3s") && error.contains("fail_idle_after"),
        "{error}"
    );
    assert!(
        failed["seal"].is_object(),
        "the failure is sealed: {failed}"
    );
    wait_for(addr, &stalled, "the stalled run failed", |r| {
        r["run"]["status"] == "failed"
    });
    // The stalled step, finished at last, is refused, saying why the run ended.
    stalls.write_all(&body[10..]).unwrap();
    let late = reply(stalls);
    assert!(
        late.starts_with("HTTP/1.1 409") && late.contains("no step arrived"),
        "{late}"
    );
    let r = post(
        addr,
        &format!("/api/v1/runs/{idle}/steps?step=late&key=id"),
        ADMIN,
        ARROW,
        &ids(&[1]),
    );
    let problem = r.problem(409);
    assert!(problem.contains("no step arrived"), "{problem}");

    // Its retention over, the failed run's kept data is redacted, naming the setting.
    let redacted = wait_for(addr, &idle, "the ended run redacted", |r| {
        r["steps"][0]["redacted"].is_object()
    });
    let reason = redacted["steps"][0]["redacted"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("more than 4s") && reason.contains("retain"),
        "{reason}"
    );
    assert_eq!(redacted["steps"][0]["artifact"], false);
    let r = get(
        addr,
        &format!("/api/v1/runs/{idle}/steps/0/artifact"),
        Some(ADMIN),
    );
    assert_eq!(r.status, 410, "{}", r.text());
    // The slow run, idle in turn once its step is stored, is failed as well.
    wait_for(addr, &slow, "the slow run failed once idle", |r| {
        r["run"]["status"] == "failed" && r["run"]["steps"] == 1
    });

    // The metrics count what housekeeping did (once the pass that did it has ended).
    let metric = |text: &str, name: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
        line.unwrap_or_else(|| panic!("no {name} in {text}"))[name.len() + 1..]
            .parse()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = get(addr, "/metrics", Some(ADMIN)).text();
        if metric(&text, "pipeproof_runs_failed_idle_total") == 3 {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        metric(&text, "pipeproof_runs_redacted_retention_total") >= 1,
        "{text}"
    );
    assert!(
        metric(&text, "pipeproof_blob_files_removed_total") >= 1,
        "{text}"
    );
    assert!(
        metric(&text, "pipeproof_blob_bytes_freed_total") > 0,
        "{text}"
    );
    assert!(
        metric(&text, "pipeproof_housekeeping_passes_total") >= 3,
        "{text}"
    );
    assert_eq!(
        metric(&text, "pipeproof_housekeeping_problems_total"),
        0,
        "{text}"
    );
    let last = metric(&text, "pipeproof_housekeeping_last_pass_timestamp_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        last <= now && now - last < 60,
        "last pass at {last}, now {now}"
    );
}

#[test]
fn bad_housekeeping_settings_are_refused_before_the_server_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    for (flag, value, says) in [
        ("--retain", "5parsecs", "unknown unit `parsecs`"),
        ("--fail-idle-after", "90", "a number without a unit"),
        ("--retain", "0d", "no time at all"),
    ] {
        let out = pipeproof_tests::run(&["serve", "--data-dir", data, flag, value]);
        let err = text(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says) && err.contains("setting"), "{err}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "nothing is made before the settings are read"
    );
}
