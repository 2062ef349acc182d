// The task dialog: create, edit, move and delete one task.
//
// Live changes to the open task update the fields the user has not touched;
// a field the user is editing keeps what they typed, and a note under it
// shows the other value with a button to take it. Saving sends only the
// fields the user changed, with the version the form is based on, so a
// conflicting edit elsewhere is caught and offered for overwrite.

import { h, fill, relativeTime } from './dom.js';
import { PRIORITIES, KINDS } from './card.js';
import { explain } from './board-view.js';
import { toast } from './toast.js';

const FIELDS = ['title', 'description', 'priority', 'kind', 'assignee', 'labels', 'estimatedHours'];

export class TaskEditor {
  constructor(view, client) {
    this.view = view;
    this.client = client;
    this.dialog = h('dialog.editor', { 'data-testid': 'task-editor' });
    document.body.append(this.dialog);
    this.dialog.addEventListener('close', () => { this.taskId = null; });
    this.dialog.addEventListener('click', (ev) => { if (ev.target === this.dialog) this.close(); });
    client.on('frame', (frame) => this._onFrame(frame));
    client.on('sync', () => this._onSync());
  }

  get isOpen() { return this.dialog.open; }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  openNew(lane) {
    this.taskId = null;
    this._build({ title: '', description: '', priority: 'medium', kind: 'task', assignee: '', labels: [], estimatedHours: 0, lane: lane || this.client.model.lanes[0]?.key }, true);
  }

  open(taskId) {
    const task = this.client.model.tasks.get(taskId);
    if (!task) return;
    this.taskId = taskId;
    this._build(task, false);
  }

