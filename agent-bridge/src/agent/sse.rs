//! A minimal Server-Sent Events decoder: enough for AG-UI, which sends only
//! `data:` lines. Bounded, so a backend that never ends an event cannot grow
//! memory without limit.

/// Feeds bytes in, gets each event's joined `data` out.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    data: String,
    has_data: bool,
}

/// Longest line or event accepted.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// The stream is not SSE.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("an event is longer than {MAX_EVENT_BYTES} bytes")]
    TooLong,
    #[error("an event is not UTF-8")]
    NotUtf8,
}

impl SseDecoder {
    /// Decodes `chunk`, appending every event it completes to `events`.
    pub fn push(&mut self, chunk: &[u8], events: &mut Vec<String>) -> Result<(), SseError> {
        for &byte in chunk {
            if byte != b'\n' {
                self.line.push(byte);
                if self.line.len() + self.data.len() > MAX_EVENT_BYTES {
                    return Err(SseError::TooLong);
                }
                continue;
            }
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            let line = std::mem::take(&mut self.line);
            let line = String::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
            self.take_line(&line, events);
        }
        Ok(())
    }

    fn take_line(&mut self, line: &str, events: &mut Vec<String>) {
        if line.is_empty() {
            if self.has_data {
                events.push(std::mem::take(&mut self.data));
                self.has_data = false;
            }
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        // Comments (`: keepalive`) and id/event/retry fields carry nothing AG-UI needs.
        if field == "data" {
            let value = value.strip_prefix(' ').unwrap_or(value);
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(value);
            self.has_data = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&str]) -> Vec<String> {
        let mut decoder = SseDecoder::default();
        let mut events = Vec::new();
        for chunk in chunks {
            decoder.push(chunk.as_bytes(), &mut events).unwrap();
        }
        events
    }

    #[test]
    fn splits_events_across_chunks_and_line_endings() {
        assert_eq!(
            decode(&["data: {\"a\"", ":1}\n", "\ndata: x\r\n\r\n: keepalive\n\n"]),
            vec!["{\"a\":1}".to_owned(), "x".to_owned()]
        );
    }

    #[test]
    fn joins_multi_line_data_and_skips_other_fields() {
        assert_eq!(
            decode(&["event: message\nid: 7\ndata: a\ndata:b\n\n"]),
            vec!["a\nb".to_owned()]
        );
    }

    #[test]
    fn an_unfinished_event_is_not_emitted() {
        assert!(decode(&["data: half"]).is_empty());
    }

    #[test]
    fn refuses_endless_lines() {
        let mut decoder = SseDecoder::default();
        let big = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert!(decoder.push(&big, &mut Vec::new()).is_err());
    }
}
