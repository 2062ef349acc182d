//! The shared HTTP server against real TCP clients: a half-sent request is
//! closed after the header timeout, a full one is served, and connections
//! still sending headers are capped.

use std::time::Duration;

use axum::{Router, routing::get};
use service_kit::http_server::{ServeLimits, serve};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

async fn start(limits: ServeLimits) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().route("/", get(|| async { "hello" }));
    tokio::spawn(serve(
        listener,
        router,
        limits,
        None,
        std::future::pending(),
    ));
    addr
}

/// Reads until the server closes; `None` if it is still open after `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    tokio::time::timeout(wait, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| seen)
}

#[tokio::test]
async fn half_sent_requests_are_closed_and_whole_ones_served() {
    let addr = start(ServeLimits {
        header_timeout: Duration::from_millis(300),
        max_pending: 16,
    })
    .await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_secs(5))
            .await
            .is_some(),
        "slowloris held"
    );
    assert!(
        closed_within(&mut silent, Duration::from_secs(5))
            .await
            .is_some(),
        "silent held"
    );

    let mut good = TcpStream::connect(addr).await.unwrap();
    good.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_within(&mut good, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&answer).ends_with("hello"));
}

#[tokio::test]
async fn connections_past_the_pending_cap_are_dropped() {
    let addr = start(ServeLimits {
        header_timeout: Duration::from_secs(30),
        max_pending: 2,
    })
    .await;
    let _a = TcpStream::connect(addr).await.unwrap();
    let _b = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut third, Duration::from_secs(5))
            .await
            .is_some(),
        "a third pending connection was kept"
    );
}
