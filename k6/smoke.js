// Twenty seconds of ingest, history and live followers at a low rate with strict
// thresholds: no failed request, every check passed, live readings seen, and p99 bounds.
// The test command runs it against the stack it starts with TIMED=off (the p99 bounds left
// out: a test never asserts how fast a possibly busy machine answers; the benchmarks
// measure that); a threshold failure makes k6 exit with 99 and fails the run.
//
//   k6 run -e TOKENS=… -e RIDERS=… k6/smoke.js
export { jsonSingle, jsonBatch, lineProtocol, osmand } from './ingest.js';
export { history } from './query.js';
export { follow } from './live.js';
import { summary, summaryTrendStats } from './lib/config.js';

const steady = (exec, rate) => ({
  executor: 'constant-arrival-rate',
  exec,
  rate,
  timeUnit: '1s',
  duration: __ENV.DURATION || '20s',
  preAllocatedVUs: 4,
  maxVUs: 20,
});

export const options = {
  summaryTrendStats,
  scenarios: {
    json_single: steady('jsonSingle', 20),
    json_batch: steady('jsonBatch', 2),
    lineprotocol: steady('lineProtocol', 1),
    osmand: steady('osmand', 5),
    history: steady('history', 10),
    followers: { executor: 'per-vu-iterations', exec: 'follow', vus: 5, iterations: 1, maxDuration: '60s' },
  },
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
    live_readings: ['count>0'],
    ...(__ENV.TIMED === 'off'
      ? {}
      : {
          'http_req_duration{kind:ingest}': ['p(99)<250'],
          'http_req_duration{kind:history}': ['p(99)<1000'],
          live_latency: ['p(99)<1000'],
        }),
  },
};

export function handleSummary(data) {
  return summary(data);
}
