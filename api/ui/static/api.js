// Calls to the public JSON API, with the session's token; problems (RFC 9457) become ApiErrors.

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

async function call(resource, params, signal, withToken) {
  const headers = { Accept: 'application/json' };
  if (withToken) headers.Authorization = `Bearer ${withToken}`;
  return fetch(url(resource, params), { headers, signal, credentials: 'omit' });
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
 * GET a resource and its JSON body. A 401 while signed in means the token is no longer good (expired,
 * revoked): it is dropped, the reader is told, and the call is made again anonymously.
 */
export async function get(resource, params = {}, signal = undefined) {
  const held = session.token();
  let response = await call(resource, params, signal, held);
  if (response.status === 401 && held) {
    session.drop('The catalog refused your token (expired or revoked), so you are signed out.');
    response = await call(resource, params, signal, null);
  }
  if (!response.ok) throw await problem(response);
  return response.json();
}

/** Ask the API who a token belongs to: {authenticated, user, admin}; ApiError 401 when it is refused. */
export async function whoIs(candidate) {
  const response = await call('me', {}, undefined, candidate);
  if (!response.ok) throw await problem(response);
  return response.json();
}

/** POST, PATCH or DELETE a resource with the session's token; the JSON answer (null for 204). */
export async function send(method, resource, body = undefined) {
  const headers = { Accept: 'application/json', Authorization: `Bearer ${session.token()}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(url(resource), {
    method, headers, credentials: 'omit', body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await problem(response);
  return response.status === 204 ? null : response.json();
}
