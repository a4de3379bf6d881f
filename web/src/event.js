// The event view: the course and every rider on the map, the standings, the race flow, the
// elevation profile and the checkpoints; live from the hub, or at any moment from history
// (the replay). Selecting a rider anywhere selects them everywhere.
import { Map, COLOURS, along } from './map.js';
import { Flow, Profile } from './charts.js';
import { STATUS, STALE_MS, ago, duration, el, eta, km, label, moment, toMs, when } from './format.js';
import { view } from './api.js';

const SPEEDS = [1, 10, 100, 1000, 10000];

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export async function eventView(root, { config, query, hub, title }) {
  const id = view.get('event');
  const [info, course, profile] = await Promise.all([
    query.get(`/v1/events/${encodeURIComponent(id)}`),
    query.get(`/v1/events/${encodeURIComponent(id)}/course`, { max_points: 4000 }),
    query.get(`/v1/events/${encodeURIComponent(id)}/profile`, { max_points: 1500 }),
  ]);
  title(info.name ?? id);
  const line = course.features.find((f) => f.geometry.type === 'LineString');
  const starts = (info.entrants ?? []).map((e) => toMs(e.start)).filter(Number.isFinite);
  const firstStart = starts.length ? Math.min(...starts) : Date.now() - 86_400_000;

  const ui = {
    map: el('div', { id: 'map', class: 'panel map', role: 'region', 'aria-label': 'map of the course and the riders' }),
    standings: el('table', { id: 'standings' }),
    asof: el('p', { class: 'asof' }),
    flow: el('div', { class: 'chart' }),
    profile: el('div', { class: 'chart' }),
    checkpoints: el('table', { id: 'checkpoints' }),
    selected: el('div', { id: 'selected', class: 'selected', 'aria-live': 'polite' }),
    slider: el('input', { type: 'range', id: 'replay-time', min: firstStart, max: Date.now(), step: 1000, 'aria-label': 'replay time' }),
    clock: el('output', { id: 'replay-clock', for: 'replay-time' }),
    play: el('button', { type: 'button', id: 'replay-play' }, 'Play'),
    speed: el('select', { id: 'replay-speed', 'aria-label': 'replay speed' },
      SPEEDS.map((s) => el('option', { value: s }, `${s.toLocaleString()}×`))),
    live: el('button', { type: 'button', id: 'replay-live' }, 'Live'),
  };
  root.replaceChildren(
    el('div', { class: 'event' },
      ui.map,
      el('section', { class: 'panel standings', 'aria-labelledby': 'h-standings' },
        el('h2', { id: 'h-standings' }, 'Standings'), ui.asof, ui.selected,
        el('div', { class: 'scroll', tabindex: 0, role: 'region', 'aria-label': 'standings table' }, ui.standings)),
      el('section', { class: 'panel replay', 'aria-label': 'replay' },
        ui.play, ui.speed, ui.slider, ui.clock, ui.live),
      el('section', { class: 'panel flow', 'aria-labelledby': 'h-flow' }, el('h2', { id: 'h-flow' }, 'Race flow'), ui.flow),
      el('section', { class: 'panel profile', 'aria-labelledby': 'h-profile' }, el('h2', { id: 'h-profile' }, 'Elevation'), ui.profile),
      el('section', { class: 'panel checkpoints', 'aria-labelledby': 'h-checkpoints' },
        el('h2', { id: 'h-checkpoints' }, 'Checkpoints'), el('div', { class: 'scroll', tabindex: 0, role: 'region', 'aria-label': 'checkpoints table' }, ui.checkpoints))));

  const map = new Map(ui.map, config);
  map.course(course);
  const flow = new Flow(ui.flow, (r) => select(r));
  const prof = new Profile(ui.profile, (r) => select(r));
  prof.set(profile.points);

  let rows = [];
  let byRider = new globalThis.Map();
  let asOf = null;
  let selected = view.get('select');
  let replay = view.get('at') ? Number(view.get('at')) || toMs(view.get('at')) : null;
  let dirty = false;

  function select(rider) {
    selected = selected === rider ? null : rider;
    view.set({ select: selected });
    paint();
  }

  // The table is made once; each paint rewrites only the rows whose text changed and moves
  // rows only when the order did: a thousand riders' progress every 10 s is a hundred rows
  // a second, not a thousand.
  ui.standings.innerHTML = '<caption class="visually-hidden">Standings</caption><thead><tr><th scope="col">#</th>'
    + '<th scope="col">Rider</th><th scope="col" class="num">Distance</th><th scope="col" class="num">Gap</th>'
    + '<th scope="col">Status</th><th scope="col">Last fix</th><th scope="col">Next checkpoint, ETA</th></tr></thead><tbody></tbody>';
  const tbody = ui.standings.querySelector('tbody');
  const shown = new globalThis.Map();
  let order = '';

  function cells(r, now) {
    const stale = r.last_fix != null && now - r.last_fix > STALE_MS;
    const next = r.next_checkpoint;
    return `<td class="rank">${r.rank ?? ''}</td>`
      + `<td class="name"><span class="swatch" style="background:${COLOURS[r.status] ?? '#999'}"></span>${esc(r.name)}</td>`
      + `<td class="num distance">${km(r.distance_m)}</td>`
      + `<td class="num gap">${r.rank === 1 ? '' : r.gap_s != null ? `+${duration(r.gap_s)}` : r.gap_m != null ? `−${km(r.gap_m)}` : ''}</td>`
      + `<td class="status">${label(r.status)}<small>${r.status_since ? ` since ${when(r.status_since)}` : ''}</small></td>`
      + `<td class="age${stale ? ' stale' : ''}">${ago(r.last_fix, now)}</td>`
      + `<td class="next">${next ? `${esc(next.name)} <small>${eta(next.eta)}</small>`
        : r.finished ? `finished <small>${when(toMs(r.finished))}</small>`
        : r.eta_finish ? `Finish <small>${eta(r.eta_finish)}</small>` : '–'}</td>`;
  }

  function paintTable() {
    const now = replay ?? Date.now();
    const present = new Set();
    for (const r of rows) {
      present.add(r.rider);
      let row = shown.get(r.rider);
      if (!row) {
        const tr = document.createElement('tr');
        tr.dataset.rider = r.rider;
        tr.tabIndex = 0;
        row = { tr, html: '' };
        shown.set(r.rider, row);
      }
      const html = cells(r, now);
      if (html !== row.html) {
        row.tr.innerHTML = html;
        row.html = html;
      }
      const fix = String(r.last_fix ?? '');
      if (row.tr.dataset.fix !== fix) row.tr.dataset.fix = fix;
      row.tr.classList.toggle('on', r.rider === selected);
    }
    for (const [rider, row] of shown) {
      if (!present.has(rider)) {
        row.tr.remove();
        shown.delete(rider);
      }
    }
    const current = rows.map((r) => r.rider).join('\n');
    if (current !== order) {
      // Only the rows out of place move: riders passing each other are a few moves.
      rows.forEach((r, i) => {
        const tr = shown.get(r.rider).tr;
        if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] ?? null);
      });
      order = current;
    }
    ui.asof.textContent = replay ? `Replay: as history held it at ${moment(replay)}` : asOf ? `As of ${moment(asOf)}` : '';
    ui.asof.classList.toggle('replaying', !!replay);
  }

  function paintSelected() {
    const r = rows.find((x) => x.rider === selected);
    if (!r) {
      ui.selected.replaceChildren();
      return;
    }
    const params = new URLSearchParams(location.search);
    params.set('rider', r.rider);
    params.delete('select');
    ui.selected.replaceChildren(
      el('strong', {}, r.name), ` ${r.rank ? `#${r.rank} · ` : ''}${km(r.distance_m)} · ${label(r.status)} · `,
      el('a', { href: `?${params}` }, 'follow this rider'));
  }

  let painted = { selected: undefined, at: 0 };
  let unranked = false;
  function paint() {
    dirty = false;
    painted.at = performance.now();
    if (unranked && !replay) rerank();
    unranked = false;
    paintTable();
    paintSelected();
    paintCheckpoints();
    const dots = [];
    for (const r of rows) {
      const pos = r.current_m != null ? along(line, r.current_m) : r.position;
      if (pos) map.dot(r.rider, pos, COLOURS[r.status] ?? '#999', `${r.name}: ${km(r.distance_m)}, ${label(r.status)}`, select);
      if (r.current_m != null) dots.push({ id: r.rider, m: r.current_m, colour: COLOURS[r.status] ?? '#999' });
    }
    prof.place(dots, selected);
    if (painted.selected !== selected) {
      map.select(selected);
      flow.select(selected);
      painted.selected = selected;
    }
  }

  /** Live frames come by the hundred a second: the page is drawn again at most once a second. */
  const later = () => {
    if (dirty) return;
    dirty = true;
    setTimeout(() => requestAnimationFrame(paint), Math.max(0, 1000 - (performance.now() - painted.at)));
  };

  ui.standings.addEventListener('click', (e) => {
    const row = e.target.closest('tr[data-rider]');
    if (row) select(row.dataset.rider);
  });
  ui.standings.addEventListener('keydown', (e) => {
    const row = e.target.closest('tr[data-rider]');
    if (row && (e.key === 'Enter' || e.key === ' ')) {
      e.preventDefault();
      select(row.dataset.rider);
    }
  });

  async function load(at) {
    const answer = await query.get(`/v1/events/${encodeURIComponent(id)}/standings`, { at: at ?? undefined });
    if (at !== replay) return;
    rows = answer.standings;
    byRider = new globalThis.Map(rows.map((r) => [r.rider, r]));
    asOf = answer.as_of;
    paint();
  }

  let arrivals = null;
  async function loadCheckpoints() {
    arrivals = await query.get(`/v1/events/${encodeURIComponent(id)}/checkpoints`);
    paintCheckpoints();
  }

  /** The checkpoints, with the arrivals made by the moment shown. */
  function paintCheckpoints() {
    if (!arrivals) return;
    const names = new globalThis.Map(rows.map((r) => [r.rider, r.name]));
    const all = [...arrivals.checkpoints, { ...arrivals.finish, name: 'Finish' }];
    const by = replay ?? Infinity;
    ui.checkpoints.innerHTML = '<caption class="visually-hidden">Checkpoints</caption><thead><tr>'
      + '<th scope="col">Checkpoint</th><th scope="col" class="num">At</th><th scope="col">Cut-off</th>'
      + '<th scope="col" class="num">Arrived</th><th scope="col">First</th><th scope="col">Selected rider</th></tr></thead><tbody>'
      + all.map((c) => {
        const arrived = c.arrivals.filter((a) => a.outcome === 'arrived' && toMs(a.time) <= by);
        const first = arrived[0];
        const mine = c.arrivals.find((a) => a.rider === selected && toMs(a.time) <= by);
        const cutoff = c.cutoff_at != null ? when(toMs(c.cutoff_at)) : c.cutoff_after_start_s != null ? `start + ${duration(c.cutoff_after_start_s)}` : '–';
        return `<tr><td>${esc(c.name)}</td><td class="num">${km(c.distance_m)}</td><td>${cutoff}</td>`
          + `<td class="num">${arrived.length}</td><td>${first ? `${esc(names.get(first.rider) ?? first.rider)} <small>${when(toMs(first.time))}</small>` : '–'}</td>`
          + `<td>${mine ? `${mine.outcome === 'arrived' ? when(toMs(mine.time)) : mine.outcome}${mine.late ? ' (late)' : ''}` : ''}</td></tr>`;
      }).join('') + '</tbody>';
  }

  async function loadFlow() {
    // A point per pixel column for a few riders; for a thousand, lines of 300 points are
    // already denser than the chart can show.
    const width = Math.max(100, Math.round(ui.flow.getBoundingClientRect().width));
    const budget = Math.round(300_000 / Math.max(1, (info.entrants ?? []).length));
    const answer = await query.get(`/v1/events/${encodeURIComponent(id)}/flow`, {
      from: firstStart, to: replay ?? undefined, max_points: Math.max(50, Math.min(width, budget, 2000)),
    });
    flow.set(answer, info.length_m ?? line.properties.distances_m.at(-1));
  }

  // Live: the hub's standings on subscribing, then each entrant's progress as it comes.
  hub.on('standings', (f) => {
    if (f.event !== id || replay) return;
    rows = f.standings;
    byRider = new globalThis.Map(rows.map((r) => [r.rider, r]));
    asOf = f.as_of;
    later();
  });
  hub.on('progress', (frame) => {
    if (frame.event !== id || replay) return;
    for (const reading of frame.readings) progress(reading);
    if (frame.readings.some((f) => f.metric === 'checkpoint')) loadCheckpoints().catch(() => {});
    later();
  });
  let flowGrew = false;
  /** One entrant's reading of progress, from the hub's `progress` frames. */
  function progress(f) {
    const r = byRider.get(f.rider);
    if (!r) return;
    const time = Date.parse(f.time);
    if (f.metric === 'course_progress') {
      if (r.last_fix != null && time < r.last_fix) return;
      Object.assign(r, {
        current_m: f.current_m, distance_m: f.progress_m, to_go_m: f.to_go_m, off_course: f.off_course === 1,
        last_fix: time, status: STATUS[f.status] ?? r.status,
      });
      const ms = (s) => (s == null ? null : s * 1000);
      if (r.next_checkpoint && f.eta_next_p50 != null) {
        r.next_checkpoint.eta = { p10: ms(f.eta_next_p10), p50: ms(f.eta_next_p50), p90: ms(f.eta_next_p90) };
      }
      if (f.eta_finish_p50 != null) {
        r.eta_finish = { p10: ms(f.eta_finish_p10), p50: ms(f.eta_finish_p50), p90: ms(f.eta_finish_p90) };
      }
      unranked = true;
      flowGrew = flow.extend(f.rider, time, f.progress_m) || flowGrew;
    } else if (f.metric === 'course_status' && f.status !== 7) {
      r.status = STATUS[f.status] ?? r.status;
      r.status_since = time;
    }
    asOf = Math.max(asOf ?? 0, time);
  }
  hub.subscribe({ events: [id] });

  /** Ranks as the hub's followers keep them: finishers first, then by distance. */
  function rerank() {
    const finished = rows.filter((r) => r.status === 'finished' && r.rank != null).sort((a, b) => a.rank - b.rank);
    const racing = rows.filter((r) => !finished.includes(r) && r.rank != null).sort((a, b) => b.distance_m - a.distance_m);
    const rest = rows.filter((r) => r.rank == null);
    const leader = finished[0] ?? racing[0];
    [...finished, ...racing].forEach((r, i) => {
      r.rank = i + 1;
      r.gap_m = leader ? Math.max(0, leader.distance_m - r.distance_m) : null;
    });
    rows = [...finished, ...racing, ...rest];
  }

  // The replay: a moment of history, moved by the slider or played at a speed.
  let playing = null;
  function setReplay(at) {
    replay = at;
    view.set({ at: at ?? null });
    ui.slider.value = at ?? Date.now();
    ui.clock.textContent = at ? moment(at) : 'live';
    ui.live.disabled = !at;
  }
  function goLive() {
    stop();
    setReplay(null);
    load(null).catch(report);
    loadFlow().catch(report);
  }
  let fetching = false;
  async function seek(at) {
    setReplay(at);
    if (fetching) return;
    fetching = true;
    try {
      await load(at);
    } catch (e) {
      report(e);
    } finally {
      fetching = false;
    }
  }
  function stop() {
    clearInterval(playing);
    playing = null;
    ui.play.textContent = 'Play';
  }
  ui.slider.addEventListener('input', () => seek(Number(ui.slider.value)));
  ui.speed.addEventListener('change', () => view.set({ speed: ui.speed.value }));
  ui.speed.value = view.get('speed') ?? '100';
  ui.live.addEventListener('click', goLive);
  ui.play.addEventListener('click', () => {
    if (playing) return stop();
    let at = replay ?? firstStart;
    let last = performance.now();
    ui.play.textContent = 'Pause';
    playing = setInterval(() => {
      const now = performance.now();
      at = Math.min(Date.now() - 1000, at + (now - last) * Number(ui.speed.value));
      last = now;
      seek(Math.round(at));
      if (at >= Date.now() - 1000) goLive();
    }, 250);
  });

  function report(e) {
    ui.asof.textContent = `Could not load: ${e.message}`;
  }

  setReplay(replay);
  await load(replay);
  await Promise.all([loadCheckpoints(), loadFlow()]).catch(report);
  // The live standings' gaps and ETAs come from the history: asked again now and then. The
  // race flow grows from the live progress, drawn again as often (a thousand lines).
  setInterval(() => {
    if (replay) {
      loadFlow().catch(report);
      return;
    }
    load(null).catch(report);
    if (flowGrew) flow.redraw();
    flowGrew = false;
  }, 30_000);
  setInterval(() => replay || paintTable(), 5_000);
}
