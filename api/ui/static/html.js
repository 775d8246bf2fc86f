// The only way HTML from the server reaches the page: the README, which the API renders and sanitizes
// (api/rendering.py). The Content-Security-Policy requires Trusted Types, so any other attempt to
// assign markup (innerHTML, insertAdjacentHTML, ...) throws instead of running.

const policy = window.trustedTypes
  ? window.trustedTypes.createPolicy(document.documentElement.dataset.htmlPolicy, { createHTML: (html) => html })
  : null;

/**
 * Replace the container's content with server-sanitized HTML. Images load lazily and without a
 * referrer; headings move `depth` levels down, so a README's "# Title" sits below the page's own h1 and h2.
 */
export function insertSanitized(container, html, depth = 0) {
  const doc = new DOMParser().parseFromString(policy ? policy.createHTML(html) : html, 'text/html');
  for (const img of doc.images) {
    img.loading = 'lazy';
    img.referrerPolicy = 'no-referrer';
  }
  for (const heading of [...doc.body.querySelectorAll('h1, h2, h3, h4, h5, h6')].reverse()) {
    const lower = doc.createElement(`h${Math.min(6, Number(heading.tagName[1]) + depth)}`);
    lower.append(...heading.childNodes);
    heading.replaceWith(lower);
  }
  container.replaceChildren(...doc.body.childNodes);
}
