//! Golden frames: what the Rust types put on the wire for a short board
//! stream and one chat run, kept as JSON under `tests/golden/`. The web
//! client's tests (`web/tests/golden.test.mjs`) replay the same files, so
//! the JS client and these types cannot drift apart unnoticed.
//!
//! A change to a frame's shape fails here first; when it is meant, write the
//! files again with `UPDATE_GOLDEN=1 cargo test -p protocol --test golden`
//! and make the web tests pass on them.

use std::path::PathBuf;

use protocol::{
    board_frames::{self, Ack, AckResult, ErrorCode, ErrorFrame, TaskData},
    chat_frames::{
        self, Approval, Artifact, ErrorData, FinalMessage, RunStatus, StatusData, TokenData,
        ToolExecution, ToolStatus,
    },
    event_type,
    time::timestamp_from_ms,
    v1::{Board, BoardEvent, Lane, Task},
};
use serde::Serialize;
use serde_json::json;

const BOARD: &str = "0b9a1c52-7d1e-4c53-9d3f-2a1c4e5f6a70";

fn lane(key: &str, name: &str, position: u32) -> Lane {
    Lane {
        id: format!("lane-{key}"),
        board_id: BOARD.into(),
        key: key.into(),
        name: name.into(),
        position,
        wip_limit: (key == "in_progress").then_some(3),
    }
}

fn lanes() -> Vec<Lane> {
    vec![
        lane("todo", "To do", 0),
        lane("in_progress", "In progress", 1),
        lane("done", "Done", 2),
    ]
}

// `..Default::default()` keeps this compiling when the proto grows a field;
// the golden file then shows the new field's default.
#[allow(clippy::needless_update)]
fn task(id: &str, lane: &str, title: &str, position: &str, version: u64) -> Task {
    Task {
        id: id.into(),
        board_id: BOARD.into(),
        lane_id: format!("lane-{lane}"),
        lane_key: lane.into(),
        title: title.into(),
        description: "As a user I can sign in.".into(),
        priority: 3,
        kind: 2,
        estimated_hours: 5.0,
        assignee: "ana".into(),
        labels: vec!["auth".into()],
        position: position.into(),
        version,
        created_at: Some(timestamp_from_ms(1_764_633_600_000)),
        updated_at: Some(timestamp_from_ms(1_764_633_600_000 + version as i64)),
        ..Default::default()
    }
}

fn event(kind: &str, version: u64, task: Option<Task>) -> BoardEvent {
    BoardEvent {
        board_id: BOARD.into(),
        version,
        r#type: kind.into(),
        occurred_at: Some(timestamp_from_ms(1_764_633_700_000 + version as i64)),
        request_id: format!("cmd-{version}"),
        task,
        ..Default::default()
    }
}

/// `frame` as it goes on the wire (keys in the types' order, not sorted).
fn wire(frame: impl Serialize) -> String {
    serde_json::to_string_pretty(&frame).expect("frames serialize")
}

/// A connection's first frame, a board at version 4 with two tasks, one
/// change of each kind, and a command's ack and error.
fn board_stream() -> Vec<String> {
    let board = Board {
        id: BOARD.into(),
        slug: "default".into(),
        name: "Default board".into(),
        version: 4,
        lanes: lanes(),
        ..Default::default()
    };
    let login = task("t-login", "todo", "Login story", "a0", 1);
    let docs = task("t-docs", "in_progress", "Write the docs", "a0", 2);
    let sync = board_frames::ServerFrame::board_sync(&board, [&login, &docs], 4, 1_764_633_700_004);
    let created = event(
        event_type::TASK_CREATED,
        5,
        Some(task("t-reset", "todo", "Password reset", "a1", 1)),
    );
    let mut updated = event(
        event_type::TASK_UPDATED,
        6,
        Some(Task {
            title: "Login with SSO".into(),
            ..task("t-login", "todo", "", "a0", 2)
        }),
    );
    updated.changed_fields = vec!["title".into()];
    let mut moved = event(
        event_type::TASK_MOVED,
        7,
        Some(task("t-login", "in_progress", "Login with SSO", "a1", 3)),
    );
    moved.from_lane_id = "lane-todo".into();
    moved.from_lane_key = "todo".into();
    moved.to_lane_id = "lane-in_progress".into();
    moved.to_lane_key = "in_progress".into();
    let deleted = event(
        event_type::TASK_DELETED,
        8,
        Some(task("t-docs", "in_progress", "Write the docs", "a0", 2)),
    );
    let mut lane_created = event(event_type::LANE_CREATED, 9, None);
    lane_created.lane = Some(lane("review", "Review", 3));
    lane_created.lanes = [lanes(), vec![lane("review", "Review", 3)]].concat();
    let connected = board_frames::ServerFrame::Connected {
        client_id: "c-1".into(),
        heartbeat_ms: 30_000,
    };
    let mut frames: Vec<String> = [connected, sync]
        .into_iter()
        .chain(
            [created, updated, moved, deleted, lane_created]
                .iter()
                .map(|e| board_frames::ServerFrame::from_event(e).expect("a frame for each")),
        )
        .map(wire)
        .collect();
    let ack = board_frames::ServerFrame::Ack(Ack {
        id: "cmd-7".into(),
        ok: true,
        result: Some(AckResult::Task(Box::new(TaskData::from(&task(
            "t-login",
            "in_progress",
            "Login with SSO",
            "a1",
            3,
        ))))),
    });
    let refused = board_frames::ServerFrame::Error(ErrorFrame {
        code: ErrorCode::FailedPrecondition,
        message: "lane in_progress is at its WIP limit of 3".into(),
        id: Some("cmd-10".into()),
        board_id: Some(BOARD.into()),
    });
    frames.extend([ack, refused].map(wire));
    frames
}

