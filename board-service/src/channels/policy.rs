//! How much history each channel keeps, by name pattern.

use std::time::Duration;

use anyhow::{Context, bail};

/// One channel's history: at most `size` publications, none older than
/// `age`, in logged tables when `durable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    pub size: u64,
    pub age: Duration,
    pub durable: bool,
}

/// The default for channels no pattern names: 100 publications, 5 minutes,
/// ephemeral (Centrifugo's defaults are similar: history is opt-in there).
pub const DEFAULT_HISTORY: History = History {
    size: 100,
    age: Duration::from_secs(300),
    durable: false,
};

/// Patterns in the order given; the first that matches a channel decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<(String, History)>,
    fallback: History,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            fallback: DEFAULT_HISTORY,
        }
    }
}

impl Policy {
    /// Parses `CHANNEL_HISTORY`: comma-separated `pattern=size/age_secs`
    /// rules, with `/durable` to keep the history in logged tables, e.g.
    /// `topics/*=1000/86400/durable,metrics=1/10`. `*=…` sets the default.
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let mut policy = Self::default();
        for rule in spec.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (pattern, history) = rule.split_once('=').with_context(|| {
                format!("CHANNEL_HISTORY rule {rule:?} is not pattern=size/age")
            })?;
            let history =
                parse_history(history).with_context(|| format!("CHANNEL_HISTORY rule {rule:?}"))?;
            if pattern.trim().is_empty() {
                bail!("CHANNEL_HISTORY rule {rule:?} has no pattern");
            }
            if pattern.trim() == "*" {
                policy.fallback = history;
            } else {
                policy.rules.push((pattern.trim().to_owned(), history));
            }
        }
        Ok(policy)
    }

    pub fn history(&self, channel: &str) -> History {
        self.rules
            .iter()
            .find(|(pattern, _)| service_kit::channels::matches(pattern, channel))
            .map_or(self.fallback, |(_, history)| *history)
    }
}

fn parse_history(text: &str) -> anyhow::Result<History> {
    let mut parts = text.split('/').map(str::trim);
    let size: u64 = parts
        .next()
        .unwrap_or_default()
        .parse()
        .context("size must be a whole number")?;
    let age: u64 = parts
        .next()
        .context("give the age in seconds after the size: size/age")?
        .parse()
        .context("age must be whole seconds")?;
    let durable = match parts.next() {
        None => false,
        Some("durable") => true,
        Some(other) => bail!("unknown flag {other:?}; the only one is durable"),
    };
    if size == 0 || size > 1_000_000 {
        bail!("size must be between 1 and 1000000");
    }
    if age == 0 {
        bail!("age must be at least one second");
    }
    Ok(History {
        size,
        age: Duration::from_secs(age),
        durable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_decides() {
        let policy = Policy::parse("topics/*=1000/86400/durable, metrics=1/10, *=50/60").unwrap();
        assert_eq!(
            policy.history("topics/deploys"),
            History {
                size: 1000,
                age: Duration::from_secs(86400),
                durable: true
            }
        );
        assert_eq!(policy.history("metrics").size, 1);
        assert_eq!(policy.history("global").size, 50);
        assert_eq!(Policy::default().history("x"), DEFAULT_HISTORY);
    }

    #[test]
    fn bad_rules_are_named() {
        for bad in [
            "x",
            "x=1",
            "x=0/1",
            "x=1/0",
            "x=1/1/forever",
            "=1/1",
            "x=a/1",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
