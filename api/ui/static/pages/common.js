// Pieces several pages show: where a repository sits (breadcrumbs) and what is known about a tag or manifest.

import { badge, h, path } from '../dom.js';

const ROOT = document.documentElement.dataset.uiRoot;

export const ui = (...parts) => ROOT + path(...parts);

/** Links to the namespace path above (and including) `namespace`. */
export function breadcrumbs(namespace, here = null) {
  const parts = namespace ? namespace.split('/') : [];
  const items = [h('li', null, h('a', { href: ROOT }, 'All namespaces'))];
  parts.forEach((part, i) => {
    items.push(h('li', null, h('a', { href: ui('namespaces', parts.slice(0, i + 1).join('/')) }, part)));
  });
  if (here) items.push(h('li', null, h('span', { 'aria-current': 'page' }, here)));
  return h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumbs' }, h('ol', null, items));
}

/** Where a tag or manifest leads: its chart page for a chart, else its manifest page. */
export function manifestHref(repository, item) {
  return item.chart ? ui('charts', repository, item.chart.version) : ui('repositories', repository, '-', 'manifests', item.digest);
}

/** Signed, SBOM, attestations, and a recorded error, as badges. */
export function attachmentBadges(item) {
  return [
    item.signed && badge('signed'),
    item.has_sbom && badge('SBOM', 'sbom'),
    item.attestations ? badge(`${item.attestations} attestation${item.attestations > 1 ? 's' : ''}`, 'attestation') : null,
    item.error && h('span', { class: 'badge badge-error', title: item.error }, 'error'),
  ].filter(Boolean);
}

export function kinds(list) {
  return (list || []).map((kind) => badge(kind));
}

/** A GET form whose fields become the page's query (app.js turns its submission into a navigation). */
export function filterForm(action, label, ...fields) {
  return h('form', { class: 'filters', action, method: 'get', 'aria-label': label },
    fields.map((field) => h('div', { class: 'field' }, field)),
    h('button', { type: 'submit' }, 'Apply'));
}
