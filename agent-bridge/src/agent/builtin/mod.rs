//! The built-in PM agent: deterministic, no model. It reads the request
//! ([`intent`]), runs one board-service tool ([`tools`]) and streams a reply.

pub mod intent;
pub mod tools;
mod words;

use std::time::Duration;

use serde_json::{Value, json};

use self::{
    intent::Intent,
    tools::{BoardTools, ToolError, kind_label, lane_words, priority_label, task_json},
};
use super::{AgentError, Outcome, RunRequest};
use crate::run::RunOutput;

const HELP: &str = "I can manage the board for you. Try:\n\
- \"Create a P1 story for user authentication\" (P0 critical … P3 low; story, bug, task or epic; \"in todo\" picks a lane)\n\
- \"move <task title> to done\"\n\
- \"what is in progress?\"\n\
- \"delete <task title>\"";

/// The agent used when no `AGENT_URL` is set.
pub struct PmAgent {
    tools: BoardTools,
    token_delay: Duration,
}

impl PmAgent {
    pub fn new(tools: BoardTools, token_delay: Duration) -> Self {
        Self { tools, token_delay }
    }

    pub async fn run(
        &self,
        request: &RunRequest,
        out: &mut RunOutput,
    ) -> Result<Outcome, AgentError> {
        let tools = self.tools.with_bearer(request.token.as_deref());
        let reply = match intent::parse(&request.content) {
            Intent::Help(None) => HELP.to_owned(),
            Intent::Help(Some(hint)) => format!("{hint}\n\n{HELP}"),
            intent => act(&tools, intent, request, out).await?,
        };
        self.stream(&reply, out).await;
        Ok(Outcome::Finished)
    }
}

/// The id of the run's one tool call, which is also its board-service
/// `request_id`. For a message the client named, it is derived from the
/// session and the message, so a run of the same message sent again (after
/// a crash cut the first one short) makes the same call, and board-service
/// answers it from its idempotency record: no second task. Otherwise it is
/// fresh, and a retry of the call itself is still a no-op.
fn tool_call_id(request: &RunRequest) -> String {
    let id = match &request.message_id {
        Some(message) => {
            let name = format!("{}\0{message}\0step-0", request.session_id);
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes())
        }
        None => uuid::Uuid::now_v7(),
    };
    format!("call_{}", id.simple())
}

/// Runs the one tool `intent` needs, as the user (`tools` carry their token).
async fn act(
    tools: &BoardTools,
    intent: Intent,
    request: &RunRequest,
    out: &mut RunOutput,
) -> Result<String, AgentError> {
    let board = request.board_id.as_str();
    let call_id = tool_call_id(request);
    match intent {
        Intent::Create {
            title,
            priority,
            kind,
            lane,
        } => {
            let input = json!({"board": board, "title": title, "priority": priority_label(priority),
                                   "kind": kind_label(kind), "lane": lane});
            let call = tools.create_task(board, &lane, &title, priority, kind, call_id.clone());
            let done = tool(out, &call_id, "create_task", input, async {
                call.await.map(|t| task_json(&t))
            })
            .await?;
            Ok(match done {
                Ok(task) => format!(
                    "Created {} \"{}\" with {} priority in {}.",
                    task["kind"].as_str().unwrap_or("task"),
                    task["title"].as_str().unwrap_or(&title),
                    task["priority"].as_str().unwrap_or("medium"),
                    lane_words(task["lane"].as_str().unwrap_or(&lane)),
                ),
                Err(reason) => format!("I could not create \"{title}\": {reason}."),
            })
        }
        Intent::Move { title, lane } => {
            let input = json!({"board": board, "title": title, "lane": lane});
            let work = async {
                let task = tools.find_task(board, &title).await?;
                let moved = tools.move_task(&task.id, &lane, call_id.clone()).await?;
                Ok(task_json(&moved))
            };
            Ok(match tool(out, &call_id, "move_task", input, work).await? {
                Ok(task) => format!(
                    "Moved \"{}\" to {}.",
                    task["title"].as_str().unwrap_or(&title),
                    lane_words(&lane)
                ),
                Err(reason) => format!("I could not move \"{title}\": {reason}."),
            })
        }
        Intent::Delete { title } => {
            let input = json!({"board": board, "title": title});
            let work = async {
                let task = tools.find_task(board, &title).await?;
                tools.delete_task(&task.id, call_id.clone()).await?;
                Ok(json!({"deleted": task_json(&task)}))
            };
            Ok(
                match tool(out, &call_id, "delete_task", input, work).await? {
                    Ok(_) => format!("Deleted \"{title}\"."),
                    Err(reason) => format!("I could not delete \"{title}\": {reason}."),
                },
            )
        }
        Intent::List { lane } => {
            let input = json!({"board": board, "lane": lane});
            let work = async {
                let tasks = tools.tasks(board).await?;
                let tasks: Vec<Value> = tasks
                    .iter()
                    .filter(|t| lane.as_ref().is_none_or(|l| &t.lane_key == l))
                    .map(task_json)
                    .collect();
                Ok(json!({"lane": lane, "tasks": tasks}))
            };
            Ok(
                match tool(out, &call_id, "list_tasks", input, work).await? {
                    Ok(listing) => describe_listing(lane.as_deref(), &listing["tasks"]),
                    Err(reason) => format!("I could not read the board: {reason}."),
                },
            )
        }
        Intent::Help(_) => Ok(HELP.to_owned()),
    }
}

