// What changed between chart versions, as the chart page, the compare page and search hits show it.

import { badge, external, h } from './dom.js';

// The report's categories (ocicat.compare.CATEGORIES), said for people.
const CATEGORY = {
  'value-removed': 'Values key removed',
  'value-renamed': 'Values key renamed',
  'schema-required': 'New required value',
  'schema-type': 'Value type narrowed',
  'schema-enum': 'Allowed values removed',
  'schema-invalid': 'Values schema is invalid',
  'default-changed': 'Default changed',
  'crd-changed': 'CRD changed',
  'kube-version': 'Kubernetes version changed',
  'dependency-major': 'Dependency major version bump',
  'dependency-changed': 'Dependency changed',
  'image-changed': 'Image changed',
};

const MAX_SHOWN_CHARS = 200; // of a value quoted (a default, an enum value): a pusher's 4 MiB string stays in the API

/** A value as JSON text (a string as it is), cut at MAX_SHOWN_CHARS. */
export function shortJson(value) {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return text.length > MAX_SHOWN_CHARS ? `${text.slice(0, MAX_SHOWN_CHARS - 1)}…` : text;
}

/** "3 breaking candidates" (or "no breaking candidates, 4 changes"), as a badge; nothing without a report. */
export function upgradeBadge(summary) {
  if (!summary) return null;
  if (summary.breaking) {
    return badge(`${summary.breaking} breaking candidate${summary.breaking > 1 ? 's' : ''}`, 'breaking');
  }
  return badge(summary.changes ? `${summary.changes} change${summary.changes > 1 ? 's' : ''}` : 'no changes', 'upgrade');
}

function detail(item) {
  if (item.category === 'value-renamed') return ['from ', h('code', null, item.from)];
  if (item.category === 'crd-changed') {
    return [item.to, item.fields?.length ? [': ', item.fields.map((f, i) => [i ? ', ' : '', h('code', null, f)])] : ''];
  }
  if (item.category === 'schema-invalid') return item.to;
  const parts = [];
  if (item.from != null) parts.push(h('code', { class: 'old' }, item.from));
  if (item.from != null && item.to != null) parts.push(' → ');
  if (item.to != null) parts.push(h('code', { class: 'new' }, item.to));
  return parts;
}

/** The report's items in its order, breaking candidates marked. */
export function reportList(report) {
  const list = h('ol', { class: 'upgrade-report', 'aria-label': 'Upgrade report' }, report.items.map((item) => h('li', {
    class: item.breaking ? 'breaking' : null, 'data-category': item.category,
  }, item.breaking ? badge('breaking', 'breaking') : '', ' ', h('span', { class: 'category' }, CATEGORY[item.category] || item.category),
  ' ', h('code', { class: 'path' }, item.path), ' ', detail(item))));
  return [
    report.items.length ? list : h('p', { class: 'empty' }, 'Nothing that an upgrade should look out for.'),
    report.more ? h('p', { class: 'muted' }, `and ${report.more} more (the comparison has them all)`) : null,
    report.notes.length ? h('ul', { class: 'warnings', 'aria-label': 'Notes' }, report.notes.map((n) => h('li', null, n))) : null,
  ];
}

/** A unified diff, one span per line, added and removed lines marked (by class and by their first character). */
export function diffBlock(text, label) {
  const lines = text.replace(/\n$/, '').split('\n').map((line) => {
    const cls = line.startsWith('+++') || line.startsWith('---') ? 'diff-file' : line.startsWith('@@') ? 'diff-hunk'
      : line.startsWith('+') ? 'diff-add' : line.startsWith('-') ? 'diff-del' : null;
    return [h('span', { class: cls }, line), '\n'];
  });
  return h('pre', { class: 'code diff', tabindex: 0, 'aria-label': label }, h('code', null, lines));
}

/** artifacthub.io/changes: each change with its kind and links. */
export function changeList(changes) {
  return h('ul', { class: 'changes' }, changes.map((c) => h('li', null, badge(c.kind || 'changed', `change-${c.kind}`), ' ',
    c.description, (c.links || []).map((l) => [' ', external(l.url, l.name || l.url)]))));
}
