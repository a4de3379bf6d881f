// The two public APIs the page talks to: the query service over HTTP (cross-origin, with
// the viewer token as a bearer token) and the stream hub's live WebSocket on this origin.

export class Query {
  constructor(base, token) {
    this.base = base.replace(/\/$/, '');
    this.token = token;
  }

  url(path, params = {}) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v != null) q.set(k, v);
    const s = q.toString();
    return `${this.base}${path}${s ? `?${s}` : ''}`;
  }

  async get(path, params = {}) {
    const headers = this.token ? { Authorization: `Bearer ${this.token}` } : {};
    const response = await fetch(this.url(path, params), { headers });
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const body = await response.json();
        if (body.error) message = body.error;
      } catch { /* not JSON */ }
      throw new Error(`${path}: ${message}`);
    }
    return response.json();
  }

  /** A download (an export) with the token in its header: a token never goes in a link. */
  async blob(path, params = {}) {
    const headers = this.token ? { Authorization: `Bearer ${this.token}` } : {};
    const response = await fetch(this.url(path, params), { headers });
    if (!response.ok) throw new Error(`${path}: ${response.status}`);
    return response.blob();
  }
}

/** The live feed: reconnects by itself with backoff, subscribes again, and says how it is. */
export class Hub {
  constructor(token, onStatus) {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    this.url = `${scheme}://${location.host}/v1/live${token ? `?token=${encodeURIComponent(token)}` : ''}`;
    this.onStatus = onStatus;
    this.handlers = new Map();
    this.riders = new Set();
    this.events = new Set();
    this.delay = 500;
    this.connect();
  }

  on(type, handler) {
    if (!this.handlers.has(type)) this.handlers.set(type, []);
    this.handlers.get(type).push(handler);
  }

  subscribe({ riders = [], events = [] }) {
    riders.forEach((r) => this.riders.add(r));
    events.forEach((e) => this.events.add(e));
    this.send({ op: 'subscribe', riders, events });
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  connect() {
    this.onStatus('connecting');
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.delay = 500;
      this.connects = (this.connects ?? 0) + 1;
      document.body.dataset.connects = this.connects;
      this.onStatus('live');
      if (this.riders.size || this.events.size) {
        this.send({ op: 'subscribe', riders: [...this.riders], events: [...this.events] });
      }
    };
    socket.onmessage = (m) => {
      let frame;
      try {
        frame = JSON.parse(m.data);
      } catch {
        return;
      }
      for (const handler of this.handlers.get(frame.type) ?? []) handler(frame);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.onStatus('down');
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 15_000);
    };
  }
}

/** The view's state lives in the URL, so that a link opens what its sender saw. */
export const view = {
  get(key) {
    return new URLSearchParams(location.search).get(key);
  },
  set(changes) {
    const params = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(changes)) {
      if (v == null || v === '') params.delete(k);
      else params.set(k, v);
    }
    history.replaceState(null, '', `${location.pathname}?${params}`);
  },
};
