// The Kanban board: lanes as columns, tasks as cards, drag and drop.
//
// What is drawn = the server's model (BoardClient.model) + the page's own
// commands still in flight (the overlay). A command's overlay entry goes
// away when its change frame comes back (matched by commandId), or when it
// is rejected, which snaps the card back. Drawing reuses each card's element
// and only touches what changed, so live frames never flicker the board.

import { h, fill } from './dom.js';
import { newId } from '../lib/shared.js';
import { toast } from './toast.js';
import { cardSignature, drawCard, matches } from './card.js';
import { DragAndDrop, firstCard, nextCard } from './drag.js';

/** How long an acked command's overlay waits for its frame before it is dropped. */
const ACKED_GRACE_MS = 4000;

export class BoardView {
  constructor(root, client, { onOpenTask }) {
    this.root = root;
    this.client = client;
    this.onOpenTask = onOpenTask;
    this.overlay = new Map(); // command id → op
    this.lanes = new Map(); // lane key → {el, list, count, wip}
    this.cards = new Map(); // task id → {el, sig}
    this.filter = '';
    this.drag = new DragAndDrop(this);
    this._scheduled = false;
    this._flash = new Set(); // cards to highlight on the next draw
    this.lanesEl = h('div.lanes', { 'data-testid': 'lanes' });
    fill(root, this.lanesEl);

    client.on('sync', () => this.schedule());
    client.on('frame', (frame) => {
      // Our own command came back as a change: the model now holds it.
      if (frame.commandId) this.overlay.delete(frame.commandId);
      if (frame.type === 'task.created' || frame.type === 'task.moved') this._flash.add(frame.data.id);
      this.schedule();
    });
  }

  schedule() {
    if (this._scheduled) return;
    this._scheduled = true;
    queueMicrotask(() => {
      this._scheduled = false;
      this.render();
    });
  }

  setFilter(text) {
    this.filter = text.trim().toLowerCase();
    this.render();
  }

  /** Shows one sprint's cards: a sprint id, `''` for the backlog (no
   * sprint), or null for every card. */
  setSprintFilter(sprintId) {
    this.sprintFilter = sprintId;
    this.render();
  }

  _shown(task) {
    if (this.filter && !matches(task, this.filter)) return false;
    if (this.sprintFilter == null) return true;
    return (task.sprintId || '') === this.sprintFilter;
  }

  /** Lanes in order, each with its tasks as drawn (overlay applied). */
  view() {
    const model = this.client.model;
    const lanes = new Map(model.lanes.map((l) => [l.key, model.laneTasks(l.key)]));
    const locate = (id) => {
      for (const [key, tasks] of lanes) {
        const i = tasks.findIndex((t) => t.id === id);
        if (i >= 0) return [key, i];
      }
      return null;
    };
    for (const op of this.overlay.values()) {
      if (op.kind === 'create') {
        lanes.get(op.task.lane)?.push({ ...op.task, id: op.tempId, pending: true });
        continue;
      }
      const at = locate(op.taskId);
      if (!at) continue;
      const [key, i] = at;
      if (op.kind === 'update') {
        lanes.get(key)[i] = { ...lanes.get(key)[i], ...op.changes, pending: true };
      } else if (op.kind === 'delete') {
        lanes.get(key).splice(i, 1);
      } else if (op.kind === 'move') {
        const [task] = lanes.get(key).splice(i, 1);
        const target = lanes.get(op.toLane);
        if (!target) { lanes.get(key).splice(i, 0, task); continue; }
        let j = target.length;
        if (op.before) {
          const b = target.findIndex((t) => t.id === op.before);
          if (b >= 0) j = b;
        } else if (op.after) {
          const a = target.findIndex((t) => t.id === op.after);
          if (a >= 0) j = a + 1;
        }
        target.splice(j, 0, { ...task, lane: op.toLane, pending: true });
      }
    }
    return model.lanes.map((lane) => ({ lane, tasks: lanes.get(lane.key) || [] }));
  }

  /** The task as drawn, or undefined. */
  task(id) {
    for (const { tasks } of this.view()) {
      const t = tasks.find((x) => x.id === id);
      if (t) return t;
    }
    return undefined;
  }

