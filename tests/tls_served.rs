//! TLS served by the services themselves: ws-gateway and agent-bridge with
//! `TLS_CERT_FILE` / `TLS_KEY_FILE` (a test CA's certificate, in a private
//! 0700 folder as for root on CI). Python's `websockets` and `urllib`,
//! trusting only that CA, get board frames and send a command over
//! `wss://`, read both SSE streams over `https://`, and chat over `wss://`
//! with the bridge. Plain HTTP on those ports gets no answer, and a client
//! that never shakes hands is closed.
//!
//! Needs openssl and python3 with venv (`apt-get install openssl python3-venv`).

#[path = "proxy/tls_client.rs"]
mod tls_client;

use std::os::unix::fs::PermissionsExt;

use service_kit::tls::TlsConfig;
use tls_client::{Services, assert_board_path, run_client, test_cert};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_and_the_bridge_serve_wss_and_https_themselves() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let cert = test_cert(dir.path());
    let tls = TlsConfig {
        cert_file: Some(cert.cert.clone()),
        key_file: Some(cert.key.clone()),
    };

    let services = Services::start(
        |gateway| {
            gateway.tls = tls.clone();
            // A client that never starts its TLS handshake is closed this soon.
            gateway.header_timeout_ms = 500;
        },
        |bridge| bridge.tls = tls.clone(),
    )
    .await;
    let (gateway_addr, bridge_addr) = (services.gateway, services.bridge);

    let seen = run_client(
        &format!("https://127.0.0.1:{}", gateway_addr.port()),
        &services.board_id,
        &cert.ca,
        Some(&format!("https://127.0.0.1:{}", bridge_addr.port())),
    )
    .await;
    assert_board_path(&seen);
    assert_eq!(seen["chat_session"], "tls-chat", "{seen}");
    assert_eq!(seen["chat_final"], "message", "{seen}");

    // Silent after connecting: no handshake, and the connection is closed.
    let mut silent = tokio::net::TcpStream::connect(gateway_addr).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::io::AsyncReadExt::read(&mut silent, &mut buf),
    )
    .await
    .expect("a silent connection is closed, not kept");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    for addr in [gateway_addr, bridge_addr] {
        let plain = reqwest::Client::new()
            .get(format!("http://{addr}/health"))
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await;
        assert!(
            plain.is_err(),
            "plain HTTP answered on the TLS port {addr}: {plain:?}"
        );
    }
}
