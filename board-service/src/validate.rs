//! Input rules. Each error names the field and the rule it broke.

use protocol::v1::{Priority, TaskKind};
use uuid::Uuid;

use crate::error::{Error, Result};

pub const TITLE_MAX: usize = 500;
pub const DESCRIPTION_MAX: usize = 20_000;
pub const NAME_MAX: usize = 200;
pub const ASSIGNEE_MAX: usize = 200;
pub const LABELS_MAX: usize = 32;
pub const LABEL_MAX: usize = 64;
pub const KEY_MAX: usize = 64;
pub const STATUS_MAX: usize = 100;
pub const REQUEST_ID_MAX: usize = 200;
pub const ESTIMATE_MAX: f64 = 100_000.0;

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

/// A trimmed, non-empty, single-line text of at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String> {
    let value = value.trim();
    let chars = value.chars().count();
    if chars == 0 || chars > max {
        return Err(invalid(format!("{field} must be 1–{max} characters")));
    }
    no_control_chars(field, value, false)?;
    Ok(value.to_owned())
}

/// Refuses NUL and every other control character (PostgreSQL cannot store
/// NUL in text at all); `multiline` text may hold tabs and line breaks.
pub fn no_control_chars(field: &str, value: &str, multiline: bool) -> Result<()> {
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    match value.chars().find(|&c| c.is_control() && !allowed(c)) {
        None => Ok(()),
        Some(c) => Err(invalid(format!(
            "{field} must not contain control characters (found U+{:04X})",
            c as u32
        ))),
    }
}

/// Text that may be empty.
pub fn optional_text(field: &str, value: &str, max: usize) -> Result<String> {
    if value.trim().is_empty() {
        return Ok(String::new());
    }
    text(field, value, max)
}

pub fn title(value: &str) -> Result<String> {
    text("title", value, TITLE_MAX)
}

pub fn description(value: &str) -> Result<String> {
    if value.chars().count() > DESCRIPTION_MAX {
        return Err(invalid(format!(
            "description must be at most {DESCRIPTION_MAX} characters"
        )));
    }
    no_control_chars("description", value, true)?;
    Ok(value.to_owned())
}

pub fn assignee(value: &str) -> Result<String> {
    optional_text("assignee", value, ASSIGNEE_MAX)
}

/// A task's free-text status (not its lane); may be empty.
pub fn status(value: &str) -> Result<String> {
    optional_text("status", value, STATUS_MAX)
}

pub fn labels(values: &[String]) -> Result<Vec<String>> {
    if values.len() > LABELS_MAX {
        return Err(invalid(format!("labels must be at most {LABELS_MAX}")));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let label = text(&format!("labels[{i}]"), value, LABEL_MAX)?;
        if !out.contains(&label) {
            out.push(label);
        }
    }
    Ok(out)
}

pub fn estimated_hours(value: f64) -> Result<f64> {
    if !value.is_finite() || !(0.0..=ESTIMATE_MAX).contains(&value) {
        return Err(invalid(format!(
            "estimated_hours must be between 0 and {ESTIMATE_MAX}"
        )));
    }
    Ok(value)
}

/// A known priority; `default` replaces UNSPECIFIED when given.
pub fn priority(value: i32, default: Option<Priority>) -> Result<Priority> {
    match Priority::try_from(value) {
        Ok(Priority::Unspecified) => default.ok_or_else(|| invalid("priority must be set")),
        Ok(p) => Ok(p),
        Err(_) => Err(invalid(format!("priority {value} is not a known Priority"))),
    }
}

pub fn kind(value: i32, default: Option<TaskKind>) -> Result<TaskKind> {
    match TaskKind::try_from(value) {
        Ok(TaskKind::Unspecified) => default.ok_or_else(|| invalid("kind must be set")),
        Ok(k) => Ok(k),
        Err(_) => Err(invalid(format!("kind {value} is not a known TaskKind"))),
    }
}

/// A board named by id or slug: what a lookup may bind as text.
pub fn board_ref(value: &str) -> Result<&str> {
    if value.is_empty() {
        return Err(invalid("board_id is required (a board id or slug)"));
    }
    if value.len() > KEY_MAX * 4 {
        return Err(invalid(
            "board_id must be a board id or slug of at most 64 characters",
        ));
    }
    no_control_chars("board_id", value, false)?;
    Ok(value)
}

