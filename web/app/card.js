// One card's content: kind and priority badges, estimate, title, labels,
// assignee. Redrawn only when its signature changes.

import { h, fill, initials, hue } from './dom.js';

export const PRIORITIES = [
  { value: 'critical', label: 'Critical', short: 'P0' },
  { value: 'high', label: 'High', short: 'P1' },
  { value: 'medium', label: 'Medium', short: 'P2' },
  { value: 'low', label: 'Low', short: 'P3' },
];
export const KINDS = [
  { value: 'story', label: 'Story' },
  { value: 'task', label: 'Task' },
  { value: 'bug', label: 'Bug' },
  { value: 'epic', label: 'Epic' },
];
const PRIORITY = Object.fromEntries(PRIORITIES.map((p) => [p.value, p]));
const KIND = Object.fromEntries(KINDS.map((k) => [k.value, k]));

/** What a card shows, as a string: equal signatures need no redraw. */
export function cardSignature(task, epic) {
  return JSON.stringify([task.title, task.priority, task.kind, task.assignee, task.labels,
    task.estimatedHours, task.description ? 1 : 0, !!task.pending, task.progress, epic?.title]);
}

/** Fills `el` (an `article.card`) for `task`; `epic` is its parent, if
 * the board holds it. Epics show their progress (done / total), their
 * tasks the epic's name. */
export function drawCard(el, task, epic) {
  const progress = task.kind === 'epic' && task.progress;
  const p = PRIORITY[task.priority] || PRIORITY.medium;
  const k = KIND[task.kind] || KIND.task;
  el.dataset.priority = task.priority;
  el.dataset.kind = task.kind;
  el.classList.toggle('card-ghost', !!task.pending && task.id.startsWith('tmp-'));
  el.classList.toggle('card-pending', !!task.pending);
  el.draggable = !task.id.startsWith('tmp-');
  fill(el,
    h('div.card-meta',
      h(`span.badge.kind.kind-${k.value}`, { 'data-testid': 'kind-badge' }, k.label),
      h(`span.badge.prio.prio-${p.value}`, { title: `${p.label} priority`, 'data-testid': 'priority-badge' },
        h('span.prio-bars', h('i'), h('i'), h('i')), p.short),
      progress ? h('span.badge.epic-progress', {
        'data-testid': 'epic-progress', title: `${progress.done} of ${progress.total} tasks done`,
        style: `--p:${progress.total ? Math.round((100 * progress.done) / progress.total) : 0}%`,
      }, `${progress.done}/${progress.total}`) : null,
      task.estimatedHours ? h('span.card-est', { title: 'Estimate' }, `${fmtHours(task.estimatedHours)}`) : null,
      h('span.spacer'),
      task.description ? h('span.card-desc-icon', { title: 'Has a description' }, '≡') : null),
    epic ? h('div.card-epic', { 'data-testid': 'epic-chip', title: `Part of the epic ${epic.title}` }, `↳ ${epic.title}`) : null,
    h('div.card-title', task.title),
    (task.labels?.length || task.assignee) ? h('div.card-foot',
      h('div.card-labels', (task.labels || []).map((l) =>
        h('span.label', { style: `--h:${hue(l)}` }, l))),
      task.assignee ? h('span.avatar', { title: task.assignee, style: `--h:${hue(task.assignee)}` },
        initials(task.assignee)) : null) : null);
}

/** Whether the filter text `q` (lowercase) matches the task. */
export function matches(task, q) {
  return [task.title, task.description, task.assignee, ...(task.labels || []), task.kind, task.priority]
    .some((v) => String(v || '').toLowerCase().includes(q));
}

function fmtHours(h) {
  return Number.isInteger(h) ? `${h}h` : `${h.toFixed(1)}h`;
}
