//! PresenceService over real gRPC and PostgreSQL: counts summed over
//! gateways, diffs after the first full list, a lease that runs out, and
//! who may write and watch.

mod common;

use std::time::Duration;

use board_service::Config;
use common::Service;
use protocol::v1::{
    CreateBoardRequest, PresenceChange, PresenceEntry, PresenceUpdate, UpdatePresenceRequest,
    WatchPresenceRequest, presence_service_client::PresenceServiceClient,
};
use service_kit::{
    auth::{AuthConfig, insert_bearer},
    test_database::TestDatabase,
};
use tonic::{Code, Request, Streaming, transport::Channel};

const SECRET: &str = "presence-service-secret";
const WAIT: Duration = Duration::from_secs(20);

type Presence = PresenceServiceClient<Channel>;

fn as_<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    insert_bearer(request.metadata_mut(), token);
    request
}

fn change(scope: &str, key: &str, connections: u32) -> PresenceChange {
    PresenceChange {
        scope: scope.into(),
        entry: Some(PresenceEntry {
            key: key.into(),
            name: key.to_uppercase(),
            connections,
        }),
    }
}

fn update(gateway: &str, lease_ms: u32, changes: Vec<PresenceChange>) -> UpdatePresenceRequest {
    UpdatePresenceRequest {
        gateway_id: gateway.into(),
        lease_ms,
        changes,
        ..Default::default()
    }
}

async fn next(stream: &mut Streaming<PresenceUpdate>) -> PresenceUpdate {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("an update within the wait")
        .expect("stream ok")
        .expect("stream open")
}

struct Fixture {
    _db: TestDatabase,
    _service: Service,
    presence: Presence,
    admin: String,
    scope: String,
    other_board: String,
}

async fn start() -> Fixture {
    let db = TestDatabase::create().await;
    let mut config = Config::new(db.url());
    config.auth = AuthConfig::with_secret(SECRET);
    let service = Service::start_with(config, "127.0.0.1:0".parse().unwrap()).await;
    let mut boards = service.client().await;
    let admin = service_kit::testing::board_token(SECRET, "admin", &[], &["*"]);
    let mut ids = Vec::new();
    for slug in ["here", "there"] {
        let board = boards
            .create_board(as_(
                &admin,
                CreateBoardRequest {
                    name: slug.into(),
                    slug: Some(slug.into()),
                    ..Default::default()
                },
            ))
            .await
            .expect("create board")
            .into_inner();
        ids.push(board.id);
    }
    let presence = Presence::connect(format!("http://{}", service.addr))
        .await
        .expect("connect");
    Fixture {
        _db: db,
        _service: service,
        presence,
        admin,
        scope: format!("board:{}", ids[0]),
        other_board: ids[1].clone(),
    }
}

