// Drag and drop between and within lanes (HTML5 drag events): a marker
// shows where the card will land; the drop sends both neighbours.

import { h } from './dom.js';

export class DragAndDrop {
  /** @param {import('./board-view.js').BoardView} view */
  constructor(view) {
    this.view = view;
    this.dragId = null;
    this.marker = null;
  }

  /** Makes a card element draggable. */
  card(el) {
    el.addEventListener('dragstart', (ev) => this._start(ev, el));
    el.addEventListener('dragend', () => this._end());
  }

  _start(ev, el) {
    this.dragId = el.dataset.taskId;
    ev.dataTransfer.effectAllowed = 'move';
    ev.dataTransfer.setData('text/plain', this.dragId);
    requestAnimationFrame(() => el.classList.add('dragging'));
    this.view.root.classList.add('is-dragging');
  }

  _end() {
    this.view.cards.get(this.dragId)?.el.classList.remove('dragging');
    this.dragId = null;
    this.view.root.classList.remove('is-dragging');
    this.marker?.remove();
    for (const { el } of this.view.lanes.values()) el.classList.remove('drop-over');
  }

  /** Makes a lane a drop target; `list` holds its cards. */
  lane(laneKey, laneEl, list) {
    laneEl.addEventListener('dragover', (ev) => {
      if (!this.dragId) return;
      ev.preventDefault();
      ev.dataTransfer.dropEffect = 'move';
      for (const { el } of this.view.lanes.values()) el.classList.toggle('drop-over', el === laneEl);
      // A full lane warns before the drop; the gateway still decides.
      laneEl.classList.toggle('drop-own', this.view.cards.get(this.dragId)?.el.closest('[data-lane]') === laneEl);
      const marker = this.marker ||= h('div.drop-marker');
      const below = cardAt(list, ev.clientY, this.dragId);
      if (below) list.insertBefore(marker, below);
      else list.append(marker);
    });
    laneEl.addEventListener('dragleave', (ev) => {
      if (!laneEl.contains(ev.relatedTarget)) laneEl.classList.remove('drop-over');
    });
    laneEl.addEventListener('drop', (ev) => {
      ev.preventDefault();
      const id = this.dragId || ev.dataTransfer.getData('text/plain');
      const marker = this.marker;
      const anchor = {};
      if (marker && marker.parentElement === list) {
        // Both neighbours go out; board-service anchors on `before` when there is one.
        const before = nextCard(marker, id)?.dataset.taskId;
        const after = prevCard(marker, id)?.dataset.taskId;
        if (before) anchor.before = before;
        if (after) anchor.after = after;
      }
      this._end();
      // A refusal is shown by move() itself (toast, snap back).
      if (id) this.view.move(id, laneKey, anchor).catch(() => {});
    });
  }
}

/** The first card element in a lane's list (the drop marker is not one). */
export function firstCard(list) {
  let c = list.firstElementChild;
  while (c && !c.classList.contains('card')) c = c.nextElementSibling;
  return c;
}

export function nextCard(el, skipId) {
  let c = el.nextElementSibling;
  while (c && (!c.classList.contains('card') || c.dataset.taskId === skipId || c.hidden)) c = c.nextElementSibling;
  return c;
}

function prevCard(el, skipId) {
  let c = el.previousElementSibling;
  while (c && (!c.classList.contains('card') || c.dataset.taskId === skipId || c.hidden)) c = c.previousElementSibling;
  return c;
}

/** The first card whose middle is below y (the card to drop before). */
function cardAt(list, y, skipId) {
  for (const c of list.children) {
    if (!c.classList.contains('card') || c.dataset.taskId === skipId || c.hidden) continue;
    const r = c.getBoundingClientRect();
    if (y < r.top + r.height / 2) return c;
  }
  return null;
}