impl PmAgent {
    /// Streams the reply word by word; the last token has `done: true`.
    async fn stream(&self, reply: &str, out: &mut RunOutput) {
        let pieces = split_tokens(reply);
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.into_iter().enumerate() {
            if i > 0 && !self.token_delay.is_zero() {
                tokio::time::sleep(self.token_delay).await;
            }
            out.token(piece, i == last);
        }
    }
}

/// Runs one tool with its `tool_execution` frames. A refusal is the tool's
/// failure and the run goes on; board-service being down ends the run.
async fn tool(
    out: &mut RunOutput,
    id: &str,
    name: &str,
    input: Value,
    work: impl std::future::Future<Output = Result<Value, ToolError>>,
) -> Result<Result<Value, String>, AgentError> {
    out.tool_started(id, name, input).await;
    out.tool_running(id, None).await;
    match work.await {
        Ok(output) => {
            out.tool_completed(id, output.clone()).await;
            Ok(Ok(output))
        }
        Err(ToolError::Refused(reason)) => {
            out.tool_failed(id, reason.clone(), None).await;
            Ok(Err(reason))
        }
        Err(err @ ToolError::Unavailable(_)) => {
            out.tool_failed(id, err.to_string(), None).await;
            Err(AgentError::BoardUnavailable(err.to_string()))
        }
    }
}

fn describe_listing(lane: Option<&str>, tasks: &Value) -> String {
    let tasks = tasks.as_array().map(Vec::as_slice).unwrap_or_default();
    let place = lane.map_or_else(
        || "on the board".to_owned(),
        |l| format!("in {}", lane_words(l)),
    );
    if tasks.is_empty() {
        return format!("Nothing is {place}.");
    }
    let mut text = format!(
        "{} {} {place}:",
        tasks.len(),
        if tasks.len() == 1 {
            "task is"
        } else {
            "tasks are"
        }
    );
    for task in tasks {
        text.push_str(&format!(
            "\n- {} ({}, {}{})",
            task["title"].as_str().unwrap_or(""),
            task["kind"].as_str().unwrap_or(""),
            task["priority"].as_str().unwrap_or(""),
            if lane.is_none() {
                format!(", {}", lane_words(task["lane"].as_str().unwrap_or("")))
            } else {
                String::new()
            },
        ));
    }
    text
}

/// Words with their leading whitespace, so the pieces join back to `text`.
fn split_tokens(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() && in_word {
            pieces.push(&text[start..i]);
            start = i;
            in_word = false;
        } else if !c.is_whitespace() {
            in_word = true;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::split_tokens;

    #[test]
    fn tokens_join_back_to_the_text() {
        let text = "Created story \"Login\"\n- with  two spaces";
        let pieces = split_tokens(text);
        assert_eq!(pieces.concat(), text);
        assert_eq!(pieces[0], "Created");
        assert_eq!(pieces[1], " story");
    }
}
