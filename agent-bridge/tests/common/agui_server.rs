//! The real AG-UI server of `tests/agui/server.py`, run in the test venv.

use std::{path::PathBuf, process::Stdio, time::Duration};

use tokio::process::Child;

use super::closed_port;

/// The real AG-UI server of `tests/agui/server.py` (pydantic-ai), on a free port.
pub struct AgUiServer {
    child: Child,
    pub url: String,
}

impl AgUiServer {
    pub async fn start() -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/agui/server.py");
        let port = closed_port().port();
        let python = tokio::task::spawn_blocking(super::python_env::python)
            .await
            .expect("set up the Python venv");
        let child = tokio::process::Command::new(python)
            .arg(&script)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start tests/agui/server.py");
        let url = format!("http://127.0.0.1:{port}/");
        let health = format!("http://127.0.0.1:{port}/health");
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if client
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Self { child, url };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the AG-UI server did not come up on port {port}");
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
