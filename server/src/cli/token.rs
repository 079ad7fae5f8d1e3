//! `pipeproof token create`: makes an API token directly in the store (the server may be
//! running) and prints its secret once.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use pipeproof_core::api::Scope;

use crate::store::Store;

/// Manage API tokens.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: TokenCommand,
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
        /// The server's data directory. Default: `.data` in the current directory.
        #[arg(long, env = "PIPEPROOF_DATA_DIR", default_value = ".data")]
        data_dir: PathBuf,
    },
}

/// Runs `pipeproof token ...`.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        TokenCommand::Create {
            scopes,
            name,
            data_dir,
        } => {
            let mut parsed = Vec::new();
            for s in scopes.iter().flat_map(|s| s.split(',')) {
                match Scope::parse(s.trim()) {
                    Some(scope) => parsed.push(scope),
                    None => bail!("unknown scope `{s}`: use ingest, read or admin"),
                }
            }
            if !data_dir.join(crate::store::DB_FILE).exists() {
                bail!(
                    "{} holds no pipeproof store; pass the server's --data-dir",
                    data_dir.display()
                );
            }
            let store = Store::open(&data_dir)?;
            let token = store
                .create_token(&name, &parsed)
                .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
            println!("{}", token.token.unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
    }
}
