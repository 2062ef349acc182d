//! Task commands: run against board-service in their own task, answered
//! with `ack` or `error`, checked against scoped write grants first.

use std::sync::Arc;

use protocol::{
    board_frames::{Ack, AckResult, Command, EditTask, ServerFrame},
    v1::{GetBoardRequest, Task},
};

use super::{CALL_TIMEOUT, Session};
use crate::{auth::Access, error::Error, state::Shared};

impl Session {
    /// Runs a command against board-service in its own task, so the
    /// connection keeps reading and writing; answers with `ack` or `error`.
    pub(super) fn spawn_command<F, Fut>(
        &self,
        access: Arc<Access>,
        id: String,
        board_ref: String,
        task_id: Option<String>,
        call: F,
    ) where
        F: FnOnce(crate::upstream::Api, Option<Arc<str>>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<AckResult, tonic::Status>> + Send,
    {
        let client = self.client.clone();
        let shared = self.shared.clone();
        let token = self.token.clone();
        let span = tracing::info_span!("command", command = %id, board = %board_ref);
        let run = async move {
            let api = shared.hub.upstream().client();
            if access.write_is_scoped()
                && let Err(error) =
                    check_write(&shared, &access, &board_ref, task_id.as_deref()).await
            {
                shared.metrics.frame_errors.inc();
                let frame = error.frame(Some(id), Some(board_ref));
                return client.push_frame(&ServerFrame::Error(frame));
            }
            let frame = match tokio::time::timeout(CALL_TIMEOUT, call(api, token)).await {
                Ok(Ok(result)) => ServerFrame::Ack(Ack {
                    id,
                    ok: true,
                    result: Some(result),
                }),
                Ok(Err(status)) => {
                    ServerFrame::Error(Error::Upstream(status).frame(Some(id), Some(board_ref)))
                }
                Err(_) => ServerFrame::Error(Error::Timeout.frame(Some(id), Some(board_ref))),
            };
            client.push_frame(&frame);
        };
        tokio::spawn(tracing::Instrument::instrument(run, span));
    }
}

/// Runs a `task.update`: the field update, then the move `changes.lane`
/// asks for (to the lane's end unless the frame names a neighbour), which
/// board-service broadcasts as `task.updated` and `task.moved`. Returns the
/// task after both.
pub(super) async fn edit_task(
    mut api: crate::upstream::Api,
    token: Option<&str>,
    command: &Command<EditTask>,
) -> Result<Task, tonic::Status> {
    use crate::upstream::as_user;
    let mut task = None;
    let mut expected = command.expected_version;
    if let Some(update) = command.update() {
        let updated = api
            .update_task(as_user(token, update.to_request()))
            .await?
            .into_inner();
        // A client that pinned a version moves exactly the task it updated.
        expected = expected.map(|_| updated.version);
        task = Some(updated);
    }
    if let Some(lane_move) = command.lane_move(expected) {
        task = Some(
            api.move_task(as_user(token, lane_move.to_request()))
                .await?
                .into_inner(),
        );
    }
    task.ok_or_else(|| tonic::Status::internal("task.update made no call"))
}

/// With write access limited to named boards, the command's board must be
/// one of them and must hold the task it names.
async fn check_write(
    shared: &Shared,
    access: &Access,
    board_ref: &str,
    task_id: Option<&str>,
) -> Result<(), Error> {
    let denied = || Error::Forbidden {
        board: board_ref.to_owned(),
        write: true,
    };
    // A read-only token needs no look-up to be refused.
    if !access.can_write_any() {
        return Err(denied());
    }
    if let Some(feed) = shared.hub.find(board_ref) {
        if !access.can_write(&feed.board_id, &feed.slug) {
            return Err(denied());
        }
        // A task the feed does not hold yet may be newer than its model
        // (just created): board-service has the last word.
        if task_id.is_none_or(|t| feed.holds_task(t)) {
            return Ok(());
        }
    }
    let mut api = shared.hub.upstream().client();
    let snapshot = api
        .get_board(GetBoardRequest {
            board_id: board_ref.to_owned(),
        })
        .await?
        .into_inner();
    let board = snapshot.board.unwrap_or_default();
    let holds = task_id.is_none_or(|t| snapshot.tasks.iter().any(|task| task.id == t));
    if access.can_write(&board.id, &board.slug) && holds {
        Ok(())
    } else {
        Err(denied())
    }
}
