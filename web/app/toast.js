// Short notices at the bottom of the page: a rejected move, a conflict.

import { h } from './dom.js';

let host;

export function toast(message, { kind = 'info', timeoutMs = 5000, action } = {}) {
  if (!host) {
    host = h('div.toasts', { role: 'status', 'aria-live': 'polite', 'data-testid': 'toasts' });
    document.body.append(host);
  }
  const el = h(`div.toast.toast-${kind}`, { 'data-testid': 'toast' },
    h('span.toast-text', message),
    action && h('button.btn.btn-ghost.btn-sm', { onclick: () => { action.run(); el.remove(); } }, action.label),
    h('button.toast-close', { 'aria-label': 'Dismiss', onclick: () => el.remove() }, '×'));
  host.append(el);
  if (timeoutMs) setTimeout(() => el.remove(), timeoutMs);
  return el;
}