/// A project named by id or slug.
pub fn project_ref(value: &str) -> Result<&str> {
    if value.is_empty() {
        return Err(invalid("project_id is required (a project id or slug)"));
    }
    if value.len() > KEY_MAX * 4 {
        return Err(invalid(
            "project_id must be a project id or slug of at most 64 characters",
        ));
    }
    no_control_chars("project_id", value, false)?;
    Ok(value)
}

pub fn id(field: &str, value: &str) -> Result<Uuid> {
    if value.is_empty() {
        return Err(invalid(format!("{field} is required")));
    }
    Uuid::parse_str(value).map_err(|_| invalid(format!("{field} must be a UUID")))
}

/// Lowercase letters, digits and `-`, 1–64 characters, not starting with `-`.
pub fn slug(value: &str) -> Result<String> {
    let ok = !value.is_empty()
        && value.len() <= KEY_MAX
        && !value.starts_with('-')
        && value
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    if !ok {
        return Err(invalid(
            "slug must be 1–64 of a-z, 0-9 and '-', not starting with '-'",
        ));
    }
    // Boards are named by id or slug in one field, so a slug must not read as an id.
    if Uuid::parse_str(value).is_ok() {
        return Err(invalid("slug must not be a UUID"));
    }
    Ok(value.to_owned())
}

/// A slug made from a board name: `Q3 Launch!` → `q3-launch`.
pub fn slug_from_name(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug: String = slug.chars().take(KEY_MAX).collect();
    if slug.is_empty() {
        "board".into()
    } else if Uuid::parse_str(&slug).is_ok() {
        format!("board-{slug}")
    } else {
        slug
    }
}

/// Lowercase letters, digits and `_`, 1–64 characters, starting with a letter.
pub fn lane_key(value: &str) -> Result<String> {
    let ok = value.len() <= KEY_MAX
        && value.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && value
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
    if !ok {
        return Err(invalid(format!(
            "lane key {value:?} must be 1–64 of a-z, 0-9 and '_', starting with a letter"
        )));
    }
    Ok(value.to_owned())
}

/// `in_progress` → `In progress`.
pub fn lane_name_from_key(key: &str) -> String {
    let words = key.replace('_', " ");
    let mut chars = words.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub fn request_id(value: &str) -> Result<&str> {
    if value.len() > REQUEST_ID_MAX {
        return Err(invalid(format!(
            "request_id must be at most {REQUEST_ID_MAX} bytes"
        )));
    }
    no_control_chars("request_id", value, false)?;
    Ok(value)
}

pub fn wip_limit(value: u32) -> Result<i32> {
    i32::try_from(value).map_err(|_| invalid("wip_limit is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded_in_characters() {
        assert_eq!(title("  Ship it ").ok().as_deref(), Some("Ship it"));
        assert!(title("   ").is_err());
        assert!(title(&"é".repeat(500)).is_ok());
        let err = title(&"x".repeat(501)).expect_err("too long");
        assert_eq!(err.to_string(), "title must be 1–500 characters");
    }

    #[test]
    fn control_characters_are_refused_naming_the_field() {
        let err = description("line one\nline\0two").expect_err("NUL");
        assert!(
            err.to_string()
                .starts_with("description must not contain control characters")
        );
        assert!(description("tabs\tand\r\nbreaks").is_ok());
        assert!(title("a\nb").is_err());
        assert!(title("bell\u{7}").is_err());
        assert!(labels(&["ok".into(), "bad\u{0}".into()]).is_err());
        assert!(request_id("id\u{0}").is_err());
        assert!(assignee("\u{9b}x").is_err());
    }

    #[test]
    fn slugs_and_lane_names_are_derived_readably() {
        assert_eq!(slug_from_name("Q3 Launch!"), "q3-launch");
        assert_eq!(slug_from_name("!!!"), "board");
        assert_eq!(lane_name_from_key("in_progress"), "In progress");
        assert!(lane_key("In Progress").is_err());
        assert!(lane_key("9lives").is_err());
        assert!(lane_key("in_progress").is_ok());
        let uuid = "0193a5d2-7c1e-7b7e-9f3a-2b1c4d5e6f70";
        assert!(slug(uuid).is_err());
        assert!(slug(&slug_from_name(uuid)).is_ok());
    }

    #[test]
    fn enums_reject_unknown_values() {
        assert!(priority(99, None).is_err());
        assert!(priority(0, None).is_err());
        assert_eq!(
            priority(0, Some(Priority::Medium)).ok(),
            Some(Priority::Medium)
        );
        assert!(kind(-1, Some(TaskKind::Task)).is_err());
    }
}