fn tool(status: ToolStatus, end: Option<i64>) -> ToolExecution {
    ToolExecution {
        id: "call_1".into(),
        tool: "create_task".into(),
        status,
        input: json!({"board": "default", "title": "Login story", "priority": "high"}),
        output: end.map(|_| json!({"id": "t-login", "title": "Login story"})),
        error: None,
        progress: None,
        start_time: 1_764_633_800_000,
        end_time: end,
        approval: None,
    }
}

/// One chat run that calls a tool, then a run cut short.
fn chat_run() -> Vec<String> {
    use chat_frames::ServerFrame::{Connected, Error, Message, Status, Token};
    let run = || Some("run-1".to_owned());
    let awaiting = ToolExecution {
        approval: Some(Box::new(Approval {
            description: "Delete the task \"Old spike\"".into(),
            approved: None,
            decided_by: None,
            reason: None,
            decided_at: None,
        })),
        ..tool(ToolStatus::AwaitingApproval, None)
    };
    let frames = [
        Connected {
            seq: 0,
            session_id: "s-1".into(),
            board_id: "default".into(),
            run_id: None,
        },
        Status {
            seq: 1,
            run_id: run(),
            data: StatusData {
                status: RunStatus::Processing,
                message: "Working…".into(),
                run_id: run(),
            },
        },
        chat_frames::ServerFrame::ToolExecution {
            seq: 2,
            run_id: run(),
            data: awaiting,
        },
        chat_frames::ServerFrame::ToolExecution {
            seq: 3,
            run_id: run(),
            data: tool(ToolStatus::Running, None),
        },
        chat_frames::ServerFrame::ToolExecution {
            seq: 4,
            run_id: run(),
            data: tool(ToolStatus::Completed, Some(1_764_633_800_120)),
        },
        Token {
            seq: 5,
            run_id: run(),
            data: TokenData {
                token: "Created".into(),
                done: false,
            },
        },
        Token {
            seq: 6,
            run_id: run(),
            data: TokenData {
                token: " story \"Login story\".".into(),
                done: true,
            },
        },
        Message {
            seq: 7,
            run_id: run(),
            data: FinalMessage {
                content: "Created story \"Login story\".".into(),
                artifacts: vec![Artifact::ToolResult {
                    tool: "create_task".into(),
                    tool_call_id: "call_1".into(),
                    output: json!({"id": "t-login", "title": "Login story"}),
                }],
            },
        },
        Error {
            seq: 8,
            run_id: Some("run-2".into()),
            data: ErrorData::new(
                "interrupted",
                "the bridge restarted before the run finished",
            ),
        },
    ];
    frames.into_iter().map(wire).collect()
}

fn check(name: &str, frames: Vec<String>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let text = format!("[\n{}\n]\n", frames.join(",\n"));
    serde_json::from_str::<serde_json::Value>(&text).expect("the golden file is JSON");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).expect("write the golden file");
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == text,
        "{} differs from what the types produce now:\n{text}\n\
         If the change is meant: UPDATE_GOLDEN=1 cargo test -p protocol --test golden, \
         then make web/tests/golden.test.mjs pass on it.",
        path.display()
    );
}

#[test]
fn board_frames_match_the_golden_stream() {
    check("board-stream.json", board_stream());
}

#[test]
fn chat_frames_match_the_golden_run() {
    check("chat-run.json", chat_run());
}
