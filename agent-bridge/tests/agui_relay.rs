//! The AG-UI relay: against a real pydantic-ai AG-UI server
//! (`tests/agui/server.py`), and against a scripted fake for failures.

mod common;

use std::time::Duration;

use common::{
    AgUiServer, Options, Stack, Ws, assert_contiguous, fake_agent::FakeAgent, streamed_text,
    tool_frames,
};
use protocol::chat_frames::{ClientFrame, RunStatus, ServerFrame, ToolStatus};

fn with_agent(url: &str) -> Options {
    Options {
        agent_url: Some(url.to_owned()),
        ..Options::default()
    }
}

fn error_code(frames: &[ServerFrame]) -> String {
    match frames.last() {
        Some(ServerFrame::Error { data, .. }) => data.code.clone(),
        other => panic!("the run did not end with an error: {other:?}"),
    }
}

#[tokio::test]
async fn relays_a_real_ag_ui_run_with_tool_progress_and_a_raising_tool() {
    let agent = AgUiServer::start().await;
    let stack = Stack::start_with(with_agent(&agent.url)).await;
    let (mut ws, _) = Ws::open(&stack.ws_url("")).await;

    ws.say("please create a login task").await;
    let frames = ws.until_terminal().await;
    assert_contiguous(&frames);
    let tools = tool_frames(&frames);
    let statuses: Vec<ToolStatus> = tools.iter().map(|t| t.status).collect();
    assert_eq!(
        statuses,
        [
            ToolStatus::Started,
            ToolStatus::Running,
            ToolStatus::Completed
        ]
    );
    assert_eq!(tools[0].tool, "create_task");
    assert!(
        tools[0].id.starts_with("pyd_ai_"),
        "keyed by toolCallId: {}",
        tools[0].id
    );
    // The args arrive in two fragments; the bridge joins and parses them.
    assert_eq!(
        tools[1].input,
        serde_json::json!({"title": "Login page", "priority": "high"})
    );
    assert_eq!(tools[2].output.as_ref().unwrap()["id"], "task-1");
    let ServerFrame::Message { data, .. } = frames.last().unwrap() else {
        panic!("{frames:?}")
    };
    assert_eq!(data.content, "Created the task for you.");
    assert_eq!(streamed_text(&frames), data.content);
    assert_eq!(data.artifacts.len(), 1);

    // The second run carries the history; a tool that raises fails, then the run errors.
    ws.say("now explode").await;
    let frames = ws.until_terminal().await;
    let tools = tool_frames(&frames);
    let last = tools.last().unwrap();
    assert_eq!(last.tool, "explode");
    assert_eq!(last.status, ToolStatus::Failed);
    assert!(
        last.error
            .as_deref()
            .unwrap()
            .contains("explode tool failed"),
        "{last:?}"
    );
    assert_eq!(error_code(&frames), "agent_error");
    assert_eq!(frames.iter().filter(|f| f.is_terminal()).count(), 1);

    ws.say("create one more").await;
    let frames = ws.until_terminal().await;
    assert!(
        matches!(frames.last(), Some(ServerFrame::Message { .. })),
        "session still usable: {frames:?}"
    );
    stack.stop().await;
    agent.stop().await;
}

#[tokio::test]
async fn cancel_closes_the_upstream_stream_of_a_real_ag_ui_server() {
    let agent = AgUiServer::start().await;
    let stack = Stack::start_with(with_agent(&agent.url)).await;
    let (mut ws, _) = Ws::open(&stack.ws_url("")).await;
    ws.say("go slow please").await;
    let processing = ws.next().await;
    let first_token = ws.next().await;
    assert!(
        matches!(first_token, ServerFrame::Token { .. }),
        "{first_token:?}"
    );
    ws.send(&ClientFrame::Cancel {
        run_id: processing.run_id().map(Into::into),
        data: None,
    })
    .await;
    let frames = ws.until_terminal().await;
    assert!(matches!(
        frames.last(),
        Some(ServerFrame::Status { data, .. }) if data.status == RunStatus::Cancelled
    ));
    stack.stop().await;
    agent.stop().await;
}

#[tokio::test]
async fn cancel_really_stops_the_upstream_http_stream() {
    let agent = FakeAgent::start().await;
    let stack = Stack::start_with(with_agent(&agent.url)).await;
    let (mut ws, _) = Ws::open(&stack.ws_url("")).await;
    ws.say("endless").await;
    ws.next().await;
    ws.next().await;
    ws.send(&ClientFrame::Cancel {
        run_id: None,
        data: None,
    })
    .await;
    ws.until_terminal().await;
    // The upstream notices the closed connection on its next write.
    for _ in 0..300 {
        if agent.dropped() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(agent.dropped(), 1, "the bridge closed the upstream stream");
    stack.stop().await;
}

#[tokio::test]
async fn garbage_from_the_backend_is_an_error_and_the_session_stays_usable() {
    let agent = FakeAgent::start().await;
    let stack = Stack::start_with(with_agent(&agent.url)).await;
    let (mut ws, _) = Ws::open(&stack.ws_url("")).await;
    ws.say("send garbage").await;
    let frames = ws.until_terminal().await;
    assert_eq!(error_code(&frames), "agent_protocol_error");
    assert_eq!(frames.iter().filter(|f| f.is_terminal()).count(), 1);

    ws.say("fine now").await;
    let frames = ws.until_terminal().await;
    let ServerFrame::Message { data, .. } = frames.last().unwrap() else {
        panic!("{frames:?}")
    };
    assert_eq!(data.content, "ok");
    stack.stop().await;
}

#[tokio::test]
async fn a_backend_that_stops_answering_times_out() {
    let agent = FakeAgent::start().await;
    let options = Options {
        agent_timeout: Duration::from_millis(300),
        ..with_agent(&agent.url)
    };
    let stack = Stack::start_with(options).await;
    let (mut ws, _) = Ws::open(&stack.ws_url("")).await;
    ws.say("hang").await;
    let frames = ws.until_terminal().await;
    assert_eq!(error_code(&frames), "agent_timeout");
    ws.say("fine now").await;
    assert!(matches!(
        ws.until_terminal().await.last(),
        Some(ServerFrame::Message { .. })
    ));
    stack.stop().await;
}
