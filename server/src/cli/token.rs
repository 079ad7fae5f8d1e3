//! `pipeproof token create|list|revoke`: manages API tokens directly in the store (the
//! server may be running; a revoked token is refused from its next request on).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use pipeproof_core::api::{Scope, Token};

use super::Output;
use crate::outln;
use crate::store::Store;
use crate::style::{dim, removed};

/// Manage API tokens.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: TokenCommand,
}

/// The server's data directory, shared by the subcommands.
#[derive(clap::Args)]
struct DataDir {
    /// The server's data directory. Default: `.data` in the current directory.
    #[arg(long, env = "PIPEPROOF_DATA_DIR", default_value = ".data")]
    data_dir: PathBuf,
}

#[derive(clap::Subcommand)]
enum TokenCommand {
    /// Make a token and print its secret (shown once; the store keeps only a hash).
    Create {
        /// What the token may do: ingest, read or admin (repeat for several).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// A name to recognise the token by.
        #[arg(long, default_value = "cli")]
        name: String,
        #[command(flatten)]
        store: DataDir,
    },
    /// List the tokens: id, name, scopes, when made and when revoked (never a secret).
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        format: Output,
        #[command(flatten)]
        store: DataDir,
    },
    /// Revoke a token by its id (see `token list`): it is refused from its next request on,
    /// and cannot be made valid again.
    Revoke {
        /// The token's id (not its secret).
        id: String,
        #[command(flatten)]
        store: DataDir,
    },
}

/// Runs `pipeproof token ...`.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        TokenCommand::Create {
            scopes,
            name,
            store,
        } => {
            let mut parsed = Vec::new();
            for s in scopes.iter().flat_map(|s| s.split(',')) {
                match Scope::parse(s.trim()) {
                    Some(scope) => parsed.push(scope),
                    None => bail!("unknown scope `{s}`: use ingest, read or admin"),
                }
            }
            let token = open(&store.data_dir)?
                .create_token(&name, &parsed)
                .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
            println!("{}", token.token.unwrap_or_default());
        }
        TokenCommand::List { format, store } => {
            let tokens = open(&store.data_dir)?
                .tokens()
                .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
            match format {
                Output::Json => {
                    crate::style::emit(&(serde_json::to_string_pretty(&tokens)? + "\n"))?
                }
                Output::Table => crate::style::emit(&table(&tokens))?,
            }
        }
        TokenCommand::Revoke { id, store } => {
            let (token, revoked) = open(&store.data_dir)?
                .revoke_token(&id)
                .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
            let at = token.revoked_at.as_deref().unwrap_or_default();
            if revoked {
                println!("revoked token `{}` ({}) at {at}", token.name, token.id);
            } else {
                println!(
                    "token `{}` ({}) was already revoked at {at}",
                    token.name, token.id
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The store in `data_dir`, which must hold one: a mistyped directory is not made a store.
fn open(data_dir: &Path) -> Result<Store> {
    if !data_dir.join(crate::store::DB_FILE).exists() {
        bail!(
            "{} holds no pipeproof store; pass the server's --data-dir",
            data_dir.display()
        );
    }
    Store::open(data_dir)
}

/// The tokens as an aligned table, revoked ones marked.
fn table(tokens: &[Token]) -> String {
    let mut out = String::new();
    if tokens.is_empty() {
        outln!(out, "no tokens");
        return out;
    }
    let scopes = |t: &Token| {
        let s: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
        s.join(",")
    };
    let id_w = tokens.iter().map(|t| t.id.len()).max().unwrap_or(0).max(2);
    let name_w = tokens
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let scope_w = tokens
        .iter()
        .map(|t| scopes(t).len())
        .max()
        .unwrap_or(0)
        .max(6);
    let at_w = tokens
        .iter()
        .map(|t| t.created_at.len())
        .max()
        .unwrap_or(0)
        .max(7);
    outln!(
        out,
        "{}",
        dim(&format!(
            "{:id_w$}  {:name_w$}  {:scope_w$}  {:at_w$}  revoked",
            "id", "name", "scopes", "created"
        ))
    );
    for t in tokens {
        let revoked = match &t.revoked_at {
            Some(at) => removed(at),
            None => "-".to_string(),
        };
        outln!(
            out,
            "{:id_w$}  {:name_w$}  {:scope_w$}  {:at_w$}  {revoked}",
            t.id,
            t.name,
            scopes(t),
            t.created_at,
        );
    }
    out
}
