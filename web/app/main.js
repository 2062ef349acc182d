// The page: a board with the assistant beside it, or the board list.

import { BoardClient } from '../lib/board-client.js';
import { ChatClient } from '../lib/chat-client.js';
import { h, fill } from './dom.js';
import { config, boardHref } from './config.js';
import { BoardView } from './board-view.js';
import { TaskEditor } from './task-editor.js';
import { ChatPanel } from './chat-panel.js';
import { statusPill } from './status-pill.js';
import { presenceBar } from './presence-bar.js';
import { sprintBar } from './sprint-bar.js';
import { showBoardList } from './board-list.js';

const app = document.getElementById('app');

if (!config.board) {
  document.body.classList.add('page-home');
  showBoardList(app);
} else {
  openBoard(config.board);
}

function openBoard(board) {
  document.body.classList.add('page-board');
  const client = new BoardClient({ url: config.boardWsUrl, eventsUrl: config.eventsUrl, board, token: config.token, name: config.name, presence: true, maxAttempts: config.maxAttempts });
  const presence = presenceBar(client);
  const status = statusPill({ label: 'Board', testid: 'board-status', onRetry: () => client.retry() });
  const title = h('h1.board-title', { 'data-testid': 'board-title' }, board);
  const meta = h('span.board-meta', { 'data-testid': 'board-meta' });
  const filter = h('input.filter', { type: 'search', placeholder: 'Filter cards', 'aria-label': 'Filter cards', 'data-testid': 'filter' });
  const chatToggle = h('button.btn.btn-ghost', { type: 'button', 'data-testid': 'chat-toggle', 'aria-pressed': 'true' }, 'Assistant');
  const newTask = h('button.btn.btn-primary', { type: 'button', 'data-testid': 'new-task' }, h('span.plus', '+'), 'New task');
  const boardEl = h('section.board', { 'data-testid': 'board', 'aria-busy': 'true' },
    h('div.board-loading', h('span.spinner'), 'Loading board…'));
  const chatEl = h('aside.chat', { 'data-testid': 'chat-panel' });

  const view = new BoardView(boardEl, client, { onOpenTask: (id) => editor.open(id) });
  const sprints = sprintBar(client, view, board);
  fill(app,
    h('header.topbar',
      h('a.brand', { href: boardHref(''), title: 'All boards' }, h('span.brand-mark'), 'Boardwire'),
      h('span.crumb-sep', '/'), title, meta,
      h('span.spacer'), presence, sprints, filter, status.el, config.chatEnabled ? chatToggle : null, newTask),
    h('main.workspace', boardEl, config.chatEnabled ? chatEl : null));

  const editor = new TaskEditor(view, client);
  let loaded = false;
  client.on('status', (s) => {
    status.update(s);
    boardEl.classList.toggle('is-stale', s.state === 'disconnected');
  });
  client.on('latency', (ms) => status.update({ latencyMs: ms }));
  client.on('sync', ({ model }) => {
    loaded = true;
    boardEl.removeAttribute('aria-busy');
    title.textContent = model.board?.name || board;
    document.title = `${model.board?.name || board} · Boardwire`;
    updateMeta();
  });
  client.on('frame', updateMeta);
  client.on('error', (err) => {
    if (!loaded) fill(boardEl, h('div.board-error', h('strong', 'This board could not be opened.'), h('p', err.message),
      h('a.btn', { href: boardHref('') }, 'All boards')));
  });
  function updateMeta() {
    const n = client.model.tasks.size;
    meta.textContent = `${n} card${n === 1 ? '' : 's'}`;
  }
  filter.addEventListener('input', () => view.setFilter(filter.value));
  newTask.addEventListener('click', () => editor.openNew());
  document.addEventListener('keydown', (ev) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement?.tagName);
    if (ev.key === 'n' && !typing && !editor.isOpen && !ev.metaKey && !ev.ctrlKey) { ev.preventDefault(); editor.openNew(); }
    if (ev.key === '/' && !typing) { ev.preventDefault(); filter.focus(); }
  });
  client.connect();
  window.boardwire = { client, view };
  // Back online or back to the tab after a long sleep: don't wait out the backoff.
  const wake = () => { if (client.state === 'reconnecting' || client.state === 'disconnected') client.retry(); };
  window.addEventListener('online', wake);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) wake(); });

  if (config.chatEnabled) {
    const key = `boardwire.chat.${board}`;
    let saved = {};
    try { saved = JSON.parse(localStorage.getItem(key) || '{}'); } catch { /* ignore */ }
    const chat = new ChatClient({ url: config.chatUrl, boardId: board, sessionId: saved.sessionId, lastSeq: saved.lastSeq, token: config.token, maxAttempts: config.maxAttempts });
    new ChatPanel(chatEl, chat, { storageKey: key });
    if (window.matchMedia('(max-width: 760px)').matches) {
      // On a phone the assistant opens over the board instead of beside it.
      document.body.classList.add('chat-hidden');
      chatToggle.setAttribute('aria-pressed', 'false');
    }
    chatToggle.addEventListener('click', () => {
      const hidden = document.body.classList.toggle('chat-hidden');
      chatToggle.setAttribute('aria-pressed', String(!hidden));
    });
    chat.connect();
    window.boardwire.chat = chat;
    const wakeChat = () => { if (chat.state === 'reconnecting' || chat.state === 'disconnected') chat.retry(); };
    window.addEventListener('online', wakeChat);
    document.addEventListener('visibilitychange', () => { if (!document.hidden) wakeChat(); });
  }
}
