//! The private-PostgreSQL path is what a new user without DATABASE_URL gets,
//! so it is tested for real: start, create databases, query them.

use service_kit::test_database::TestDatabase;
use sqlx::{Connection, PgConnection};

#[tokio::test]
async fn each_test_database_is_fresh_and_usable() {
    let first = TestDatabase::create().await;
    let second = TestDatabase::create().await;
    assert_ne!(first.url(), second.url());

    let mut conn = PgConnection::connect(first.url()).await.expect("connect");
    sqlx::query("CREATE TABLE t (x int)")
        .execute(&mut conn)
        .await
        .expect("create");
    let mut other = PgConnection::connect(second.url()).await.expect("connect");
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = 't'")
            .fetch_one(&mut other)
            .await
            .expect("count");
    assert_eq!(tables, 0, "databases must not share tables");
}
