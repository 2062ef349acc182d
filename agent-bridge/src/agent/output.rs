//! What an agent reports a run's progress to. The run driver implements it
//! over a live session and the store (`run::RunOutput`); an agent needs
//! nothing else, so it can be driven in a test with an in-memory sink.

use std::{future::Future, time::Duration};

use serde_json::Value;

use super::transcript::TranscriptBuilder;

/// A person's answer to a tool call awaiting approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub approved: bool,
    /// The answering token's `sub` (`anonymous` with auth off), or `timeout`.
    pub by: String,
    pub reason: Option<String>,
}

/// The sink of one run, as an agent sees it.
pub trait AgentOutput: Send {
    /// The AG-UI conversation this run adds, kept by the sink so a run cut
    /// short still stores what it got to.
    fn transcript(&mut self) -> &mut TranscriptBuilder;

    /// Streams a piece of assistant text.
    fn token(&mut self, token: &str, done: bool);

    /// The assistant text streamed so far.
    fn text(&self) -> &str;

    fn tool_started(
        &mut self,
        id: &str,
        tool: &str,
        input: Value,
    ) -> impl Future<Output = ()> + Send;

    /// The call is executing; `input` replaces the input when it is final now.
    fn tool_running(&mut self, id: &str, input: Option<Value>) -> impl Future<Output = ()> + Send;

    fn tool_completed(&mut self, id: &str, output: Value) -> impl Future<Output = ()> + Send;

    fn tool_failed(
        &mut self,
        id: &str,
        error: String,
        output: Option<Value>,
    ) -> impl Future<Output = ()> + Send;

    /// Pauses the call until a person answers or `timeout` passes (a
    /// rejection), showing them `description`.
    fn await_approval(
        &mut self,
        id: &str,
        tool: &str,
        description: String,
        timeout: Duration,
    ) -> impl Future<Output = Decision> + Send;

    /// Fails every call without a result (the run ended or was cancelled).
    fn fail_unfinished_tools(&mut self, reason: &str) -> impl Future<Output = ()> + Send;
}
