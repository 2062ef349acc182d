//! What tools and resources answer with: the board frames' own JSON types
//! (`protocol::board_frames`), so MCP clients see tasks as WebSocket
//! clients do.

use protocol::{
    board_frames::{BoardSyncData, LaneFrame, TaskData, lane_frame},
    v1::{Board, BoardSnapshot},
};
use serde::Serialize;

/// The URI scheme of board resources.
pub const BOARD_URI_PREFIX: &str = "boardwire://boards/";

/// The resource URI of the board with this slug.
pub fn board_uri(slug: &str) -> String {
    format!("{BOARD_URI_PREFIX}{slug}")
}

/// The board named by a resource URI (its slug, or an id).
pub fn board_of_uri(uri: &str) -> Option<&str> {
    uri.strip_prefix(BOARD_URI_PREFIX)
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|name| !name.is_empty() && !name.contains('/'))
}

/// A board in `list_boards`.
#[derive(Debug, Serialize)]
pub struct BoardSummary {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub version: u64,
    /// Its resource, for resources/read and resources/subscribe.
    pub uri: String,
    pub lanes: Vec<LaneFrame>,
}

impl From<&Board> for BoardSummary {
    fn from(board: &Board) -> Self {
        Self {
            id: board.id.clone(),
            slug: board.slug.clone(),
            name: board.name.clone(),
            version: board.version,
            uri: board_uri(&board.slug),
            lanes: board.lanes.iter().map(lane_frame).collect(),
        }
    }
}

/// A board with its tasks: `get_board` and the board resource.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotView {
    pub uri: String,
    /// The board version this snapshot reflects.
    pub version: u64,
    /// `lanes` (tasks by lane key, in order), `laneOrder` and `board`.
    #[serde(flatten)]
    pub sync: BoardSyncData,
}

impl From<&BoardSnapshot> for SnapshotView {
    fn from(snapshot: &BoardSnapshot) -> Self {
        let board = snapshot.board.clone().unwrap_or_default();
        Self {
            uri: board_uri(&board.slug),
            version: snapshot.version,
            sync: BoardSyncData::from_parts(&board, &snapshot.tasks),
        }
    }
}

/// The lane keys of a board, for error hints.
pub fn lane_keys(snapshot: &BoardSnapshot) -> Vec<String> {
    snapshot
        .board
        .iter()
        .flat_map(|b| &b.lanes)
        .map(|l| l.key.clone())
        .collect()
}

/// A task after a change.
pub fn task_view(task: &protocol::v1::Task) -> TaskData {
    TaskData::from(task)
}
