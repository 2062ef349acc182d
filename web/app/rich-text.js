// Assistant text as DOM nodes: **bold**, `- ` lists, line breaks. Text from
// the wire never becomes HTML.

import { h } from './dom.js';

/** Plain text with **bold**, `- ` lists and line breaks; never HTML from the wire. */
export function renderText(text) {
  const out = [];
  let list = null;
  let first = true;
  for (const line of String(text || '').split('\n')) {
    const item = /^\s*[-*•]\s+(.*)$/.exec(line);
    if (item) {
      if (!list) { list = h('ul.msg-list'); out.push(list); }
      list.append(h('li', inline(item[1])));
      continue;
    }
    if (!first && !list) out.push(h('br'));
    list = null;
    first = false;
    out.push(...inline(line));
  }
  return out;
}

function inline(line) {
  return line.split(/(\*\*[^*]+\*\*)/g).filter(Boolean).map((part) =>
    (part.startsWith('**') && part.endsWith('**') && part.length > 4 ? h('strong', part.slice(2, -2)) : part));
}
