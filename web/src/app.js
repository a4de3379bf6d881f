// The spectator page: one bundle, three views chosen by the URL (`?event=`, `?rider=`, or
// neither for the list), talking only to the public APIs: the query service over HTTP and
// the stream hub's live WebSocket.
import 'leaflet/dist/leaflet.css';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { Hub, Query, view } from './api.js';
import { eventView } from './event.js';
import { riderView } from './rider.js';
import { homeView } from './home.js';
import { el } from './format.js';

const config = JSON.parse(document.getElementById('config').textContent);
const token = view.get('token');
const status = document.getElementById('status');
const STATUS_TEXT = { connecting: 'connecting…', live: 'live', down: 'connection lost: reconnecting…' };

const hub = new Hub(token, (state) => {
  status.textContent = STATUS_TEXT[state];
  status.className = state;
  document.body.dataset.connection = state;
});
const query = new Query(config.query_url ?? '', token);
const title = (text) => {
  document.getElementById('title').textContent = text;
  document.title = `${text} · velometry`;
};

const root = document.getElementById('view');
const chosen = view.get('rider') ? riderView : view.get('event') ? eventView : homeView;
chosen(root, { config, query, hub, title })
  .then(() => {
    // The moment the view is drawn, for the page benchmark (lab/src/bench/page.rs).
    performance.mark('velometry:ready');
    document.body.dataset.ready = 'yes';
  })
  .catch((e) => {
    const message = /\b40[13]\b|private/.test(e.message)
      ? `${e.message}. This is private: open the link you were given with its viewer token (…&token=…).`
      : e.message;
    root.replaceChildren(el('p', { class: 'panel error', role: 'alert' }, message));
    document.body.dataset.ready = 'error';
  });
