//! The one JSON encoder for frames.

use serde::Serialize;

/// `value` as JSON text. Frames are plain data (strings, numbers, maps with
/// string keys), so encoding cannot fail; should a type ever break that,
/// the failure is logged and an empty object sent rather than a panic.
pub fn encode<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|err| {
        eprintln!("a frame failed to encode as JSON: {err}");
        "{}".to_owned()
    })
}
