//! The `pipeproof` binary: the command line, and (with `serve`) the HTTP server.
//!
//! Exit codes follow diff(1): 0 when the inputs are the same, 1 when they differ, 2 on error.

mod cli;
mod client;
mod demo;
mod error;
mod file_at;
mod http;
mod source;
mod store;
mod style;

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A decoder's panic on malformed input is turned into an error that says so; the
    // default hook would print it as a crash first.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !pipeproof_core::decode::panic_is_an_error() {
            report(info);
        }
    }));
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}: {e:#}", style::error("error"));
            ExitCode::from(2)
        }
    }
}
