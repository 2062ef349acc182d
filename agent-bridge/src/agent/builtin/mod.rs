//! The built-in PM agent: deterministic, no model. It reads the request
//! ([`intent`]), runs one board-service tool ([`tools`]) and streams a reply.

pub mod intent;
mod sprints;
pub mod tools;
mod words;

use std::time::Duration;

use serde_json::{Value, json};

use self::{
    intent::Intent,
    tools::{BoardTools, ToolError, kind_label, lane_words, priority_label, task_json},
};
use super::{AgentError, Outcome, RunRequest, approvals::Approvals};
use crate::agent::output::AgentOutput;

const HELP: &str = "I can manage the board for you. Try:\n\
- \"Create a P1 story for user authentication\" (P0 critical … P3 low; story, bug, task or epic; \"in todo\" picks a lane)\n\
- \"move <task title> to done\"\n\
- \"what is in progress?\"\n\
- \"delete <task title>\"\n\
- \"start the sprint\", \"complete the sprint\", \"add the login story to the sprint\", \
\"what is left in the sprint?\"";

/// The agent used when no `AGENT_URL` is set.
pub struct PmAgent {
    tools: BoardTools,
    token_delay: Duration,
    approvals: Approvals,
}

impl PmAgent {
    pub fn new(tools: BoardTools, token_delay: Duration) -> Self {
        Self {
            tools,
            token_delay,
            approvals: Approvals::default(),
        }
    }

    /// Tool calls the policy names wait for a person's yes.
    pub fn with_approvals(mut self, approvals: Approvals) -> Self {
        self.approvals = approvals;
        self
    }

