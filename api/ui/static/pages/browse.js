// Browse by path: the namespaces below one, and every repository in it and below, filtered and paged.

import * as api from '../api.js';
import { bytes, h, kindSelect, pager, section, table, when } from '../dom.js';
import { breadcrumbs, filterForm, kinds, ui } from './common.js';

const PAGE = 50;

export default async function browse({ namespace }) {
  const query = new URLSearchParams(location.search);
  const filters = { kind: query.get('kind'), q: query.get('q'), sort: query.get('sort') };
  const limit = query.get('limit') || PAGE;
  const [children, repositories] = await Promise.all([
    api.get('namespaces', { namespace, limit: 100, cursor: query.get('ncursor') }),
    api.get('repositories', { namespace, ...filters, limit, cursor: query.get('cursor') }),
  ]);
  const title = namespace || 'All namespaces';
  const action = namespace ? ui('namespaces', namespace) : ui();
  return {
    title,
    content: [
      breadcrumbs(namespace ? namespace.split('/').slice(0, -1).join('/') : null, namespace ? namespace.split('/').pop() : null),
      h('h1', null, title),
      children.items.length ? section('Namespaces', 'namespaces',
        h('ul', { class: 'chips' }, children.items.map((ns) => h('li', null,
          h('a', { href: ui('namespaces', ns.name) }, namespace ? ns.name.slice(namespace.length + 1) : ns.name)))),
        pager(children.next_cursor, 'ncursor')) : null,
      section(namespace ? `Repositories in ${namespace}` : 'Repositories', 'repositories',
        filterForm(action, 'Filter repositories',
          [h('label', { for: 'filter-q' }, 'Name or text'),
            h('input', { id: 'filter-q', name: 'q', type: 'search', value: filters.q || '', maxlength: 200 })],
          kindSelect('filter-kind', filters.kind),
          [h('label', { for: 'filter-sort' }, 'Order'),
            h('select', { id: 'filter-sort', name: 'sort' },
              h('option', { value: 'name' }, 'by name'),
              h('option', { value: '-updated', selected: filters.sort === '-updated' }, 'recently updated first'))]),
        repositories.items.length
          ? table('Repositories', ['Repository', 'Kinds', 'Tags', 'Size', 'Updated'], repositories.items.map((r) => [
            h('a', { href: ui('repositories', r.name) }, r.name), kinds(r.kinds), String(r.tag_count), bytes(r.size_bytes),
            when(r.updated_at)]))
          : h('p', { class: 'empty' }, 'No repositories match.'),
        pager(repositories.next_cursor)),
    ],
  };
}
