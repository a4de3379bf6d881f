// Live followers: each VU holds a WebSocket to the stream hub, follows riders while the
// simulated riders ride (collector replay --synthetic), and measures each reading's
// end-to-end latency from the time the device stamped it, when it was sent to the collector.
//
//   k6 run -e RIDERS=r0,r1 -e FOLLOWERS=1000 -e HOLD=60s k6/live.js
//
// FOLLOW=all (the default) has every follower follow every rider in RIDERS; FOLLOW=one has
// follower n follow rider n modulo their count, as spectators of one rider each.
import http from 'k6/http';
import ws from 'k6/ws';
import { check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { parseDuration, stream, riders, summary, summaryTrendStats } from './lib/config.js';

const followers = Number(__ENV.FOLLOWERS || 100);
const holdMs = parseDuration('HOLD', __ENV.HOLD || '30s');

export const options = {
  summaryTrendStats,
  scenarios: {
    followers: {
      executor: 'per-vu-iterations',
      exec: 'follow',
      vus: followers,
      iterations: 1,
      maxDuration: `${Math.ceil(holdMs / 1000) + 60}s`,
    },
  },
  thresholds: {
    live_latency: ['p(99)<100'],
    live_readings: ['count>0'],
    ws_connecting: ['p(99)<1000'],
  },
};

export const latency = new Trend('live_latency', true);
export const received = new Counter('live_readings');
// One visit of the live page (see visit below): the time to the rider's snapshot, and
// whether a visit failed (no page, no upgrade, or no snapshot within 5 s).
export const visitDuration = new Trend('live_visit_duration', true);
export const visitFailed = new Rate('live_visit_failed');

export function follow() {
  const url = `${stream.replace(/^http/, 'ws')}/v1/live`;
  const res = ws.connect(url, {}, (socket) => {
    socket.on('open', () => {
      const follows = __ENV.FOLLOW === 'one' ? [riders[(__VU - 1) % riders.length]] : riders;
      socket.send(JSON.stringify({ op: 'subscribe', riders: follows }));
      socket.setTimeout(() => socket.close(), holdMs);
    });
    socket.on('message', (text) => {
      const frame = JSON.parse(text);
      if (frame.type === 'reading') {
        latency.add(Date.now() - Date.parse(frame.time));
        received.add(1);
      }
    });
  });
  check(res, { 'upgraded (101)': (r) => r && r.status === 101 });
}

/** One visit of the live page, as a spectator opening it: the page, then its WebSocket,
 * a subscription to one rider, and that rider's snapshot (latest readings and trail). */
export function visit() {
  const started = Date.now();
  const page = http.get(`${stream}/`, { tags: { kind: 'live', name: 'live page' } });
  let ok = check(page, { 'page 200': (r) => r.status === 200 });
  let snapshot = false;
  const rider = riders[(__VU + __ITER) % riders.length];
  const res = ws.connect(`${stream.replace(/^http/, 'ws')}/v1/live`, { tags: { kind: 'live' } }, (socket) => {
    socket.on('open', () => socket.send(JSON.stringify({ op: 'subscribe', riders: [rider] })));
    socket.on('message', (text) => {
      if (JSON.parse(text).type === 'snapshot') {
        snapshot = true;
        socket.close();
      }
    });
    socket.setTimeout(() => socket.close(), 5000);
  });
  ok = check(res, { 'upgraded (101)': (r) => r && r.status === 101 }) && ok;
  ok = check(snapshot, { 'snapshot received': (s) => s }) && ok;
  visitFailed.add(!ok);
  if (ok) {
    visitDuration.add(Date.now() - started);
  }
}

export function handleSummary(data) {
  return summary(data);
}
