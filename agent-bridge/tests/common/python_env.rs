//! The Python the AG-UI peers run on: one virtualenv under `target/` per
//! requirements folder (`tests/agui`, `tests/langgraph`), holding its pinned
//! `requirements.txt`, made on first use, so `cargo test --workspace` needs
//! no pip step first.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

/// The venv's `python` for `tests/agui` (the pydantic-ai peer).
pub fn python() -> PathBuf {
    python_for("tests/agui")
}

/// The `python` of a venv holding `dir/requirements.txt` (`dir` relative to
/// the crate), creating the venv if needed. Panics with one line that says
/// what to install when python3 or its venv module is missing.
pub fn python_for(dir: &str) -> PathBuf {
    static MADE: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    // A panic while making a venv poisons the lock; the next test then
    // tries again and panics with the same one-line reason, not PoisonError.
    let mut made = MADE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, python)) = made.iter().find(|(made_for, _)| made_for == dir) {
        return python.clone();
    }
    let python = make_venv(dir);
    made.push((dir.to_owned(), python.clone()));
    python
}

fn make_venv(dir: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let requirements = manifest.join(dir).join("requirements.txt");
    let pinned =
        std::fs::read(&requirements).unwrap_or_else(|e| panic!("read {dir}/requirements.txt: {e}"));
    let name = Path::new(dir)
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a requirements folder name");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target"));
    // Named by the requirements' hash: a changed pin makes a fresh venv.
    let venv = target.join(format!("{name}-venv-{:016x}", fnv1a(&pinned)));
    let python = venv.join("bin/python");
    if venv.join(".complete").exists() {
        return python;
    }
    // Several test binaries may race here: each builds its own and the
    // first rename wins.
    let building = target.join(format!("{name}-venv-building-{}", std::process::id()));
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
            "pip could not install {dir}/requirements.txt: {}",
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
