//! What a panic says: its message, and where it was raised (a source path without the build
//! machine's directories). Built for the browser, a panic aborts: the worker's hook sends both
//! to the page before its module traps, and the page's own hook shows them in its banner.

use std::panic::PanicHookInfo;

/// The message the panic was raised with.
pub fn message(info: &PanicHookInfo<'_>) -> String {
    pipeproof_core::error::panic_message(info.payload())
}

/// Where it was raised, as ` (file:line)`; empty when that is not known.
pub fn place(info: &PanicHookInfo<'_>) -> String {
    info.location()
        .map(|l| format!(" ({}:{})", crate_path(l.file()), l.line()))
        .unwrap_or_default()
}

/// A source path from a dependency without the build machine's registry directory:
/// `arrow-buffer-60.1.0/src/buffer/immutable.rs`.
fn crate_path(file: &str) -> &str {
    match file.split_once("/registry/src/") {
        Some((_, rest)) => rest.split_once('/').map_or(rest, |(_, path)| path),
        None => file,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dependency_path_loses_the_registry_directory() {
        let file = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/\
                    arrow-buffer-60.1.0/src/buffer/immutable.rs";
        assert_eq!(
            crate_path(file),
            "arrow-buffer-60.1.0/src/buffer/immutable.rs"
        );
        assert_eq!(crate_path("core/src/decode.rs"), "core/src/decode.rs");
    }
}
