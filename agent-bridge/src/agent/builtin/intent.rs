//! What the built-in agent understands: plain requests, parsed without a model.

use protocol::v1::{Priority, TaskKind};

use super::words::{
    after_words, capitalise, find_ascii, kind_word, lane_key, priority_word, rfind_ascii,
    strip_words, unquote,
};

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
    /// Start the board's planned sprint (the earliest, if several).
    StartSprint,
    /// Complete the board's active sprint; unfinished tasks go to the backlog.
    CompleteSprint,
    /// Put the task whose title holds these words in the active sprint, or
    /// else the planned one.
    AddToSprint {
        title: String,
    },
    /// The unfinished tasks of the active sprint.
    SprintLeft,
    /// Not understood; the reason, when there is one worth telling.
    Help(Option<String>),
}

const DEFAULT_LANE: &str = "backlog";

/// Reads a request such as "Create a P1 story for user authentication".
///
/// Every offset used to cut `text` is found in `text` itself, never in its
/// lower-case copy: lower-casing can change byte lengths ("İ" becomes three
/// bytes), so an offset in one is not a character boundary in the other.
pub fn parse(text: &str) -> Intent {
    let text = text.trim().trim_end_matches(['.', '?', '!']).trim();
    let lower = text.to_lowercase();
    let first_word = text.split_whitespace().next().unwrap_or("");
    let first = first_word.to_lowercase();
    let rest = text.strip_prefix(first_word).unwrap_or(text).trim();
    if let Some(intent) = parse_sprint(&first, rest, &lower) {
        return intent;
    }
    match first.as_str() {
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

/// The sprint requests: "start the sprint", "complete the sprint", "add
/// the login story to the sprint", "what is left in the sprint?".
fn parse_sprint(first: &str, rest: &str, lower: &str) -> Option<Intent> {
    let words: Vec<&str> = lower.split_whitespace().collect();
    if !words.contains(&"sprint") {
        return None;
    }
    // "start the sprint", "start sprint", "begin the next sprint".
    let about_the_sprint = |rest: &str| {
        let rest = rest.to_lowercase();
        let rest = strip_words(&rest, &["the", "our", "this"]).to_owned();
        let rest = strip_words(&rest, &["next", "planned", "current", "active"]).to_owned();
        rest == "sprint"
    };
    match first {
        "start" | "begin" | "kick" if about_the_sprint(strip_words(rest, &["off"])) => {
            return Some(Intent::StartSprint);
        }
        "complete" | "finish" | "end" | "close" if about_the_sprint(rest) => {
            return Some(Intent::CompleteSprint);
        }
        "add" | "put" | "plan" | "move" | "pull" => {
            const TAILS: [&str; 4] = [" to the ", " into the ", " in the ", " to "];
            // Padded, so "add to the sprint" has a tail too (and no title).
            let rest = format!(" {rest}");
            let (at, tail) = TAILS
                .iter()
                .find_map(|tail| rfind_ascii(&rest, tail).map(|at| (at, tail.len())))?;
            if !about_the_sprint(&format!("the {}", &rest[at + tail..])) {
                return None;
            }
            let title = strip_words(unquote(&rest[..at]), &["the task", "the", "task"]);
            // "the login story": the kind word is not part of the title.
            let title = title
                .rsplit_once(' ')
                .filter(|(_, last)| kind_word(&last.to_lowercase()).is_some())
                .map_or(title, |(head, _)| head.trim());
            let title = unquote(title);
            return Some(if title.is_empty() {
                Intent::Help(Some(
                    "Tell me which task: \"add the login story to the sprint\".".into(),
                ))
            } else {
                Intent::AddToSprint {
                    title: title.into(),
                }
            });
        }
        _ => {}
    }
    const ASKS: [&str; 6] = ["what", "what's", "whats", "show", "list", "how"];
    if ASKS.contains(&first) {
        return Some(Intent::SprintLeft);
    }
    None
}

fn parse_create(rest: &str) -> Intent {
    let separator = [" for ", " called ", " named ", " titled ", ": "]
        .iter()
        .filter_map(|sep| find_ascii(rest, sep).map(|at| (at, sep.len())))
        .min();
    let (head, title) = match separator {
        Some((at, len)) => (&rest[..at], rest[at + len..].trim()),
        None => (rest, ""),
    };
    let head_lower = head.to_lowercase();
    let words: Vec<&str> = head_lower.split_whitespace().collect();
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
            title = after_words(rest, i + 1).trim().to_owned();
        }
    }
    if let Some((at, key)) = lane_in(&title) {
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
    let Some(at) = rfind_ascii(rest, " to ") else {
        return Intent::Help(Some(
            "Tell me where to move it: \"move <task title> to done\".".into(),
        ));
    };
    let title = unquote(strip_words(rest[..at].trim(), &["the task", "task"]));
    match (title, lane_key(&rest[at + 4..])) {
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
    let mut from = 0;
    while let Some(found) = text.get(from..).and_then(|t| find_ascii(t, " in ")) {
        let at = from + found;
        if let Some(key) = lane_key(&text[at + 4..]) {
            return Some((at, key));
        }
        from = at + 1;
    }
    None
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
    fn text_whose_case_changes_length_is_cut_on_characters() {
        assert_eq!(
            parse("delete aaaaaaaé"),
            Intent::Delete {
                title: "aaaaaaaé".into()
            }
        );
        assert_eq!(parse("İİ € …"), Intent::Help(None));
        assert_eq!(
            parse("CREATE a bug İİİ called ÉCLAIR in TODO"),
            create("ÉCLAIR", Priority::Medium, TaskKind::Bug, "todo")
        );
        assert_eq!(
            parse("create a bug   İstanbul  login fails"),
            create(
                "İstanbul  login fails",
                Priority::Medium,
                TaskKind::Bug,
                "backlog"
            )
        );
        assert_eq!(
            parse("move İİİİ task to Done"),
            Intent::Move {
                title: "İİİİ task".into(),
                lane: "done".into()
            }
        );
        assert_eq!(
            parse("delete the task"),
            Intent::Help(Some("Tell me which task to delete.".into()))
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(text in "\\PC*") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_commands_with_any_tail(
            verb in "(create|add|move|delete|remove|show|what is|list) ",
            tail in proptest::collection::vec(
                proptest::prop_oneof!["\\PC{0,6}", "İ", "é", " in ", " to ", " for ", ": ",
                                      " the task ", "bug", "p1", "todo", "\\s"],
                0..12,
            ),
        ) {
            let _ = parse(&format!("{verb}{}", tail.concat()));
        }

        #[test]
        fn never_panics_on_any_unicode(text in proptest::collection::vec(proptest::char::any(), 0..64)) {
            let _ = parse(&text.into_iter().collect::<String>());
        }
    }

    #[test]
    fn understands_sprint_requests() {
        assert_eq!(parse("start the sprint"), Intent::StartSprint);
        assert_eq!(parse("Start the next sprint."), Intent::StartSprint);
        assert_eq!(parse("kick off the sprint"), Intent::StartSprint);
        assert_eq!(parse("complete the sprint"), Intent::CompleteSprint);
        assert_eq!(parse("Finish the current sprint!"), Intent::CompleteSprint);
        assert_eq!(
            parse("add the login story to the sprint"),
            Intent::AddToSprint {
                title: "login".into()
            }
        );
        assert_eq!(
            parse("put \"Checkout crashes\" in the current sprint"),
            Intent::AddToSprint {
                title: "Checkout crashes".into()
            }
        );
        assert_eq!(parse("what is left in the sprint?"), Intent::SprintLeft);
        assert_eq!(parse("What's in the sprint"), Intent::SprintLeft);
        // Not about the sprint: the other intents still apply.
        assert!(matches!(
            parse("create a story for sprint planning"),
            Intent::Create { .. }
        ));
        assert!(matches!(
            parse("add the sprint to the sprint"),
            Intent::AddToSprint { .. }
        ));
        assert!(matches!(parse("add to the sprint"), Intent::Help(Some(_))));
    }

    #[test]
    fn anything_else_gets_help() {
        assert_eq!(parse("hello there"), Intent::Help(None));
        assert_eq!(parse(""), Intent::Help(None));
        assert!(matches!(parse("move it somewhere"), Intent::Help(Some(_))));
    }
}
