//! The glob patterns that grant them that grant channels (JWT `channels` claims, history
//! policies). Names are checked by `protocol::channel_frames::check_name`.

/// Whether `pattern` matches `name`. `*` matches any run of characters,
/// separators included, so `agents/*` grants `agents/a` and `sse:progress:*`
/// grants `sse:progress:scraper`; everything else matches itself.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    // Iterative glob with one backtrack point: linear for one star, and
    // never exponential however many a token carries.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// Whether any of `patterns` matches `name`.
pub fn any_matches(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| matches(p, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_seed_channel_names() {
        assert!(matches("*", "global"));
        assert!(matches("global", "global"));
        assert!(!matches("global", "globals"));
        assert!(matches("agents/*", "agents/backend-laravel"));
        assert!(!matches("agents/*", "sessions/abc"));
        assert!(matches("sse:progress:*", "sse:progress:scraper"));
        assert!(matches("a*c*e", "abcde"));
        assert!(!matches("a*c*e", "abcd"));
        assert!(matches("topics/*/x", "topics/a/b/x"));
        assert!(!matches("", "x"));
        // Many stars stay fast (no exponential backtracking).
        let name = "a".repeat(200);
        assert!(!matches(&format!("{}b", "a*".repeat(50)), &name));
    }
}
