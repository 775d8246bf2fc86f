// Building the page from catalog data: every value becomes a text node or a checked attribute, never markup.
// (The one exception, the server-sanitized README, goes through html.js.)

const LINK_SCHEMES = ['http:', 'https:', 'mailto:'];
const IMAGE_SCHEMES = ['https:'];

/** The URL if it is absolute (or same-site relative) and of an allowed scheme, else null: no javascript:, data:, ... */
export function safeUrl(value, schemes = LINK_SCHEMES) {
  if (typeof value !== 'string' || value.trim() === '') return null;
  let url;
  try {
    url = new URL(value, location.origin);
  } catch {
    return null;
  }
  return schemes.includes(url.protocol) ? url.href : null;
}

/**
 * h('a', {href, class}, ...children): an element whose children are nodes or text.
 * href and src pass safeUrl (src: https: images only), so a hostile URL is dropped, not followed.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith('on')) {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'href' || key === 'src') {
      if (safeUrl(String(value), key === 'src' ? IMAGE_SCHEMES : LINK_SCHEMES)) el.setAttribute(key, String(value));
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** A link to another site: rel=noopener nofollow; plain text when the URL is not safe to follow. */
export function external(url, text = url) {
  return safeUrl(url) ? h('a', { href: url, rel: 'noopener nofollow', class: 'external' }, text) : h('span', null, text);
}

/** A URL path from segments, each percent-encoded but for ":" and "+" (legal in a path, and read better). */
export function path(...parts) {
  return parts.flatMap((part) => String(part).split('/'))
    .map((segment) => encodeURIComponent(segment).replace(/%3A|%2B/g, decodeURIComponent)).join('/');
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function bytes(n) {
  if (typeof n !== 'number') return '';
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i ? n.toFixed(n < 10 ? 1 : 0) : n} ${UNITS[i]}`;
}

let relative = null; // made on first use: ICU's set-up is not free, and not every page shows times
const STEPS = [['second', 60], ['minute', 60], ['hour', 24], ['day', 30], ['month', 12], ['year', Infinity]];

/** <time> with the exact UTC time as its title and "3 hours ago" as its text. */
export function when(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  let amount = (date.getTime() - Date.now()) / 1000;
  let unit = 'second';
  for (const [name, size] of STEPS) {
    unit = name;
    if (Math.abs(amount) < size) break;
    amount /= size;
  }
  relative ||= new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
  return h('time', { datetime: iso, title: date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') },
    relative.format(Math.round(amount), unit));
}

export function badge(text, kind = text) {
  return h('span', { class: `badge badge-${kind}` }, text);
}

export function shortDigest(digest) {
  return digest ? h('code', { class: 'digest', title: digest }, digest.replace(/^(sha\d+:)(.{12}).*$/, '$1$2…')) : '';
}

/** A two-column table of an object's entries (labels, annotations), or nothing when it is empty. */
export function pairs(caption, object) {
  const entries = Object.entries(object || {});
  if (!entries.length) return null;
  return h('table', { class: 'pairs' }, h('caption', null, caption),
    h('tbody', null, entries.map(([k, v]) => h('tr', null, h('th', { scope: 'row' }, k),
      h('td', null, typeof v === 'string' ? v : JSON.stringify(v))))));
}

/** A responsive table: on a narrow screen each row becomes a block whose cells carry their column's name. */
export function table(caption, columns, rows) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'rows' },
    h('caption', null, caption),
    h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, rows.map((cells) => h('tr', null, cells.map((cell, i) => h('td', {
      'data-label': columns[i], class: blank(cell) ? 'blank' : null }, h('div', null, cell))))))));
}

function blank(cell) {
  return cell == null || cell === '' || (Array.isArray(cell) && cell.every(blank));
}

export function section(title, id, ...children) {
  return h('section', { id, 'aria-labelledby': `${id}-title` }, h('h2', { id: `${id}-title` }, title), ...children);
}

/** "Next page" (and "First page") links carrying the API's cursor in the page's own URL, so every page is a deep link. */
export function pager(nextCursor, param = 'cursor') {
  const here = new URL(location.href);
  const links = [];
  if (here.searchParams.has(param)) {
    here.searchParams.delete(param);
    links.push(h('a', { href: here.pathname + here.search }, 'First page'));
  }
  if (nextCursor) {
    const next = new URL(location.href);
    next.searchParams.set(param, nextCursor);
    links.push(h('a', { href: next.pathname + next.search, rel: 'next' }, 'Next page'));
  }
  return links.length ? h('nav', { class: 'pager', 'aria-label': 'Pages' }, links) : null;
}

/** A select of the kinds the catalog knows (from the shell), with "any" first. */
export function kindSelect(id, selected) {
  const kinds = document.documentElement.dataset.kinds.split(' ');
  return [h('label', { for: id }, 'Kind'),
    h('select', { id, name: 'kind' }, h('option', { value: '' }, 'any kind'),
      kinds.map((k) => h('option', { value: k, selected: k === selected }, k)))];
}
