// Small pieces both protocol clients use. No DOM code.

/** A minimal event emitter: `on` returns its own unsubscribe function. */
export class Emitter {
  constructor() {
    this._handlers = new Map();
  }

  on(name, fn) {
    if (!this._handlers.has(name)) this._handlers.set(name, new Set());
    this._handlers.get(name).add(fn);
    return () => this._handlers.get(name)?.delete(fn);
  }

  emit(name, value) {
    for (const fn of this._handlers.get(name) || []) {
      try {
        fn(value);
      } catch (err) {
        // One broken listener must not stop the protocol.
        console.error(`boardwire: ${name} listener failed`, err);
      }
    }
  }
}

/**
 * Exponential backoff with "equal jitter": attempt n waits between half and
 * all of min(max, base · 2^(n-1)), so reconnecting clients spread out
 * instead of arriving together when a server comes back.
 */
export class Backoff {
  constructor(baseMs, maxMs, random = Math.random) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
    this.random = random;
    this.attempt = 0;
  }

  next() {
    this.attempt += 1;
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** (this.attempt - 1));
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  reset() {
    this.attempt = 0;
  }
}

/** A random UUID (v4), also where `crypto.randomUUID` is missing (plain http on a LAN address). */
export function newId() {
  if (globalThis.crypto?.randomUUID) {
    try { return globalThis.crypto.randomUUID(); } catch { /* insecure context */ }
  }
  const b = new Uint8Array(16);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
