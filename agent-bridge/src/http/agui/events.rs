//! A run's chat frames as AG-UI events, for AG-UI frontends: text becomes
//! `TEXT_MESSAGE_START`/`_CONTENT`/`_END`, each tool call
//! `TOOL_CALL_START`/`_ARGS`/`_END`/`_RESULT`, and the terminal frame
//! `RUN_FINISHED` or `RUN_ERROR`. The caller adds `RUN_STARTED` and
//! `STATE_SNAPSHOT`.

use std::collections::HashSet;

use protocol::chat_frames::{
    ServerFrame, ToolExecution, ToolStatus,
    agui::{Event, Outcome},
};
use serde_json::{Value, json};

/// The AG-UI stream of one run, built frame by frame.
pub struct RunEvents {
    thread_id: String,
    /// The client's run id, echoed on every run event.
    run_id: String,
    /// The text message open now, and how many were opened.
    text: Option<String>,
    texts: usize,
    streamed_text: bool,
    started: HashSet<String>,
    ended: HashSet<String>,
    resulted: HashSet<String>,
}

/// How a run's stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Finished,
    Failed,
    /// A tool call waits for approval: the run goes on in the bridge, and
    /// a request with `resume` answers it and follows the rest.
    Interrupted,
}

impl RunEvents {
    pub fn new(thread_id: String, run_id: String) -> Self {
        Self {
            thread_id,
            run_id,
            text: None,
            texts: 0,
            streamed_text: false,
            started: HashSet::new(),
            ended: HashSet::new(),
            resulted: HashSet::new(),
        }
    }

    /// A run resumed after `tool_call_id`'s approval: the client has its
    /// start, arguments and end from the interrupted run already.
    pub fn resumed(&mut self, tool_call_id: &str) {
        self.started.insert(tool_call_id.to_owned());
        self.ended.insert(tool_call_id.to_owned());
    }

    pub fn started(&self) -> Event {
        Event::RunStarted {
            thread_id: self.thread_id.clone(),
            run_id: self.run_id.clone(),
        }
    }

    /// The events for one frame of the run, and the end when it ends it.
    pub fn frame(&mut self, frame: &ServerFrame, out: &mut Vec<Event>) -> Option<End> {
        match frame {
            ServerFrame::Token { data, .. } => {
                if !data.token.is_empty() {
                    let id = self.open_text(out);
                    self.streamed_text = true;
                    out.push(Event::TextMessageContent {
                        message_id: id,
                        delta: data.token.clone(),
                    });
                }
                if data.done {
                    self.close_text(out);
                }
                None
            }
            ServerFrame::ToolExecution { data, .. } => {
                self.close_text(out);
                self.tool(data, out);
                if data.status != ToolStatus::AwaitingApproval {
                    return None;
                }
                let what = data.approval.as_ref().map(|a| a.description.clone());
                out.push(Event::RunFinished {
                    thread_id: self.thread_id.clone(),
                    run_id: self.run_id.clone(),
                    outcome: Some(Outcome::Interrupt {
                        interrupts: vec![json!({
                            "id": data.id,
                            "reason": "tool_approval",
                            "message": what,
                            "toolCallId": data.id,
                            "responseSchema": {
                                "type": "object",
                                "properties": {
                                    "approved": {"type": "boolean"},
                                    "reason": {"type": "string"},
                                },
                                "required": ["approved"],
                            },
                        })],
                    }),
                });
                Some(End::Interrupted)
            }
            ServerFrame::Message { data, .. } => {
                self.close_text(out);
                if !self.streamed_text && !data.content.is_empty() {
                    let id = self.open_text(out);
                    out.push(Event::TextMessageContent {
                        message_id: id,
                        delta: data.content.clone(),
                    });
                    self.close_text(out);
                }
                out.push(Event::RunFinished {
                    thread_id: self.thread_id.clone(),
                    run_id: self.run_id.clone(),
                    outcome: None,
                });
                Some(End::Finished)
            }
            ServerFrame::Error { data, .. } => {
                self.close_text(out);
                out.push(Event::RunError {
                    message: data.message.clone(),
                    code: Some(data.code.clone()),
                });
                Some(End::Failed)
            }
            ServerFrame::Status { data, .. }
                if data.status == protocol::chat_frames::RunStatus::Cancelled =>
            {
                self.close_text(out);
                out.push(Event::RunError {
                    message: data.message.clone(),
                    code: Some("cancelled".into()),
                });
                Some(End::Failed)
            }
            _ => None,
        }
    }

