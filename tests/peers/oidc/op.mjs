// OAuth2/OpenID authorization server for the tests (oidc-provider): node op.mjs
// Configured by environment; see tests/support/oidc_provider.py, which starts it.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import http from 'node:http';
import Provider, { errors } from 'oidc-provider';

const env = process.env;
const PORT = Number(env.OP_PORT || 27600);
const ISSUER = `http://127.0.0.1:${PORT}`;
const AT_TTL = Number(env.OP_AT_TTL || 60);            // access token lifetime, seconds
const AT_FORMAT = env.OP_AT_FORMAT || 'opaque';        // 'opaque' (introspection) | 'jwt'
const DEFAULT_USER = env.OP_USER || 'alice@example.test';
const INTERACTIVE = env.OP_INTERACTIVE === '1';        // HTML sign-in and consent pages
const MAIL_RS = 'urn:example:mail';                    // resource indicator of the mail server

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };
if (env.OP_PUBKEY_PEM) {
  fs.writeFileSync(env.OP_PUBKEY_PEM, crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }));
}

const provider = new Provider(ISSUER, {
  clients: [
    { // the mail gateway: confidential client, code flow + refresh
      client_id: 'gateway', client_secret: 'gateway-secret',
      redirect_uris: ['http://127.0.0.1/api/oauth2/callback'],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    { // Dovecot and the test SMTP upstream: they only introspect
      client_id: 'dovecot', client_secret: 'dovecot-secret',
      redirect_uris: [], grant_types: [], response_types: [],
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: ['test-only-cookie-key'] },
  scopes: ['openid', 'offline_access', 'email'],
  claims: { openid: ['sub'], email: ['email'] },
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id, email: id }) }),
  extraTokenClaims: (ctx, token) => (token.accountId ? { email: token.accountId } : undefined),
  pkce: { required: () => true },
  ttl: { AccessToken: AT_TTL, IdToken: 3600, RefreshToken: 86400, Grant: 86400, Session: 86400, Interaction: 600 },
  rotateRefreshToken: () => env.OP_ROTATE_RT !== '0',
  features: {
    devInteractions: { enabled: false },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => MAIL_RS,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== MAIL_RS) throw new errors.InvalidTarget();
        return { scope: 'mail', audience: MAIL_RS, accessTokenTTL: AT_TTL,
                 accessTokenFormat: AT_FORMAT, jwt: { sign: { alg: 'RS256' } } };
      },
    },
  },
  // Dovecot 2.3 accepts only typ "JWT" in the JOSE header (oidc-provider uses "at+jwt")
  formats: { customizers: { jwt: (ctx, token, jwt) => { jwt.header = { typ: 'JWT' }; } } },
});

// The gateway's callback is on the admin port, which each test picks: any loopback
// redirect URI with the callback path is allowed (RFC 8252 §7.3 style), nothing else.
const allowed = provider.Client.prototype.redirectUriAllowed;
provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(uri) {
  const url = new URL(uri);
  if (url.hostname === '127.0.0.1' && url.pathname === '/api/oauth2/callback') return true;
  return allowed.call(this, uri);
};

async function approve(req, res, details, accountId) {
  const { prompt, params, session, grantId } = details;
  let result;
  if (prompt.name === 'login') {
    result = { login: { accountId: accountId || params.login_hint || DEFAULT_USER } };
  } else if (prompt.name === 'consent') {
    const grant = grantId ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [rs, scopes] of Object.entries(d.missingResourceScopes || {})) grant.addResourceScope(rs, scopes.join(' '));
    result = { consent: { grantId: await grant.save() } };
  } else {
    result = { error: 'access_denied', error_description: `unhandled prompt ${prompt.name}` };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

function page(res, uid, prompt, hint) {
  const field = prompt === 'login'
    ? `<label>Email <input name="login" value="${hint.replace(/[<>&"]/g, '')}"></label>` : '<p>The mail gateway asks to read and send your mail.</p>';
  const button = prompt === 'login' ? 'Sign in' : 'Allow';
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.end(`<!doctype html><title>Test provider</title><h1>Test provider: ${prompt}</h1>
<form method="post" action="/interaction/${uid}">${field}<button type="submit">${button}</button></form>`);
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (!INTERACTIVE) return approve(req, res, details);
  if (req.method === 'GET') return page(res, details.uid, details.prompt.name, details.params.login_hint || DEFAULT_USER);
  let body = '';
  for await (const chunk of req) body += chunk;
  return approve(req, res, details, new URLSearchParams(body).get('login'));
}

const op = provider.callback();
http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => { res.statusCode = 500; res.end(String(err)); });
  } else {
    op(req, res);
  }
}).listen(PORT, '127.0.0.1', () => console.log(`oidc-provider ${ISSUER} ready (access tokens: ${AT_FORMAT}, ttl ${AT_TTL}s)`));
