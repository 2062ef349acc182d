// The two protocol clients in Node, against a scripted fake WebSocket: no
// browser, no server. Covers what is hard to force through the page: gaps,
// duplicates, resent commands, seq dedup, the chat outbox.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BoardClient, BoardModel } from '../lib/board-client.js';
import { ChatClient } from '../lib/chat-client.js';
import { Backoff } from '../lib/shared.js';

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 1;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.readyState = 3; this.closedByClient = true; }
  /** The server sends a frame. */
  push(frame) { this.onmessage?.({ data: JSON.stringify(frame) }); }
  /** The server goes away. */
  drop(code = 1006) { this.readyState = 3; this.onclose?.({ code, reason: '' }); }
  last(type) { return this.sent.filter((f) => f.type === type).at(-1); }
  static latest() { return FakeSocket.all.at(-1); }
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
const change = (type, version, data, extra = {}) => ({ type, boardId: 'B', version, ts: 0, data, ...extra });
const task = (id, lane, position) => ({ id, lane, laneId: `L-${lane}`, title: id, position, priority: 'medium', kind: 'task', version: 1, labels: [] });
const syncFrame = (version) => ({
  type: 'board.sync', boardId: 'B', version, ts: 0,
  data: { lanes: { todo: [task('a', 'todo', 'a0'), task('b', 'todo', 'a1')], done: [] }, laneOrder: ['todo', 'done'], board: { id: 'B', slug: 'demo', name: 'Demo', lanes: [{ id: 'L-todo', key: 'todo', name: 'To do', position: 0 }, { id: 'L-done', key: 'done', name: 'Done', position: 1 }] } },
});

function boardClient() {
  const client = new BoardClient({ url: 'ws://x/ws', board: 'demo', WebSocket: FakeSocket, baseDelayMs: 2, maxDelayMs: 4, pingIntervalMs: 60000 });
  const states = [];
  client.on('status', (s) => states.push(s.state));
  client.connect();
  const ws = FakeSocket.latest();
  ws.push({ type: 'connected', clientId: 'c1', heartbeatMs: 30000 });
  return { client, ws, states };
}

describe('Backoff', () => {
  it('doubles up to the cap and jitters within the upper half', () => {
    const low = new Backoff(500, 4000, () => 0);
    assert.deepEqual([1, 2, 3, 4, 5].map(() => low.next()), [250, 500, 1000, 2000, 2000]);
    const high = new Backoff(500, 4000, () => 1);
    assert.deepEqual([1, 2, 3, 4, 5].map(() => high.next()), [500, 1000, 2000, 4000, 4000]);
    high.reset();
    assert.equal(high.next(), 500);
  });
});

describe('BoardModel', () => {
  it('follows lane frames: added, renamed, deleted with its tasks moved', () => {
    const model = new BoardModel();
    model.apply(syncFrame(3));
    const lanes = (keys) => keys.map((key, position) => ({ id: `L-${key}`, key, name: key, position }));
    model.apply(change('lane.created', 4, { lane: { id: 'L-review', key: 'review' }, lanes: lanes(['todo', 'review', 'done']) }));
    assert.deepEqual(model.lanes.map((l) => l.key), ['todo', 'review', 'done']);
    model.apply(change('lane.deleted', 5, {
      lane: { id: 'L-todo', key: 'todo' }, lanes: lanes(['review', 'done']),
      movedTasks: [task('a', 'done', 'b0'), task('b', 'done', 'b1')],
    }));
    assert.deepEqual(model.lanes.map((l) => l.key), ['review', 'done']);
    assert.deepEqual(model.laneTasks('done').map((t) => t.id), ['a', 'b']);
    assert.equal(model.version, 5);
  });
});

