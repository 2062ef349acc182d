//! Property tests of the order keys: any text in gives a key or an error,
//! never a panic, and every key made sorts strictly between its neighbours.

use board_service::rank::key_between;
use proptest::prelude::*;

/// Keys as the service makes them: a chain of inserts at random places.
fn keys() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(any::<prop::sample::Index>(), 1..60).prop_map(|picks| {
        let mut keys: Vec<String> = Vec::new();
        for pick in picks {
            let at = pick.index(keys.len() + 1);
            let before = at.checked_sub(1).map(|i| keys[i].as_str());
            let after = keys.get(at).map(String::as_str);
            let key = key_between(before, after).expect("valid neighbours give a key");
            keys.insert(at, key);
        }
        keys
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn arbitrary_text_never_panics(a in ".{0,40}", b in ".{0,40}", a_some: bool, b_some: bool) {
        let _ = key_between(a_some.then_some(a.as_str()), b_some.then_some(b.as_str()));
    }

    #[test]
    fn inserted_keys_stay_sorted_and_unique(keys in keys()) {
        for pair in keys.windows(2) {
            prop_assert!(pair[0] < pair[1], "{:?} !< {:?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn a_key_between_two_keys_is_strictly_between(keys in keys(), pick in any::<prop::sample::Index>()) {
        let i = pick.index(keys.len());
        let before = keys[i].as_str();
        let after = keys.get(i + 1).map(String::as_str);
        let key = key_between(Some(before), after).unwrap();
        prop_assert!(before < key.as_str());
        if let Some(after) = after { prop_assert!(key.as_str() < after); }
        prop_assert!(key_between(after, Some(before)).is_err() || after.is_none());
    }
}
