//! Word-level helpers of the built-in agent's request parser.

use protocol::v1::{Priority, TaskKind};

/// The lane key a phrase names, for the lanes boards usually have.
pub fn lane_key(phrase: &str) -> Option<String> {
    let phrase = phrase.trim().trim_matches(['"', '\'']).to_lowercase();
    let phrase = phrase.as_str();
    let phrase = phrase.strip_prefix("the ").unwrap_or(phrase);
    let phrase = phrase
        .strip_suffix(" lane")
        .or_else(|| phrase.strip_suffix(" column"))
        .unwrap_or(phrase)
        .trim();
    let key = match phrase {
        "to do" | "to-do" | "todo" => "todo",
        "in progress" | "in-progress" | "in_progress" | "doing" | "wip" => "in_progress",
        "backlog" => "backlog",
        "done" => "done",
        "recovery" => "recovery",
        "review" => "review",
        _ => return None,
    };
    Some(key.into())
}

/// The priority a word such as `p1` or `high` names.
pub fn priority_word(word: &str) -> Option<Priority> {
    Some(match word {
        "p0" | "critical" | "urgent" => Priority::Critical,
        "p1" | "high" => Priority::High,
        "p2" | "medium" | "normal" => Priority::Medium,
        "p3" | "low" => Priority::Low,
        _ => return None,
    })
}

/// The task kind a word such as `story` or `bugs` names.
pub fn kind_word(word: &str) -> Option<TaskKind> {
    Some(match word.trim_end_matches('s') {
        "story" | "storie" | "user-story" => TaskKind::Story,
        "bug" | "defect" => TaskKind::Bug,
        "task" | "ticket" | "item" => TaskKind::Task,
        "epic" => TaskKind::Epic,
        _ => return None,
    })
}

/// `text` without the first of `prefixes` it starts with (as a whole word).
pub fn strip_words<'a>(text: &'a str, prefixes: &[&str]) -> &'a str {
    for prefix in prefixes {
        // Byte-wise: a prefix of ASCII bytes that matches ends on a boundary.
        let bytes = text.as_bytes();
        if bytes.len() > prefix.len()
            && bytes[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
            && bytes[prefix.len()] == b' '
        {
            return text[prefix.len()..].trim();
        }
        if text.eq_ignore_ascii_case(prefix) {
            return "";
        }
    }
    text
}

/// `text` without surrounding quotes.
pub fn unquote(text: &str) -> &str {
    text.trim().trim_matches(['"', '\'', '`', '“', '”']).trim()
}

/// `text` with its first letter in upper case.
pub fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Where the ASCII `needle` first occurs in `text`, ignoring ASCII case.
/// Matching bytes of an ASCII needle start and end on character boundaries,
/// so the offset can cut `text` itself.
pub fn find_ascii(text: &str, needle: &str) -> Option<usize> {
    debug_assert!(needle.is_ascii() && !needle.is_empty());
    text.as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Where the ASCII `needle` last occurs in `text`, ignoring ASCII case.
pub fn rfind_ascii(text: &str, needle: &str) -> Option<usize> {
    debug_assert!(needle.is_ascii() && !needle.is_empty());
    text.as_bytes()
        .windows(needle.len())
        .rposition(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// `text` after its first `n` whitespace-separated words.
pub fn after_words(text: &str, n: usize) -> &str {
    let mut rest = text;
    for _ in 0..n {
        rest = rest.trim_start();
        match rest.find(char::is_whitespace) {
            Some(end) => rest = &rest[end..],
            None => return "",
        }
    }
    rest
}
