// The charts: the race flow and the elevation profile on a canvas of their own (a line per
// rider, a thousand of them, is one path each), and uPlot for a rider's time series.
import uPlot from 'uplot';
import { km, when } from './format.js';

/** A canvas that fills `node` and redraws on resize at the screen's pixel density. */
class Canvas {
  constructor(node, label, draw) {
    this.canvas = document.createElement('canvas');
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', label);
    node.append(this.canvas);
    this.node = node;
    this.draw = draw;
    new ResizeObserver(() => this.redraw()).observe(node);
  }

  /** Calls `onPick` with the id of the mark nearest a click, within 12 pixels: `marks()`
   * gives `[id, x, y]` in the canvas's CSS pixels. */
  pickOn(onPick, marks) {
    this.canvas.addEventListener('click', (e) => {
      if (!this.x) return;
      const r = this.canvas.getBoundingClientRect();
      const px = e.clientX - r.left, py = e.clientY - r.top;
      let best = null, bestD = 12;
      for (const [id, x, y] of marks()) {
        const d = Math.hypot(x - px, y - py);
        if (d < bestD) [best, bestD] = [id, d];
      }
      if (best) onPick(best);
    });
  }

  redraw() {
    const { width, height } = this.node.getBoundingClientRect();
    if (!width || !height) return;
    const ratio = devicePixelRatio || 1;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    const g = this.canvas.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = '11px system-ui, sans-serif';
    this.draw(g, width, height);
  }
}

const PAD = { left: 52, right: 12, top: 10, bottom: 24 };

/** Round steps (1, 2 or 5 × 10ⁿ) covering `min`–`max` in about `count` ticks. */
export function ticks(min, max, count = 4) {
  const raw = (max - min) / count || 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(v);
  return out;
}

function axes(g, w, h, x, y, xLabel, yLabel, xTicks) {
  g.strokeStyle = '#c8ced6';
  g.fillStyle = '#4b5563';
  g.lineWidth = 1;
  g.beginPath();
  g.moveTo(PAD.left, PAD.top);
  g.lineTo(PAD.left, h - PAD.bottom);
  g.lineTo(w - PAD.right, h - PAD.bottom);
  g.stroke();
  const yy = scale(y.min, y.max, h - PAD.bottom, PAD.top);
  g.textAlign = 'right';
  for (const v of ticks(y.min, y.max)) g.fillText(yLabel(v), PAD.left - 4, yy(v) + 4);
  const xx = scale(x.min, x.max, PAD.left, w - PAD.right);
  g.textAlign = 'center';
  for (const u of xTicks ?? ticks(x.min, x.max, Math.max(1, Math.floor((w - PAD.left - PAD.right) / 90)))) {
    g.fillText(xLabel(u), xx(u), h - 6);
  }
}

/** Times on round minutes or hours, one every 110 pixels or so. */
function timeTicks(min, max, w) {
  const want = (max - min) / Math.max(1, Math.floor((w - PAD.left - PAD.right) / 110));
  const steps = [5, 10, 15, 30, 60, 120, 180, 360, 720, 1440].map((m) => m * 60_000);
  const step = steps.find((s) => s >= want) ?? Math.ceil(want / 86_400_000) * 86_400_000;
  const zone = new Date(min).getTimezoneOffset() * 60_000;
  const out = [];
  for (let t = Math.ceil((min - zone) / step) * step + zone; t <= max; t += step) out.push(t);
  return out;
}

const scale = (min, max, a, b) => (v) => a + ((v - min) / (max - min || 1)) * (b - a);

/** Distance along the course against time, every rider; the selected one on top, thick. */
export class Flow extends Canvas {
  constructor(node, onPick) {
    super(node, 'race flow: distance along the course against time, every rider', (g, w, h) => this.paint(g, w, h));
    this.flows = [];
    this.selected = null;
    // The rider whose line passes nearest the click.
    this.pickOn(onPick, () => this.flows.flatMap((f) => f.points.map(([t, m]) => [f.rider, this.x(t), this.y(m)])));
  }