    pub async fn run(
        &self,
        request: &RunRequest,
        out: &mut impl AgentOutput,
    ) -> Result<Outcome, AgentError> {
        let tools = self.tools.with_bearer(request.token.as_deref());
        let reply = match intent::parse(&request.content) {
            Intent::Help(None) => HELP.to_owned(),
            Intent::Help(Some(hint)) => format!("{hint}\n\n{HELP}"),
            intent => act(&tools, &self.approvals, intent, request, out).await?,
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
    approvals: &Approvals,
    intent: Intent,
    request: &RunRequest,
    out: &mut impl AgentOutput,
) -> Result<String, AgentError> {
    let board = request.board_id.as_str();
    let call_id = tool_call_id(request);
    let sprint_call = sprints::Call {
        tools,
        approvals,
        board,
        id: &call_id,
    };
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
            let asked = Ask {
                approvals,
                what: format!(
                    "Create {} \"{title}\" with {} priority in {}",
                    kind_label(kind),
                    priority_label(priority),
                    lane_words(&lane)
                ),
            };
            let done = tool(out, &call_id, "create_task", input, asked, async {
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
            let asked = Ask {
                approvals,
                what: format!("Move \"{title}\" to {}", lane_words(&lane)),
            };
            Ok(
                match tool(out, &call_id, "move_task", input, asked, work).await? {
                    Ok(task) => format!(
                        "Moved \"{}\" to {}.",
                        task["title"].as_str().unwrap_or(&title),
                        lane_words(&lane)
                    ),
                    Err(reason) => format!("I could not move \"{title}\": {reason}."),
                },
            )
        }
        Intent::Delete { title } => {
            // Found first, so the person asked sees which task goes, and a
            // task that is not there fails without asking anyone.
            let input = json!({"board": board, "title": title});
            out.tool_started(&call_id, "delete_task", input).await;
            let task = match tools.find_task(board, &title).await {
                Ok(task) => task,
                Err(err) => {
                    let reason = failed(out, &call_id, err).await?;
                    return Ok(format!("I could not delete \"{title}\": {reason}."));
                }
            };
            let what = format!(
                "Delete {} \"{}\" from {}",
                kind_label(task.kind()),
                task.title,
                lane_words(&task.lane_key)
            );
            if let Some(refusal) =
                approve(out, &call_id, "delete_task", Ask { approvals, what }).await
            {
                return Ok(format!("I did not delete \"{}\": {refusal}.", task.title));
            }
            out.tool_running(&call_id, None).await;
            Ok(match tools.delete_task(&task.id, call_id.clone()).await {
                Ok(()) => {
                    out.tool_completed(&call_id, json!({"deleted": task_json(&task)}))
                        .await;
                    format!("Deleted \"{}\".", task.title)
                }
                Err(err) => {
                    let reason = failed(out, &call_id, err).await?;
                    format!("I could not delete \"{title}\": {reason}.")
                }
            })
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
            let asked = Ask {
                approvals,
                what: format!(
                    "Read the tasks {}",
                    lane.as_deref()
                        .map_or("on the board".into(), |l| format!("in {}", lane_words(l)))
                ),
            };
            Ok(
                match tool(out, &call_id, "list_tasks", input, asked, work).await? {
                    Ok(listing) => describe_listing(lane.as_deref(), &listing["tasks"]),
                    Err(reason) => format!("I could not read the board: {reason}."),
                },
            )
        }
        Intent::StartSprint => sprints::start(sprint_call, out).await,
        Intent::CompleteSprint => sprints::complete(sprint_call, out).await,
        Intent::AddToSprint { title } => sprints::add(sprint_call, &title, out).await,
        Intent::SprintLeft => sprints::left(sprint_call, out).await,
        Intent::Help(_) => Ok(HELP.to_owned()),
    }
}

impl PmAgent {
    /// Streams the reply word by word; the last token has `done: true`.
    async fn stream(&self, reply: &str, out: &mut impl AgentOutput) {
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

/// A tool call, in words, for the approval policy.
struct Ask<'a> {
    approvals: &'a Approvals,
    what: String,
}

/// Asks for approval when the policy wants it; `Some(why)` when the answer
/// was no (or none came), after failing the call with it.
async fn approve(out: &mut impl AgentOutput, id: &str, name: &str, ask: Ask<'_>) -> Option<String> {
    if !ask.approvals.needed(name, 1) {
        return None;
    }
    let decision = out
        .await_approval(id, name, ask.what, ask.approvals.timeout)
        .await;
    if decision.approved {
        return None;
    }
    let why = match (decision.by.as_str(), &decision.reason) {
        ("timeout", _) => "nobody approved it in time".to_owned(),
        (by, Some(reason)) => format!("{by} rejected it ({reason})"),
        (by, None) => format!("{by} rejected it"),
    };
    out.tool_failed(id, why.clone(), None).await;
    Some(why)
}

/// Runs one tool with its `tool_execution` frames, after its approval when
/// the policy asks for one. A refusal (board-service's or a person's) is
/// the tool's failure and the run goes on; board-service being down ends
/// the run.
async fn tool(
    out: &mut impl AgentOutput,
    id: &str,
    name: &str,
    input: Value,
    ask: Ask<'_>,
    work: impl std::future::Future<Output = Result<Value, ToolError>>,
) -> Result<Result<Value, String>, AgentError> {
    out.tool_started(id, name, input).await;
    if let Some(refusal) = approve(out, id, name, ask).await {
        return Ok(Err(refusal));
    }
    out.tool_running(id, None).await;
    match work.await {
        Ok(output) => {
            out.tool_completed(id, output.clone()).await;
            Ok(Ok(output))
        }
        Err(err) => failed(out, id, err).await.map(Err),
    }
}

/// Fails the call: a refusal gives its reason, board-service down ends the run.
async fn failed(
    out: &mut impl AgentOutput,
    id: &str,
    err: ToolError,
) -> Result<String, AgentError> {
    match err {
        ToolError::Refused(reason) => {
            out.tool_failed(id, reason.clone(), None).await;
            Ok(reason)
        }
        err @ ToolError::Unavailable(_) => {
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
    use std::time::Duration;

    use serde_json::Value;

    use super::{PmAgent, split_tokens};
    use crate::agent::{
        AgentError, RunRequest,
        builtin::tools::BoardTools,
        output::{AgentOutput, Decision},
        transcript::TranscriptBuilder,
    };

    /// Everything an agent reports, in memory: no session, no store.
    #[derive(Default)]
    struct Recorded {
        text: String,
        tools: Vec<(String, &'static str)>,
        transcript: TranscriptBuilder,
    }

    impl AgentOutput for Recorded {
        fn transcript(&mut self) -> &mut TranscriptBuilder {
            &mut self.transcript
        }
        fn token(&mut self, token: &str, _done: bool) {
            self.text.push_str(token);
        }
        fn text(&self) -> &str {
            &self.text
        }
        async fn tool_started(&mut self, _id: &str, tool: &str, _input: Value) {
            self.tools.push((tool.to_owned(), "started"));
        }
        async fn tool_running(&mut self, _id: &str, _input: Option<Value>) {}
        async fn tool_completed(&mut self, _id: &str, _output: Value) {
            self.tools.push((String::new(), "completed"));
        }
        async fn tool_failed(&mut self, _id: &str, _error: String, _output: Option<Value>) {
            self.tools.push((String::new(), "failed"));
        }
        async fn await_approval(&mut self, _: &str, _: &str, _: String, _: Duration) -> Decision {
            Decision {
                approved: false,
                by: "test".into(),
                reason: None,
            }
        }
        async fn fail_unfinished_tools(&mut self, _reason: &str) {}
    }

    fn request(content: &str) -> RunRequest {
        RunRequest {
            session_id: "s".into(),
            run_id: uuid::Uuid::now_v7(),
            board_id: "default".into(),
            content: content.into(),
            token: None,
            message_id: None,
            stored_id: uuid::Uuid::now_v7(),
            history: Vec::new(),
            frontend_tools: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_tool_call_board_service_cannot_answer_is_failed_and_ends_the_run_as_unavailable() {
        // Nothing listens on port 1: the call fails fast as unavailable.
        let tools = BoardTools::new("http://127.0.0.1:1", Duration::from_secs(2)).unwrap();
        let agent = PmAgent::new(tools, Duration::ZERO);
        let mut out = Recorded::default();
        let outcome = agent
            .run(
                &request("Create a P1 story for user authentication"),
                &mut out,
            )
            .await;
        assert!(
            matches!(outcome, Err(AgentError::BoardUnavailable(_))),
            "{outcome:?}"
        );
        assert_eq!(
            out.tools,
            [
                ("create_task".to_owned(), "started"),
                (String::new(), "failed")
            ]
        );
    }

    #[test]
    fn tokens_join_back_to_the_text() {
        let text = "Created story \"Login\"\n- with  two spaces";
        let pieces = split_tokens(text);
        assert_eq!(pieces.concat(), text);
        assert_eq!(pieces[0], "Created");
        assert_eq!(pieces[1], " story");
    }
}
