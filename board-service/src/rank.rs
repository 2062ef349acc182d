//! Fractional order keys: a task's place in its lane is a string that sorts
//! between its neighbours' strings, so a move rewrites one row and never
//! renumbers the lane.
//!
//! The format is the one of rocicorp/fractional-indexing (Greenspan,
//! "Implementing Fractional Indexing"): base-62 digits in ASCII order, an
//! integer part whose length is encoded by its head character, then a
//! fraction. Appending at the end increments the integer part, so keys of a
//! lane filled by appends stay 2-3 characters long; inserting between two
//! neighbours adds about one character per six halvings. Keys compare by
//! bytes, which is PostgreSQL's `COLLATE "C"` and JavaScript's `<`.

const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ZERO: u8 = b'0';
const SMALLEST_INTEGER: &str = "A00000000000000000000000000";

/// Why a key could not be made.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RankError {
    #[error("order key {0:?} is malformed")]
    Malformed(String),
    #[error("order keys {0:?} and {1:?} are not in ascending order")]
    NotAscending(String, String),
    #[error("order key space exhausted")]
    Exhausted,
}

/// A key strictly between `a` and `b`; `None` is the start or end of the lane.
pub fn key_between(a: Option<&str>, b: Option<&str>) -> Result<String, RankError> {
    if let Some(a) = a {
        validate(a)?;
    }
    if let Some(b) = b {
        validate(b)?;
    }
    if let (Some(a), Some(b)) = (a, b)
        && a >= b
    {
        return Err(RankError::NotAscending(a.into(), b.into()));
    }
    match (a, b) {
        (None, None) => Ok("a0".into()),
        (None, Some(b)) => {
            let (ib, fb) = split(b)?;
            if ib == SMALLEST_INTEGER {
                return Ok(format!("{ib}{}", midpoint(b"", Some(fb.as_bytes()))));
            }
            if ib.len() < b.len() {
                return Ok(ib.into());
            }
            decrement_integer(ib).ok_or(RankError::Exhausted)
        }
        (Some(a), None) => {
            let (ia, fa) = split(a)?;
            Ok(match increment_integer(ia)? {
                Some(i) => i,
                None => format!("{ia}{}", midpoint(fa.as_bytes(), None)),
            })
        }
        (Some(a), Some(b)) => {
            let (ia, fa) = split(a)?;
            let (ib, fb) = split(b)?;
            if ia == ib {
                return Ok(format!(
                    "{ia}{}",
                    midpoint(fa.as_bytes(), Some(fb.as_bytes()))
                ));
            }
            let i = increment_integer(ia)?.ok_or(RankError::Exhausted)?;
            if i.as_str() < b {
                Ok(i)
            } else {
                Ok(format!("{ia}{}", midpoint(fa.as_bytes(), None)))
            }
        }
    }
}

fn digit_value(c: u8) -> usize {
    DIGITS.iter().position(|&d| d == c).unwrap_or(0)
}

/// A fraction strictly between fractions `a` and `b` (`None` = 1), neither
/// with a trailing zero.
fn midpoint(a: &[u8], b: Option<&[u8]>) -> String {
    if let Some(b) = b {
        let n = (0..b.len())
            .take_while(|&i| a.get(i).copied().unwrap_or(ZERO) == b[i])
            .count();
        if n > 0 {
            let prefix = std::str::from_utf8(&b[..n]).unwrap_or_default();
            return format!(
                "{prefix}{}",
                midpoint(a.get(n..).unwrap_or(&[]), Some(&b[n..]))
            );
        }
    }
    let digit_a = a.first().map_or(0, |&c| digit_value(c));
    let digit_b = b
        .and_then(|b| b.first())
        .map_or(DIGITS.len(), |&c| digit_value(c));
    if digit_b - digit_a > 1 {
        let mid = (digit_a + digit_b).div_ceil(2);
        return (DIGITS[mid] as char).to_string();
    }
    match b {
        Some(b) if b.len() > 1 => (b[0] as char).to_string(),
        _ => format!(
            "{}{}",
            DIGITS[digit_a] as char,
            midpoint(a.get(1..).unwrap_or(&[]), None)
        ),
    }
}

fn integer_length(head: u8) -> Option<usize> {
    match head {
        b'a'..=b'z' => Some((head - b'a') as usize + 2),
        b'A'..=b'Z' => Some((b'Z' - head) as usize + 2),
        _ => None,
    }
}

/// Splits a key into its integer part and its fraction.
fn split(key: &str) -> Result<(&str, &str), RankError> {
    let malformed = || RankError::Malformed(key.into());
    let head = *key.as_bytes().first().ok_or_else(malformed)?;
    let len = integer_length(head).ok_or_else(malformed)?;
    if key.len() < len {
        return Err(malformed());
    }
    Ok(key.split_at(len))
}

