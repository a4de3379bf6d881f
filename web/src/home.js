// The start page: the events and riders this visitor may follow.
import { el } from './format.js';

export async function homeView(root, { query, title }) {
  title('Follow a ride');
  const token = new URLSearchParams(location.search).get('token');
  const link = (params) => `?${new URLSearchParams({ ...params, ...(token ? { token } : {}) })}`;
  const [{ events }, riders] = await Promise.all([query.get('/v1/events'), query.get('/v1/riders')]);
  root.replaceChildren(el('div', { class: 'home' },
    el('section', { class: 'panel', 'aria-labelledby': 'h-events' }, el('h2', { id: 'h-events' }, 'Events'),
      events.length ? el('ul', {}, events.map((e) => el('li', {}, el('a', { href: link({ event: e.id }) }, e.name),
        ` · ${e.entrants} riders · ${(e.length_m / 1000).toFixed(0)} km`))) : el('p', {}, 'No events to follow.')),
    el('section', { class: 'panel', 'aria-labelledby': 'h-riders' }, el('h2', { id: 'h-riders' }, 'Riders'),
      riders.length ? el('ul', {}, riders.map((r) => el('li', {}, el('a', { href: link({ rider: r.id }) }, r.name)))) : el('p', {}, 'No riders to follow.'))));
}
