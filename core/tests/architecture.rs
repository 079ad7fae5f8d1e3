//! Architecture invariant: core's dependency tree has no network, database, file-watching or
//! async-runtime crate (docs/ARCHITECTURE.md).
#![cfg(not(target_arch = "wasm32"))]

#[test]
fn core_depends_on_no_io_or_async_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "-p",
            "pipeproof-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let forbidden = [
        "tokio",
        "async-std",
        "smol",
        "mio",
        "actix",
        "hyper",
        "reqwest",
        "ureq",
        "socket2",
        "rusqlite",
        "libsqlite3-sys",
        "notify",
        "futures-executor",
    ];
    let found: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| {
            forbidden
                .iter()
                .any(|f| name == f || name.starts_with(&format!("{f}-")))
        })
        .collect();
    assert!(found.is_empty(), "core depends on {found:?}");
    assert!(
        tree.lines().any(|l| l.starts_with("blake3 ")),
        "cargo tree output looks wrong:\n{tree}"
    );
}
