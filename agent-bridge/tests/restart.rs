//! A bridge killed mid-run (SIGKILL, the real binary): its run ends with one
//! `interrupted` error frame that reconnecting tabs see, seqs never go back,
//! and the run row does not stay `running`. Several bridges share the
//! database: only runs whose process is gone are marked.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::{
    Options, PATIENCE, Stack, Ws, assert_rising, closed_port,
    process::{BridgeProcess, wait_healthy},
    run_seqs,
};
use protocol::chat_frames::ServerFrame;

/// Reads until the `interrupted` error frame of `run`; every frame read.
async fn until_interrupted(ws: &mut Ws, run: &str) -> Vec<ServerFrame> {
    let mut frames = Vec::new();
    loop {
        let frame = ws.next().await;
        let done = matches!(&frame, ServerFrame::Error { run_id: Some(r), data, .. }
            if r == run && data.code == "interrupted");
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

/// Two tabs on one session of a bridge that is killed mid-run. Returns the
/// tabs' frames so far, the run id and the run's session.
async fn kill_mid_run(stack: &Stack, session: &str) -> (Vec<Vec<ServerFrame>>, String) {
    let addr = closed_port();
    let mut doomed = BridgeProcess::spawn(stack, addr);
    wait_healthy(addr).await;
    let url = format!("ws://{addr}/ws/chat?session_id={session}");
    let (mut a, first_a) = Ws::open(&url).await;
    let (mut b, first_b) = Ws::open(&url).await;
    a.say("Create a P1 story for surviving a crash").await;
    let (mut seen_a, mut seen_b) = (vec![first_a], vec![first_b]);
    // Mid-run: the tool has run and tokens are streaming.
    loop {
        let frame = a.next().await;
        let token = matches!(frame, ServerFrame::Token { .. });
        seen_a.push(frame);
        if token {
            break;
        }
    }
    doomed.kill();
    // What reached tab b before the kill.
    while let Ok(frame) = b.next_or_close().await {
        seen_b.push(frame);
    }
    while let Ok(frame) = a.next_or_close().await {
        seen_a.push(frame);
    }
    let run = seen_a
        .iter()
        .find_map(|f| f.run_id().map(str::to_owned))
        .expect("the run had started");
    assert!(
        seen_a.iter().all(|f| !f.is_terminal()),
        "the run ended before the kill: {seen_a:?}"
    );
    (vec![seen_a, seen_b], run)
}

async fn run_status(stack: &Stack, run: &str) -> (String, Option<String>) {
    let pool = sqlx::PgPool::connect(stack.db.url()).await.unwrap();
    sqlx::query_as("SELECT status, error_code FROM chat_runs WHERE id = $1::uuid")
        .bind(run)
        .fetch_one(&pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_restarted_bridge_tells_reconnecting_tabs_the_run_was_interrupted() {
    // The in-process bridge of the stack stays passive: its leases are long,
    // so it reaps only at start-up, before any of this.
    let stack = Stack::start_with(Options {
        run_lease: Duration::from_secs(3600),
        ..Options::default()
    })
    .await;
    let (seen, run) = kill_mid_run(&stack, "crash-1").await;
    assert_eq!(run_status(&stack, &run).await.0, "running");

    let addr = closed_port();
    let mut restarted = BridgeProcess::spawn(&stack, addr);
    wait_healthy(addr).await;
    for before in seen {
        let last_seq = run_seqs(&before)
            .into_iter()
            .max()
            .expect("run frames seen");
        let url = format!("ws://{addr}/ws/chat?session_id=crash-1&last_seq={last_seq}");
        let (mut tab, connected) = Ws::open(&url).await;
        assert!(
            connected.seq().unwrap() >= last_seq,
            "connected.seq {:?} went below {last_seq}",
            connected.seq()
        );
        let after = until_interrupted(&mut tab, &run).await;
        let interrupted: Vec<_> = after
            .iter()
            .filter(|f| f.run_id() == Some(run.as_str()) && f.is_terminal())
            .collect();
        assert_eq!(interrupted.len(), 1, "{after:?}");
        // Strictly increasing across the kill, for everything of this tab.
        let mut all = run_seqs(&before);
        all.extend(run_seqs(&after));
        assert_rising(&all);
        // The next run continues above.
        tab.say("list tasks").await;
        let next = tab.until_terminal().await;
        all.extend(run_seqs(&next));
        assert_rising(&all);
        tab.close().await;
    }
    assert_eq!(
        run_status(&stack, &run).await,
        ("failed".into(), Some("interrupted".into()))
    );
    // The run's task was created once; retrying is the user's call.
    let board = stack.board().await;
    let created = board
        .tasks
        .iter()
        .filter(|t| t.title == "Surviving a crash")
        .count();
    assert_eq!(created, 1);
    restarted.kill();
    stack.stop().await;
}

#[tokio::test]
async fn another_bridge_on_the_same_database_ends_a_dead_bridges_run_and_only_that() {
    let stack = Stack::start_with(Options {
        run_lease: Duration::from_secs(1),
        token_delay: Duration::from_millis(100),
        ..Options::default()
    })
    .await;
    // A long run on the living bridge keeps its lease renewed throughout.
    let (mut living, _) = Ws::open(&stack.ws_url("?session_id=alive-1")).await;
    living
        .say("Create a P2 task for a run that must not be reaped because it is alive and well")
        .await;
    let (seen, run) = kill_mid_run(&stack, "crash-2").await;
    let last_seq = seen.iter().flat_map(|f| run_seqs(f)).max().unwrap();
    // Wait for the dead run's lease to run out and the survivor to reap it.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while run_status(&stack, &run).await.0 == "running" {
        assert!(tokio::time::Instant::now() < deadline, "never reaped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = stack.ws_url(&format!("?session_id=crash-2&last_seq={last_seq}"));
    let (mut tab, _) = Ws::open(&url).await;
    let after = until_interrupted(&mut tab, &run).await;
    assert!(run_seqs(&after).iter().all(|&s| s > last_seq), "{after:?}");
    // The living bridge's run was never touched and ends normally.
    let frames = living.until_terminal().await;
    assert!(
        matches!(frames.last(), Some(ServerFrame::Message { .. })),
        "{frames:?}"
    );
    stack.stop().await;
}

/// Everything one tab saw, across reconnects.
#[derive(Default)]
struct Tab {
    frames: Vec<ServerFrame>,
}

impl Tab {
    fn last_seq(&self) -> Option<u64> {
        run_seqs(&self.frames).into_iter().max()
    }

    fn url(&self, addr: SocketAddr, session: &str) -> String {
        match self.last_seq() {
            Some(seq) => format!("ws://{addr}/ws/chat?session_id={session}&last_seq={seq}"),
            None => format!("ws://{addr}/ws/chat?session_id={session}"),
        }
    }

    /// Terminal frames per run, in the order seen.
    fn terminals(&self) -> Vec<(String, ServerFrame)> {
        self.frames
            .iter()
            .filter(|f| f.is_terminal())
            .filter_map(|f| Some((f.run_id()?.to_owned(), f.clone())))
            .collect()
    }
}

async fn drain(ws: &mut Ws, tab: &mut Tab) {
    while let Ok(frame) = ws.next_or_close().await {
        tab.frames.push(frame);
    }
}

#[tokio::test]
async fn a_message_resent_after_each_kill_is_answered_once_with_no_seq_seen_twice() {
    const SESSION: &str = "crash-loop";
    const ROUNDS: usize = 3;
    let stack = Stack::start_with(Options {
        run_lease: Duration::from_secs(3600),
        ..Options::default()
    })
    .await;
    let (mut a, mut b) = (Tab::default(), Tab::default());
    for round in 1..=ROUNDS {
        let content = format!("Create a P1 story for crash round {round}");
        let message_id = format!("m-{round}");

        // A bridge is killed while the run streams, its tool already done.
        let addr = closed_port();
        let mut doomed = BridgeProcess::spawn(&stack, addr);
        wait_healthy(addr).await;
        let (mut ws_a, connected) = Ws::open(&a.url(addr, SESSION)).await;
        a.frames.push(connected);
        let (mut ws_b, connected) = Ws::open(&b.url(addr, SESSION)).await;
        b.frames.push(connected);
        ws_a.say_as(&content, &message_id).await;
        loop {
            let frame = ws_a.next().await;
            let token = matches!(frame, ServerFrame::Token { .. });
            a.frames.push(frame);
            if token {
                break;
            }
        }
        doomed.kill();
        drain(&mut ws_a, &mut a).await;
        drain(&mut ws_b, &mut b).await;
        let cut = a
            .frames
            .iter()
            .rev()
            .find_map(|f| f.run_id().map(str::to_owned));
        let cut = cut.expect("the run had started");

        // The next bridge tells both tabs; the user retries the same message.
        let addr = closed_port();
        let mut next = BridgeProcess::spawn(&stack, addr);
        wait_healthy(addr).await;
        let (mut ws_a, connected) = Ws::open(&a.url(addr, SESSION)).await;
        a.frames.push(connected);
        let (mut ws_b, connected) = Ws::open(&b.url(addr, SESSION)).await;
        b.frames.push(connected);
        a.frames.extend(until_interrupted(&mut ws_a, &cut).await);
        b.frames.extend(until_interrupted(&mut ws_b, &cut).await);
        ws_a.say_as(&content, &message_id).await;
        a.frames.extend(ws_a.until_terminal().await);
        b.frames.extend(ws_b.until_terminal().await);
        let answer = a.frames.last().unwrap().clone();
        assert!(matches!(answer, ServerFrame::Message { .. }), "{answer:?}");
        assert_ne!(answer.run_id(), Some(cut.as_str()), "a new run answered");

        // Sent once more, it is the same answer under the same seq, which
        // the tab already has: chat-client.js drops it.
        ws_a.say_as(&content, &message_id).await;
        let told = ws_a.next().await;
        assert!(
            matches!(&told, ServerFrame::Status { run_id: None, data, .. }
                if data.run_id.as_deref() == answer.run_id()),
            "{told:?}"
        );
        assert_eq!(ws_a.next().await, answer);
        ws_a.close().await;
        ws_b.close().await;
        next.kill();
    }

    for (name, tab) in [("a", &a), ("b", &b)] {
        // No seq twice, across every kill.
        assert_rising(&run_seqs(&tab.frames));
        // Each run ended once: ROUNDS interrupted, ROUNDS answered.
        let terminals = tab.terminals();
        let mut runs: Vec<&str> = terminals.iter().map(|(run, _)| run.as_str()).collect();
        runs.dedup();
        assert_eq!(runs.len(), terminals.len(), "tab {name}: a run ended twice");
        assert_eq!(terminals.len(), 2 * ROUNDS, "tab {name}: {terminals:?}");
    }
    // No task twice, though each message's tool ran in two runs.
    let board = stack.board().await;
    for round in 1..=ROUNDS {
        let title = format!("Crash round {round}");
        let made = board.tasks.iter().filter(|t| t.title == title).count();
        assert_eq!(made, 1, "{title}: {:?}", board.tasks);
    }
    // The stored history is what the tabs saw: one user message per round
    // and each answer as streamed.
    let history: serde_json::Value =
        reqwest::get(stack.http_url(&format!("/api/sessions/{SESSION}/messages")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let stored: Vec<(String, String)> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut seen = Vec::new();
    for (round, (_, frame)) in a
        .terminals()
        .iter()
        .filter(|(_, f)| matches!(f, ServerFrame::Message { .. }))
        .enumerate()
    {
        let ServerFrame::Message { data, .. } = frame else {
            unreachable!()
        };
        seen.push((
            "user".to_owned(),
            format!("Create a P1 story for crash round {}", round + 1),
        ));
        seen.push(("assistant".to_owned(), data.content.clone()));
    }
    assert_eq!(stored, seen);
    stack.stop().await;
}
