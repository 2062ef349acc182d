//! Property tests: any text, and any JSON, given to either frame decoder
//! yields a frame or an error, never a panic.

use proptest::prelude::*;
use protocol::{board_frames::ClientFrame, chat_frames::ClientFrame as ChatFrame};
use serde_json::Value;

/// Arbitrary JSON, biased toward the frames' own shapes and field names.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".*".prop_map(Value::String),
        prop_oneof![
            Just("subscribe"),
            Just("task.create"),
            Just("task.move"),
            Just("task.update"),
            Just("task.delete"),
            Just("auth"),
            Just("ping"),
            Just("message"),
            Just("cancel"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    let key = prop_oneof![
        Just("type".to_string()),
        Just("id".to_string()),
        Just("boardId".to_string()),
        Just("data".to_string()),
        Just("title".to_string()),
        Just("changes".to_string()),
        Just("before".to_string()),
        Just("after".to_string()),
        Just("content".to_string()),
        Just("expectedVersion".to_string()),
        Just("sinceVersion".to_string()),
        ".*",
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_text_is_a_board_frame_or_an_error(text in ".*") {
        let _ = ClientFrame::parse(&text);
        let _ = serde_json::from_str::<ChatFrame>(&text);
    }

    #[test]
    fn any_json_is_a_frame_or_an_error(value in json()) {
        let text = value.to_string();
        if let Ok(frame) = ClientFrame::parse(&text) {
            // What parses can be turned into its request without panicking.
            if let ClientFrame::TaskCreate(c) = &frame { let _ = c.to_request(); }
            if let ClientFrame::TaskMove(c) = &frame { let _ = c.to_request(); }
        }
        let _ = serde_json::from_value::<ChatFrame>(value);
    }
}
