//! The AG-UI relay against a real LangGraph backend (`tests/langgraph/server.py`:
//! ag-ui-langgraph over a graph with a scripted model, a ToolNode and a
//! MemorySaver checkpointer).
//!
//! LangGraph keeps the thread itself and merges each run's input into its
//! checkpoint by message id: a message whose id it does not hold is appended.
//! So the bridge must send the whole conversation, tool calls and results
//! included, under the ids LangGraph gave them (its `MESSAGES_SNAPSHOT`
//! carries them; the streamed ids of a tool result differ), or the
//! checkpoint grows a second copy of every earlier turn.

mod common;

use common::{AgUiServer, Options, Stack, Ws, tool_frames};
use protocol::chat_frames::{ServerFrame, ToolStatus};
use serde_json::{Value, json};

const TURN_1: &str = "Please create a task for the login page";
const TURN_2: &str = "thanks";

#[tokio::test]
async fn a_langgraph_thread_gets_the_whole_conversation_under_its_own_ids() {
    let agent = AgUiServer::start_langgraph().await;
    let stack = Stack::start_with(Options {
        agent_url: Some(agent.url.clone()),
        ..Options::default()
    })
    .await;
    let (mut ws, _) = Ws::open(&stack.ws_url("")).await;

    // Turn 1: the model calls create_task, the ToolNode runs it, the model answers.
    ws.say(TURN_1).await;
    let frames = ws.until_terminal().await;
    let tools = tool_frames(&frames);
    let statuses: Vec<ToolStatus> = tools.iter().map(|t| t.status).collect();
    assert_eq!(
        statuses,
        [
            ToolStatus::Started,
            ToolStatus::Running,
            ToolStatus::Completed
        ],
        "{frames:?}"
    );
    assert_eq!(tools[0].tool, "create_task");
    assert_eq!(tools[1].input, json!({"title": "Login page"}));
    assert_eq!(tools[2].output.as_ref().unwrap()["id"], "task-1");
    let call_id = tools[0].id.clone();
    let Some(ServerFrame::Message { data, .. }) = frames.last() else {
        panic!("turn 1 did not end with a message: {frames:?}")
    };
    assert_eq!(data.content, "Created the task.");

    // Turn 2 on the same session, so the same LangGraph thread.
    ws.say(TURN_2).await;
    let frames = ws.until_terminal().await;
    let Some(ServerFrame::Message { data, .. }) = frames.last() else {
        panic!("turn 2 did not end with a message: {frames:?}")
    };
    assert_eq!(data.content, "You're welcome.");

    let received = agent.get_json("/received").await;
    let [turn_1, turn_2] = received.as_array().unwrap().as_slice() else {
        panic!("expected two runs: {received:#}")
    };
    assert_eq!(turn_1["threadId"], turn_2["threadId"], "one thread");
    let thread = turn_2["threadId"].as_str().unwrap();
    let first = messages(turn_1);
    let sent = messages(turn_2);
    assert_eq!(outline(first), [format!("user: {TURN_1}")]);

    // The whole conversation, in order: nothing LangGraph said is dropped.
    assert_eq!(
        outline(sent),
        [
            format!("user: {TURN_1}"),
            format!("assistant calls create_task {call_id}"),
            format!("tool answers {call_id}"),
            "assistant: Created the task.".into(),
            format!("user: {TURN_2}"),
        ],
        "turn 2's input: {:#}",
        turn_2["messages"]
    );
    let call = &sent[1]["toolCalls"][0];
    let arguments: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap())
        .expect("the call's arguments are JSON");
    assert_eq!(arguments, json!({"title": "Login page"}));
    let result: Value = serde_json::from_str(sent[2]["content"].as_str().unwrap())
        .expect("the tool result is the tool's JSON");
    assert_eq!(result, json!({"id": "task-1", "title": "Login page"}));

    // Stable ids: the user's message keeps its id from turn to turn, and
    // every earlier message carries the id LangGraph's checkpoint holds,
    // so the merge finds them all and appends only the new user message.
    assert_eq!(sent[0]["id"], first[0]["id"], "user 1's id is stable");
    let checkpoint = agent.get_json(&format!("/state/{thread}")).await;
    let stored = checkpoint.as_array().unwrap();
    let stored_ids: Vec<&Value> = stored.iter().map(|m| &m["id"]).collect();
    let sent_ids: Vec<&Value> = sent.iter().map(|m| &m["id"]).collect();
    assert_eq!(
        sent_ids[..4],
        stored_ids[..4.min(stored_ids.len())],
        "turn 1 as sent on turn 2 vs the checkpoint: {checkpoint:#}"
    );

    // Turn 1's four messages, user 2 and the reply: no second copy of turn 1.
    let kinds: Vec<&str> = stored.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["human", "ai", "tool", "ai", "human", "ai"],
        "the checkpoint after turn 2: {checkpoint:#}"
    );
    assert_eq!(stored_ids[4], sent_ids[4]);

    stack.stop().await;
    agent.stop().await;
}

