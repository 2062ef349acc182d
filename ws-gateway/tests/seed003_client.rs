//! Seed 003's board client, written to its document (`ws://localhost:4002`,
//! `{"type":"subscribe","boardId":"default"}`, a `switch` on `type` that
//! renders `board.sync`'s lanes by iterating the object and moves cards on
//! `task.moved`), against the real gateway and board-service. Its moves are
//! `task.update` frames whose `changes.lane` names the new lane.

mod common;

use common::{Stack, Ws};
use serde::Deserialize;
use serde_json::{Value, json};

/// What seed 003's UI holds: each lane's card ids, lanes in the order the
/// client met them in `board.sync`'s `data.lanes` object.
#[derive(Debug, Default)]
struct SeedUi {
    lanes: Vec<(String, Vec<String>)>,
}

/// `data.lanes` read as the browser's `Object.keys` sees it: in the JSON
/// text's order (serde_json's `Value` would sort the keys).
struct InTextOrder(Vec<(String, Vec<Card>)>);

#[derive(Deserialize)]
struct Card {
    id: String,
}

impl<'de> Deserialize<'de> for InTextOrder {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = InTextOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("lanes object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<InTextOrder, A::Error> {
                let mut lanes = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    lanes.push(entry);
                }
                Ok(InTextOrder(lanes))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

#[derive(Deserialize)]
struct SyncText {
    data: SyncData,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SyncData {
    lanes: InTextOrder,
    lane_order: Vec<String>,
}

impl SeedUi {
    /// `refreshBoardUI(message.data.lanes)`.
    fn refresh(&mut self, sync_text: &str) -> Vec<String> {
        let sync: SyncText = serde_json::from_str(sync_text).expect("board.sync parses");
        self.lanes = sync
            .data
            .lanes
            .0
            .into_iter()
            .map(|(key, cards)| (key, cards.into_iter().map(|c| c.id).collect()))
            .collect();
        sync.data.lane_order
    }

    /// `moveTaskInUI(message.data.id, message.data.toLane)`.
    fn move_task(&mut self, id: &str, to_lane: &str) {
        for (_, cards) in &mut self.lanes {
            cards.retain(|c| c != id);
        }
        let lane = self
            .lanes
            .iter_mut()
            .find(|(key, _)| key == to_lane)
            .expect("task.moved names a lane the UI shows");
        lane.1.push(id.to_owned());
    }

    fn lane_keys(&self) -> Vec<&str> {
        self.lanes.iter().map(|(k, _)| k.as_str()).collect()
    }

