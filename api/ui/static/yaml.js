// values.yaml, highlighted as text nodes in spans: keys, scalars, comments.
//
// Written here rather than taken from a library: a highlighter without a build step would add tens of
// KiB and hand back an HTML string (one more innerHTML sink), and server-side highlighting (Pygments)
// makes the markup 5 to 8 times the size of the values it wraps, on every chart page. Line by line is
// enough for values files: a mistake here only colours a token wrongly, since every token stays text.

import { h } from './dom.js';

const MAX_LINES = 20000; // beyond this, plain text: colour is not worth a long main-thread task

const KEY = /^(\s*(?:-\s+)*)((?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"][^#]*?)\s*:)(?=\s|$)/;
const LITERAL = /^(?:true|false|yes|no|on|off|null|~|[-+]?(?:\d[\d_]*(?:\.\d*)?(?:e[-+]?\d+)?|\.inf|\.nan|0x[\da-f]+))$/i;

/** Split off a trailing comment: a "#" at the start or after white space, outside quotes. */
function splitComment(text) {
  let quote = null;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]))) {
      return [text.slice(0, i), text.slice(i)];
    }
  }
  return [text, ''];
}

function scalar(text) {
  const value = text.trim();
  if (!value) return text;
  const cls = /^["']/.test(value) ? 'tok-string' : LITERAL.test(value) ? 'tok-literal'
    : /^[&*!|>]/.test(value) ? 'tok-mark' : 'tok-value';
  const start = text.indexOf(value);
  return [text.slice(0, start), h('span', { class: cls }, value), text.slice(start + value.length)];
}

function line(text) {
  const [body, comment] = splitComment(text);
  const key = body.match(KEY);
  const parts = key ? [key[1], h('span', { class: 'tok-key' }, key[2]), scalar(body.slice(key[0].length))] : [scalar(body)];
  return [...parts, comment && h('span', { class: 'tok-comment' }, comment), '\n'];
}

/** <pre><code> of the YAML text, highlighted unless it is very long. */
export function yamlBlock(text, label) {
  const lines = text.replace(/\n$/, '').split('\n');
  const code = h('code', { class: 'yaml' }, lines.length > MAX_LINES ? text : lines.map(line));
  return h('pre', { class: 'code', tabindex: 0, 'aria-label': label }, code);
}
