//! Chat across bridge replicas on one NATS (SCALING.md): a tab on any
//! bridge sees a run another drives, live, resumes there with `last_seq`
//! (even on a bridge started after the frames went out), cancels it and
//! answers its approvals; a second run on the session is refused on every
//! bridge; when the running bridge is killed, tabs elsewhere are told the
//! run was interrupted; and when it ends a run cut off from NATS and dies,
//! tabs elsewhere get its end from PostgreSQL.

mod common;

use std::{net::SocketAddr, time::Duration};

use common::{
    Options, Stack, Ws, assert_rising, closed_port,
    cut_proxy::CutProxy,
    process::{BridgeProcess, wait_healthy},
    run_seqs,
};
use protocol::chat_frames::{ClientFrame, RunStatus, ServerFrame, ToolStatus};

fn clustered(options: Options) -> Options {
    Options {
        nats_url: Some(service_kit::local_nats::url()),
        ..options
    }
}

/// A session id no earlier run of these tests used: the stream outlives
/// each test's database when `NATS_URL` names a shared server.
fn fresh_session(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::now_v7())
}

fn chat_url(addr: SocketAddr, query: &str) -> String {
    format!("ws://{addr}/ws/chat{query}")
}

/// The frames of runs (top-level `runId`), as JSON, for comparing tabs.
fn run_frames(frames: &[ServerFrame]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f.run_id().is_some())
        .map(|f| serde_json::to_string(f).unwrap())
        .collect()
}

/// Reads until the run's first token: mid-run.
async fn until_token(ws: &mut Ws) -> Vec<ServerFrame> {
    let mut frames = Vec::new();
    loop {
        let frame = ws.next().await;
        let token = matches!(frame, ServerFrame::Token { .. });
        frames.push(frame);
        if token {
            return frames;
        }
    }
}

