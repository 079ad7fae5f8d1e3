//! `pipeproof serve`: the HTTP server. Settings come from flags, then environment variables,
//! then an optional TOML file (`--config`), then defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, middleware, web};
use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::http::{AppState, configure};
use crate::store::Store;
use crate::store::housekeeping::{self, Policy, parse_duration};

/// Serve the HTTP API and the web app.
#[derive(clap::Args)]
pub struct Args {
    /// The data directory (SQLite file, blobs, signing key); made on first start.
    /// Default: `.data` in the current directory.
    #[arg(long, env = "PIPEPROOF_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The address to listen on. Default: 127.0.0.1:8080.
    #[arg(long, env = "PIPEPROOF_BIND")]
    bind: Option<String>,
    /// The web app's files. Default: `web/dist` when it exists, else `web` beside the
    /// executable.
    #[arg(long, env = "PIPEPROOF_STATIC_DIR")]
    static_dir: Option<PathBuf>,
    /// The largest step body accepted, in bytes (suffixes K, M, G, KiB, MiB, GiB).
    /// Default: 4GiB.
    #[arg(long, env = "PIPEPROOF_MAX_BODY")]
    max_body: Option<String>,
    /// How much disk the bundles of ended runs, kept once exported, may take (suffixes as
    /// for --max-body; 0 keeps none). Default: 1GiB.
    #[arg(long, env = "PIPEPROOF_EXPORT_CACHE")]
    export_cache: Option<String>,
    /// A TOML file with any of: data_dir, bind, static_dir, max_body, export_cache,
    /// log_format, workers, fail_idle_after, retain.
    #[arg(long, env = "PIPEPROOF_CONFIG")]
    config: Option<PathBuf>,
    /// Log lines as `text` or `json` (filter with PIPEPROOF_LOG or RUST_LOG).
    #[arg(long, env = "PIPEPROOF_LOG_FORMAT")]
    log_format: Option<String>,
    /// HTTP worker threads. Default: the number of cores.
    #[arg(long, env = "PIPEPROOF_WORKERS")]
    workers: Option<usize>,
    /// Fail an open run that no step has reached for this long (90m, 12h, 2d...), which
    /// drops the copy of its last step's data kept to diff the next step against.
    /// Default: never.
    #[arg(long, env = "PIPEPROOF_FAIL_IDLE_AFTER", value_name = "DURATION")]
    fail_idle_after: Option<String>,
    /// Redact an ended run's diff details and kept data this long after it ended (30d,
    /// 26w...): what proves the run stays. Default: never.
    #[arg(long, env = "PIPEPROOF_RETAIN", value_name = "DURATION")]
    retain: Option<String>,
    /// Load a demo run when the store has none.
    #[arg(long)]
    demo: bool,
}

/// The optional configuration file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    bind: Option<String>,
    static_dir: Option<PathBuf>,
    max_body: Option<toml::Value>,
    export_cache: Option<toml::Value>,
    log_format: Option<String>,
    workers: Option<usize>,
    fail_idle_after: Option<String>,
    retain: Option<String>,
}

/// Settings after merging flags, environment, file and defaults.
pub struct Settings {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The listen address.
    pub bind: String,
    /// The web app's files, if found.
    pub static_dir: Option<PathBuf>,
    /// The body limit in bytes.
    pub max_body: u64,
    /// The size of the kept exports, in bytes.
    pub export_cache: u64,
    /// `text` or `json`.
    pub log_format: String,
    /// Worker threads.
    pub workers: Option<usize>,
    /// What the server does on its own.
    pub housekeeping: Policy,
}

/// Parses `4GiB`, `512M`, `1000`.
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .with_context(|| format!("`{s}` is not a size: write bytes, or e.g. 512MiB, 4GiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => bail!("unknown size unit `{other}` in `{s}`: use K, M, G, KiB, MiB or GiB"),
    };
    n.checked_mul(mult)
        .with_context(|| format!("`{s}` is too large"))
}

/// A duration setting from its flag (or environment variable), else the config file.
fn duration(flag: &Option<String>, file: Option<String>, name: &str) -> Result<Option<Duration>> {
    flag.clone()
        .or(file)
        .map(|s| parse_duration(&s).with_context(|| format!("the {name} setting")))
        .transpose()
}

fn default_static_dir() -> Option<PathBuf> {
    let dist = PathBuf::from("web/dist");
    if dist.join("index.html").exists() {
        return Some(dist);
    }
    let beside = std::env::current_exe().ok()?.parent()?.join("web");
    beside.join("index.html").exists().then_some(beside)
}

