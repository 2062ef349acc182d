//! RFC 6455 framing for what the gateway sends: unmasked, unfragmented
//! frames. Payloads are never copied: a frame is a small header written
//! ahead of a payload the caller already holds (often shared by thousands
//! of sockets). Client frames are read by tungstenite.

/// A text frame (§5.6).
pub const TEXT: u8 = 0x1;
/// A close frame (§5.5.1).
pub const CLOSE: u8 = 0x8;
/// A ping (§5.5.2).
pub const PING: u8 = 0x9;
/// A pong (§5.5.3).
pub const PONG: u8 = 0xA;

/// A control frame's payload is at most this long (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A server frame's header: FIN and the opcode, then the payload length in
/// 7, 7+16 or 7+64 bits.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    bytes: [u8; 10],
    len: u8,
}

impl Header {
    pub fn new(opcode: u8, payload_len: usize) -> Self {
        let mut bytes = [0u8; 10];
        bytes[0] = 0x80 | opcode;
        let len = if payload_len < 126 {
            bytes[1] = payload_len as u8;
            2
        } else if let Ok(short) = u16::try_from(payload_len) {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        };
        Self { bytes, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A close frame's payload: the code, then as much of `reason` as fits in
/// a control frame without splitting a UTF-8 character.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CloseReason;

    #[test]
    fn lengths_up_to_125_fit_in_the_first_byte() {
        assert_eq!(Header::new(TEXT, 0).as_bytes(), [0x81, 0]);
        assert_eq!(Header::new(TEXT, 125).as_bytes(), [0x81, 125]);
    }

    #[test]
    fn lengths_from_126_to_65535_take_16_bits() {
        assert_eq!(Header::new(TEXT, 126).as_bytes(), [0x81, 126, 0, 126]);
        assert_eq!(
            Header::new(TEXT, 65_535).as_bytes(),
            [0x81, 126, 0xff, 0xff]
        );
    }

    #[test]
    fn longer_payloads_take_64_bits() {
        assert_eq!(
            Header::new(TEXT, 65_536).as_bytes(),
            [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }

    #[test]
    fn control_frames_carry_fin_and_their_opcode() {
        assert_eq!(Header::new(PING, 0).as_bytes(), [0x89, 0]);
        assert_eq!(Header::new(PONG, 4).as_bytes(), [0x8a, 4]);
        assert_eq!(Header::new(CLOSE, 2).as_bytes(), [0x88, 2]);
    }

    #[test]
    fn a_close_payload_is_the_code_then_the_reason() {
        assert_eq!(close_payload(1001, "bye"), b"\x03\xe9bye");
        assert_eq!(close_payload(1000, ""), b"\x03\xe8");
    }

    #[test]
    fn a_long_close_reason_is_cut_at_a_character_boundary() {
        let payload = close_payload(4009, &"é".repeat(100));
        assert!(payload.len() <= MAX_CONTROL_PAYLOAD);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
    }

    #[test]
    fn close_codes_are_standard_or_in_the_private_range() {
        use CloseReason::*;
        let reasons = [
            Shutdown,
            ProtocolError,
            InvalidPayload,
            TooBig,
            MaxConnections,
            Unauthorized,
            TokenExpired,
            HeartbeatTimeout,
            SlowConsumer,
            MessageRate,
            IpConnectRate,
        ];
        let codes: Vec<u16> = reasons.iter().map(|r| r.code()).collect();
        assert_eq!(
            codes,
            [
                1001, 1002, 1007, 1009, 1013, 4001, 4002, 4008, 4009, 4029, 4030
            ]
        );
        for reason in reasons {
            assert!(close_payload(reason.code(), reason.text()).len() <= MAX_CONTROL_PAYLOAD);
        }
    }
}
