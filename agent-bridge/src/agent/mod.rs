//! Agent backends: an AG-UI server over HTTP, or the built-in PM agent.
//! Both report through [`AgentOutput`] and end with an [`Outcome`] or an
//! [`AgentError`]; the run driver turns that into the one terminal frame.

pub mod agui;
pub mod approvals;
pub mod builtin;
pub mod conversation;
pub mod output;
mod relay;
pub mod sse;
pub mod transcript;

use protocol::chat_frames::agui::Message;
use uuid::Uuid;

use output::AgentOutput;

/// What a backend gets for one run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub session_id: String,
    pub run_id: Uuid,
    pub board_id: String,
    /// The new user message.
    pub content: String,
    /// The bearer token of the user who sent it; `None` with auth off.
    pub token: Option<String>,
    /// The client's id for the message, the same on every resend of it.
    pub message_id: Option<String>,
    /// The id the message is stored under. Upstream it goes under
    /// `message_id` when the client gave one, else under this.
    pub stored_id: Uuid,
    /// The conversation before the message, oldest first.
    pub history: Vec<Message>,
    /// Tools the client's page declares, for a relayed backend to call.
    pub frontend_tools: Vec<serde_json::Value>,
}

/// How a run that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// The backend itself reported the run as cancelled.
    Cancelled,
}

/// Why a run failed; each maps to an `error` frame code.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the agent backend is unavailable: {0}")]
    Unavailable(String),
    #[error("the agent backend did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("the agent backend sent something that is not AG-UI: {0}")]
    Protocol(String),
    /// The agent reported the failure itself (AG-UI `RUN_ERROR`).
    #[error("{message}")]
    Agent { code: String, message: String },
    #[error("board-service is unavailable: {0}")]
    BoardUnavailable(String),
}

impl AgentError {
    /// The `error.data.code` clients see.
    pub fn code(&self) -> &str {
        match self {
            Self::Unavailable(_) => "agent_unavailable",
            Self::Timeout(_) => "agent_timeout",
            Self::Protocol(_) => "agent_protocol_error",
            Self::Agent { code, .. } => code,
            Self::BoardUnavailable(_) => "board_service_unavailable",
        }
    }
}

/// The backend every run of this bridge uses.
pub enum Backend {
    BuiltIn(builtin::PmAgent),
    AgUi(agui::AgUiClient),
    /// Panics on every run: proves a panic fails only its run.
    #[cfg(test)]
    Panics,
}

impl Backend {
    /// Its name in `chat_runs.backend`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::BuiltIn(_) => "builtin",
            Self::AgUi(_) => "ag-ui",
            #[cfg(test)]
            Self::Panics => "test-panics",
        }
    }

    /// Runs one user message to its end. Dropping the future stops the work:
    /// the HTTP stream is closed, or the built-in agent stops between steps.
    pub async fn run(
        &self,
        request: &RunRequest,
        out: &mut impl AgentOutput,
    ) -> Result<Outcome, AgentError> {
        match self {
            Self::BuiltIn(agent) => agent.run(request, out).await,
            Self::AgUi(client) => client.run(request, out).await,
            #[cfg(test)]
            Self::Panics => panic!("the test backend panics on {:?}", request.content),
        }
    }
}
