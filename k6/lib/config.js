// Settings every script reads from the environment (k6 run -e NAME=value, or exported):
//   COLLECTOR_URL  the collector's ingest listener   (default http://127.0.0.1:8080)
//   QUERY_URL      the query service                (default http://127.0.0.1:8070)
//   STREAM_URL     the stream hub                   (default http://127.0.0.1:8090)
//   TOKENS         device tokens, comma-separated; VU n sends as device n modulo their count.
//                  The collector limits each token (--rate-limit, 200 requests/s by
//                  default): give enough tokens for the rate asked, or raise the limit.
//   RIDERS         rider ids to ask history and follow, comma-separated (default demo)
//   SUMMARY        where handleSummary writes its JSON (default summary.json)
//   TIMED          off: smoke.js leaves out its latency thresholds (the test command's run)
// No remote imports: the machines that run these are offline.

export const collector = __ENV.COLLECTOR_URL || 'http://127.0.0.1:8080';
export const query = __ENV.QUERY_URL || 'http://127.0.0.1:8070';
export const stream = __ENV.STREAM_URL || 'http://127.0.0.1:8090';
export const tokens = (__ENV.TOKENS || '').split(',').filter((t) => t.length > 0);
export const riders = (__ENV.RIDERS || 'demo').split(',').filter((r) => r.length > 0);

/** The statistics every script's summary keeps of each trend (p(99) and count are not defaults). */
export const summaryTrendStats = ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'];

/** Milliseconds of a duration like 30s, 2m or 500ms; `name` is the setting, for the error. */
export function parseDuration(name, text) {
  const m = /^(\d+)(ms|s|m)$/.exec(text);
  if (!m) {
    throw new Error(`${name}=${text}: give a duration like 30s, 2m or 500ms`);
  }
  return Number(m[1]) * { ms: 1, s: 1000, m: 60000 }[m[2]];
}

/** The token of the device this VU plays. */
export function token() {
  if (tokens.length === 0) {
    throw new Error('set TOKENS to one or more device tokens (comma-separated)');
  }
  return tokens[(__VU - 1) % tokens.length];
}

/** Deterministic per VU and iteration: where this device is on its loop. */
export function position(step) {
  const a = (2 * Math.PI * ((__VU * 37 + step) % 600)) / 600;
  return {
    lat: 45.07 + 0.01 * Math.sin(a) + 0.001 * (__VU % 50),
    lon: 7.68 + 0.014 * Math.cos(a),
    heading: (360 - (a * 180) / Math.PI) % 360,
  };
}

/** The end-of-test summary: the full data as JSON, and a few lines for the terminal. */
export function summary(data) {
  const m = data.metrics;
  const line = (name, key) => (m[name] ? `${name} ${key}=${m[name].values[key]}` : `${name} (none)`);
  const text = [
    line('http_reqs', 'count'),
    line('http_reqs', 'rate'),
    line('http_req_failed', 'rate'),
    line('http_req_duration', 'p(99)'),
    line('live_latency', 'p(99)'),
    line('live_readings', 'count'),
    line('spectator_progress_latency', 'p(99)'),
  ].join('\n');
  return { [__ENV.SUMMARY || 'summary.json']: JSON.stringify(data, null, 2), stdout: `${text}\n` };
}
