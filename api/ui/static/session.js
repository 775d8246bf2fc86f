// Sign-in with an API token: kept in sessionStorage (gone when the tab closes, never in a cookie, so no
// other site can make the browser send it) and sent as "Authorization: Bearer" with every API call.

const TOKEN = 'ocicat.token';
const IDENTITY = 'ocicat.identity';
const listeners = new Set();

export function token() {
  return sessionStorage.getItem(TOKEN);
}

/** Who is signed in ({user, admin}) or null. */
export function identity() {
  const raw = sessionStorage.getItem(IDENTITY);
  return raw && token() ? JSON.parse(raw) : null;
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

/** Forget the token; reason (shown to the reader) says why when it was not the reader's own choice. */
export function drop(reason = null) {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(IDENTITY);
  changed(reason);
}
