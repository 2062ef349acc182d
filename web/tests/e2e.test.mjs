// End-to-end: the page in headless Chromium against real board-service,
// ws-gateway and agent-bridge (issue 5).
//
// Run directly so stdin and stdout reach the harness:
//   BOARDWIRE_GRPC_ADDR=127.0.0.1:50051 BOARDWIRE_WEB_URL=http://127.0.0.1:4002/ \
//   BOARDWIRE_GATEWAY_CONTROL=stdio node web/tests/e2e.test.mjs
//
// Environment:
//   BOARDWIRE_GRPC_ADDR   board-service gRPC address (required; without it the suite is skipped)
//   BOARDWIRE_WEB_URL     where the page is served (ws-gateway's `/`); unset: the test serves
//                         web/ itself and then BOARDWIRE_WS_URL is required
//   BOARDWIRE_WS_URL      board WebSocket (default: ws://<web host>/ws)
//   BOARDWIRE_CHAT_URL    agent-bridge chat WebSocket (default: ws://<web hostname>:8001/ws/chat)
//   BOARDWIRE_ARTIFACTS   screenshot folder (default: <repo>/test-artifacts)
//   CHROMIUM_PATH         default /usr/bin/chromium
// Gateway restart (the last test), one of:
//   BOARDWIRE_GATEWAY_CONTROL=stdio  the test prints a line `STOP_GATEWAY` and waits for a line
//                         `GATEWAY_STOPPED` on stdin, later prints `START_GATEWAY` and waits for
//                         `GATEWAY_STARTED`. The gateway must come back on the same address.
//   BOARDWIRE_STOP_GATEWAY_CMD / BOARDWIRE_START_GATEWAY_CMD  shell commands run to completion.
//   Neither: that test is skipped.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import readline from 'node:readline';
import { launch, serveStatic, screenshot, watchErrors, laneIds } from './support.mjs';
import { boardService } from './grpc.mjs';

const env = process.env;
const GRPC = env.BOARDWIRE_GRPC_ADDR;
const TIMEOUT = 15000;

