//! Tool approvals: a delete waits for a yes from any tab of the session;
//! a no (or no answer in time) tells the agent, which says so; the pause
//! survives a reconnect; the audit record says who answered and when.

mod common;

use std::time::Duration;

use agent_bridge::agent::approvals::{ApprovalMode, Approvals};
use common::{Options, Stack, Ws};
use protocol::chat_frames::{ServerFrame, ToolStatus};

fn with_approvals(mode: ApprovalMode, timeout: Duration) -> Options {
    Options {
        approvals: Approvals { mode, timeout },
        ..Options::default()
    }
}

async fn stack_with_a_task(options: Options, title: &str) -> Stack {
    let stack = Stack::start_with(options).await;
    let (mut ws, _) = Ws::open(&stack.ws_url("?session_id=setup")).await;
    ws.say(&format!("Create a P2 task for {title}")).await;
    ws.until_terminal().await;
    stack
}

fn on_board(board: &protocol::v1::BoardSnapshot, title: &str) -> bool {
    board
        .tasks
        .iter()
        .any(|t| t.title.eq_ignore_ascii_case(title))
}

async fn audit(stack: &Stack, tool_call: &str) -> (String, Option<bool>, Option<String>, bool) {
    let pool = sqlx::PgPool::connect(stack.db.url()).await.unwrap();
    sqlx::query_as(
        "SELECT outcome, approved, approved_by, approved_at IS NOT NULL
         FROM chat_tool_audit WHERE tool_call_id = $1",
    )
    .bind(tool_call)
    .fetch_one(&pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn another_tab_approves_after_a_reconnect_and_the_delete_runs() {
    let stack = stack_with_a_task(Options::default(), "the approval check").await;
    let url = stack.ws_url("?session_id=approve-1");
    let (mut asker, _) = Ws::open(&url).await;
    let (other, _) = Ws::open(&url).await;
    asker.say("delete The approval check").await;
    let asked = asker.until_awaiting_approval().await;
    let approval = asked
        .approval
        .as_ref()
        .expect("the call says what it will do");
    assert!(
        approval.description.contains("The approval check"),
        "{approval:?}"
    );
    assert!(
        on_board(&stack.board().await, "The approval check"),
        "not yet"
    );

    // The other tab drops and comes back: the question is replayed to it,
    // and its answer still counts.
    other.close().await;
    let (mut other, _) = Ws::open(&url).await;
    let replayed = other.until_awaiting_approval().await;
    assert_eq!(replayed.id, asked.id);
    other.approve(&asked.id, true, None).await;
    for tab in [&mut asker, &mut other] {
        let frames = tab.until_terminal().await;
        let last_tool = frames
            .iter()
            .rev()
            .find_map(|f| match f {
                ServerFrame::ToolExecution { data, .. } => Some(data.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(last_tool.status, ToolStatus::Completed);
        assert_eq!(
            last_tool.approval.as_ref().and_then(|a| a.approved),
            Some(true),
            "every tab sees the answer"
        );
    }
    assert!(!on_board(&stack.board().await, "The approval check"));
    let (outcome, approved, by, at) = audit(&stack, &asked.id).await;
    assert_eq!(
        (outcome.as_str(), approved, by.as_deref(), at),
        ("completed", Some(true), Some("anonymous"), true)
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_rejection_is_told_to_the_user_and_deletes_nothing() {
    let stack = stack_with_a_task(Options::default(), "the rejection check").await;
    let (mut tab, _) = Ws::open(&stack.ws_url("?session_id=reject-1")).await;
    tab.say("delete The rejection check").await;
    let asked = tab.until_awaiting_approval().await;
    tab.approve(&asked.id, false, Some("still needed")).await;
    let frames = tab.until_terminal().await;
    let ServerFrame::Message { data, .. } = frames.last().unwrap() else {
        panic!("{frames:?}")
    };
    assert!(data.content.contains("did not delete"), "{}", data.content);
    assert!(data.content.contains("still needed"), "{}", data.content);
    assert!(on_board(&stack.board().await, "The rejection check"));
    let (outcome, approved, ..) = audit(&stack, &asked.id).await;
    assert_eq!((outcome.as_str(), approved), ("failed", Some(false)));
    // Answering again is refused: the question is closed.
    tab.approve(&asked.id, true, None).await;
    let ServerFrame::Error {
        data, run_id: None, ..
    } = tab.next().await
    else {
        panic!("a stale approval gets an error")
    };
    assert_eq!(data.code, "unknown_approval");
    stack.stop().await;
}

#[tokio::test]
async fn no_answer_in_time_counts_as_a_rejection() {
    let options = with_approvals(ApprovalMode::Destructive, Duration::from_secs(1));
    let stack = stack_with_a_task(options, "the timeout check").await;
    let (mut tab, _) = Ws::open(&stack.ws_url("?session_id=timeout-1")).await;
    tab.say("delete The timeout check").await;
    let asked = tab.until_awaiting_approval().await;
    let frames = tab.until_terminal().await;
    let ServerFrame::Message { data, .. } = frames.last().unwrap() else {
        panic!("{frames:?}")
    };
    assert!(data.content.contains("in time"), "{}", data.content);
    assert!(on_board(&stack.board().await, "The timeout check"));
    let (_, approved, by, _) = audit(&stack, &asked.id).await;
    assert_eq!((approved, by.as_deref()), (Some(false), Some("timeout")));
    stack.stop().await;
}

#[tokio::test]
async fn approvals_off_deletes_at_once() {
    let options = with_approvals(ApprovalMode::Off, Duration::from_secs(600));
    let stack = stack_with_a_task(options, "the no approval check").await;
    let (mut tab, _) = Ws::open(&stack.ws_url("?session_id=off-1")).await;
    tab.say("delete The no approval check").await;
    let frames = tab.until_terminal().await;
    assert!(frames.iter().all(|f| !matches!(f,
        ServerFrame::ToolExecution { data, .. } if data.status == ToolStatus::AwaitingApproval)));
    assert!(!on_board(&stack.board().await, "The no approval check"));
    stack.stop().await;
}

/// A relayed backend's AG-UI interrupt is asked of the tabs like any
/// approval, and the answer goes back upstream in `resume`, on the same
/// chat run. (The backend is the scripted AG-UI peer in `fake_agent.rs`.)
#[tokio::test]
async fn a_relayed_backends_interrupt_is_an_approval_and_resumes_upstream() {
    for (approved, said) in [(true, "Deleted it."), (false, "Left it alone.")] {
        let agent = common::fake_agent::FakeAgent::start().await;
        let stack = Stack::start_with(Options {
            agent_url: Some(agent.url.clone()),
            ..Options::default()
        })
        .await;
        let (mut tab, _) = Ws::open(&stack.ws_url("?session_id=relay-approval")).await;
        tab.say("this needs approval").await;
        let asked = tab.until_awaiting_approval().await;
        assert_eq!(
            (asked.id.as_str(), asked.tool.as_str()),
            ("call-delete-1", "delete_task")
        );
        assert_eq!(
            asked.approval.as_ref().map(|a| a.description.as_str()),
            Some("Delete the task \"Old plan\"")
        );
        tab.approve(&asked.id, approved, None).await;
        let frames = tab.until_terminal().await;
        let ServerFrame::Message { data, .. } = frames.last().unwrap() else {
            panic!("{frames:?}")
        };
        assert!(data.content.starts_with(said), "{}", data.content);
        assert!(
            data.content
                .contains("resumed interrupt-1, call in history: true"),
            "{}",
            data.content
        );
        let tool = frames
            .iter()
            .rev()
            .find_map(|f| match f {
                ServerFrame::ToolExecution { data, .. } => Some(data.clone()),
                _ => None,
            })
            .unwrap();
        let want = if approved {
            ToolStatus::Completed
        } else {
            ToolStatus::Failed
        };
        assert_eq!(tool.status, want, "{tool:?}");
        assert_eq!(frames.iter().filter(|f| f.is_terminal()).count(), 1);
        stack.stop().await;
    }
}
