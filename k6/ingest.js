// Ingest at a constant arrival rate: single JSON readings, JSON batches, line-protocol
// batches and OsmAnd fixes, each VU a device with its own token.
//
//   k6 run -e TOKENS=velo_…,velo_… -e RATE=2000 k6/ingest.js
//
// MIX=single sends only single JSON readings, as phones and devices do, at the whole RATE.
import http from 'k6/http';
import { check } from 'k6';
import { collector, token, position, summary, summaryTrendStats } from './lib/config.js';

const rate = Number(__ENV.RATE || 1000);
const duration = __ENV.DURATION || '60s';
const vus = Number(__ENV.VUS || 200);

const scenario = (exec, share) => ({
  executor: 'constant-arrival-rate',
  exec,
  rate: Math.max(1, Math.round(rate * share)),
  timeUnit: '1s',
  duration,
  preAllocatedVUs: Math.max(2, Math.round(vus * share)),
  maxVUs: vus * 2,
});

const scenarios =
  __ENV.MIX === 'single'
    ? { json_single: scenario('jsonSingle', 1) }
    : {
        json_single: scenario('jsonSingle', 0.5),
        json_batch: scenario('jsonBatch', 0.2),
        lineprotocol: scenario('lineProtocol', 0.1),
        osmand: scenario('osmand', 0.2),
      };

export const options = {
  summaryTrendStats,
  scenarios,
  thresholds: {
    http_req_failed: ['rate==0'],
    'http_req_duration{kind:ingest}': ['p(99)<50'],
  },
};

const tags = { kind: 'ingest' };
const auth = () => ({ Authorization: `Token ${token()}` });

export function jsonSingle() {
  const body = JSON.stringify([{ metric: 'heart_rate', time: Date.now(), bpm: 120 + (__ITER % 40) }]);
  const r = http.post(`${collector}/v1/readings`, body, {
    headers: Object.assign({ 'Content-Type': 'application/json' }, auth()),
    tags,
  });
  check(r, { 'json 200': (x) => x.status === 200 });
}

export function jsonBatch() {
  const now = Date.now();
  const readings = [];
  for (let i = 0; i < 60; i++) {
    const p = position(__ITER * 60 + i);
    const t = now - (59 - i) * 1000;
    readings.push({ metric: 'gps', time: t, lat: p.lat, lon: p.lon, speed: 8.5, heading: p.heading });
    readings.push({ metric: 'heart_rate', time: t, bpm: 130 + (i % 20) });
  }
  const r = http.post(`${collector}/v1/readings`, JSON.stringify(readings), {
    headers: Object.assign({ 'Content-Type': 'application/json' }, auth()),
    tags,
  });
  check(r, { 'batch 200': (x) => x.status === 200 });
}

export function lineProtocol() {
  const now = Date.now();
  let body = '';
  for (let i = 0; i < 500; i++) {
    const p = position(__ITER * 500 + i);
    const t = (now - (499 - i) * 1000) * 1e6;
    body += `gps lat=${p.lat},lon=${p.lon},speed=8.5 ${t}\npower watts=${200 + (i % 50)} ${t}\n`;
  }
  const r = http.post(`${collector}/write?precision=ns`, body, { headers: auth(), tags });
  check(r, { 'write 204': (x) => x.status === 204 });
}

export function osmand() {
  const p = position(__ITER);
  const url =
    `${collector}/v1/osmand?id=${token()}&lat=${p.lat}&lon=${p.lon}&timestamp=${Math.floor(Date.now() / 1000)}` +
    `&speed=16.5&bearing=${p.heading.toFixed(0)}&heartRate=${125 + (__ITER % 30)}`;
  // OsmAnd and Traccar Client send the device identifier (our token) as `id`.
  const r = http.post(url, null, { tags });
  check(r, { 'osmand 200': (x) => x.status === 200 });
}

export function handleSummary(data) {
  return summary(data);
}
