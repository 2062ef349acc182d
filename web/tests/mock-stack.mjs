// An in-memory ws-gateway and agent-bridge behind Playwright's WebSocket
// routing, speaking the frames of issues 3 and 4. The UI tests use it so the
// page's behaviour (optimistic moves, rejected moves, forms not clobbered,
// reconnects) is tested without the Rust services; e2e.test.mjs runs the
// same page against the real ones.

const LANES = [
  ['backlog', 'Backlog'], ['todo', 'To do'], ['in_progress', 'In progress'], ['done', 'Done'], ['recovery', 'Recovery'],
];
const STEP = 2 ** 20;
const pos = (n) => String(n).padStart(16, '0');

export class MockBoard {
  constructor({ id = 'b-1', slug = 'demo', name = 'Demo board', wip = {} } = {}) {
    this.id = id;
    this.slug = slug;
    this.name = name;
    this.version = 1;
    this.lanes = LANES.map(([key, lname], position) => ({ id: `lane-${key}`, key, name: lname, position, ...(wip[key] ? { wipLimit: wip[key] } : {}) }));
    this.tasks = new Map();
    this.log = [];
    this.sockets = new Set(); // subscribed route handles
    this.seen = new Map(); // command id → answer (idempotency)
    this.nextTask = 1;
  }

  laneTasks(key) {
    return [...this.tasks.values()].filter((t) => t.lane === key).sort((a, b) => (a.position < b.position ? -1 : 1));
  }

  sync() {
    const lanes = Object.fromEntries(this.lanes.map((l) => [l.key, this.laneTasks(l.key)]));
    return { type: 'board.sync', boardId: this.id, version: this.version, ts: Date.now(), data: { lanes, laneOrder: this.lanes.map((l) => l.key), board: { id: this.id, slug: this.slug, name: this.name, lanes: this.lanes, createdAt: 0 } } };
  }

  emit(type, data, commandId) {
    this.version += 1;
    const frame = { type, boardId: this.id, version: this.version, ts: Date.now(), data, ...(commandId ? { commandId } : {}) };
    this.log.push(frame);
    for (const ws of this.sockets) ws.send(JSON.stringify(frame));
    return frame;
  }

  /** Seeds a task without a command (like a gRPC client would). */
  create(data, commandId) {
    const lane = data.lane || 'backlog';
    if (!this.lanes.some((l) => l.key === lane)) throw Object.assign(new Error(`lane ${lane} does not exist`), { code: 'not_found' });
    this._checkWip(lane);
    const list = this.laneTasks(lane);
    const last = list.length ? Number(list[list.length - 1].position) : 0;
    const now = Date.now();
    const task = {
      id: `t-${this.nextTask++}`, lane, laneId: `lane-${lane}`, title: data.title, description: data.description || '',
      priority: data.priority || 'medium', kind: data.kind || 'task', estimatedHours: data.estimatedHours || 0,
      assignee: data.assignee || '', labels: data.labels || [], position: pos(last + STEP), version: 1, createdAt: now, updatedAt: now,
    };
    this.tasks.set(task.id, task);
    this.emit('task.created', { ...task }, commandId);
    return task;
  }

  _checkWip(lane, movingId) {
    const l = this.lanes.find((x) => x.key === lane);
    const count = this.laneTasks(lane).filter((t) => t.id !== movingId).length;
    if (l?.wipLimit != null && count >= l.wipLimit) {
      throw Object.assign(new Error(`lane ${l.name} is at its WIP limit of ${l.wipLimit}`), { code: 'failed_precondition' });
    }
  }