  _build(task, isNew) {
    this.base = { ...task, labels: [...(task.labels || [])] };
    // The version a save may claim: the newest one whose changes the form has
    // taken in. A field that clashes with a remote edit pins it until the user
    // takes theirs, so saving then is refused rather than silently overwriting.
    this.latestVersion = task.version;
    this.baseVersion = task.version;
    this.clashes = new Set();
    this.dirty = new Set();
    const inputs = {};
    const notes = {};
    const field = (name, label, input) => {
      inputs[name] = input;
      notes[name] = h('div.field-note', { hidden: true });
      input.name = name;
      input.addEventListener('input', () => this._markDirty(name));
      return h('label.field', { class: `field-${name}` }, h('span.field-label', label), input, notes[name]);
    };
    const select = (options, value) => h('select', options.map((o) =>
      h('option', { value: o.value, selected: o.value === value }, o.label)));

    const title = h('textarea.title-input', { rows: 2, required: true, maxlength: 500, placeholder: 'Task title' });
    title.value = task.title;
    const desc = h('textarea', { rows: 5, placeholder: 'Add more detail…' });
    desc.value = task.description || '';
    const assignee = h('input', { type: 'text', placeholder: 'Unassigned', value: task.assignee || '' });
    const labels = h('input', { type: 'text', placeholder: 'comma, separated', value: (task.labels || []).join(', ') });
    const est = h('input', { type: 'number', min: '0', step: '0.5', value: task.estimatedHours || '' });
    const lane = select(this.client.model.lanes.map((l) => ({ value: l.key, label: l.name })), task.lane);
    this.inputs = inputs;
    this.notes = notes;
    this.laneInput = lane;
    this.laneDirty = false;
    lane.addEventListener('change', () => { this.laneDirty = true; });
    this.banner = h('div.editor-banner', { hidden: true, 'data-testid': 'editor-banner' });

    const del = !isNew && h('button.btn.btn-danger-ghost', { type: 'button', 'data-testid': 'task-delete', onclick: () => this._delete() }, 'Delete');
    const form = h('form.editor-form', { method: 'dialog' },
      h('header.editor-head',
        h('span.editor-kicker', isNew ? 'New task' : `Task · updated ${relativeTime(task.updatedAt || Date.now())}`),
        h('button.icon-btn', { type: 'button', 'aria-label': 'Close', onclick: () => this.close() }, '×')),
      this.banner,
      field('title', 'Title', title),
      h('div.field-row',
        field('kind', 'Kind', select(KINDS, task.kind)),
        field('priority', 'Priority', select(PRIORITIES.map((p) => ({ value: p.value, label: `${p.short} · ${p.label}` })), task.priority)),
        h('label.field', h('span.field-label', isNew ? 'Lane' : 'Lane (moves the card)'), lane)),
      field('description', 'Description', desc),
      h('div.field-row',
        field('assignee', 'Assignee', assignee),
        field('labels', 'Labels', labels),
        field('estimatedHours', 'Estimate (h)', est)),
      h('footer.editor-foot', del || null, h('span.spacer'),
        h('button.btn.btn-ghost', { type: 'button', onclick: () => this.close() }, 'Cancel'),
        h('button.btn.btn-primary', { type: 'submit', 'data-testid': 'task-save' }, isNew ? 'Create task' : 'Save')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this._save(isNew);
    });
    form.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && (ev.metaKey || ev.ctrlKey)) { ev.preventDefault(); this._save(isNew); }
    });
    fill(this.dialog, form);
    if (!this.dialog.open) this.dialog.showModal();
    title.focus();
    title.setSelectionRange(title.value.length, title.value.length);
  }

  _markDirty(name) {
    this.dirty.add(name);
  }

  _read(name) {
    const v = this.inputs[name].value;
    if (name === 'labels') return v.split(',').map((s) => s.trim()).filter(Boolean);
    if (name === 'estimatedHours') return v === '' ? 0 : Number(v);
    if (name === 'title') return v.trim();
    return v;
  }

  _write(name, value) {
    const input = this.inputs[name];
    input.value = name === 'labels' ? (value || []).join(', ') : name === 'estimatedHours' ? (value || '') : (value ?? '');
    input.classList.remove('live-updated');
    void input.offsetWidth;
    input.classList.add('live-updated');
  }

  /** A change to the open task from anywhere else. */
  _onFrame(frame) {
    if (!this.dialog.open || !this.taskId || frame.data?.id !== this.taskId) return;
    if (frame.type === 'task.deleted') {
      this._showBanner('This task was deleted elsewhere. Saving will not bring it back.', 'warn');
      return;
    }
    const version = frame.data.taskVersion ?? this.latestVersion;
    if (frame.type === 'task.moved') {
      if (!this.laneDirty) this.laneInput.value = frame.data.toLane;
      this.base.lane = frame.data.toLane;
    } else if (frame.type === 'task.updated') {
      for (const [name, value] of Object.entries(frame.data.changes)) {
        if (!(name in this.inputs)) continue;
        if (!this.dirty.has(name)) this._write(name, value);
        else if (!same(this._read(name), value)) {
          this.clashes.add(name);
          this._note(name, value);
        }
        this.base[name] = value;
      }
    } else return;
    this.latestVersion = version;
    if (!this.clashes.size) this.baseVersion = version;
  }

  _onSync() {
    if (this.dialog.open && this.taskId && !this.client.model.tasks.has(this.taskId)) {
      this._showBanner('This task no longer exists.', 'warn');
    }
  }

  _note(name, value) {
    const shown = name === 'labels' ? (value || []).join(', ') : String(value ?? '');
    fill(this.notes[name],
      h('span', 'Changed elsewhere to '), h('q', shown.length > 80 ? `${shown.slice(0, 80)}…` : shown || '(empty)'),
      h('button.link-btn', { type: 'button', onclick: () => {
        this._write(name, value);
        this.dirty.delete(name);
        this.notes[name].hidden = true;
        this.clashes.delete(name);
        if (!this.clashes.size) this.baseVersion = this.latestVersion;
      } }, 'Use theirs'));
    this.notes[name].hidden = false;
  }

  _showBanner(text, kind) {
    fill(this.banner, text);
    this.banner.className = `editor-banner editor-banner-${kind}`;
    this.banner.hidden = false;
  }

  async _save(isNew, force = false) {
    const title = this._read('title');
    if (!title) {
      this.inputs.title.focus();
      this._showBanner('A title is required.', 'warn');
      return;
    }
    if (isNew) {
      const data = { lane: this.laneInput.value, title };
      for (const name of FIELDS) {
        const v = this._read(name);
        if (name !== 'title' && v !== '' && !(Array.isArray(v) && !v.length) && v !== 0) data[name] = v;
      }
      this.close();
      this.view.create(data).catch(() => {});
      return;
    }
    const id = this.taskId;
    const changes = {};
    for (const name of FIELDS) {
      const v = this._read(name);
      if (!same(v, this.base[name])) changes[name] = v;
    }
    const toLane = this.laneInput.value;
    const moving = toLane !== this.base.lane;
    if (!Object.keys(changes).length && !moving) { this.close(); return; }
    const version = force ? undefined : this.baseVersion;
    this.close();
    if (Object.keys(changes).length) {
      try {
        await this.view.update(id, changes, version);
      } catch (err) {
        if (err.code === 'version_conflict') {
          toast('Someone else changed this task while you were editing.', {
            kind: 'warn', timeoutMs: 0,
            action: { label: 'Overwrite with mine', run: () => this.view.update(id, changes).catch((e) => toast(`Couldn't save: ${explain(e)}`, { kind: 'error' })) },
          });
        } else {
          toast(`Couldn't save “${title}”: ${explain(err)}`, { kind: 'error', timeoutMs: 7000 });
        }
        return;
      }
    }
    if (moving) this.view.move(id, toLane, {}).catch(() => {});
  }

  async _delete() {
    const id = this.taskId;
    const task = this.client.model.tasks.get(id);
    if (!task) { this.close(); return; }
    const confirmBtn = this.dialog.querySelector('[data-testid="task-delete"]');
    if (!confirmBtn.classList.contains('confirm')) {
      confirmBtn.classList.add('confirm');
      confirmBtn.textContent = 'Click again to delete';
      return;
    }
    this.close();
    this.view.remove(id, task.version).catch(() => {});
  }
}

function same(a, b) {
  if (Array.isArray(a) || Array.isArray(b)) return JSON.stringify(a || []) === JSON.stringify(b || []);
  return (a ?? '') === (b ?? '');
}