describe('Boardwire in the browser against the real stack', { skip: !GRPC && 'BOARDWIRE_GRPC_ADDR is not set' }, () => {
  let browser;
  let staticServer;
  let bs;
  let board;
  let pageUrl;
  const pages = [];
  const errors = [];
  const seeded = {};

  before(async () => {
    let webUrl = env.BOARDWIRE_WEB_URL;
    if (!webUrl) {
      assert.ok(env.BOARDWIRE_WS_URL, 'BOARDWIRE_WS_URL is required when BOARDWIRE_WEB_URL is not set');
      staticServer = await serveStatic();
      webUrl = staticServer.url;
    }
    bs = boardService(GRPC);
    const stamp = Date.now().toString(36);
    board = await bs.createBoard(`Release train ${stamp}`, `e2e-${stamp}`);
    for (const [key, lane, title, priority, kind] of [
      ['a', 'backlog', 'Invite teammates by email', 'PRIORITY_MEDIUM', 'TASK_KIND_STORY'],
      ['b', 'backlog', 'Password reset link expires too early', 'PRIORITY_HIGH', 'TASK_KIND_BUG'],
      ['c', 'todo', 'Board activity feed', 'PRIORITY_LOW', 'TASK_KIND_TASK'],
      ['d', 'in_progress', 'Migrate sessions to PostgreSQL', 'PRIORITY_CRITICAL', 'TASK_KIND_TASK'],
    ]) {
      seeded[key] = await bs.createTask(board.id, lane, title, { priority, kind, assignee: 'e2e', labels: ['e2e'] });
    }
    const q = new URLSearchParams({ board: board.slug });
    if (env.BOARDWIRE_WS_URL) q.set('ws', env.BOARDWIRE_WS_URL);
    if (env.BOARDWIRE_CHAT_URL) q.set('chat', env.BOARDWIRE_CHAT_URL);
    pageUrl = new URL(`?${q}`, webUrl).toString();

    browser = await launch();
    for (let i = 0; i < 2; i++) {
      const page = await browser.context.newPage();
      await page.setViewportSize({ width: 1600, height: 900 });
      errors.push(watchErrors(page));
      await page.goto(pageUrl);
      pages.push(page);
    }
    for (const page of pages) {
      await page.waitForSelector('[data-testid="board-status"][data-state="connected"]', { timeout: TIMEOUT });
      await page.waitForSelector(`[data-task-id="${seeded.d.id}"]`, { timeout: TIMEOUT });
    }
  });

  after(async () => {
    await browser?.close();
    await staticServer?.close();
    bs?.close();
    rl?.close();
  });

  it('shows the board in lane order with its cards', async () => {
    for (const page of pages) {
      const lanes = await page.$$eval('[data-lane]', (els) => els.map((e) => e.dataset.lane));
      assert.deepEqual(lanes, board.lanes.map((l) => l.key));
      assert.deepEqual(await laneIds(page), await serverLanes());
    }
  });

  it('moves a card dragged in one page in the other page too', async () => {
    const [one, two] = pages;
    const card = one.locator(`[data-task-id="${seeded.a.id}"]`);
    await card.dragTo(one.locator('[data-lane="in_progress"]'), { targetPosition: { x: 60, y: 300 } });
    // Optimistic in the page that dragged it, live in the other.
    await expectLane(one, 'in_progress', [seeded.d.id, seeded.a.id]);
    await expectLane(two, 'in_progress', [seeded.d.id, seeded.a.id]);
    // And a drop onto the top of a lane sends the `before` anchor.
    const c = one.locator(`[data-task-id="${seeded.c.id}"]`);
    await c.dragTo(one.locator(`[data-task-id="${seeded.d.id}"]`), { targetPosition: { x: 40, y: 4 } });
    await expectLane(two, 'in_progress', [seeded.c.id, seeded.d.id, seeded.a.id]);
    await expectLane(one, 'in_progress', [seeded.c.id, seeded.d.id, seeded.a.id]);
    assert.deepEqual((await serverLanes()).in_progress, [seeded.c.id, seeded.d.id, seeded.a.id]);
  });

  it('shows a card created through gRPC in both pages', async () => {
    const task = await bs.createTask(board.id, 'todo', 'Created over gRPC', { priority: 'PRIORITY_HIGH', kind: 'TASK_KIND_BUG' });
    for (const page of pages) {
      const card = page.locator(`[data-lane="todo"] [data-task-id="${task.id}"]`);
      await card.waitFor({ timeout: TIMEOUT });
      assert.equal(await card.getAttribute('data-priority'), 'high');
      assert.equal(await card.getAttribute('data-kind'), 'bug');
      assert.match(await card.innerText(), /Created over gRPC/);
    }
    await screenshot(pages[0], 'e2e-board');
  });

  it('snaps a card back with a message when board-service refuses the move (WIP limit)', async () => {
    const [one, two] = pages;
    const recovery = board.lanes.find((l) => l.key === 'recovery');
    await bs.updateLane(recovery.id, { wipLimit: 1 });
    const blocker = await bs.createTask(board.id, 'recovery', 'Fills the recovery lane');
    await one.waitForSelector(`[data-lane="recovery"] [data-task-id="${blocker.id}"]`, { timeout: TIMEOUT });
    const id = seeded.b.id;
    await one.locator(`[data-task-id="${id}"]`).dragTo(one.locator('[data-lane="recovery"]'), { targetPosition: { x: 60, y: 300 } });
    const toast = one.locator('[data-testid="toast"]').last();
    await toast.waitFor({ timeout: TIMEOUT });
    assert.match(await toast.innerText(), /Couldn't move/);
    await expectLane(one, 'backlog', [id]);
    assert.equal((await serverLanes()).backlog.includes(id), true);
    assert.ok(!(await laneIds(two)).recovery.includes(id), 'the other page never saw it move');
    await screenshot(one, 'e2e-move-refused');
  });

  it('runs "Create a P1 story for login" in the chat with tool progress, and the card appears', async () => {
    const [one, two] = pages;
    await one.waitForSelector('[data-testid="chat-status"][data-state="connected"]', { timeout: TIMEOUT });
    // Every status each tool card went through, as the page drew it.
    await one.evaluate(() => {
      window.toolStatuses = [];
      new MutationObserver(() => {
        for (const el of document.querySelectorAll('[data-testid="tool-card"]')) {
          const last = window.toolStatuses.filter((s) => s.id === el.dataset.toolId).at(-1);
          if (last?.status !== el.dataset.status) window.toolStatuses.push({ id: el.dataset.toolId, tool: el.dataset.tool, status: el.dataset.status });
        }
      }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
    });
    const before = new Set(Object.values(await laneIds(one)).flat());
    await one.fill('[data-testid="chat-input"]', 'Create a P1 story for login');
    await one.click('[data-testid="chat-send"]');
    await one.waitForSelector('[data-testid="tool-card"][data-status="completed"]', { timeout: TIMEOUT });
    await one.waitForFunction(() => !document.querySelector('.assistant-text.streaming') && document.querySelector('[data-testid="assistant-message"]')?.textContent.trim(), null, { timeout: TIMEOUT });
    const statuses = await one.evaluate(() => window.toolStatuses);
    const create = statuses.filter((s) => s.tool === statuses.find((x) => x.status === 'completed').tool);
    assert.ok(create.length >= 2, `tool progress was shown before completion: ${JSON.stringify(statuses)}`);
    assert.equal(create.at(-1).status, 'completed');
    const card = await one.locator('[data-testid="tool-card"][data-status="completed"]').first();
    assert.ok((await card.locator('[data-testid="tool-duration"]').innerText()).match(/\d+(\.\d+)? (ms|s)/));

    for (const page of [one, two]) {
      const found = await page.waitForFunction((known) => {
        const card = [...document.querySelectorAll('[data-task-id]')].find((c) => !known.includes(c.dataset.taskId) && /login/i.test(c.textContent));
        return card && { id: card.dataset.taskId, priority: card.dataset.priority, kind: card.dataset.kind, lane: card.closest('[data-lane]').dataset.lane };
      }, [...before], { timeout: TIMEOUT });
      const info = await found.jsonValue();
      assert.deepEqual([info.priority, info.kind], ['high', 'story']);
    }
    // The other tab follows the same session: it shows the prompt and the run too.
    await two.waitForSelector('[data-testid="tool-card"][data-status="completed"]', { timeout: TIMEOUT });
    assert.match(await two.locator('[data-testid="user-message"]').last().innerText(), /Create a P1 story for login/);
    await one.locator('[data-testid="tool-card"] details summary').first().click();
    await screenshot(one, 'e2e-chat');
  });

  it('asks before deleting: Approve in the other page runs the delete, and both pages see the answer', async () => {
    const [one, two] = pages;
    await one.waitForSelector('[data-testid="chat-status"][data-state="connected"]', { timeout: TIMEOUT });
    await one.fill('[data-testid="chat-input"]', `delete ${seeded.c.title}`);
    await one.click('[data-testid="chat-send"]');
    for (const page of [one, two]) {
      await page.waitForSelector('[data-testid="tool-card"][data-status="awaiting_approval"] [data-testid="tool-approve"]', { timeout: TIMEOUT });
    }
    assert.match(await one.locator('[data-testid="tool-approval"]').last().innerText(), new RegExp(seeded.c.title));
    assert.equal(await one.locator(`[data-task-id="${seeded.c.id}"]`).count(), 1, 'nothing is deleted before the yes');
    await screenshot(one, 'e2e-chat-approval');
    await two.locator('[data-testid="tool-approve"]').last().click();
    for (const page of [one, two]) {
      await page.waitForSelector('[data-testid="tool-card"][data-status="completed"] [data-testid="tool-approval"][data-approved="true"]', { timeout: TIMEOUT });
      await page.waitForFunction((id) => !document.querySelector(`[data-task-id="${id}"]`), seeded.c.id, { timeout: TIMEOUT });
    }
    assert.match(await one.locator('[data-testid="tool-approval"]').last().innerText(), /Approved by/);
  });

  it('chats over HTTP when the WebSocket is blocked, with the tool card shown', async () => {
    const page = await browser.context.newPage();
    errors.push(watchErrors(page));
    // Blocked at the page level, as a proxy that refuses upgrades would.
    await page.routeWebSocket(/\/ws\/chat/, (ws) => ws.close({ code: 1008, reason: 'blocked by the test' }));
    await page.goto(pageUrl);
    await page.waitForSelector('[data-testid="chat-status"][data-transport="http"][data-state="connected"]', { timeout: TIMEOUT });
    const before = await page.locator('[data-testid="tool-card"][data-status="completed"]').count();
    await page.fill('[data-testid="chat-input"]', 'Create a P3 task for the http fallback');
    await page.click('[data-testid="chat-send"]');
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="tool-card"][data-status="completed"]').length > n, before, { timeout: TIMEOUT });
    await page.waitForFunction(() => /fallback/i.test([...document.querySelectorAll('[data-testid="assistant-message"]')].at(-1)?.textContent || ''), null, { timeout: TIMEOUT });
    await page.waitForSelector('[data-task-id]:has-text("The http fallback")', { timeout: TIMEOUT });
    assert.match(await page.locator('[data-testid="chat-status"]').innerText(), /over HTTP/);
    await screenshot(page, 'e2e-chat-http-fallback');
    await page.close();
  });

  it('closes board WebSockets cleanly both ways, as Chromium reports them (RFC 6455)', async () => {
    const page = await browser.context.newPage();
    await page.goto(pageUrl);
    const wsUrl = env.BOARDWIRE_WS_URL || new URL('/ws', pageUrl).toString().replace(/^http/, 'ws');
    const closes = await page.evaluate(async (url) => {
      const open = (ws) => new Promise((resolve, reject) => {
        ws.onmessage = (m) => { if (JSON.parse(m.data).type === 'connected') resolve(); };
        ws.onerror = () => reject(new Error('socket error before connected'));
      });
      const closed = (ws) => new Promise((resolve) => {
        ws.onclose = (e) => resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean });
      });
      // The page closes: the gateway must echo the close.
      const mine = new WebSocket(url);
      await open(mine);
      const mineClosed = closed(mine);
      mine.close(4000, 'done here');
      // The gateway closes: a frame over its 1 MiB limit gets 1009.
      const big = new WebSocket(url);
      await open(big);
      const bigClosed = closed(big);
      big.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(2 << 20) }));
      return { client: await mineClosed, server: await bigClosed };
    }, wsUrl);
    assert.deepEqual(closes.client, { code: 4000, reason: 'done here', wasClean: true });
    assert.equal(closes.server.code, 1009, JSON.stringify(closes.server));
    assert.equal(closes.server.wasClean, true, JSON.stringify(closes.server));
    await page.close();
  });

  it('survives a gateway restart: reconnecting, then connected, no card lost or duplicated', { skip: !gatewayControl() && 'no gateway control (BOARDWIRE_GATEWAY_CONTROL=stdio or BOARDWIRE_*_GATEWAY_CMD)' }, async () => {
    const control = gatewayControl();
    await control.stop();
    for (const page of pages) {
      await page.waitForSelector('[data-testid="board-status"][data-state="reconnecting"]', { timeout: TIMEOUT });
    }
    // A change made while the pages cannot hear it must still reach them.
    const missed = await bs.createTask(board.id, 'done', 'Made while the gateway was down', { priority: 'PRIORITY_LOW' });
    const attempt = await pages[0].getAttribute('[data-testid="board-status"]', 'data-attempt');
    assert.ok(Number(attempt) >= 1, 'the indicator shows the attempt number');
    await screenshot(pages[0], 'e2e-reconnecting');
    await control.start();
    for (const page of pages) {
      await page.waitForSelector('[data-testid="board-status"][data-state="connected"]', { timeout: 30000 });
      await page.waitForSelector(`[data-lane="done"] [data-task-id="${missed.id}"]`, { timeout: TIMEOUT });
    }
    const truth = await serverLanes();
    for (const page of pages) {
      const shown = await laneIds(page);
      const all = Object.values(shown).flat();
      assert.equal(new Set(all).size, all.length, 'no card is shown twice');
      assert.deepEqual(shown, truth, 'the page shows exactly the board');
    }
    await screenshot(pages[1], 'e2e-after-restart');
  });

  it('logged no page errors', () => {
    const all = errors.flat().filter((e) => !/WebSocket connection to .* failed/.test(e));
    assert.deepEqual(all, []);
  });

  /** Lane key → task ids in order, from board-service itself. */
  async function serverLanes() {
    const snap = await bs.getBoard(board.id);
    const lanes = Object.fromEntries(snap.board.lanes.map((l) => [l.key, []]));
    for (const t of snap.tasks) lanes[t.laneKey].push(t.id);
    return lanes;
  }
});

