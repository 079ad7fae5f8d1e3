//! pipeproof-core: canonical fingerprints, diffs and verification, shared by the server, the
//! CLI and the browser.
//!
//! Architecture invariant: core does no I/O (bytes or caller-supplied readers in, values
//! out), has no async runtime, and builds for `wasm32-unknown-unknown`. rayon parallelism is
//! the native-only `parallel` feature; without it the same code runs single-threaded and
//! gives the same results.
pub mod api;
pub mod bundle;
pub mod canon;
pub mod decode;
pub mod diff;
pub mod error;
pub mod fingerprint;
pub mod hash;
mod lanes;
pub mod log;
pub mod lookup;
pub mod merkle;
mod par;
pub mod record;
pub mod sign;
pub mod stats;
pub mod table;

pub use decode::Format;
pub use diff::{Diff, DiffConfig, DiffSummary, diff, diff_known};
pub use error::{Error, Result, Side};
pub use fingerprint::{Fingerprint, Fingerprinted, RowHasher, fingerprint, fingerprint_only};
pub use hash::Hash;
pub use table::{BatchSource, Table};

// The unit tests run natively and, under `cargo test --target wasm32-unknown-unknown`, in a
// browser: every `#[test]` in core is also a `wasm_bindgen_test`.
#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
