// A repository and its version tags: kind, size, push time, platforms, signatures and SBOMs, paged.

import * as api from '../api.js';
import { bytes, h, kindSelect, pager, path, section, shortDigest, table, when } from '../dom.js';
import { attachmentBadges, breadcrumbs, filterForm, kinds, manifestHref, ui } from './common.js';

const PAGE = 50;

export default async function repository({ name }) {
  const query = new URLSearchParams(location.search);
  const filters = { name: query.get('name'), kind: query.get('kind'), sort: query.get('sort') };
  const resource = `repositories/${path(name)}`;
  const [detail, tags] = await Promise.all([
    api.get(resource),
    api.get(`${resource}/-/tags`, { ...filters, limit: query.get('limit') || PAGE, cursor: query.get('cursor') }),
  ]);
  const latest = detail.kinds.includes('helm-chart')
    ? (await api.get(`charts/${path(name)}/-/versions`, { limit: 1 })).items[0] : null;
  return {
    title: name,
    content: [
      breadcrumbs(detail.namespace, name.split('/').pop()),
      h('h1', null, name),
      h('p', { class: 'facts' }, kinds(detail.kinds), ` ${detail.tag_count} tag${detail.tag_count === 1 ? '' : 's'}, `,
        bytes(detail.size_bytes), ', last push ', when(detail.last_pushed_at)),
      latest && h('p', null, h('a', { href: ui('charts', name, latest.version), class: 'button' },
        `Chart ${latest.name} ${latest.version} (latest)`)),
      section('Tags', 'tags',
        filterForm(ui('repositories', name), 'Filter tags',
          [h('label', { for: 'tag-name' }, 'Tag starts with'),
            h('input', { id: 'tag-name', name: 'name', type: 'search', value: filters.name || '', maxlength: 128 })],
          kindSelect('tag-kind', filters.kind),
          [h('label', { for: 'tag-sort' }, 'Order'),
            h('select', { id: 'tag-sort', name: 'sort' }, h('option', { value: 'name' }, 'by name'),
              h('option', { value: '-pushed', selected: filters.sort === '-pushed' }, 'newest push first'))]),
        tags.items.length
          ? table(`Tags of ${name}`, ['Tag', 'Kind', 'Version', 'Size', 'Pushed', 'Platforms', 'Attached', 'Digest'],
            tags.items.map((t) => [
              h('a', { href: manifestHref(name, t) }, t.name),
              kinds([t.kind]),
              t.chart ? [t.chart.version, t.chart.app_version ? h('span', { class: 'muted' }, ` app ${t.chart.app_version}`) : ''] : '',
              bytes(t.size_bytes),
              when(t.pushed_at),
              t.platforms.length ? h('ul', { class: 'inline' }, t.platforms.map((p) => h('li', null, p))) : '',
              attachmentBadges(t),
              shortDigest(t.digest),
            ]))
          : h('p', { class: 'empty' }, 'No tags match.'),
        pager(tags.next_cursor)),
    ],
  };
}
