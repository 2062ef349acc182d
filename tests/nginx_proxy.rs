//! `deploy/nginx/boardwire.conf`, run by Debian's nginx with a self-signed
//! certificate in front of a real gateway, bridge and board-service: a `wss://`
//! client gets board frames and sends a command, and SSE clients (a board's
//! `/events`, seed 001's `/api/events`) get events unbuffered, and a chat
//! over `wss://` reaches the bridge. Everything
//! lives in a private (0700) folder, as it does for root on CI.
//!
//! Needs nginx, openssl and python3 with venv (`apt-get install nginx
//! openssl python3-venv`).

#[path = "proxy/tls_client.rs"]
mod tls_client;

use std::{os::unix::fs::PermissionsExt, path::Path, process::Command, time::Duration};

use tls_client::{Services, assert_board_path, repo, run_client, test_cert};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs nginx in the foreground until dropped.
struct Nginx(std::process::Child);

impl Drop for Nginx {
    /// SIGTERM, not SIGKILL: the master then stops its workers, which
    /// would otherwise outlive it holding the test's stdout open.
    fn drop(&mut self) {
        let stopped = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nginx_config_carries_wss_and_sse() {
    let nginx_bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nginx is required for the reverse-proxy test (apt-get install nginx)");
    let _ = service_kit::telemetry::init("nginx-proxy-test");
    let services = Services::start(|_| {}, |_| {}).await;
    let (gateway_addr, bridge_addr) = (services.gateway, services.bridge);

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let tls = test_cert(dir.path());
    let (cert, key) = (&tls.cert, &tls.key);
    let port = free_port();
    let shipped = std::fs::read_to_string(repo().join("deploy/nginx/boardwire.conf")).unwrap();
    // The shipped file, pointed at this test's services, port and files;
    // workers run as root so they can enter the private folder.
    let config = format!("user root;\npid {}/nginx.pid;\nerror_log stderr;\n", dir.path().display())
        + &shipped
            .replace("server 127.0.0.1:4002", &format!("server {gateway_addr}"))
            .replace("server 127.0.0.1:8001", &format!("server {bridge_addr}"))
            .replace("listen 443 ssl", &format!("listen 127.0.0.1:{port} ssl"))
            .replace("/etc/boardwire/tls/cert.pem", &cert.display().to_string())
            .replace("/etc/boardwire/tls/key.pem", &key.display().to_string())
            .replace(
                "http {",
                &format!(
                    "http {{\n    access_log off;\n    client_body_temp_path {0}/body;\n    proxy_temp_path {0}/proxy;\n    fastcgi_temp_path {0}/fastcgi;\n    uwsgi_temp_path {0}/uwsgi;\n    scgi_temp_path {0}/scgi;",
                    dir.path().display()
                ),
            );
    assert!(
        config.contains(&gateway_addr.to_string()),
        "the upstream was replaced"
    );
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, config).unwrap();
    // The routes both shipped files include, beside them as shipped.
    std::fs::copy(
        repo().join("deploy/nginx/locations.conf"),
        dir.path().join("locations.conf"),
    )
    .unwrap();
    check_scale_config(nginx_bin, dir.path(), [gateway_addr, bridge_addr]);
    check_config(nginx_bin, dir.path(), &conf);
    let _nginx = Nginx(
        Command::new(nginx_bin)
            .args(["-g", "daemon off;", "-p"])
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .spawn()
            .expect("nginx starts"),
    );
    // nginx listens within moments; wait for the port rather than sleep blindly.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(std::time::Instant::now() < deadline, "nginx did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let base = format!("https://127.0.0.1:{port}");
    // The chat goes through the same nginx: /ws/chat reaches the bridge.
    let seen = run_client(&base, &services.board_id, &tls.ca, Some(&base)).await;
    assert_board_path(&seen);
    assert_eq!(seen["chat_session"], "tls-chat", "{seen}");
    assert_eq!(seen["chat_final"], "message", "{seen}");
}

/// compose's `scale` profile config passes `nginx -t`, with its service
/// names pointed at this test's gateway and bridge (nginx resolves upstream
/// names when it loads the file).
fn check_scale_config(nginx_bin: &str, dir: &Path, [gateway, bridge]: [std::net::SocketAddr; 2]) {
    let shipped = std::fs::read_to_string(repo().join("deploy/nginx/scale.conf")).unwrap();
    for name in [
        "ws-gateway:4002",
        "ws-gateway-2:4002",
        "agent-bridge:8001",
        "agent-bridge-2:8001",
    ] {
        assert!(
            shipped.contains(&format!("server {name};")),
            "scale.conf names {name}"
        );
    }
    let config = format!(
        "user root;\npid {}/scale.pid;\nerror_log stderr;\n",
        dir.display()
    ) + &shipped
        .replace("ws-gateway-2:4002", &gateway.to_string())
        .replace("ws-gateway:4002", &gateway.to_string())
        .replace("agent-bridge-2:8001", &bridge.to_string())
        .replace("agent-bridge:8001", &bridge.to_string())
        .replace("listen 80;", &format!("listen 127.0.0.1:{};", free_port()));
    let conf = dir.join("scale.conf");
    std::fs::write(&conf, config).unwrap();
    check_config(nginx_bin, dir, &conf);
}

/// `nginx -t` on `conf`, with `prefix` as nginx's prefix directory.
fn check_config(nginx_bin: &str, prefix: &Path, conf: &Path) {
    let checked = Command::new(nginx_bin)
        .args(["-t", "-p"])
        .arg(prefix)
        .arg("-c")
        .arg(conf)
        .output()
        .expect("nginx -t");
    assert!(
        checked.status.success(),
        "nginx -t {}: {}",
        conf.display(),
        String::from_utf8_lossy(&checked.stderr)
    );
}
