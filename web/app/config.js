// Where the services are. Same-origin defaults, overridable per page load
// (`?ws=`, `?chat=`) or per deployment (`<meta name="boardwire-ws-url">`,
// `<meta name="boardwire-chat-url">`, `<meta name="boardwire-api-url">`).

const params = new URLSearchParams(location.search);

function meta(name) {
  return document.querySelector(`meta[name="${name}"]`)?.content?.trim() || '';
}

const wsScheme = location.protocol === 'https:' ? 'wss:' : 'ws:';

export const config = {
  /** Board id or slug from `?board=`; empty shows the board list. */
  board: params.get('board') || '',
  boardWsUrl: params.get('ws') || meta('boardwire-ws-url') || `${wsScheme}//${location.host}/ws`,
  /** The gateway's SSE stream, the read-only fallback when WebSocket is blocked (default: beside the board WebSocket). */
  eventsUrl: params.get('events') || meta('boardwire-events-url') || undefined,
  chatUrl: params.get('chat') || meta('boardwire-chat-url') || `${wsScheme}//${location.hostname}:8001/ws/chat`,
  /** Base of the gateway's HTTP API (board list and create). */
  apiUrl: (params.get('api') || meta('boardwire-api-url') || '').replace(/\/$/, ''),
  token: params.get('token') || undefined,
  /** The name others see on this board when the gateway has no auth (`?name=`). */
  name: params.get('name') || undefined,
  /** Failed reconnects in a row before showing Offline with a Retry button (`?retries=`). */
  maxAttempts: Number(params.get('retries')) || 12,
  /** `?chat=off` hides the chat panel. */
  chatEnabled: params.get('chat') !== 'off',
};

/** A link to another board that keeps the service overrides. */
export function boardHref(board) {
  const next = new URLSearchParams(params);
  if (board) next.set('board', board);
  else next.delete('board');
  const q = next.toString();
  return q ? `?${q}` : location.pathname;
}