  render() {
    const view = this.view();
    // Lanes: reuse, add, drop, reorder.
    const wanted = new Set(view.map((v) => v.lane.key));
    for (const [key, lane] of this.lanes) {
      if (!wanted.has(key)) { lane.el.remove(); this.lanes.delete(key); }
    }
    let cursor = this.lanesEl.firstElementChild;
    for (const { lane } of view) {
      let col = this.lanes.get(lane.key);
      if (!col) { col = this._laneElement(lane); this.lanes.set(lane.key, col); }
      if (col.el !== cursor) this.lanesEl.insertBefore(col.el, cursor);
      else cursor = cursor.nextElementSibling;
    }
    // Cards.
    const seen = new Set();
    for (const { lane, tasks } of view) {
      const col = this.lanes.get(lane.key);
      col.name.textContent = lane.name;
      const count = tasks.filter((t) => !t.pending || t.lane === lane.key).length;
      col.count.textContent = String(count);
      const over = lane.wipLimit != null && count > lane.wipLimit;
      const full = lane.wipLimit != null && count >= lane.wipLimit;
      col.wip.textContent = lane.wipLimit != null ? `WIP ${lane.wipLimit}` : '';
      col.wip.hidden = lane.wipLimit == null;
      col.el.classList.toggle('lane-full', full && !over);
      col.el.classList.toggle('lane-over', over);
      let c = firstCard(col.list);
      for (const task of tasks) {
        seen.add(task.id);
        const card = this._card(task);
        card.el.hidden = !this._shown(task);
        if (card.el !== c) col.list.insertBefore(card.el, c);
        else c = nextCard(c);
      }
      col.empty.hidden = tasks.length > 0;
    }
    for (const [id, card] of this.cards) {
      if (!seen.has(id)) { card.el.remove(); this.cards.delete(id); }
    }
    for (const id of this._flash) {
      const card = this.cards.get(id);
      if (card) {
        card.el.classList.remove('flash');
        void card.el.offsetWidth; // restart the animation
        card.el.classList.add('flash');
      }
    }
    this._flash.clear();
    this.root.dispatchEvent(new CustomEvent('board-rendered', { detail: { view } }));
  }

  _laneElement(lane) {
    const name = h('span.lane-name');
    const count = h('span.lane-count', { 'data-testid': 'lane-count' });
    const wip = h('span.lane-wip');
    const list = h('div.lane-cards', { 'data-testid': 'lane-cards' });
    const empty = h('div.lane-empty', 'No cards');
    const add = h('button.icon-btn.lane-add', {
      title: `Add a card to ${lane.name}`, 'aria-label': `Add a card to ${lane.name}`,
      'data-testid': 'lane-add', onclick: () => this._quickAdd(lane.key, list),
    }, '+');
    const el = h('section.lane', { dataset: { lane: lane.key }, 'aria-label': lane.name },
      h('header.lane-head', h('span.lane-dot'), name, count, wip, h('span.spacer'), add),
      list, empty);
    this.drag.lane(lane.key, el, list);
    return { el, list, name, count, wip, empty };
  }