async function expectLane(page, lane, ids) {
  await page.waitForFunction(([lane, ids]) => {
    const shown = [...document.querySelectorAll(`[data-lane="${lane}"] [data-task-id]`)].map((c) => c.dataset.taskId);
    return JSON.stringify(shown) === JSON.stringify(ids);
  }, [lane, ids], { timeout: TIMEOUT }).catch(async (err) => {
    throw new Error(`lane ${lane} shows ${JSON.stringify((await laneIds(page))[lane])}, expected ${JSON.stringify(ids)}: ${err.message}`);
  });
}

let rl;
let stdinLines;
function gatewayControl() {
  if (env.BOARDWIRE_STOP_GATEWAY_CMD && env.BOARDWIRE_START_GATEWAY_CMD) {
    return {
      stop: async () => execSync(env.BOARDWIRE_STOP_GATEWAY_CMD, { stdio: 'inherit', shell: '/bin/sh' }),
      start: async () => execSync(env.BOARDWIRE_START_GATEWAY_CMD, { stdio: 'inherit', shell: '/bin/sh' }),
    };
  }
  if (env.BOARDWIRE_GATEWAY_CONTROL === 'stdio') {
    const ask = async (say, expect) => {
      if (!stdinLines) {
        rl = readline.createInterface({ input: process.stdin });
        stdinLines = rl[Symbol.asyncIterator]();
      }
      process.stdout.write(`\n${say}\n`);
      for (;;) {
        const { value, done } = await stdinLines.next();
        if (done) throw new Error(`stdin closed while waiting for ${expect}`);
        if (value.trim() === expect) return;
      }
    };
    return {
      stop: () => ask('STOP_GATEWAY', 'GATEWAY_STOPPED'),
      start: () => ask('START_GATEWAY', 'GATEWAY_STARTED'),
    };
  }
  return null;
}
