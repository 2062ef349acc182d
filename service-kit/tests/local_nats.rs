//! The private nats-server: JetStream on, a private store, a restart on the
//! same port, and nothing left behind.

use std::{
    io::{BufRead, BufReader},
    net::TcpStream,
    os::unix::fs::PermissionsExt,
    time::Duration,
};

use service_kit::local_nats::LocalNats;

/// The server's `INFO` line on `port`.
fn info(port: u16) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to nats-server");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("read INFO");
    line
}

#[test]
fn a_private_server_has_jetstream_a_private_store_and_restarts_on_its_port() {
    let server = LocalNats::start_throwaway().unwrap_or_else(|e| panic!("{e}"));
    let (port, dir) = (server.port(), server.dir().to_owned());
    assert_eq!(server.url(), format!("nats://127.0.0.1:{port}"));
    let line = info(port);
    assert!(line.starts_with("INFO "), "{line}");
    assert!(
        line.contains(r#""jetstream":true"#),
        "JetStream is on: {line}"
    );
    let mode = std::fs::metadata(&dir)
        .expect("store dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the store is private");
    assert!(dir.join("jetstream").is_dir());

    let stopped = server.stop();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "a stopped server has closed its port"
    );
    assert!(dir.exists(), "a stopped server keeps its store");

    let server = stopped.start().unwrap_or_else(|e| panic!("restart: {e}"));
    assert_eq!(server.port(), port);
    assert!(info(port).contains(r#""jetstream":true"#));
    drop(server);
    assert!(!dir.exists(), "a throwaway server's folder is removed");
}

#[test]
fn url_prefers_nats_url_else_starts_one_server_per_process() {
    let url = service_kit::local_nats::url();
    assert_eq!(
        service_kit::local_nats::url(),
        url,
        "one server per process"
    );
    if std::env::var("NATS_URL").is_ok_and(|u| !u.trim().is_empty()) {
        assert_eq!(std::env::var("NATS_URL").ok(), Some(url));
    } else {
        let port: u16 = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the URL");
        assert!(info(port).contains(r#""jetstream":true"#));
    }
}
