// An event's standings at a constant arrival rate, as a thousand dot watchers' pages poll them.
//
//   k6 run -e EVENT=bench -e RATE=2000 k6/standings.js
//
// Every request is anonymous: the public standings, which the query service makes once a
// second and shares between all callers. Like the browsers of the people following, each
// asks for gzip; k6 reads the bytes and keeps none (`responseType: 'none'`): unpacking and
// parsing them is the follower's work, on their machine, not the service's.
import http from 'k6/http';
import { check } from 'k6';
import { query, summary, summaryTrendStats } from './lib/config.js';

const rate = Number(__ENV.RATE || 1000);
const duration = __ENV.DURATION || '60s';
const vus = Number(__ENV.VUS || 100);
const event = __ENV.EVENT || 'demo-race';

export const options = {
  summaryTrendStats,
  scenarios: {
    standings: {
      executor: 'constant-arrival-rate',
      exec: 'standings',
      rate,
      timeUnit: '1s',
      duration,
      preAllocatedVUs: vus,
      maxVUs: vus * 2,
    },
  },
  thresholds: {
    http_req_failed: ['rate==0'],
    'http_req_duration{kind:standings}': ['p(99)<50'],
  },
};

export function standings() {
  const r = http.get(`${query}/v1/events/${event}/standings`, {
    headers: { 'Accept-Encoding': 'gzip' },
    responseType: 'none',
    tags: { kind: 'standings', name: 'standings' },
  });
  check(r, {
    'standings 200, gzipped': (x) => x.status === 200 && x.headers['Content-Encoding'] === 'gzip'
      && Number(x.headers['Content-Length']) > 0,
  });
}

export function handleSummary(data) {
  return summary(data);
}
