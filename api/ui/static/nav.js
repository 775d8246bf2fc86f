// What pages may ask of the shell: go to another page, or tell the reader something.

import { h } from './dom.js';

/** Go to a page of the UI (pushState; app.js renders it). */
export function navigate(href, { replace = false } = {}) {
  history[replace ? 'replaceState' : 'pushState'](null, '', href);
  window.dispatchEvent(new Event('ocicat:navigate'));
}

/** A message in the live region under the header (screen readers announce it); null clears it. */
export function notice(text) {
  const box = document.getElementById('notice');
  box.hidden = !text;
  box.replaceChildren(...(text ? [h('p', null, text), h('button', { type: 'button', onclick: () => notice(null) }, 'Dismiss')] : []));
}
