// Calls to the public JSON API, with the reader's token or browser session; problems (RFC 9457) become ApiErrors.

import * as session from './session.js';

const API_ROOT = document.documentElement.dataset.apiRoot;

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

function url(resource, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value != null && value !== '') query.set(key, value);
  }
  const qs = query.toString();
  return `${API_ROOT}/${resource}${qs ? `?${qs}` : ''}`;
}

// The session cookie goes with every call to this origin (and to no other); with a token the API ignores it.
async function call(resource, params, signal, withToken) {
  const headers = { Accept: 'application/json' };
  if (withToken) headers.Authorization = `Bearer ${withToken}`;
  return fetch(url(resource, params), { headers, signal, credentials: 'same-origin' });
}

async function problem(response) {
  try {
    const body = await response.json();
    return new ApiError(response.status, body.detail || body.title || response.statusText);
  } catch {
    return new ApiError(response.status, `${response.status} ${response.statusText}`);
  }
}

/**
 * GET a resource and its JSON body. A 401 while signed in means the token or session is no longer good (expired,
 * revoked, signed out elsewhere): it is dropped, the reader is told, and the call is made again anonymously (the
 * API has cleared the session's cookie by then).
 */
export async function get(resource, params = {}, signal = undefined) {
  const held = session.token();
  const signedIn = session.identity();
  let response = await call(resource, params, signal, held);
  if (response.status === 401 && signedIn) {
    session.drop(held ? 'The catalog refused your token (expired or revoked), so you are signed out.'
      : 'Your session has ended, so you are signed out.');
    response = await call(resource, params, signal, null);
  }
  if (!response.ok) throw await problem(response);
  return response.json();
}

/** Ask the API who a token (null: the browser session, if any) belongs to: {authenticated, user, admin, session,
 * csrf_token}; ApiError 401 when it is refused. */
export async function whoIs(candidate) {
  const response = await call('me', {}, undefined, candidate);
  if (!response.ok) throw await problem(response);
  return response.json();
}

/** POST, PATCH or DELETE a resource (path below the API root, or an absolute path such as /auth/sign-out) with
 * the reader's token, or the browser session's CSRF token; the JSON answer (null for 204). */
export async function send(method, resource, body = undefined) {
  const headers = { Accept: 'application/json' };
  if (session.token()) headers.Authorization = `Bearer ${session.token()}`;
  else if (session.csrf()) headers['X-CSRF-Token'] = session.csrf();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(resource.startsWith('/') ? resource : url(resource), {
    method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await problem(response);
  return response.status === 204 ? null : response.json();
}