  move(id, toLane, { before, after } = {}, commandId) {
    const task = this.tasks.get(id);
    if (!task) throw Object.assign(new Error(`task ${id} does not exist`), { code: 'not_found' });
    if (task.lane !== toLane) this._checkWip(toLane, id);
    const list = this.laneTasks(toLane).filter((t) => t.id !== id);
    let i = list.length;
    if (before) i = list.findIndex((t) => t.id === before);
    else if (after) i = list.findIndex((t) => t.id === after) + 1;
    if (i < 0) throw Object.assign(new Error('anchor is not in the lane'), { code: 'failed_precondition' });
    const lo = i > 0 ? Number(list[i - 1].position) : 0;
    const hi = i < list.length ? Number(list[i].position) : lo + 2 * STEP;
    const from = task.lane;
    task.lane = toLane;
    task.laneId = `lane-${toLane}`;
    task.position = pos(Math.floor((lo + hi) / 2));
    task.version += 1;
    this.emit('task.moved', { id, fromLane: from, toLane, fromLaneId: `lane-${from}`, toLaneId: `lane-${toLane}`, position: task.position, taskVersion: task.version }, commandId);
    return task;
  }

  update(id, changes, expectedVersion, commandId) {
    const task = this.tasks.get(id);
    if (!task) throw Object.assign(new Error(`task ${id} does not exist`), { code: 'not_found' });
    if (expectedVersion != null && expectedVersion !== task.version) {
      throw Object.assign(new Error(`task ${id} is at version ${task.version}, not ${expectedVersion}`), { code: 'version_conflict' });
    }
    Object.assign(task, changes);
    task.version += 1;
    this.emit('task.updated', { id, changes, taskVersion: task.version }, commandId);
    return task;
  }

  remove(id, commandId) {
    const task = this.tasks.get(id);
    if (!task) throw Object.assign(new Error(`task ${id} does not exist`), { code: 'not_found' });
    this.tasks.delete(id);
    this.emit('task.deleted', { id, lane: task.lane }, commandId);
    return { taskId: id, boardVersion: this.version };
  }

  /** Routes `/ws` of `context` (all its pages) to this board. */
  async route(context, { failCommands, commandDelayMs = 0 } = {}) {
    this.routes = [];
    this.subscribes = [];
    this.commandDelayMs = commandDelayMs;
    // The sprint picker's list: this board has none.
    await context.route(/\/api\/boards\/[^/?]+\/sprints/, (route) => route.fulfill({
      status: 200, contentType: 'application/json', body: JSON.stringify({ sprints: [] }),
    }));
    await context.routeWebSocket(/\/ws(\?.*)?$/, (ws) => {
      if (this.down) { ws.close({ code: 1013, reason: 'down' }); return; }
      this.routes.push(ws);
      ws.send(JSON.stringify({ type: 'connected', clientId: `c-${this.routes.length}`, heartbeatMs: 30000 }));
      ws.onMessage((text) => this._onClientFrame(ws, JSON.parse(text), failCommands));
      ws.onClose(() => this.sockets.delete(ws));
    });
  }

  /** Closes every socket (1001) and refuses new ones until `up()`. */
  goDown() {
    this.down = true;
    for (const ws of this.routes || []) ws.close({ code: 1001, reason: 'gateway shutting down' });
    this.sockets.clear();
  }

  up() {
    this.down = false;
  }

  _onClientFrame(ws, frame, failCommands) {
    const answer = (f) => ws.send(JSON.stringify(f));
    if (frame.type === 'ping') return answer({ type: 'pong', ts: Date.now() });
    if (frame.type === 'subscribe') {
      this.subscribes.push(frame);
      if (frame.boardId !== this.id && frame.boardId !== this.slug) {
        return answer({ type: 'error', code: 'not_found', message: `board ${frame.boardId} does not exist`, id: frame.id });
      }
      this.sockets.add(ws);
      answer({ type: 'ack', id: frame.id, ok: true, result: { boardId: this.id, slug: this.slug } });
      if (frame.sinceVersion != null) {
        for (const f of this.log.filter((x) => x.version > frame.sinceVersion)) answer(f);
      } else answer(this.sync());
      return;
    }
    if (this.commandDelayMs) {
      setTimeout(() => this._command(frame, answer, failCommands), this.commandDelayMs);
      return;
    }
    this._command(frame, answer, failCommands);
  }

