//! The build id: a hash of what the app and its verification worker are built from (this
//! crate's and core's sources and manifests, the worker's loader script, the workspace's
//! manifest and lock file, the target and the profile), compiled into both as
//! `PIPEPROOF_BUILD`. trunk names the worker's files without a content hash, so the page loads
//! the worker by URLs carrying this id (a browser that cached another build's worker fetches
//! this one), and the worker refuses a job from a page of another build (see `src/worker.rs`).

use std::fs;
use std::path::{Path, PathBuf};

/// Files and folders (relative to this crate) the worker is built from.
const INPUTS: &[&str] = &[
    "src",
    "Cargo.toml",
    "verify-worker.js",
    "../core/src",
    "../core/Cargo.toml",
    "../Cargo.toml",
    "../Cargo.lock",
];

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut hash = Fnv::default();
    for input in INPUTS {
        println!("cargo:rerun-if-changed={input}");
        for file in files(&here.join(input)) {
            let name = file.strip_prefix(&here).unwrap_or(&file);
            hash.write(name.to_string_lossy().as_bytes());
            hash.write(&[0]);
            let bytes = fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            hash.write(&(bytes.len() as u64).to_le_bytes());
            hash.write(&bytes);
        }
    }
    for var in ["TARGET", "PROFILE", "OPT_LEVEL", "DEBUG"] {
        let value = std::env::var(var).unwrap_or_default();
        hash.write(format!("{var}={value}\0").as_bytes());
    }
    println!("cargo:rustc-env=PIPEPROOF_BUILD={:016x}", hash.0);
}

/// The files under a path (the path itself when it is a file), in name order.
fn files(path: &Path) -> Vec<PathBuf> {
    if !path.is_dir() {
        return vec![path.to_path_buf()];
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    entries.iter().flat_map(|p| files(p)).collect()
}

/// FNV-1a, 64 bits: the same id for the same inputs, whatever the compiler.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}
