//! What the built-in agent understands: plain requests, parsed without a model.

use protocol::v1::{Priority, TaskKind};

use super::words::{capitalise, kind_word, lane_key, priority_word, strip_words, unquote};

/// One request the built-in agent can act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    Create {
        title: String,
        priority: Priority,
        kind: TaskKind,
        /// Lane key (or name) to create in.
        lane: String,
    },
    Move {
        title: String,
        lane: String,
    },
    /// Tasks in one lane, or on the whole board.
    List {
        lane: Option<String>,
    },
    Delete {
        title: String,
    },
    /// Not understood; the reason, when there is one worth telling.
    Help(Option<String>),
}

const DEFAULT_LANE: &str = "backlog";

/// Reads a request such as "Create a P1 story for user authentication".
pub fn parse(text: &str) -> Intent {
    let text = text.trim().trim_end_matches(['.', '?', '!']).trim();
    let lower = text.to_lowercase();
    let first = lower.split_whitespace().next().unwrap_or("");
    let rest = text[first.len().min(text.len())..].trim();
    match first {
        "create" | "add" | "new" | "make" | "open" | "file" => parse_create(rest),
        "move" => parse_move(rest),
        "delete" | "remove" => match unquote(strip_words(rest, &["the task", "task"])) {
            "" => Intent::Help(Some("Tell me which task to delete.".into())),
            title => Intent::Delete {
                title: title.into(),
            },
        },
        _ => parse_list(&lower).unwrap_or(Intent::Help(None)),
    }
}

fn parse_create(rest: &str) -> Intent {
    let lower = rest.to_lowercase();
    let separator = [" for ", " called ", " named ", " titled ", ": "]
        .iter()
        .filter_map(|sep| lower.find(sep).map(|at| (at, sep.len())))
        .min();
    let (head, title) = match separator {
        Some((at, len)) => (&lower[..at], rest[at + len..].trim()),
        None => (lower.as_str(), ""),
    };
    let words: Vec<&str> = head.split_whitespace().collect();
    let priority = words
        .iter()
        .find_map(|w| priority_word(w))
        .unwrap_or(Priority::Medium);
    let kind_at = words.iter().position(|w| kind_word(w).is_some());
    let kind = kind_at
        .and_then(|i| kind_word(words[i]))
        .unwrap_or(TaskKind::Task);
    let mut lane = lane_in(head).map_or_else(|| DEFAULT_LANE.into(), |(_, key)| key);
    let mut title = title.to_owned();
    if title.is_empty() {
        // "Create a bug login fails": the words after the kind are the title.
        if let Some(i) = kind_at {
            let skip: usize = rest
                .split_whitespace()
                .take(i + 1)
                .map(|w| w.len() + 1)
                .sum();
            title = rest
                .get(skip.min(rest.len())..)
                .unwrap_or("")
                .trim()
                .to_owned();
        }
    }
    if let Some((at, key)) = lane_in(&title.to_lowercase()) {
        lane = key;
        title.truncate(at);
    }
    let title = unquote(title.trim());
    if title.is_empty() {
        return Intent::Help(Some(
            "Tell me what the task is about, for example \"Create a P1 story for user authentication\"."
                .into(),
        ));
    }
    Intent::Create {
        title: capitalise(title),
        priority,
        kind,
        lane,
    }
}

fn parse_move(rest: &str) -> Intent {
    let lower = rest.to_lowercase();
    let Some(at) = lower.rfind(" to ") else {
        return Intent::Help(Some(
            "Tell me where to move it: \"move <task title> to done\".".into(),
        ));
    };
    let title = unquote(strip_words(rest[..at].trim(), &["the task", "task"]));
    match (title, lane_key(&lower[at + 4..])) {
        ("", _) | (_, None) => Intent::Help(Some(
            "Tell me where to move it: \"move <task title> to done\".".into(),
        )),
        (title, Some(lane)) => Intent::Move {
            title: title.into(),
            lane,
        },
    }
}

fn parse_list(lower: &str) -> Option<Intent> {
    const ASKS: [&str; 8] = [
        "what is ",
        "what's ",
        "whats ",
        "what tasks are ",
        "show me ",
        "show ",
        "list tasks ",
        "list ",
    ];
    let ask = ASKS.iter().find(|ask| lower.starts_with(*ask))?;
    let phrase = lower[ask.len()..].trim();
    let phrase = strip_words(phrase, &["tasks", "the tasks", "everything"]);
    if phrase.is_empty() || ["on the board", "the board", "board", "all"].contains(&phrase) {
        return Some(Intent::List { lane: None });
    }
    // "in progress" is a lane; "in backlog" names one.
    let lane = lane_key(phrase).or_else(|| phrase.strip_prefix("in ").and_then(lane_key))?;
    Some(Intent::List { lane: Some(lane) })
}

/// The first " in <lane>" that ends `text`: where it starts, and the lane key.
fn lane_in(text: &str) -> Option<(usize, String)> {
    text.match_indices(" in ")
        .find_map(|(at, _)| lane_key(&text[at + 4..]).map(|key| (at, key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(title: &str, priority: Priority, kind: TaskKind, lane: &str) -> Intent {
        Intent::Create {
            title: title.into(),
            priority,
            kind,
            lane: lane.into(),
        }
    }

    #[test]
    fn understands_create_requests() {
        assert_eq!(
            parse("Create a P1 story for user authentication"),
            create(
                "User authentication",
                Priority::High,
                TaskKind::Story,
                "backlog"
            )
        );
        assert_eq!(
            parse("add a p0 bug called Checkout crashes in todo."),
            create(
                "Checkout crashes",
                Priority::Critical,
                TaskKind::Bug,
                "todo"
            )
        );
        assert_eq!(
            parse("create an epic in the in progress lane for Billing"),
            create("Billing", Priority::Medium, TaskKind::Epic, "in_progress")
        );
        assert_eq!(
            parse("new P3 task: tidy logs"),
            create("Tidy logs", Priority::Low, TaskKind::Task, "backlog")
        );
        assert!(matches!(parse("create a story"), Intent::Help(Some(_))));
    }

    #[test]
    fn understands_moves_lists_and_deletes() {
        assert_eq!(
            parse("move User authentication to done"),
            Intent::Move {
                title: "User authentication".into(),
                lane: "done".into()
            }
        );
        assert_eq!(
            parse("Move \"Go to market plan\" to in progress"),
            Intent::Move {
                title: "Go to market plan".into(),
                lane: "in_progress".into()
            }
        );
        assert_eq!(
            parse("what is in progress?"),
            Intent::List {
                lane: Some("in_progress".into())
            }
        );
        assert_eq!(
            parse("What's in backlog"),
            Intent::List {
                lane: Some("backlog".into())
            }
        );
        assert_eq!(parse("list tasks"), Intent::List { lane: None });
        assert_eq!(
            parse("delete the task Login page"),
            Intent::Delete {
                title: "Login page".into()
            }
        );
    }

    #[test]
    fn anything_else_gets_help() {
        assert_eq!(parse("hello there"), Intent::Help(None));
        assert_eq!(parse(""), Intent::Help(None));
        assert!(matches!(parse("move it somewhere"), Intent::Help(Some(_))));
    }
}
