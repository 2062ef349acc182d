//! The wire contract shared by every Boardwire service and client.
//!
//! - [`v1`]: the gRPC API of board-service, generated from `proto/boardwire/v1/board.proto`.
//! - [`event_type`]: the `type` strings of [`v1::BoardEvent`].

/// Generated protobuf messages, client and server for `boardwire.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("boardwire.v1");
}

/// Encoded `FileDescriptorSet` of every Boardwire proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/boardwire_descriptor.bin"));

pub mod board_frames;
pub mod channel_frames;
pub mod chat_frames;
pub mod event_type;
pub mod json;
pub mod socketio;
pub mod status;
pub mod time;
