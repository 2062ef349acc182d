// Seed 001's browser client in headless Chromium: a plain EventSource on
// the gateway's /api/events, read with onmessage only. Prints OPEN when the
// stream opens and one `MSG {data, lastEventId}` line per message; exits
// after `count` messages. The browser itself reconnects with Last-Event-ID
// when the gateway goes away and comes back.
//
//   node web/tools/page-eventsource.mjs http://127.0.0.1:4002/ 'ai:jobs:status,ui:activity' 4
//
// Used by tests/browser.rs.

import { launch } from '../tests/support.mjs';

const [pageUrl, channels, count] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.context.newPage();
  await page.exposeFunction('report', (line) => console.log(line));
  await page.goto(pageUrl);
  await page.evaluate(({ channels, count }) => new Promise((resolve) => {
    const source = new EventSource(`/api/events?channels=${encodeURIComponent(channels)}`);
    let seen = 0;
    let opens = 0;
    source.onopen = () => { opens += 1; window.report(`OPEN ${opens}`); };
    source.onmessage = (event) => {
      seen += 1;
      window.report(`MSG ${JSON.stringify({ data: JSON.parse(event.data), lastEventId: event.lastEventId })}`);
      if (seen >= count) { source.close(); resolve(); }
    };
  }), { channels, count: Number(count) });
  console.log('DONE');
} catch (error) {
  console.log(`FAILED ${error}`);
} finally {
  await browser.close();
}
