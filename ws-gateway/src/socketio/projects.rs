//! Project rooms: `join:project` with a project's id or slug subscribes the
//! socket to each of its boards the user may read, and a board that joins
//! or leaves the project later (its `project.updated`) is joined or left
//! too. A write that names the project and no board goes to the project's
//! first board, or to the one holding the task it names.

use std::{sync::Arc, time::Duration};

use protocol::{
    board_frames::{ClientFrame, ErrorCode},
    socketio::{AckPayload, JoinPayload, TaskPayload},
    v1::{GetProjectRequest, ProjectView},
};
use socketioxide::extract::AckSender;

use super::conn::{Conn, Group, ProjectRoom, Waiting};
use crate::{state::Shared, upstream::as_user};

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The project `room` names, with the boards the user may read; `None`
/// when it names no project (then it may be a board).
pub(super) async fn find(
    shared: &Shared,
    conn: &Conn,
    room: &str,
) -> Result<Option<ProjectView>, AckPayload> {
    let mut api = shared.hub.upstream().client();
    let request = as_user(
        conn.token.as_deref(),
        GetProjectRequest {
            project_id: room.to_owned(),
        },
    );
    match tokio::time::timeout(CALL_TIMEOUT, api.get_project(request)).await {
        Ok(Ok(view)) => Ok(Some(view.into_inner())),
        Ok(Err(status))
            if matches!(
                status.code(),
                tonic::Code::NotFound | tonic::Code::InvalidArgument
            ) =>
        {
            Ok(None)
        }
        Ok(Err(status)) => {
            let error = protocol::status::classify(&status);
            Err(AckPayload::refused(error.code, error.message))
        }
        Err(_) => Err(AckPayload::refused(
            ErrorCode::Unavailable,
            "board-service did not answer the project look-up in time; retry",
        )),
    }
}

/// Joins every readable board of `view` as `room`, each resuming from the
/// version the join's `versions` or the connect's `auth.versions` give for
/// it; `ack` answers once every board has.
pub(super) async fn join(
    conn: &Conn,
    room: &str,
    view: ProjectView,
    payload: &JoinPayload,
    ack: AckSender,
) {
    let project_id = view.project.map(|p| p.id).unwrap_or_default();
    if payload.since_version().is_some() {
        let message = "sinceVersion resumes one board; resume a project's boards with \
                       versions: {boardId: n}";
        let _ = ack.send(&AckPayload::refused(ErrorCode::InvalidFrame, message));
        return;
    }
    let boards: Vec<String> = view.boards.iter().map(|b| b.id.clone()).collect();
    conn.set_project(
        room,
        ProjectRoom {
            project_id: project_id.clone(),
            boards: boards.clone(),
        },
    );
    if boards.is_empty() {
        let _ = ack.send(&AckPayload::joined_project(&project_id, Vec::new()));
        return;
    }
    let group = Group::new(project_id, ack, boards.len());
    let mut session = conn.session.lock().await;
    for board in &view.boards {
        let since = payload
            .version_of(&board.id)
            .or_else(|| conn.resume.get(&board.id).copied())
            .or_else(|| conn.resume.get(&board.slug).copied());
        let id = request_id();
        conn.join(&board.id, room);
        conn.wait_for(
            &id,
            Waiting {
                room: Some(room.to_owned()),
                group: Some(group.clone()),
                ..Waiting::default()
            },
        );
        session
            .handle(ClientFrame::Subscribe {
                board_id: board.id.clone(),
                since_version: since,
                id: Some(id),
            })
            .await;
    }
}

/// Leaves every board of the project room; `None` when `room` is no
/// project room of this connection.
pub(super) async fn leave(conn: &Conn, room: &str) -> Option<AckPayload> {
    let project = conn.remove_project(room)?;
    let mut session = conn.session.lock().await;
    unsubscribe(conn, &mut session, &project.boards).await;
    Some(AckPayload::joined_project(
        &project.project_id,
        project.boards,
    ))
}

async fn unsubscribe(conn: &Conn, session: &mut crate::session::Session, boards: &[String]) {
    for board in boards {
        let id = request_id();
        conn.wait_for(
            &id,
            Waiting {
                quiet: true,
                ..Waiting::default()
            },
        );
        session
            .handle(ClientFrame::Unsubscribe {
                board_id: board.clone(),
                id: Some(id),
            })
            .await;
    }
}

/// After a `project.updated`: joins the project's boards the room lacks,
/// from their start (`board:sync`), and leaves those no longer in it.
pub(super) async fn refresh(shared: Arc<Shared>, conn: Arc<Conn>, room: String) {
    let _in_order = conn.refreshing.lock().await;
    let Some(current) = conn.project(&room) else {
        return;
    };
    let view = match find(&shared, &conn, &current.project_id).await {
        Ok(Some(view)) => view,
        Ok(None) => ProjectView::default(),
        Err(refusal) => {
            tracing::warn!(client = conn.client.id, room, error = ?refusal.error, "project refresh failed");
            return;
        }
    };
    let wanted: Vec<String> = view.boards.iter().map(|b| b.id.clone()).collect();
    let gone: Vec<String> = current
        .boards
        .iter()
        .filter(|b| !wanted.contains(b))
        .cloned()
        .collect();
    let added: Vec<&String> = wanted
        .iter()
        .filter(|b| !current.boards.contains(b))
        .collect();
    if gone.is_empty() && added.is_empty() {
        return;
    }
    // Left meanwhile: leave it left.
    if conn.project(&room).is_none() {
        return;
    }
    conn.set_project(
        &room,
        ProjectRoom {
            project_id: current.project_id.clone(),
            boards: wanted.clone(),
        },
    );
    let mut session = conn.session.lock().await;
    unsubscribe(&conn, &mut session, &gone).await;
    for board in added {
        let id = request_id();
        conn.join(board, &room);
        conn.wait_for(
            &id,
            Waiting {
                room: Some(room.clone()),
                quiet: true,
                ..Waiting::default()
            },
        );
        session
            .handle(ClientFrame::Subscribe {
                board_id: board.clone(),
                since_version: None,
                id: Some(id),
            })
            .await;
    }
}

/// Fills in the board of a write that names a project (`projectId`) and no
/// `boardId`: the board holding its task, else the project's first board.
/// A `projectId` that is a board, or no project, is left as it is.
pub(super) async fn route(
    shared: &Shared,
    conn: &Conn,
    payload: &mut TaskPayload,
) -> Result<(), AckPayload> {
    let Some(room) = payload.project_id.clone() else {
        return Ok(());
    };
    if payload.board_id.is_some() || conn.joined_as_board(&room) {
        return Ok(());
    }
    let boards = match conn.project(&room) {
        Some(project) => project.boards,
        None => match find(shared, conn, &room).await? {
            Some(view) => view.boards.into_iter().map(|b| b.id).collect(),
            None => return Ok(()),
        },
    };
    let task = payload.id.as_deref().or(payload.task_id.as_deref());
    let holding = task.and_then(|task| {
        boards
            .iter()
            .find(|b| shared.hub.find(b).is_some_and(|feed| feed.holds_task(task)))
    });
    match holding.or(boards.first()) {
        Some(board) => {
            payload.board_id = Some(board.clone());
            Ok(())
        }
        None => Err(AckPayload::refused(
            ErrorCode::NotFound,
            format!("project {room:?} has no board you may read; give boardId"),
        )),
    }
}
