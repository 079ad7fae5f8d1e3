//! The `pipeproof` binary: the command line, and (with `serve`) the HTTP server.
//!
//! Exit codes follow diff(1): 0 when the inputs are the same, 1 when they differ, 2 on error.

mod cli;
mod client;
mod demo;
mod error;
mod http;
mod source;
mod store;
mod style;

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}: {e:#}", style::error("error"));
            ExitCode::from(2)
        }
    }
}
