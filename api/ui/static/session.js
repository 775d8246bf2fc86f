// Who the reader is signed in as, one of two ways:
// - an API token pasted on the sign-in page: kept in sessionStorage (gone when the tab closes, never in a cookie, so
//   no other site can make the browser send it) and sent as "Authorization: Bearer" with every API call;
// - a browser session, made by signing in with the identity provider: an HttpOnly cookie this page cannot read,
//   which the browser sends itself; its CSRF token (from GET /api/v1/me) is kept in memory and sent with every
//   POST, PATCH and DELETE, which the API refuses without it.

const TOKEN = 'ocicat.token';
const IDENTITY = 'ocicat.identity';
const listeners = new Set();
let browserSession = null; // {user, admin, csrf} while a cookie session is known

export function token() {
  return sessionStorage.getItem(TOKEN);
}

/** The CSRF token of the browser session, or null (with a token, or signed out). */
export function csrf() {
  return token() ? null : browserSession?.csrf || null;
}

/** Who is signed in ({user, admin, session}) or null. */
export function identity() {
  const raw = sessionStorage.getItem(IDENTITY);
  if (raw && token()) return { ...JSON.parse(raw), session: false };
  return browserSession && { user: browserSession.user, admin: browserSession.admin, session: true };
}

export function onChange(listener) {
  listeners.add(listener);
}

function changed(reason) {
  for (const listener of listeners) listener(identity(), reason);
}

export function keep(value, who) {
  sessionStorage.setItem(TOKEN, value);
  sessionStorage.setItem(IDENTITY, JSON.stringify({ user: who.user, admin: Boolean(who.admin) }));
  changed(null);
}

/** Take up the browser session GET /api/v1/me describes (signed in with the provider), if there is one. */
export function adopt(me) {
  browserSession = me.session ? { user: me.user, admin: Boolean(me.admin), csrf: me.csrf_token } : null;
  changed(null);
}

/** Forget the token or the session; reason (shown to the reader) says why when it was not the reader's own choice. */
export function drop(reason = null) {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(IDENTITY);
  browserSession = null;
  changed(reason);
}
