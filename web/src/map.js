// The map: Leaflet with tiles from the configured URL template, or none at all (a plain
// background, for offline use and tests). Riders are drawn on one canvas, so a thousand
// dots cost one layer.
import L from 'leaflet';

export const COLOURS = {
  riding: '#1a7f37', stopped: '#b7791f', resting: '#d9480f', sleeping: '#6f42c1',
  no_signal: '#6b7280', finished: '#1d4ed8', scratched: '#b91c1c', not_started: '#9ca3af',
};

export class Map {
  constructor(node, config) {
    this.map = L.map(node, { preferCanvas: true, zoomSnap: 0.25, attributionControl: true });
    this.renderer = L.canvas({ padding: 0.3 });
    if (config.tile_url) {
      L.tileLayer(config.tile_url, { maxZoom: 19, attribution: config.tile_attribution }).addTo(this.map);
    } else {
      node.classList.add('no-tiles');
      this.map.attributionControl.addAttribution('no map tiles');
    }
    this.dots = new globalThis.Map();
    this.fitted = false;
    // The page's layout settles after the map is made: keep Leaflet's idea of its size true,
    // and what it was fitted to in view.
    new ResizeObserver(() => {
      this.map.invalidateSize(false);
      if (this.bounds) this.map.fitBounds(this.bounds, { padding: [20, 20], maxZoom: 15, animate: false });
    }).observe(node);
  }

  /** The course (a GeoJSON FeatureCollection from the query service) and its checkpoints. */
  course(geojson) {
    const line = geojson.features.find((f) => f.geometry.type === 'LineString');
    if (!line) return;
    const latlngs = line.geometry.coordinates.map(([lon, lat]) => [lat, lon]);
    this.courseLine = L.polyline(latlngs, { color: '#0f4c81', weight: 4, opacity: 0.75, renderer: this.renderer })
      .addTo(this.map);
    for (const f of geojson.features.filter((g) => g.geometry.type === 'Point')) {
      const [lon, lat] = f.geometry.coordinates;
      L.circleMarker([lat, lon], { radius: 6, color: '#111', weight: 2, fillColor: '#fff', fillOpacity: 1, renderer: this.renderer })
        .bindTooltip(f.properties.name)
        .addTo(this.map);
    }
    // The start and the finish, black in a white ring (checkpoints are white, riders coloured
    // by status): one mark when the course ends where it starts.
    const [start, finish] = [latlngs[0], latlngs.at(-1)];
    const ends = this.map.distance(start, finish) < 50
      ? [[start, 'Start and finish']]
      : [[start, 'Start'], [finish, 'Finish']];
    for (const [at, name] of ends) {
      L.circleMarker(at, { radius: 8, color: '#fff', weight: 3, fillColor: '#111', fillOpacity: 1, renderer: this.renderer })
        .bindTooltip(name)
        .addTo(this.map);
    }
    this.fit(this.courseLine.getBounds());
  }

  fit(bounds) {
    if (bounds.isValid()) {
      this.bounds = bounds;
      this.map.fitBounds(bounds, { padding: [20, 20], maxZoom: 15 });
    }
    this.fitted = true;
  }

  /** Places (or moves) a rider's dot; `selected` rings it. */
  dot(id, latlng, colour, title, onClick) {
    let dot = this.dots.get(id);
    if (!dot) {
      dot = L.circleMarker(latlng, { radius: 6, weight: 1.5, color: '#fff', fillOpacity: 0.95, renderer: this.renderer });
      dot.bindTooltip(title);
      dot.on('click', () => onClick(id));
      dot.addTo(this.map);
      this.dots.set(id, dot);
    } else {
      const at = dot.getLatLng();
      if (at.lat !== latlng[0] || at.lng !== latlng[1]) dot.setLatLng(latlng);
      if (dot.title !== title) dot.setTooltipContent(title);
    }
    dot.title = title;
    // Each change redraws the canvas: only what changed is changed.
    if (dot.options.fillColor !== colour) dot.setStyle({ fillColor: colour });
    return dot;
  }

  select(id) {
    for (const [key, dot] of this.dots) {
      const on = key === id;
      dot.setStyle({ radius: on ? 10 : 6, color: on ? '#000' : '#fff', weight: on ? 3 : 1.5 });
      if (on) dot.bringToFront();
    }
  }

  /** Positions in `[lat, lon]` pairs as one line (a rider's trail). */
  trail(latlngs) {
    if (!this.trailLine) {
      this.trailLine = L.polyline(latlngs, { color: '#d9480f', weight: 3, renderer: this.renderer }).addTo(this.map);
    } else {
      this.trailLine.setLatLngs(latlngs);
    }
    if (!this.fitted && latlngs.length) this.fit(this.trailLine.getBounds());
  }

  /** Shows the whole trail. */
  fitTrail() {
    if (this.trailLine) this.fit(this.trailLine.getBounds());
  }
}

/** Where along a course (a LineString with `properties.distances_m`) `m` metres fall. */
export function along(line, m) {
  const coords = line.geometry.coordinates;
  const d = line.properties.distances_m;
  if (!coords.length) return null;
  let lo = 0, hi = d.length - 1;
  if (m <= d[0]) return [coords[0][1], coords[0][0]];
  if (m >= d[hi]) return [coords[hi][1], coords[hi][0]];
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (d[mid] <= m) lo = mid; else hi = mid;
  }
  const t = (m - d[lo]) / (d[hi] - d[lo] || 1);
  return [coords[lo][1] + t * (coords[hi][1] - coords[lo][1]), coords[lo][0] + t * (coords[hi][0] - coords[lo][0])];
}
