//! What the end-to-end tests share: the real `pipeproof` binary (built once per test
//! process, so never stale) and a way to run it, data files written in each format, the real
//! `pipeproof serve` on a free loopback port with a temp data directory, and a minimal
//! HTTP/1.1 client over `TcpStream` (which can also send the broken requests the tests need,
//! such as a truncated body).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;

/// The admin token the test servers are started with.
pub const ADMIN: &str = "test-admin-token-0123456789";

/// The `pipeproof` binary, built once per test process so it is never stale.
pub fn binary() -> PathBuf {
    static BUILD: Once = Once::new();
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir")
        .to_path_buf();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-q", "-p", "pipeproof-server"])
            .status()
            .expect("run cargo build")
            .success();
        assert!(ok, "cargo build -p pipeproof-server failed");
    });
    dir.join(format!("pipeproof{}", std::env::consts::EXE_SUFFIX))
}

/// A running server.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// What the server printed on stdout before it listened.
    pub banner: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts `pipeproof serve` on `data_dir` with extra arguments, and waits until
    /// `/healthz` answers.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_env(data_dir, extra, &[("PIPEPROOF_ADMIN_TOKEN", ADMIN)])
    }

    /// Like [`Server::start`] with chosen environment variables.
    pub fn start_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--bind", &addr, "--workers", "2"])
            .args(extra)
            .env_remove("PIPEPROOF_ADMIN_TOKEN")
            .env("PIPEPROOF_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start pipeproof serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut banner = String::new();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                banner.push_str(&line);
                banner.push('\n');
                if line.starts_with("(shown once") || line.starts_with("pipeproof listening") {
                    let _ = tx.send(banner.clone());
                }
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let mut banner = String::new();
        let start = Instant::now();
        let server_ok = |addr: &str| {
            TcpStream::connect(addr).is_ok() && get(addr, "/healthz", None).status == 200
        };
        while start.elapsed() < Duration::from_secs(120) {
            while let Ok(b) = rx.try_recv() {
                banner = b;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("pipeproof serve exited early: {status}");
            }
            if !banner.is_empty() && server_ok(&addr) {
                std::thread::sleep(Duration::from_millis(50));
                while let Ok(b) = rx.try_recv() {
                    banner = b;
                }
                return Server {
                    child,
                    addr,
                    banner,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("pipeproof serve did not answer on {addr} within 120 s");
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the server to stop (SIGTERM) and waits for it; returns whether it exited
    /// with status 0.
    pub fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(sent, "kill -TERM {pid} failed");
        self.child.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// Kills the server with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A reply.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "reply {} is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a problem+json reply with this status, and returns its detail.
    #[track_caller]
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(self.status, status, "reply: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "reply: {}",
            self.text()
        );
        let p = self.json();
        assert_eq!(p["status"], status);
        let kind = p["type"].as_str().unwrap();
        assert!(kind.starts_with("https://"));
        // The title is the kind in words: `.../duplicate-keys` is "Duplicate keys".
        let words = kind.rsplit('/').next().unwrap().replace('-', " ");
        let title = words[..1].to_uppercase() + &words[1..];
        assert_eq!(p["title"], title, "reply: {}", self.text());
        let detail = p["detail"].as_str().unwrap().to_string();
        assert!(detail.len() > 20, "a detail that says something: {detail}");
        detail
    }
}

/// Sends one request (`Connection: close`) and reads the whole reply. `declared_len`
/// overrides Content-Length (to send a truncated body).
pub fn request_raw(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    declared_len: Option<usize>,
) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\n\r\n",
        declared_len.unwrap_or(body.len())
    ));
    s.write_all(head.as_bytes()).unwrap();
    // A server may answer (413, 415) before reading the body: ignore write errors.
    let _ = s.write_all(body);
    if declared_len.is_some() {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no reply head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..nl])
                    .split(';')
                    .next()
                    .unwrap()
                    .trim(),
                16,
            )
            .unwrap();
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// `Authorization` header for a token.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// GET with an optional token.
pub fn get(addr: &str, path: &str, token: Option<&str>) -> Reply {
    let auth = token.map(bearer);
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    request_raw(addr, "GET", path, &headers, &[], None)
}

/// POST a body with a content type and token.
pub fn post(addr: &str, path: &str, token: &str, content_type: &str, body: &[u8]) -> Reply {
    let auth = bearer(token);
    request_raw(
        addr,
        "POST",
        path,
        &[("Authorization", &auth), ("Content-Type", content_type)],
        body,
        None,
    )
}

/// POST JSON.
pub fn post_json(addr: &str, path: &str, token: &str, body: &serde_json::Value) -> Reply {
    post(
        addr,
        path,
        token,
        "application/json",
        body.to_string().as_bytes(),
    )
}

/// Creates a run and returns its id.
pub fn create_run(addr: &str, pipeline: &str) -> String {
    let r = post_json(
        addr,
        "/api/v1/runs",
        ADMIN,
        &serde_json::json!({"pipeline": pipeline, "labels": {"env": "test"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

/// A batch as an Arrow IPC stream.
pub fn ipc_stream(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema()).unwrap();
    w.write(batch).unwrap();
    w.finish().unwrap();
    drop(w);
    out
}

/// `batch` as an Arrow IPC stream damaged (a few bytes, seeded) so that arrow's own
/// decoder panics on it where it should fail, as it does on some malformed input.
pub fn ipc_stream_arrow_panics_on(batch: &RecordBatch) -> Vec<u8> {
    let good = ipc_stream(batch);
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut random = move |below: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % below as u64) as usize
    };
    for _ in 0..10_000 {
        let mut damaged = good.clone();
        for _ in 0..1 + random(4) {
            let i = random(damaged.len());
            damaged[i] = random(256) as u8;
        }
        let bytes = damaged.clone();
        let decoded = std::panic::catch_unwind(move || {
            arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
                .map(|r| r.collect::<Vec<_>>())
        });
        if decoded.is_err() {
            return damaged;
        }
    }
    panic!("no damage found that arrow panics on: has arrow stopped panicking?");
}

/// A batch as Parquet.
pub fn parquet(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
    out
}

/// Keeps a value alive for a test's length (temp dirs).
pub type Keep = Arc<tempfile::TempDir>;

/// Runs `pipeproof ARGS` without colour; fails the test if it panicked.
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(binary())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run pipeproof");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "pipeproof panicked: {stderr}");
    out
}

/// A finished command's stdout and stderr, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Writes a batch to `dir/name` in the format its extension names (`parquet`, `arrow` for
/// an IPC file, `arrows` for an IPC stream, `csv`); returns the path.
pub fn write(dir: &Path, name: &str, b: &RecordBatch) -> String {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap();
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => {
            let mut w = parquet::arrow::ArrowWriter::try_new(file, b.schema(), None).unwrap();
            w.write(b).unwrap();
            w.close().unwrap();
        }
        Some("arrow") => {
            let mut w = arrow_ipc::writer::FileWriter::try_new(file, &b.schema()).unwrap();
            w.write(b).unwrap();
            w.finish().unwrap();
        }
        Some("arrows") => {
            let mut w = arrow_ipc::writer::StreamWriter::try_new(file, &b.schema()).unwrap();
            w.write(b).unwrap();
            w.finish().unwrap();
        }
        Some("csv") => {
            let mut w = arrow_csv::WriterBuilder::new()
                .with_header(true)
                .build(file);
            w.write(b).unwrap();
        }
        other => panic!("no writer for {other:?}"),
    }
    path.to_string_lossy().into_owned()
}
