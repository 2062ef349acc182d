//! `/metrics`, read by a real Prometheus text parser: sessions and sockets,
//! runs by outcome, frames, tool calls, approvals and the latency histograms.

mod common;

use common::{Stack, Ws};
use service_kit::testing::{metric_value as value, scrape_metrics};

async fn scrape(stack: &Stack) -> prometheus_parse::Scrape {
    scrape_metrics(&stack.http_url("/metrics")).await
}

#[tokio::test]
async fn metrics_count_runs_frames_tools_approvals_and_latency() {
    let stack = Stack::start().await;
    let before = scrape(&stack).await;
    let (mut tab, _) = Ws::open(&stack.ws_url("?session_id=metrics-1")).await;
    tab.say("Create a P2 task for the metrics check").await;
    tab.until_terminal().await;
    tab.say("delete The metrics check").await;
    let asked = tab.until_awaiting_approval().await;
    tab.approve(&asked.id, false, None).await;
    tab.until_terminal().await;

    let after = scrape(&stack).await;
    let grew = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert!(grew("boardwire_agent_bridge_runs_started_total", &[]) >= 2.0);
    assert!(
        grew(
            "boardwire_agent_bridge_runs_ended_total",
            &[("status", "completed")]
        ) >= 2.0
    );
    assert!(grew("boardwire_agent_bridge_frames_total", &[]) >= 10.0);
    assert!(
        grew(
            "boardwire_agent_bridge_tool_calls_total",
            &[("tool", "create_task"), ("outcome", "completed")]
        ) >= 1.0
    );
    assert!(
        grew(
            "boardwire_agent_bridge_tool_calls_total",
            &[("tool", "delete_task"), ("outcome", "failed")]
        ) >= 1.0
    );
    assert!(
        grew(
            "boardwire_agent_bridge_approvals_total",
            &[("status", "rejected")]
        ) >= 1.0
    );
    assert!(grew("boardwire_agent_bridge_frame_publish_seconds", &[]) >= 10.0);
    assert!(value(&after, "boardwire_agent_bridge_sessions", &[]) >= 1.0);
    assert!(
        value(&after, "boardwire_agent_bridge_sockets", &[]) >= 1.0,
        "the tab is open"
    );
    stack.stop().await;
}