impl Args {
    /// Merges the sources of settings.
    pub fn settings(&self) -> Result<Settings> {
        let file: FileConfig = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("the config file {} is not valid", path.display()))?
            }
            None => FileConfig::default(),
        };
        let size = |flag: &Option<String>, file: &Option<toml::Value>, name: &str, default| {
            Ok::<u64, anyhow::Error>(match (flag, file) {
                (Some(s), _) => parse_size(s)?,
                (None, Some(toml::Value::Integer(n))) if *n >= 0 => *n as u64,
                (None, Some(toml::Value::String(s))) => parse_size(s)?,
                (None, Some(v)) => bail!("{name} in the config file must be a size, got {v}"),
                (None, None) => default,
            })
        };
        let max_body = size(&self.max_body, &file.max_body, "max_body", 4 << 30)?;
        if max_body == 0 {
            bail!("max_body cannot be 0: no step could be posted");
        }
        let export_cache = size(
            &self.export_cache,
            &file.export_cache,
            "export_cache",
            crate::store::exports::DEFAULT_CACHE,
        )?;
        let log_format = self
            .log_format
            .clone()
            .or(file.log_format)
            .unwrap_or_else(|| "text".into());
        if log_format != "text" && log_format != "json" {
            bail!("log format `{log_format}` is unknown: use text or json");
        }
        Ok(Settings {
            data_dir: self
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(".data")),
            bind: self
                .bind
                .clone()
                .or(file.bind)
                .unwrap_or_else(|| "127.0.0.1:8080".into()),
            static_dir: self
                .static_dir
                .clone()
                .or(file.static_dir)
                .or_else(default_static_dir),
            max_body,
            export_cache,
            log_format,
            workers: self.workers.or(file.workers),
            housekeeping: Policy {
                fail_idle_after: duration(
                    &self.fail_idle_after,
                    file.fail_idle_after,
                    "fail_idle_after",
                )?,
                retain: duration(&self.retain, file.retain, "retain")?,
            },
        })
    }
}

fn init_logs(format: &str) {
    let filter = std::env::var("PIPEPROOF_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs the server until it is stopped (SIGINT/SIGTERM finish in-flight requests first).
pub fn run(args: Args) -> Result<ExitCode> {
    let s = args.settings()?;
    init_logs(&s.log_format);
    if let Some(dir) = &s.static_dir
        && !dir.join("index.html").exists()
    {
        bail!(
            "the static directory {} has no index.html; build the web app or fix --static-dir",
            dir.display()
        );
    }
    // Held until the process ends; taken before the store is opened (and migrated).
    let _lock = crate::store::lock_for_serving(
        &s.data_dir,
        "stop it, or give this one another --data-dir",
    )?;
    let mut store = Store::open_serving(&s.data_dir, &_lock)?;
    store.exports.set_cache(s.export_cache);
    let store = Arc::new(store);
    store.recover()?;
    let admin = std::env::var("PIPEPROOF_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty());
    let new_admin = store
        .ensure_admin_token(admin.as_deref())
        .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    if args.demo {
        crate::demo::load_if_empty(&store)?;
    }
    tracing::info!(policy = %s.housekeeping.describe(), "housekeeping");
    let metrics = Arc::new(crate::http::metrics::Metrics::default());
    let housekept = Arc::clone(&metrics);
    housekeeping::spawn(Arc::clone(&store), s.housekeeping, move |done| {
        let at = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        housekept.housekept(done, at)
    })
    .context("cannot start the housekeeping thread")?;
    let state = web::Data::new(AppState {
        store: Arc::clone(&store),
        max_body: s.max_body,
        static_dir: s.static_dir.clone(),
        metrics,
    });
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(middleware::from_fn(crate::http::cache_policy))
            .wrap(middleware::Logger::new("%r %s %b %Dms"))
            .configure(configure(state.clone()))
    })
    .shutdown_timeout(60);
    if let Some(w) = s.workers {
        server = server.workers(w.max(1));
    }
    let server = server
        .bind(&s.bind)
        .with_context(|| format!("cannot listen on {}; choose another --bind", s.bind))?;
    let addrs: Vec<SocketAddr> = server.addrs();
    for a in &addrs {
        println!("pipeproof listening on http://{a}/");
    }
    if s.static_dir.is_none() {
        println!("{}", crate::http::NO_WEB_APP);
    }
    if let Some(token) = new_admin {
        println!("admin token: {token}");
        println!("(shown once: keep it; make more with `pipeproof token create`)");
    }
    print_where(&store, s.static_dir.as_deref());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    actix_web::rt::System::new()
        .block_on(server.run())
        .context("the server stopped with an error")?;
    Ok(ExitCode::SUCCESS)
}

fn print_where(store: &Store, static_dir: Option<&Path>) {
    tracing::info!(
        data_dir = %store.dir().display(),
        static_dir = %static_dir.map(|d| d.display().to_string()).unwrap_or_else(|| "(none)".into()),
        public_key = %store.key().public_hex(),
        "store opened"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: Args,
    }

    fn settings(args: &[&str]) -> Result<Settings> {
        use clap::Parser;
        let mut argv = vec!["serve"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)?.serve.settings()
    }

    #[test]
    fn flags_win_over_the_config_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pipeproof.toml");
        std::fs::write(
            &file,
            "bind = \"127.0.0.1:9999\"\nmax_body = \"1MiB\"\ndata_dir = \"/srv/pp\"\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let s = settings(&["--config", f, "--bind", "127.0.0.1:7777"]).unwrap();
        assert_eq!(s.bind, "127.0.0.1:7777");
        assert_eq!(s.max_body, 1 << 20);
        assert_eq!(s.data_dir, PathBuf::from("/srv/pp"));
        assert_eq!(s.log_format, "text");
        std::fs::write(&file, "max_body = 1000\nlog_format = \"json\"\n").unwrap();
        let s = settings(&["--config", f]).unwrap();
        assert_eq!((s.max_body, s.log_format.as_str()), (1000, "json"));
        std::fs::write(&file, "bnid = \"typo\"\n").unwrap();
        let e = format!("{:#}", settings(&["--config", f]).err().unwrap());
        assert!(e.contains("bnid"), "{e}");
        assert!(settings(&["--log-format", "xml"]).is_err());
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512_000_000);
        assert_eq!(parse_size("2 kib").unwrap(), 2048);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }
}
