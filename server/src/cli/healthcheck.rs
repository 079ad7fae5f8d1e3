//! `pipeproof healthcheck`: asks a running server's `/healthz` and exits 0 when it answers
//! `ok`. It needs no shell, curl or libc, so the container image's HEALTHCHECK can run it.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Check that a server answers.
#[derive(clap::Args)]
pub struct Args {
    /// The health URL (plain http).
    #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
    url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    timeout: u64,
}

/// Runs `pipeproof healthcheck`.
pub fn run(args: Args) -> Result<ExitCode> {
    let rest = args
        .url
        .strip_prefix("http://")
        .with_context(|| format!("{}: only http:// URLs are supported", args.url))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let addr = host
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    let mut conn = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("no server answers at {host}"))?;
    conn.set_read_timeout(Some(timeout))?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply)?;
    let status = reply.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") || !reply.contains("\"ok\"") {
        bail!("{} answered: {status}", args.url);
    }
    println!("ok");
    Ok(ExitCode::SUCCESS)
}