describe('BoardClient', () => {
  it('subscribes by slug, applies frames in order and drops duplicates', () => {
    const { client, ws, states } = boardClient();
    const sub = ws.last('subscribe');
    assert.equal(sub.boardId, 'demo');
    assert.equal(sub.sinceVersion, undefined);
    ws.push(syncFrame(5));
    assert.equal(states.at(-1), 'connected');
    ws.push(change('task.moved', 6, { id: 'a', fromLane: 'todo', toLane: 'done', position: 'a0' }));
    ws.push(change('task.moved', 6, { id: 'a', fromLane: 'todo', toLane: 'todo', position: 'zz' }));
    assert.equal(client.model.tasks.get('a').lane, 'done', 'the repeated version 6 was ignored');
    ws.push(change('task.updated', 7, { id: 'b', changes: { title: 'B!' }, taskVersion: 2 }));
    assert.deepEqual(client.model.laneTasks('todo').map((t) => [t.id, t.title, t.version]), [['b', 'B!', 2]]);
    assert.equal(client.version, 7);
    client.close();
  });

  it('resubscribes from its version on a gap and after a drop', async () => {
    const { client, ws } = boardClient();
    ws.push(syncFrame(5));
    ws.push(change('task.deleted', 8, { id: 'a', lane: 'todo' }));
    assert.ok(client.model.tasks.has('a'), 'a frame after a gap is not applied');
    assert.ok(ws.closedByClient);
    await tick(20);
    const ws2 = FakeSocket.latest();
    assert.notEqual(ws2, ws);
    ws2.push({ type: 'connected', clientId: 'c2', heartbeatMs: 30000 });
    assert.equal(ws2.last('subscribe').sinceVersion, 5);
    assert.equal(ws2.last('subscribe').boardId, 'B', 'the id learnt from the first sync');
    ws2.drop();
    assert.equal(client.state, 'reconnecting');
    await tick(20);
    FakeSocket.latest().push({ type: 'connected', clientId: 'c3', heartbeatMs: 30000 });
    assert.equal(FakeSocket.latest().last('subscribe').sinceVersion, 5);
    client.close();
  });

  it('resolves a command on its ack, rejects on its error, and resends it with the same id after a drop', async () => {
    const { client, ws } = boardClient();
    ws.push(syncFrame(1));
    const moved = client.moveTask('a', 'done', { after: 'x' });
    const sent = ws.last('task.move');
    assert.deepEqual(sent.data, { id: 'a', toLane: 'done', after: 'x' });
    ws.drop();
    await tick(20);
    const ws2 = FakeSocket.latest();
    ws2.push({ type: 'connected', clientId: 'c2', heartbeatMs: 30000 });
    ws2.push({ type: 'ack', id: ws2.last('subscribe').id, ok: true, result: { boardId: 'B', slug: 'demo' } });
    assert.equal(ws2.last('task.move').id, sent.id, 'same idempotency key');
    ws2.push({ type: 'ack', id: sent.id, ok: true, result: { id: 'a', lane: 'done' } });
    assert.deepEqual(await moved, { id: 'a', lane: 'done' });

    const refused = client.updateTask('b', { title: 'x' }, { expectedVersion: 1 });
    const upd = ws2.last('task.update');
    assert.equal(upd.expectedVersion, 1);
    ws2.push({ type: 'error', id: upd.id, code: 'version_conflict', message: 'task b is at version 2' });
    await assert.rejects(refused, { name: 'CommandError', code: 'version_conflict' });
    client.close();
  });

  it('sends a command again while board-service is unavailable, with the same id', async () => {
    const { client, ws } = boardClient();
    ws.push(syncFrame(1));
    const created = client.createTask({ title: 'x', lane: 'todo' });
    const first = ws.last('task.create');
    ws.push({ type: 'error', id: first.id, code: 'unavailable', message: 'board-service is unreachable' });
    await tick(700);
    const again = ws.sent.filter((f) => f.type === 'task.create');
    assert.equal(again.length, 2);
    assert.equal(again[1].id, first.id);
    ws.push({ type: 'ack', id: first.id, ok: true, result: { id: 't1' } });
    assert.deepEqual(await created, { id: 't1' });
    client.close();
  });

  it('gives up on an unknown board with a disconnected state', () => {
    const { client, ws, states } = boardClient();
    ws.push({ type: 'error', id: ws.last('subscribe').id, code: 'not_found', message: 'board demo does not exist' });
    assert.equal(states.at(-1), 'disconnected');
    assert.equal(client.state, 'disconnected');
  });
});

