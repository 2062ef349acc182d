// Who is on the board: an avatar per person (initials, the name as its
// title), "+N" past the first few, or only "N here" on a board above the
// gateway's member limit. Live from the BoardClient's `presence` events.

import { h, fill, initials, hue } from './dom.js';

/** Avatars shown before the rest fold into "+N". */
const SHOWN = 8;

export function presenceBar(client) {
  const el = h('div.presence', { 'data-testid': 'presence', 'aria-label': 'On this board', role: 'list' });
  client.on('presence', ({ entries, count, listed }) => {
    el.dataset.count = String(count);
    if (!listed) {
      fill(el, h('span.presence-count', { 'data-testid': 'presence-count', title: `${count} people on this board` }, `${count} here`));
      return;
    }
    const people = [...entries].sort((a, b) => a.name.localeCompare(b.name) || a.key.localeCompare(b.key));
    const shown = people.slice(0, SHOWN).map((p) => h('span.avatar.presence-avatar', {
      role: 'listitem',
      title: p.connections > 1 ? `${p.name} (${p.connections} tabs)` : p.name,
      dataset: { presenceKey: p.key, presenceName: p.name },
      style: `--h:${hue(p.name)}`,
    }, initials(p.name)));
    const rest = people.slice(SHOWN);
    fill(el, shown, rest.length ? h('span.avatar.presence-more', {
      role: 'listitem', 'data-testid': 'presence-more', title: rest.map((p) => p.name).join(', '),
    }, `+${rest.length}`) : null);
  });
  return el;
}
