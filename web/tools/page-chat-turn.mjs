// Opens the board page in headless Chromium, waits for the live board, runs
// one chat turn through the page and waits for the card it creates.
// Prints one JSON line: {ok, lanes, card, reply} or {ok: false, error}.
//
//   node web/tools/page-chat-turn.mjs http://127.0.0.1:4002/?board=default "Create a P1 story for X" "X"
//
// Used by the compose-parity test (tests/compose_parity.rs).

import { launch, watchErrors } from '../tests/support.mjs';

const [url, message, cardText] = process.argv.slice(2);
const TIMEOUT = 20000;
const browser = await launch();
try {
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  await page.goto(url);
  await page.waitForSelector('[data-testid="board-status"][data-state="connected"]', { timeout: TIMEOUT });
  await page.waitForSelector('[data-testid="chat-status"][data-state="connected"]', { timeout: TIMEOUT });
  const lanes = await page.$$eval('[data-lane]', (els) => els.map((e) => e.dataset.lane));
  await page.fill('[data-testid="chat-input"]', message);
  await page.click('[data-testid="chat-send"]');
  await page.waitForSelector('[data-testid="tool-card"][data-status="completed"]', { timeout: TIMEOUT });
  const card = page.locator(`[data-task-id]:has-text(${JSON.stringify(cardText)})`).first();
  await card.waitFor({ timeout: TIMEOUT });
  await page.waitForFunction(() => !document.querySelector('.assistant-text.streaming'), null, { timeout: TIMEOUT });
  const reply = await page.locator('[data-testid="assistant-message"]').last().innerText();
  const transport = await page.getAttribute('[data-testid="chat-status"]', 'data-transport');
  console.log(JSON.stringify({ ok: true, lanes, card: await card.getAttribute('data-task-id'), reply, transport, errors }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error) }));
} finally {
  await browser.close();
}
