// The earlier system's load-test shape, for side-by-side tables: JMeter started REQUESTS
// threads over a 10-second ramp-up, one request each. Here the same REQUESTS arrive evenly
// over RAMP, against one KIND of traffic:
//   ingest   one JSON heart-rate reading per request (a device's token each)
//   history  the query service's realistic mix (query.js)
//   live     a visit of the live page: the page, its WebSocket and a rider's snapshot
//
//   k6 run -e KIND=ingest -e REQUESTS=15000 -e TOKENS=… k6/requests.js
export { jsonSingle } from './ingest.js';
export { history } from './query.js';
export { visit } from './live.js';
import { summary, summaryTrendStats } from './lib/config.js';

const kinds = { ingest: 'jsonSingle', history: 'history', live: 'visit' };
const kind = __ENV.KIND || 'ingest';
if (!(kind in kinds)) {
  throw new Error(`KIND=${kind}: give one of ${Object.keys(kinds).join(', ')}`);
}
const requests = Number(__ENV.REQUESTS || 5000);
const rampSeconds = Number((__ENV.RAMP || '10s').replace(/s$/, ''));

export const options = {
  scenarios: {
    [kind]: {
      executor: 'constant-arrival-rate',
      exec: kinds[kind],
      rate: Math.round(requests / rampSeconds),
      timeUnit: '1s',
      duration: `${rampSeconds}s`,
      preAllocatedVUs: Number(__ENV.VUS || 200),
      maxVUs: Number(__ENV.MAX_VUS || 2000),
    },
  },
  // No thresholds: the tables report what happened, errors included.
  summaryTrendStats,
};

export function handleSummary(data) {
  return summary(data);
}