    fn cards(&self, lane: &str) -> &[String] {
        &self.lanes.iter().find(|(k, _)| k == lane).expect("lane").1
    }
}

/// Seed 003's client: connects at the root and subscribes to "default".
async fn seed_client(stack: &Stack) -> (Ws, SeedUi) {
    let mut ws = Ws::connect(&format!("ws://{}", stack.gateway.addr)).await;
    ws.send(json!({"type": "subscribe", "boardId": "default"}))
        .await;
    let sync = next_text_of(&mut ws, "board.sync").await;
    let mut ui = SeedUi::default();
    let lane_order = ui.refresh(&sync);
    assert_eq!(
        ui.lane_keys(),
        lane_order.iter().map(String::as_str).collect::<Vec<_>>(),
        "iterating data.lanes gives the board's lane order"
    );
    (ws, ui)
}

/// The raw text of the next frame of type `kind`.
async fn next_text_of(ws: &mut Ws, kind: &str) -> String {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(common::WAIT, ws.stream.next())
            .await
            .expect("a frame within the wait")
            .expect("stream open")
            .expect("frame reads");
        if let Message::Text(text) = message {
            let frame: Value = serde_json::from_str(&text).expect("JSON frame");
            if frame["type"] == kind {
                return text.to_string();
            }
        }
    }
}

async fn default_stack() -> Stack {
    Stack::start_both(
        |board_service| board_service.default_board = Some("default".into()),
        |_| {},
    )
    .await
}

#[tokio::test]
async fn seed_003_client_renders_lanes_in_order_and_its_lane_change_reaches_others_as_task_moved() {
    let mut stack = default_stack().await;
    let first = stack.task("default", "backlog", "first").await;
    let second = stack.task("default", "backlog", "second").await;
    let (mut mover, mut mover_ui) = seed_client(&stack).await;
    let (mut watcher, mut watcher_ui) = seed_client(&stack).await;
    assert_eq!(
        mover_ui.lane_keys(),
        ["backlog", "todo", "in_progress", "done", "recovery"]
    );
    assert_eq!(
        mover_ui.cards("backlog"),
        [first.id.clone(), second.id.clone()]
    );

    mover
        .send(json!({
            "type": "task.update", "id": "move-1", "boardId": "default",
            "data": {"id": first.id, "changes": {"lane": "in_progress"}}
        }))
        .await;
    let moved = watcher.next_of("task.moved").await;
    assert_eq!(moved["data"]["id"], first.id.as_str());
    assert_eq!(moved["data"]["fromLane"], "backlog");
    assert_eq!(moved["data"]["toLane"], "in_progress");
    assert_eq!(moved["commandId"], "move-1");
    watcher_ui.move_task(
        moved["data"]["id"].as_str().unwrap(),
        moved["data"]["toLane"].as_str().unwrap(),
    );
    assert_eq!(watcher_ui.cards("in_progress"), [first.id.as_str()]);
    assert_eq!(watcher_ui.cards("backlog"), [second.id.as_str()]);

    // The ack and the broadcast race (the event may come back first).
    let (mut ack, mut own) = (None, None);
    while ack.is_none() || own.is_none() {
        let frame = mover.next().await;
        match frame["type"].as_str() {
            Some("ack") => ack = Some(frame),
            Some("task.moved") => own = Some(frame),
            _ => {}
        }
    }
    let (ack, own) = (ack.unwrap_or_default(), own.unwrap_or_default());
    assert_eq!(ack["id"], "move-1");
    assert_eq!(ack["result"]["lane"], "in_progress");
    mover_ui.move_task(own["data"]["id"].as_str().unwrap(), "in_progress");

    // A later card lands at the lane's end, as the UI appended it.
    mover
        .send(json!({
            "type": "task.update", "id": "move-2", "boardId": "default",
            "data": {"id": second.id, "changes": {"lane": "in_progress"}}
        }))
        .await;
    let moved = watcher.next_of("task.moved").await;
    watcher_ui.move_task(&second.id, moved["data"]["toLane"].as_str().unwrap());
    let (mut late, late_ui) = seed_client(&stack).await;
    assert_eq!(
        late_ui.cards("in_progress"),
        watcher_ui.cards("in_progress")
    );
    assert_eq!(
        late_ui.cards("in_progress"),
        [first.id.clone(), second.id.clone()]
    );
    late.send(json!({"type": "ping"})).await;
    assert_eq!(late.next_of("pong").await["type"], "pong");
}

#[tokio::test]
async fn task_update_with_a_lane_and_a_title_updates_then_moves() {
    let mut stack = default_stack().await;
    let task = stack.task("default", "todo", "draft").await;
    let (mut mover, _) = seed_client(&stack).await;
    let (mut watcher, _) = seed_client(&stack).await;
    mover
        .send(json!({
            "type": "task.update", "id": "both", "boardId": "default",
            "expectedVersion": task.version,
            "data": {"id": task.id, "changes": {"lane": "done", "title": "shipped"}}
        }))
        .await;
    let updated = watcher.next().await;
    assert_eq!(updated["type"], "task.updated", "{updated}");
    assert_eq!(updated["data"]["changes"], json!({"title": "shipped"}));
    let moved = watcher.next().await;
    assert_eq!(moved["type"], "task.moved", "{moved}");
    assert_eq!(moved["data"]["toLane"], "done");
    assert_eq!(moved["version"], updated["version"].as_u64().unwrap() + 1);
    let ack = mover.next_of("ack").await;
    assert_eq!(ack["result"]["title"], "shipped");
    assert_eq!(ack["result"]["lane"], "done");

    // A lane the board lacks is refused by name, and nothing changes.
    mover
        .send(json!({
            "type": "task.update", "id": "nowhere", "boardId": "default",
            "data": {"id": task.id, "changes": {"lane": "nowhere"}}
        }))
        .await;
    let error = mover.next_of("error").await;
    assert_eq!(error["id"], "nowhere");
    assert!(
        error["message"].as_str().unwrap().contains("nowhere"),
        "{error}"
    );
    let snapshot = stack
        .api
        .get_board(protocol::v1::GetBoardRequest {
            board_id: "default".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let stored = snapshot.tasks.iter().find(|t| t.id == task.id).unwrap();
    assert_eq!(stored.lane_key, "done");
    assert_eq!(json!(stored.version), ack["result"]["version"]);
}
