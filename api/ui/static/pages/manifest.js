// One manifest: an image's platforms, layers, config and labels, an index's children, annotations, attachments.

import * as api from '../api.js';
import { bytes, external, h, pairs, path, section, shortDigest, table, when } from '../dom.js';
import { attachmentBadges, breadcrumbs, kinds, ui } from './common.js';

const manifestLink = (name, digest) => h('a', { href: ui('repositories', name, '-', 'manifests', digest) }, shortDigest(digest));

function platformOf(descriptor) {
  const p = descriptor.platform || {};
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/') || 'unknown';
}

function config(c) {
  if (!c) return null;
  return section('Image configuration', 'config', h('dl', { class: 'facts-list' },
    h('dt', null, 'Platform'), h('dd', null, [c.os, c.architecture, c.variant].filter(Boolean).join('/') || 'unknown'),
    c.os_version && [h('dt', null, 'OS version'), h('dd', null, c.os_version)],
    c.created && [h('dt', null, 'Created'), h('dd', null, c.created)],
    c.author && [h('dt', null, 'Author'), h('dd', null, c.author)],
    h('dt', null, 'History entries'), h('dd', null, String(c.history))),
  pairs('Labels', c.labels));
}

export default async function manifest({ name, digest }) {
  const m = await api.get(`repositories/${path(name)}/-/manifests/${encodeURIComponent(digest)}`);
  const namespace = name.split('/').slice(0, -1).join('/');
  const source = m.metadata && m.metadata.source;
  return {
    title: `${name}@${digest.slice(0, 19)}`,
    content: [
      breadcrumbs(namespace || null),
      h('h1', null, h('a', { href: ui('repositories', name) }, name), m.tags.length ? `:${m.tags.join(', ')}` : ''),
      h('p', { class: 'facts' }, kinds([m.kind]), ' ', bytes(m.size_bytes), ', pushed ', when(m.pushed_at), ' ',
        attachmentBadges(m)),
      m.error && h('p', { class: 'problem' }, `Indexing problem: ${m.error}`),
      m.chart && h('p', null, h('a', { href: ui('charts', name, m.chart.version), class: 'button' },
        `Chart ${m.chart.name} ${m.chart.version}`)),
      h('dl', { class: 'facts-list' },
        h('dt', null, 'Digest'), h('dd', null, h('code', { class: 'digest' }, m.digest)),
        h('dt', null, 'Media type'), h('dd', null, m.media_type),
        m.artifact_type && [h('dt', null, 'Artifact type'), h('dd', null, m.artifact_type)],
        m.config_media_type && [h('dt', null, 'Config'), h('dd', null, m.config_media_type)],
        m.platforms.length ? [h('dt', null, 'Platforms'), h('dd', null, h('ul', { class: 'inline' }, m.platforms.map((p) => h('li', null, p))))] : null,
        m.subject_digest && [h('dt', null, 'Attached to'), h('dd', null, manifestLink(name, m.subject_digest))],
        source && [h('dt', null, 'Source'), h('dd', null, external(source))]),
      m.children.length ? section('Platforms', 'platforms', table(`Manifests in this index`, ['Platform', 'Manifest', 'Size'],
        m.children.map((c) => [platformOf(c), manifestLink(name, c.digest), bytes(c.size_bytes)]))) : null,
      config(m.image_config),
      m.layers.length ? section('Layers', 'layers', table(`${m.layers.length} layers`, ['#', 'Media type', 'Digest', 'Size'],
        m.layers.map((l, i) => [String(i + 1), l.media_type, shortDigest(l.digest), bytes(l.size_bytes)]))) : null,
      pairs('Metadata', m.metadata),
      pairs('Annotations', m.annotations),
      m.attachments.length ? section('Attachments', 'attachments', table('Signatures, SBOMs and attestations',
        ['Kind', 'Artifact type', 'Manifest', 'Pushed'],
        m.attachments.map((a) => [kinds([a.kind]), a.artifact_type || a.media_type, manifestLink(name, a.digest), when(a.pushed_at)]))) : null,
    ],
  };
}
