//! The auth matrix at board-service's own door: every RPC checks the
//! caller's bearer token, so no path around the gateway or the bridge
//! writes (or reads) a board its caller may not.

mod common;

use board_service::Config;
use common::Service;
use protocol::v1::{
    CompleteSprintRequest, CreateBoardRequest, CreateLaneRequest, CreateProjectRequest,
    CreateSprintRequest, CreateTaskRequest, DeleteLaneRequest, DeleteTaskRequest, GetBoardRequest,
    GetProjectRequest, ListBoardsRequest, ListProjectsRequest, ListSprintsRequest, MoveTaskRequest,
    SetBoardProjectRequest, StartSprintRequest, UpdateLaneRequest, UpdateProjectRequest,
    UpdateTaskRequest, WatchBoardRequest, board_service_client::BoardServiceClient,
};
use serde_json::{Value, json};
use service_kit::{auth::AuthConfig, test_database::TestDatabase};
use tonic::{Code, Request, transport::Channel};

const SECRET: &str = "board-service-test-secret";

use service_kit::testing::unix_now as now;

fn sign_with(secret: &str, claims: Value) -> String {
    service_kit::testing::sign_token(secret, &claims)
}

fn token(sub: &str, read: &[&str], write: &[&str]) -> String {
    service_kit::testing::board_token(SECRET, sub, read, write)
}

/// `message` with `authorization: Bearer <token>`, or none.
fn as_<T>(token: Option<&str>, message: T) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        service_kit::auth::insert_bearer(request.metadata_mut(), token);
    }
    request
}

struct Fixture {
    _db: TestDatabase,
    _service: Service,
    client: BoardServiceClient<Channel>,
    admin: String,
    /// Board `alpha`, writable by `writer`; board `beta`, by `admin` only.
    alpha: String,
    beta: String,
    beta_task: String,
    beta_lane: String,
}

