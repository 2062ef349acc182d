//! docker-compose.yml must match what the services read: every variable it
//! sets is one the service knows, and the ports it publishes and probes are
//! the ones the service listens on. (There is no Docker engine in CI; this
//! and `docker-compose config` are what can be checked without one.)

mod common {
    pub mod compose_file;
}

use std::collections::BTreeSet;

use clap::{CommandFactory, Parser};
use common::compose_file::{Compose, compose};

/// Variables every binary reads through the shared telemetry set-up.
const TELEMETRY_VARS: [&str; 3] = ["RUST_LOG", "LOG_FORMAT", "OTEL_EXPORTER_OTLP_ENDPOINT"];

/// Environment variables a clap command reads.
fn env_vars(command: clap::Command) -> BTreeSet<String> {
    command
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .chain(TELEMETRY_VARS.iter().map(|v| v.to_string()))
        .collect()
}

/// `name` sets only variables in `reads`.
fn assert_reads_only(compose: &Compose, name: &str, reads: &BTreeSet<String>) {
    let service = compose
        .services
        .get(name)
        .unwrap_or_else(|| panic!("compose has no {name}"));
    let unknown: Vec<_> = service
        .environment
        .keys()
        .filter(|k| !reads.contains(*k))
        .collect();
    assert!(unknown.is_empty(), "{name} does not read {unknown:?}");
}

fn check_service(compose: &Compose, name: &str, reads: BTreeSet<String>, addr_var: &str) {
    assert_reads_only(compose, name, &reads);
    let service = &compose.services[name];

    let addr = service
        .environment
        .get(addr_var)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("{name} sets no {addr_var}"));
    let port = addr.rsplit(':').next().expect("port");
    let published: Vec<_> = service
        .ports
        .iter()
        .filter_map(|p| p.rsplit(':').next())
        .collect();
    assert_eq!(published, [port], "{name} publishes the port it listens on");
    let probe = service
        .healthcheck
        .as_ref()
        .map(|h| h.test.join(" "))
        .unwrap_or_default();
    assert!(
        probe.contains(port),
        "{name}'s healthcheck probes port {port}: {probe}"
    );
}

/// ws-gateway's variables, as its binary reads them.
#[derive(Parser)]
struct GatewayEnv {
    #[command(flatten)]
    config: ws_gateway::Config,
}

/// agent-bridge's variables, likewise.
#[derive(Parser)]
struct BridgeEnv {
    #[command(flatten)]
    args: agent_bridge::ConfigArgs,
}

#[test]
fn compose_sets_only_variables_the_services_read_and_publishes_their_ports() {
    let compose = compose();
    check_service(
        &compose,
        "board-service",
        env_vars(board_service::cli::Args::command()),
        "BOARD_SERVICE_ADDR",
    );
    check_service(
        &compose,
        "ws-gateway",
        env_vars(GatewayEnv::command()),
        "WS_GATEWAY_ADDR",
    );
    check_service(
        &compose,
        "agent-bridge",
        env_vars(BridgeEnv::command()),
        "AGENT_BRIDGE_ADDR",
    );

    // Services that call board-service name the port it listens on.
    let board_port = "50051";
    for name in ["ws-gateway", "agent-bridge"] {
        let url = compose.services[name]
            .environment
            .get("BOARD_SERVICE_URL")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        assert_eq!(
            url,
            format!("http://board-service:{board_port}"),
            "{name}'s BOARD_SERVICE_URL"
        );
    }
}

#[test]
fn the_scale_profile_runs_a_second_replica_of_each_service_on_nats_behind_nginx() {
    let compose = compose();
    let services = [
        (
            "board-service",
            env_vars(board_service::cli::Args::command()),
        ),
        ("ws-gateway", env_vars(GatewayEnv::command())),
        ("agent-bridge", env_vars(BridgeEnv::command())),
    ];
    for (primary, reads) in &services {
        let replica = format!("{primary}-2");
        assert_reads_only(&compose, &replica, reads);
        let (one, two) = (&compose.services[*primary], &compose.services[&replica]);
        assert_eq!(
            one.command, two.command,
            "{replica} runs what {primary} runs"
        );
        assert!(
            two.ports.is_empty(),
            "{replica} is reached through the proxy only"
        );
        for service in [one, two] {
            assert!(
                service.environment.contains_key("NATS_URL"),
                "{primary} and {replica} take NATS_URL"
            );
        }
        assert_eq!(
            one.healthcheck.as_ref().map(|h| &h.test),
            two.healthcheck.as_ref().map(|h| &h.test),
            "{replica} is probed as {primary} is"
        );
    }
    // The second gateway and bridge use the second board-service.
    for name in ["ws-gateway-2", "agent-bridge-2"] {
        assert_eq!(
            compose.services[name].environment["BOARD_SERVICE_URL"].as_str(),
            Some("http://board-service-2:50051"),
            "{name}"
        );
    }
    assert!(
        compose.services["nats"].command.iter().any(|a| a == "-js"),
        "NATS runs with JetStream"
    );
    let proxy = &compose.services["proxy"];
    assert_eq!(proxy.ports, ["8080:80"]);
    assert!(
        proxy
            .command
            .join(" ")
            .contains("/etc/nginx/boardwire/scale.conf"),
        "the proxy runs deploy/nginx/scale.conf: {:?}",
        proxy.command
    );
}
