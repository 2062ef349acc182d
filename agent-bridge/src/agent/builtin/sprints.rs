//! The sprint requests: start the planned sprint, complete the active one,
//! put a task in the sprint, and what is left in it. Each is one tool call
//! with its `tool_execution` progress, like the other requests.

use protocol::v1::SprintState;
use serde_json::{Value, json};

use super::{
    Ask, tool,
    tools::{BoardTools, ToolError, lane_words, sprint_json, task_json},
};
use crate::agent::{AgentError, approvals::Approvals, output::AgentOutput};

/// One sprint request's context: the board, the caller's tools and the call id.
pub(super) struct Call<'a> {
    pub tools: &'a BoardTools,
    pub approvals: &'a Approvals,
    pub board: &'a str,
    pub id: &'a str,
}

impl Call<'_> {
    fn ask(&self, what: impl Into<String>) -> Ask<'_> {
        Ask {
            approvals: self.approvals,
            what: what.into(),
        }
    }
}

/// Starts the earliest planned sprint; refused while one is active.
pub(super) async fn start(
    call: Call<'_>,
    out: &mut impl AgentOutput,
) -> Result<String, AgentError> {
    let Call { tools, board, .. } = call;
    let work = async {
        let sprints = tools.sprints(board).await?;
        if let Some(active) = sprints.iter().find(|s| s.state() == SprintState::Active) {
            return Err(ToolError::Refused(format!(
                "sprint \"{}\" is still active; complete it first",
                active.name
            )));
        }
        // Listed by start time: the first planned one is the next.
        let planned: Vec<_> = sprints
            .iter()
            .filter(|s| s.state() == SprintState::Planned)
            .collect();
        let Some(next) = planned.first() else {
            return Err(ToolError::Refused(
                "the board has no planned sprint; plan one first".into(),
            ));
        };
        let started = tools.start_sprint(&next.id, call.id.to_owned()).await?;
        Ok(json!({"sprint": sprint_json(&started), "stillPlanned": planned.len() - 1}))
    };
    let asked = call.ask("Start the board's next planned sprint");
    let input = json!({"board": board});
    Ok(
        match tool(out, call.id, "start_sprint", input, asked, work).await? {
            Ok(done) => {
                let more = done["stillPlanned"].as_u64().unwrap_or(0);
                format!(
                    "Started sprint \"{}\"{}.",
                    done["sprint"]["name"].as_str().unwrap_or(""),
                    match more {
                        0 => String::new(),
                        1 => " (the earliest planned; one more is planned after it)".into(),
                        n => format!(" (the earliest planned; {n} more are planned after it)"),
                    }
                )
            }
            Err(reason) => format!("I could not start the sprint: {reason}."),
        },
    )
}

/// Completes the active sprint; its unfinished tasks go back to the backlog.
pub(super) async fn complete(
    call: Call<'_>,
    out: &mut impl AgentOutput,
) -> Result<String, AgentError> {
    let Call { tools, board, .. } = call;
    let work = async {
        let active = tools.active_sprint(board).await?;
        let completed = tools
            .complete_sprint(&active.id, call.id.to_owned())
            .await?;
        let moved: Vec<Value> = completed.moved_tasks.iter().map(task_json).collect();
        Ok(json!({
            "sprint": completed.sprint.as_ref().map(sprint_json),
            "movedTasks": moved,
        }))
    };
    let asked = call.ask("Complete the board's active sprint (unfinished tasks go to the backlog)");
    let input = json!({"board": board});
    Ok(
        match tool(out, call.id, "complete_sprint", input, asked, work).await? {
            Ok(done) => {
                let name = done["sprint"]["name"].as_str().unwrap_or("");
                match done["movedTasks"].as_array().map_or(0, Vec::len) {
                    0 => format!("Completed sprint \"{name}\": every task in it was done."),
                    1 => format!(
                        "Completed sprint \"{name}\"; its one unfinished task went back to the \
                         backlog."
                    ),
                    n => format!(
                        "Completed sprint \"{name}\"; its {n} unfinished tasks went back to the \
                         backlog."
                    ),
                }
            }
            Err(reason) => format!("I could not complete the sprint: {reason}."),
        },
    )
}

/// Puts the task `words` name in the active sprint, else the planned one.
pub(super) async fn add(
    call: Call<'_>,
    words: &str,
    out: &mut impl AgentOutput,
) -> Result<String, AgentError> {
    let Call { tools, board, .. } = call;
    let work = async {
        let sprint = tools.current_sprint(board).await?;
        let task = tools.find_task_by_words(board, words).await?;
        let planned = tools
            .plan_task(&task.id, &sprint.id, call.id.to_owned())
            .await?;
        Ok(json!({"sprint": sprint_json(&sprint), "task": task_json(&planned)}))
    };
    let asked = call.ask(format!("Put \"{words}\" in the sprint"));
    let input = json!({"board": board, "title": words, "sprint": "current"});
    Ok(
        match tool(out, call.id, "update_task", input, asked, work).await? {
            Ok(done) => format!(
                "Added \"{}\" to sprint \"{}\".",
                done["task"]["title"].as_str().unwrap_or(words),
                done["sprint"]["name"].as_str().unwrap_or("")
            ),
            Err(reason) => format!("I could not add \"{words}\" to the sprint: {reason}."),
        },
    )
}

/// The active sprint's tasks that are not done.
pub(super) async fn left(call: Call<'_>, out: &mut impl AgentOutput) -> Result<String, AgentError> {
    let Call { tools, board, .. } = call;
    let work = async {
        let sprint = tools.active_sprint(board).await?;
        let tasks: Vec<Value> = tools
            .tasks(board)
            .await?
            .iter()
            .filter(|t| t.sprint_id == sprint.id && t.lane_key != "done")
            .map(task_json)
            .collect();
        Ok(json!({"sprint": sprint_json(&sprint), "tasks": tasks}))
    };
    let asked = call.ask("Read the unfinished tasks of the active sprint");
    let input = json!({"board": board, "sprint": "active", "unfinished": true});
    Ok(
        match tool(out, call.id, "list_tasks", input, asked, work).await? {
            Ok(done) => describe_left(&done),
            Err(reason) => format!("I could not read the sprint: {reason}."),
        },
    )
}

fn describe_left(done: &Value) -> String {
    let name = done["sprint"]["name"].as_str().unwrap_or("");
    let tasks = done["tasks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if tasks.is_empty() {
        return format!("Nothing is left in sprint \"{name}\": every task in it is done.");
    }
    let mut text = format!(
        "{} {} left in sprint \"{name}\":",
        tasks.len(),
        if tasks.len() == 1 {
            "task is"
        } else {
            "tasks are"
        }
    );
    for task in tasks {
        text.push_str(&format!(
            "\n- {} ({}, {})",
            task["title"].as_str().unwrap_or(""),
            task["kind"].as_str().unwrap_or(""),
            lane_words(task["lane"].as_str().unwrap_or("")),
        ));
    }
    text
}
