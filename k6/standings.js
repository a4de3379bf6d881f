// An event's standings at a constant arrival rate, as a thousand dot watchers' pages poll them.
//
//   k6 run -e EVENT=bench -e RATE=2000 k6/standings.js
//   k6 run -e ROUTE=healthz -e RATE=2000 k6/standings.js   # the baseline: the same server's cheapest answer
//
// Every request is anonymous: the public standings, which the query service makes once a
// second and shares between all callers. Like the browsers of the people following, each
// asks for gzip; k6 reads the bytes and keeps none (`responseType: 'none'`): unpacking and
// parsing them is the follower's work, on their machine, not the service's.
//
// ROUTE=healthz asks the query service's `/healthz` the same way: the same listener, limits
// and request metrics with nothing behind them, so its ceiling is what k6 and the HTTP stack
// can do on this machine, the bound any answer's ceiling is measured against.
import http from 'k6/http';
import { check } from 'k6';
import { query, summary, summaryTrendStats } from './lib/config.js';

const rate = Number(__ENV.RATE || 1000);
const duration = __ENV.DURATION || '60s';
const vus = Number(__ENV.VUS || 100);
const event = __ENV.EVENT || 'demo-race';
const route = __ENV.ROUTE || 'standings';
if (route !== 'standings' && route !== 'healthz') {
  throw new Error(`ROUTE=${route}: ask standings (the default) or healthz`);
}
const url = route === 'healthz' ? `${query}/healthz` : `${query}/v1/events/${event}/standings`;

export const options = {
  summaryTrendStats,
  scenarios: {
    [route]: {
      executor: 'constant-arrival-rate',
      exec: 'ask',
      rate,
      timeUnit: '1s',
      duration,
      preAllocatedVUs: vus,
      maxVUs: vus * 2,
    },
  },
  thresholds: {
    http_req_failed: ['rate==0'],
    [`http_req_duration{kind:${route}}`]: ['p(99)<50'],
  },
};

export function ask() {
  const r = http.get(url, {
    headers: { 'Accept-Encoding': 'gzip' },
    responseType: 'none',
    tags: { kind: route, name: route },
  });
  if (route === 'healthz') {
    check(r, { 'healthz 200': (x) => x.status === 200 });
  } else {
    check(r, {
      'standings 200, gzipped': (x) => x.status === 200 && x.headers['Content-Encoding'] === 'gzip'
        && Number(x.headers['Content-Length']) > 0,
    });
  }
}

export function handleSummary(data) {
  return summary(data);
}
