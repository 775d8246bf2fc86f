// A chart version: everything Chart.yaml says, the README, values and schema, every version, and how to pull it.

import * as api from '../api.js';
import { external, h, pager, pairs, path, section, shortDigest, table, when, badge } from '../dom.js';
import { insertSanitized } from '../html.js';
import { changeList, reportList, shortJson, upgradeBadge } from '../upgrade.js';
import { yamlBlock } from '../yaml.js';
import { breadcrumbs, kinds, ui } from './common.js';

const VERSIONS_PAGE = 20;

/**
 * One word for a POSIX shell, as it is when it is plainly one (letters, digits, @%+=:,./_-), else in single quotes:
 * chart names and versions come from whoever pushed the chart, and a copied command must not run what they wrote.
 */
function shellWord(word) {
  return /^[A-Za-z0-9@%+=:,./_-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

/** A command with a Copy button; if the clipboard is not available, the command is selected for Ctrl+C. */
function command(label, words) {
  const text = words.map(shellWord).join(' ');
  const code = h('code', null, text);
  const status = h('span', { class: 'copy-status', role: 'status' });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      status.textContent = 'Copied';
    } catch {
      getSelection().selectAllChildren(code);
      status.textContent = 'Selected: press Ctrl+C';
    }
    setTimeout(() => { status.textContent = ''; }, 3000);
  };
  return h('div', { class: 'command' }, h('span', { class: 'command-label' }, label), h('pre', null, code),
    h('button', { type: 'button', onclick: copy, 'aria-label': `Copy the ${label} command` }, 'Copy'), status);
}

function maintainers(list) {
  return h('ul', { class: 'plain' }, list.map((m) => h('li', null, m.name || '',
    m.email ? [' ', external(`mailto:${m.email}`, `<${m.email}>`)] : '',
    m.url ? [' ', external(m.url)] : '')));
}

function dependencies(list) {
  return table('Dependencies', ['Chart', 'Version', 'Repository', 'Condition'], list.map((d) => [
    d.alias ? `${d.name} (as ${d.alias})` : d.name || '', d.version || '', d.repository ? external(d.repository) : '',
    d.condition || '']));
}

function facts(c) {
  const row = (term, value) => (value == null || value === '' || (Array.isArray(value) && !value.length) ? null
    : [h('dt', null, term), h('dd', null, value)]);
  return h('dl', { class: 'facts-list' },
    row('Version', c.version),
    row('App version', c.app_version),
    row('Type', c.type),
    row('Kubernetes', c.kube_version),
    row('Chart API', c.api_version),
    row('Home', c.home && external(c.home)),
    row('Sources', c.sources.length && h('ul', { class: 'plain' }, c.sources.map((s) => h('li', null, external(s))))),
    row('Keywords', c.keywords.length && h('ul', { class: 'chips' }, c.keywords.map((k) => h('li', null,
      h('a', { href: `${ui('search')}?q=${encodeURIComponent(k)}` }, k))))),
    row('Maintainers', c.maintainers.length && maintainers(c.maintainers)),
    row('Digest', shortDigest(c.digest)),
    row('Pushed', when(c.pushed_at)),
    row('Provenance', c.has_provenance ? 'signed provenance file (.prov) included' : null));
}

function readme(c) {
  if (c.readme_html) {
    const body = h('div', { class: 'readme' });
    insertSanitized(body, c.readme_html, 2);
    return body;
  }
  return c.readme ? h('pre', { class: 'code readme-text' }, c.readme) : h('p', { class: 'empty' }, 'This chart has no README.');
}

function compareHref(name, from, to) {
  return `${ui('charts', name, '-', 'compare')}?${new URLSearchParams({ from, to })}`;
}

function versions(name, current, list) {
  return [h('ol', { class: 'versions' }, list.items.map((v) => h('li', null,
    v.version === current ? h('strong', { 'aria-current': 'page' }, v.version)
      : h('a', { href: ui('charts', name, v.version) }, v.version),
    v.app_version ? h('span', { class: 'muted' }, ` app ${v.app_version}`) : '', ' ', when(v.pushed_at),
    v.deprecated ? badge('deprecated') : '', ' ',
    v.upgrade ? h('a', { href: compareHref(name, v.upgrade.from.version, v.version), class: 'upgrade-link',
      title: `What changed since ${v.upgrade.from.version}` }, upgradeBadge(v.upgrade)) : '',
    v.version !== current ? [' ', h('a', { href: compareHref(name, v.version, current), class: 'muted' }, 'compare')] : ''))),
  pager(list.next_cursor, 'vcursor')];
}