async fn start() -> Fixture {
    let db = TestDatabase::create().await;
    let mut config = Config::new(db.url());
    config.auth = AuthConfig::with_secret(SECRET);
    let service = Service::start_with(config, "127.0.0.1:0".parse().unwrap()).await;
    let mut client = service.client().await;
    let admin = token("admin", &[], &["*"]);
    let board = |name: &'static str, slug: &'static str| {
        let request = as_(
            Some(&admin),
            CreateBoardRequest {
                name: name.into(),
                slug: Some(slug.into()),
                ..Default::default()
            },
        );
        let mut client = client.clone();
        async move {
            client
                .create_board(request)
                .await
                .expect("admin creates")
                .into_inner()
        }
    };
    let alpha = board("Alpha", "alpha").await.id;
    let beta = board("Beta", "beta").await;
    let beta_task = client
        .create_task(as_(
            Some(&admin),
            CreateTaskRequest {
                board_id: beta.id.clone(),
                lane_id: "todo".into(),
                title: "secret beta plan".into(),
                request_id: "shared-key".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("admin writes beta")
        .into_inner()
        .id;
    Fixture {
        _db: db,
        _service: service,
        client,
        admin,
        alpha,
        beta_lane: beta.lanes[0].id.clone(),
        beta: beta.id,
        beta_task,
    }
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let mut f = start().await;
    let expired = sign_with(SECRET, json!({"exp": now() - 3600, "write": ["*"]}));
    let early = sign_with(
        SECRET,
        json!({"exp": now() + 7200, "nbf": now() + 3600, "write": ["*"]}),
    );
    let forged = sign_with(
        "not-the-secret",
        json!({"exp": now() + 600, "write": ["*"]}),
    );
    for bad in [
        None,
        Some("garbage"),
        Some(&*expired),
        Some(&*early),
        Some(&*forged),
    ] {
        let list = f.client.list_boards(as_(bad, ListBoardsRequest {})).await;
        assert_eq!(list.unwrap_err().code(), Code::Unauthenticated, "{bad:?}");
        let get = f
            .client
            .get_board(as_(
                bad,
                GetBoardRequest {
                    board_id: f.alpha.clone(),
                },
            ))
            .await;
        assert_eq!(get.unwrap_err().code(), Code::Unauthenticated);
        let create = f
            .client
            .create_task(as_(
                bad,
                CreateTaskRequest {
                    board_id: f.alpha.clone(),
                    lane_id: "todo".into(),
                    title: "anonymous".into(),
                    ..Default::default()
                },
            ))
            .await;
        assert_eq!(create.unwrap_err().code(), Code::Unauthenticated);
        let watch = f
            .client
            .watch_board(as_(
                bad,
                WatchBoardRequest {
                    board_id: f.alpha.clone(),
                    after_version: 0,
                },
            ))
            .await;
        assert_eq!(watch.unwrap_err().code(), Code::Unauthenticated);
    }
    let snapshot = f
        .client
        .get_board(as_(
            Some(&f.admin),
            GetBoardRequest {
                board_id: f.alpha.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(snapshot.tasks.is_empty(), "nothing was written");
}

#[tokio::test]
async fn a_token_reads_and_writes_only_the_boards_it_names() {
    let mut f = start().await;
    let writer = token("writer", &[], &["alpha"]);
    let reader = token("reader", &["beta"], &[]);
    let w = Some(writer.as_str());

    // Lists and reads only what it may read.
    let listed = f
        .client
        .list_boards(as_(w, ListBoardsRequest {}))
        .await
        .unwrap()
        .into_inner();
    let slugs: Vec<_> = listed.boards.iter().map(|b| b.slug.as_str()).collect();
    assert_eq!(slugs, ["alpha"]);
    let denied = f
        .client
        .get_board(as_(
            w,
            GetBoardRequest {
                board_id: "beta".into(),
            },
        ))
        .await;
    assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
    let watch = f
        .client
        .watch_board(as_(
            w,
            WatchBoardRequest {
                board_id: f.beta.clone(),
                after_version: 0,
            },
        ))
        .await;
    assert_eq!(watch.unwrap_err().code(), Code::PermissionDenied);

    // Writes its own board, by id or by slug.
    f.client
        .create_task(as_(
            w,
            CreateTaskRequest {
                board_id: "alpha".into(),
                lane_id: "todo".into(),
                title: "mine".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("writer writes alpha");

    // Every write that touches beta is refused, whatever names the board.
    let task = f.beta_task.clone();
    let refusals = [
        f.client
            .create_task(as_(
                w,
                CreateTaskRequest {
                    board_id: f.beta.clone(),
                    lane_id: "todo".into(),
                    title: "intruder".into(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        f.client
            .update_task(as_(
                w,
                UpdateTaskRequest {
                    task_id: task.clone(),
                    title: Some("defaced".into()),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        f.client
            .move_task(as_(
                w,
                MoveTaskRequest {
                    task_id: task.clone(),
                    to_lane_id: "done".into(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        f.client
            .delete_task(as_(
                w,
                DeleteTaskRequest {
                    task_id: task.clone(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        f.client
            .create_lane(as_(
                w,
                CreateLaneRequest {
                    board_id: "beta".into(),
                    key: "review".into(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        f.client
            .update_lane(as_(
                w,
                UpdateLaneRequest {
                    lane_id: f.beta_lane.clone(),
                    name: Some("Owned".into()),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        f.client
            .delete_lane(as_(
                w,
                DeleteLaneRequest {
                    lane_id: f.beta_lane.clone(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        f.client
            .create_board(as_(
                w,
                CreateBoardRequest {
                    name: "Mine".into(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
    ];
    for (i, refused) in refusals.into_iter().enumerate() {
        assert_eq!(
            refused.unwrap_err().code(),
            Code::PermissionDenied,
            "case {i}"
        );
    }

    // A read-only token reads, and writes nothing.
    let r = Some(reader.as_str());
    f.client
        .get_board(as_(
            r,
            GetBoardRequest {
                board_id: "beta".into(),
            },
        ))
        .await
        .expect("reader reads beta");
    let write = f
        .client
        .move_task(as_(
            r,
            MoveTaskRequest {
                task_id: task.clone(),
                to_lane_id: "done".into(),
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(write.unwrap_err().code(), Code::PermissionDenied);

    let beta = f
        .client
        .get_board(as_(
            Some(&f.admin),
            GetBoardRequest {
                board_id: "beta".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(beta.version, 1, "beta changed only by the admin's one task");
    assert_eq!(beta.tasks[0].title, "secret beta plan");
}

#[tokio::test]
async fn idempotency_keys_belong_to_the_caller_and_the_board() {
    let mut f = start().await;
    // Another caller reuses the admin's key on its own board: it gets its
    // own new task, not the admin's task on beta.
    let writer = token("writer", &[], &["alpha"]);
    let created = f
        .client
        .create_task(as_(
            Some(&writer),
            CreateTaskRequest {
                board_id: f.alpha.clone(),
                lane_id: "todo".into(),
                title: "my own".into(),
                request_id: "shared-key".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("a fresh key for this caller")
        .into_inner();
    assert_eq!(
        (created.title.as_str(), created.board_id == f.alpha),
        ("my own", true)
    );

    // The writer cannot replay the admin's delete of a beta task either.
    f.client
        .delete_task(as_(
            Some(&f.admin),
            DeleteTaskRequest {
                task_id: f.beta_task.clone(),
                request_id: "del".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("admin deletes");
    let replay = f
        .client
        .delete_task(as_(
            Some(&writer),
            DeleteTaskRequest {
                task_id: f.beta_task.clone(),
                request_id: "del".into(),
                ..Default::default()
            },
        ))
        .await;
    assert_eq!(replay.unwrap_err().code(), Code::NotFound);

    // The same caller reusing a key for a different request is refused.
    let changed = f
        .client
        .create_task(as_(
            Some(&writer),
            CreateTaskRequest {
                board_id: f.alpha.clone(),
                lane_id: "todo".into(),
                title: "something else".into(),
                request_id: "shared-key".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        changed.code(),
        Code::FailedPrecondition,
        "{}",
        changed.message()
    );
    let alpha = f
        .client
        .get_board(as_(
            Some(&writer),
            GetBoardRequest {
                board_id: f.alpha.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alpha.tasks.len(), 1, "the refused request wrote nothing");
}

#[tokio::test]
async fn a_token_with_create_boards_may_create_boards() {
    let mut f = start().await;
    let creator = sign_with(
        SECRET,
        json!({"exp": now() + 600, "sub": "c", "create_boards": true}),
    );
    f.client
        .create_board(as_(
            Some(&creator),
            CreateBoardRequest {
                name: "New".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("create_boards: true creates");
}

#[tokio::test]
async fn projects_take_the_same_tokens_as_the_boards_they_hold() {
    let mut f = start().await;
    let writer = token("writer", &[], &["alpha"]);
    let reader = token("reader", &["beta"], &[]);
    let (w, r, a) = (
        Some(writer.as_str()),
        Some(reader.as_str()),
        Some(f.admin.as_str()),
    );
    let bad = Some("garbage");

    let unauthenticated = f
        .client
        .list_projects(as_(bad, ListProjectsRequest {}))
        .await;
    assert_eq!(unauthenticated.unwrap_err().code(), Code::Unauthenticated);
    let create = |name: &str, boards: &[&String]| CreateProjectRequest {
        name: name.into(),
        board_ids: boards.iter().map(|b| b.to_string()).collect(),
        ..Default::default()
    };
    let refused = f.client.create_project(as_(w, create("Mine", &[]))).await;
    assert_eq!(refused.unwrap_err().code(), Code::PermissionDenied);
    let beta_project = f
        .client
        .create_project(as_(a, create("Beta plans", &[&f.beta])))
        .await
        .expect("admin creates")
        .into_inner();
    let empty = f
        .client
        .create_project(as_(a, create("Empty", &[])))
        .await
        .expect("admin creates")
        .into_inner();

    let refusals = [
        f.client
            .update_project(as_(
                w,
                UpdateProjectRequest {
                    project_id: beta_project.id.clone(),
                    name: Some("Owned".into()),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        // Moving a board it may not write, into or out of a project.
        f.client
            .set_board_project(as_(
                w,
                SetBoardProjectRequest {
                    board_id: "beta".into(),
                    project_id: String::new(),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        f.client
            .set_board_project(as_(
                r,
                SetBoardProjectRequest {
                    board_id: "beta".into(),
                    project_id: empty.slug.clone(),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        // Reading a project none of whose boards it may read.
        f.client
            .get_project(as_(
                w,
                GetProjectRequest {
                    project_id: beta_project.slug.clone(),
                },
            ))
            .await
            .map(drop),
    ];
    for (i, refused) in refusals.into_iter().enumerate() {
        assert_eq!(
            refused.unwrap_err().code(),
            Code::PermissionDenied,
            "case {i}"
        );
    }

    // The writer may put its own board into a project.
    let joined = f
        .client
        .set_board_project(as_(
            w,
            SetBoardProjectRequest {
                board_id: "alpha".into(),
                project_id: empty.slug.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("writer moves alpha")
        .into_inner();
    assert_eq!(joined.board_ids, [f.alpha.clone()]);

    // Each token lists the projects holding a board it may read, and sees
    // only those boards.
    let names = |projects: Vec<protocol::v1::Project>| {
        projects.into_iter().map(|p| p.name).collect::<Vec<_>>()
    };
    let for_reader = f
        .client
        .list_projects(as_(r, ListProjectsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(for_reader.projects), ["Beta plans"]);
    let for_writer = f
        .client
        .list_projects(as_(w, ListProjectsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(names(for_writer.projects), ["Empty"]);
    let view = f
        .client
        .get_project(as_(
            r,
            GetProjectRequest {
                project_id: beta_project.id.clone(),
            },
        ))
        .await
        .expect("reader reads beta's project")
        .into_inner();
    assert_eq!(view.boards.len(), 1);

    let beta = f
        .client
        .get_board(as_(
            a,
            GetBoardRequest {
                board_id: "beta".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        beta.version, 2,
        "one task, one project.created; refusals wrote nothing"
    );
}

fn two_weeks(board: &str, name: &str) -> CreateSprintRequest {
    CreateSprintRequest {
        board_id: board.into(),
        name: name.into(),
        starts_at: Some(prost_types::Timestamp {
            seconds: 1_796_601_600,
            nanos: 0,
        }),
        ends_at: Some(prost_types::Timestamp {
            seconds: 1_796_601_600 + 14 * 86_400,
            nanos: 0,
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn sprints_take_the_same_tokens_as_their_board() {
    let mut f = start().await;
    let writer = token("writer", &[], &["alpha"]);
    let reader = token("reader", &["beta"], &[]);
    let beta_sprint = f
        .client
        .create_sprint(as_(Some(&f.admin), two_weeks("beta", "Beta 1")))
        .await
        .expect("admin plans beta")
        .into_inner();
    let beta_version = |client: &mut BoardServiceClient<Channel>, admin: String| {
        let mut client = client.clone();
        async move {
            client
                .get_board(as_(
                    Some(&admin),
                    GetBoardRequest {
                        board_id: "beta".into(),
                    },
                ))
                .await
                .unwrap()
                .into_inner()
                .version
        }
    };
    let before = beta_version(&mut f.client, f.admin.clone()).await;

    let expired = sign_with(SECRET, json!({"exp": now() - 3600, "write": ["*"]}));
    for (who, token) in [
        ("no token", None),
        ("expired", Some(expired.as_str())),
        ("writer", Some(writer.as_str())),
        ("reader", Some(reader.as_str())),
    ] {
        let expected = if token.is_some_and(|t| t != expired) {
            Code::PermissionDenied
        } else {
            Code::Unauthenticated
        };
        let create = f
            .client
            .create_sprint(as_(token, two_weeks(&f.beta, "Intruder")))
            .await;
        let start = f
            .client
            .start_sprint(as_(
                token,
                StartSprintRequest {
                    sprint_id: beta_sprint.id.clone(),
                    ..Default::default()
                },
            ))
            .await;
        let complete = f
            .client
            .complete_sprint(as_(
                token,
                CompleteSprintRequest {
                    sprint_id: beta_sprint.id.clone(),
                    ..Default::default()
                },
            ))
            .await;
        let codes = [
            create.map(|_| ()).unwrap_err().code(),
            start.map(|_| ()).unwrap_err().code(),
            complete.map(|_| ()).unwrap_err().code(),
        ];
        assert_eq!(codes, [expected; 3], "{who}");
        let list = f
            .client
            .list_sprints(as_(
                token,
                ListSprintsRequest {
                    board_id: "beta".into(),
                },
            ))
            .await;
        match who {
            "reader" => assert_eq!(
                list.expect("reader lists beta").into_inner().sprints.len(),
                1
            ),
            "writer" => assert_eq!(list.unwrap_err().code(), Code::PermissionDenied),
            _ => assert_eq!(list.unwrap_err().code(), Code::Unauthenticated, "{who}"),
        }
    }
    assert_eq!(
        beta_version(&mut f.client, f.admin.clone()).await,
        before,
        "nothing was written on beta"
    );

    // The writer runs sprints on its own board, by slug or id.
    let w = Some(writer.as_str());
    let own = f
        .client
        .create_sprint(as_(w, two_weeks("alpha", "Alpha 1")))
        .await
        .expect("writer plans alpha")
        .into_inner();
    assert_eq!(own.board_id, f.alpha);
    f.client
        .start_sprint(as_(
            w,
            StartSprintRequest {
                sprint_id: own.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("writer starts alpha's sprint");
    f.client
        .complete_sprint(as_(
            w,
            CompleteSprintRequest {
                sprint_id: own.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("writer completes alpha's sprint");
}
