// Boardwire chat protocol client: one WebSocket to agent-bridge's `/ws/chat`,
// one session. No DOM code.
//
//   const chat = new ChatClient({ url: 'ws://localhost:8001/ws/chat', boardId: 'default' });
//   chat.on('token', ({ runId, token }) => appendText(runId, token));
//   chat.on('tool', (tool) => drawToolCard(tool));
//   chat.on('status', ({ state, latencyMs }) => showStatus(state, latencyMs));
//   chat.connect();
//   const reply = await chat.send('Create a P1 story for login'); // {runId, content, artifacts}
//
// Frames carry the session's `seq`; the client drops run frames it has seen
// and reconnects with `last_seq`, so a tab that drops mid-run gets the rest
// of the run and nothing twice. Messages sent while offline, or while the
// session has a run in flight, wait in `queued` and go out in order.

import { Emitter, Backoff, newId } from './shared.js';

/** A run that ended with `error` or `status: cancelled`. */
export class RunError extends Error {
  constructor(code, message, runId = null) {
    super(message);
    this.name = 'RunError';
    this.code = code;
    this.runId = runId;
  }
}

/**
 * Events (`chat.on(name, fn)` returns an unsubscribe function):
 * - `status` `{state, attempt, delayMs, latencyMs, reason}`: connection state
 *   (`connecting`, `connected`, `reconnecting`, `disconnected`).
 * - `session` `{sessionId, boardId}` once the bridge named them.
 * - `run` `{runId, status, message}`: `processing`, `idle` or `cancelled`.
 * - `token` `{runId, token, done}`; `tool` (the `tool_execution` data plus `runId`);
 *   `message` `{runId, content, artifacts}`; `run-error` `{runId, code, message, retryable}`
 *   (`retryable`: the run was cut short; `send(content, {messageId})` retries it).
 * - `rejected` `{code, message}`: an error for this socket only (no run).
 * - `queue` (array of `{id, content, state}`) whenever the outbox changes.
 * - `latency` (ms), `frame` (every frame, raw).
 */
/** Close codes after which reconnecting with the same token cannot help. */
const FATAL_CLOSE = new Map([
  [4001, 'a valid token is required'],
  [4002, 'the token has expired'],
  [4003, 'this chat session belongs to someone else'],
]);

/** `ws(s)://host/…/ws/chat` → `http(s)://host/…/api/chat`. */
function httpUrlOf(url) {
  try {
    const u = new URL(url);
    u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
    u.pathname = u.pathname.replace(/\/ws\/chat\/?$/, '/api/chat');
    u.search = '';
    return u.toString();
  } catch {
    return null;
  }
}

export class ChatClient extends Emitter {
  /**
   * @param {object} opts
   * @param {string} opts.url WebSocket URL of `/ws/chat`.
   * @param {string} [opts.boardId] Board (id or slug) the session works on.
   * @param {string} [opts.sessionId] Resume this session; without it the bridge makes one.
   * @param {number} [opts.lastSeq] Resume after this seq (e.g. restored from storage).
   * @param {string} [opts.token] Bearer token, sent as `?token=` (browsers cannot set
   *   headers on a WebSocket); needed when the bridge has auth on.
   * @param {number} [opts.pingIntervalMs=5000] Latency probe interval.
   * @param {number} [opts.baseDelayMs=500] @param {number} [opts.maxDelayMs=10000]
   * @param {number} [opts.maxAttempts=12]
   * @param {typeof WebSocket} [opts.WebSocket]
   * @param {string} [opts.httpUrl] `POST /api/chat` of the same bridge (derived from `url`).
   * @param {number} [opts.fallbackAfter=2] WebSocket attempts that never open, in a row, before
   *   messages go over HTTP instead (the socket keeps being retried behind it).
   * @param {number} [opts.maxQueued=100] Messages the offline queue holds; the oldest
   *   is dropped (and `dropped` emitted) past that.
   * @param {typeof fetch} [opts.fetch]
   */
  constructor(opts) {
    super();
    this.url = opts.url;
    this.boardId = opts.boardId || null;
    this.sessionId = opts.sessionId || null;
    this.lastSeq = opts.lastSeq ?? null;
    this.token = opts.token || null;
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    this.pingIntervalMs = opts.pingIntervalMs ?? 5000;
    this.backoff = new Backoff(opts.baseDelayMs ?? 500, opts.maxDelayMs ?? 10000);
    this.maxAttempts = opts.maxAttempts ?? 12;
    this.httpUrl = opts.httpUrl || httpUrlOf(opts.url);
    this.fallbackAfter = opts.fallbackAfter ?? 2;
    this.maxQueued = opts.maxQueued ?? 100;
    this.fetch = opts.fetch || globalThis.fetch?.bind(globalThis);
    /** Whether messages go over HTTP because the WebSocket cannot connect. */
    this.httpFallback = false;
    this.state = 'idle';
    this.latencyMs = null;
    /** The run in flight on the session, if any. */
    this.activeRunId = null;
    /** Outgoing messages not yet bound to a run, oldest first. */
    this.queued = [];
    this._ws = null;
    this._stopped = true;
    this._timers = {};
    this._awaiting = null; // the message sent, waiting for its run to start
    this._runs = new Map(); // runId → message entry (null: another tab's run)
    this._ended = new Set();
    this._endings = new Map(); // runId → how it settled, for resends it answers
  }

