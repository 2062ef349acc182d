//! Word-level helpers of the built-in agent's request parser.

use protocol::v1::{Priority, TaskKind};

/// The lane key a phrase names, for the lanes boards usually have.
pub fn lane_key(phrase: &str) -> Option<String> {
    let phrase = phrase.trim().trim_matches(['"', '\'']);
    let phrase = phrase.strip_prefix("the ").unwrap_or(phrase);
    let phrase = phrase
        .strip_suffix(" lane")
        .or_else(|| phrase.strip_suffix(" column"))
        .unwrap_or(phrase)
        .trim();
    let key = match phrase {
        "to do" | "to-do" | "todo" => "todo",
        "in progress" | "in-progress" | "in_progress" | "doing" | "wip" => "in_progress",
        "backlog" | "done" | "recovery" | "review" => phrase,
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
        if text.len() > prefix.len()
            && text[..prefix.len()].eq_ignore_ascii_case(prefix)
            && text.as_bytes()[prefix.len()] == b' '
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
