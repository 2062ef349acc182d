// Runs one turn against an AG-UI endpoint with the published client
// (`@ag-ui/client` HttpAgent), for agent-bridge's tests:
//
//   node web/tools/agui-run.mjs <url> <threadId> <message> [abort-after-first-token]
//
// Prints one JSON line: the events the client saw (type and the fields a
// test checks), the client's final messages and state, and any error.
import { HttpAgent } from '@ag-ui/client';

const [url, threadId, content, mode] = process.argv.slice(2);
const agent = new HttpAgent({
  url,
  threadId,
  headers: process.env.AGUI_TOKEN ? { Authorization: `Bearer ${process.env.AGUI_TOKEN}` } : {},
  initialMessages: [{ id: `msg-${threadId}-1`, role: 'user', content }],
});
const seen = [];
let error = null;
try {
  await agent.runAgent({ runId: `run-${threadId}` }, {
    onEvent({ event }) {
      const { type, toolCallName, toolCallId, delta, content: result, code, message, snapshot } = event;
      seen.push({ type, toolCallName, toolCallId, delta, result, code, message, hasBoard: !!snapshot?.board });
      if (mode === 'abort-after-first-token' && type === 'TEXT_MESSAGE_CONTENT') agent.abortRun();
    },
  });
} catch (err) {
  error = String(err?.message || err);
}
console.log(JSON.stringify({ events: seen, messages: agent.messages, state: agent.state, error }));
