// The PM assistant panel: streamed replies, a live card per tool call,
// queued messages while offline, cancel for the run in flight.

import { h, fill } from './dom.js';
import { statusPill } from './status-pill.js';
import { drawToolCard, tickDurations } from './tool-card.js';
import { renderText } from './rich-text.js';

const SUGGESTIONS = [
  'Create a P1 story for login',
  'What is in progress?',
  'Create a P0 bug for checkout timeouts',
];
const KEEP_TURNS = 40;

export class ChatPanel {
  /**
   * @param {HTMLElement} root
   * @param {import('../lib/chat-client.js').ChatClient} chat
   * @param {{storageKey: string, boardName: () => string}} opts
   */
  constructor(root, chat, { storageKey }) {
    this.root = root;
    this.chat = chat;
    this.storageKey = storageKey;
    this.turns = new Map(); // runId → {el, text, tools: Map(id → el), data}
    this.items = [];
    this.status = statusPill({ label: 'Assistant', testid: 'chat-status', onRetry: () => chat.retry(), showLabel: false });

    this.log = h('div.chat-log', { 'data-testid': 'chat-log', role: 'log', 'aria-live': 'polite' });
    this.empty = h('div.chat-empty',
      h('div.chat-empty-title', 'Ask the project assistant'),
      h('p', 'It reads and changes this board for you. Every tool it runs shows up here as it happens.'),
      h('div.chips', SUGGESTIONS.map((s) => h('button.chip', { type: 'button', onclick: () => this._send(s) }, s))));
    this.input = h('textarea.chat-input', {
      rows: 1, placeholder: 'Message the assistant…', 'data-testid': 'chat-input', 'aria-label': 'Message',
    });
    this.sendBtn = h('button.btn.btn-primary.chat-send', { type: 'submit', 'data-testid': 'chat-send', title: 'Send (Enter)' }, 'Send');
    this.cancelBtn = h('button.btn.btn-ghost.chat-cancel', {
      type: 'button', 'data-testid': 'chat-cancel', hidden: true, onclick: () => chat.cancel(),
    }, h('span.stop-square'), 'Stop');
    this.runLine = h('div.chat-runline', { 'data-testid': 'chat-runline', hidden: true });
    const form = h('form.chat-composer', this.input, h('div.chat-actions',
      h('span.chat-hint', 'Enter to send · Shift+Enter for a new line'), this.cancelBtn, this.sendBtn));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this._send(this.input.value);
    });
    this.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); form.requestSubmit(); }
    });
    this.input.addEventListener('input', () => this._autosize());

    fill(root,
      h('header.chat-head',
        h('div.chat-title', h('span.chat-avatar', '✦'), h('div', h('div.chat-name', 'Project assistant'),
          h('div.chat-sub', 'Works on this board'))),
        this.status.el),
      this.log, this.runLine, form);

    this._restore();
    window.addEventListener('storage', (ev) => {
      if (ev.key === this.storageKey && this._foreignTurn && this._adoptPromptFromOtherTab(this._foreignTurn)) this._foreignTurn = null;
    });
    chat.on('status', (s) => this.status.update(s));
    chat.on('session', ({ sessionId }) => this._save({ sessionId }));
    chat.on('run', (r) => this._onRun(r));
    chat.on('token', (t) => this._onToken(t));
    chat.on('tool', (t) => this._onTool(t));
    chat.on('message', (m) => this._onMessage(m));
    chat.on('run-error', (e) => this._onRunError(e));
    chat.on('rejected', (e) => this._note(`${e.message}`, 'error'));
    chat.on('queue', (q) => this._onQueue(q));
    chat.on('dropped', ({ id, content }) => this._onDropped(id, content));
    setInterval(() => tickDurations(this.log), 250);
  }

  _send(text) {
    const content = text.trim();
    if (!content) return;
    const p = this.chat.send(content);
    const item = { type: 'user', id: p.id, content };
    this.items.push(item);
    this._drawUser(item, 'queued');
    this._onQueue(this.chat.queued.map(({ id, state }) => ({ id, state })));
    this.input.value = '';
    this._autosize();
    this._persist();
  }

  _drawUser(item, state) {
    const el = h('div.msg.msg-user', { 'data-testid': 'user-message', dataset: { queueId: item.id || '' } },
      h('div.bubble', item.content),
      item.elsewhere ? h('div.msg-state', 'from another tab') : null,
      state ? h('div.msg-state', { 'data-testid': 'message-state' }, state === 'queued' ? 'Queued — will send when connected' : 'Sending…') : null);
    el.dataset.state = state || 'sent';
    this._append(el);
    return el;
  }

  _onQueue(queue) {
    const states = new Map(queue.map((q) => [q.id, q.state]));
    for (const el of this.log.querySelectorAll('.msg-user[data-queue-id]')) {
      const id = el.dataset.queueId;
      const note = el.querySelector('.msg-state');
      const state = states.get(id);
      if (!state || state === 'running') {
        el.dataset.state = 'sent';
        note?.remove();
        delete el.dataset.queueId;
      } else if (note) {
        el.dataset.state = state;
        note.textContent = state === 'queued' ? 'Queued — will send when connected' : 'Sending…';
      }
    }
  }

  /** The offline queue was full: its oldest message was dropped. */
  _onDropped(id, content) {
    const el = this.log.querySelector(`.msg-user[data-queue-id="${CSS.escape(id)}"]`);
    if (el) {
      el.dataset.state = 'dropped';
      const note = el.querySelector('.msg-state');
      if (note) note.textContent = 'Not sent — the offline queue was full';
      delete el.dataset.queueId;
    }
    this.items = this.items.filter((i) => !(i.type === 'user' && i.id === id));
    this._note(`Dropped a queued message (the queue holds ${this.chat.maxQueued}): “${content.slice(0, 60)}”`, 'error');
    this._persist();
  }

  _turn(runId) {
    let turn = this.turns.get(runId);
    if (turn) return turn;
    const foreign = runId && !this.chat.ownsRun(runId);
    const adopted = foreign && this._adoptPromptFromOtherTab();
    const data = { type: 'assistant', runId, text: '', tools: {}, status: 'processing' };
    this.items.push(data);
    turn = this._drawTurn(data);
    // The other tab's write may reach this tab's storage a moment later.
    if (foreign && !adopted) this._foreignTurn = turn;
    return turn;
  }

  /**
   * A run another tab started: show its prompt, which that tab stored on
   * send, before `turn` (or at the end). Returns whether it found one.
   */
  _adoptPromptFromOtherTab(turn = null) {
    const known = new Set(this.items.filter((i) => i.type === 'user').map((i) => i.id));
    const item = (this._load().items || []).filter((i) => i.type === 'user' && i.id && !known.has(i.id)).at(-1);
    if (!item) return false;
    const copy = { ...item, elsewhere: true };
    const el = this._drawUser(copy, null);
    if (turn) {
      this.items.splice(this.items.indexOf(turn.data), 0, copy);
      this.log.insertBefore(el, turn.el);
    } else this.items.push(copy);
    return true;
  }

  _drawTurn(data) {
    const tools = h('div.tools');
    const text = h('div.bubble.assistant-text', { 'data-testid': 'assistant-message' });
    const el = h('div.msg.msg-assistant', { 'data-run-id': data.runId || '' }, tools, text);
    const turn = { el, tools, text, toolEls: new Map(), data };
    this.turns.set(data.runId, turn);
    this._append(el);
    this._setText(turn, data.text, data.status === 'processing');
    for (const tool of Object.values(data.tools)) this._drawTool(turn, tool);
    if (data.error) this._turnError(turn, data.error);
    return turn;
  }

  _setText(turn, text, streaming) {
    turn.text.hidden = !text && !streaming;
    fill(turn.text, ...renderText(text));
    turn.text.classList.toggle('streaming', !!streaming);
  }

  _onRun({ runId, status, message }) {
    const running = status === 'processing';
    this.cancelBtn.hidden = !running;
    this.runLine.hidden = !running;
    if (running) {
      fill(this.runLine, h('span.spinner'), message || 'Working…');
      const turn = this._turn(runId);
      this._setText(turn, turn.data.text, true);
    }
    if (status === 'cancelled') {
      const turn = this.turns.get(runId);
      if (turn) {
        turn.data.status = 'cancelled';
        this._setText(turn, turn.data.text, false);
        this._turnError(turn, { code: 'cancelled', message: 'Stopped.' });
      }
      this._persist();
    }
  }

  _onToken({ runId, token }) {
    const turn = this._turn(runId);
    turn.data.text += token;
    this._setText(turn, turn.data.text, true);
    this._stick();
  }

  _onTool(tool) {
    const turn = this._turn(tool.runId);
    turn.data.tools[tool.id] = tool;
    this._drawTool(turn, tool);
    this._stick();
    if (tool.status === 'completed' || tool.status === 'failed') this._persist();
  }

  _drawTool(turn, tool) {
    let el = turn.toolEls.get(tool.id);
    if (!el) {
      el = h('div.tool-card', { 'data-testid': 'tool-card', dataset: { toolId: tool.id } });
      turn.toolEls.set(tool.id, el);
      turn.tools.append(el);
    }
    drawToolCard(el, tool, { onAnswer: (approved) => this.chat.approve(tool.id, approved) });
  }

  _onMessage({ runId, content }) {
    const turn = this._turn(runId);
    turn.data.text = content || turn.data.text;
    turn.data.status = 'done';
    this._setText(turn, turn.data.text, false);
    this._endRun();
  }

  _onRunError({ runId, code, message, retryable }) {
    const turn = this._turn(runId);
    turn.data.status = 'error';
    turn.data.error = { code, message, retryable };
    this._setText(turn, turn.data.text, false);
    this._turnError(turn, turn.data.error);
    this._endRun();
  }

  _turnError(turn, { code, message, retryable }) {
    turn.el.querySelector('.turn-error')?.remove();
    const prompt = retryable ? this._promptOf(turn.data) : null;
    const retry = prompt && h('button.btn.btn-sm.btn-ghost.turn-retry', {
      type: 'button', 'data-testid': 'run-retry', onclick: () => this._retry(turn, prompt),
    }, 'Retry');
    turn.el.append(h(`div.turn-error${code === 'cancelled' ? '.turn-cancelled' : ''}`, { 'data-testid': 'run-error' },
      h('span', message || code), retry));
  }

  /** The user message a turn answers: the last one before it. */
  _promptOf(turnData) {
    const i = this.items.indexOf(turnData);
    return this.items.slice(0, i < 0 ? this.items.length : i).reverse().find((it) => it.type === 'user' && it.id) || null;
  }

  /**
   * Sends the turn's message again under its own id: the bridge runs it
   * again without repeating work the cut-short run already did.
   */
  _retry(turn, prompt) {
    turn.el.querySelector('.turn-retry')?.remove();
    turn.data.error = { ...turn.data.error, retryable: false };
    this.chat.send(prompt.content, { messageId: prompt.id });
    this._persist();
  }

  _endRun() {
    this.cancelBtn.hidden = true;
    this.runLine.hidden = true;
    this._persist();
    this._stick();
  }

  _note(text, kind) {
    this._append(h(`div.chat-note.chat-note-${kind}`, text));
  }

  _append(el) {
    this.empty.remove();
    this.log.append(el);
    this._stick(true);
  }

  _stick(force) {
    const nearBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 120;
    if (force || nearBottom) this.log.scrollTop = this.log.scrollHeight;
  }

  _autosize() {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, 160)}px`;
  }

  // ---- persistence: the transcript survives a reload ----

  _load() {
    try { return JSON.parse(localStorage.getItem(this.storageKey) || '{}'); } catch { return {}; }
  }

  _save(patch) {
    try {
      localStorage.setItem(this.storageKey, JSON.stringify({ ...this._load(), ...patch }));
    } catch { /* storage full or disabled */ }
  }

  _persist() {
    let turns = 0;
    const kept = [];
    for (let i = this.items.length - 1; i >= 0 && turns < KEEP_TURNS; i--) {
      kept.unshift(this.items[i]);
      if (this.items[i].type === 'user') turns++;
    }
    this._save({ items: kept, lastSeq: this.chat.lastSeq });
  }

  _restore() {
    const saved = this._load();
    this.items = saved.items || [];
    if (!this.items.length) { this.log.append(this.empty); return; }
    for (const item of this.items) {
      if (item.type === 'user') this._drawUser(item, null);
      else {
        if (item.status === 'processing') item.status = 'interrupted';
        this._drawTurn(item);
      }
    }
  }
}
