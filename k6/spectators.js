// Spectators of one event: each virtual user opens the spectator page as a browser does
// (web/src/event.js) and keeps it open, every one of them at once by the end of the ramp.
//
//   k6 run -e EVENT=bench -e SPECTATORS=10000 -e RAMP=5m -e HOLD=5m k6/spectators.js
//
// One visit: the page from the hub and its assets (a first visit: no cache); from the query
// service the event, its course and profile, then the standings, then the checkpoints and
// the race flow, each group in parallel as the page asks them, gzipped; then the hub's
// WebSocket, subscribed to the event: its standings snapshot, then its `progress` frames
// until the end of the run, asking the standings again every 30 s as the page does.
// Arrivals are spread evenly over RAMP, and everyone stays until RAMP + HOLD.
//
// Measured: every request's duration (the goal: p99 under 250 ms, none failed), the time
// from arriving to the page's data all there (`spectator_open`), from the WebSocket's
// start to the standings snapshot (`spectator_snapshot`), and each progress frame's age on
// arrival: from when the collector made its oldest reading durable (`accepted_at_ms`) to
// now (`spectator_progress_latency`; the hub gathers an event's progress for up to
// --progress-every, 500 ms by default, before sending it).
import http from 'k6/http';
import ws from 'k6/ws';
import exec from 'k6/execution';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { parseDuration, query, stream, summary, summaryTrendStats } from './lib/config.js';

const spectators = Number(__ENV.SPECTATORS || 1000);
const rampMs = parseDuration('RAMP', __ENV.RAMP || '2m');
const holdMs = parseDuration('HOLD', __ENV.HOLD || '2m');
const event = __ENV.EVENT || 'demo-race';
const refreshMs = 30_000;

export const options = {
  summaryTrendStats,
  // Ten thousand WebSockets and their page loads: k6's own defaults cap neither.
  scenarios: {
    spectators: {
      executor: 'per-vu-iterations',
      exec: 'spectate',
      vus: spectators,
      iterations: 1,
      maxDuration: `${Math.ceil((rampMs + holdMs) / 1000) + 120}s`,
    },
  },
  thresholds: {
    http_req_failed: ['rate==0'],
    http_req_duration: ['p(99)<250'],
    spectator_failed: ['rate==0'],
  },
};

export const opened = new Trend('spectator_open', true);
export const snapshot = new Trend('spectator_snapshot', true);
export const latency = new Trend('spectator_progress_latency', true);
export const frames = new Counter('spectator_progress_frames');
export const failed = new Rate('spectator_failed');

const names = ['page', 'asset', 'event', 'course', 'profile', 'standings', 'checkpoints', 'flow'];
// A threshold per request name, so that the summary keeps each one's durations.
for (const name of names) options.thresholds[`http_req_duration{name:${name}}`] = ['p(99)<250'];

const gzip = (name) => ({ headers: { 'Accept-Encoding': 'gzip' }, responseType: 'none', tags: { name } });
const api = (path, name) => ['GET', `${query}${path}`, null, gzip(name)];
/** Whether every response is a 200, as a check named `name 200` (the summary says which
 * failed). */
const ok = (name, responses) => responses
  .map((r) => check(r, { [`${name} 200`]: (x) => x.status === 200 }))
  .every(Boolean);

/** The epoch ms of the first reading in a frame's text, without parsing the whole frame. */
function acceptedAt(text) {
  const at = text.indexOf('"accepted_at_ms":');
  return at < 0 ? NaN : parseInt(text.slice(at + 17, at + 40), 10);
}

export function spectate() {
  const endAt = exec.scenario.startTime + rampMs + holdMs;
  sleep((rampMs * (__VU - 1)) / spectators / 1000);
  const arrived = Date.now();
  const e = encodeURIComponent(event);

  const page = http.get(`${stream}/`, { tags: { name: 'page' } });
  const assets = [...new Set(String(page.body ?? '').match(/\/assets\/[A-Za-z0-9._-]+/g) ?? [])];
  let good = ok('page', [page]) && check(assets, { 'the page names its assets': (a) => a.length > 0 })
    && ok('asset', http.batch(assets.map((a) => ['GET', `${stream}${a}`, null, gzip('asset')])));

  const [info, ...first] = http.batch([
    ['GET', `${query}/v1/events/${e}`, null, { tags: { name: 'event' } }],
    api(`/v1/events/${e}/course?max_points=4000`, 'course'),
    api(`/v1/events/${e}/profile?max_points=1500`, 'profile'),
  ]);
  good = ok('event', [info]) && ok('course', [first[0]]) && ok('profile', [first[1]]) && good;
  const starts = info.status === 200 ? (info.json('entrants') ?? []).map((x) => x.start) : [];
  const from = starts.length ? Math.min(...starts) : Date.now() - 86_400_000; // epoch ms, as the page asks
  good = ok('standings', [http.get(`${query}/v1/events/${e}/standings`, gzip('standings'))]) && good;
  const [checkpoints, flow] = http.batch([
    api(`/v1/events/${e}/checkpoints`, 'checkpoints'),
    api(`/v1/events/${e}/flow?from=${from}&max_points=300`, 'flow'),
  ]);
  good = ok('checkpoints', [checkpoints]) && ok('flow', [flow]) && good;
  if (good) opened.add(Date.now() - arrived);

  let snapshotted = false;
  const started = Date.now();
  const res = ws.connect(`${stream.replace(/^http/, 'ws')}/v1/live`, { tags: { name: 'live' } }, (socket) => {
    socket.on('open', () => {
      socket.send(JSON.stringify({ op: 'subscribe', events: [event] }));
      socket.setInterval(() => {
        good = ok('standings', [http.get(`${query}/v1/events/${e}/standings`, gzip('standings'))]) && good;
      }, refreshMs);
      socket.setTimeout(() => socket.close(), Math.max(1000, endAt - Date.now()));
    });
    socket.on('message', (text) => {
      if (text.startsWith('{"type":"progress"')) {
        const at = acceptedAt(text);
        if (Number.isFinite(at)) latency.add(Date.now() - at);
        frames.add(1);
      } else if (!snapshotted && text.startsWith('{"type":"standings"')) {
        snapshotted = true;
        snapshot.add(Date.now() - started);
      }
    });
  });
  good = check(res, { 'upgraded (101)': (r) => r && r.status === 101 }) && good;
  good = check(snapshotted, { 'standings snapshot received': (s) => s }) && good;
  failed.add(!good);
}

export function handleSummary(data) {
  return summary(data);
}
