//! Text rules checked before a command reaches board-service: no NUL or
//! other control characters in any text field (newlines and tabs allowed
//! in descriptions). board-service checks them too; answering here spares
//! the call and names the field as the client spelled it.

use protocol::board_frames::ClientFrame;

use crate::error::Error;

/// The first text field of `frame` that breaks the rules, named in the error.
pub fn check_text(frame: &ClientFrame) -> Result<(), Error> {
    let mut fields: Vec<(&str, &str, bool)> = Vec::new();
    match frame {
        ClientFrame::Subscribe { board_id, .. } | ClientFrame::Unsubscribe { board_id, .. } => {
            line(&mut fields, "boardId", Some(board_id));
        }
        ClientFrame::TaskCreate(c) => {
            line(&mut fields, "boardId", Some(&c.board_id));
            line(&mut fields, "data.title", Some(&c.data.title));
            line(&mut fields, "data.lane", c.data.lane.as_ref());
            line(&mut fields, "data.laneId", c.data.lane_id.as_ref());
            line(&mut fields, "data.assignee", c.data.assignee.as_ref());
            if let Some(description) = &c.data.description {
                fields.push(("data.description", description, true));
            }
            for label in c.data.labels.iter().flatten() {
                fields.push(("data.labels", label, false));
            }
        }
        ClientFrame::TaskUpdate(c) => {
            let changes = &c.data.changes;
            line(&mut fields, "boardId", Some(&c.board_id));
            line(&mut fields, "data.changes.lane", changes.lane.as_ref());
            line(&mut fields, "data.changes.laneId", changes.lane_id.as_ref());
            line(&mut fields, "data.before", c.data.before.as_ref());
            line(&mut fields, "data.after", c.data.after.as_ref());
            let changes = &changes.fields;
            line(&mut fields, "data.changes.title", changes.title.as_ref());
            line(
                &mut fields,
                "data.changes.assignee",
                changes.assignee.as_ref(),
            );
            if let Some(description) = &changes.description {
                fields.push(("data.changes.description", description, true));
            }
            for label in changes.labels.iter().flatten() {
                fields.push(("data.changes.labels", label, false));
            }
        }
        ClientFrame::TaskMove(c) => {
            line(&mut fields, "boardId", Some(&c.board_id));
            line(&mut fields, "data.toLane", c.data.to_lane.as_ref());
            line(&mut fields, "data.toLaneId", c.data.to_lane_id.as_ref());
            line(&mut fields, "data.before", c.data.before.as_ref());
            line(&mut fields, "data.after", c.data.after.as_ref());
        }
        ClientFrame::TaskDelete(c) => line(&mut fields, "boardId", Some(&c.board_id)),
        ClientFrame::Presence {
            board_id, channel, ..
        } => {
            line(&mut fields, "boardId", board_id.as_ref());
            line(&mut fields, "channel", channel.as_ref());
        }
        // Checked by `ClientFrame::check` (names) and board-service (data).
        ClientFrame::SubscribeChannel(_)
        | ClientFrame::UnsubscribeChannel(_)
        | ClientFrame::Publish(_)
        | ClientFrame::Ping {}
        | ClientFrame::Auth { .. } => {}
    }
    for (name, value, multiline) in fields {
        // The same rule as board-service's, worded the same way.
        let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
        if let Some(c) = value.chars().find(|&c| c.is_control() && !allowed(c)) {
            let message = format!(
                "{name} must not contain control characters (found U+{:04X})",
                c as u32
            );
            return Err(Error::InvalidArgument(message));
        }
    }
    Ok(())
}

/// Queues a single-line field when the frame has it.
fn line<'a>(
    fields: &mut Vec<(&'static str, &'a str, bool)>,
    name: &'static str,
    value: Option<&'a String>,
) {
    if let Some(value) = value {
        fields.push((name, value.as_str(), false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ClientFrame {
        ClientFrame::parse(text).expect("frame parses")
    }

    fn invalid_argument(frame: &ClientFrame) -> String {
        match check_text(frame) {
            Err(Error::InvalidArgument(message)) => message,
            other => panic!("expected invalid_argument, got {other:?}"),
        }
    }

    #[test]
    fn names_the_field_with_a_control_character() {
        let frame = parse(
            r#"{"type":"task.create","id":"a","boardId":"b","data":{"title":"x","description":"a\u0000b"}}"#,
        );
        let message = invalid_argument(&frame);
        assert!(message.starts_with("data.description"), "{message}");
        let frame = parse(
            r#"{"type":"task.update","id":"a","boardId":"b","data":{"id":"t","changes":{"title":"\u001b[2J"}}}"#,
        );
        assert!(invalid_argument(&frame).starts_with("data.changes.title"));
    }

    #[test]
    fn lets_newlines_and_tabs_into_descriptions_only() {
        let ok = parse(
            r#"{"type":"task.create","id":"a","boardId":"b","data":{"title":"x","description":"one\n\ttwo"}}"#,
        );
        assert!(check_text(&ok).is_ok());
        let bad = parse(r#"{"type":"task.create","id":"a","boardId":"b","data":{"title":"x\ny"}}"#);
        assert!(invalid_argument(&bad).starts_with("data.title"));
    }
}
