// The page's own behaviour in headless Chromium, with ws-gateway and
// agent-bridge replaced by the in-memory mocks of mock-stack.mjs: no Rust
// service needed. `node --test web/tests/` runs these; e2e.test.mjs covers
// the same page against the real services.

import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { launch, serveStatic, screenshot, watchErrors, laneIds } from './support.mjs';
import { MockBoard, MockBridge, seed } from './mock-stack.mjs';

const TIMEOUT = 10000;

/** Waits for a condition on the Node side (the mocks). */
async function until(fn, ms = TIMEOUT) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${fn}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Boardwire page (mocked services)', () => {
  let web;
  let browser;
  let board;
  let bridge;
  let errors;

  beforeEach(async () => {
    web = await serveStatic();
    browser = await launch();
    board = new MockBoard({ wip: { in_progress: 3 } });
    seed(board);
    bridge = new MockBridge(board);
    errors = [];
  });

  afterEach(async () => {
    await browser.close();
    await web.close();
    assert.deepEqual(errors.flat().filter((e) => !/WebSocket/.test(e)), [], 'no page errors');
  });

  async function open(routeOpts = {}, { viewport = { width: 1600, height: 900 }, query = '' } = {}) {
    await board.route(browser.context, routeOpts);
    await bridge.route(browser.context);
    const page = await browser.context.newPage();
    await page.setViewportSize(viewport);
    errors.push(watchErrors(page));
    await page.goto(`${web.url}?board=demo&chat=ws://127.0.0.1:8999/ws/chat${query}`);
    await page.waitForSelector('[data-testid="board-status"][data-state="connected"]', { timeout: TIMEOUT });
    await page.waitForSelector('[data-task-id]');
    return page;
  }

  const taskId = (title) => [...board.tasks.values()].find((t) => t.title === title).id;

  it('draws lanes in order and cards with their badges, then looks right', async () => {
    const page = await open();
    assert.deepEqual(await page.$$eval('[data-lane]', (els) => els.map((e) => e.dataset.lane)), board.lanes.map((l) => l.key));
    const expected = Object.fromEntries(board.lanes.map((l) => [l.key, board.laneTasks(l.key).map((t) => t.id)]));
    assert.deepEqual(await laneIds(page), expected);
    const card = page.locator(`[data-task-id="${taskId('Checkout times out under load')}"]`);
    assert.equal(await card.getAttribute('data-priority'), 'critical');
    assert.match(await card.locator('[data-testid="priority-badge"]').innerText(), /P0/);
    assert.match(await card.locator('[data-testid="kind-badge"]').innerText(), /bug/i);
    assert.match(await page.locator('[data-lane="in_progress"]').innerText(), /WIP 3/);
    await screenshot(page, 'ui-board');
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(page, 'ui-board-dark');
  });

  it('applies live frames in place without redrawing untouched cards', async () => {
    const page = await open();
    await page.evaluate(() => document.querySelectorAll('[data-task-id]').forEach((el) => { el.__marked = true; }));
    const moved = taskId('Dark mode for the board');
    board.move(moved, 'todo', { before: taskId('Swimlanes by assignee') });
    board.update(taskId('Fractional order keys'), { title: 'Fractional order keys (done)' });
    await page.waitForFunction((id) => document.querySelector('[data-lane="todo"] [data-task-id]')?.dataset.taskId === id, moved, { timeout: TIMEOUT });
    await page.waitForFunction(() => /\(done\)/.test(document.querySelector('[data-lane="done"]').textContent));
    const fresh = await page.$$eval('[data-task-id]', (els) => els.filter((el) => !el.__marked).map((el) => el.dataset.taskId));
    assert.deepEqual(fresh, [], 'every card element was kept, the moved and edited ones too');
  });

  it('moves a dragged card at once and snaps it back with a message when the move is refused', async () => {
    const page = await open({ commandDelayMs: 600 });
    const id = taskId('Dark mode for the board');
    await page.locator(`[data-task-id="${id}"]`).dragTo(page.locator('[data-lane="in_progress"]'), { targetPosition: { x: 60, y: 400 } });
    // Optimistic: already there while the gateway thinks.
    assert.ok((await laneIds(page)).in_progress.includes(id), 'the card moved before the answer');
    await page.waitForSelector('[data-testid="toast"]', { timeout: TIMEOUT });
    assert.match(await page.locator('[data-testid="toast"]').innerText(), /WIP limit/);
    assert.ok((await laneIds(page)).backlog.includes(id), 'the card is back where it was');
    assert.ok(!(await laneIds(page)).in_progress.includes(id));
    await screenshot(page, 'ui-move-refused');
  });

  it('moves a focused card with Alt+arrow keys', async () => {
    const page = await open();
    const id = taskId('Fractional order keys');
    await page.focus(`[data-task-id="${id}"]`);
    await page.keyboard.press('Alt+ArrowUp');
    await page.waitForFunction((id) => document.querySelector('[data-lane="done"] [data-task-id]').dataset.taskId === id, id, { timeout: TIMEOUT });
    await page.keyboard.press('Alt+ArrowRight');
    await page.waitForFunction((id) => document.querySelector(`[data-lane="recovery"] [data-task-id="${id}"]`), id, { timeout: TIMEOUT });
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.taskId), id, 'focus stays on the card');
    await until(() => board.tasks.get(id).lane === 'recovery');
    assert.deepEqual(board.laneTasks('done').map((t) => t.title), ['Live board updates over WebSocket']);
  });

  it('never clobbers a form being typed in, and offers the other edit on conflict', async () => {
    const page = await open();
    const id = taskId('Webhook retries with backoff');
    await page.click(`[data-task-id="${id}"]`);
    const title = page.locator('[data-testid="task-editor"] [name="title"]');
    await title.fill('Webhook retries with jittered backoff');
    board.update(id, { title: 'Webhook retries (renamed elsewhere)', description: 'Written in another tab.', assignee: 'lea' });
    const desc = page.locator('[data-testid="task-editor"] [name="description"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="task-editor"] [name="description"]').value === 'Written in another tab.', null, { timeout: TIMEOUT });
    assert.equal(await title.inputValue(), 'Webhook retries with jittered backoff', 'typed text kept');
    assert.equal(await page.locator('[data-testid="task-editor"] [name="assignee"]').inputValue(), 'lea');
    assert.match(await page.locator('.field-title .field-note').innerText(), /renamed elsewhere/);
    assert.equal(await desc.inputValue(), 'Written in another tab.');
    await screenshot(page, 'ui-editor-conflict');
    // A later edit of another field and a move elsewhere do not hide the clash.
    board.update(id, { estimatedHours: 5 });
    board.move(id, 'done', {});
    await page.waitForFunction(() => document.querySelector('[data-testid="task-editor"] [name="estimatedHours"]').value === '5', null, { timeout: TIMEOUT });
    await page.click('[data-testid="task-save"]');
    // The save was based on an older version: the page says so and offers to overwrite.
    const toast = page.locator('[data-testid="toast"]', { hasText: 'changed this task' });
    await toast.waitFor({ timeout: TIMEOUT });
    await toast.locator('button', { hasText: 'Overwrite' }).click();
    await page.waitForFunction((id) => /jittered/.test(document.querySelector(`[data-task-id="${id}"]`).textContent), id, { timeout: TIMEOUT });
    await until(() => board.tasks.get(id).title === 'Webhook retries with jittered backoff');
  });

  it('creates, edits and deletes a task through the dialog', async () => {
    const page = await open();
    await page.click('[data-testid="new-task"]');
    const dlg = page.locator('[data-testid="task-editor"]');
    await dlg.locator('[name="title"]').fill('Quarterly roadmap review');
    await dlg.locator('[name="priority"]').selectOption('high');
    await dlg.locator('[name="kind"]').selectOption('epic');
    await dlg.locator('[name="labels"]').fill('planning, q3');
    await dlg.locator('[name="estimatedHours"]').fill('6');
    await screenshot(page, 'ui-editor-new');
    await dlg.locator('[data-testid="task-save"]').click();
    const card = page.locator('[data-task-id]', { hasText: 'Quarterly roadmap review' });
    await card.waitFor({ timeout: TIMEOUT });
    await page.waitForFunction(() => ![...document.querySelectorAll('[data-task-id]')].some((c) => c.dataset.taskId.startsWith('tmp-')));
    const created = [...board.tasks.values()].find((t) => t.title === 'Quarterly roadmap review');
    assert.deepEqual([created.priority, created.kind, created.labels, created.estimatedHours, created.lane], ['high', 'epic', ['planning', 'q3'], 6, 'backlog']);
    assert.equal(await page.locator('[data-task-id]', { hasText: 'Quarterly roadmap review' }).count(), 1, 'one card, no ghost left');

    await card.click();
    await dlg.locator('[name="assignee"]').fill('maya');
    await dlg.locator('[data-testid="task-save"]').click();
    await page.waitForFunction((id) => document.querySelector(`[data-task-id="${id}"] .avatar`)?.textContent === 'M', created.id, { timeout: TIMEOUT });

    await card.click();
    await dlg.locator('[data-testid="task-delete"]').click();
    await dlg.locator('[data-testid="task-delete"]').click();
    await page.waitForFunction((id) => !document.querySelector(`[data-task-id="${id}"]`), created.id, { timeout: TIMEOUT });
    await until(() => !board.tasks.has(created.id));
  });

  it('shows reconnecting with the attempt, resumes with sinceVersion and loses nothing', async () => {
    const page = await open();
    board.goDown();
    await page.waitForSelector('[data-testid="board-status"][data-state="reconnecting"]', { timeout: TIMEOUT });
    const missed = board.create({ title: 'Added while offline', lane: 'done', priority: 'low' });
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="board-status"]').dataset.attempt) >= 2, null, { timeout: TIMEOUT });
    board.up();
    await page.waitForSelector('[data-testid="board-status"][data-state="connected"]', { timeout: TIMEOUT });
    await page.waitForSelector(`[data-lane="done"] [data-task-id="${missed.id}"]`, { timeout: TIMEOUT });
    const last = board.subscribes.at(-1);
    assert.equal(typeof last.sinceVersion, 'number', 'resubscribed from the version it held');
    const shown = Object.values(await laneIds(page)).flat();
    assert.equal(new Set(shown).size, shown.length);
    assert.equal(shown.length, board.tasks.size);
  });

  it('goes Offline with a Retry button after its attempts, and Retry reconnects', async () => {
    const page = await open({}, { query: '&retries=2' });
    board.goDown();
    await page.waitForSelector('[data-testid="board-status"][data-state="disconnected"]', { timeout: TIMEOUT });
    const retry = page.locator('[data-testid="board-status-retry"]');
    assert.ok(await retry.isVisible());
    await screenshot(page, 'ui-offline');
    board.up();
    await retry.click();
    await page.waitForSelector('[data-testid="board-status"][data-state="connected"]', { timeout: TIMEOUT });
    assert.ok(await retry.isHidden());
  });

  it('falls back to read-only SSE when WebSocket never gets through, and says so', async () => {
    board.down = true; // every WebSocket is refused, as behind a proxy that blocks them
    await board.route(browser.context);
    await bridge.route(browser.context);
    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 1600, height: 900 });
    errors.push(watchErrors(page));
    await page.route('**/events?*', async (route) => {
      const url = new URL(route.request().url());
      const last = (await route.request().allHeaders())['last-event-id'];
      const since = Number(last ?? url.searchParams.get('sinceVersion') ?? -1);
      const frames = since < 0 ? [board.sync()] : board.log.filter((f) => f.version > since);
      const body = `retry: 300\n\n${frames.map((f) => `event: ${f.type}\nid: ${f.version}\ndata: ${JSON.stringify(f)}\n\n`).join('')}`;
      await route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body });
    });
    await page.goto(`${web.url}?board=demo&chat=off`);
    await page.waitForSelector('[data-testid="board-status"][data-transport="sse"]', { timeout: 20000 });
    await page.waitForSelector('[data-task-id]', { timeout: TIMEOUT });
    const added = board.create({ title: 'Arrived over SSE', lane: 'todo' });
    await page.waitForSelector(`[data-lane="todo"] [data-task-id="${added.id}"]`, { timeout: TIMEOUT });
    const shown = Object.values(await laneIds(page)).flat();
    assert.equal(new Set(shown).size, shown.length);
    assert.equal(shown.length, board.tasks.size);
    // Changes cannot go out this way: a drag snaps back and says why.
    const id = taskId('Dark mode for the board');
    await page.locator(`[data-task-id="${id}"]`).dragTo(page.locator('[data-lane="done"]'), { targetPosition: { x: 60, y: 400 } });
    await page.waitForSelector('[data-testid="toast"]', { timeout: TIMEOUT });
    assert.match(await page.locator('[data-testid="toast"]').innerText(), /WebSocket is blocked/);
    assert.ok((await laneIds(page)).backlog.includes(id));
    await page.waitForSelector('[data-testid="board-status"][data-state="connected"]', { timeout: TIMEOUT });
    assert.match(await page.locator('[data-testid="board-status"]').innerText(), /read-only/);
    await screenshot(page, 'ui-sse-read-only');
  });

  it('streams the assistant reply with a live tool card, and the new card lands on the board', async () => {
    bridge.toolDelayMs = 2000;
    const page = await open({}, { query: '' });
    await page.waitForSelector('[data-testid="chat-status"][data-state="connected"]', { timeout: TIMEOUT });
    await page.fill('[data-testid="chat-input"]', 'Create a P1 story for login');
    await page.click('[data-testid="chat-send"]');
    await page.waitForSelector('[data-testid="tool-card"][data-status="running"]', { timeout: TIMEOUT });
    assert.ok(await page.isVisible('[data-testid="chat-cancel"]'), 'cancel is offered while a run is in flight');
    await screenshot(page, 'ui-chat-running');
    await page.waitForSelector('[data-testid="tool-card"][data-status="completed"]', { timeout: TIMEOUT });
    await page.waitForSelector('[data-lane="backlog"] [data-task-id]:has-text("Login")', { timeout: TIMEOUT });
    await page.waitForFunction(() => /Created the story/.test(document.querySelector('[data-testid="assistant-message"]')?.textContent)
      && !document.querySelector('.assistant-text.streaming'), null, { timeout: TIMEOUT });
    assert.ok(await page.isHidden('[data-testid="chat-cancel"]'));
    await screenshot(page, 'ui-chat-done');
  });

  it('queues messages typed while the assistant is offline and sends them on reconnect', async () => {
    const page = await open();
    await page.waitForSelector('[data-testid="chat-status"][data-state="connected"]', { timeout: TIMEOUT });
    bridge.goDown();
    await page.waitForSelector('[data-testid="chat-status"][data-state="reconnecting"]', { timeout: TIMEOUT });
    await page.fill('[data-testid="chat-input"]', 'Create a P2 task for the changelog');
    await page.press('[data-testid="chat-input"]', 'Enter');
    const msg = page.locator('[data-testid="user-message"]').last();
    assert.equal(await msg.getAttribute('data-state'), 'queued');
    assert.match(await msg.innerText(), /Queued/);
    await screenshot(page, 'ui-chat-queued');
    bridge.up();
    await page.waitForSelector('[data-testid="tool-card"][data-status="completed"]', { timeout: 20000 });
    assert.equal(await msg.getAttribute('data-state'), 'sent');
    await page.waitForSelector('[data-task-id]:has-text("The changelog")', { timeout: TIMEOUT });
  });

  it('offers Retry on a run cut short, and retries the same message under its message_id', async () => {
    const page = await open();
    await page.waitForSelector('[data-testid="chat-status"][data-state="connected"]', { timeout: TIMEOUT });
    bridge.interruptNext = true;
    const before = bridge.received.length;
    await page.fill('[data-testid="chat-input"]', 'Create a P2 task for the retry check');
    await page.click('[data-testid="chat-send"]');
    await page.waitForSelector('[data-testid="run-error"]:has-text("interrupted")', { timeout: TIMEOUT });
    await screenshot(page, 'ui-chat-interrupted');
    await page.click('[data-testid="run-retry"]');
    await page.waitForSelector('[data-testid="tool-card"][data-status="completed"]', { timeout: TIMEOUT });
    const sent = bridge.received.slice(before);
    assert.equal(sent.length, 2, JSON.stringify(sent));
    assert.equal(sent[1].message_id, sent[0].message_id, 'the retry names the same message');
    assert.equal(sent[1].content, sent[0].content);
    assert.equal(await page.locator('[data-testid="user-message"]:has-text("retry check")').count(), 1, 'the prompt is not shown twice');
    assert.equal(await page.locator('[data-testid="run-retry"]').count(), 0, 'Retry is gone once used');
  });

  it('cancels a run in flight', async () => {
    bridge.toolDelayMs = 3000;
    const page = await open();
    await page.waitForSelector('[data-testid="chat-status"][data-state="connected"]', { timeout: TIMEOUT });
    await page.fill('[data-testid="chat-input"]', 'Create a P3 bug for flaky tests');
    await page.click('[data-testid="chat-send"]');
    await page.waitForSelector('[data-testid="tool-card"]', { timeout: TIMEOUT });
    await page.click('[data-testid="chat-cancel"]');
    await page.waitForSelector('[data-testid="run-error"]:has-text("Stopped")', { timeout: TIMEOUT });
    assert.ok(await page.isHidden('[data-testid="chat-cancel"]'));
    assert.ok(![...board.tasks.values()].some((t) => /flaky/i.test(t.title)), 'the cancelled run created nothing');
  });

  it('lists boards and offers a create form when no board is given', async () => {
    await board.route(browser.context);
    const page = await browser.context.newPage();
    errors.push(watchErrors(page));
    await page.route('**/api/boards', (route) => route.fulfill({
      json: { boards: [{ id: 'b-1', slug: 'demo', name: 'Demo board' }, { id: 'b-2', slug: 'mobile-launch', name: 'Mobile launch' }] },
    }));
    await page.goto(web.url);
    await page.waitForSelector('[data-testid="board-list"] a');
    assert.deepEqual(await page.$$eval('[data-testid="board-list"] a', (as) => as.map((a) => new URL(a.href).searchParams.get('board'))), ['demo', 'mobile-launch']);
    assert.ok(await page.isVisible('[data-testid="board-create"]'));
    await screenshot(page, 'ui-board-list');
  });
});
