//! A fresh, empty database per test, on the server named by `DATABASE_URL`,
//! or on a private throwaway server when it is unset.

use std::sync::OnceLock;

use sqlx::{Connection, PgConnection};

use crate::local_postgres::LocalPostgres;

/// A database created for one test. Dropped (with `FORCE`) when this value is
/// dropped if it lives on a shared server; a private server vanishes anyway.
pub struct TestDatabase {
    url: String,
    name: String,
    admin_url: String,
    shared_server: bool,
}

impl TestDatabase {
    /// Creates `bw_test_<uuid>`. Panics with the reason when no server can be had:
    /// a test without a database cannot do anything useful.
    pub async fn create() -> Self {
        let (admin_url, shared_server) = admin_url();
        let name = format!("bw_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("connect to {admin_url}: {e}"));
        sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        let _ = admin.close().await;
        Self {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
            shared_server,
        }
    }

    /// Connection URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if !self.shared_server {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside a runtime, so clean up on a thread with its own.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let drop = format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#);
                    let _ = sqlx::query(&drop).execute(&mut admin).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// The maintenance database URL, and whether the server is shared with others.
fn admin_url() -> (String, bool) {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return (with_database(&url, "postgres"), true);
    }
    static SERVER: OnceLock<LocalPostgres> = OnceLock::new();
    let server = SERVER.get_or_init(|| {
        LocalPostgres::start_throwaway().unwrap_or_else(|e| panic!("DATABASE_URL is unset and {e}"))
    });
    (server.url("postgres"), false)
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_path(&format!("/{database}"));
            parsed.to_string()
        }
        Err(_) => url.to_owned(),
    }
}
