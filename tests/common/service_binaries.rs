//! The three service binaries, built by cargo for tests that run them as
//! processes of their own (as compose or a scaled-out deployment would).

use std::path::PathBuf;

/// Builds board-service, ws-gateway and agent-bridge (debug), once per call.
pub fn build() {
    let built = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "-p",
            "board-service",
            "-p",
            "ws-gateway",
            "-p",
            "agent-bridge",
            "--bins",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(built.success(), "the service binaries build");
}

/// The folder cargo puts this workspace's debug binaries in.
pub fn dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("debug")
}
