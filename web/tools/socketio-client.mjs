// Seed 000's Socket.IO frontend, driven with the published client
// (`socket.io-client` 4.x), for ws-gateway's tests:
//
//   node web/tools/socketio-client.mjs <url> <board> scenario [token]
//   node web/tools/socketio-client.mjs <url> <board> connect [token]
//   node web/tools/socketio-client.mjs <url> <project> project [token]
//
// `scenario`: two clients join the board; A creates and updates tasks, B
// sees them; B disconnects, A writes while it is away, B reconnects with
// the last boardVersion it saw in its auth and rejoins. `connect`: one
// connect, reporting `connect_error`'s message if refused. `project`: two
// clients join a project of two boards; A creates a task without boardId
// and one on the second board, B sees both; then it prints
// {"step":"joined"} and waits for a third board to join the project (the
// test adds it), creates a task there, and B sees it. Prints one JSON
// line (last): the events each client saw (name, boardVersion, boardId,
// id, ...), the acknowledgements, and any error.
import { io } from 'socket.io-client';

const [url, board, mode, token] = process.argv.slice(2);
const WAIT = 15000;

function client(name) {
  const seen = [];
  const joins = [];
  const versions = {};
  // Default transports: long-polling first, then the WebSocket upgrade.
  const socket = io(url, {
    reconnection: false,
    // Called on every (re)connect: the last version seen per board resumes it.
    auth: (cb) => cb({ ...(token ? { token } : {}), versions: { ...versions } }),
  });
  const record = (event) => (payload) => {
    seen.push({
      event,
      boardVersion: payload.boardVersion,
      id: payload.id,
      title: payload.title,
      lane: payload.lane,
      fromLane: payload.fromLane,
      projectId: payload.projectId,
      boardId: payload.boardId,
      commandId: payload.commandId,
    });
    if (payload.boardId && payload.boardVersion !== undefined) {
      versions[payload.boardId] = Math.max(versions[payload.boardId] ?? 0, payload.boardVersion);
    }
  };
  for (const event of ['task:created', 'task:updated', 'task:deleted', 'task:status_changed',
    'epic:created', 'epic:updated', 'epic:deleted', 'board:sync', 'project:updated',
    'notification']) {
    socket.on(event, record(event));
  }
  // Seed 000's frontend joins its project on every connect.
  socket.on('connect', () => socket.emit('join:project', board, (ack) => joins.push(ack)));
  return { name, socket, seen, joins, versions };
}

const until = (what, check) => new Promise((resolve, reject) => {
  const started = Date.now();
  const tick = () => {
    if (check()) return resolve();
    if (Date.now() - started > WAIT) return reject(new Error(`timed out waiting for ${what}`));
    setTimeout(tick, 10);
  };
  tick();
});

const call = (c, event, payload) => c.socket.timeout(WAIT).emitWithAck(event, payload);
const latest = (c) => Math.max(0, ...Object.values(c.versions));

async function scenario() {
  const acks = [];
  const a = client('a');
  const b = client('b');
  await until('both synced', () => a.seen.some((e) => e.event === 'board:sync')
    && b.seen.some((e) => e.event === 'board:sync'));
  const write = async (event, payload) => {
    const ack = await call(a, event, payload);
    acks.push({ event, ...ack });
    if (!ack.ok) throw new Error(`${event} refused: ${JSON.stringify(ack.error)}`);
    return ack;
  };
  const created = await write('task:create', { projectId: board, title: 'first', lane: 'todo' });
  const id = created.task.id;
  await write('task:update', { projectId: board, id, title: 'renamed' });
  await write('task:update', { projectId: board, taskId: id, lane: 'done' });
  await until('B sees the move', () => b.seen.some((e) => e.event === 'task:status_changed'));
  const refused = await call(a, 'task:update', { projectId: board, id, colour: 'red' });
  acks.push({ event: 'task:update', ...refused });

  b.socket.disconnect();
  const awayFrom = latest(b);
  const away = await write('task:create', { projectId: board, title: 'while away', lane: 'todo' });
  await write('task:update', { projectId: board, id: away.task.id, title: 'while away, renamed' });
  await write('task:delete', { projectId: board, id });
  await until('A sees its writes', () => a.seen.some((e) => e.event === 'task:deleted'));
  const target = latest(a);
  b.socket.connect();
  await until(`B catches up to ${target}`, () => latest(b) >= target);
  // Anything extra (a repeat) would arrive right behind.
  await new Promise((r) => setTimeout(r, 300));
  a.socket.disconnect();
  b.socket.disconnect();
  return { acks, a: a.seen, b: b.seen, awayFrom, target };
}

const synced = (c) => new Set(c.seen.filter((e) => e.event === 'board:sync').map((e) => e.boardId));

async function project() {
  const acks = [];
  const a = client('a');
  const b = client('b');
  await until('both synced two boards', () => synced(a).size === 2 && synced(b).size === 2);
  const write = async (payload) => {
    const ack = await call(a, 'task:create', payload);
    acks.push(ack);
    if (!ack.ok) throw new Error(`task:create refused: ${JSON.stringify(ack.error)}`);
    return ack;
  };
  const firstBoards = [...synced(a)];
  const [one, two] = a.joins[0].boardIds;
  await write({ projectId: board, title: 'no board given', lane: 'todo' });
  await write({ projectId: board, boardId: two, title: 'second board', lane: 'todo' });
  const created = (c, title) => c.seen.some((e) => e.event === 'task:created' && e.title === title);
  await until('B sees both', () => created(b, 'no board given') && created(b, 'second board'));
  console.log(JSON.stringify({ step: 'joined' }));
  await until('B syncs a third board', () => synced(b).size === 3);
  await until('A syncs a third board', () => synced(a).size === 3);
  const third = [...synced(b)].find((id) => id !== one && id !== two);
  await write({ projectId: board, boardId: third, title: 'third board', lane: 'todo' });
  await until('B sees the third board\'s task', () => created(b, 'third board'));
  a.socket.disconnect();
  b.socket.disconnect();
  return { acks, joins: { a: a.joins, b: b.joins }, firstBoards, third, a: a.seen, b: b.seen };
}

async function connect() {
  const socket = io(url, { transports: ['websocket'], reconnection: false, auth: token ? { token } : {} });
  return await new Promise((resolve) => {
    socket.on('connect', () => {
      socket.emit('join:project', board, (ack) => {
        socket.disconnect();
        resolve({ connected: true, join: ack });
      });
    });
    socket.on('connect_error', (err) => resolve({ connected: false, error: err.message }));
    setTimeout(() => resolve({ connected: false, error: 'timeout' }), WAIT);
  });
}

try {
  const modes = { connect, project, scenario };
  if (!modes[mode]) throw new Error(`unknown mode ${mode}`);
  const result = await modes[mode]();
  console.log(JSON.stringify(result));
  process.exit(0);
} catch (err) {
  console.log(JSON.stringify({ error: String(err?.stack ?? err) }));
  process.exit(1);
}
