// Two versions of a chart compared: the upgrade report first, then everything that differs, part by part.
// A deep link: /ui/charts/<name>/-/compare?from=<version>&to=<version>; the pickers change the query.

import * as api from '../api.js';
import { h, path, section, table } from '../dom.js';
import { changeList, diffBlock, reportList, shortJson } from '../upgrade.js';
import { breadcrumbs, filterForm, ui } from './common.js';

const VERSIONS = 500; // the pickers' choice: a chart's newest versions, in SemVer order

const show = (value) => (value == null ? '' : h('code', null, shortJson(value)));

function picker(id, label, name, versions, selected) {
  return [h('label', { for: id }, label), h('select', { id, name },
    versions.map((v) => h('option', { value: v.version, selected: v.version === selected }, v.version)))];
}

function files(title, id, list, what) {
  if (!list.length) return section(title, id, h('p', { class: 'empty' }, `No ${what} changed.`));
  return section(title, id, list.map((f) => h('details', { class: 'file-change', open: f.status === 'changed' && !!f.diff },
    h('summary', null, h('code', null, f.path), ` ${f.status}`, f.truncated ? ' (contents cut at the size cap)' : ''),
    f.fields?.length ? h('p', null, 'Changed fields: ', f.fields.map((x, i) => [i ? ', ' : '', h('code', null, x)])) : null,
    f.diff ? diffBlock(f.diff, `Diff of ${f.path}`) : null)));
}

function values(v) {
  const parts = [];
  if (v.removed.length) parts.push(table('Removed keys', ['Path', 'Default', 'Comment'], v.removed.map((x) => [h('code', null, x.path), show(x.value), x.comment || ''])));
  if (v.renamed.length) parts.push(table('Renamed keys', ['From', 'To', 'Default'], v.renamed.map((x) => [h('code', null, x.from), h('code', null, x.to), show(x.value)])));
  if (v.changed.length) parts.push(table('Changed defaults', ['Path', 'From', 'To'], v.changed.map((x) => [h('code', null, x.path), show(x.from), show(x.to)])));
  if (v.added.length) parts.push(table('Added keys', ['Path', 'Default', 'Comment'], v.added.map((x) => [h('code', null, x.path), show(x.value), x.comment || ''])));
  return parts.length ? parts : h('p', { class: 'empty' }, 'The default values are the same.');
}

function schema(s) {
  const rows = [
    ...s.required.map((x) => [h('code', null, x.path), x.new ? 'new and required' : 'now required']),
    ...s.type_changed.map((x) => [h('code', null, x.path), ['type ', show(x.from), ' → ', show(x.to)]]),
    ...s.enum_changed.map((x) => [h('code', null, x.path), ['allowed values ', show(x.from), ' → ', show(x.to)]]),
    ...s.removed.map((x) => [h('code', null, x.path), 'removed']),
    ...s.added.filter((x) => !x.required).map((x) => [h('code', null, x.path), 'added']),
  ];
  return [
    s.invalid ? h('p', { class: 'problem' }, `The new values schema is not valid JSON Schema: ${s.invalid}`) : null,
    rows.length ? table('Schema changes', ['Property', 'Change'], rows) : h('p', { class: 'empty' }, 'The values schema describes the same properties.'),
  ];
}

export default async function compare({ name }) {
  const query = new URLSearchParams(location.search);
  const listing = api.get(`charts/${path(name)}/-/versions`, { limit: VERSIONS });
  // A deep link names both versions: the comparison is asked for at once, beside the pickers' list.
  const given = query.get('from') && query.get('to') ? { from: query.get('from'), to: query.get('to') } : null;
  const asked = given && api.get(`charts/${path(name)}/-/compare`, given);
  const versions = (await listing).items;
  const to = query.get('to') || versions[0]?.version;
  const from = query.get('from') || versions[1]?.version || to;
  const c = await (asked || api.get(`charts/${path(name)}/-/compare`, { from, to }));
  const chartName = versions[0]?.name || name.split('/').pop();
  return {
    title: `${chartName} ${c.from.version} → ${c.to.version}`,
    content: [
      breadcrumbs(name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : null),
      h('h1', null, h('a', { href: ui('charts', name, c.to.version) }, chartName), ': ', c.from.version, ' → ', c.to.version),
      filterForm(ui('charts', name, '-', 'compare'), 'Versions to compare',
        picker('compare-from', 'From', 'from', versions, c.from.version), picker('compare-to', 'To', 'to', versions, c.to.version)),
      section('Upgrade report', 'report', h('p', null, `${c.report.breaking} breaking candidates among ${c.report.changes} changes.`),
        reportList(c.report)),
      c.notes.length ? h('ul', { class: 'warnings', 'aria-label': 'Comparison notes' }, c.notes.map((n) => h('li', null, n))) : null,
      section('Chart.yaml', 'fields', c.fields.length
        ? table('Changed fields', ['Field', 'From', 'To'], c.fields.map((f) => [f.field, show(f.from), show(f.to)]))
        : h('p', { class: 'empty' }, 'No field changed.')),
      section('Values', 'values', values(c.values)),
      section('Values schema', 'schema', schema(c.schema)),
      files('Templates', 'templates', c.templates, 'template'),
      files('CRDs', 'crds', c.crds, 'CRD'),
      section('Dependencies', 'dependencies', c.dependencies.length
        ? table('Dependency changes', ['Chart', 'Change', 'From', 'To'], c.dependencies.map((d) => [d.name, d.major ? 'major version bump' : d.status, d.from || '', d.to || '']))
        : h('p', { class: 'empty' }, 'No dependency changed.')),
      section('Images', 'images', c.images.length
        ? table('Image changes', ['Image', 'Change', 'From', 'To'], c.images.map((i) => [i.name || i.repository, i.status, show(i.from), show(i.to)]))
        : h('p', { class: 'empty' }, 'No image changed (as the artifacthub.io/images annotation lists them).')),
      section('Changelog', 'changelog', c.changelog.length
        ? c.changelog.map((v) => [h('h3', null, v.version), changeList(v.changes)])
        : h('p', { class: 'empty' }, 'No version between says what changed (artifacthub.io/changes).')),
    ],
  };
}