fn validate(key: &str) -> Result<(), RankError> {
    let malformed = || RankError::Malformed(key.into());
    if key == SMALLEST_INTEGER || !key.bytes().all(|c| DIGITS.contains(&c)) {
        return Err(malformed());
    }
    let (_, fraction) = split(key)?;
    if fraction.ends_with(ZERO as char) {
        return Err(malformed());
    }
    Ok(())
}

fn increment_integer(x: &str) -> Result<Option<String>, RankError> {
    let bytes = x.as_bytes();
    let head = bytes[0];
    let mut digits: Vec<u8> = bytes[1..].to_vec();
    let mut carry = true;
    for d in digits.iter_mut().rev() {
        let next = digit_value(*d) + 1;
        if next == DIGITS.len() {
            *d = ZERO;
        } else {
            *d = DIGITS[next];
            carry = false;
            break;
        }
    }
    if !carry {
        return Ok(Some(format!("{}{}", head as char, ascii(&digits))));
    }
    match head {
        b'Z' => Ok(Some("a0".into())),
        b'z' => Ok(None),
        _ => {
            let new_head = head + 1;
            if new_head > b'a' {
                digits.push(ZERO);
            } else {
                digits.pop();
            }
            Ok(Some(format!("{}{}", new_head as char, ascii(&digits))))
        }
    }
}

fn decrement_integer(x: &str) -> Option<String> {
    let bytes = x.as_bytes();
    let head = bytes[0];
    let mut digits: Vec<u8> = bytes[1..].to_vec();
    let largest = DIGITS[DIGITS.len() - 1];
    let mut borrow = true;
    for d in digits.iter_mut().rev() {
        let value = digit_value(*d);
        if value == 0 {
            *d = largest;
        } else {
            *d = DIGITS[value - 1];
            borrow = false;
            break;
        }
    }
    if !borrow {
        return Some(format!("{}{}", head as char, ascii(&digits)));
    }
    match head {
        b'a' => Some(format!("Z{}", largest as char)),
        b'A' => None,
        _ => {
            let new_head = head - 1;
            if new_head < b'Z' {
                digits.push(largest);
            } else {
                digits.pop();
            }
            Some(format!("{}{}", new_head as char, ascii(&digits)))
        }
    }
}

fn ascii(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_implementation() {
        // Cases from rocicorp/fractional-indexing's test suite.
        let cases: &[(Option<&str>, Option<&str>, &str)] = &[
            (None, None, "a0"),
            (None, Some("a0"), "Zz"),
            (None, Some("Zz"), "Zy"),
            (Some("a0"), None, "a1"),
            (Some("a1"), None, "a2"),
            (Some("a0"), Some("a1"), "a0V"),
            (Some("a1"), Some("a2"), "a1V"),
            (Some("a0V"), Some("a1"), "a0l"),
            (Some("Zz"), Some("a0"), "ZzV"),
            (Some("Zz"), Some("a1"), "a0"),
            (None, Some("Y00"), "Xzzz"),
            (Some("bzz"), None, "c000"),
            (Some("a0"), Some("a0V"), "a0G"),
            (Some("a0"), Some("a0G"), "a08"),
            (Some("b125"), Some("b129"), "b127"),
            (Some("a0"), Some("a1V"), "a1"),
            (Some("Zz"), Some("a01"), "a0"),
            (None, Some("a0V"), "a0"),
            (None, Some("b999"), "b99"),
        ];
        for &(a, b, want) in cases {
            assert_eq!(
                key_between(a, b).as_deref(),
                Ok(want),
                "between {a:?} and {b:?}"
            );
        }
    }

    #[test]
    fn rejects_malformed_and_unordered_keys() {
        assert!(matches!(
            key_between(Some("a00"), None),
            Err(RankError::Malformed(_))
        ));
        assert!(matches!(
            key_between(Some("a0"), Some("a0")),
            Err(RankError::NotAscending(..))
        ));
        assert!(matches!(
            key_between(Some("!"), None),
            Err(RankError::Malformed(_))
        ));
        assert!(matches!(
            key_between(Some(""), None),
            Err(RankError::Malformed(_))
        ));
    }

    #[test]
    fn appends_stay_short() {
        let mut last: Option<String> = None;
        for _ in 0..100_000 {
            let next = key_between(last.as_deref(), None).expect("append");
            if let Some(prev) = &last {
                assert!(prev < &next);
            }
            last = Some(next);
        }
        assert!(last.expect("key").len() <= 5);
    }

    #[test]
    fn repeated_inserts_in_one_gap_keep_order() {
        let (low, mut high) = ("a0".to_string(), "a1".to_string());
        for _ in 0..500 {
            let mid = key_between(Some(&low), Some(&high)).expect("between");
            assert!(low < mid && mid < high, "{low} < {mid} < {high}");
            high = mid;
        }
        // About one character per six halvings.
        assert!(high.len() < 500 / 5);
    }
}
