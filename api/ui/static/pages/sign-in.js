// Sign-in with the identity provider (when one is configured: the API does the rest, and comes back with a browser
// session), or with an API token, checked against GET /api/v1/me before it is kept.

import * as api from '../api.js';
import * as session from '../session.js';
import { h } from '../dom.js';
import { navigate, notice } from '../nav.js';
import { ui } from './common.js';

const REFUSALS = {
  401: 'The token was refused: it is not valid, or it has expired.',
};

async function submit(event, input, message) {
  event.preventDefault();
  message.textContent = 'Checking the token…';
  try {
    const who = await api.whoIs(input.value.trim());
    if (!who.authenticated) throw new api.ApiError(401, REFUSALS[401]);
    session.keep(input.value.trim(), who);
    notice(`Signed in as ${who.user || 'token'}.`);
    navigate(ui());
  } catch (error) {
    if (!(error instanceof api.ApiError)) throw error;
    message.textContent = REFUSALS[error.status] || `Sign-in failed: ${error.message}`;
    input.focus();
  }
}

const PROVIDER = document.documentElement.dataset.provider;

/** Why the last sign-in with the provider came back refused, by the API's reason (api/sign_in.py): only these words
 * are shown, whatever the address says. */
const FAILURES = {
  unverified: 'The sign-in could not be verified. Please try again.',
  provider: 'The identity provider could not be asked who you are. Please try again later.',
  account: 'Your account could not be set up; an administrator can see why in the log.',
};

/** The provider's button, after why the last attempt failed (``failed``: a reason of FAILURES), if it did. */
function withProvider(failed) {
  const next = new URLSearchParams(location.search).get('next') || ui();
  return [
    failed && h('p', { class: 'problem', role: 'alert' }, FAILURES[failed] || 'The sign-in failed. Please try again.'),
    h('p', null, h('a', { class: 'button', href: `/auth/sign-in?${new URLSearchParams({ next })}` },
      `Sign in with ${PROVIDER}`)),
    h('p', { class: 'muted' }, 'Or, for a robot account or an API token of your own:'),
  ];
}

export default async function signIn() {
  const who = session.identity();
  if (who) {
    return { title: 'Signed in', content: [h('h1', null, 'Signed in'),
      h('p', null, 'You are signed in as ', h('strong', null, who.user || 'token'), who.admin ? ' (admin).' : '.'),
      h('p', null, `Use Sign out in the header to ${who.session ? 'end the session' : 'forget the token'}.`)] };
  }
  const input = h('input', { id: 'token', name: 'token', type: 'password', required: true, autocomplete: 'off', spellcheck: 'false' });
  const message = h('p', { class: 'message', role: 'alert' });
  const form = h('form', { class: 'sign-in', method: 'post', action: ui('sign-in') },
    h('div', { class: 'field grow' }, h('label', { for: 'token' }, 'API token'), input),
    h('button', { type: 'submit' }, 'Sign in'), message);
  form.addEventListener('submit', (event) => submit(event, input, message));
  return {
    title: 'Sign in',
    content: [h('h1', null, 'Sign in'),
      ...(PROVIDER ? withProvider(new URLSearchParams(location.search).get('failed')) : []),
      h('p', null, 'Paste an API token. It is kept in this tab only (sessionStorage) and sent with every request ',
        'to the catalog API; closing the tab or signing out forgets it.'),
      form],
  };
}