fn messages(run_input: &Value) -> &[Value] {
    run_input["messages"]
        .as_array()
        .expect("RunAgentInput.messages")
}

/// One line per message, naming what it is, for readable assertions.
fn outline(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            let text = m["content"].as_str().unwrap_or_default();
            match (m["role"].as_str().unwrap_or("?"), &m["toolCalls"]) {
                ("assistant", Value::Array(calls)) if !calls.is_empty() => {
                    let calls: Vec<String> = calls
                        .iter()
                        .map(|c| {
                            let name = c["function"]["name"].as_str().unwrap_or("?");
                            format!("{name} {}", c["id"].as_str().unwrap_or("<no id>"))
                        })
                        .collect();
                    format!("assistant calls {}", calls.join(", "))
                }
                ("tool", _) => format!(
                    "tool answers {}",
                    m["toolCallId"].as_str().unwrap_or("<no toolCallId>")
                ),
                (role, _) => format!("{role}: {text}"),
            }
        })
        .collect()
}

/// `POST /agui` in front of the relay: the page's declared tools and its
/// message reach the backend, and the AG-UI client gets the backend's run.
#[tokio::test]
async fn agui_clients_reach_the_backend_with_their_frontend_tools() {
    let agent = AgUiServer::start_langgraph().await;
    let stack = Stack::start_with(Options {
        agent_url: Some(agent.url.clone()),
        ..Options::default()
    })
    .await;
    let confirm = json!({"name": "confirm", "description": "Ask the user to confirm",
                         "parameters": {"type": "object", "properties": {}}});
    let response = reqwest::Client::new()
        .post(stack.http_url("/agui"))
        .json(&json!({
            "threadId": "agui-relay-1",
            "runId": "client-run-1",
            "messages": [{"id": "m-1", "role": "user", "content": TURN_1}],
            "tools": [confirm],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("\"type\":\"TOOL_CALL_START\""), "{body}");
    assert!(
        body.trim_end().ends_with(r#""runId":"client-run-1"}"#),
        "{body}"
    );
    let received: Value = agent.get_json("/received").await;
    let input = received.as_array().unwrap().last().unwrap();
    assert_eq!(input["tools"], json!([confirm]), "{input}");
    assert_eq!(
        input["messages"][0]["id"], "m-1",
        "the client's id for its message is kept"
    );
    stack.stop().await;
}

/// A LangGraph node that calls `interrupt()` (ag-ui-langgraph with
/// `emit_interrupt_outcome`) is asked of the chat's tabs as an approval; the
/// answer goes back in `resume`, and the graph goes on with it.
#[tokio::test]
async fn a_langgraph_interrupt_is_an_approval_and_the_graph_gets_the_answer() {
    let agent = AgUiServer::start_langgraph().await;
    let stack = Stack::start_with(Options {
        agent_url: Some(format!("{}approval", agent.url)),
        ..Options::default()
    })
    .await;
    let (mut ws, _) = Ws::open(&stack.ws_url("?session_id=lg-approval")).await;
    ws.say("Clean up the old plan").await;
    let asked = ws.until_awaiting_approval().await;
    assert_eq!(
        asked.approval.as_ref().map(|a| a.description.as_str()),
        Some("Delete the task \"Old plan\"")
    );
    ws.approve(&asked.id, true, None).await;
    let frames = ws.until_terminal().await;
    let Some(ServerFrame::Message { data, .. }) = frames.last() else {
        panic!("{frames:?}")
    };
    assert_eq!(
        data.content, "Deleted.",
        "the graph's reply reaches the chat"
    );
    // LangGraph got the answer under its interrupt's id, and acted on it.
    let received: Value = agent.get_json("/received").await;
    let resumed = received.as_array().unwrap().last().unwrap();
    assert_eq!(
        resumed["resume"][0]["interruptId"],
        json!(asked.id),
        "{resumed}"
    );
    assert_eq!(resumed["resume"][0]["payload"]["approved"], json!(true));
    let state: Value = agent
        .get_json("/state/lg-approval?graph_name=approval")
        .await;
    let last = state.as_array().unwrap().last().unwrap();
    assert_eq!(last["content"], "Deleted.", "{state}");
    stack.stop().await;
}
