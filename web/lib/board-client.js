// Boardwire board protocol client: one WebSocket to ws-gateway's `/ws`,
// one board. No DOM code: it runs in any browser page, a worker, or Node 22+
// (pass `WebSocket` in the options where there is no global one).
//
//   const client = new BoardClient({ url: 'ws://localhost:4002/ws', board: 'default' });
//   client.on('sync', ({ model }) => render(model));
//   client.on('frame', (frame) => render(client.model));
//   client.on('status', ({ state, attempt }) => showStatus(state, attempt));
//   client.connect();
//   await client.moveTask(taskId, 'done', { after: otherTaskId });
//
// Guarantees it adds on top of the gateway's: frames are applied in version
// order with duplicates dropped; a gap makes it resubscribe from the last
// version it holds; a reconnect resumes with `sinceVersion`; a command sent
// while offline waits, and one in flight when the socket drops is sent again
// with the same id (the gateway treats the id as an idempotency key).

import { Emitter, Backoff, newId } from './shared.js';

/** Frame types that change the board. */
export const CHANGE_TYPES = Object.freeze([
  'task.created', 'task.updated', 'task.moved', 'task.deleted',
  'lane.created', 'lane.updated', 'lane.deleted',
]);

/** Close codes after which retrying cannot help until something changes. */
const FATAL_CLOSE = new Map([
  [4001, 'a valid token is required'],
  [4002, 'the token has expired'],
]);

/** Subscribe errors that retrying cannot fix. */
const FATAL_SUBSCRIBE = new Set(['not_found', 'forbidden', 'unauthorized', 'invalid_frame']);

/** An `error` frame turned into an Error: `code`, `message`, `frame`. */
export class CommandError extends Error {
  constructor(code, message, frame = null) {
    super(message);
    this.name = 'CommandError';
    this.code = code;
    this.frame = frame;
  }
}

/**
 * The board as frames describe it: lanes in order, tasks per lane in order.
 * `apply(frame)` folds one frame in; `board.sync` replaces everything.
 */
export class BoardModel {
  constructor() {
    this.board = null;
    this.version = 0;
    /** @type {Array<{id,key,name,position,wipLimit?}>} */
    this.lanes = [];
    /** @type {Map<string, object>} task id → task (with `lane` = lane key) */
    this.tasks = new Map();
  }

  /** Tasks of `laneKey` in board order. */
  laneTasks(laneKey) {
    const out = [];
    for (const task of this.tasks.values()) if (task.lane === laneKey) out.push(task);
    return out.sort(byPosition);
  }

  apply(frame) {
    const d = frame.data;
    switch (frame.type) {
      case 'board.sync': {
        this.board = d.board;
        this.lanes = d.board?.lanes?.length
          ? [...d.board.lanes]
          : (d.laneOrder || Object.keys(d.lanes)).map((key, position) => ({ key, name: key, position }));
        this.tasks = new Map();
        for (const [lane, tasks] of Object.entries(d.lanes)) {
          for (const task of tasks) this.tasks.set(task.id, { ...task, lane });
        }
        break;
      }
      case 'task.created':
        this.tasks.set(d.id, { ...d });
        break;
      case 'task.updated': {
        const task = this.tasks.get(d.id);
        if (task) Object.assign(task, d.changes, { version: d.taskVersion ?? task.version });
        break;
      }
      case 'task.moved': {
        const task = this.tasks.get(d.id);
        if (task) {
          task.lane = d.toLane;
          if (d.toLaneId) task.laneId = d.toLaneId;
          task.position = d.position;
          if (d.taskVersion != null) task.version = d.taskVersion;
        }
        break;
      }
      case 'task.deleted':
        this.tasks.delete(d.id);
        break;
      case 'lane.created':
      case 'lane.updated':
        this.lanes = [...d.lanes];
        break;
      case 'lane.deleted':
        this.lanes = [...d.lanes];
        for (const task of d.movedTasks || []) this.tasks.set(task.id, { ...task });
        break;
      default:
        return false;
    }
    this.version = frame.version;
    return true;
  }
}

function byPosition(a, b) {
  return a.position < b.position ? -1 : a.position > b.position ? 1 : a.id < b.id ? -1 : 1;
}

