//! Channel frames: pub/sub beside the boards (seed 004's agent channels,
//! seed 001's job-status streams), with Centrifugo-style offset and epoch
//! recovery.
//!
//! A channel's publications are numbered 1, 2, 3 … (`offset`) within an
//! `epoch`. A client that saw offset `n` in epoch `e` resumes with
//! `sinceOffset: n, epoch: e` and gets exactly what followed, or an ack
//! saying `recovered: false` when the history no longer holds it (trimmed,
//! expired, or lost with an ephemeral channel's store: then the epoch
//! changed). Never a silent gap.
//!
//! The client frames are variants of [`crate::board_frames::ClientFrame`];
//! the payloads live here.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The longest event name a publication may carry, in bytes.
pub const EVENT_MAX: usize = 100;

/// The longest channel name, in bytes.
pub const NAME_MAX: usize = 200;

/// Checks a channel name: 1..=200 bytes of printable, non-space text.
/// A `*` is refused so a name is never mistaken for a pattern.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("channel must not be empty".into());
    }
    if name.len() > NAME_MAX {
        return Err(format!("channel must be at most {NAME_MAX} bytes"));
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("channel must not contain spaces or control characters".into());
    }
    if name.contains('*') {
        return Err("channel must not contain '*' (that is for patterns)".into());
    }
    Ok(())
}

/// `{type: "subscribe", channel, sinceOffset?, epoch?, id?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribeChannel {
    pub channel: String,
    /// The last offset the client saw; with `epoch`, asks for what followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Seed 004's clients stamp every frame; read and ignored.
    #[serde(default, skip_serializing)]
    pub timestamp: Option<serde_json::Value>,
}

/// `{type: "unsubscribe", channel, id?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnsubscribeChannel {
    pub channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing)]
    pub timestamp: Option<serde_json::Value>,
}

/// `{type: "publish", channel, event, data, id?, ttl?}`: seed 004's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Publish {
    pub channel: String,
    pub event: String,
    #[serde(default)]
    pub data: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Seconds the publication stays in history (and is replayed); the
    /// channel's own history age when absent. Seed 004's `message.new`
    /// may carry it in `data.ttl` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    #[serde(default, skip_serializing)]
    pub timestamp: Option<serde_json::Value>,
}

impl Publish {
    /// The publication's time to live in ms: `ttl`, else `data.ttl` (seed
    /// 004 puts it there on `message.new`); 0 for the channel's default.
    pub fn ttl_ms(&self) -> u64 {
        ttl_ms(self.ttl, &self.data)
    }
}

/// A publication's time to live in ms, from its `ttl` seconds or else its
/// `data.ttl` (seed 004's `message.new`); 0 for the channel's default.
/// Every way in (`/ws`, `/ws/agents`, `POST /api/publish`) reads it here.
pub fn ttl_ms(ttl: Option<u64>, data: &serde_json::Value) -> u64 {
    let secs = ttl.or_else(|| data.get("ttl").and_then(serde_json::Value::as_u64));
    secs.map_or(0, |s| s.saturating_mul(1000))
}

/// A delivery: `{type: "publication", channel, event, data, offset, epoch,
/// timestamp}`. Seed 004's clients read `channel`, `event` and `data`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Publication {
    pub channel: String,
    pub event: String,
    /// The publisher's JSON, passed through as it was validated.
    pub data: Box<RawValue>,
    pub offset: u64,
    pub epoch: String,
    /// When it was published, in ms since the Unix epoch.
    pub timestamp: i64,
}

impl PartialEq for Publication {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.channel,
            &self.event,
            self.data.get(),
            self.offset,
            &self.epoch,
        ) == (
            &other.channel,
            &other.event,
            other.data.get(),
            other.offset,
            &other.epoch,
        ) && self.timestamp == other.timestamp
    }
}

/// The ack of a channel `subscribe`: where the channel stands, and whether
/// the client's `sinceOffset` was honoured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPosition {
    pub channel: String,
    pub epoch: String,
    /// The newest offset when the subscription began; replayed
    /// publications, if any, follow the ack up to it.
    pub offset: u64,
    /// True when everything after `sinceOffset` follows; false for a fresh
    /// start (no `sinceOffset`, another epoch, or history that no longer
    /// reaches back that far).
    pub recovered: bool,
}

/// The ack of a `publish`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    pub channel: String,
    pub offset: u64,
    pub epoch: String,
}

/// Seed 001's SSE data, `{channel, message}`, read by `EventSource.onmessage`.
#[derive(Debug, Clone, Serialize)]
pub struct Seed001Event<'a> {
    pub channel: &'a str,
    pub message: &'a RawValue,
}

/// Seed 004's own frames on `/ws/agents`, spelled as its document does.
pub mod seed004 {
    use serde::Serialize;

    #[derive(Debug, Clone, Serialize)]
    #[serde(tag = "type")]
    pub enum Frame<'a> {
        #[serde(rename = "connected")]
        Connected { client_id: &'a str, timestamp: i64 },
        #[serde(rename = "ack")]
        Ack {
            #[serde(skip_serializing_if = "Option::is_none")]
            id: Option<&'a str>,
            success: bool,
            timestamp: i64,
        },
        #[serde(rename = "pong")]
        Pong { timestamp: i64 },
    }

    /// `{error, code, timestamp}`: seed 004's errors carry no `type`.
    #[derive(Debug, Clone, Serialize)]
    pub struct Error<'a> {
        pub error: &'a str,
        /// Upper snake case, as seed 004's `INVALID_CHANNEL`.
        pub code: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pub id: Option<&'a str>,
        pub timestamp: i64,
    }

    /// `frame` as seed 004 spells it, for the frames it spells its own way
    /// (connected, ack, error, pong); `None` for the rest, which it reads
    /// as they are (a publication's `channel`, `event` and `data`).
    pub fn encode(frame: &crate::board_frames::ServerFrame) -> Option<String> {
        use crate::board_frames::ServerFrame;
        let now = crate::time::now_ms() as i64;
        let text = match frame {
            ServerFrame::Connected { client_id, .. } => crate::json::encode(&Frame::Connected {
                client_id,
                timestamp: now,
            }),
            ServerFrame::Ack(ack) => crate::json::encode(&Frame::Ack {
                id: Some(&ack.id),
                success: ack.ok,
                timestamp: now,
            }),
            ServerFrame::Pong { .. } => crate::json::encode(&Frame::Pong { timestamp: now }),
            ServerFrame::Error(error) => {
                let code = serde_json::to_value(error.code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_ascii_uppercase))
                    .unwrap_or_else(|| "INTERNAL".into());
                crate::json::encode(&Error {
                    error: &error.message,
                    code,
                    id: error.id.as_deref(),
                    timestamp: now,
                })
            }
            _ => return None,
        };
        Some(text)
    }

    /// A server-side event on a channel, as seed 004 emits it.
    pub const AGENT_CONNECTED: &str = "agent.connected";
    pub const AGENT_DISCONNECTED: &str = "agent.disconnected";
    pub const AGENT_HEARTBEAT: &str = "agent.heartbeat";
    pub const METRIC_UPDATE: &str = "metric.update";
    /// The channel agent events go to, and the one KPIs go to.
    pub const GLOBAL: &str = "global";
    pub const METRICS: &str = "metrics";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("ai:jobs:status").is_ok());
        assert!(check_name("agents/backend-laravel").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name("a*").is_err());
        assert!(check_name(&"x".repeat(201)).is_err());
    }
}
