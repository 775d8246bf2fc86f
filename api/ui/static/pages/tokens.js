// The signed-in user's own API tokens (for scripts, CI and Helm): make one with a name and an expiry (shown once,
// here), see when each was last used, revoke it. Tokens are made from a browser session only (api/tokens.py).

import * as api from '../api.js';
import * as session from '../session.js';
import { h } from '../dom.js';
import { notice } from '../nav.js';
import { ui } from './common.js';

const when = (value) => (value ? new Date(value).toLocaleString() : '–');

function state(token) {
  if (token.revoked_at) return 'revoked';
  if (token.expires_at && new Date(token.expires_at) <= new Date()) return 'expired';
  return 'active';
}

function table(items, rerender) {
  if (!items.length) return h('p', { class: 'muted' }, 'You have no tokens yet.');
  return h('div', { class: 'table-wrap' }, h('table', { class: 'rows tokens' },
    h('thead', null, h('tr', null, ['Name', 'State', 'Created', 'Expires', 'Last used', ''].map((t) => h('th', null, t)))),
    h('tbody', null, items.map((token) => h('tr', { 'data-id': token.id },
      h('td', { 'data-label': 'Name' }, token.name),
      h('td', { 'data-label': 'State' }, state(token)),
      h('td', { 'data-label': 'Created' }, when(token.created_at)),
      h('td', { 'data-label': 'Expires' }, when(token.expires_at)),
      h('td', { 'data-label': 'Last used' }, when(token.last_used_at)),
      h('td', null, state(token) === 'active' && h('button', { type: 'button', onclick: () => revoke(token, rerender) },
        'Revoke')))))));
}

async function revoke(token, rerender) {
  try {
    await api.send('DELETE', `me/tokens/${token.id}`);
  } catch (error) {
    notice(`${token.name} is not revoked: ${error instanceof api.ApiError ? error.message : 'the catalog did not answer'}.`);
    return;
  }
  notice(`Revoked ${token.name}.`);
  rerender();
}

function form(shown, rerender) {
  const name = h('input', { id: 'token-name', name: 'name', required: true, maxlength: 100, autocomplete: 'off' });
  const days = h('input', { id: 'token-days', name: 'days', type: 'number', min: 1, max: 365, value: 30, required: true });
  const element = h('form', { class: 'filters', method: 'post', 'aria-label': 'New token' },
    h('div', { class: 'field grow' }, h('label', { for: 'token-name' }, 'Name'), name),
    h('div', { class: 'field' }, h('label', { for: 'token-days' }, 'Expires in (days)'), days),
    h('button', { type: 'submit' }, 'Make a token'));
  element.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const made = await api.send('POST', 'me/tokens', { name: name.value.trim(), expires_in_days: Number(days.value) });
      shown.replaceChildren(h('p', null, `Your new token ${made.name}; copy it now, it is not shown again:`),
        h('pre', null, h('code', { class: 'new-token' }, made.token)));
      rerender();
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      shown.replaceChildren(h('p', { class: 'problem', role: 'alert' }, `Not made: ${error.message}`));
    }
  });
  return element;
}

export default async function tokens() {
  const who = session.identity();
  if (!who?.session) {
    return { title: 'Tokens', content: [h('h1', null, 'Tokens'),
      h('p', null, 'Sign in with your identity provider to make tokens: ', h('a', { href: ui('sign-in') }, 'Sign in'), '.')] };
  }
  const list = h('div');
  const shown = h('div', { class: 'made', role: 'status' });
  const rerender = async () => list.replaceChildren(table((await api.get('me/tokens')).items, rerender));
  await rerender();
  return {
    title: 'Tokens',
    content: [h('h1', null, 'Your API tokens'),
      h('p', null, 'A token acts as you, with your roles as they are when it is used: send it as ',
        h('code', null, 'Authorization: Bearer <token>'), ', or as the password of helm repo add.'),
      form(shown, rerender), shown, list],
  };
}
