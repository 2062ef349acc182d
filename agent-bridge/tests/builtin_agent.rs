//! The built-in PM agent end to end: WebSocket in, board-service changed.

mod common;

use common::{Options, Stack, Ws, assert_contiguous, streamed_text, tool_frames};
use protocol::{
    chat_frames::{RunStatus, ServerFrame, ToolStatus},
    v1::{Priority, TaskKind},
};

#[tokio::test]
async fn creates_a_p1_story_and_streams_tokens_and_tool_progress() {
    let stack = Stack::start().await;
    let (mut ws, connected) = Ws::open(&stack.ws_url("")).await;
    let ServerFrame::Connected { board_id, .. } = connected else {
        unreachable!()
    };
    assert_eq!(board_id, "default");

    ws.say("Create a P1 story for user authentication").await;
    let frames = ws.until_terminal().await;
    assert_contiguous(&frames);
    assert!(matches!(
        &frames[0],
        ServerFrame::Status { data, .. } if data.status == RunStatus::Processing
    ));
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
    assert!(
        tools
            .iter()
            .all(|t| t.tool == "create_task" && t.id == tools[0].id)
    );
    assert_eq!(tools[0].input["title"], "User authentication");
    assert_eq!(tools[0].input["priority"], "high");
    let output = tools[2]
        .output
        .clone()
        .expect("completed tools have output");
    assert_eq!(output["kind"], "story");

    let ServerFrame::Message { data, .. } = frames.last().unwrap() else {
        panic!("run did not end with a message: {frames:?}");
    };
    assert_eq!(data.content, streamed_text(&frames));
    assert!(
        data.content.contains("User authentication"),
        "{}",
        data.content
    );
    assert_eq!(data.artifacts.len(), 1);
    let last_token = frames.iter().rev().find_map(|f| match f {
        ServerFrame::Token { data, .. } => Some(data.done),
        _ => None,
    });
    assert_eq!(last_token, Some(true), "the last token says done");

    let board = stack.board().await;
    let task = board
        .tasks
        .iter()
        .find(|t| t.title == "User authentication")
        .expect("the task exists in board-service");
    assert_eq!(task.priority(), Priority::High);
    assert_eq!(task.kind(), TaskKind::Story);
    assert_eq!(task.lane_key, "backlog");
    assert_eq!(output["id"], task.id);

    // Every tool call leaves an audit record.
    let pool = sqlx::PgPool::connect(stack.db.url()).await.unwrap();
    let (tool, outcome, title): (String, String, String) = sqlx::query_as(
        "SELECT tool, outcome, input->>'title' FROM chat_tool_audit WHERE tool_call_id = $1",
    )
    .bind(&tools[0].id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (tool.as_str(), outcome.as_str(), title.as_str()),
        ("create_task", "completed", "User authentication")
    );
    let (status,): (String,) = sqlx::query_as("SELECT status FROM chat_runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "completed");
    pool.close().await;
    stack.stop().await;
}

#[tokio::test]
async fn moves_lists_and_deletes_tasks_by_title() {
    let stack = Stack::start().await;
    let (mut ws, _) = Ws::open(&stack.ws_url("")).await;
    ws.say("create a p0 bug called Checkout crashes").await;
    ws.until_terminal().await;

    ws.say("move checkout crashes to in progress").await;
    let frames = ws.until_terminal().await;
    assert_eq!(
        tool_frames(&frames).last().unwrap().status,
        ToolStatus::Completed
    );
    let task = stack
        .board()
        .await
        .tasks
        .into_iter()
        .find(|t| t.title == "Checkout crashes")
        .unwrap();
    assert_eq!(task.lane_key, "in_progress");
    assert_eq!(task.priority(), Priority::Critical);

    ws.say("what is in progress?").await;
    let frames = ws.until_terminal().await;
    let listing = tool_frames(&frames).last().unwrap().output.clone().unwrap();
    assert_eq!(listing["tasks"][0]["title"], "Checkout crashes");
    assert!(streamed_text(&frames).contains("Checkout crashes"));

    // Deleting waits for a yes (AGENT_APPROVALS=destructive by default).
    ws.say("delete Checkout crashes").await;
    let asked = ws.until_awaiting_approval().await;
    ws.approve(&asked.id, true, None).await;
    ws.until_terminal().await;
    assert!(
        stack
            .board()
            .await
            .tasks
            .iter()
            .all(|t| t.title != "Checkout crashes")
    );

    // A task that is not there fails the tool, not the run.
    ws.say("delete Nonexistent thing").await;
    let frames = ws.until_terminal().await;
    let tool = tool_frames(&frames).pop().unwrap();
    assert_eq!(tool.status, ToolStatus::Failed);
    assert!(tool.error.unwrap().contains("Nonexistent thing"));
    assert!(matches!(frames.last(), Some(ServerFrame::Message { .. })));
    stack.stop().await;
}

#[tokio::test]
async fn a_request_it_does_not_understand_gets_help() {
    let stack = Stack::start().await;
    let (mut ws, _) = Ws::open(&stack.ws_url("")).await;
    ws.say("sing me a song").await;
    let frames = ws.until_terminal().await;
    assert!(tool_frames(&frames).is_empty());
    let ServerFrame::Message { data, .. } = frames.last().unwrap() else {
        panic!("{frames:?}")
    };
    assert!(
        data.content.contains("Create a P1 story"),
        "{}",
        data.content
    );
    assert!(data.content.contains("move <task title> to done"));
    stack.stop().await;
}

#[tokio::test]
async fn board_service_down_is_an_error_and_the_session_stays_usable() {
    let stack = Stack::start_with(Options {
        board_service_down: true,
        ..Options::default()
    })
    .await;
    let (mut ws, _) = Ws::open(&stack.ws_url("")).await;
    ws.say("create a story for offline mode").await;
    let frames = ws.until_terminal().await;
    let ServerFrame::Error { data, .. } = frames.last().unwrap() else {
        panic!("{frames:?}")
    };
    assert_eq!(data.code, "board_service_unavailable");
    assert_eq!(
        tool_frames(&frames).last().unwrap().status,
        ToolStatus::Failed
    );
    assert_eq!(frames.iter().filter(|f| f.is_terminal()).count(), 1);

    ws.say("hello").await;
    let frames = ws.until_terminal().await;
    assert!(matches!(frames.last(), Some(ServerFrame::Message { .. })));
    stack.stop().await;
}

/// A message sent again with the same `message_id` (the tab did not see the
/// first run end, say after a bridge crash) makes the same board-service
/// call, which board-service answers from its idempotency record.
#[tokio::test]
async fn a_resent_message_creates_its_task_once() {
    use protocol::chat_frames::{ClientFrame, MessageData};
    let stack = Stack::start().await;
    let (mut ws, _) = Ws::open(&stack.ws_url("")).await;
    let message = |id: &str| ClientFrame::Message {
        data: MessageData {
            content: "Create a P1 story for resent messages".into(),
            session_id: None,
            message_id: Some(id.into()),
            message_history: None,
        },
    };
    for _ in 0..2 {
        ws.send(&message("msg-1")).await;
        ws.until_terminal().await;
    }
    let count = |board: &protocol::v1::BoardSnapshot| {
        board
            .tasks
            .iter()
            .filter(|t| t.title == "Resent messages")
            .count()
    };
    assert_eq!(
        count(&stack.board().await),
        1,
        "the resend wrote nothing new"
    );
    // Another message with the same words is another request.
    ws.send(&message("msg-2")).await;
    ws.until_terminal().await;
    assert_eq!(count(&stack.board().await), 2);
}

/// One request and what it did: the statuses of its one tool call, the
/// tool's name and output (or error), and the reply.
async fn ask(ws: &mut Ws, content: &str) -> (Vec<ToolStatus>, String, serde_json::Value, String) {
    ws.say(content).await;
    let frames = ws.until_terminal().await;
    assert_contiguous(&frames);
    let tools = tool_frames(&frames);
    assert!(
        tools.iter().all(|t| t.id == tools[0].id),
        "one call: {tools:?}"
    );
    let last = tools.last().expect("a tool ran").clone();
    let outcome = last
        .output
        .clone()
        .or(last.error.clone().map(serde_json::Value::from))
        .unwrap_or_default();
    (
        tools.iter().map(|t| t.status).collect(),
        tools[0].tool.clone(),
        outcome,
        streamed_text(&frames),
    )
}

#[tokio::test]
async fn plans_starts_reads_and_completes_the_sprint_without_a_model() {
    use protocol::v1::{CreateSprintRequest, CreateTaskRequest, SprintState};
    let stack = Stack::start().await;
    let mut api = protocol::v1::board_service_client::BoardServiceClient::connect(format!(
        "http://{}",
        stack.board_addr
    ))
    .await
    .unwrap();
    let mut sprint_ids = Vec::new();
    for (name, week) in [("Sprint 1", 0), ("Sprint 2", 2)] {
        let start = 1_796_601_600 + week * 7 * 86_400;
        let sprint = api
            .create_sprint(CreateSprintRequest {
                board_id: "default".into(),
                name: name.into(),
                starts_at: Some(protocol::time::timestamp_from_ms(start * 1000)),
                ends_at: Some(protocol::time::timestamp_from_ms(
                    (start + 14 * 86_400) * 1000,
                )),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        sprint_ids.push(sprint.id);
    }
    for title in ["Login form", "Signup page", "Login audit log"] {
        api.create_task(CreateTaskRequest {
            board_id: "default".into(),
            lane_id: "todo".into(),
            title: title.into(),
            kind: TaskKind::Story as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let task = |board: &protocol::v1::BoardSnapshot, title: &str| {
        board
            .tasks
            .iter()
            .find(|t| t.title == title)
            .unwrap()
            .clone()
    };
    let (mut ws, _) = Ws::open(&stack.ws_url("")).await;
    let done = [
        ToolStatus::Started,
        ToolStatus::Running,
        ToolStatus::Completed,
    ];

    // Two tasks hold "login": the words must pick one.
    let (statuses, _, error, text) = ask(&mut ws, "add the login story to the sprint").await;
    assert_eq!(statuses.last(), Some(&ToolStatus::Failed));
    assert!(
        error.as_str().unwrap().contains("more than one task"),
        "{error}"
    );
    assert!(text.contains("I could not add"), "{text}");

    // No sprint is active yet: the planned one takes it.
    let (statuses, tool, output, text) =
        ask(&mut ws, "add the login form story to the sprint").await;
    assert_eq!(
        (statuses.as_slice(), tool.as_str()),
        (&done[..], "update_task")
    );
    assert_eq!(output["task"]["sprintId"], sprint_ids[0]);
    assert_eq!(text, "Added \"Login form\" to sprint \"Sprint 1\".");
    assert_eq!(
        task(&stack.board().await, "Login form").sprint_id,
        sprint_ids[0]
    );

    // Two are planned: the earliest starts.
    let (statuses, tool, output, text) = ask(&mut ws, "start the sprint").await;
    assert_eq!(
        (statuses.as_slice(), tool.as_str()),
        (&done[..], "start_sprint")
    );
    assert_eq!(output["sprint"]["id"], sprint_ids[0]);
    assert_eq!(output["sprint"]["state"], "active");
    assert!(text.contains("one more is planned"), "{text}");
    let (statuses, _, error, _) = ask(&mut ws, "start the sprint").await;
    assert_eq!(statuses.last(), Some(&ToolStatus::Failed));
    assert!(error.as_str().unwrap().contains("still active"), "{error}");

    // Now the active sprint takes new work.
    let (_, _, output, _) = ask(&mut ws, "put signup in the sprint").await;
    assert_eq!(output["task"]["title"], "Signup page");
    assert_eq!(output["task"]["sprintId"], sprint_ids[0]);
    ws.say("move login form to done").await;
    ws.until_terminal().await;

    let (statuses, tool, output, text) = ask(&mut ws, "what is left in the sprint?").await;
    assert_eq!(
        (statuses.as_slice(), tool.as_str()),
        (&done[..], "list_tasks")
    );
    let titles: Vec<_> = output["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Signup page"]);
    assert!(
        text.contains("1 task is left in sprint \"Sprint 1\""),
        "{text}"
    );
    assert!(!text.contains("Login form"), "{text}");

    let (statuses, tool, output, text) = ask(&mut ws, "complete the sprint").await;
    assert_eq!(
        (statuses.as_slice(), tool.as_str()),
        (&done[..], "complete_sprint")
    );
    assert_eq!(output["sprint"]["state"], "completed");
    assert!(
        text.contains("one unfinished task went back to the backlog"),
        "{text}"
    );
    let board = stack.board().await;
    assert_eq!(
        task(&board, "Signup page").sprint_id,
        "",
        "back in the backlog"
    );
    assert_eq!(
        task(&board, "Login form").sprint_id,
        sprint_ids[0],
        "done stays"
    );
    let sprints = api
        .list_sprints(protocol::v1::ListSprintsRequest {
            board_id: "default".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .sprints;
    let states: Vec<_> = sprints.iter().map(|s| s.state()).collect();
    assert_eq!(states, [SprintState::Completed, SprintState::Planned]);

    let (statuses, _, error, _) = ask(&mut ws, "what is left in the sprint?").await;
    assert_eq!(statuses.last(), Some(&ToolStatus::Failed));
    assert!(
        error.as_str().unwrap().contains("no sprint is active"),
        "{error}"
    );
    stack.stop().await;
}
