// Without `?board=`: the boards the gateway knows, and a form for a new one.
// Uses `GET /api/boards` → `{boards: [{id, slug, name}]}` and
// `POST /api/boards {name}` → the board.

import { h, fill } from './dom.js';
import { config, boardHref } from './config.js';

export async function showBoardList(root) {
  const list = h('ul.board-list', { 'data-testid': 'board-list' }, h('li.board-list-empty', 'Loading boards…'));
  const name = h('input', { type: 'text', name: 'name', placeholder: 'e.g. Mobile app launch', required: true, maxlength: 100, 'data-testid': 'board-name-input' });
  const error = h('div.form-error', { hidden: true });
  const create = h('form.board-create', { 'data-testid': 'board-create' },
    h('label.field', h('span.field-label', 'New board'), name),
    h('button.btn.btn-primary', { type: 'submit' }, 'Create board'), error);
  const openInput = h('input', { type: 'text', placeholder: 'board id or slug', 'aria-label': 'Board id or slug' });
  const open = h('form.board-open', h('span.muted', 'Or open a board by id or slug:'), openInput,
    h('button.btn', { type: 'submit' }, 'Open'));
  open.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (openInput.value.trim()) location.href = boardHref(openInput.value.trim());
  });
  create.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    try {
      const res = await fetch(`${config.apiUrl}/api/boards`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: name.value.trim() }),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(body.message || body.error?.message || `${res.status} ${res.statusText}`);
      const board = body.board || body;
      location.href = boardHref(board.slug || board.id);
    } catch (err) {
      fill(error, `Couldn't create the board: ${err.message}`);
      error.hidden = false;
    }
  });

  fill(root, h('div.home',
    h('header.home-head', h('div.brand.brand-lg', h('span.brand-mark'), 'Boardwire'),
      h('p.muted', 'Live Kanban boards with a project assistant.')),
    h('section.home-card', h('h2', 'Boards'), list, create, open)));

  try {
    const res = await fetch(`${config.apiUrl}/api/boards`, { headers: { accept: 'application/json' } });
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    const body = await res.json();
    const boards = body.boards || body;
    fill(list, boards.length
      ? boards.map((b) => h('li', h('a.board-link', { href: boardHref(b.slug || b.id), 'data-board-id': b.id },
        h('span.board-link-name', b.name), h('span.board-link-slug', b.slug || b.id), h('span.chev', '→'))))
      : h('li.board-list-empty', 'No boards yet. Create the first one below.'));
  } catch (err) {
    fill(list, h('li.board-list-empty', `The board list is not available (${err.message}). `,
      h('a', { href: boardHref('default') }, 'Open the default board'), '.'));
  }
}