  _command(frame, answer, failCommands) {
    if (this.seen.has(frame.id)) return answer(this.seen.get(frame.id));
    const d = frame.data || {};
    let reply;
    try {
      if (failCommands?.(frame)) throw Object.assign(new Error('refused by the test'), { code: 'failed_precondition' });
      let result;
      if (frame.type === 'task.create') result = this.create(d, frame.id);
      else if (frame.type === 'task.move') result = this.move(d.id, d.toLane, d, frame.id);
      else if (frame.type === 'task.update') result = this.update(d.id, d.changes, frame.expectedVersion, frame.id);
      else if (frame.type === 'task.delete') result = this.remove(d.id, frame.id);
      else throw Object.assign(new Error(`unknown type ${frame.type}`), { code: 'unknown_type' });
      reply = { type: 'ack', id: frame.id, ok: true, result };
    } catch (err) {
      reply = { type: 'error', id: frame.id, code: err.code || 'internal', message: err.message };
    }
    this.seen.set(frame.id, reply);
    answer(reply);
  }
}

/** A scripted agent-bridge: understands "Create a P<n> <kind> for <title>". */
export class MockBridge {
  constructor(board, { toolDelayMs = 300, tokenDelayMs = 15 } = {}) {
    this.board = board;
    this.toolDelayMs = toolDelayMs;
    this.tokenDelayMs = tokenDelayMs;
    this.seq = 0;
    this.sockets = new Set();
    this.ring = [];
    this.running = null;
    this.received = []; // every message frame's data, in order
    this.interruptNext = false; // end the next run as a bridge crash would
  }

  async route(context) {
    await context.routeWebSocket(/\/ws\/chat/, (ws) => {
      // Down is a bridge that is restarting: it takes the socket, then closes
      // it with 1013. (One that refuses the upgrade outright looks like a
      // blocking proxy, and the client would fall back to HTTP.)
      if (this.down) { setTimeout(() => ws.close({ code: 1013 }), 20); return; }
      const url = new URL(ws.url());
      const last = url.searchParams.get('last_seq');
      this.sockets.add(ws);
      ws.send(JSON.stringify({ type: 'connected', seq: this.seq, sessionId: url.searchParams.get('session_id') || 'sess-1', boardId: this.board.id, ...(this.running ? { runId: this.running.id } : {}) }));
      for (const [seq, f] of this.ring) if (last != null ? seq > Number(last) : this.running) ws.send(f);
      ws.onMessage((text) => this._onFrame(ws, JSON.parse(text)));
      ws.onClose(() => this.sockets.delete(ws));
    });
  }

  goDown() {
    this.down = true;
    for (const ws of this.sockets) ws.close({ code: 1001 });
    this.sockets.clear();
  }

  up() { this.down = false; }

  _publish(frame) {
    this.seq += 1;
    const text = JSON.stringify({ ...frame, seq: this.seq });
    this.ring.push([this.seq, text]);
    for (const ws of this.sockets) ws.send(text);
  }

  _onFrame(ws, frame) {
    if (frame.type === 'ping') return ws.send(JSON.stringify({ type: 'pong' }));
    if (frame.type === 'cancel') {
      if (this.running) this.running.cancelled = true;
      return;
    }
    if (frame.type !== 'message') return;
    this.received.push(frame.data);
    if (this.running) {
      return ws.send(JSON.stringify({ type: 'error', seq: this.seq, data: { code: 'run_in_progress', message: 'a run is in progress' } }));
    }
    this._run(frame.data.content);
  }

