//! The `boardwire.v1.PresenceService` gRPC API.

use std::pin::Pin;

use futures::Stream;
use protocol::v1::{
    PresenceUpdate, UpdatePresenceRequest, UpdatePresenceResponse, WatchPresenceRequest,
    presence_service_server::PresenceService,
};
use service_kit::auth::Authenticator;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{PresenceHub, store};
use crate::{
    error::Error,
    grpc::caller_access as access,
    store::{Store, check_read},
};

/// Changes one call may carry.
pub const MAX_CHANGES: usize = 10_000;
/// Longest scope and key, in bytes.
pub const MAX_SCOPE_BYTES: usize = 300;
/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
const LEASE_MS: std::ops::RangeInclusive<u32> = 1_000..=300_000;
/// Updates buffered per watcher; a watcher this far behind is slow.
const WATCH_BUFFER: usize = 64;

pub struct PresenceApi {
    store: Store,
    hub: PresenceHub,
    auth: Option<Authenticator>,
}

impl PresenceApi {
    pub fn new(store: Store, hub: PresenceHub, auth: Option<Authenticator>) -> Self {
        Self { store, hub, auth }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl PresenceService for PresenceApi {
    #[tracing::instrument(skip_all, fields(gateway = %request.get_ref().gateway_id, changes = request.get_ref().changes.len()))]
    async fn update_presence(
        &self,
        request: Request<UpdatePresenceRequest>,
    ) -> Reply<UpdatePresenceResponse> {
        let access = access(self.auth.as_ref(), &request).await?;
        if !access.can_create_boards() {
            return Err(Error::PermissionDenied(
                "UpdatePresence takes a service token (one that may create boards)".into(),
            )
            .into());
        }
        let request = request.into_inner();
        check_update(&request)?;
        let applied = store::apply(self.hub.pool(), &request).await?;
        Ok(Response::new(UpdatePresenceResponse {
            created: applied.created,
            lease_ms: request.lease_ms,
        }))
    }

    type WatchPresenceStream = Pin<Box<dyn Stream<Item = Result<PresenceUpdate, Status>> + Send>>;

    #[tracing::instrument(skip_all, fields(scope = %request.get_ref().scope))]
    async fn watch_presence(
        &self,
        request: Request<WatchPresenceRequest>,
    ) -> Reply<Self::WatchPresenceStream> {
        let access = access(self.auth.as_ref(), &request).await?;
        let scope = request.into_inner().scope;
        check_text("scope", &scope, MAX_SCOPE_BYTES)?;
        match scope.strip_prefix("board:") {
            Some(board_ref) => {
                let board = self.store.resolve_board(board_ref).await?;
                if board.id.to_string() != board_ref {
                    return Err(Error::InvalidArgument(
                        "scope must name a board by its id: board:<uuid>".into(),
                    )
                    .into());
                }
                check_read(&access, board_ref, &board.slug)?;
            }
            None if access.can_create_boards() => {}
            None => {
                return Err(Error::PermissionDenied(
                    "watching this scope takes a service token".into(),
                )
                .into());
            }
        }
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        tokio::spawn(super::watch::run(self.hub.clone(), scope, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn check_update(request: &UpdatePresenceRequest) -> Result<(), Error> {
    check_text("gateway_id", &request.gateway_id, 64)?;
    if !LEASE_MS.contains(&request.lease_ms) {
        return Err(Error::InvalidArgument(format!(
            "lease_ms must be {}-{}",
            LEASE_MS.start(),
            LEASE_MS.end()
        )));
    }
    if request.changes.len() > MAX_CHANGES {
        return Err(Error::InvalidArgument(format!(
            "changes must hold at most {MAX_CHANGES} entries"
        )));
    }
    for change in &request.changes {
        check_text("changes.scope", &change.scope, MAX_SCOPE_BYTES)?;
        let Some(entry) = &change.entry else {
            return Err(Error::InvalidArgument("changes.entry is required".into()));
        };
        check_text("changes.entry.key", &entry.key, MAX_SCOPE_BYTES)?;
        if entry.name.chars().count() > MAX_NAME_CHARS || entry.name.chars().any(char::is_control) {
            return Err(Error::InvalidArgument(format!(
                "changes.entry.name must be at most {MAX_NAME_CHARS} characters, without control characters"
            )));
        }
        if i32::try_from(entry.connections).is_err() {
            return Err(Error::InvalidArgument(
                "changes.entry.connections is out of range".into(),
            ));
        }
    }
    Ok(())
}

/// 1 to `max` bytes, no control characters.
fn check_text(field: &str, value: &str, max: usize) -> Result<(), Error> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "{field} must be 1-{max} bytes without control characters"
        )));
    }
    Ok(())
}
