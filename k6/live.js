// Live followers: each VU holds a WebSocket to the stream hub, follows riders while the
// simulated riders ride (collector replay --synthetic), and measures each reading's
// end-to-end latency from the time the device stamped it, when it was sent to the collector.
//
//   k6 run -e RIDERS=r0,r1 -e FOLLOWERS=1000 -e HOLD=60s k6/live.js
import ws from 'k6/ws';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { stream, riders, summary } from './lib/config.js';

const followers = Number(__ENV.FOLLOWERS || 100);
const holdMs = parseDuration(__ENV.HOLD || '30s');

export const options = {
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

function parseDuration(text) {
  const m = /^(\d+)(ms|s|m)$/.exec(text);
  if (!m) {
    throw new Error(`HOLD=${text}: give a duration like 30s, 2m or 500ms`);
  }
  return Number(m[1]) * { ms: 1, s: 1000, m: 60000 }[m[2]];
}

export function follow() {
  const url = `${stream.replace(/^http/, 'ws')}/v1/live`;
  const res = ws.connect(url, {}, (socket) => {
    socket.on('open', () => {
      socket.send(JSON.stringify({ op: 'subscribe', riders }));
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

export function handleSummary(data) {
  return summary(data);
}
