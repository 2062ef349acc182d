//! A board frame encoded once and shared: the unit the hub fans out, the
//! outbox queues and the socket writes. A leaf module, so the hub, the
//! client and the outbox all depend on it and not on each other.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use protocol::board_frames::ServerFrame;

/// A board frame encoded once, shared by every client that gets it. One
/// reference count for the whole frame: fan-out clones it once per client.
#[derive(Debug, Clone)]
pub struct Frame(Arc<FrameData>);

#[derive(Debug)]
pub struct FrameData {
    pub board_id: Arc<str>,
    pub version: u64,
    /// Commit time in ms, for the commit-to-send latency.
    pub ts: i64,
    pub kind: &'static str,
    pub json: Utf8Bytes,
}

impl std::ops::Deref for Frame {
    type Target = FrameData;

    fn deref(&self) -> &FrameData {
        &self.0
    }
}

impl Frame {
    pub fn encode(board_id: &Arc<str>, version: u64, frame: &ServerFrame) -> Self {
        let json = frame.to_json();
        let (kind, ts) = (frame.kind(), frame.committed_ms().unwrap_or(0));
        Self(Arc::new(FrameData {
            board_id: board_id.clone(),
            version,
            ts,
            kind,
            json: json.into(),
        }))
    }
}

/// How a client's own frames (connected, acks, errors, pongs) are spelled:
/// Boardwire's frames, or seed 004's on `/ws/agents`. Shared frames
/// (board changes, publications) are the same for both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dialect {
    #[default]
    Boardwire,
    Seed004,
}

impl Dialect {
    pub fn encode(self, frame: &ServerFrame) -> String {
        match self {
            Self::Seed004 => {
                protocol::channel_frames::seed004::encode(frame).unwrap_or_else(|| frame.to_json())
            }
            Self::Boardwire => frame.to_json(),
        }
    }
}
