//! Socket.IO v4 (socketioxide) at `/socket.io/`, in seed 000's vocabulary
//! (`protocol::socketio`). Each socket is a gateway client like an SSE one:
//! a [`Session`](crate::session::Session) subscribes it to boards through
//! the hub, so it gets the same ordered, gap-free frames, resumes the same
//! way and is held to the same auth, limits and checks; a pump turns its
//! outbox into Socket.IO events and acknowledgements.

mod conn;
mod connect;
mod events;
mod projects;
mod pump;

use std::sync::Arc;

use socketioxide::{SocketIo, handler::ConnectHandler, layer::SocketIoLayer};

use crate::state::Shared;

/// The Socket.IO layer for the gateway's router (and the `SOCKETIO_ADDR`
/// one): the default namespace, its admission and its events. Payloads are
/// capped at `WS_MAX_FRAME_BYTES`, like WebSocket frames.
pub(crate) fn layer(shared: &Arc<Shared>) -> SocketIoLayer {
    let max = shared.config.max_frame_bytes;
    let (layer, io) = SocketIo::builder()
        .max_payload(max as u64)
        .ws_max_message_size(max)
        .ws_max_frame_size(max)
        .ping_interval(shared.config.heartbeat())
        .build_layer();
    let admit = {
        let shared = shared.clone();
        move |socket, auth| connect::admit(shared.clone(), socket, auth)
    };
    let connected = {
        let shared = shared.clone();
        move |socket, auth| connect::connected(shared.clone(), socket, auth)
    };
    io.ns("/", connected.with(admit));
    layer
}
