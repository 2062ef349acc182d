//! Sequencing, replay, backpressure and cancel of one session.

use protocol::chat_frames::{ErrorData, TokenData};

use super::*;

fn token(text: &str) -> ServerFrame {
    ServerFrame::Token {
        seq: 0,
        run_id: None,
        data: TokenData {
            token: text.into(),
            done: false,
        },
    }
}

fn seq_of(text: &Utf8Bytes) -> u64 {
    serde_json::from_str::<ServerFrame>(text)
        .unwrap()
        .seq()
        .unwrap()
}

#[test]
fn replays_after_last_seq_then_streams_live() {
    let session = Arc::new(Session::new("s".into(), "b".into(), 41, 100));
    let run = Uuid::now_v7();
    session
        .begin_run(run, CancellationToken::new(), None)
        .unwrap();
    assert_eq!(
        session.publish(token("a")),
        42,
        "numbering continues after the stored seq"
    );
    session.publish(token("b"));
    let mut sub = session.subscribe(Some(42), 8);
    assert_eq!(sub.replay.iter().map(seq_of).collect::<Vec<_>>(), [43]);
    assert_eq!(sub.active_run, Some(run));
    session.publish(token("c"));
    assert_eq!(seq_of(&sub.frames.try_recv().unwrap()), 44);
    // A new tab with no last_seq gets the run in flight.
    assert_eq!(session.subscribe(None, 8).replay.len(), 3);
}

#[test]
fn a_run_gets_one_terminal_frame_and_a_new_run_starts_a_fresh_replay() {
    let session = Arc::new(Session::new("s".into(), "b".into(), 0, 100));
    let run = Uuid::now_v7();
    session
        .begin_run(run, CancellationToken::new(), Some("m-1"))
        .unwrap();
    assert_eq!(
        session.begin_run(Uuid::now_v7(), CancellationToken::new(), Some("m-2")),
        Err(Busy {
            run,
            same_message: false
        })
    );
    assert_eq!(
        session.begin_run(Uuid::now_v7(), CancellationToken::new(), Some("m-1")),
        Err(Busy {
            run,
            same_message: true
        }),
        "a resend of the message in flight is told so"
    );
    let end = || ServerFrame::Error {
        seq: 0,
        run_id: Some(run.to_string()),
        data: ErrorData::new("x", "y"),
    };
    assert_eq!(session.publish_terminal(run, end()), Some(1));
    assert_eq!(
        session.publish_terminal(run, end()),
        None,
        "no second terminal frame"
    );
    assert!(
        session.subscribe(None, 8).replay.is_empty(),
        "no run in flight"
    );
    assert_eq!(
        session.subscribe(Some(0), 8).replay.len(),
        1,
        "the last run replays"
    );
    session
        .begin_run(Uuid::now_v7(), CancellationToken::new(), None)
        .unwrap();
    assert!(session.subscribe(Some(0), 8).replay.is_empty());
}

#[test]
fn a_full_socket_queue_drops_the_subscriber_after_what_it_holds() {
    let session = Arc::new(Session::new("s".into(), "b".into(), 0, 100));
    let (mut frames, _, _guard) = session.subscribe(None, 2).into_parts();
    for text in ["a", "b", "c", "d"] {
        session.publish(token(text));
    }
    assert_eq!(seq_of(&frames.try_recv().unwrap()), 1);
    assert_eq!(seq_of(&frames.try_recv().unwrap()), 2);
    assert!(matches!(
        frames.try_recv(),
        Err(mpsc::error::TryRecvError::Disconnected)
    ));
}

#[test]
fn cancel_only_matches_the_run_in_flight() {
    let session = Session::new("s".into(), "b".into(), 0, 100);
    let token = CancellationToken::new();
    let run = Uuid::now_v7();
    assert_eq!(session.cancel_run(None), None);
    session.begin_run(run, token.clone(), None).unwrap();
    assert_eq!(session.cancel_run(Some(Uuid::now_v7())), None);
    assert!(!token.is_cancelled());
    assert_eq!(session.cancel_run(Some(run)), Some(run));
    assert!(token.is_cancelled());
}

fn status(run: Uuid, seq: u64) -> ServerFrame {
    ServerFrame::Status {
        seq,
        run_id: Some(run.to_string()),
        data: protocol::chat_frames::StatusData {
            status: RunStatus::Processing,
            message: "working".into(),
            run_id: Some(run.to_string()),
        },
    }
}

#[test]
fn another_bridges_run_is_replayed_and_blocks_a_second_run_until_its_end() {
    // Loaded above a reservation of 1000; the other bridge's run is below it.
    let session = Arc::new(Session::new("s".into(), "b".into(), 1000, 100));
    let remote = Uuid::now_v7();
    let started = status(remote, 7);
    session.accept_remote(7, encode(&started), &started);
    session.caught_up_at(7);
    let sub = session.subscribe(Some(0), 8);
    assert_eq!(sub.seq, 7, "a new tab is told the stream's latest seq");
    assert_eq!(sub.active_run, Some(remote));
    assert_eq!(sub.replay.iter().map(seq_of).collect::<Vec<_>>(), [7]);
    let busy = session.begin_run(Uuid::now_v7(), CancellationToken::new(), None);
    assert_eq!(busy.map_err(|b| b.run), Err(remote));

    let ended = ServerFrame::Error {
        seq: 8,
        run_id: Some(remote.to_string()),
        data: ErrorData::new("internal", "failed"),
    };
    session.accept_remote(8, encode(&ended), &ended);
    assert_eq!(session.remote_run(), None);
    let mine = Uuid::now_v7();
    session
        .begin_run(mine, CancellationToken::new(), None)
        .unwrap();
    assert_eq!(
        session.publish(token("x")),
        1001,
        "this load's own seqs start above its reservation"
    );
}

#[test]
fn a_remote_run_settled_from_the_database_ends_once_and_its_late_copy_is_dropped() {
    let session = Arc::new(Session::new("s".into(), "b".into(), 0, 100));
    let remote = Uuid::now_v7();
    let started = status(remote, 3);
    session.accept_remote(3, encode(&started), &started);
    let mut sub = session.subscribe(Some(3), 8);
    assert_eq!(sub.active_run, Some(remote));

    let answer = ServerFrame::Message {
        seq: 0,
        run_id: Some(remote.to_string()),
        data: protocol::chat_frames::FinalMessage {
            content: "Done.".into(),
            artifacts: Vec::new(),
        },
    };
    assert!(session.settle_remote_run(remote, 9, answer.clone()));
    assert_eq!(seq_of(&sub.frames.try_recv().unwrap()), 9);
    assert_eq!(session.remote_run(), None);
    assert!(
        !session.settle_remote_run(remote, 9, answer.clone()),
        "a settled run is not settled again"
    );

    // The dead bridge's own copy, or another bridge's settle, comes late.
    let mut late = answer;
    late.set_seq(9);
    session.accept_remote(9, encode(&late), &late);
    assert!(
        sub.frames.try_recv().is_err(),
        "the terminal frame came once"
    );
    let next = status(Uuid::now_v7(), 10);
    session.accept_remote(10, encode(&next), &next);
    assert_eq!(seq_of(&sub.frames.try_recv().unwrap()), 10);
}
