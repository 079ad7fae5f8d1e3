//! `pipeproof key rotate`: replaces a stopped server's signing key, the old one handing over
//! to the new one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::outln;

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
        /// The signing key's file is lost for good: make a new key without a hand-over
        /// (no key is left to sign one) and retire the lost one. Verifiers must be told the
        /// new key through a channel of their own; monitors refuse heads it signs until then.
        #[arg(long)]
        lost: bool,
    },
}

/// Runs `pipeproof key ...`.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        KeyCommand::Rotate {
            data_dir,
            lost: true,
        } => {
            let (key, retired) = crate::store::replace_lost_key(&data_dir)?;
            let mut out = String::new();
            outln!(out, "signing key  {key}");
            for k in retired {
                outln!(out, "retired      {k} (lost: it signed no hand-over)");
            }
            outln!(
                out,
                "No hand-over vouches for the new key: give it to everyone who verifies this \
                 server's bundles or monitors its log, through a channel of your own (they \
                 will refuse what it signs until they trust it). If the lost key may have \
                 been stolen, tell them too: bundles it seals still verify against the keys \
                 the server lists, and only the log tells them from the server's. Start the \
                 server again."
            );
            crate::style::emit(&out)?;
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Rotate {
            data_dir,
            lost: false,
        } => {
            let h = crate::store::rotate_key(&data_dir)?;
            let mut out = String::new();
            outln!(out, "signing key  {}", h.to);
            outln!(out, "retired      {} (at {})", h.from, h.at);
            outln!(
                out,
                "The retired key signed the hand-over to the new one, which signed it too \
                 (GET /api/v1/keys lists both). Start the server again to sign with the new \
                 key; anyone who pinned the old public key should fetch the keys again."
            );
            crate::style::emit(&out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
