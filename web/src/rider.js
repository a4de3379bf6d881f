// The rider view: live position, trail and sensor values as they arrive; the ride so far;
// stops and ETAs when the rider is in an event; history charts that ask again at every zoom.
import { Map, COLOURS } from './map.js';
import { Series } from './charts.js';
import { STATUS, STALE_MS, ago, duration, el, km, label, moment, toMs, when } from './format.js';
import { view } from './api.js';

const DAY = 86_400_000;

/** The charts: metric, field, label, unit, colour, and how a stored value reads. */
const CHARTS = [
  { metric: 'heart_rate', field: 'bpm', label: 'Heart rate', unit: 'bpm', colour: '#c2255c', show: (v) => Math.round(v) },
  { metric: 'gps', field: 'speed', label: 'Speed', unit: 'km/h', colour: '#0f4c81', show: (v) => (v * 3.6).toFixed(1), scale: 3.6 },
  { metric: 'power', field: 'watts', label: 'Power', unit: 'W', colour: '#e8590c', show: (v) => Math.round(v) },
  { metric: 'cadence', field: 'rpm', label: 'Cadence', unit: 'rpm', colour: '#2f9e44', show: (v) => Math.round(v) },
];

export async function riderView(root, { config, query, hub, title }) {
  const id = view.get('rider');
  const eventId = view.get('event');
  const riders = await query.get('/v1/riders');
  const rider = riders.find((r) => r.id === id);
  if (!rider) {
    throw new Error(`There is no rider "${id}" you may see: a private rider needs a link with a viewer token.`);
  }
  title(rider.name);
  const event = eventId ? await query.get(`/v1/events/${encodeURIComponent(eventId)}`).catch(() => null) : null;
  const entrant = event?.entrants?.find((e) => e.rider === id);
  const last = toMs(rider.last) ?? Date.now();
  const start = entrant ? toMs(entrant.start) : Math.max(toMs(rider.first) ?? 0, last - DAY);
  const from = Number(view.get('from')) || start;
  const to = Number(view.get('to')) || null;

  const value = (key, unit) => el('div', { class: 'value', 'data-value': key },
    el('b', { class: key }, '–'), el('span', {}, unit));
  const ui = {
    map: el('div', { id: 'map', class: 'panel map', role: 'region', 'aria-label': `map of ${rider.name}'s ride` }),
    stale: el('p', { class: 'stale-note', role: 'alert', hidden: true }),
    now: el('section', { class: 'panel now', 'aria-labelledby': 'h-now' },
      el('h2', { id: 'h-now' }, 'Now'),
      el('div', { class: 'values' },
        value('hr', 'bpm'), value('speed', 'km/h'), value('power', 'W'), value('cadence', 'rpm'),
        value('age', 'last fix'), value('status', 'status'))),
    ride: el('section', { class: 'panel ride', 'aria-labelledby': 'h-ride' },
      el('h2', { id: 'h-ride' }, entrant ? `${event.name}: the ride so far` : 'The ride so far'),
      el('div', { class: 'values' },
        value('distance', 'distance'), value('moving', 'moving time'), value('climb', 'climbing'),
        value('eta-next', 'next checkpoint'), value('eta-finish', 'finish ETA'))),
    charts: el('section', { class: 'panel charts', 'aria-labelledby': 'h-charts' },
      el('h2', { id: 'h-charts' }, 'History'),
      el('p', { class: 'hint' }, 'Drag across a chart to zoom in; double-click to zoom out.')),
    stops: el('section', { class: 'panel stops', 'aria-labelledby': 'h-stops', hidden: !entrant },
      el('h2', { id: 'h-stops' }, 'Stops'), el('table', { id: 'stops' })),
    exports: el('p', { class: 'exports' }),
  };
  root.replaceChildren(el('div', { class: 'rider' }, ui.map,
    el('div', { class: 'side' }, ui.stale, ui.now, ui.ride, ui.stops), ui.charts, ui.exports));
  if (event) {
    ui.ride.prepend(el('a', { class: 'back', href: `?event=${encodeURIComponent(eventId)}` }, `← ${event.name}`));
  }

  const map = new Map(ui.map, config);
  const set = (key, text) => {
    const node = ui.now.querySelector(`b.${key}`) ?? ui.ride.querySelector(`b.${key}`);
    if (node) node.textContent = text;
  };
  /** [ms, lat, lon] of every position known, in time order, each time once. */
  let trail = [];
  const addTrail = (points) => {
    const seen = new Set();
    trail = [...trail, ...points].sort((a, b) => a[0] - b[0]).filter(([ms]) => !seen.has(ms) && seen.add(ms));
    map.trail(trail.map(([, lat, lon]) => [lat, lon]));
  };
  /** An ETA: its median large, its range beneath. */
  const setEta = (key, e, prefix = '') => {
    const node = ui.ride.querySelector(`b.${key}`);
    if (!node) return;
    node.textContent = Number.isFinite(e?.p50) ? `${prefix}${when(e.p50)}` : '–';
    const range = Number.isFinite(e?.p10) && Number.isFinite(e?.p90);
    node.title = range ? `between ${when(e.p10)} and ${when(e.p90)}` : '';
    node.nextElementSibling.textContent = `${key === 'eta-next' ? 'next checkpoint' : 'finish ETA'}${range ? ` (${when(e.p10)}–${when(e.p90)})` : ''}`;
  };
  let lastFix = null;
  let status = null;

  // History charts, at the chart's pixel width, for the view's range.
  const charts = CHARTS.map((c) => {
    const node = el('div', { class: 'series', 'data-metric': c.metric, role: 'img', 'aria-label': `${c.label} chart` });
    ui.charts.append(el('h3', {}, c.label), node);
    return {
      ...c,
      chart: new Series(node, {
        label: c.label,
        unit: c.unit,
        colour: c.colour,
        load: async (f, t, width) => {
          const answer = await query.get(`/v1/riders/${encodeURIComponent(id)}/series/${c.metric}`, {
            field: c.field, from: f, to: t, max_points: width,
          });
          return answer.points.map(([time, v]) => [time, c.scale ? v * c.scale : v]);
        },
        onRange: (f, t) => {
          view.set({ from: Math.round(f), to: Math.round(t) });
          exportsFor(f, t);
          for (const other of charts) if (other.chart.range?.[0] !== f || other.chart.range?.[1] !== t) other.chart.show(f, t);
        },
      }),
    };
  });

  function exportsFor(f, t) {
    const link = (fmt) => {
      const params = { from: Math.round(f), to: Math.round(t) };
      const a = el('a', { href: query.url(`/v1/riders/${encodeURIComponent(id)}/export.${fmt}`, params), download: `${id}.${fmt}` },
        fmt.toUpperCase());
      if (query.token) {
        a.addEventListener('click', async (e) => {
          e.preventDefault();
          const blob = await query.blob(`/v1/riders/${encodeURIComponent(id)}/export.${fmt}`, params);
          const url = URL.createObjectURL(blob);
          el('a', { href: url, download: `${id}.${fmt}` }).click();
          setTimeout(() => URL.revokeObjectURL(url), 10_000);
        });
      }
      return a;
    };
    ui.exports.replaceChildren('Download this range: ', link('gpx'), ' · ', link('csv'));
  }

  function live(frame) {
    const time = Date.parse(frame.time);
    if (frame.metric === 'gps') {
      if (lastFix != null && time <= lastFix) return;
      lastFix = time;
      addTrail([[time, frame.lat, frame.lon]]);
      map.dot(id, [frame.lat, frame.lon], COLOURS[status] ?? COLOURS.riding, rider.name, () => {});
      if (frame.speed != null) set('speed', (frame.speed * 3.6).toFixed(1));
      charts[1].chart.push(time, frame.speed * 3.6);
      freshness();
    } else if (frame.metric === 'heart_rate') {
      set('hr', Math.round(frame.bpm));
      charts[0].chart.push(time, frame.bpm);
    } else if (frame.metric === 'power') {
      set('power', Math.round(frame.watts));
      charts[2].chart.push(time, frame.watts);
    } else if (frame.metric === 'cadence') {
      set('cadence', Math.round(frame.rpm));
      charts[3].chart.push(time, frame.rpm);
    } else if (frame.metric === 'course_progress' && eventId && frame.event === eventId) {
      // The rider's own progress comes with their readings: no need to follow the event.
      status = STATUS[frame.status] ?? status;
      set('status', label(status));
      set('distance', km(frame.progress_m));
      const ms = (s) => (s == null ? null : s * 1000);
      if (frame.eta_finish_p50) setEta('eta-finish', { p10: ms(frame.eta_finish_p10), p50: ms(frame.eta_finish_p50), p90: ms(frame.eta_finish_p90) });
    }
  }

  function freshness() {
    set('age', lastFix ? ago(lastFix) : '–');
    const old = lastFix != null && Date.now() - lastFix > STALE_MS;
    ui.stale.hidden = !old;
    ui.stale.textContent = old ? `The last position is from ${moment(lastFix)} (${ago(lastFix)}): this is where ${rider.name} was, not where they are.` : '';
    ui.now.querySelector('[data-value="age"]').classList.toggle('stale', old);
  }

  hub.on('snapshot', (f) => {
    if (f.rider !== id) return;
    const ordered = [...f.latest].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    for (const reading of ordered) live(reading);
    addTrail(f.trail);
  });
  hub.on('reading', (f) => f.rider === id && live(f));
  hub.subscribe({ riders: [id] });
  setInterval(freshness, 5_000);

  // The track of the range, then live positions after it.
  const track = await query.get(`/v1/riders/${encodeURIComponent(id)}/track`, { from: start, max_points: 3000 });
  const times = track.properties?.times ?? [];
  addTrail((track.geometry?.coordinates ?? []).map(([lon, lat], i) => [times[i], lat, lon]));
  map.fitTrail();

  const summary = await query.get(`/v1/riders/${encodeURIComponent(id)}/summary`, { from: start });
  if (!entrant) set('distance', km(summary.distance_m));
  set('moving', duration(summary.moving_time_s));
  set('climb', summary.elevation_gain_m != null ? `${Math.round(summary.elevation_gain_m)} m` : '–');

  if (entrant) {
    const standings = await query.get(`/v1/events/${encodeURIComponent(eventId)}/standings`);
    const row = standings.standings.find((r) => r.rider === id);
    if (row) {
      status = row.status;
      set('status', label(row.status));
      set('distance', km(row.distance_m));
      if (row.next_checkpoint) setEta('eta-next', row.next_checkpoint.eta, `${row.next_checkpoint.name} `);
      if (row.finished) set('eta-finish', `finished ${when(toMs(row.finished))}`);
      else setEta('eta-finish', row.eta_finish);
    }
    const { stops } = await query.get(`/v1/events/${encodeURIComponent(eventId)}/riders/${encodeURIComponent(id)}/stops`);
    const table = ui.stops.querySelector('table');
    table.innerHTML = '<caption class="visually-hidden">Stops</caption><thead><tr><th scope="col">From</th>'
      + '<th scope="col" class="num">For</th><th scope="col">What</th><th scope="col" class="num">At</th></tr></thead><tbody>'
      + (stops.length ? stops.map((s) => `<tr><td>${when(toMs(s.start))}</td><td class="num">${duration(s.duration_s)}</td>`
        + `<td>${label(s.status)}</td><td class="num">${km(s.at_m)}</td></tr>`).join('') : '<tr><td colspan="4">No stops yet.</td></tr>')
      + '</tbody>';
  }
  await charts[0].chart.show(from, to ?? Date.now());
}
