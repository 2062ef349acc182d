//! The gateway serving `wss://` itself (`TLS_CERT_FILE`, `TLS_KEY_FILE`):
//! over TLS every frame is written by the connection task through rustls,
//! not by the outbox's direct `writev`, so the same guarantees are checked
//! on that path: board frames in version order without gaps through a
//! burst, an oversized client frame closed with 1009, pings answered, and
//! a client that never starts its handshake closed.

mod common;

use std::{os::unix::fs::PermissionsExt, path::Path, sync::Arc};

use common::{Stack, WAIT, Ws, read_until};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use service_kit::tls::TlsConfig;
use tokio_rustls::rustls::{
    self, ClientConfig, RootCertStore,
    pki_types::{CertificateDer, pem::PemObject},
};
use tokio_tungstenite::{Connector, connect_async_tls_with_config, tungstenite::Message};

/// A client configuration trusting only `cert`.
fn trusting(cert: &Path) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(cert).expect("read the certificate") {
        roots.add(der.expect("a certificate")).expect("a root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

struct TlsStack {
    stack: Stack,
    client: Arc<ClientConfig>,
    _dir: tempfile::TempDir,
}

impl TlsStack {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let cert = service_kit::testing::test_cert(dir.path());
        let tls = TlsConfig {
            cert_file: Some(cert.cert.clone()),
            key_file: Some(cert.key.clone()),
        };
        let stack = Stack::start_with(move |c| {
            c.tls = tls;
            c.max_frame_bytes = 64 * 1024;
            c.header_timeout_ms = 500;
        })
        .await;
        Self {
            stack,
            client: trusting(&cert.ca),
            _dir: dir,
        }
    }

    async fn connect(&self) -> Ws {
        let url = format!("wss://localhost:{}/ws", self.stack.gateway.addr.port());
        let (stream, _) = tokio::time::timeout(
            WAIT,
            connect_async_tls_with_config(
                url,
                None,
                true,
                Some(Connector::Rustls(self.client.clone())),
            ),
        )
        .await
        .expect("connects in time")
        .expect("wss:// connects");
        Ws { stream }
    }
}

#[tokio::test]
async fn board_frames_arrive_in_order_over_tls_through_a_burst() {
    let mut tls = TlsStack::start().await;
    let board = tls.stack.board("tls-burst").await;
    let lane = board.lanes[0].id.clone();
    let mut ws = tls.connect().await;
    ws.next_of("connected").await;
    let sync = ws.subscribe(&board.id).await;
    let start = sync["version"].as_u64().unwrap();
    for n in 0..300 {
        tls.stack
            .task(&board.id, &lane, &format!("burst {n}"))
            .await;
    }
    let frames = read_until(&mut ws, start, start + 300).await;
    assert_eq!(frames.len(), 300);
    assert_eq!(frames[299]["data"]["title"], "burst 299");
    // A command and its ack over the same socket.
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next_of("pong").await["type"], "pong");
    ws.stream
        .send(Message::Ping(b"hi".to_vec().into()))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(WAIT, ws.stream.next()).await {
            Ok(Some(Ok(Message::Pong(payload)))) => {
                assert_eq!(&payload[..], b"hi");
                break;
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("no pong: {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_oversized_frame_over_tls_closes_with_1009() {
    let tls = TlsStack::start().await;
    let mut ws = tls.connect().await;
    ws.next_of("connected").await;
    let big = format!(
        "{{\"type\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(100 * 1024)
    );
    ws.send_raw(Message::text(big)).await;
    assert_eq!(ws.close_code().await, 1009);
}

#[tokio::test]
async fn plain_websockets_and_silent_connections_get_nothing() {
    let tls = TlsStack::start().await;
    let addr = tls.stack.gateway.addr;
    let plain = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws")),
    )
    .await
    .expect("refused in time");
    assert!(plain.is_err(), "a plain ws:// upgrade on the TLS port");
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read(&mut silent, &mut buf))
        .await
        .expect("closed within the header timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}
