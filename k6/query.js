// History at a constant arrival rate: a realistic mix of series (ranges from an hour to a
// month, several point budgets and methods), tracks, summaries and latest values.
//
//   k6 run -e RIDERS=demo -e RATE=200 k6/query.js
//
// MIX=chart asks only the commonest request, a chart of the last hour of heart rate at
// 1,000 points, instead of the whole mix.
import http from 'k6/http';
import { check } from 'k6';
import { query, riders, summary, summaryTrendStats } from './lib/config.js';

const rate = Number(__ENV.RATE || 100);
const duration = __ENV.DURATION || '60s';
const vus = Number(__ENV.VUS || 100);

export const options = {
  summaryTrendStats,
  scenarios: {
    history: {
      executor: 'constant-arrival-rate',
      exec: 'history',
      rate,
      timeUnit: '1s',
      duration,
      preAllocatedVUs: vus,
      maxVUs: vus * 2,
    },
  },
  thresholds: {
    http_req_failed: ['rate==0'],
    'http_req_duration{kind:history}': ['p(99)<200'],
  },
};

const HOUR = 3600 * 1000;
// [weight, path builder]: mostly recent series at chart budgets, some long ranges, tracks,
// summaries and latest, as a dashboard and a follower page ask.
const mix = [
  [30, (r, now) => `/v1/riders/${r}/series/heart_rate?from=${now - HOUR}&to=${now}&max_points=1000`],
  [15, (r, now) => `/v1/riders/${r}/series/gps?field=speed&from=${now - 6 * HOUR}&to=${now}&max_points=500&method=lttb`],
  [10, (r, now) => `/v1/riders/${r}/series/power?from=${now - 24 * HOUR}&to=${now}&max_points=2000`],
  [5, (r, now) => `/v1/riders/${r}/series/heart_rate?from=${now - 30 * 24 * HOUR}&to=${now}&max_points=1000&method=mean`],
  [15, (r, now) => `/v1/riders/${r}/track?from=${now - 2 * HOUR}&to=${now}&max_points=500`],
  [10, (r, now) => `/v1/riders/${r}/summary?from=${now - 2 * HOUR}&to=${now}`],
  [15, (r) => `/v1/riders/${r}/latest`],
];
const asked = __ENV.MIX === 'chart' ? mix.slice(0, 1) : mix;
const total = asked.reduce((sum, [w]) => sum + w, 0);

export function history() {
  const rider = riders[(__VU + __ITER) % riders.length];
  let pick = (__ITER * 7919 + __VU * 104729) % total;
  let build = asked[0][1];
  for (const [weight, path] of asked) {
    if (pick < weight) {
      build = path;
      break;
    }
    pick -= weight;
  }
  const r = http.get(`${query}${build(rider, Date.now())}`, { tags: { kind: 'history', name: 'history' } });
  check(r, { 'history 200': (x) => x.status === 200 });
}

export function handleSummary(data) {
  return summary(data);
}
