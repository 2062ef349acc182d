// The sprint picker in the board's header: shows every card, the backlog
// (cards in no sprint) or one sprint's cards, and starts or completes the
// chosen sprint. The list comes from the gateway
// (`GET /api/boards/{board}/sprints`) and is read again on every sprint
// frame, so every page follows a start or completion made anywhere.

import { h, fill } from './dom.js';
import { config } from './config.js';
import { toast } from './toast.js';

const SPRINT_FRAMES = ['sprint.created', 'sprint.started', 'sprint.completed'];

function headers() {
  const out = { accept: 'application/json' };
  if (config.token) out.authorization = `Bearer ${config.token}`;
  return out;
}

export function sprintBar(client, view, board) {
  const picker = h('select.sprint-picker', { 'data-testid': 'sprint-picker', 'aria-label': 'Sprint' });
  const action = h('button.btn.btn-ghost', { type: 'button', 'data-testid': 'sprint-action', hidden: true });
  const base = `${config.apiUrl}/api/boards/${encodeURIComponent(board)}/sprints`;
  let sprints = [];
  let loading = null;

  async function load() {
    // One read at a time; a frame during it asks for one more.
    if (loading) { loading.again = true; return; }
    loading = { again: false };
    try {
      const res = await fetch(base, { headers: headers() });
      if (res.ok) sprints = (await res.json()).sprints || [];
    } catch { /* offline: keep the list we have */ }
    const again = loading.again;
    loading = null;
    render();
    if (again) load();
  }

  function option(value, label) {
    return h('option', { value }, label);
  }

  function render() {
    const current = picker.value || 'all';
    fill(picker, option('all', 'All cards'), option('backlog', 'Backlog'),
      ...sprints.map((s) => option(s.id, `${s.name} · ${s.state}`)));
    picker.value = [...picker.options].some((o) => o.value === current) ? current : 'all';
    update();
  }

  function update() {
    const id = picker.value;
    view.setSprintFilter(id === 'all' ? null : id === 'backlog' ? '' : id);
    const sprint = sprints.find((s) => s.id === id);
    const verb = sprint?.state === 'planned' ? 'start' : sprint?.state === 'active' ? 'complete' : null;
    action.hidden = !verb;
    if (verb) {
      action.dataset.action = verb;
      action.textContent = verb === 'start' ? 'Start sprint' : 'Complete sprint';
    }
  }

  picker.addEventListener('change', update);
  action.addEventListener('click', async () => {
    const verb = action.dataset.action;
    action.disabled = true;
    try {
      const res = await fetch(`${base}/${encodeURIComponent(picker.value)}/${verb}`, { method: 'POST', headers: headers() });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        toast(body.message || `Could not ${verb} the sprint (${res.status})`, { kind: 'error', timeoutMs: 7000 });
      }
    } catch (err) {
      toast(`Could not ${verb} the sprint: ${err.message}`, { kind: 'error', timeoutMs: 7000 });
    } finally {
      action.disabled = false;
      load();
    }
  });
  for (const type of SPRINT_FRAMES) client.on(type, load);
  client.on('sync', load);
  return h('span.sprint-bar', { 'data-testid': 'sprint-bar' }, picker, action);
}
