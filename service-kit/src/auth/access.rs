//! What a verified caller may do.

use serde::Deserialize;

/// The grants of one caller: which boards it may read and write, and who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    read: Vec<String>,
    write: Vec<String>,
    create_boards: bool,
    /// Channel patterns the caller may subscribe to, and publish on.
    channels: ChannelGrants,
    /// The token's `sub`; `None` with auth off or a token without one.
    pub subject: Option<String>,
    /// The token's `name` (OIDC's display name), for presence.
    pub name: Option<String>,
    /// Expiry in ms since the epoch; 0 for never (auth off).
    pub expires_ms: u64,
}

/// The claims Boardwire reads; the standard ones are checked by jsonwebtoken.
#[derive(Debug, Deserialize)]
pub(super) struct Claims {
    pub exp: u64,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub read: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub write: Vec<String>,
    #[serde(default)]
    pub create_boards: bool,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub channels: ChannelGrants,
}

/// The `channels` claim: `{"read": ["global", "topics/*"], "publish": [...]}`.
/// A pattern in `publish` grants reading too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ChannelGrants {
    #[serde(default, deserialize_with = "one_or_many")]
    pub read: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub publish: Vec<String>,
}

/// `"*"` and `["a", "b"]` both name boards; issuers differ in which they emit.
fn one_or_many<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(de)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

impl Access {
    /// Everything: auth is off.
    pub fn open() -> Self {
        Self {
            read: vec!["*".into()],
            write: vec!["*".into()],
            create_boards: true,
            channels: ChannelGrants {
                read: vec!["*".into()],
                publish: vec!["*".into()],
            },
            subject: None,
            name: None,
            expires_ms: 0,
        }
    }

    pub(super) fn from_claims(claims: Claims) -> Self {
        let create_boards = claims.create_boards || claims.write.iter().any(|b| b == "*");
        Self {
            read: claims.read,
            write: claims.write,
            create_boards,
            channels: claims.channels,
            subject: claims.sub.filter(|s| !s.is_empty()),
            name: claims.name.filter(|s| !s.trim().is_empty()),
            expires_ms: claims.exp.saturating_mul(1000),
        }
    }

    fn grants(list: &[String], board_id: &str, slug: &str) -> bool {
        list.iter().any(|b| b == "*" || b == board_id || b == slug)
    }

    /// Whether the caller may read the board with this id and slug.
    pub fn can_read(&self, board_id: &str, slug: &str) -> bool {
        Self::grants(&self.read, board_id, slug) || self.can_write(board_id, slug)
    }

    /// Whether the caller may change the board with this id and slug.
    pub fn can_write(&self, board_id: &str, slug: &str) -> bool {
        Self::grants(&self.write, board_id, slug)
    }

    /// Whether the caller may subscribe to `channel`.
    pub fn can_subscribe(&self, channel: &str) -> bool {
        crate::channels::any_matches(&self.channels.read, channel) || self.can_publish(channel)
    }

    /// Whether the caller may publish on `channel`.
    pub fn can_publish(&self, channel: &str) -> bool {
        crate::channels::any_matches(&self.channels.publish, channel)
    }

    pub fn can_create_boards(&self) -> bool {
        self.create_boards
    }

    /// Whether reads are limited to named boards.
    pub fn read_is_scoped(&self) -> bool {
        !self.read.iter().chain(&self.write).any(|b| b == "*")
    }

    /// Whether writes are limited to named boards, so a task command must be
    /// checked against the board that holds the task.
    pub fn write_is_scoped(&self) -> bool {
        !self.write.iter().any(|b| b == "*")
    }

    /// The boards (ids or slugs) the caller may write, for a check made
    /// inside the database under the board's lock; `None` when it may
    /// write every board. Means what [`Access::can_write`] means.
    pub fn write_grants(&self) -> Option<&[String]> {
        self.write_is_scoped().then_some(self.write.as_slice())
    }

    /// Whether this caller may write at all (read-only tokens may not).
    pub fn can_write_any(&self) -> bool {
        !self.write.is_empty()
    }

    /// The key a caller's chat sessions and idempotency keys are filed under:
    /// its `sub`, or `""` when auth is off or the token names nobody.
    pub fn owner_key(&self) -> &str {
        self.subject.as_deref().unwrap_or("")
    }

    /// Who the caller is to other people (presence): the token's `name`,
    /// else its `sub`.
    pub fn display_name(&self) -> Option<&str> {
        self.name.as_deref().or(self.subject.as_deref())
    }

    /// Whether the token has expired at `now_ms` (never, with auth off).
    pub fn expired_at(&self, now_ms: u64) -> bool {
        self.expires_ms != 0 && now_ms >= self.expires_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(read: &[&str], write: &[&str]) -> Access {
        Access::from_claims(Claims {
            exp: 1,
            sub: Some("u1".into()),
            read: read.iter().map(|s| s.to_string()).collect(),
            write: write.iter().map(|s| s.to_string()).collect(),
            create_boards: false,
            name: None,
            channels: ChannelGrants {
                read: vec!["global".into(), "agents/*".into()],
                publish: vec!["topics/*".into()],
            },
        })
    }

    #[test]
    fn grants_follow_the_claims() {
        let a = access(&["demo"], &["b2"]);
        assert!(a.can_read("b1", "demo"));
        assert!(!a.can_write("b1", "demo"));
        assert!(a.can_read("b2", "other"));
        assert!(!a.can_read("b3", "x"));
        assert!(a.write_is_scoped() && a.read_is_scoped());
        assert!(!a.can_create_boards());
        assert_eq!(a.owner_key(), "u1");

        let reader = access(&["*"], &[]);
        assert!(reader.can_read("any", "any") && !reader.can_write_any());
        assert!(!reader.read_is_scoped());

        assert!(a.can_subscribe("agents/x") && !a.can_publish("agents/x"));
        assert!(a.can_subscribe("topics/t") && a.can_publish("topics/t"));
        assert!(!a.can_subscribe("metrics"));
        assert!(Access::open().can_publish("anything"));

        let admin = access(&[], &["*"]);
        assert!(admin.can_create_boards() && !admin.write_is_scoped());
        assert!(Access::open().can_create_boards());
        assert_eq!(Access::open().owner_key(), "");
    }
}
