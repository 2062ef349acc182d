// Presence in the browser: two Chromium pages on one board, against a real
// ws-gateway (serving the page) and board-service. Page B sees page A's
// avatar appear, then disappear when A leaves.
//
//   BOARDWIRE_WEB_URL=http://127.0.0.1:4002/ BOARDWIRE_BOARD=<slug> node --test web/tests/presence.test.mjs
//
// ws-gateway/tests/presence_browser.rs runs it with the services started.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, screenshot, watchErrors } from './support.mjs';

const env = process.env;
const WEB = env.BOARDWIRE_WEB_URL;
const BOARD = env.BOARDWIRE_BOARD;
const TIMEOUT = 15000;

describe('presence avatars', { skip: !(WEB && BOARD) && 'BOARDWIRE_WEB_URL and BOARDWIRE_BOARD are not set' }, () => {
  let browser;
  before(async () => { browser = await launch(); });
  after(async () => { await browser?.close(); });

  const open = async (name) => {
    const page = await browser.context.newPage();
    const errors = watchErrors(page);
    const url = new URL(WEB);
    url.searchParams.set('board', BOARD);
    url.searchParams.set('chat', 'off');
    url.searchParams.set('name', name);
    await page.goto(url.toString());
    await page.waitForSelector('[data-testid="board-status"][data-state="connected"]', { timeout: TIMEOUT });
    return { page, errors };
  };
  const avatar = (name) => `[data-testid="presence"] [data-presence-name="${name}"]`;

  it("shows another page's avatar while it is on the board", async () => {
    const b = await open('Bob Builder');
    await b.page.waitForSelector(avatar('Bob Builder'), { timeout: TIMEOUT });
    const a = await open('Alice Liddell');
    const seen = await b.page.waitForSelector(avatar('Alice Liddell'), { timeout: TIMEOUT });
    assert.equal(await seen.textContent(), 'AL');
    assert.equal(await seen.getAttribute('title'), 'Alice Liddell');
    // A sees B too: presence is symmetrical.
    await a.page.waitForSelector(avatar('Bob Builder'), { timeout: TIMEOUT });
    await screenshot(b.page, 'presence-two-pages');

    await a.page.close();
    await b.page.waitForSelector(avatar('Alice Liddell'), { state: 'detached', timeout: TIMEOUT });
    assert.equal(await b.page.locator('[data-testid="presence"] .presence-avatar').count(), 1);
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
    await b.page.close();
  });
});