  set(flow, lengthM) {
    this.flows = flow.riders;
    this.byRider = new globalThis.Map(this.flows.map((f) => [f.rider, f]));
    this.bucket = flow.bucket_ms;
    this.range = { min: flow.from, max: flow.to };
    this.length = lengthM;
    this.redraw();
  }

  /** Adds a rider's live progress to their line, a point per bucket of the answer at most
   * (as dense as the history it extends), without drawing: says whether it grew. */
  extend(rider, time, metres) {
    const f = this.byRider?.get(rider);
    if (!f || !this.range || time <= this.range.min) return false;
    const last = f.points.at(-1);
    if (last && (metres <= last[1] || time - last[0] < this.bucket)) return false;
    f.points.push([time, metres]);
    this.range.max = Math.max(this.range.max, time);
    return true;
  }

  select(id) {
    this.selected = id;
    this.redraw();
  }

  paint(g, w, h) {
    if (!this.range) return;
    const x = scale(this.range.min, this.range.max, PAD.left, w - PAD.right);
    const y = scale(0, this.length, h - PAD.bottom, PAD.top);
    axes(g, w, h, this.range, { min: 0, max: this.length }, when, km, timeTicks(this.range.min, this.range.max, w));
    this.x = x;
    this.y = y;
    const line = (points) => {
      g.beginPath();
      points.forEach(([t, m], i) => (i ? g.lineTo(x(t), y(m)) : g.moveTo(x(t), y(m))));
      g.stroke();
    };
    g.lineWidth = 1;
    g.strokeStyle = 'rgba(15, 76, 129, 0.35)';
    for (const f of this.flows) if (f.rider !== this.selected) line(f.points);
    const chosen = this.flows.find((f) => f.rider === this.selected);
    if (chosen) {
      g.lineWidth = 3;
      g.strokeStyle = '#d9480f';
      line(chosen.points);
    }
  }
}

/** The course's elevation profile with every rider as a dot at their distance. */
export class Profile extends Canvas {
  constructor(node, onPick) {
    super(node, 'elevation profile of the course with the riders along it', (g, w, h) => this.paint(g, w, h));
    this.points = [];
    this.riders = [];
    this.pickOn(onPick, () => this.riders.map((r) => [r.id, this.x(r.m), this.y(this.elevation(r.m))]));
  }

  set(points) {
    this.points = points;
    this.redraw();
  }

  /** `riders`: [{id, m, colour}] */
  place(riders, selected) {
    this.riders = riders;
    this.selected = selected;
    this.redraw();
  }

  elevation(m) {
    const p = this.points;
    if (!p.length) return 0;
    let lo = 0, hi = p.length - 1;
    if (m <= p[0][0]) return p[0][1];
    if (m >= p[hi][0]) return p[hi][1];
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (p[mid][0] <= m) lo = mid; else hi = mid;
    }
    const t = (m - p[lo][0]) / (p[hi][0] - p[lo][0] || 1);
    return p[lo][1] + t * (p[hi][1] - p[lo][1]);
  }

  paint(g, w, h) {
    const p = this.points;
    if (!p.length) {
      g.fillStyle = '#6b7280';
      g.fillText('The course file has no elevation.', PAD.left, h / 2);
      return;
    }
    const xs = { min: 0, max: p[p.length - 1][0] };
    let lo = Infinity, hi = -Infinity;
    for (const [, e] of p) [lo, hi] = [Math.min(lo, e), Math.max(hi, e)];
    const ys = { min: Math.floor(lo / 50) * 50, max: Math.ceil((hi + 1) / 50) * 50 };
    const x = scale(xs.min, xs.max, PAD.left, w - PAD.right);
    const y = scale(ys.min, ys.max, h - PAD.bottom, PAD.top);
    this.x = x;
    this.y = y;
    axes(g, w, h, xs, ys, km, (v) => `${Math.round(v)} m`);
    g.beginPath();
    g.moveTo(x(p[0][0]), h - PAD.bottom);
    for (const [m, e] of p) g.lineTo(x(m), y(e));
    g.lineTo(x(p[p.length - 1][0]), h - PAD.bottom);
    g.closePath();
    g.fillStyle = '#dbe4ee';
    g.fill();
    g.strokeStyle = '#0f4c81';
    g.lineWidth = 1.5;
    g.stroke();
    const order = [...this.riders].sort((a, b) => (a.id === this.selected) - (b.id === this.selected));
    for (const r of order) {
      const on = r.id === this.selected;
      g.beginPath();
      g.arc(x(r.m), y(this.elevation(r.m)), on ? 7 : 4, 0, 2 * Math.PI);
      g.fillStyle = r.colour;
      g.fill();
      g.lineWidth = on ? 2.5 : 1;
      g.strokeStyle = on ? '#000' : '#fff';
      g.stroke();
    }
  }
}