#[tokio::test]
async fn a_run_on_one_bridge_reaches_tabs_on_another_live_and_on_resume() {
    let stack = Stack::start_with(clustered(Options::default())).await;
    let (second, second_bridge) = stack.another_bridge().await;
    let session = fresh_session("replicas-live");
    let query = format!("?session_id={session}");
    let (mut here, _) = Ws::open(&stack.ws_url(&query)).await;
    let (mut there, _) = Ws::open(&chat_url(second, &query)).await;

    here.say("Create a P2 task for the replica check").await;
    let seen_here = here.until_terminal().await;
    let seen_there = there.until_terminal().await;
    assert!(
        matches!(seen_here.last(), Some(ServerFrame::Message { .. })),
        "{seen_here:?}"
    );
    let frames = run_frames(&seen_here);
    assert!(frames.len() > 3, "{seen_here:?}");
    assert_eq!(run_frames(&seen_there), frames, "the other bridge's tab");

    // Resuming after the first frame, on the other bridge and on one that
    // was not running while the frames went out.
    let first = run_seqs(&seen_here)[0];
    let last = *run_seqs(&seen_here).last().unwrap();
    let (third, third_bridge) = stack.another_bridge().await;
    for addr in [second, third] {
        let url = chat_url(addr, &format!("{query}&last_seq={first}"));
        let (mut resumed, connected) = Ws::open(&url).await;
        if addr == third {
            // Told the latest seq the stream holds, not its own reservation.
            assert_eq!(connected.seq(), Some(last));
        }
        let replayed = resumed.until_terminal().await;
        assert_eq!(run_frames(&replayed), frames[1..], "resumed on {addr}");
        resumed.close().await;
    }

    // The next run, from the other bridge, continues above on every tab.
    there.say("list tasks").await;
    let next_there = there.until_terminal().await;
    let next_here = here.until_terminal().await;
    assert_eq!(run_frames(&next_here), run_frames(&next_there));
    let mut seqs = run_seqs(&seen_here);
    seqs.extend(run_seqs(&next_here));
    assert_rising(&seqs);
    let board = stack.board().await;
    assert_eq!(
        board
            .tasks
            .iter()
            .filter(|t| t.title == "The replica check")
            .count(),
        1
    );
    third_bridge.stop().await;
    second_bridge.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn cancel_from_another_bridge_stops_the_run_and_a_second_run_is_refused_there() {
    let stack = Stack::start_with(clustered(Options {
        token_delay: Duration::from_millis(100),
        ..Options::default()
    }))
    .await;
    let (second, second_bridge) = stack.another_bridge().await;
    let session = fresh_session("replicas-cancel");
    let query = format!("?session_id={session}");
    let (mut here, _) = Ws::open(&stack.ws_url(&query)).await;
    let (mut there, _) = Ws::open(&chat_url(second, &query)).await;

    here.say("Create a P3 task for the cancel check").await;
    until_token(&mut there).await;
    // The session has a run in flight, on the first bridge.
    there.say("list tasks").await;
    let refused = loop {
        match there.next().await {
            frame @ ServerFrame::Error { run_id: None, .. } => break frame,
            ServerFrame::Token { .. } => {}
            other => panic!("expected a rejection, got {other:?}"),
        }
    };
    assert!(
        matches!(&refused, ServerFrame::Error { data, .. } if data.code == "run_in_progress"),
        "{refused:?}"
    );

    there
        .send(&ClientFrame::Cancel {
            run_id: None,
            data: None,
        })
        .await;
    for tab in [&mut here, &mut there] {
        let frames = tab.until_terminal().await;
        assert!(
            matches!(frames.last(), Some(ServerFrame::Status { data, .. }) if data.status == RunStatus::Cancelled),
            "{frames:?}"
        );
    }
    // Nothing is in flight any more: the other bridge runs the next one.
    there.say("list tasks").await;
    let next = there.until_terminal().await;
    assert!(
        matches!(next.last(), Some(ServerFrame::Message { .. })),
        "{next:?}"
    );
    second_bridge.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn an_approval_from_another_bridge_lets_the_delete_run() {
    let stack = Stack::start_with(clustered(Options::default())).await;
    let (second, second_bridge) = stack.another_bridge().await;
    let session = fresh_session("replicas-approve");
    let query = format!("?session_id={session}");
    let (mut here, _) = Ws::open(&stack.ws_url(&query)).await;
    here.say("Create a P2 task for the remote approval").await;
    here.until_terminal().await;

    let (mut there, _) = Ws::open(&chat_url(second, &query)).await;
    here.say("delete The remote approval").await;
    let asked = there.until_awaiting_approval().await;
    there.approve(&asked.id, true, None).await;
    let frames = there.until_terminal().await;
    let done = frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::ToolExecution { data, .. } if data.id == asked.id => Some(data),
            _ => None,
        })
        .next_back()
        .expect("the call's frames");
    assert_eq!(done.status, ToolStatus::Completed, "{frames:?}");
    here.until_terminal().await;
    assert!(
        !stack
            .board()
            .await
            .tasks
            .iter()
            .any(|t| t.title == "The remote approval")
    );
    // An answer nobody waits for is refused on any bridge.
    there.approve(&asked.id, true, None).await;
    let refused = there.next().await;
    assert!(
        matches!(&refused, ServerFrame::Error { data, .. } if data.code == "unknown_approval"),
        "{refused:?}"
    );
    second_bridge.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn when_the_running_bridge_is_killed_tabs_on_another_are_told_the_run_was_interrupted() {
    let stack = Stack::start_with(clustered(Options {
        run_lease: Duration::from_secs(1),
        ..Options::default()
    }))
    .await;
    let addr = closed_port();
    let mut doomed = BridgeProcess::spawn(&stack, addr);
    wait_healthy(addr).await;
    let session = fresh_session("replicas-killed");
    let query = format!("?session_id={session}");
    let (mut runner_tab, _) = Ws::open(&chat_url(addr, &query)).await;
    let (mut survivor, _) = Ws::open(&stack.ws_url(&query)).await;

    runner_tab
        .say("Create a P1 story for the dead bridge")
        .await;
    let mut seen = until_token(&mut survivor).await;
    let run = seen
        .iter()
        .find_map(|f| f.run_id().map(str::to_owned))
        .expect("the run started");
    doomed.kill();
    // Its lease runs out within a second; the surviving bridge reaps it.
    loop {
        let frame = survivor.next().await;
        let terminal = frame.is_terminal();
        seen.push(frame);
        if terminal {
            break;
        }
    }
    assert!(
        matches!(seen.last(), Some(ServerFrame::Error { run_id: Some(r), data, .. })
            if *r == run && data.code == "interrupted"),
        "{seen:?}"
    );
    // The session is free again, on the surviving bridge, seqs still rising.
    survivor.say("list tasks").await;
    let next = survivor.until_terminal().await;
    assert!(
        matches!(next.last(), Some(ServerFrame::Message { .. })),
        "{next:?}"
    );
    let mut seqs = run_seqs(&seen);
    seqs.extend(run_seqs(&next));
    assert_rising(&seqs);
    stack.stop().await;
}

#[tokio::test]
async fn a_run_that_ended_on_a_bridge_cut_off_from_nats_reaches_tabs_on_another_from_postgres() {
    let stack = Stack::start_with(clustered(Options {
        run_lease: Duration::from_secs(1),
        ..Options::default()
    }))
    .await;
    let nats = stack.options.nats_url.clone().expect("clustered");
    let upstream = tokio::net::lookup_host(nats.trim_start_matches("nats://"))
        .await
        .expect("NATS address")
        .next()
        .expect("an address");
    let link = CutProxy::start(upstream).await;
    let addr = closed_port();
    let mut doomed =
        BridgeProcess::spawn_with_nats(&stack, addr, Some(&format!("nats://{}", link.addr)));
    wait_healthy(addr).await;
    let session = fresh_session("replicas-cut-off");
    let query = format!("?session_id={session}");
    let (mut runner_tab, _) = Ws::open(&chat_url(addr, &query)).await;
    let (mut survivor, _) = Ws::open(&stack.ws_url(&query)).await;

    runner_tab
        .say("Create a P1 story for the cut-off bridge")
        .await;
    let seen = until_token(&mut survivor).await;
    let run = seen
        .iter()
        .find_map(|f| f.run_id().map(str::to_owned))
        .expect("the run started");
    // NATS goes away for the running bridge; its run ends, recorded in
    // PostgreSQL, with a terminal frame that never leaves it.
    link.cut();
    let answer = runner_tab.until_terminal().await;
    let answer = answer.last().expect("the runner's terminal frame").clone();
    assert!(matches!(answer, ServerFrame::Message { .. }), "{answer:?}");
    doomed.kill();

    // The surviving bridge builds the same frame from PostgreSQL.
    let terminal = loop {
        let frame = survivor.next().await;
        if frame.is_terminal() {
            break frame;
        }
    };
    let (ServerFrame::Message { run_id, data, .. }, ServerFrame::Message { data: sent, .. }) =
        (&terminal, &answer)
    else {
        panic!("{terminal:?}");
    };
    assert_eq!(run_id.as_deref(), Some(run.as_str()));
    assert_eq!(data, sent, "the answer the runner's own tab got");

    // A tab resuming from the start sees that end once, and the session
    // is free for the next run, seqs still rising.
    let (mut resumed, _) = Ws::open(&stack.ws_url(&format!("{query}&last_seq=0"))).await;
    let replayed = resumed.until_terminal().await;
    assert_eq!(replayed.last(), Some(&terminal));
    survivor.say("list tasks").await;
    let next = survivor.until_terminal().await;
    assert!(
        matches!(next.last(), Some(ServerFrame::Message { .. })),
        "{next:?}"
    );
    let after = resumed.until_terminal().await;
    assert!(
        after.iter().all(|f| f.run_id() != Some(run.as_str())),
        "the settled run's end is not delivered again: {after:?}"
    );
    assert_eq!(
        after.last().unwrap().run_id(),
        next.last().unwrap().run_id()
    );
    assert_rising(&[terminal.seq().unwrap(), next.last().unwrap().seq().unwrap()]);
    stack.stop().await;
}