function upgrade(name, c) {
  const report = c.upgrade_report;
  if (!report) return h('p', { class: 'empty' }, 'No earlier version to compare with.');
  return [
    h('p', null, `Upgrading from ${report.from.version}: `, upgradeBadge(report), ' ',
      h('a', { href: compareHref(name, report.from.version, c.version) }, `Compare ${report.from.version} with ${c.version}`)),
    reportList(report),
  ];
}

const MAX_SCHEMA_DEPTH = 16; // of $refs followed in a row; the JSON below has the schema whole
const MAX_SHOWN_PROPERTIES = 500; // of one object; the JSON below has the rest

/** A local $ref ("#/definitions/x", "#/$defs/x") followed; anything else left as it is. */
function resolve(root, node, depth = 0) {
  if (!node || typeof node.$ref !== 'string' || !node.$ref.startsWith('#/') || depth > MAX_SCHEMA_DEPTH) return node;
  const target = node.$ref.slice(2).split('/').map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((at, key) => (at && typeof at === 'object' ? at[key] : undefined), root);
  return resolve(root, target, depth + 1);
}

function properties(node) {
  return node && node.properties && typeof node.properties === 'object' && !Array.isArray(node.properties)
    ? Object.entries(node.properties) : [];
}

/**
 * The values schema as a tree: each property with its type, default, whether it is required, enum and description.
 * A level is built when it is opened, so a schema whose $refs lead back up costs what the reader unfolds.
 */
function schemaTree(root, node, open = false) {
  node = resolve(root, node);
  const props = properties(node);
  if (!props.length) return null;
  const required = Array.isArray(node.required) ? node.required : [];
  const items = props.slice(0, MAX_SHOWN_PROPERTIES).map(([key, raw]) => {
    const prop = resolve(root, raw) || {};
    const type = Array.isArray(prop.type) ? prop.type.join(' | ') : prop.type;
    const head = [h('code', { class: 'schema-key' }, key), type ? h('span', { class: 'schema-type' }, ` ${type}`) : '',
      required.includes(key) ? [' ', badge('required')] : '',
      prop.default !== undefined ? [' default ', h('code', null, shortJson(JSON.stringify(prop.default)))] : '',
      Array.isArray(prop.enum) ? [' one of ', prop.enum.slice(0, 20).map((e, i) => [i ? ', ' : '', h('code', null, shortJson(JSON.stringify(e)))]),
        prop.enum.length > 20 ? ' …' : ''] : '',
      prop.description ? h('div', { class: 'schema-description' }, String(prop.description)) : ''];
    const below = prop.type === 'array' ? resolve(root, prop.items) : prop;
    if (!properties(resolve(root, below)).length) return h('li', null, head);
    const body = h('div');
    return h('li', null, h('details', {
      ontoggle: (event) => { if (event.target.open && !body.childElementCount) body.append(schemaTree(root, below)); },
    }, h('summary', null, head), body));
  });
  if (props.length > MAX_SHOWN_PROPERTIES) items.push(h('li', { class: 'muted' }, `and ${props.length - MAX_SHOWN_PROPERTIES} more`));
  return h('ul', { class: open ? 'schema-tree schema-root' : 'schema-tree' }, items);
}

function schema(c) {
  if (!c.values_schema) return h('p', { class: 'empty' }, 'No values.schema.json.');
  return [schemaTree(c.values_schema, c.values_schema, true) || h('p', { class: 'empty' }, 'The schema describes no properties.'),
    h('details', null, h('summary', null, 'values.schema.json'),
      h('pre', { class: 'code', tabindex: 0, 'aria-label': 'values.schema.json' }, JSON.stringify(c.values_schema, null, 2)))];
}

