//! Chat tabs for the scale test: each follows its session on one bridge
//! from the start, resuming with `last_seq` on the next bridge when its
//! socket dies, and keeps the transcript its frames tell (the final
//! `message` of every run, each seq once, as chat-client.js keeps it). One
//! tab per session also talks: it sends messages one at a time, and resends
//! one whose run it lost track of under the same `message_id`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::{SinkExt, StreamExt};
use protocol::chat_frames::ServerFrame;
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::{connect_async, tungstenite::Message};

/// A socket silent this long is taken for dead.
const SILENCE: Duration = Duration::from_secs(20);

/// What a tab saw: its session's assistant messages, in order.
pub struct TabEnd {
    pub session: String,
    pub transcript: Vec<String>,
    pub reconnects: usize,
    /// Runs it saw end, by their terminal frame.
    pub runs_ended: usize,
    /// The last run, when the tab gave up waiting for its end, and what it
    /// saw instead.
    pub missed: Option<String>,
}

/// A tab listens until it has seen the end of the session's last run, once
/// the test names it; a talker also sends messages until `talks_until`.
pub struct Role {
    pub talks_until: Option<Arc<AtomicBool>>,
    pub last_run: watch::Receiver<Option<String>>,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Tab {
    session: String,
    board: String,
    bridges: Vec<u16>,
    at: usize,
    ws: Option<Socket>,
    last_seq: Option<u64>,
    transcript: Vec<String>,
    reconnects: usize,
    /// Runs whose terminal frame it saw, oldest first.
    ended: Vec<String>,
}

impl Tab {
    /// Its socket, opened on the current bridge (or the next ones until one
    /// answers) with `last_seq` when it has none.
    async fn socket(&mut self) -> &mut Socket {
        while self.ws.is_none() {
            let mut url = format!(
                "ws://127.0.0.1:{}/ws/chat?session_id={}&board_id={}",
                self.bridges[self.at % self.bridges.len()],
                self.session,
                self.board
            );
            if let Some(seq) = self.last_seq {
                url.push_str(&format!("&last_seq={seq}"));
            }
            match connect_async(&url).await {
                Ok((ws, _)) => self.ws = Some(ws),
                Err(_) => self.lost().await,
            }
        }
        self.ws.as_mut().expect("connected")
    }

    /// The socket died: the next one goes to the next bridge.
    async fn lost(&mut self) {
        self.ws = None;
        self.at += 1;
        self.reconnects += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// The next frame, taken in; `None` when the socket died (it is dropped).
    async fn next(&mut self) -> Option<ServerFrame> {
        loop {
            let message = tokio::time::timeout(SILENCE, self.socket().await.next()).await;
            let text = match message {
                Ok(Some(Ok(Message::Text(text)))) => text,
                Ok(Some(Ok(_))) => continue,
                _ => {
                    self.lost().await;
                    return None;
                }
            };
            if let Ok(frame) = serde_json::from_str::<ServerFrame>(&text) {
                self.take(&frame);
                return Some(frame);
            }
        }
    }

    /// Keeps a run frame it has not seen (a seq above the last).
    fn take(&mut self, frame: &ServerFrame) {
        let (Some(run), Some(seq)) = (frame.run_id(), frame.seq()) else {
            return;
        };
        if self.last_seq.is_some_and(|last| seq <= last) {
            return;
        }
        self.last_seq = Some(seq);
        if let ServerFrame::Message { data, .. } = frame {
            self.transcript.push(data.content.clone());
        }
        if frame.is_terminal() {
            self.ended.push(run.to_owned());
        }
    }

    /// Sends `content` as `message_id` and reads until the run answering it
    /// ends, resending it after a reconnect: the bridge answers a resend
    /// from its records (the run in flight, or the answer it had).
    async fn talk(&mut self, content: &str, message_id: &str) {
        let message =
            json!({"type": "message", "data": {"content": content, "messageId": message_id}})
                .to_string();
        'resend: loop {
            if self
                .socket()
                .await
                .send(Message::text(message.clone()))
                .await
                .is_err()
            {
                self.lost().await;
                continue;
            }
            // Named by the first status the message gets.
            let mut answering: Option<String> = None;
            loop {
                let Some(frame) = self.next().await else {
                    continue 'resend;
                };
                match &frame {
                    ServerFrame::Status { data, .. } if answering.is_none() => {
                        answering.clone_from(&data.run_id);
                    }
                    ServerFrame::Error {
                        run_id: None, data, ..
                    } if data.code == "run_in_progress" => {
                        // A run this tab lost track of is still going.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue 'resend;
                    }
                    _ => {}
                }
                if answering
                    .as_ref()
                    .is_some_and(|run| self.ended.contains(run))
                {
                    return;
                }
            }
        }
    }

    fn end(self, missed: Option<String>) -> TabEnd {
        let missed = missed.map(|run| {
            format!(
                "run {run} (tab on bridge {}, last_seq {:?}, saw the end of {:?})",
                self.at % self.bridges.len(),
                self.last_seq,
                self.ended
            )
        });
        TabEnd {
            session: self.session,
            transcript: self.transcript,
            reconnects: self.reconnects,
            runs_ended: self.ended.len(),
            missed,
        }
    }
}

/// One tab of `session` (on `board`), starting on `bridges[first]`.
pub async fn tab(
    session: String,
    board: String,
    bridges: Vec<u16>,
    first: usize,
    role: Role,
) -> TabEnd {
    let mut tab = Tab {
        session,
        board,
        bridges,
        at: first,
        ws: None,
        last_seq: None,
        transcript: Vec::new(),
        reconnects: 0,
        ended: Vec::new(),
    };
    let Role {
        talks_until,
        mut last_run,
    } = role;
    tab.socket().await;
    if let Some(stop) = talks_until {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let content = if n % 2 == 1 {
                format!("Create a P3 task for chat {} {n}", tab.session)
            } else {
                "list tasks".to_owned()
            };
            tab.talk(&content, &format!("m-{n}")).await;
        }
    }
    // Following the session until the test names its last run and the tab
    // has seen that run end.
    let mut wanted: Option<String> = None;
    let mut deadline = None;
    loop {
        if let Some(run) = &wanted {
            if tab.ended.contains(run) {
                return tab.end(None);
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return tab.end(wanted);
            }
        }
        tokio::select! {
            _ = tab.next() => {}
            changed = last_run.changed(), if wanted.is_none() => {
                if changed.is_err() {
                    return tab.end(None);
                }
                wanted = last_run.borrow_and_update().clone();
                deadline = Some(tokio::time::Instant::now() + super::SETTLE);
            }
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
