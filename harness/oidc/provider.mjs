// A real OpenID Connect provider for ocicat's tests: panva's oidc-provider (OpenID certified), configured to answer
// like GitLab (groups and role claims at userinfo only), with a few test-only routes under /test/ to change a user's
// groups and to tamper with the next ID token it hands out (forged, replayed, wrong audience).
//
//   PORT=9400 REDIRECT_URIS='["http://127.0.0.1:8080/auth/callback"]' OIDC_USERS='{"alice": {...}}' \
//   JWKS='{"keys": [<private JWK>]}' node provider.mjs
import Provider from 'oidc-provider';

const PORT = Number(process.env.PORT || 9400);
const ISSUER = `http://127.0.0.1:${PORT}`;
const USERS = JSON.parse(process.env.OIDC_USERS || '{}');
const REDIRECT_URIS = JSON.parse(process.env.REDIRECT_URIS || '[]');
const GITLAB = 'https://gitlab.org/claims/groups/';
const JWKS = process.env.JWKS ? JSON.parse(process.env.JWKS) : undefined; // its signing keys; a new set rotates them

const provider = new Provider(ISSUER, {
  clients: [
    { client_id: 'ocicat', client_secret: 'ocicat-secret', redirect_uris: REDIRECT_URIS,
      post_logout_redirect_uris: REDIRECT_URIS.map((uri) => new URL('/ui/', uri).href),
      response_types: ['code'], grant_types: ['authorization_code', 'refresh_token'] },
    // Another relying party of the same provider: its ID tokens are genuine but not meant for ocicat.
    { client_id: 'other', client_secret: 'other-secret', redirect_uris: [`${ISSUER}/test/other-callback`],
      response_types: ['code'], grant_types: ['authorization_code'] },
  ],
  claims: {
    openid: ['sub', 'groups_direct'],
    profile: ['name', 'nickname', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups', `${GITLAB}owner`, `${GITLAB}maintainer`, `${GITLAB}developer`],
  },
  pkce: { required: () => true },
  jwks: JWKS,
  // GitLab hands out a refresh token with every code; oidc-provider only for offline_access unless told so.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  cookies: { keys: ['test-only'] },
  async findAccount(ctx, sub) {
    return { accountId: sub, async claims() { return { sub, ...(USERS[sub] || {}) }; } };
  },
});

let tamper = null; // the id_token the next token response carries instead of its own
let lastIdToken = null;

async function json(ctx) {
  let raw = '';
  for await (const chunk of ctx.req) raw += chunk;
  return raw ? JSON.parse(raw) : {};
}

provider.use(async (ctx, next) => {
  const user = ctx.path.match(/^\/test\/users\/([^/]+)$/);
  if (user && ctx.method === 'PUT') {
    USERS[decodeURIComponent(user[1])] = await json(ctx);
    ctx.status = 204;
    return;
  }
  if (ctx.path === '/test/tamper' && ctx.method === 'POST') {
    tamper = (await json(ctx)).id_token;
    ctx.status = 204;
    return;
  }
  if (ctx.path === '/test/last-id-token') {
    ctx.body = { id_token: lastIdToken };
    return;
  }
  if (ctx.path === '/test/other-callback') {
    ctx.body = { url: ctx.href };
    return;
  }
  await next();
  if (ctx.path === '/token' && ctx.status === 200 && ctx.body && ctx.body.id_token) {
    if (tamper) {
      ctx.body = { ...ctx.body, id_token: tamper };
      tamper = null;
    } else {
      lastIdToken = ctx.body.id_token;
    }
  }
});

provider.listen(PORT, '127.0.0.1', () => console.log(`listening on ${ISSUER}`));
