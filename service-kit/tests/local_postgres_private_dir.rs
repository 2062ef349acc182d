//! `cargo run` as root from a private (0700) folder: initdb and postgres
//! run as the `postgres` user, which cannot enter it. The server must still
//! start, and its data must still be there on the next run.

use service_kit::local_postgres::{LocalPostgres, Options};
use sqlx::{Connection, PgConnection};

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// A `mktemp -d` folder: mode 0700, owned by whoever runs the test.
fn private_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

async fn query_one(url: &str, sql: &str) -> Option<String> {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let row: Option<(String,)> = sqlx::query_as(sql)
        .fetch_optional(&mut conn)
        .await
        .ok()
        .flatten();
    row.map(|(s,)| s)
}

#[tokio::test]
async fn root_in_a_private_folder_starts_and_keeps_its_data() {
    if !is_root() {
        eprintln!("not root: the postgres user is not involved, nothing to check here");
        return;
    }
    let private = private_dir();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&private.path().metadata().unwrap().permissions())
            & 0o777,
        0o700
    );
    let dir = private.path().join(".boardwire").join("postgres");
    let start = |dir: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            LocalPostgres::start(Options {
                dir,
                throwaway: false,
            })
        })
    };

    let first = start(dir.clone())
        .await
        .unwrap()
        .expect("starts as root in a 0700 folder");
    let url = first.url("postgres");
    let mut conn = PgConnection::connect(&url).await.expect("connect");
    sqlx::query("CREATE TABLE kept (v text)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO kept VALUES ('still here')")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    drop(first);

    let second = start(dir.clone()).await.unwrap().expect("starts again");
    let kept = query_one(&second.url("postgres"), "SELECT v FROM kept").await;
    assert_eq!(
        kept.as_deref(),
        Some("still here"),
        "data persists between runs"
    );
    drop(second);

    // The folder says where the cluster went; clean that up too.
    let note = std::fs::read_to_string(dir.join("LOCATION")).expect("LOCATION note");
    let actual = note.lines().nth(1).expect("path line").trim().to_owned();
    assert!(
        std::path::Path::new(&actual)
            .join("data/PG_VERSION")
            .exists()
    );
    std::fs::remove_dir_all(actual).unwrap();
}

#[tokio::test]
async fn a_throwaway_server_starts_from_a_private_temp_folder() {
    let private = private_dir();
    let dir = private
        .path()
        .join(format!("pg-{}-throwaway", std::process::id()));
    let server = tokio::task::spawn_blocking(move || {
        LocalPostgres::start(Options {
            dir,
            throwaway: true,
        })
    })
    .await
    .unwrap()
    .expect("starts");
    let one = query_one(&server.url("postgres"), "SELECT '1'::text").await;
    assert_eq!(one.as_deref(), Some("1"));
}
