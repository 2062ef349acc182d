//! The database's own copies of rules that also live in Rust (the task
//! writes run in PostgreSQL, in one round trip): each must agree with the
//! Rust it mirrors.

use board_service::rank::key_between;
use service_kit::test_database::TestDatabase;
use sqlx::PgPool;

async fn migrated() -> (TestDatabase, PgPool) {
    let db = TestDatabase::create().await;
    let pool = PgPool::connect(db.url()).await.expect("connect");
    board_service::MIGRATOR.run(&pool).await.expect("migrate");
    (db, pool)
}

/// Neighbour pairs as a lane meets them: long runs of appends and of
/// inserts at the front (which carry the integer part across its length
/// changes), and inserts at pseudo-random places (long fractions).
fn neighbour_pairs() -> Vec<(Option<String>, Option<String>)> {
    let mut pairs = vec![(None, None)];
    let mut keys: Vec<String> = vec![key_between(None, None).unwrap()];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..6000 {
        let at = match round % 3 {
            0 => keys.len(),
            1 if round < 3000 => 0,
            _ => {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 33) as usize % (keys.len() + 1)
            }
        };
        let before = at.checked_sub(1).map(|i| keys[i].clone());
        let after = keys.get(at).cloned();
        let key = key_between(before.as_deref(), after.as_deref()).unwrap();
        pairs.push((before, after));
        keys.insert(at, key);
    }
    // The smallest integer part, whose keys only grow a fraction.
    let smallest = "A00000000000000000000000000";
    pairs.push((None, Some(format!("{smallest}V"))));
    pairs.push((Some(format!("{smallest}1")), Some(format!("{smallest}2"))));
    pairs.push((Some("zzzzzzzzzzzzzzzzzzzzzzzzzzzz".into()), None));
    pairs
}

#[tokio::test]
async fn the_databases_order_keys_are_rank_rs_keys() {
    let (_db, pool) = migrated().await;
    let pairs = neighbour_pairs();
    let (before, after): (Vec<Option<String>>, Vec<Option<String>>) = pairs.iter().cloned().unzip();
    let from_sql: Vec<(Option<String>,)> = sqlx::query_as(
        "SELECT boardwire_key_between(a, b) FROM unnest($1::text[], $2::text[])
             WITH ORDINALITY AS p(a, b, n) ORDER BY n",
    )
    .bind(&before)
    .bind(&after)
    .fetch_all(&pool)
    .await
    .expect("keys from the database");
    assert_eq!(from_sql.len(), pairs.len());
    for ((a, b), (sql,)) in pairs.iter().zip(from_sql) {
        let rust = key_between(a.as_deref(), b.as_deref()).ok();
        assert_eq!(sql, rust, "between {a:?} and {b:?}");
    }
}

#[tokio::test]
async fn the_database_refuses_keys_out_of_order() {
    let (_db, pool) = migrated().await;
    let refused = sqlx::query("SELECT boardwire_key_between('a1', 'a0')")
        .execute(&pool)
        .await
        .expect_err("a1 is after a0");
    assert!(
        refused.to_string().contains("not in ascending order"),
        "{refused}"
    );
}

#[tokio::test]
async fn the_databases_kind_names_are_the_frames_names() {
    let (_db, pool) = migrated().await;
    for kind in 0..=4i16 {
        let (name,): (String,) = sqlx::query_as("SELECT boardwire_kind_name($1)")
            .bind(kind)
            .fetch_one(&pool)
            .await
            .expect("kind name");
        let frames = protocol::board_frames::TaskKind::from_proto(i32::from(kind)).as_str();
        assert_eq!(name, frames, "kind {kind}");
    }
}
