//! The presence avatars in headless Chromium: `web/tests/presence.test.mjs`
//! against the real gateway (serving the page) and board-service. Needs
//! Node.js and Chromium (`apt-get install nodejs npm chromium`).

mod common;

use std::{path::PathBuf, process::Command};

use common::Stack;

fn web() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_sees_another_page_s_avatar_come_and_go() {
    let mut stack = Stack::start().await;
    stack.board("who-is-here").await;
    let url = stack.http_url("/");
    let output = tokio::task::spawn_blocking(move || {
        service_kit::testing::ensure_node_packages(&web(), &["playwright-core"]);
        Command::new("node")
            .args(["--test", "--test-reporter=spec"])
            .arg(web().join("tests/presence.test.mjs"))
            .env("BOARDWIRE_WEB_URL", url)
            .env("BOARDWIRE_BOARD", "who-is-here")
            .output()
            .expect("node runs (apt-get install nodejs npm chromium)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("pass 1"),
        "the test ran (not skipped): {stdout}"
    );
}
