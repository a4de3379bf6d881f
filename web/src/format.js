// How values read on the page: one place, so every view says them alike.

export const STATUS = ['riding', 'stopped', 'resting', 'sleeping', 'no_signal', 'finished', 'scratched'];

const LABEL = {
  riding: 'riding', stopped: 'stopped', resting: 'resting', sleeping: 'sleeping',
  no_signal: 'no signal', finished: 'finished', scratched: 'scratched', not_started: 'not started',
};

export const label = (status) => LABEL[status] ?? status;

export function km(m) {
  if (m == null) return '–';
  return m >= 100_000 ? `${(m / 1000).toFixed(0)} km` : `${(m / 1000).toFixed(1)} km`;
}

export function duration(s) {
  if (s == null) return '–';
  s = Math.round(s);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/**
 * An age as a spectator reads it: "just now" within a minute, then minutes, hours and days.
 * Coarse on purpose: a thousand riders' ages ticking every second would redraw every row.
 */
export function ago(ms, now = Date.now()) {
  if (ms == null) return '–';
  const s = Math.max(0, (now - ms) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${duration(Math.floor(s / 60) * 60)} ago`;
}

const clock = new Intl.DateTimeFormat(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit' });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export const when = (ms) => (Number.isFinite(ms) ? clock.format(new Date(ms)) : '–');
export const moment = (ms) => (Number.isFinite(ms) ? full.format(new Date(ms)) : '–');

/** An ETA range, "Tue 14:05 (13:40–14:50)". */
export function eta(e) {
  if (!Number.isFinite(e?.p50)) return '–';
  const range = Number.isFinite(e.p10) && Number.isFinite(e.p90) ? ` (${when(e.p10)}–${when(e.p90)})` : '';
  return `${when(e.p50)}${range}`;
}

/** A fix older than this is said to be old. */
export const STALE_MS = 5 * 60_000;

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c != null) node.append(c);
  return node;
}

/** Epoch milliseconds from what the APIs give: a number, or an RFC 3339 string. */
export const toMs = (v) => (v == null ? null : typeof v === 'number' ? v : Date.parse(v));
