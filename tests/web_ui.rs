//! The gateway serves the embedded UI and the board-list API the home page uses.

use boardwire::{Stack, StackConfig};
use service_kit::test_database::TestDatabase;

#[tokio::test]
async fn the_gateway_serves_the_page_and_lists_and_creates_boards() {
    let db = TestDatabase::create().await;
    let stack = Stack::build(StackConfig::for_tests(db.url()))
        .await
        .expect("stack");
    let base = format!("http://{}", stack.gateway_addr);
    tokio::spawn(stack.run_until_stopped(std::future::pending()));
    let http = reqwest::Client::new();

    let page = http.get(format!("{base}/")).send().await.expect("page");
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.text().await.expect("body").contains("app/main.js"));
    let script = http
        .get(format!("{base}/lib/board-client.js"))
        .send()
        .await
        .expect("module");
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let escape = http
        .get(format!("{base}/app/..%2F..%2FCargo.toml"))
        .send()
        .await
        .expect("escape");
    assert_eq!(escape.status(), 404);

    let created = http
        .post(format!("{base}/api/boards"))
        .json(&serde_json::json!({"name": "Mobile launch"}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.expect("json");
    assert_eq!(created["slug"], "mobile-launch");

    let list: serde_json::Value = http
        .get(format!("{base}/api/boards"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let slugs: Vec<_> = list["boards"]
        .as_array()
        .expect("boards")
        .iter()
        .map(|b| b["slug"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(slugs, ["default", "mobile-launch"]);

    let invalid = http
        .post(format!("{base}/api/boards"))
        .json(&serde_json::json!({"name": ""}))
        .send()
        .await
        .expect("invalid");
    assert_eq!(invalid.status(), 400);
    let body: serde_json::Value = invalid.json().await.expect("json");
    assert_eq!(body["message"], "name must be 1–200 characters");
}