/**
 * Connects to one board and keeps it live.
 *
 * Events (`client.on(name, fn)` returns an unsubscribe function):
 * - `status` `{state, attempt, delayMs, reason}`: state is `connecting`,
 *   `connected`, `reconnecting` (attempt n, next try in delayMs) or
 *   `disconnected` (gave up or fatal; call `retry()`).
 * - `sync` `{model, frame}`: a `board.sync` replaced the model.
 * - `frame` (frame): any change frame after it was applied to `model`;
 *   also emitted under its own type (`task.moved`, ...).
 * - `latency` (ms): round trip of the last ping.
 * - `error` (CommandError): an error frame that answers no command.
 * - `gap` `{expected, got}`: a version gap; the client resubscribes by itself.
 * - `presence` `{entries, count, listed}` (with `opts.presence`): who is on
 *   the board over every gateway, one entry per person (`key`, `name`,
 *   `connections`); `listed` is false above the gateway's member limit,
 *   when only `count` is known.
 */
export class BoardClient extends Emitter {
  /**
   * @param {object} opts
   * @param {string} opts.url WebSocket URL of the gateway's `/ws`.
   * @param {string} opts.board Board id or slug.
   * @param {string} [opts.token] Sent as `?token=` when set.
   * @param {string} [opts.name] Sent as `?name=`: the name others see with auth off.
   * @param {boolean} [opts.presence=false] Ask who is on the board, and follow it.
   * @param {number} [opts.baseDelayMs=500] First reconnect delay (before jitter).
   * @param {number} [opts.maxDelayMs=10000] Reconnect delay cap.
   * @param {number} [opts.maxAttempts=12] Failed attempts in a row before `disconnected`.
   * @param {number} [opts.commandTimeoutMs=15000] A command with no answer by then is rejected (`timeout`).
   * @param {number} [opts.pingIntervalMs] Defaults to half the server's heartbeat, at most 10 s.
   * @param {string} [opts.eventsUrl] The gateway's SSE `/events` (default: derived from `url`).
   * @param {number} [opts.sseFallbackAfter=3] WebSocket attempts that never opened before
   *   falling back to read-only SSE (a proxy that blocks WebSocket); 0 never falls back.
   * @param {typeof WebSocket} [opts.WebSocket]
   * @param {typeof EventSource} [opts.EventSource]
   */
  constructor(opts) {
    super();
    this.url = opts.url;
    this.board = opts.board;
    this.token = opts.token;
    this.name = opts.name;
    this.presenceEnabled = Boolean(opts.presence);
    /** Who is on the board: key → {key, name, connections}. */
    this.presence = new Map();
    this.presenceCount = 0;
    this.presenceListed = true;
    this._presenceId = null;
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    this.backoff = new Backoff(opts.baseDelayMs ?? 500, opts.maxDelayMs ?? 10000);
    this.maxAttempts = opts.maxAttempts ?? 12;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 15000;
    this.pingIntervalMs = opts.pingIntervalMs;
    this.eventsUrl = opts.eventsUrl || eventsUrlFor(opts.url);
    this.sseFallbackAfter = opts.sseFallbackAfter ?? 3;
    this.EventSource = opts.EventSource || globalThis.EventSource;
    /** `websocket`, or `sse` (read-only) when WebSocket never got through. */
    this.transport = 'websocket';
    this._wsEverOpened = false;
    this._es = null;
    this.model = new BoardModel();
    /** The board's id once the gateway told it (frames carry ids, not slugs). */
    this.boardId = null;
    this.state = 'idle';
    this.latencyMs = null;
    this.clientId = null;
    this._ws = null;
    this._subscribeId = null;
    this._subscribed = false;
    this._pending = new Map(); // command id → {frame, resolve, reject, timer}
    this._timers = {};
    this._stopped = true;
    this._lastGapAt = -1;
  }

  /** The last board version applied (0 before the first sync). */
  get version() { return this.model.version; }

  connect() {
    this._stopped = false;
    if (!this._ws) this._open();
    return this;
  }

  /** Reconnects now, resetting the backoff (the page's retry button). */
  retry() {
    this._stopped = false;
    this.backoff.reset();
    clearTimeout(this._timers.reconnect);
    this._closeSse();
    this.transport = 'websocket';
    if (this._ws) this._drop('retry');
    else this._open();
  }

  /** Closes for good; commands still waiting are rejected. */
  close() {
    this._stopped = true;
    clearTimeout(this._timers.reconnect);
    this._closeSse();
    this._drop('closed by the page');
    for (const [, p] of this._pending) {
      clearTimeout(p.timer);
      p.reject(new CommandError('closed', 'the client was closed'));
    }
    this._pending.clear();
    this._setState('disconnected', { reason: 'closed' });
  }

