//! The real AG-UI servers of `tests/agui/server.py` (pydantic-ai) and
//! `tests/langgraph/server.py` (ag-ui-langgraph), each run in its own venv.

use std::{path::PathBuf, process::Stdio, time::Duration};

use tokio::process::Child;

use super::closed_port;

/// A real AG-UI server on a free port; killed when dropped.
pub struct AgUiServer {
    child: Child,
    /// The run endpoint, `POST /`.
    pub url: String,
}

impl AgUiServer {
    /// The pydantic-ai server of `tests/agui`.
    pub async fn start() -> Self {
        Self::start_in("tests/agui").await
    }

    /// The LangGraph server of `tests/langgraph`, which also answers
    /// `GET /received` and `GET /state/{thread_id}`.
    pub async fn start_langgraph() -> Self {
        Self::start_in("tests/langgraph").await
    }

    /// Runs `dir/server.py --port N` in the venv of `dir/requirements.txt`
    /// and waits until its `GET /health` answers.
    async fn start_in(dir: &'static str) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(dir)
            .join("server.py");
        let port = closed_port().port();
        let python = tokio::task::spawn_blocking(move || super::python_env::python_for(dir))
            .await
            .expect("set up the Python venv");
        let mut child = tokio::process::Command::new(python)
            .arg(&script)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {dir}/server.py: {e}"));
        let url = format!("http://127.0.0.1:{port}/");
        let health = format!("{url}health");
        let client = reqwest::Client::new();
        // Importing LangGraph takes seconds on a busy machine.
        for _ in 0..600 {
            if client
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Self { child, url };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{dir}/server.py exited with {status} (its stderr is above)");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{dir}/server.py did not come up on port {port}");
    }

    /// `GET path` on the server, as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let url = format!("{}{}", self.url, path.trim_start_matches('/'));
        reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .error_for_status()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
