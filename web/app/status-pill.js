// The connection indicator: a dot, a word, the latency or the attempt
// number, and a retry button once the client has given up.

import { h, fill } from './dom.js';

export function statusPill({ label, testid, onRetry, showLabel = true }) {
  const dot = h('span.dot');
  const text = h('span.status-text', 'Connecting…');
  const detail = h('span.status-detail');
  const retry = h('button.btn.btn-sm.btn-ghost.status-retry', {
    'data-testid': `${testid}-retry`, hidden: true, onclick: onRetry,
  }, 'Retry');
  const el = h('div.status-pill', { 'data-testid': testid, 'data-state': 'connecting', title: label, role: 'status', 'aria-live': 'polite' },
    dot, showLabel ? h('span.status-label', label) : null, text, detail, retry);

  let latency = null;
  let state = 'connecting';
  let transport = 'websocket';
  function update(info = {}) {
    if (info.state) state = info.state;
    if (info.latencyMs != null) latency = info.latencyMs;
    if (info.transport) transport = info.transport;
    el.dataset.transport = transport;
    el.dataset.state = state;
    retry.hidden = state !== 'disconnected';
    switch (state) {
      case 'connected':
        text.textContent = 'Live';
        if (transport === 'http') {
          fill(detail, 'over HTTP');
          el.title = `${label}: WebSocket is blocked on this network, so messages go over HTTP; replies arrive whole`;
          break;
        }
        if (transport === 'sse') {
          fill(detail, 'read-only');
          el.title = `${label}: live updates over SSE; WebSocket is blocked on this network, so changes cannot be sent`;
          break;
        }
        fill(detail, latency != null ? `${latency} ms` : '');
        el.title = `${label}: connected${latency != null ? `, round trip ${latency} ms` : ''}`;
        break;
      case 'reconnecting':
        text.textContent = 'Reconnecting';
        fill(detail, info.attempt ? `attempt ${info.attempt}` : '');
        el.dataset.attempt = info.attempt || '';
        el.title = `${label}: reconnecting${info.reason ? ` (${info.reason})` : ''}`;
        break;
      case 'disconnected':
        text.textContent = 'Offline';
        fill(detail, '');
        el.title = `${label}: disconnected${info.reason ? ` (${info.reason})` : ''}`;
        break;
      default:
        text.textContent = 'Connecting…';
        fill(detail, '');
    }
  }
  return { el, update };
}
