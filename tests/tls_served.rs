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

use service_kit::{test_database::TestDatabase, testing::RunningService, tls::TlsConfig};
use tls_client::{assert_board_path, run_client, test_cert};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_and_the_bridge_serve_wss_and_https_themselves() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let cert = test_cert(dir.path());
    let tls = TlsConfig {
        cert_file: Some(cert.cert.clone()),
        key_file: Some(cert.key.clone()),
    };

    let db = TestDatabase::create().await;
    let board_app = board_service::App::build(board_service::Config::new(db.url()))
        .await
        .expect("board-service starts");
    let board_addr = board_app.local_addr();
    let _board = RunningService::spawn(board_addr, |stopped| board_app.run_until_stopped(stopped));

    let mut gateway_config = ws_gateway::Config::new(format!("http://{board_addr}"));
    gateway_config.tls = tls.clone();
    // A client that never starts its TLS handshake is closed this soon.
    gateway_config.header_timeout_ms = 500;
    let gateway_app = ws_gateway::App::build(gateway_config)
        .await
        .expect("gateway starts");
    let gateway_addr = gateway_app.local_addr();
    let _gateway = RunningService::spawn(gateway_addr, |stopped| {
        gateway_app.run_until_stopped(stopped)
    });

    let mut bridge_config = agent_bridge::Config::new(db.url());
    bridge_config.listen_addr = "127.0.0.1:0".parse().unwrap();
    bridge_config.board_service_url = format!("http://{board_addr}");
    bridge_config.builtin_token_delay = std::time::Duration::ZERO;
    bridge_config.tls = tls;
    let bridge_app = agent_bridge::App::build(bridge_config)
        .await
        .expect("agent-bridge starts");
    let bridge_addr = bridge_app.local_addr();
    let _bridge =
        RunningService::spawn(bridge_addr, |stopped| bridge_app.run_until_stopped(stopped));

    let mut api = protocol::v1::board_service_client::BoardServiceClient::connect(format!(
        "http://{board_addr}"
    ))
    .await
    .expect("gRPC");
    let board = api
        .create_board(protocol::v1::CreateBoardRequest {
            name: "Served over TLS".into(),
            slug: Some("served-over-tls".into()),
            ..Default::default()
        })
        .await
        .expect("create board")
        .into_inner();

    let seen = run_client(
        &format!("https://127.0.0.1:{}", gateway_addr.port()),
        &board.id,
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
