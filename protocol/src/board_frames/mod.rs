//! Every WebSocket and SSE frame between browsers and ws-gateway.
//!
//! One closed enum per direction, tagged by `type`: [`ServerFrame`] and
//! [`ClientFrame`]. Conversions from board-service's gRPC messages live in
//! `convert`, so the gateway never builds a frame by hand.

mod client;
mod convert;
mod presence;
mod server;

pub use client::{
    ClientFrame, Command, CreateTask, DeleteTask, EditChanges, EditTask, FrameError, MoveTask,
    UpdateTask,
};
pub use convert::lane_frame;
pub use presence::{PresenceChange, PresenceEntry, PresenceList, PresenceTarget};
pub(crate) use server::nullable;
pub use server::{
    Ack, AckResult, BoardInfo, BoardSyncData, Change, ErrorCode, ErrorFrame, LaneData,
    LaneDeletedData, LaneFrame, LaneTasks, Priority, Progress, ProjectData, ServerFrame,
    SprintData, SprintState, TaskChanges, TaskData, TaskDeletedData, TaskKind, TaskMovedData,
    TaskUpdatedData,
};

#[cfg(test)]
mod tests;