describe('ChatClient', () => {
  function chatClient(opts = {}) {
    const chat = new ChatClient({ url: 'ws://x/ws/chat', boardId: 'demo', WebSocket: FakeSocket, baseDelayMs: 2, maxDelayMs: 4, pingIntervalMs: 60000, ...opts });
    chat.connect();
    return { chat, ws: FakeSocket.latest() };
  }

  it('queues messages until connected and resolves with the run\'s message', async () => {
    const { chat, ws } = chatClient();
    const reply = chat.send('Create a P1 story for login');
    assert.equal(ws.sent.length, 0);
    assert.equal(chat.queued[0].state, 'queued');
    ws.push({ type: 'connected', seq: 0, sessionId: 's1', boardId: 'B' });
    assert.equal(ws.last('message').data.content, 'Create a P1 story for login');
    assert.equal(ws.last('message').data.session_id, 's1');
    const tokens = [];
    chat.on('token', (t) => tokens.push(t.token));
    ws.push({ type: 'status', seq: 1, runId: 'r1', data: { status: 'processing', message: '…', runId: 'r1' } });
    ws.push({ type: 'token', seq: 2, runId: 'r1', data: { token: 'Done', done: false } });
    ws.push({ type: 'token', seq: 2, runId: 'r1', data: { token: 'Done', done: false } });
    ws.push({ type: 'message', seq: 3, runId: 'r1', data: { content: 'Done.', artifacts: [] } });
    assert.deepEqual(await reply, { runId: 'r1', content: 'Done.', artifacts: [] });
    assert.deepEqual(tokens, ['Done'], 'the repeated seq 2 was dropped');
    assert.equal(chat.lastSeq, 3);
    assert.deepEqual(chat.queued, []);
    chat.close();
  });

  it('holds a message refused with run_in_progress until the other run ends', async () => {
    const { chat, ws } = chatClient();
    ws.push({ type: 'connected', seq: 4, sessionId: 's1', boardId: 'B' });
    const reply = chat.send('what is in progress?');
    assert.equal(ws.sent.filter((f) => f.type === 'message').length, 1);
    ws.push({ type: 'error', seq: 4, data: { code: 'run_in_progress', message: 'busy' } });
    ws.push({ type: 'status', seq: 5, runId: 'other', data: { status: 'processing', message: '', runId: 'other' } });
    assert.equal(chat.queued[0].state, 'queued');
    ws.push({ type: 'message', seq: 6, runId: 'other', data: { content: 'theirs', artifacts: [] } });
    assert.equal(ws.sent.filter((f) => f.type === 'message').length, 2, 'sent again once the session was free');
    ws.push({ type: 'status', seq: 7, runId: 'mine', data: { status: 'processing', message: '', runId: 'mine' } });
    ws.push({ type: 'error', seq: 8, runId: 'mine', data: { code: 'agent_unavailable', message: 'down' } });
    await assert.rejects(reply, { name: 'RunError', code: 'agent_unavailable' });
    chat.close();
  });

  it('reconnects to the same session after the last seq it saw', async () => {
    const { chat, ws } = chatClient({ sessionId: 's9' });
    assert.match(ws.url, /session_id=s9/);
    assert.match(ws.url, /board_id=demo/);
    ws.push({ type: 'connected', seq: 10, sessionId: 's9', boardId: 'B' });
    ws.push({ type: 'token', seq: 11, runId: 'r', data: { token: 'a', done: false } });
    ws.drop();
    assert.equal(chat.state, 'reconnecting');
    await tick(20);
    assert.match(FakeSocket.latest().url, /last_seq=11/);
    chat.close();
  });

  it('sends its token and message ids, and keeps an id across a resend', async () => {
    const { chat, ws } = chatClient({ token: 't0k' });
    assert.match(ws.url, /token=t0k/);
    ws.push({ type: 'connected', seq: 0, sessionId: 's1', boardId: 'B' });
    chat.send('Create a P1 story for login').catch(() => {});
    const first = ws.last('message').data.message_id;
    assert.ok(first, 'a message_id goes with the message');
    ws.drop();
    await tick(20);
    FakeSocket.latest().push({ type: 'connected', seq: 0, sessionId: 's1', boardId: 'B' });
    // No run showed up in the replay, so the client sends it again.
    await tick(900);
    assert.equal(FakeSocket.latest().last('message').data.message_id, first, 'the resend keeps its id');
    chat.close();
  });

  it('settles a resent message with the run the bridge says answers it', async () => {
    const { chat, ws } = chatClient();
    ws.push({ type: 'connected', seq: 0, sessionId: 's1', boardId: 'B' });
    // Answered already: told the run (for this socket alone, no top-level
    // runId, the latest seq), then its terminal frame under its own seq.
    const answered = chat.send('Create a P1 story for login');
    ws.push({ type: 'status', seq: 0, data: { status: 'idle', message: 'answered', runId: 'r1' } });
    ws.push({ type: 'message', seq: 3, runId: 'r1', data: { content: 'Done.', artifacts: [] } });
    assert.deepEqual(await answered, { runId: 'r1', content: 'Done.', artifacts: [] });
    // An answer this tab saw already settles at once; its repeat is dropped.
    const again = chat.send('Create a P1 story for login', { messageId: answered.id });
    assert.equal(ws.last('message').data.message_id, answered.id, 'sent under the same id');
    ws.push({ type: 'status', seq: 3, data: { status: 'idle', message: 'answered', runId: 'r1' } });
    assert.deepEqual(await again, { runId: 'r1', content: 'Done.', artifacts: [] });
    ws.push({ type: 'message', seq: 3, runId: 'r1', data: { content: 'Done.', artifacts: [] } });
    // In flight: bound to that run, settled by its end.
    const inFlight = chat.send('what is in progress?');
    ws.push({ type: 'status', seq: 3, data: { status: 'processing', message: 'in flight', runId: 'r2' } });
    ws.push({ type: 'token', seq: 4, runId: 'r2', data: { token: 'x', done: false } });
    ws.push({ type: 'error', seq: 5, runId: 'r2', data: { code: 'interrupted', message: 'cut', retryable: true } });
    await assert.rejects(inFlight, { name: 'RunError', code: 'interrupted' });
    assert.deepEqual(chat.queued, []);
    chat.close();
  });

  it('keeps at most maxQueued messages offline and says which one it dropped', async () => {
    const { chat } = chatClient({ maxQueued: 3, fetch: null });
    const dropped = [];
    chat.on('dropped', (d) => dropped.push(d.content));
    const first = chat.send('one');
    for (const text of ['two', 'three', 'four']) chat.send(text);
    await assert.rejects(first, { name: 'RunError', code: 'dropped' });
    assert.deepEqual(dropped, ['one']);
    assert.deepEqual(chat.queued.map((e) => e.content), ['two', 'three', 'four']);
    chat.close();
  });

  it('falls back to POST /api/chat when the socket cannot connect, and tells the run', async () => {
    const posted = [];
    const fetch = async (url, init) => {
      posted.push({ url, body: JSON.parse(init.body) });
      return {
        status: 200,
        json: async () => ({
          sessionId: 's-http', runId: 'r-http', status: 'completed',
          message: { content: 'Created it.', artifacts: [] },
          toolExecutions: [{ id: 'c1', tool: 'create_task', status: 'completed', input: {}, output: { id: 't1' }, startTime: 0 }],
        }),
      };
    };
    const { chat, ws } = chatClient({ url: 'wss://bridge.example/ws/chat', fetch, fallbackAfter: 2 });
    const statuses = [];
    const tools = [];
    chat.on('status', (s) => statuses.push(s));
    chat.on('tool', (t) => tools.push(t));
    const reply = chat.send('Create a P1 story for login');
    ws.drop();
    for (let i = 0; i < 3 && !posted.length; i++) {
      await tick(20);
      FakeSocket.latest().drop();
    }
    assert.deepEqual(await reply, { runId: 'r-http', content: 'Created it.', artifacts: [] });
    assert.equal(posted[0].url, 'https://bridge.example/api/chat');
    assert.equal(posted[0].body.message_id, reply.id, 'the message keeps its id over HTTP');
    assert.equal(tools[0].runId, 'r-http');
    assert.ok(statuses.some((s) => s.state === 'connected' && s.transport === 'http'), JSON.stringify(statuses));
    assert.equal(chat.sessionId, 's-http');
    // The socket comes back: it takes over again.
    await tick(20);
    FakeSocket.latest().push({ type: 'connected', seq: 0, sessionId: 's-http', boardId: 'B' });
    assert.equal(chat.httpFallback, false);
    assert.equal(statuses.at(-1).transport, 'websocket');
    chat.close();
  });

  it('stays on the WebSocket when sockets that got through are closed by the bridge', async () => {
    let posts = 0;
    const fetch = async () => { posts += 1; throw new Error('must not be called'); };
    const { chat, ws } = chatClient({ url: 'wss://bridge.example/ws/chat', fetch, fallbackAfter: 2 });
    ws.push({ type: 'connected', seq: 0, sessionId: 's1', boardId: 'B' });
    const reply = chat.send('what is in progress?');
    // A restarting bridge: each socket opens, then is closed with 1013.
    ws.drop(1013);
    for (let i = 0; i < 4; i++) {
      await tick(20);
      FakeSocket.latest().onopen?.();
      FakeSocket.latest().drop(1013);
    }
    assert.equal(chat.httpFallback, false);
    assert.equal(posts, 0);
    assert.notEqual(chat.state, 'connected', 'not shown as connected over HTTP');
    // Closing leaves the message unanswered; nothing waits on it.
    reply.catch(() => {});
    chat.close();
  });

  it('remembers only recent ended runs, however many a page sees', () => {
    const { chat, ws } = chatClient();
    ws.push({ type: 'connected', seq: 0, sessionId: 's1', boardId: 'B' });
    for (let i = 1; i <= 300; i++) {
      ws.push({ type: 'message', seq: i, runId: `r${i}`, data: { content: '', artifacts: [] } });
    }
    assert.ok(chat._ended.size <= 256 && chat._endings.size <= 64, `${chat._ended.size} / ${chat._endings.size}`);
    assert.ok(chat._ended.has('r300') && !chat._ended.has('r1'));
    chat.close();
  });

  it('stops reconnecting when the bridge refuses the token or the session', async () => {
    for (const code of [4001, 4002, 4003]) {
      const { chat, ws } = chatClient();
      const before = FakeSocket.all.length;
      ws.drop(code);
      await tick(20);
      assert.equal(chat.state, 'disconnected', `close ${code}`);
      assert.equal(FakeSocket.all.length, before, `no reconnect after ${code}`);
      chat.close();
    }
  });
});