  connect() {
    this._stopped = false;
    if (!this._ws) this._open();
    return this;
  }

  retry() {
    this._stopped = false;
    this.backoff.reset();
    clearTimeout(this._timers.reconnect);
    this._closeSocket();
    this._open();
  }

  close() {
    this._stopped = true;
    clearTimeout(this._timers.reconnect);
    this._closeSocket();
    this._setState('disconnected', { reason: 'closed' });
  }

  /**
   * Queues `content` and sends it as soon as the socket is up and no run is
   * in flight. Resolves with `{runId, content, artifacts}` when its run ends
   * with `message`; rejects with a RunError on `error` or cancellation.
   * The returned promise has `.id`, the queue entry's id, which goes out as
   * the message's `message_id`. Pass `opts.messageId` to send a message
   * again (Retry after an `error` with `retryable`): the bridge then runs it
   * again without repeating work already done, or returns its answer.
   */
  send(content, { messageId } = {}) {
    const entry = { id: messageId || newId(), content, state: 'queued' };
    const promise = new Promise((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    promise.id = entry.id;
    promise.catch(() => {}); // callers that ignore the outcome see no unhandled rejection
    const waiting = this.queued.filter((e) => e.state === 'queued');
    if (waiting.length >= this.maxQueued) {
      // Full: the oldest unsent message goes, and the user is told.
      const oldest = waiting[0];
      this.queued = this.queued.filter((e) => e !== oldest);
      oldest.reject(new RunError('dropped', `the offline queue holds ${this.maxQueued} messages`));
      this.emit('dropped', { id: oldest.id, content: oldest.content });
    }
    this.queued.push(entry);
    this._emitQueue();
    this._pump();
    return promise;
  }

  /** Drops a message that has not been sent yet. */
  unqueue(id) {
    const i = this.queued.findIndex((e) => e.id === id && e.state === 'queued');
    if (i < 0) return false;
    const [entry] = this.queued.splice(i, 1);
    entry.reject(new RunError('unqueued', 'removed before it was sent'));
    this._emitQueue();
    return true;
  }

  /** Whether `runId` was started by a `send()` of this client (not another tab). */
  ownsRun(runId) {
    return !!this._runs.get(runId);
  }

  /**
   * Answers a tool call that awaits approval (`tool_execution` with status
   * `awaiting_approval`); any tab of the session may. The run's next frame
   * for the call, with the answer, reaches every tab.
   */
  approve(toolCallId, approved, reason) {
    const data = { toolCallId, approved: !!approved };
    if (reason) data.reason = reason;
    return this._send({ type: 'approval', data });
  }

  /** Asks the bridge to stop the run in flight (or `runId`). */
  cancel(runId = this.activeRunId) {
    const frame = { type: 'cancel' };
    if (runId) frame.runId = runId;
    return this._send(frame);
  }

  // ---- internals ----

  _open() {
    clearTimeout(this._timers.reconnect);
    // Behind the HTTP fallback, socket attempts go on without a word.
    if (!this.httpFallback) this._setState(this.backoff.attempt ? 'reconnecting' : 'connecting', { attempt: this.backoff.attempt });
    const params = new URLSearchParams();
    if (this.sessionId) params.set('session_id', this.sessionId);
    if (this.boardId) params.set('board_id', this.boardId);
    if (this.lastSeq != null) params.set('last_seq', String(this.lastSeq));
    if (this.token) params.set('token', this.token);
    const url = this.url + (this.url.includes('?') ? '&' : '?') + params;
    let ws;
    try {
      ws = new this.WebSocket(url);
    } catch (err) {
      this._blockedAttempts = (this._blockedAttempts || 0) + 1;
      this._scheduleReconnect(String(err));
      return;
    }
    this._ws = ws;
    // A socket that opened got through: whatever closes it later (a bridge
    // going down, a restart) is no reason to fall back to HTTP.
    let reached = false;
    ws.onopen = () => { reached = true; };
    ws.onmessage = (ev) => { reached = true; this._onMessage(ws, ev.data); };
    ws.onclose = (ev) => {
      this._blockedAttempts = reached ? 0 : (this._blockedAttempts || 0) + 1;
      this._onClose(ws, ev.code, ev.reason);
    };
    ws.onerror = () => {};
  }

  _onMessage(ws, text) {
    if (ws !== this._ws) return;
    this._lastHeard = Date.now();
    let frame;
    try { frame = JSON.parse(text); } catch { return; }
    if (frame.type === 'pong') {
      if (this._pingSentAt) {
        this.latencyMs = Date.now() - this._pingSentAt;
        this._pingSentAt = 0;
        this.emit('latency', this.latencyMs);
        this.emit('status', { state: this.state, latencyMs: this.latencyMs });
      }
      return;
    }
    if (frame.type === 'connected') return this._onConnected(frame);
    const runId = frame.runId || frame.data?.runId || null;
    // Run frames carry a top-level runId and take a new seq each; frames for
    // this socket alone (rejections, "no run to cancel", "already answered")
    // have none, repeat the latest seq and must not be deduplicated.
    if (frame.runId && typeof frame.seq === 'number') {
      if (this.lastSeq != null && frame.seq <= this.lastSeq) return;
      this.lastSeq = frame.seq;
    }
    this.emit('frame', frame);
    const d = frame.data || {};
    if (frame.type === 'status' && !frame.runId && runId) return this._onResendAnswered(runId);
    switch (frame.type) {
      case 'status':
        if (d.status === 'processing' && runId) this._onRunStarted(runId);
        this.emit('run', { runId, status: d.status, message: d.message });
        if (d.status === 'cancelled') this._onRunEnded(runId, (e) => e.reject(new RunError('cancelled', d.message || 'cancelled', runId)));
        break;
      case 'token':
        if (runId) this._onRunStarted(runId);
        this.emit('token', { runId, token: d.token, done: d.done });
        break;
      case 'tool_execution':
        if (runId) this._onRunStarted(runId);
        this.emit('tool', { ...d, runId });
        break;
      case 'message':
        this.emit('message', { runId, content: d.content, artifacts: d.artifacts || [] });
        this._onRunEnded(runId, (e) => e.resolve({ runId, content: d.content, artifacts: d.artifacts || [] }));
        break;
      case 'error':
        if (runId) {
          this.emit('run-error', { runId, code: d.code, message: d.message, retryable: !!d.retryable });
          this._onRunEnded(runId, (e) => e.reject(new RunError(d.code, d.message, runId)));
        } else {
          this._onRejected(d);
        }
        break;
      default:
        break;
    }
  }

  _onConnected(frame) {
    this.httpFallback = false;
    this.sessionId = frame.sessionId;
    if (frame.boardId) this.boardId = frame.boardId;
    this.activeRunId = frame.runId || null;
    this.backoff.reset();
    this.emit('session', { sessionId: this.sessionId, boardId: this.boardId });
    this._setState('connected', { latencyMs: this.latencyMs, transport: 'websocket' });
    this._startPing();
    if (this._awaiting) {
      // It went out before the socket dropped. If the bridge got it, its run
      // shows up in the replay that follows `connected`; if not, send again.
      clearTimeout(this._timers.resend);
      this._timers.resend = setTimeout(() => {
        if (this._awaiting && !this.activeRunId) {
          this._awaiting.state = 'queued';
          this._awaiting = null;
          this._pump();
        }
      }, 750);
    }
    this._pump();
  }

  _onRunStarted(runId) {
    if (this._ended.has(runId)) return;
    this.activeRunId = runId;
    if (this._runs.has(runId)) return;
    if (this._awaiting) {
      const entry = this._awaiting;
      this._awaiting = null;
      entry.state = 'running';
      entry.runId = runId;
      this._runs.set(runId, entry);
      this.queued = this.queued.filter((e) => e !== entry);
      this._emitQueue();
    } else {
      this._runs.set(runId, null); // a run started by another tab
    }
  }

  /**
   * The bridge says the message just sent again (same message_id) is
   * answered by `runId`, in flight or already ended: bind the entry to it.
   * An ended run's answer is the one this client saw (the bridge repeats it
   * next, under its seq, and that copy is dropped), so it settles now.
   */
  _onResendAnswered(runId) {
    const entry = this._awaiting;
    if (!entry) return;
    const ending = this._endings.get(runId);
    if (!ending) {
      this._ended.delete(runId);
      this._onRunStarted(runId);
      return;
    }
    this._awaiting = null;
    this.queued = this.queued.filter((e) => e !== entry);
    ending(entry);
    this._emitQueue();
    this._pump();
  }

  _onRunEnded(runId, settle) {
    const entry = this._runs.get(runId);
    if (entry) settle(entry);
    this._runs.delete(runId);
    if (runId) {
      this._ended.add(runId);
      // Only recent runs can still send a late frame; a long page life must
      // not keep every run id it ever saw.
      if (this._ended.size > 256) this._ended.delete(this._ended.values().next().value);
      // Kept for a resend that turns out to be answered by this run.
      this._endings.set(runId, settle);
      if (this._endings.size > 64) this._endings.delete(this._endings.keys().next().value);
    }
    if (!runId || this.activeRunId === runId) this.activeRunId = null;
    this._pump();
  }

  _onRejected(d) {
    if (this._awaiting && d.code === 'run_in_progress') {
      // Another tab's run holds the session: try again when it ends.
      this._awaiting.state = 'queued';
      this._awaiting = null;
      this._emitQueue();
      return;
    }
    if (this._awaiting) {
      const entry = this._awaiting;
      this._awaiting = null;
      this.queued = this.queued.filter((e) => e !== entry);
      entry.reject(new RunError(d.code, d.message));
      this._emitQueue();
    }
    this.emit('rejected', { code: d.code, message: d.message });
    this._pump();
  }

  _pump() {
    if (this.activeRunId || this._awaiting) return;
    const entry = this.queued.find((e) => e.state === 'queued');
    if (!entry) return;
    if (this.state !== 'connected') {
      if (this.httpFallback) this._postMessage(entry);
      return;
    }
    const sent = this._send({
      type: 'message',
      // The entry's id goes with every retry, so a resend starts no second run.
      data: { content: entry.content, session_id: this.sessionId, message_id: entry.id },
      timestamp: new Date().toISOString(),
    });
    if (!sent) return;
    entry.state = 'sent';
    this._awaiting = entry;
    this._emitQueue();
  }

  /**
   * The HTTP fallback: one `POST /api/chat` per message, answered with the
   * whole run, which is then told as the socket would have told it. The
   * message keeps its id, so a resend over either path starts no second run.
   */
  async _postMessage(entry) {
    entry.state = 'sent';
    this._awaiting = entry;
    this._emitQueue();
    const requeue = (delayMs) => {
      if (this._awaiting === entry) this._awaiting = null;
      entry.state = 'queued';
      this._emitQueue();
      clearTimeout(this._timers.httpRetry);
      this._timers.httpRetry = setTimeout(() => this._pump(), delayMs);
    };
    let response;
    let body;
    try {
      response = await this.fetch(this.httpUrl, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}),
        },
        body: JSON.stringify({
          content: entry.content,
          session_id: this.sessionId || undefined,
          board_id: this.boardId || undefined,
          message_id: entry.id,
        }),
      });
      body = await response.json().catch(() => ({}));
    } catch {
      return requeue(2000); // the bridge is unreachable over HTTP too
    }
    if (this._awaiting !== entry) return; // the socket came back and took over
    if (response.status === 409) return requeue(1000); // another tab's run holds the session
    if (!body.runId) {
      this._awaiting = null;
      this.queued = this.queued.filter((e) => e !== entry);
      const error = body.error || { code: `http_${response.status}`, message: response.statusText };
      entry.reject(new RunError(error.code, error.message));
      this.emit('rejected', error);
      this._emitQueue();
      return this._pump();
    }
    if (body.sessionId && body.sessionId !== this.sessionId) {
      this.sessionId = body.sessionId;
      this.emit('session', { sessionId: this.sessionId, boardId: this.boardId });
    }
    const runId = body.runId;
    this._onRunStarted(runId);
    this.emit('run', { runId, status: 'processing', message: 'Working…' });
    for (const tool of body.toolExecutions || []) this.emit('tool', { ...tool, runId });
    if (body.error) {
      const { code, message, retryable } = body.error;
      this.emit('run-error', { runId, code, message, retryable: !!retryable });
      this._onRunEnded(runId, (e) => e.reject(new RunError(code, message, runId)));
    } else if (body.status === 'cancelled') {
      this.emit('run', { runId, status: 'cancelled', message: 'Run cancelled' });
      this._onRunEnded(runId, (e) => e.reject(new RunError('cancelled', 'Run cancelled', runId)));
    } else {
      const { content, artifacts = [] } = body.message || {};
      this.emit('message', { runId, content, artifacts });
      this._onRunEnded(runId, (e) => e.resolve({ runId, content, artifacts }));
    }
  }

  _emitQueue() {
    this.emit('queue', this.queued.map(({ id, content, state }) => ({ id, content, state })));
  }

  _startPing() {
    clearInterval(this._timers.ping);
    const probe = () => {
      if (this._pingSentAt && Date.now() - this._lastHeard > this.pingIntervalMs * 3) {
        this._closeSocket();
        this._scheduleReconnect('no pong from the bridge');
        return;
      }
      if (!this._pingSentAt) this._pingSentAt = Date.now();
      this._send({ type: 'ping' });
    };
    this._timers.ping = setInterval(probe, this.pingIntervalMs);
    setTimeout(probe, 50);
  }

  _send(frame) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  _closeSocket() {
    const ws = this._ws;
    this._ws = null;
    this._pingSentAt = 0;
    clearInterval(this._timers.ping);
    if (ws) {
      ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(1000); } catch { /* already closed */ }
    }
  }

  _onClose(ws, code, reason) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._pingSentAt = 0;
    clearInterval(this._timers.ping);
    if (this._stopped) return;
    const fatal = FATAL_CLOSE.get(code);
    if (fatal) {
      // Retrying with the same token cannot help: say why and wait for retry().
      this.activeRunId = null;
      this._setState('disconnected', { reason: reason || fatal, code });
      return;
    }
    this._scheduleReconnect(reason || `closed (${code})`);
  }

  _scheduleReconnect(reason) {
    this.activeRunId = null;
    if (!this.httpFallback && this.fetch && this.httpUrl && (this._blockedAttempts || 0) >= this.fallbackAfter) {
      // The socket cannot get through (a proxy, a firewall): chat over HTTP
      // meanwhile, and keep trying the socket behind it.
      this.httpFallback = true;
      queueMicrotask(() => this._pump());
    }
    if (this.httpFallback) {
      const delayMs = this.backoff.next();
      this._timers.reconnect = setTimeout(() => this._open(), delayMs);
      this.emit('status', { state: 'connected', transport: 'http', reason });
      return;
    }
    if (this.backoff.attempt >= this.maxAttempts) {
      this._setState('disconnected', { reason, attempt: this.backoff.attempt });
      return;
    }
    const delayMs = this.backoff.next();
    this._setState('reconnecting', { attempt: this.backoff.attempt, delayMs, reason });
    this._timers.reconnect = setTimeout(() => this._open(), delayMs);
  }

  _setState(state, info) {
    this.state = state;
    this.emit('status', { state, latencyMs: this.latencyMs, ...info });
  }
}