  /**
   * Sends a command; resolves with the ack's `result`, rejects with a
   * CommandError carrying the gateway's code (`version_conflict`,
   * `failed_precondition`, ...), or `timeout`.
   */
  command(type, data, { expectedVersion, id = newId() } = {}) {
    const frame = { type, id, boardId: this.boardId || this.board, data };
    if (expectedVersion != null) frame.expectedVersion = expectedVersion;
    if (this.transport === 'sse') return Promise.reject(readOnly());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new CommandError('timeout', `no answer to ${type} within ${this.commandTimeoutMs} ms`));
      }, this.commandTimeoutMs);
      this._pending.set(id, { frame, resolve, reject, timer });
      if (this._subscribed) this._send(frame);
    });
  }

  createTask(data, opts) { return this.command('task.create', data, opts); }
  updateTask(id, changes, opts) { return this.command('task.update', { id, changes }, opts); }
  /** `anchor`: `{before?, after?}` (neighbour task ids); empty puts the task at the lane's end. */
  moveTask(id, toLane, anchor = {}, opts) {
    return this.command('task.move', { id, toLane, ...anchor }, opts);
  }
  deleteTask(id, opts) { return this.command('task.delete', { id }, opts); }

  // ---- internals ----

  _open() {
    clearTimeout(this._timers.reconnect);
    this._setState(this.backoff.attempt ? 'reconnecting' : 'connecting', { attempt: this.backoff.attempt });
    let ws;
    try {
      ws = new this.WebSocket(this._wsUrl());
    } catch (err) {
      this._scheduleReconnect(String(err));
      return;
    }
    this._ws = ws;
    this._subscribed = false;
    ws.onmessage = (ev) => this._onMessage(ws, ev.data);
    ws.onclose = (ev) => this._onClose(ws, ev.code, ev.reason);
    ws.onerror = () => {}; // a close event always follows
  }

  _wsUrl() {
    const query = [];
    if (this.token) query.push(`token=${encodeURIComponent(this.token)}`);
    if (this.name) query.push(`name=${encodeURIComponent(this.name)}`);
    if (!query.length) return this.url;
    return `${this.url}${this.url.includes('?') ? '&' : '?'}${query.join('&')}`;
  }

  _onMessage(ws, text) {
    if (ws !== this._ws) return;
    this._lastHeard = Date.now();
    let frame;
    try { frame = JSON.parse(text); } catch { return; }
    switch (frame.type) {
      case 'connected':
        this._wsEverOpened = true;
        this.clientId = frame.clientId;
        this._startHeartbeat(frame.heartbeatMs || 30000);
        this._subscribe();
        return;
      case 'pong':
        if (this._pingSentAt) {
          this.latencyMs = Date.now() - this._pingSentAt;
          this._pingSentAt = 0;
          this.emit('latency', this.latencyMs);
        }
        return;
      case 'ack':
        if (frame.id === this._subscribeId) {
          if (frame.result?.boardId) this.boardId = frame.result.boardId;
          this._onSubscribed();
        } else this._settle(frame.id, (p) => p.resolve(frame.result ?? null));
        return;
      case 'error':
        this._onError(frame);
        return;
      case 'presence':
      case 'presence.joined':
      case 'presence.left':
        this._onPresence(frame);
        return;
      case 'board.sync':
        if (!this._ours(frame)) return;
        this.boardId = frame.boardId;
        this.model.apply(frame);
        this.emit('sync', { model: this.model, frame });
        this._onSubscribed();
        return;
      default:
        if (CHANGE_TYPES.includes(frame.type)) this._onChange(frame);
    }
  }

  _ours(frame) {
    return !this.boardId || frame.boardId === this.boardId;
  }

  _onChange(frame) {
    if (!this._ours(frame)) return;
    const expected = this.model.version + 1;
    if (frame.version < expected) return; // already applied
    if (frame.version > expected && this.model.board) {
      // Versions grow by exactly one per change; a hole means something was
      // missed. Resubscribe from what we hold, once per hole.
      if (this._lastGapAt !== this.model.version) {
        this._lastGapAt = this.model.version;
        this.emit('gap', { expected, got: frame.version });
        this._drop('version gap', true);
        return;
      }
    }
    this.model.apply(frame);
    this.emit(frame.type, frame);
    this.emit('frame', frame);
  }

  _onPresence(frame) {
    if (!this._ours(frame)) return;
    const entries = frame.entries || [];
    if (frame.type === 'presence') {
      this.presenceListed = Array.isArray(frame.entries);
      this.presence = new Map(entries.map((e) => [e.key, e]));
    } else if (frame.type === 'presence.joined') {
      for (const e of entries) this.presence.set(e.key, e);
    } else {
      for (const e of entries) this.presence.delete(e.key);
    }
    this.presenceCount = frame.count ?? this.presence.size;
    this.emit('presence', { entries: [...this.presence.values()], count: this.presenceCount, listed: this.presenceListed });
  }

  _onError(frame) {
    const err = new CommandError(frame.code, frame.message, frame);
    if (frame.id && frame.id === this._presenceId) {
      // A gateway without presence (or one that timed out): no avatars.
      this.emit('presence-error', err);
      return;
    }
    if (frame.id && frame.id === this._subscribeId) {
      if (FATAL_SUBSCRIBE.has(frame.code)) {
        this._stopped = true;
        this._drop(frame.message);
        this._setState('disconnected', { reason: frame.message, code: frame.code });
      } else this._drop(frame.message, true);
      this.emit('error', err);
      return;
    }
    if (frame.id && this._pending.has(frame.id)) {
      // `unavailable`: board-service is unreachable for now. Send the same
      // command (same id, so it runs at most once) again after a pause, until
      // the command's own timeout gives up on it.
      const p = this._pending.get(frame.id);
      if (frame.code === 'unavailable') {
        p.tries = (p.tries || 0) + 1;
        setTimeout(() => {
          if (this._pending.get(frame.id) === p && this._subscribed) this._send(p.frame);
        }, Math.min(4000, 250 * 2 ** p.tries));
        return;
      }
      this._settle(frame.id, (q) => q.reject(err));
      return;
    }
    this.emit('error', err);
  }

  _subscribe() {
    this._subscribeId = newId();
    const frame = { type: 'subscribe', boardId: this.boardId || this.board, id: this._subscribeId };
    if (this.model.board) frame.sinceVersion = this.model.version;
    this._send(frame);
  }

  _onSubscribed() {
    if (this._subscribed) return;
    this._subscribed = true;
    this.backoff.reset();
    this._setState('connected', { transport: this.transport });
    if (this.presenceEnabled && this.transport === 'websocket') {
      this._presenceId = newId();
      this._send({ type: 'presence', boardId: this.boardId || this.board, id: this._presenceId });
    }
    for (const [, p] of this._pending) {
      p.frame.boardId = this.boardId || p.frame.boardId;
      this._send(p.frame);
    }
  }

  _settle(id, fn) {
    const p = this._pending.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    this._pending.delete(id);
    fn(p);
  }

  _startHeartbeat(heartbeatMs) {
    clearInterval(this._timers.ping);
    const every = this.pingIntervalMs ?? Math.min(10000, Math.max(1000, heartbeatMs / 2));
    const deadAfter = Math.max(heartbeatMs * 2, every * 3);
    this._lastHeard = Date.now();
    const ping = () => {
      if (Date.now() - this._lastHeard > deadAfter) {
        this._drop('no frame from the gateway within the heartbeat', true);
        return;
      }
      this._pingSentAt = Date.now();
      this._send({ type: 'ping' });
    };
    this._timers.ping = setInterval(ping, every);
    setTimeout(ping, 50);
  }

  _send(frame) {
    const ws = this._ws;
    if (ws && ws.readyState === 1) ws.send(JSON.stringify(frame));
  }

  /** Closes the socket; `reconnect` schedules the next attempt at once-ish. */
  _drop(reason, reconnect = false) {
    this._closeSse();
    const ws = this._ws;
    this._ws = null;
    this._subscribed = false;
    clearInterval(this._timers.ping);
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(1000, reason.slice(0, 100)); } catch { /* already closed */ }
    }
    if (reconnect && !this._stopped) this._scheduleReconnect(reason);
    else if (!this._stopped && reason === 'retry') this._open();
  }

  _onClose(ws, code, reason) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._subscribed = false;
    clearInterval(this._timers.ping);
    if (this._stopped) return;
    if (FATAL_CLOSE.has(code)) {
      this._stopped = true;
      this._setState('disconnected', { reason: FATAL_CLOSE.get(code), code });
      return;
    }
    this._scheduleReconnect(reason || `closed (${code})`);
  }

  _scheduleReconnect(reason) {
    if (this.transport === 'websocket' && !this._wsEverOpened) this._wsFailures = (this._wsFailures || 0) + 1;
    if (this.transport === 'websocket' && !this._wsEverOpened && this.sseFallbackAfter
        && this.EventSource && this._wsFailures >= this.sseFallbackAfter) {
      // WebSocket never got through (often a proxy): follow the board over SSE.
      this.transport = 'sse';
      this._wsFailures = 0;
      for (const [, p] of this._pending) { clearTimeout(p.timer); p.reject(readOnly()); }
      this._pending.clear();
      this._openSse();
      return;
    }
    if (this.backoff.attempt >= this.maxAttempts) {
      this._setState('disconnected', { reason, attempt: this.backoff.attempt });
      return;
    }
    const delayMs = this.backoff.next();
    this._setState('reconnecting', { attempt: this.backoff.attempt, delayMs, reason });
    this._timers.reconnect = setTimeout(() => (this.transport === 'sse' ? this._openSse() : this._open()), delayMs);
  }

  // ---- read-only fallback over SSE ----

  _openSse() {
    clearTimeout(this._timers.reconnect);
    const params = new URLSearchParams({ boardId: this.boardId || this.board });
    if (this.model.board) params.set('sinceVersion', String(this.model.version));
    if (this.token) params.set('token', this.token);
    if (this.name) params.set('name', this.name);
    const es = new this.EventSource(`${this.eventsUrl}${this.eventsUrl.includes('?') ? '&' : '?'}${params}`);
    this._es = es;
    es.onopen = () => {
      if (es !== this._es) return;
      this.backoff.reset();
      if (this.state !== 'connected') this._setState('connected', { transport: 'sse' });
      // The gateway may simply have been down while WebSocket was tried:
      // check once now, then every 30 s.
      clearInterval(this._timers.upgrade);
      this._timers.upgrade = setInterval(() => this._probeWebSocket(), 30000);
      this._probeWebSocket();
    };
    const onFrame = (ev) => {
      if (es !== this._es) return;
      let frame;
      try { frame = JSON.parse(ev.data); } catch { return; }
      if (frame.type === 'board.sync') {
        if (!this._ours(frame)) return;
        this.boardId = frame.boardId;
        this.model.apply(frame);
        this.emit('sync', { model: this.model, frame });
      } else if (frame.type === 'error') {
        this.emit('error', new CommandError(frame.code, frame.message, frame));
      } else this._onChange(frame);
    };
    for (const type of ['board.sync', ...CHANGE_TYPES]) es.addEventListener(type, onFrame);
    es.addEventListener('error', (ev) => {
      if (es !== this._es) return;
      if (ev.data) { onFrame(ev); return; } // an error frame, not the connection
      if (es.readyState === 2) {
        // The stream failed too (the gateway is down, not just WebSocket
        // blocked): go back to trying WebSocket, on the same backoff.
        this._closeSse();
        this.transport = 'websocket';
        this._scheduleReconnect('event stream closed');
      } else if (!this._timers.sseBlip) {
        // The browser reconnects by itself; only a gap that lasts is news.
        this._timers.sseBlip = setTimeout(() => {
          this._timers.sseBlip = null;
          if (es === this._es && es.readyState !== 1) this._setState('reconnecting', { attempt: 1, transport: 'sse' });
        }, 2000);
      }
    });
  }

  _closeSse() {
    clearInterval(this._timers.upgrade);
    if (this._es) {
      this._es.close();
      this._es = null;
    }
  }

  /** On SSE, checks now and then whether WebSocket gets through after all. */
  _probeWebSocket() {
    let probe;
    try { probe = new this.WebSocket(this._wsUrl()); } catch { return; }
    const done = () => { probe.onmessage = probe.onclose = probe.onerror = null; try { probe.close(); } catch { /* closed */ } };
    probe.onmessage = (ev) => {
      let frame;
      try { frame = JSON.parse(ev.data); } catch { return; }
      done();
      if (frame.type === 'connected' && this.transport === 'sse') this.retry();
    };
    probe.onclose = probe.onerror = done;
    setTimeout(done, 10000);
  }

  _setState(state, info) {
    this.state = state;
    this.emit('status', { state, ...info });
  }
}

/** `ws://host/ws` → `http://host/events`. */
function eventsUrlFor(wsUrl) {
  try {
    const u = new URL(wsUrl);
    u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
    u.pathname = u.pathname.replace(/\/ws\/?$/, '/events');
    u.search = '';
    return u.toString();
  } catch {
    return '/events';
  }
}

function readOnly() {
  return new CommandError('read_only', 'this network lets live updates through but not changes (WebSocket is blocked)');
}
