// The golden frames that protocol's tests produce from the Rust types
// (protocol/tests/golden/*.json), replayed through the real clients: if a
// frame's shape changes on one side only, this or `cargo test -p protocol
// --test golden` fails.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BoardClient, BoardModel, CommandError } from '../lib/board-client.js';
import { ChatClient } from '../lib/chat-client.js';

const golden = (name) => JSON.parse(readFileSync(new URL(`../../protocol/tests/golden/${name}`, import.meta.url), 'utf8'));

class FakeSocket {
  static latest;
  constructor(url) {
    this.url = url;
    this.readyState = 1;
    this.sent = [];
    FakeSocket.latest = this;
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.readyState = 3; }
  push(frame) { this.onmessage?.({ data: JSON.stringify(frame) }); }
}

describe('golden board frames', () => {
  const frames = golden('board-stream.json');
  const [connected, sync] = frames;
  const changes = frames.filter((f) => f.version && f.type !== 'board.sync');

  it('list board.sync lanes in the board order, as seed 003 clients iterate them', () => {
    assert.deepEqual(Object.keys(sync.data.lanes), sync.data.laneOrder);
    assert.deepEqual(sync.data.board.lanes.map((l) => l.key), sync.data.laneOrder);
  });

  it('build the board the frames describe in the model', () => {
    const model = new BoardModel();
    assert.ok(model.apply(sync));
    for (const frame of changes) assert.ok(model.apply(frame), `${frame.type} is understood`);
    assert.equal(model.version, changes.at(-1).version);
    assert.deepEqual(model.lanes.map((l) => l.key), ['todo', 'in_progress', 'done', 'review']);
    assert.deepEqual(model.laneTasks('todo').map((t) => t.id), ['t-reset']);
    const [login] = model.laneTasks('in_progress');
    assert.equal(login.id, 't-login');
    assert.equal(login.title, 'Login with SSO', 'task.updated changes applied');
    assert.equal(login.laneId, 'lane-in_progress');
    assert.equal(login.position, 'a1');
    assert.equal(login.version, 3);
    assert.equal(model.tasks.has('t-docs'), false, 'task.deleted removed it');
  });

  it('settle commands with the ack and error frames', async () => {
    const client = new BoardClient({ url: 'ws://x/ws', board: 'default', WebSocket: FakeSocket, pingIntervalMs: 60000 });
    client.connect();
    const ws = FakeSocket.latest;
    ws.onopen?.();
    ws.push(connected);
    const subscribe = ws.sent.find((f) => f.type === 'subscribe');
    ws.push({ type: 'ack', id: subscribe.id, ok: true, result: { boardId: sync.boardId, slug: 'default' } });
    ws.push(sync);
    const moved = client.moveTask('t-login', 'in_progress');
    const refused = client.moveTask('t-reset', 'in_progress');
    const [moveId, refuseId] = ws.sent.filter((f) => f.type === 'task.move').map((f) => f.id);
    const ack = frames.find((f) => f.type === 'ack');
    const error = frames.find((f) => f.type === 'error');
    ws.push({ ...ack, id: moveId });
    ws.push({ ...error, id: refuseId });
    const task = await moved;
    assert.equal(task.lane, 'in_progress');
    assert.equal(task.version, 3);
    await assert.rejects(refused, (err) => err instanceof CommandError && err.code === error.code && err.message === error.message);
    client.close();
  });
});

describe('golden chat frames', () => {
  it('drive a run through approval, tool progress, tokens and its message, then a retryable cut', async () => {
    const frames = golden('chat-run.json');
    const chat = new ChatClient({ url: 'ws://x/ws/chat', boardId: 'default', WebSocket: FakeSocket, pingIntervalMs: 60000 });
    const seen = { tools: [], tokens: [], message: null, errors: [] };
    chat.on('tool', (t) => seen.tools.push(t));
    chat.on('token', (t) => seen.tokens.push(t.token));
    chat.on('message', (m) => { seen.message = m; });
    chat.on('run-error', (e) => seen.errors.push(e));
    chat.connect();
    const ws = FakeSocket.latest;
    ws.onopen?.();
    for (const frame of frames) ws.push(frame);
    assert.equal(chat.sessionId, 's-1');
    assert.deepEqual(seen.tools.map((t) => t.status), ['awaiting_approval', 'running', 'completed']);
    assert.match(seen.tools[0].approval.description, /Old spike/);
    assert.equal(seen.tools[2].output.id, 't-login');
    assert.equal(seen.tokens.join(''), seen.message.content);
    assert.equal(seen.message.runId, 'run-1');
    assert.equal(seen.message.artifacts[0].toolCallId, 'call_1');
    assert.deepEqual(seen.errors.map((e) => [e.runId, e.code, e.retryable]), [['run-2', 'interrupted', true]]);
    assert.equal(chat.lastSeq, frames.at(-1).seq);
    chat.close();
  });
});
