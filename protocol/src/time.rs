//! The millisecond times frames carry: now, and conversions from and to
//! protobuf timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

use prost_types::Timestamp;

/// Wall-clock milliseconds since the Unix epoch, the unit frames carry.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Milliseconds since the Unix epoch; 0 for a missing timestamp.
pub fn timestamp_ms(ts: Option<&Timestamp>) -> i64 {
    ts.map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

/// A protobuf timestamp for milliseconds since the Unix epoch.
pub fn timestamp_from_ms(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_trip_including_before_the_epoch() {
        for ms in [0, 1, 999, 1_700_000_000_123, -1, -1001] {
            assert_eq!(timestamp_ms(Some(&timestamp_from_ms(ms))), ms);
        }
        assert_eq!(timestamp_ms(None), 0);
    }
}
