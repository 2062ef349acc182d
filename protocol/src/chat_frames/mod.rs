//! Frames between the PM chat UI and agent-bridge, and the AG-UI events
//! agent-bridge reads from an agent backend.
//!
//! - [`client`]: what a chat socket sends ([`ClientFrame`]).
//! - [`server`]: what agent-bridge sends ([`ServerFrame`]); every frame but
//!   `pong` carries the session's sequence number `seq`.
//! - [`agui`]: AG-UI (`RunAgentInput` and the SSE events of a run). They live
//!   here rather than in agent-bridge because they are SSE frames on the wire,
//!   and test servers and benchmarks build them from the same types.

pub mod agui;
pub mod client;
pub mod server;

pub use client::{ApprovalData, CancelData, ClientFrame, HistoryEntry, MessageData};
pub use server::{
    Approval, Artifact, ErrorData, FinalMessage, RunStatus, ServerFrame, StatusData, TokenData,
    ToolExecution, ToolStatus,
};
