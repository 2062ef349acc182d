// Runs one turn against an AG-UI endpoint with the published client
// (`@ag-ui/client` HttpAgent), for agent-bridge's tests:
//
//   node web/tools/agui-run.mjs <url> <threadId> <message> [abort-after-first-token|approve|reject]
//
// With approve or reject, a run that ends in an interrupt is resumed with
// that answer, and the resumed run's events are printed as `resumed`.
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
const resumed = [];
let interrupts = [];
let error = null;
const record = (into) => ({ event }) => {
  const { type, toolCallName, toolCallId, delta, content: result, code, message, snapshot, outcome } = event;
  into.push({ type, toolCallName, toolCallId, delta, result, code, message, hasBoard: !!snapshot?.board, outcome: outcome?.type });
  if (type === 'RUN_FINISHED' && outcome?.type === 'interrupt') interrupts = outcome.interrupts;
  if (mode === 'abort-after-first-token' && type === 'TEXT_MESSAGE_CONTENT') agent.abortRun();
};
try {
  await agent.runAgent({ runId: `run-${threadId}` }, { onEvent: record(seen) });
  if ((mode === 'approve' || mode === 'reject') && interrupts.length) {
    const resume = interrupts.map((i) => ({ interruptId: i.id, status: 'resolved', payload: { approved: mode === 'approve' } }));
    await agent.runAgent({ runId: `run-${threadId}-2`, resume }, { onEvent: record(resumed) });
  }
} catch (err) {
  error = String(err?.message || err);
}
console.log(JSON.stringify({ events: seen, resumed, interrupts, messages: agent.messages, state: agent.state, error }));
