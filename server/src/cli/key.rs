//! `pipeproof key rotate`: replaces a stopped server's signing key, the old one handing over
//! to the new one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

/// Manage the server's signing key.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(clap::Subcommand)]
enum KeyCommand {
    /// Make a new signing key and retire the current one (the server must be stopped).
    ///
    /// The old key signs a hand-over to the new one, which signs it too; GET /api/v1/keys
    /// lists both, with the hand-over, so that bundles sealed before still verify and the
    /// log's monitors follow the new key. The old secret is deleted.
    Rotate {
        /// The server's data directory. Default: `.data` in the current directory.
        #[arg(long, env = "PIPEPROOF_DATA_DIR", default_value = ".data")]
        data_dir: PathBuf,
    },
}

/// Runs `pipeproof key ...`.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        KeyCommand::Rotate { data_dir } => {
            let h = crate::store::rotate_key(&data_dir)?;
            println!("signing key  {}", h.to);
            println!("retired      {} (at {})", h.from, h.at);
            println!(
                "The retired key signed the hand-over to the new one, which signed it too \
                 (GET /api/v1/keys lists both). Start the server again to sign with the new \
                 key; anyone who pinned the old public key should fetch the keys again."
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
