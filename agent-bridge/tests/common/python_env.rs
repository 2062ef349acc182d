//! The Python the AG-UI peer runs on: a virtualenv under `target/` with the
//! pinned `tests/agui/requirements.txt`, made on first use, so
//! `cargo test --workspace` needs no pip step first.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

/// The venv's `python`, creating the venv if needed. Panics with one line
/// that says what to install when python3 or its venv module is missing.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(make_venv).clone()
}

fn make_venv() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let requirements = manifest.join("tests/agui/requirements.txt");
    let pinned = std::fs::read(&requirements).expect("read tests/agui/requirements.txt");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target"));
    // Named by the requirements' hash: a changed pin makes a fresh venv.
    let venv = target.join(format!("agui-venv-{:016x}", fnv1a(&pinned)));
    let python = venv.join("bin/python");
    if venv.join(".complete").exists() {
        return python;
    }
    // Several test binaries may race here: each builds its own and the
    // first rename wins.
    let building = target.join(format!("agui-venv-building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&building)
        .output();
    match made {
        Ok(out) if out.status.success() => {}
        _ => panic!(
            "the AG-UI relay tests need python3 with venv: apt-get install python3 python3-venv"
        ),
    }
    let pip = Command::new(building.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements)
        .output()
        .expect("run pip in the new venv");
    if !pip.status.success() {
        panic!(
            "pip could not install tests/agui/requirements.txt: {}",
            String::from_utf8_lossy(&pip.stderr)
                .lines()
                .last()
                .unwrap_or("no output")
        );
    }
    std::fs::write(building.join(".complete"), "").expect("mark the venv complete");
    if std::fs::rename(&building, &venv).is_err() {
        // Another test binary finished first; use its venv.
        let _ = std::fs::remove_dir_all(&building);
    }
    python
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
