//! A chat message named by its client's `message_id` is answered once:
//! sent again, over the WebSocket or `POST /api/chat`, it gets the run in
//! flight or the result it had, and starts nothing new.

mod common;

use std::time::Duration;

use common::{Options, Stack, Ws};
use protocol::chat_frames::{RunStatus, ServerFrame};
use serde_json::json;

async fn count(stack: &Stack, sql: &str, session: &str) -> i64 {
    let pool = sqlx::PgPool::connect(stack.db.url()).await.unwrap();
    sqlx::query_scalar(sql)
        .bind(session)
        .fetch_one(&pool)
        .await
        .unwrap()
}

async fn runs_of(stack: &Stack, session: &str) -> i64 {
    count(
        stack,
        "SELECT count(*) FROM chat_runs WHERE session_id = $1",
        session,
    )
    .await
}

async fn tasks_titled(stack: &Stack, title: &str) -> usize {
    let board = stack.board().await;
    board.tasks.iter().filter(|t| t.title == title).count()
}

#[tokio::test]
async fn http_resend_returns_the_same_run_and_result() {
    let stack = Stack::start().await;
    let body = json!({
        "content": "Create a P2 task for the resend check",
        "session_id": "resend-http",
        "message_id": "m-1",
    });
    let (status, first) = stack.post_chat(body.clone()).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = stack.post_chat(body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["runId"], first["runId"]);
    assert_eq!(again["status"], "completed");
    assert_eq!(again["message"], first["message"]);
    assert_eq!(
        again["toolExecutions"][0]["output"], first["toolExecutions"][0]["output"],
        "the same tool result, not a second call"
    );
    assert_eq!(runs_of(&stack, "resend-http").await, 1);
    assert_eq!(tasks_titled(&stack, "The resend check").await, 1);
    let stored = count(
        &stack,
        "SELECT count(*) FROM chat_messages WHERE session_id = $1 AND role = 'user'",
        "resend-http",
    )
    .await;
    assert_eq!(stored, 1, "the resend is not stored as a second message");
    // A new id is a new message.
    let (status, other) = stack
        .post_chat(
            json!({"content": "list tasks", "session_id": "resend-http", "message_id": "m-2"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_ne!(other["runId"], first["runId"]);
    assert_eq!(runs_of(&stack, "resend-http").await, 2);
    stack.stop().await;
}

#[tokio::test]
async fn ws_resend_of_an_answered_message_gets_its_terminal_frame_under_its_seq() {
    let stack = Stack::start().await;
    let url = stack.ws_url("?session_id=resend-ws");
    let (mut tab, _) = Ws::open(&url).await;
    tab.say_as("Create a P3 task for the websocket resend", "m-1")
        .await;
    let frames = tab.until_terminal().await;
    let answer = frames.last().unwrap().clone();
    assert!(matches!(answer, ServerFrame::Message { .. }), "{answer:?}");

    tab.say_as("Create a P3 task for the websocket resend", "m-1")
        .await;
    let ServerFrame::Status {
        run_id: None, data, ..
    } = tab.next().await
    else {
        panic!("told which run answered it first");
    };
    assert_eq!(
        (data.status, data.run_id.as_deref()),
        (RunStatus::Idle, answer.run_id())
    );
    let again = tab.next().await;
    assert_eq!(again, answer, "the same frame, seq included");
    // The next message continues above it: nothing was published between.
    tab.say_as("list tasks", "m-2").await;
    let next = tab.until_terminal().await;
    assert_eq!(next[0].seq(), Some(answer.seq().unwrap() + 1), "{next:?}");
    assert_eq!(runs_of(&stack, "resend-ws").await, 2);
    assert_eq!(tasks_titled(&stack, "The websocket resend").await, 1);
    stack.stop().await;
}

#[tokio::test]
async fn ws_resend_while_the_run_is_in_flight_names_that_run() {
    let stack = Stack::start_with(Options {
        token_delay: Duration::from_millis(30),
        ..Options::default()
    })
    .await;
    let url = stack.ws_url("?session_id=resend-live");
    let (mut a, _) = Ws::open(&url).await;
    let (mut b, _) = Ws::open(&url).await;
    a.say_as("Create a P1 task for the in flight resend", "m-1")
        .await;
    let ServerFrame::Status {
        run_id: Some(run), ..
    } = a.next().await
    else {
        panic!("the run starts with its status frame");
    };
    // A second tab sends the same message (say, from its offline queue).
    b.say_as("Create a P1 task for the in flight resend", "m-1")
        .await;
    let mut told = None;
    let mut terminals = Vec::new();
    loop {
        let frame = b.next().await;
        match &frame {
            ServerFrame::Status {
                run_id: None, data, ..
            } => {
                assert_eq!(data.status, RunStatus::Processing);
                told = data.run_id.clone();
            }
            f if f.is_terminal() => {
                terminals.push(frame.clone());
                break;
            }
            _ => {}
        }
    }
    assert_eq!(
        told.as_deref(),
        Some(run.as_str()),
        "told which run answers it"
    );
    assert_eq!(terminals[0].run_id(), Some(run.as_str()));
    assert_eq!(a.until_terminal().await.last(), terminals.last());
    assert_eq!(runs_of(&stack, "resend-live").await, 1);
    assert_eq!(tasks_titled(&stack, "The in flight resend").await, 1);
    stack.stop().await;
}

#[tokio::test]
async fn http_resend_while_the_run_is_in_flight_waits_for_that_runs_result() {
    let stack = Stack::start_with(Options {
        token_delay: Duration::from_millis(30),
        ..Options::default()
    })
    .await;
    let (mut tab, _) = Ws::open(&stack.ws_url("?session_id=resend-http-live")).await;
    tab.say_as("Create a P1 task for the http wait", "m-1")
        .await;
    let ServerFrame::Status {
        run_id: Some(run), ..
    } = tab.next().await
    else {
        panic!("the run starts with its status frame");
    };
    let (status, body) = stack
        .post_chat(json!({
            "content": "Create a P1 task for the http wait",
            "session_id": "resend-http-live",
            "message_id": "m-1",
        }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["runId"], json!(run), "the run in flight answers it");
    assert_eq!(body["status"], "completed");
    assert_eq!(runs_of(&stack, "resend-http-live").await, 1);
    assert_eq!(tasks_titled(&stack, "The http wait").await, 1);
    stack.stop().await;
}
