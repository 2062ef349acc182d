// A card per tool execution: name, status (started → awaiting approval →
// running → completed or failed), a one-line summary, duration, input and
// output, and Approve / Reject while the call waits for a person's yes.

import { h, fill } from './dom.js';

/**
 * Fills `el` for the latest state of a `tool_execution`. `onAnswer(approved)`
 * answers a call that awaits approval.
 */
export function drawToolCard(el, tool, { onAnswer } = {}) {
  el.dataset.tool = tool.tool;
  el.dataset.status = tool.status;
  el._tool = tool;
  const open = el.querySelector('details')?.open;
  fill(el,
    h('div.tool-head',
      h('span.tool-icon'),
      h('span.tool-name', tool.tool),
      h('span.tool-status', { 'data-testid': 'tool-status' }, statusWord(tool.status)),
      h('span.spacer'),
      h('span.tool-dur', { 'data-testid': 'tool-duration' }, duration(tool))),
    tool.progress != null && tool.status !== 'completed'
      ? h('div.tool-progress', h('i', { style: `width:${Math.round(tool.progress * 100)}%` })) : null,
    summary(tool) ? h('div.tool-summary', summary(tool)) : null,
    approvalBlock(tool, onAnswer),
    h('details', { open: !!open },
      h('summary', 'Input and output'),
      h('div.tool-io-label', 'Input'), h('pre.tool-io', { 'data-testid': 'tool-input' }, pretty(tool.input)),
      tool.output != null ? [h('div.tool-io-label', 'Output'), h('pre.tool-io', { 'data-testid': 'tool-output' }, pretty(tool.output))] : null),
    tool.error ? h('div.tool-error', tool.error) : null);
}

/** Keeps the duration of running tools ticking. */
export function tickDurations(root) {
  for (const el of root.querySelectorAll('.tool-card[data-status="running"], .tool-card[data-status="started"]')) {
    const d = el.querySelector('.tool-dur');
    if (d && el._tool) d.textContent = duration(el._tool);
  }
}

function statusWord(s) {
  return { started: 'Started', awaiting_approval: 'Needs approval', running: 'Running', completed: 'Completed', failed: 'Failed' }[s] || s;
}

/** What the call will do, and the buttons (waiting) or the answer (after). */
function approvalBlock(tool, onAnswer) {
  const a = tool.approval;
  if (!a) return null;
  if (a.approved == null) {
    const answer = (approved) => (ev) => {
      for (const b of ev.target.closest('.tool-approval').querySelectorAll('button')) b.disabled = true;
      onAnswer?.(approved);
    };
    return h('div.tool-approval', { 'data-testid': 'tool-approval' },
      h('div.tool-approval-what', a.description),
      h('div.tool-approval-actions',
        h('button.btn.btn-sm.btn-primary', { type: 'button', 'data-testid': 'tool-approve', onclick: answer(true) }, 'Approve'),
        h('button.btn.btn-sm.btn-ghost', { type: 'button', 'data-testid': 'tool-reject', onclick: answer(false) }, 'Reject')));
  }
  const who = a.decidedBy === 'timeout' ? 'No answer in time' : `${a.approved ? 'Approved' : 'Rejected'} by ${a.decidedBy}`;
  return h('div.tool-approval.tool-approval-done', { 'data-testid': 'tool-approval', dataset: { approved: String(a.approved) } },
    h('div.tool-approval-what', a.description),
    h('div.tool-approval-answer', a.reason ? `${who}: ${a.reason}` : who));
}

function duration(tool) {
  const end = tool.endTime || (tool.status === 'completed' || tool.status === 'failed' ? tool.startTime : Date.now());
  if (!tool.startTime) return '';
  const ms = Math.max(0, end - tool.startTime);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** One line that says what the tool did, when its output says it plainly. */
function summary(tool) {
  const o = tool.output;
  const i = tool.input || {};
  if (tool.status === 'failed') return null;
  if (o && typeof o === 'object') {
    const t = o.task || o;
    if (t.title && (t.lane || t.laneKey)) return `${t.title} → ${t.lane || t.laneKey}`;
    if (Array.isArray(o.tasks)) return `${o.tasks.length} task${o.tasks.length === 1 ? '' : 's'}`;
  }
  if (i.title) return i.title;
  return null;
}

function pretty(v) {
  if (v == null) return '';
  if (typeof v === 'string') {
    try { return JSON.stringify(JSON.parse(v), null, 2); } catch { return v; }
  }
  return JSON.stringify(v, null, 2);
}
