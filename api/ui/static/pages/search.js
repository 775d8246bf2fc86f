// Search across everything the reader may see, ranked, with kind and namespace facets that narrow it.

import * as api from '../api.js';
import { h, kindSelect, pager, when } from '../dom.js';
import { upgradeBadge } from '../upgrade.js';
import { kinds, ui } from './common.js';

const PAGE = 25;

function searchForm(q, kind, namespace) {
  return h('form', { class: 'search', role: 'search', action: ui('search'), method: 'get' },
    h('div', { class: 'field grow' }, h('label', { for: 'search-q' }, 'Search'),
      h('input', { id: 'search-q', name: 'q', type: 'search', value: q || '', required: true, maxlength: 200,
        placeholder: 'name, description, keyword, maintainer' })),
    h('div', { class: 'field' }, kindSelect('search-kind', kind)),
    namespace ? h('input', { type: 'hidden', name: 'namespace', value: namespace }) : null,
    h('button', { type: 'submit' }, 'Search'));
}

/** A count, or a lower bound past which the API stopped counting ("1,000+"). */
function counted(count, estimate) {
  return estimate ? `${count.toLocaleString('en')}+` : count.toLocaleString('en');
}

/** One facet as links: each narrows the search to its value (or widens it again), keeping the other filters.
 * Past the API's count bound, facets are counted over the first hits, and the facet says so. */
function facet(title, param, counts, active, estimate) {
  const href = (value) => {
    const next = new URLSearchParams(location.search);
    next.delete('cursor');
    if (value == null) next.delete(param);
    else next.set(param, value);
    return `${ui('search')}?${next}`;
  };
  return h('section', { class: 'facet', 'aria-label': title }, h('h2', null, title),
    estimate ? h('p', { class: 'count' }, 'counted over the first hits') : null, h('ul', null,
    active ? h('li', null, h('a', { href: href(null) }, `any ${param}`)) : null,
    counts.map(({ value, count }) => h('li', null, value === active
      ? h('strong', { 'aria-current': 'true' }, value || '(top level)', ` ${count}`)
      : h('a', { href: href(value) }, value || '(top level)', h('span', { class: 'count' }, ` ${count}`))))));
}

function hit(item) {
  const href = item.chart_version ? ui('charts', item.name, item.chart_version) : ui('repositories', item.name);
  return h('li', { class: 'hit' },
    h('h3', null, h('a', { href }, item.name)),
    h('p', { class: 'facts' }, kinds(item.kinds),
      item.chart_version ? ` chart ${item.chart_version}` : '', item.app_version ? ` · app ${item.app_version}` : '',
      ' · updated ', when(item.updated_at), item.upgrade ? [' ', upgradeBadge(item.upgrade)] : ''),
    item.title && item.title !== item.name.split('/').pop() ? h('p', null, item.title) : null,
    item.description ? h('p', { class: 'description' }, item.description) : null);
}

export default async function search() {
  const query = new URLSearchParams(location.search);
  const q = query.get('q');
  const kind = query.get('kind');
  const namespace = query.get('namespace');
  if (!q) return { title: 'Search', content: [h('h1', null, 'Search'), searchForm(null, kind, namespace)] };
  const result = await api.get('search', { q, kind, namespace, limit: query.get('limit') || PAGE, cursor: query.get('cursor') });
  return {
    title: `${q} · Search`,
    content: [
      h('h1', null, 'Search'),
      searchForm(q, kind, namespace),
      h('div', { class: 'search-layout' },
        h('aside', { class: 'facets', 'aria-label': 'Narrow the search' },
          facet('Kind', 'kind', result.facets.kind, kind, result.facets.estimate),
          facet('Namespace', 'namespace', result.facets.namespace, namespace, result.facets.estimate)),
        h('div', { class: 'results' },
          result.items.length ? h('p', { class: 'total' },
            `${counted(result.total.count, result.total.estimate)} ${result.total.count === 1 ? 'hit' : 'hits'}`) : null,
          result.items.length
            ? h('ol', { class: 'hits', 'aria-label': 'Results' }, result.items.map(hit))
            : h('p', { class: 'empty' }, `Nothing matches “${q}”.`),
          pager(result.next_cursor))),
    ],
  };
}
