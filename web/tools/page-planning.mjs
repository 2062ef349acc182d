// The planning parts of the board page in headless Chromium: the epic's
// progress badge and its tasks' epic chip, the sprint picker filtering the
// board, and starting then completing the sprint from the header. Prints
// one JSON line of what the page showed at each step, or {ok: false, error}.
//
//   node web/tools/page-planning.mjs 'http://127.0.0.1:4002/?board=plan&chat=off' <sprint id>
//
// Used by tests/browser.rs.

import { launch, watchErrors } from '../tests/support.mjs';

const [url, sprintId] = process.argv.slice(2);
const TIMEOUT = 20000;
const browser = await launch();
try {
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(url);
  await page.waitForSelector('[data-testid="board-status"][data-state="connected"]', { timeout: TIMEOUT });
  const visibleTitles = () => page.$$eval('[data-task-id]:not([hidden]) .card-title', (els) => els.map((e) => e.textContent).sort());
  const epicCard = page.locator('[data-task-id]:has-text("Checkout epic")').first();
  const progress = await epicCard.locator('[data-testid="epic-progress"]').innerText({ timeout: TIMEOUT });
  const chip = await page.locator('[data-task-id]:has-text("Pay by card") [data-testid="epic-chip"]').innerText({ timeout: TIMEOUT });
  const all = await visibleTitles();
  await page.waitForSelector(`[data-testid="sprint-picker"] option[value="${sprintId}"]`, { state: 'attached', timeout: TIMEOUT });
  await page.selectOption('[data-testid="sprint-picker"]', sprintId);
  const inSprint = await visibleTitles();
  const before = await page.getAttribute('[data-testid="sprint-action"]', 'data-action');
  await page.click('[data-testid="sprint-action"]');
  await page.waitForSelector('[data-testid="sprint-action"][data-action="complete"]', { timeout: TIMEOUT });
  const started = await page.$eval(`[data-testid="sprint-picker"] option[value="${sprintId}"]`, (o) => o.textContent);
  await page.click('[data-testid="sprint-action"]');
  await page.waitForFunction((id) => document.querySelector(`[data-testid="sprint-picker"] option[value="${id}"]`)?.textContent.includes('completed'), sprintId, { timeout: TIMEOUT });
  // The sprint's unfinished task went back to the backlog.
  await page.selectOption('[data-testid="sprint-picker"]', 'backlog');
  await page.waitForFunction(() => [...document.querySelectorAll('[data-task-id]:not([hidden]) .card-title')].some((e) => e.textContent === 'Pay by card'), null, { timeout: TIMEOUT });
  const backlog = await visibleTitles();
  console.log(JSON.stringify({ ok: true, progress, chip, all, inSprint, before, started, backlog, errors }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error) }));
} finally {
  await browser.close();
}