/**
 * A rider's time series: uPlot, asking `load(from, to, width)` again at the chart's pixel
 * width for every zoom (drag to zoom in, double-click to zoom out), so what it draws is
 * what the raw data would draw (M4).
 */
export class Series {
  constructor(node, { label, unit, colour, load, onRange }) {
    this.node = node;
    this.load = load;
    this.onRange = onRange;
    this.home = null;
    this.plot = new uPlot(
      {
        width: Math.max(200, node.clientWidth),
        height: 160,
        cursor: { drag: { x: true, y: false } },
        legend: { show: false },
        scales: { x: { time: true } },
        axes: [{}, { label: unit, size: 56 }],
        series: [{}, { label, stroke: colour, width: 1.5, points: { show: false } }],
        hooks: {
          // A chart that changes width asks again, for as many points as it now has pixels.
          setSize: [() => {
            if (!this.range || Math.abs(this.width() - this.asked) <= 1) return;
            clearTimeout(this.again);
            this.again = setTimeout(() => this.show(...this.range), 250);
          }],
          setSelect: [(u) => {
            if (u.select.width < 3) return;
            const from = u.posToVal(u.select.left, 'x') * 1000;
            const to = u.posToVal(u.select.left + u.select.width, 'x') * 1000;
            u.setSelect({ width: 0, height: 0 }, false);
            this.show(from, to);
          }],
        },
      },
      [[], []],
      node,
    );
    node.addEventListener('dblclick', () => this.home && this.show(this.home[0], this.home[1]));
    new ResizeObserver(() => this.plot.setSize({ width: Math.max(200, node.clientWidth), height: 160 })).observe(node);
  }

  /** The plot area's width in pixels: the point budget of a request. */
  width() {
    return Math.max(10, Math.round(this.plot.bbox.width / (devicePixelRatio || 1)));
  }

  async show(from, to) {
    this.home ??= [from, to];
    this.range = [from, to];
    this.asked = this.width();
    const points = await this.load(Math.round(from), Math.round(to), this.asked);
    this.plot.setData([points.map((p) => p[0] / 1000), points.map((p) => p[1])]);
    this.plot.setScale('x', { min: from / 1000, max: to / 1000 });
    this.onRange?.(from, to);
  }

  /** A live value: appended while the chart shows up to now. */
  push(ms, value) {
    if (!this.range || ms < this.range[0]) return;
    const [xs, ys] = this.plot.data;
    if (xs.length && ms / 1000 <= xs[xs.length - 1]) return;
    this.plot.setData([[...xs, ms / 1000], [...ys, value]]);
    if (ms > this.range[1]) this.range[1] = ms;
    this.plot.setScale('x', { min: this.range[0] / 1000, max: this.range[1] / 1000 });
  }
}
