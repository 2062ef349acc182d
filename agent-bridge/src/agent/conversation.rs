//! The conversation a run continues, as AG-UI messages: stored chat
//! messages, with each relayed run's own messages (tool calls, results and
//! the backend's ids) in place of its plain reply, starting from the latest
//! snapshot the backend sent.

use protocol::chat_frames::agui::{Message, Role};

use crate::store::ConversationRow;

/// The AG-UI messages for `rows` (oldest first).
pub fn from_rows(rows: &[ConversationRow]) -> Vec<Message> {
    let snapshot = rows.iter().enumerate().rev().find_map(|(i, row)| {
        let messages = row.agui_messages.as_ref().filter(|_| row.agui_snapshot)?;
        match serde_json::from_value::<Vec<Message>>(messages.clone()) {
            Ok(messages) => Some((i, messages)),
            Err(err) => {
                tracing::warn!(message = %row.id, error = %err, "ignoring a stored snapshot");
                None
            }
        }
    });
    let (mut out, rest) = match snapshot {
        Some((i, messages)) => (messages, &rows[i + 1..]),
        None => (Vec::new(), rows),
    };
    for row in rest {
        match row.role.as_str() {
            "user" => out.push(Message::text(upstream_id(row), Role::User, &row.content)),
            "assistant" => out.extend(run_messages(row)),
            _ => {}
        }
    }
    out
}

/// A user message goes upstream under its client's id when it has one (an
/// AG-UI frontend's own id for it), else under the id it is stored under.
fn upstream_id(row: &ConversationRow) -> String {
    row.client_id.clone().unwrap_or_else(|| row.id.to_string())
}

/// A reply's messages: its run's transcript, or the stored text.
fn run_messages(row: &ConversationRow) -> Vec<Message> {
    let recorded = row
        .agui_messages
        .as_ref()
        .filter(|_| !row.agui_snapshot)
        .and_then(|m| serde_json::from_value::<Vec<Message>>(m.clone()).ok())
        .filter(|m| !m.is_empty());
    recorded.unwrap_or_else(|| {
        vec![Message::text(
            row.id.to_string(),
            Role::Assistant,
            &row.content,
        )]
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    fn row(
        role: &str,
        content: &str,
        agui: Option<serde_json::Value>,
        snapshot: bool,
    ) -> ConversationRow {
        ConversationRow {
            id: Uuid::now_v7(),
            client_id: None,
            role: role.into(),
            content: content.into(),
            agui_messages: agui,
            agui_snapshot: snapshot,
        }
    }

    #[test]
    fn relayed_runs_bring_their_tool_calls_and_ids() {
        let rows = [
            row("user", "make a task", None, false),
            row(
                "assistant",
                "Done.",
                Some(json!([
                    {"id":"a1","role":"assistant","toolCalls":[{"id":"c1","type":"function","function":{"name":"create_task","arguments":"{}"}}]},
                    {"id":"r1","role":"tool","toolCallId":"c1","content":"{}"},
                    {"id":"a2","role":"assistant","content":"Done."},
                ])),
                false,
            ),
            row("user", "thanks", None, false),
            row("assistant", "You're welcome.", None, false),
        ];
        let messages = from_rows(&rows);
        let ids: Vec<_> = messages.iter().map(|m| m.id.clone()).collect();
        assert_eq!(
            ids,
            [
                rows[0].id.to_string(),
                "a1".into(),
                "r1".into(),
                "a2".into(),
                rows[2].id.to_string(),
                rows[3].id.to_string()
            ]
        );
        assert_eq!(messages[1].tool_calls[0].function.name, "create_task");
        assert_eq!(messages[2].tool_call_id.as_deref(), Some("c1"));
    }

    #[test]
    fn the_latest_snapshot_replaces_everything_before_it() {
        let rows = [
            row("user", "one", None, false),
            row(
                "assistant",
                "1",
                Some(
                    json!([{"id":"u-1","role":"user","content":"one"},{"id":"lg-1","role":"assistant","content":"1"}]),
                ),
                true,
            ),
            row("user", "two", None, false),
        ];
        let ids: Vec<_> = from_rows(&rows).into_iter().map(|m| m.id).collect();
        assert_eq!(
            ids,
            ["u-1".to_owned(), "lg-1".into(), rows[2].id.to_string()]
        );
    }
}