  async _run(content) {
    const runId = `run-${this.seq + 1}`;
    this.running = { id: runId };
    this.ring = [];
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    this._publish({ type: 'status', runId, data: { status: 'processing', message: 'Understanding your request…', runId } });
    if (this.interruptNext) {
      // What a restarted agent-bridge publishes for a run its predecessor left.
      this.interruptNext = false;
      await sleep(this.tokenDelayMs);
      this.running = null;
      this._publish({ type: 'error', runId, data: { code: 'interrupted', message: 'The run was interrupted.', retryable: true } });
      return;
    }
    const m = /create an? (?:p([0-3]) )?(story|bug|task|epic) for (.+)/i.exec(content);
    const say = async (text) => {
      for (const piece of text.match(/\S+\s*/g)) {
        if (this.running.cancelled) return false;
        this._publish({ type: 'token', runId, data: { token: piece, done: false } });
        await sleep(this.tokenDelayMs);
      }
      this._publish({ type: 'token', runId, data: { token: '', done: true } });
      return true;
    };
    let reply;
    if (m) {
      const priority = ['critical', 'high', 'medium', 'low'][Number(m[1] ?? 2)];
      const title = m[3].replace(/^\w/, (c) => c.toUpperCase());
      const input = { title, lane: 'backlog', priority, kind: m[2].toLowerCase() };
      const start = Date.now();
      const tool = { id: `call-${runId}`, tool: 'create_task', input, startTime: start };
      this._publish({ type: 'tool_execution', runId, data: { ...tool, status: 'started' } });
      await sleep(this.toolDelayMs / 2);
      this._publish({ type: 'tool_execution', runId, data: { ...tool, status: 'running', progress: 0.5 } });
      await sleep(this.toolDelayMs / 2);
      if (this.running.cancelled) return this._cancelled(runId);
      const task = this.board.create(input);
      this._publish({ type: 'tool_execution', runId, data: { ...tool, status: 'completed', output: { id: task.id, title: task.title, lane: task.lane, priority: task.priority, kind: task.kind }, endTime: Date.now() } });
      reply = `Created the ${input.kind} **${title}** in Backlog with ${priority} priority.`;
    } else {
      reply = 'I can create, move and delete cards, and tell you what is in a lane.';
    }
    if (!(await say(reply))) return this._cancelled(runId);
    this.running = null;
    this._publish({ type: 'message', runId, data: { content: reply, artifacts: [] } });
  }

  _cancelled(runId) {
    this.running = null;
    this._publish({ type: 'status', runId, data: { status: 'cancelled', message: 'Cancelled', runId } });
  }
}

/** Fills the board with a realistic set of cards for screenshots. */
export function seed(board) {
  const cards = [
    ['backlog', 'Audit log export to CSV', 'story', 'low', 'maya', ['reporting'], 5],
    ['backlog', 'Dark mode for the board', 'story', 'medium', '', ['ui'], 8],
    ['backlog', 'Rate-limit the public API per token', 'task', 'high', 'jonas', ['api', 'security'], 3],
    ['backlog', 'Onboarding checklist', 'epic', 'medium', 'lea', [], 0],
    ['todo', 'Swimlanes by assignee', 'story', 'medium', 'maya', ['ui'], 13],
    ['todo', 'Attachments over 10 MB fail silently', 'bug', 'high', 'sam', ['files'], 2],
    ['todo', 'Webhook retries with backoff', 'task', 'medium', 'jonas', ['api'], 3],
    ['in_progress', 'Checkout times out under load', 'bug', 'critical', 'sam', ['payments', 'p0'], 4],
    ['in_progress', 'SSO with Okta', 'story', 'high', 'lea', ['auth'], 8],
    ['in_progress', 'Move cards with the keyboard', 'task', 'low', 'maya', ['a11y'], 2],
    ['done', 'Live board updates over WebSocket', 'story', 'high', 'jonas', ['realtime'], 5],
    ['done', 'Fractional order keys', 'task', 'medium', 'lea', [], 3],
    ['recovery', 'Restore cards deleted by the import bug', 'bug', 'high', 'sam', ['data'], 1],
  ];
  for (const [lane, title, kind, priority, assignee, labels, estimatedHours] of cards) {
    board.create({ lane, title, kind, priority, assignee, labels, estimatedHours, description: kind === 'bug' ? 'Steps to reproduce in the linked ticket.' : '' });
  }
}
