// Subscriptions to catalog events: the signed-in user's (an administrator's: everyone's), each with its state
// and recent deliveries, and the actions the API offers: create, send a ping, pause or resume, delete.

import * as api from '../api.js';
import * as session from '../session.js';
import { h } from '../dom.js';
import { notice } from '../nav.js';

const FORMATS = ['cloudevents', 'cloudevents-binary', 'slack'];

function state(subscription) {
  if (subscription.paused) return h('span', { class: 'badge' }, 'paused');
  if (subscription.failing_since) return h('span', { class: 'badge badge-error', title: subscription.failure_reason }, 'failing');
  return h('span', { class: 'badge' }, 'active');
}

function filtersText(filters) {
  const parts = Object.entries(filters || {}).map(([key, value]) => `${key}: ${[value].flat().join(', ')}`);
  return parts.length ? parts.join('; ') : 'every event you may see';
}

function deliveriesTable(items) {
  if (!items.length) return h('p', { class: 'muted' }, 'No deliveries yet.');
  return h('div', { class: 'table-wrap' }, h('table', { class: 'rows deliveries' },
    h('thead', null, h('tr', null, ['When', 'Event', 'State', 'Attempts', 'Status', 'Latency', 'Error'].map((t) => h('th', null, t)))),
    h('tbody', null, items.map((d) => h('tr', null,
      h('td', { 'data-label': 'When' }, new Date(d.created_at).toLocaleString()),
      h('td', { 'data-label': 'Event' }, d.event_type ? `${d.event_type} ${d.repository || ''}${d.tag ? `:${d.tag}` : ''}` : 'ping'),
      h('td', { 'data-label': 'State', class: `delivery-${d.state}` }, d.state),
      h('td', { 'data-label': 'Attempts' }, String(d.attempts)),
      h('td', { 'data-label': 'Status' }, d.last_status == null ? '–' : String(d.last_status)),
      h('td', { 'data-label': 'Latency' }, d.latency_ms == null ? '–' : `${Math.round(d.latency_ms)} ms`),
      h('td', { 'data-label': 'Error' }, d.last_error || ''),
    )))));
}

async function act(what, call, rerender) {
  try {
    await call();
    notice(what);
  } catch (error) {
    if (!(error instanceof api.ApiError)) throw error;
    notice(`Failed: ${error.message}`);
  }
  rerender();
}

async function card(subscription, rerender) {
  const deliveries = await api.get(`subscriptions/${subscription.id}/deliveries`, { limit: 10 });
  const resource = `subscriptions/${subscription.id}`;
  return h('section', { class: 'subscription', 'data-id': subscription.id, 'aria-label': subscription.name },
    h('h2', null, subscription.name, ' ', state(subscription)),
    h('table', { class: 'pairs' }, h('tbody', null,
      h('tr', null, h('th', null, 'target'), h('td', null, subscription.url)),
      h('tr', null, h('th', null, 'format'), h('td', null, subscription.format)),
      h('tr', null, h('th', null, 'filters'), h('td', null, filtersText(subscription.filters))),
      h('tr', null, h('th', null, 'owner'), h('td', null, subscription.owner)),
      subscription.failure_reason && h('tr', null, h('th', null, 'why failing'), h('td', { class: 'problem' }, subscription.failure_reason)))),
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: () => act('Ping queued.', () => api.send('POST', `${resource}/ping`), rerender) }, 'Send a ping'),
      h('button', { type: 'button', onclick: () => act(subscription.paused ? 'Resumed.' : 'Paused.',
        () => api.send('PATCH', resource, { paused: !subscription.paused }), rerender) }, subscription.paused ? 'Resume' : 'Pause'),
      h('button', { type: 'button', onclick: () => act('Deleted.', () => api.send('DELETE', resource), rerender) }, 'Delete')),
    h('h3', null, 'Recent deliveries'), deliveriesTable(deliveries.items));
}

function createForm(rerender) {
  const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);
  const name = h('input', { id: 'sub-name', required: true, maxlength: 100 });
  const url = h('input', { id: 'sub-url', type: 'url', required: true, placeholder: 'https://hooks.example.com/ocicat' });
  const format = h('select', { id: 'sub-format' }, FORMATS.map((f) => h('option', { value: f }, f)));
  const namespace = h('input', { id: 'sub-namespace', placeholder: 'team/charts (optional)' });
  const types = h('input', { id: 'sub-types', placeholder: 'chart.version.published, tag.moved (optional)' });
  const secret = h('p', { class: 'secret', role: 'status' });
  const form = h('form', { class: 'create-subscription', method: 'post' },
    field('sub-name', 'Name', name), field('sub-url', 'Target URL', url), field('sub-format', 'Format', format),
    field('sub-namespace', 'Namespace', namespace), field('sub-types', 'Event types', types),
    h('button', { type: 'submit' }, 'Subscribe'), secret);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const filters = {};
    if (namespace.value.trim()) filters.namespace = namespace.value.trim();
    const eventTypes = types.value.split(',').map((t) => t.trim()).filter(Boolean);
    if (eventTypes.length) filters.event_types = eventTypes;
    try {
      const created = await api.send('POST', 'subscriptions', { name: name.value.trim(), url: url.value.trim(), format: format.value, filters });
      await rerender();
      notice(`Subscribed. Signing secret, shown this once: ${created.secret}`);
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      secret.textContent = `Not subscribed: ${error.message}`;
    }
  });
  return form;
}

export default async function subscriptions() {
  if (!session.identity()) {
    throw new api.ApiError(401, 'Sign in to see and manage your subscriptions to catalog events.');
  }
  const list = h('div', { class: 'subscriptions' });
  const rerender = async () => {
    const page = await api.get('subscriptions', { limit: 100 });
    list.replaceChildren(...(page.items.length ? await Promise.all(page.items.map((s) => card(s, rerender)))
      : [h('p', { class: 'muted' }, 'No subscriptions yet.')]));
  };
  await rerender();
  return {
    title: 'Subscriptions',
    content: [h('h1', null, 'Subscriptions'),
      h('p', null, 'Catalog events (a chart version published, a tag moved, a manifest deleted, ...) sent to your ',
        'URL as signed CloudEvents or Slack messages, for what you may see when they are sent.'),
      h('h2', null, 'New subscription'), createForm(rerender), list],
  };
}