    fn tool(&mut self, tool: &ToolExecution, out: &mut Vec<Event>) {
        if self.started.insert(tool.id.clone()) {
            out.push(Event::ToolCallStart {
                tool_call_id: tool.id.clone(),
                tool_call_name: tool.tool.clone(),
                parent_message_id: None,
            });
        }
        let has_input = !tool.input.is_null();
        let final_input = tool.status != ToolStatus::Started;
        if final_input && self.ended.insert(tool.id.clone()) {
            if has_input {
                out.push(Event::ToolCallArgs {
                    tool_call_id: tool.id.clone(),
                    delta: tool.input.to_string(),
                });
            }
            out.push(Event::ToolCallEnd {
                tool_call_id: tool.id.clone(),
            });
        }
        let result = match tool.status {
            ToolStatus::Completed => tool.output.clone().unwrap_or(Value::Null),
            ToolStatus::Failed => json!({"error": tool.error.clone().unwrap_or_default()}),
            _ => return,
        };
        if self.resulted.insert(tool.id.clone()) {
            out.push(Event::ToolCallResult {
                message_id: format!("{}-result", tool.id),
                tool_call_id: tool.id.clone(),
                content: result.to_string(),
                role: Some("tool".into()),
            });
        }
    }

    fn open_text(&mut self, out: &mut Vec<Event>) -> String {
        if let Some(id) = &self.text {
            return id.clone();
        }
        self.texts += 1;
        let id = format!("{}-text-{}", self.run_id, self.texts);
        out.push(Event::TextMessageStart {
            message_id: id.clone(),
            role: Some("assistant".into()),
        });
        self.text = Some(id.clone());
        id
    }

    fn close_text(&mut self, out: &mut Vec<Event>) {
        if let Some(id) = self.text.take() {
            out.push(Event::TextMessageEnd { message_id: id });
        }
    }
}

#[cfg(test)]
mod tests {
    use protocol::chat_frames::{ErrorData, FinalMessage, TokenData};

    use super::*;

    fn types(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| {
                serde_json::to_value(e).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    fn tool(status: ToolStatus) -> ServerFrame {
        ServerFrame::ToolExecution {
            seq: 0,
            run_id: None,
            data: ToolExecution {
                id: "c1".into(),
                tool: "create_task".into(),
                status,
                input: if status == ToolStatus::Started {
                    Value::Null
                } else {
                    json!({"title": "x"})
                },
                output: (status == ToolStatus::Completed).then(|| json!({"id": "t1"})),
                error: None,
                progress: None,
                start_time: 0,
                end_time: None,
                approval: None,
            },
        }
    }

    fn token(text: &str, done: bool) -> ServerFrame {
        ServerFrame::Token {
            seq: 0,
            run_id: None,
            data: TokenData {
                token: text.into(),
                done,
            },
        }
    }

    #[test]
    fn a_run_with_a_tool_and_text_is_one_well_formed_stream() {
        let mut run = RunEvents::new("t".into(), "r".into());
        let mut out = vec![run.started()];
        for frame in [
            tool(ToolStatus::Started),
            tool(ToolStatus::Running),
            tool(ToolStatus::Completed),
            token("Created ", false),
            token("it.", false),
            token("", true),
        ] {
            assert_eq!(run.frame(&frame, &mut out), None);
        }
        let end = ServerFrame::Message {
            seq: 0,
            run_id: None,
            data: FinalMessage {
                content: "Created it.".into(),
                artifacts: vec![],
            },
        };
        assert_eq!(run.frame(&end, &mut out), Some(End::Finished));
        assert_eq!(
            types(&out),
            [
                "RUN_STARTED",
                "TOOL_CALL_START",
                "TOOL_CALL_ARGS",
                "TOOL_CALL_END",
                "TOOL_CALL_RESULT",
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
                "RUN_FINISHED",
            ]
        );
    }

    #[test]
    fn an_unstreamed_answer_is_sent_whole_and_an_error_closes_open_text() {
        let mut run = RunEvents::new("t".into(), "r".into());
        let mut out = Vec::new();
        let end = ServerFrame::Message {
            seq: 0,
            run_id: None,
            data: FinalMessage {
                content: "Hi".into(),
                artifacts: vec![],
            },
        };
        run.frame(&end, &mut out);
        assert_eq!(
            types(&out),
            [
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
                "RUN_FINISHED"
            ]
        );
        let mut run = RunEvents::new("t".into(), "r".into());
        let mut out = Vec::new();
        run.frame(&token("half", false), &mut out);
        let error = ServerFrame::Error {
            seq: 0,
            run_id: None,
            data: ErrorData::new("interrupted", "cut"),
        };
        assert_eq!(run.frame(&error, &mut out), Some(End::Failed));
        assert_eq!(
            types(&out),
            [
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
                "RUN_ERROR"
            ]
        );
    }
}
