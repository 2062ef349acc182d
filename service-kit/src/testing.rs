//! Test helpers shared by every crate's tests (feature `test-support`).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Seconds since the Unix epoch, for `exp` and `nbf` claims.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An HS256 token over `claims`, signed with `secret`.
pub fn sign_token(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

/// A token for `sub` that reads `read` and writes `write`, valid ten minutes.
pub fn board_token(secret: &str, sub: &str, read: &[&str], write: &[&str]) -> String {
    sign_token(
        secret,
        &serde_json::json!({"exp": unix_now() + 600, "sub": sub, "read": read, "write": write}),
    )
}

/// `GET url` (a `/metrics` endpoint), read by a real Prometheus text parser.
pub async fn scrape_metrics(url: &str) -> prometheus_parse::Scrape {
    let body = reqwest::get(url)
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a /metrics body");
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))
        .expect("valid Prometheus text format")
}

/// The sum of `name`'s samples whose labels include `labels`; a histogram
/// counts its observations.
pub fn metric_value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            _ => 0.0,
        })
        .sum()
}

/// A test certificate authority and a server certificate it signed for
/// localhost and 127.0.0.1, made by Debian's `openssl` in `dir`.
pub struct TestCert {
    /// The server's certificate (PEM), for `TLS_CERT_FILE`.
    pub cert: std::path::PathBuf,
    /// Its private key (PEM, PKCS#8), for `TLS_KEY_FILE`.
    pub key: std::path::PathBuf,
    /// The authority's certificate: what clients trust.
    pub ca: std::path::PathBuf,
}

/// Makes a [`TestCert`] in `dir`. A leaf signed by a CA rather than one
/// self-signed certificate: rustls (webpki) refuses a CA certificate used
/// as a server's own.
pub fn test_cert(dir: &std::path::Path) -> TestCert {
    let run = |args: &[&str]| {
        let made = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is required (apt-get install openssl)");
        assert!(
            made.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&made.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &[
            "req",
            "-x509",
            "-days",
            "1",
            "-subj",
            "/CN=Boardwire test CA",
        ][..],
        &ec,
        &["-keyout", "ca-key.pem", "-out", "ca.pem"],
    ]
    .concat());
    run(&[
        &["req", "-subj", "/CN=localhost"][..],
        &ec,
        &["-keyout", "key.pem", "-out", "server.csr"],
    ]
    .concat());
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("write the extensions");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "server.ext",
        "-out",
        "cert.pem",
    ]);
    TestCert {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        ca: dir.join("ca.pem"),
    }
}

/// Installs `web`'s pinned npm packages (`npm ci`) unless every one of
/// `packages` is already there; once per test process, so parallel tests
/// do not run npm over each other. Panics with the missing tool named.
pub fn ensure_node_packages(web: &std::path::Path, packages: &[&str]) {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let present = |p: &&str| web.join("node_modules").join(p).exists();
    if packages.iter().all(present) {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(web)
        .status()
        .expect("npm is required for the Node.js peers of the tests (apt-get install nodejs npm)");
    assert!(status.success(), "npm ci --prefix {} failed", web.display());
}

/// What a running service's `run_until_stopped` waits on in tests.
pub type ShutdownSignal = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A service's `run_until_stopped` spawned on the test runtime: stopped
/// gracefully by [`RunningService::stop`] (which insists it ends cleanly
/// within 30 s), and told to stop when dropped. Every crate's test harness
/// runs its services through this one.
pub struct RunningService {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningService {
    /// Spawns `run(shutdown)` for a service bound on `addr`.
    pub fn spawn<F>(addr: std::net::SocketAddr, run: impl FnOnce(ShutdownSignal) -> F) -> Self
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown: ShutdownSignal = Box::pin(async {
            let _ = stopped.await;
        });
        Self {
            addr,
            stop: Some(stop),
            task: Some(tokio::spawn(run(shutdown))),
        }
    }

    /// Graceful stop; waits for it to finish.
    pub async fn stop(mut self) {
        self.stop_in_place().await;
    }

    /// Aborts the service's task with no graceful stop (its spawned tasks
    /// keep running: this is not a crash of the process).
    pub fn abort(&mut self) {
        self.stop = None;
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Like [`RunningService::stop`], leaving the value to be replaced.
    pub async fn stop_in_place(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(std::time::Duration::from_secs(30), task)
                .await
                .expect("the service stops within 30 s")
                .expect("the service task did not panic")
                .expect("the service ran and stopped cleanly");
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
