//! A small blocking client of the pipeproof HTTP API for the command line (`send`, `export`,
//! `seal`). Request and reply types are core's `api` module; this module only does HTTP:
//! the base URL and bearer token, streaming bodies in and out, and turning problem
//! documents into errors that say what the server said and what to do.

use std::fs::File;
use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use pipeproof_core::api::{PREFIX, Problem};
use serde::Serialize;
use serde::de::DeserializeOwned;
use ureq::Agent;
use ureq::http::Response;

/// The default server, as `pipeproof serve` binds it.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Where the server is and how to sign in: shared by every client subcommand.
#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "PIPEPROOF_URL", default_value = DEFAULT_URL)]
    pub server: String,
    /// The API token (printed by `pipeproof serve` on first start, or made with
    /// `pipeproof token create`).
    #[arg(long, env = "PIPEPROOF_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// A reply with a status that is not 2xx, as an error: what the server said, and when it
/// asked to be asked again (`Retry-After`, seconds).
#[derive(Debug)]
pub struct Answered {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After` in seconds, when given so.
    pub retry_after: Option<u64>,
    message: String,
}

impl std::fmt::Display for Answered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Answered {}

/// A client of one server.
pub struct Client {
    agent: Agent,
    base: String,
    token: Option<String>,
}

/// A reply with a 2xx status.
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    response: Response<ureq::Body>,
}

impl Reply {
    /// The body as JSON.
    pub fn json<T: DeserializeOwned>(mut self, what: &str) -> Result<T> {
        let text = self
            .response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()
            .with_context(|| format!("cannot read the reply to {what}"))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "the reply to {what} is not what this client expects (is the server the same \
                 version?): {}",
                text.chars().take(200).collect::<String>()
            )
        })
    }

    /// The body, streamed into `out`; returns the number of bytes.
    pub fn copy_to(mut self, out: &mut impl Write) -> Result<u64> {
        let mut reader = self.response.body_mut().as_reader();
        Ok(std::io::copy(&mut reader, out)?)
    }
}

impl Client {
    /// A client of the server named by `args`.
    pub fn new(args: &ServerArgs) -> Result<Client> {
        let base = args.server.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--server `{base}` is not an http:// URL (for example {DEFAULT_URL})");
        }
        if base.starts_with("https://") {
            bail!(
                "--server `{base}`: this build of the client speaks plain http only; put the \
                 server behind a local proxy or use http:// on a trusted network"
            );
        }
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .user_agent(concat!("pipeproof/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            agent: config.into(),
            base,
            token: args.token.clone().filter(|t| !t.trim().is_empty()),
        })
    }

    /// The full URL of an API path (`/runs/..`).
    fn url(&self, path: &str) -> String {
        format!("{}{PREFIX}{path}", self.base)
    }

    fn auth(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {}", t.trim()))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Reply> {
        let mut req = self.agent.get(self.url(path));
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        self.finish("GET", path, req.call())
    }

    /// `POST path` with a JSON body.
    pub fn post_json<B: Serialize>(&self, path: &str, body: &B) -> Result<Reply> {
        let mut req = self
            .agent
            .post(self.url(path))
            .content_type("application/json");
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        self.finish("POST", path, req.send(serde_json::to_vec(body)?))
    }

    /// `POST path?query` with a file streamed as the body (its length sent up front).
    pub fn post_file(
        &self,
        path: &str,
        query: &[(&str, String)],
        file: File,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply> {
        let mut req = self
            .agent
            .post(self.url(path))
            .content_type(content_type)
            .query_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        if let Some(a) = self.auth() {
            req = req.header("Authorization", a);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.finish("POST", path, req.send(file))
    }

    /// A 2xx reply, or an error that says what the server said.
    fn finish(
        &self,
        method: &str,
        path: &str,
        result: Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply> {
        let mut response = result.map_err(|e| self.transport_error(method, path, e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(Reply { status, response });
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let mut body = String::new();
        let _ = response
            .body_mut()
            .as_reader()
            .take(64 << 10)
            .read_to_string(&mut body);
        let mut msg = match serde_json::from_str::<Problem>(&body) {
            Ok(p) => format!(
                "{method} {PREFIX}{path}: the server answered {status} {}: {}",
                p.title, p.detail
            ),
            Err(_) => format!(
                "{method} {PREFIX}{path}: the server answered {status}{}",
                if body.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", body.trim().chars().take(300).collect::<String>())
                }
            ),
        };
        if status == 401 && self.token.is_none() {
            msg.push_str(
                " (no token was sent: pass --token or set PIPEPROOF_TOKEN; `pipeproof serve` \
                 prints the first admin token when it first starts)",
            );
        }
        Err(anyhow!(Answered {
            status,
            retry_after,
            message: msg,
        }))
    }

    fn transport_error(&self, method: &str, path: &str, e: ureq::Error) -> anyhow::Error {
        match e {
            ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                anyhow!(
                    "{method} {PREFIX}{path}: cannot reach a pipeproof server at {} ({e}); start \
                     one with `pipeproof serve`, or point --server / PIPEPROOF_URL at yours",
                    self.base
                )
            }
            ureq::Error::Timeout(_) => anyhow!(
                "{method} {PREFIX}{path}: the pipeproof server at {} did not answer in time ({e})",
                self.base
            ),
            e => anyhow!("{method} {PREFIX}{path} to {}: {e}", self.base),
        }
    }

    /// Whether an error is worth a retry: the request may not have reached the server.
    pub fn is_transport(e: &anyhow::Error) -> bool {
        e.to_string().contains("cannot reach a pipeproof server")
    }

    /// The status the server answered with, when the error is a reply.
    pub fn answered(e: &anyhow::Error) -> Option<&Answered> {
        e.downcast_ref::<Answered>()
    }

    /// Whether an error is the server's refusal of the request itself: a 4xx other than 408
    /// (timeout) and 429 (too many requests), which a retry of the same request would get
    /// again. A 5xx, a timeout or a lost connection says nothing of whether it was done.
    pub fn is_refusal(e: &anyhow::Error) -> bool {
        Client::answered(e)
            .is_some_and(|a| (400..500).contains(&a.status) && a.status != 408 && a.status != 429)
    }

    /// Whether a retry of the same request may succeed: the server could not be reached, or
    /// answered 408, 429 or 5xx.
    pub fn is_retryable(e: &anyhow::Error) -> bool {
        Client::is_transport(e)
            || e.to_string().contains("did not answer in time")
            || Client::answered(e)
                .is_some_and(|a| a.status >= 500 || a.status == 408 || a.status == 429)
    }
}

/// A fresh random Idempotency-Key: 16 random bytes, hex.
pub fn idempotency_key() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow!("no random source for an idempotency key: {e}"))?;
    Ok(hex::encode(b))
}

/// A path segment, percent-encoded (run ids are URL-safe, but a typo should not reach
/// another route).
pub fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("run-01.a_b~"), "run-01.a_b~");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn idempotency_keys_differ() {
        let (a, b) = (idempotency_key().unwrap(), idempotency_key().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn only_plain_http_urls_are_taken() {
        let args = |s: &str| ServerArgs {
            server: s.into(),
            token: None,
        };
        assert!(Client::new(&args("http://127.0.0.1:9/")).is_ok());
        let e = Client::new(&args("127.0.0.1:8080"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not an http:// URL"), "{e}");
        assert!(Client::new(&args("https://example.invalid")).is_err());
    }

    #[test]
    fn an_unreachable_server_is_a_clear_error() {
        // A loopback port that was free a moment ago: nothing listens on it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let c = Client::new(&ServerArgs {
            server: format!("http://127.0.0.1:{port}"),
            token: None,
        })
        .unwrap();
        let e = c.get("/keys").err().unwrap();
        assert!(Client::is_transport(&e), "{e}");
        assert!(e.to_string().contains("pipeproof serve"), "{e}");
    }

    fn answered(status: u16) -> anyhow::Error {
        anyhow!(Answered {
            status,
            retry_after: None,
            message: format!("answered {status}"),
        })
    }

    /// Only a 4xx that a retry would get again is a refusal (the request was not done); a
    /// gateway's 502/504, a busy 503, a timeout or no answer leave it unknown, and are
    /// retried with the same Idempotency-Key.
    #[test]
    fn refusals_are_told_from_replies_that_say_nothing_of_the_outcome() {
        for status in [400, 401, 404, 409, 413, 415, 422] {
            let e = answered(status).context("posting the step");
            assert!(Client::is_refusal(&e), "{status}");
            assert!(!Client::is_retryable(&e), "{status}");
        }
        for status in [408, 429, 500, 502, 503, 504] {
            let e = answered(status);
            assert!(!Client::is_refusal(&e), "{status}");
            assert!(Client::is_retryable(&e), "{status}");
        }
        let unreachable = anyhow!("POST /x: cannot reach a pipeproof server at http://h (refused)");
        let slow = anyhow!("POST /x: the pipeproof server at http://h did not answer in time (t)");
        for e in [unreachable, slow] {
            assert!(!Client::is_refusal(&e) && Client::is_retryable(&e), "{e}");
        }
    }
}