/** Templates and CRDs by path; their contents are fetched (all at once) when the first one is opened. */
function sources(name, c) {
  const paths = [...c.templates, ...c.crds];
  if (!paths.length) return h('p', { class: 'empty' }, 'No templates or CRDs.');
  let loading = null;
  const load = () => {
    loading ||= api.get(`charts/${path(name)}/-/versions/${encodeURIComponent(c.version)}/files`)
      .then((body) => new Map(body.items.map((f) => [f.path, f])));
    return loading;
  };
  return h('ul', { class: 'plain mono sources' }, paths.map((p) => {
    const body = h('div', { class: 'source' });
    const item = h('details', { ontoggle: async (event) => {
      if (!event.target.open || body.childElementCount) return;
      const file = (await load()).get(p);
      body.replaceChildren(file ? h('div', null, file.truncated ? h('p', { class: 'muted' }, 'Cut at the size cap.') : null,
        h('pre', { class: 'code', tabindex: 0, 'aria-label': p }, file.content))
        : h('p', { class: 'empty' }, 'Not kept (indexed before ocicat kept chart files).'));
    } }, h('summary', null, p), body);
    return h('li', null, item);
  }));
}

export default async function chart({ name, version }) {
  const query = new URLSearchParams(location.search);
  const [c, list] = await Promise.all([
    api.get(`charts/${path(name)}/-/versions/${encodeURIComponent(version)}`),
    api.get(`charts/${path(name)}/-/versions`, { limit: VERSIONS_PAGE, cursor: query.get('vcursor') }),
  ]);
  const icon = c.icon && h('img', { src: c.icon, alt: '', class: 'icon', width: 64, height: 64, referrerpolicy: 'no-referrer' });
  return {
    title: `${c.name} ${c.version}`,
    content: [
      breadcrumbs(c.namespace || null),
      h('div', { class: 'chart-head' }, icon && icon.hasAttribute('src') ? icon : null,
        h('div', null,
          h('h1', null, c.name, ' ', h('span', { class: 'version' }, c.version)),
          h('p', { class: 'facts' }, kinds(['helm-chart']), ' ', h('a', { href: ui('repositories', name) }, name),
            c.app_version ? ` · app version ${c.app_version}` : '', c.deprecated ? [' ', badge('deprecated')] : ''),
          c.description && h('p', { class: 'description' }, c.description))),
      c.error && h('p', { class: 'problem' }, `Indexing problem: ${c.error}`),
      c.warnings.length ? h('ul', { class: 'warnings', 'aria-label': 'Warnings' }, c.warnings.map((w) => h('li', null, w))) : null,
      section('Use it', 'use',
        command('pull', ['helm', 'pull', c.reference]),
        command('install', ['helm', 'install', c.name, c.reference]),
        h('p', { class: 'muted' }, 'Or from the classic Helm repository of its namespace (helm search repo, Argo CD, Flux):'),
        command('repo add', ['helm', 'repo', 'add', c.helm_repository.name, c.helm_repository.url]),
        command('install from the repository',
          ['helm', 'install', c.name, `${c.helm_repository.name}/${c.name}`, '--version', c.version])),
      h('nav', { class: 'toc', 'aria-label': 'On this page' }, h('ul', null,
        [['About', 'about'], ['Upgrade', 'upgrade'], ['README', 'readme'], ['Changelog', 'changelog'], ['Values', 'values'],
          ['Schema', 'schema'], ['Templates', 'templates'], ['Versions', 'versions']]
          .map(([text, id]) => h('li', null, h('a', { href: `#${id}` }, text))))),
      section('About', 'about', facts(c),
        c.dependencies.length ? dependencies(c.dependencies) : null,
        pairs('Annotations', c.annotations)),
      section('Upgrade', 'upgrade', upgrade(name, c)),
      section('README', 'readme', readme(c)),
      section('Changelog', 'changelog', c.artifacthub.changes?.length ? changeList(c.artifacthub.changes)
        : h('p', { class: 'empty' }, 'This version does not say what changed (artifacthub.io/changes).')),
      section('Values', 'values', c.values ? yamlBlock(c.values, 'values.yaml') : h('p', { class: 'empty' }, 'No values.yaml.')),
      section('Schema', 'schema', schema(c)),
      section('Templates', 'templates', sources(name, c)),
      section('Versions', 'versions', versions(name, c.version, list)),
    ],
  };
}