#[tokio::test]
async fn counts_are_summed_over_gateways_and_a_lapsed_lease_leaves() {
    let mut f = start().await;
    let (admin, scope) = (f.admin.clone(), f.scope.clone());
    f.presence
        .update_presence(as_(
            &admin,
            update("gw-a", 60_000, vec![change(&scope, "ann", 2)]),
        ))
        .await
        .expect("gateway A");
    let mut watch = f
        .presence
        .watch_presence(as_(
            &admin,
            WatchPresenceRequest {
                scope: scope.clone(),
            },
        ))
        .await
        .expect("watch")
        .into_inner();
    let first = next(&mut watch).await;
    assert!(first.full);
    assert_eq!(first.entries.len(), 1);
    assert_eq!(first.entries[0].connections, 2);

    // Gateway B, on a short lease: Ann's third tab and Bob.
    let created = f
        .presence
        .update_presence(as_(
            &admin,
            update(
                "gw-b",
                1_000,
                vec![change(&scope, "ann", 1), change(&scope, "bob", 1)],
            ),
        ))
        .await
        .expect("gateway B")
        .into_inner()
        .created;
    assert!(created, "B's lease is new");
    let mut seen = (false, false);
    while seen != (true, true) {
        let diff = next(&mut watch).await;
        assert!(!diff.full);
        seen.0 |= diff
            .updated
            .iter()
            .any(|e| e.key == "ann" && e.connections == 3);
        seen.1 |= diff.joined.iter().any(|e| e.key == "bob");
    }

    // B stops renewing: Bob leaves and Ann is back to A's two.
    let mut gone = (false, false);
    while gone != (true, true) {
        let diff = next(&mut watch).await;
        gone.0 |= diff.left.iter().any(|e| e.key == "bob");
        gone.1 |= diff
            .updated
            .iter()
            .any(|e| e.key == "ann" && e.connections == 2);
        if gone == (true, true) {
            assert_eq!(diff.count, 1);
        }
    }
    // Renewing after the lease ran out says so, so the gateway sends all again.
    let renewed = f
        .presence
        .update_presence(as_(&admin, update("gw-b", 1_000, vec![])))
        .await
        .expect("renew")
        .into_inner();
    assert!(renewed.created);

    // A releases: Ann leaves at once.
    let release = UpdatePresenceRequest {
        release: true,
        ..update("gw-a", 60_000, vec![])
    };
    f.presence
        .update_presence(as_(&admin, release))
        .await
        .expect("release");
    loop {
        let diff = next(&mut watch).await;
        if diff.left.iter().any(|e| e.key == "ann") {
            assert_eq!(diff.count, 0);
            break;
        }
    }
}

#[tokio::test]
async fn only_service_tokens_write_and_watchers_need_read_access() {
    let mut f = start().await;
    let scope = f.scope.clone();
    let reader = service_kit::testing::board_token(SECRET, "ann", &["*"], &[]);
    let denied = f
        .presence
        .update_presence(as_(
            &reader,
            update("gw", 5_000, vec![change(&scope, "x", 1)]),
        ))
        .await
        .expect_err("a user token cannot write presence");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let missing = f
        .presence
        .update_presence(update("gw", 5_000, vec![]))
        .await
        .expect_err("no token");
    assert_eq!(missing.code(), Code::Unauthenticated);

    let other_only = service_kit::testing::board_token(SECRET, "bo", &[&f.other_board], &[]);
    let watch = f
        .presence
        .watch_presence(as_(
            &other_only,
            WatchPresenceRequest {
                scope: scope.clone(),
            },
        ))
        .await
        .expect_err("cannot read that board");
    assert_eq!(watch.code(), Code::PermissionDenied);
    let channel = f
        .presence
        .watch_presence(as_(
            &reader,
            WatchPresenceRequest {
                scope: "channel:global".into(),
            },
        ))
        .await
        .expect_err("other scopes take a service token");
    assert_eq!(channel.code(), Code::PermissionDenied);
    f.presence
        .watch_presence(as_(&reader, WatchPresenceRequest { scope }))
        .await
        .expect("a reader watches its board");
}

#[tokio::test]
async fn bad_updates_are_refused_naming_the_field() {
    let mut f = start().await;
    let (admin, scope) = (f.admin.clone(), f.scope.clone());
    let mut bad_name = change(&scope, "ann", 1);
    if let Some(entry) = bad_name.entry.as_mut() {
        entry.name = "Ann\u{1b}[2J".into();
    }
    for (request, field) in [
        (update("", 5_000, vec![]), "gateway_id"),
        (update("gw", 10, vec![]), "lease_ms"),
        (
            update("gw", 5_000, vec![change("", "ann", 1)]),
            "changes.scope",
        ),
        (
            update("gw", 5_000, vec![change(&scope, "", 1)]),
            "changes.entry.key",
        ),
        (update("gw", 5_000, vec![bad_name]), "changes.entry.name"),
    ] {
        let refused = f
            .presence
            .update_presence(as_(&admin, request))
            .await
            .expect_err(field);
        assert_eq!(refused.code(), Code::InvalidArgument, "{field}");
        assert!(
            refused.message().starts_with(field),
            "{}",
            refused.message()
        );
    }
}
