// The router: real URLs for every page (history API), links and GET forms handled in place, and the
// header's sign-in state. Pages live in pages/*.js; each returns the page's title and content.

import * as session from './session.js';
import * as api from './api.js';
import { ApiError } from './api.js';
import { h } from './dom.js';
import { navigate, notice } from './nav.js';

const ROOT = document.documentElement.dataset.uiRoot; // "/ui/"
const main = document.getElementById('main');

// Path below ROOT -> page module (pages/<name>.js, loaded when first needed) and its parameters.
// Repository names hold slashes; "/-/" separates sub-resources (as in the API), and a chart's version
// is its last segment. api/ui.py has the same routes, and preloads each page's module.
const ROUTES = [
  [/^$/, 'browse', () => ({ namespace: null })],
  [/^namespaces\/(.+?)\/?$/, 'browse', (m) => ({ namespace: m[1] })],
  [/^repositories\/(.+)\/-\/manifests\/([^/]+)$/, 'manifest', (m) => ({ name: m[1], digest: m[2] })],
  [/^repositories\/(.+?)\/?$/, 'repository', (m) => ({ name: m[1] })],
  [/^charts\/(.+)\/-\/compare$/, 'compare', (m) => ({ name: m[1] })],
  [/^charts\/(.+)\/([^/]+)$/, 'chart', (m) => ({ name: m[1], version: m[2] })],
  [/^search$/, 'search', () => ({})],
  [/^sign-in$/, 'sign-in', () => ({})],
  [/^subscriptions$/, 'subscriptions', () => ({})],
  [/^tokens$/, 'tokens', () => ({})],
];

let current = null; // the navigation being rendered; a newer one makes it stale

function failure(error) {
  if (error instanceof URIError) error = new ApiError(404, 'There is no such page.');
  if (!(error instanceof ApiError)) {
    console.error(error);
    error = new ApiError(0, 'The page could not be shown; the browser console has the details.');
  }
  const what = { 404: 'Not found', 401: 'Sign-in needed', 400: 'Bad request' }[error.status] || 'Something went wrong';
  return { title: what, content: [h('h1', null, what), h('p', { class: 'problem' }, error.message)] };
}

async function render(focus) {
  const token = {};
  current = token;
  main.setAttribute('aria-busy', 'true');
  let page;
  try {
    const relative = decodeURIComponent(location.pathname.slice(ROOT.length));
    const route = ROUTES.map(([pattern, name, params]) => [relative.match(pattern), name, params]).find(([m]) => m);
    if (!route) throw new ApiError(404, 'There is no such page.');
    const [match, name, params] = route;
    page = await (await import(`./pages/${name}.js`)).default(params(match));
  } catch (error) {
    page = failure(error);
  }
  if (current !== token) return; // the reader went elsewhere meanwhile
  main.replaceChildren(...[page.content].flat().filter(Boolean));
  main.setAttribute('aria-busy', 'false');
  document.title = `${page.title} · ocicat`;
  performance.mark('ocicat:rendered');
  if (focus) main.focus({ preventScroll: false });
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

function ours(url) {
  return url.origin === location.origin && url.pathname.startsWith(ROOT);
}

document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href]');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey
      || event.altKey || link.target || link.hasAttribute('download')) return;
  const url = new URL(link.href);
  if (!ours(url)) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return; // in-page anchor
  event.preventDefault();
  navigate(url.pathname + url.search + url.hash);
});

document.addEventListener('submit', (event) => {
  const form = event.target;
  if (form.method !== 'get' || !ours(new URL(form.action))) return;
  event.preventDefault();
  const query = new URLSearchParams();
  for (const [key, value] of new FormData(form)) if (value !== '') query.set(key, value);
  const qs = query.toString();
  navigate(new URL(form.action).pathname + (qs ? `?${qs}` : ''));
});

window.addEventListener('popstate', () => render(true));
window.addEventListener('ocicat:navigate', () => {
  window.scrollTo(0, 0);
  render(true);
});

function showSession(who) {
  const box = document.getElementById('session');
  if (!who) {
    box.replaceChildren(h('a', { href: `${ROOT}sign-in` }, 'Sign in'));
    return;
  }
  box.replaceChildren(
    h('span', { class: 'who' }, 'Signed in as ', h('strong', null, who.user || 'token'), who.admin ? ' (admin)' : ''),
    h('a', { href: `${ROOT}subscriptions` }, 'Subscriptions'),
    who.session && h('a', { href: `${ROOT}tokens` }, 'Tokens'),
    h('button', { type: 'button', onclick: () => signOut(who) }, 'Sign out'),
  );
}

/** Forget the token; or end the browser session here, then at the provider (which sends the reader back). */
async function signOut(who) {
  if (!who.session) {
    session.drop();
    notice('Signed out.');
    render(false);
    return;
  }
  let answer = null;
  try {
    answer = await api.send('POST', '/auth/sign-out');
  } catch (error) {
    // 401: the session had ended already. Anything else: it may still be live, so say so rather than look signed out.
    if (!(error instanceof ApiError && error.status === 401)) {
      notice(`Not signed out: ${error instanceof ApiError ? error.message : 'the catalog did not answer'}. Please try again.`);
      return;
    }
  }
  session.drop();
  if (answer?.provider_logout) {
    window.location.assign(answer.provider_logout);
    return;
  }
  notice('Signed out.');
  render(false);
}

session.onChange((who, reason) => {
  showSession(who);
  if (reason) notice(reason);
});

// A browser session (signed in with the provider) is an HttpOnly cookie: ask the API whether there is one.
async function start() {
  if (!session.token() && document.documentElement.dataset.provider) {
    try {
      session.adopt(await api.whoIs(null));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error; // 401: the session ended; the API cleared its cookie
    }
  }
  showSession(session.identity());
  render(false);
}
start();