  _card(task) {
    const epic = task.parentId ? this.client.model.tasks.get(task.parentId) : null;
    const sig = cardSignature(task, epic);
    let card = this.cards.get(task.id);
    if (!card) {
      const el = h('article.card', {
        dataset: { taskId: task.id }, tabindex: '0', draggable: 'true',
        title: 'Click to edit · drag, or Alt+arrow keys, to move',
      });
      el.addEventListener('click', () => !el.classList.contains('card-ghost') && this.onOpenTask(task.id));
      el.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter') this.onOpenTask(task.id);
        const step = ev.altKey && { ArrowLeft: 'left', ArrowRight: 'right', ArrowUp: 'up', ArrowDown: 'down' }[ev.key];
        if (step) {
          ev.preventDefault();
          this.keyMove(task.id, step);
        }
      });
      this.drag.card(el);
      card = { el, sig: '' };
      this.cards.set(task.id, card);
    }
    if (card.sig !== sig) {
      card.sig = sig;
      drawCard(card.el, task, epic);
    }
    return card;
  }

  // ---- commands ----

  /** Moves a card at once and asks the gateway; snaps back if refused. */
  move(taskId, toLane, anchor) {
    const current = this.task(taskId);
    if (!current) return Promise.resolve();
    if (current.lane === toLane && this._samePlace(taskId, toLane, anchor)) return Promise.resolve();
    return this._run({ kind: 'move', taskId, toLane, ...anchor },
      (id) => this.client.moveTask(taskId, toLane, anchor, { id }),
      (err) => `Couldn't move “${current.title}”: ${explain(err)}`);
  }

  /** Alt+arrows on a focused card: to the lane left or right, or one place up or down. */
  keyMove(taskId, step) {
    const view = this.view();
    const li = view.findIndex((v) => v.tasks.some((t) => t.id === taskId));
    if (li < 0) return;
    const tasks = view[li].tasks;
    const i = tasks.findIndex((t) => t.id === taskId);
    let moving;
    if (step === 'left' || step === 'right') {
      const target = view[li + (step === 'left' ? -1 : 1)];
      if (target) moving = this.move(taskId, target.lane.key, {});
    } else if (step === 'up' && i > 0) {
      moving = this.move(taskId, view[li].lane.key, { before: tasks[i - 1].id });
    } else if (step === 'down' && i < tasks.length - 1) {
      moving = this.move(taskId, view[li].lane.key, { after: tasks[i + 1].id });
    }
    // Re-inserting the element drops focus; give it back so keys can repeat.
    this.cards.get(taskId)?.el.focus();
    moving?.catch(() => {});
  }

  update(taskId, changes, expectedVersion) {
    return this._run({ kind: 'update', taskId, changes },
      (id) => this.client.updateTask(taskId, changes, { id, expectedVersion }), null);
  }

  remove(taskId, expectedVersion) {
    const current = this.task(taskId);
    return this._run({ kind: 'delete', taskId },
      (id) => this.client.deleteTask(taskId, { id, expectedVersion }),
      (err) => `Couldn't delete “${current?.title}”: ${explain(err)}`);
  }

  create(data) {
    const tempId = `tmp-${newId()}`;
    const task = { priority: 'medium', kind: 'task', labels: [], assignee: '', description: '', estimatedHours: 0, ...data };
    return this._run({ kind: 'create', tempId, task },
      (id) => this.client.createTask(data, { id }),
      (err) => `Couldn't create “${data.title}”: ${explain(err)}`);
  }

  /** Applies `op` now, sends the command, and settles the overlay. */
  async _run(op, send, describe) {
    const id = newId();
    this.overlay.set(id, op);
    this.render();
    try {
      const result = await send(id);
      // The change frame normally arrives with or before the ack; if it has
      // not yet, keep the overlay a moment so the card does not jump back.
      if (this.overlay.has(id)) setTimeout(() => { if (this.overlay.delete(id)) this.schedule(); }, ACKED_GRACE_MS);
      return result;
    } catch (err) {
      this.overlay.delete(id);
      this.render();
      const card = this.cards.get(op.taskId);
      if (card) {
        card.el.classList.remove('shake');
        void card.el.offsetWidth;
        card.el.classList.add('shake');
      }
      if (describe) toast(describe(err), { kind: 'error', timeoutMs: 7000 });
      throw err;
    }
  }

  _samePlace(taskId, lane, anchor) {
    const tasks = this.view().find((v) => v.lane.key === lane)?.tasks || [];
    const i = tasks.findIndex((t) => t.id === taskId);
    if (anchor.before) return tasks[i + 1]?.id === anchor.before;
    if (anchor.after) return tasks[i - 1]?.id === anchor.after;
    return i === tasks.length - 1;
  }

  _quickAdd(laneKey, list) {
    const existing = list.parentElement.querySelector('.quick-add');
    if (existing) { existing.querySelector('textarea').focus(); return; }
    const input = h('textarea.quick-add-input', {
      rows: 2, placeholder: 'Card title — Enter to add, Esc to close', 'data-testid': 'quick-add-input',
    });
    const form = h('form.quick-add', { 'data-testid': 'quick-add' }, input,
      h('div.quick-add-actions',
        h('button.btn.btn-primary.btn-sm', { type: 'submit' }, 'Add card'),
        h('button.btn.btn-ghost.btn-sm', { type: 'button', onclick: () => form.remove() }, 'Cancel')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const title = input.value.trim();
      if (!title) return;
      this.create({ title, lane: laneKey }).catch(() => {});
      input.value = '';
      input.focus();
    });
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
      if (ev.key === 'Escape') form.remove();
    });
    list.parentElement.insertBefore(form, list.nextSibling);
    input.focus();
  }
}

/** A rejection in words a person can act on. */
export function explain(err) {
  switch (err?.code) {
    case 'failed_precondition': return err.message || 'the board refused the change';
    case 'version_conflict': return 'someone changed it meanwhile';
    case 'not_found': return 'it no longer exists';
    case 'timeout': return 'no answer from the server';
    case 'forbidden': return 'you may not change this board';
    default: return err?.message || 'unknown error';
  }
}
