// Local development OpenID Connect provider for django-secure-sso.
//
// Built on oidc-provider (https://github.com/panva/node-oidc-provider).
// It is meant for the example site and the end-to-end tests ONLY: it accepts
// any password, keeps everything in memory, speaks plain http (or https, see
// DEVIDP_TLS_CERT below) and only ever listens on a loopback address.
//
// Configuration (environment variables):
//   DEVIDP_PORT      TCP port (default 9000; "0" picks a free port).
//   DEVIDP_HOST      optional, loopback address to bind (default 127.0.0.1;
//                    anything that is not a loopback address is refused).
//   DEVIDP_CLIENTS   JSON list of client metadata objects (client_id,
//                    client_secret, redirect_uris, post_logout_redirect_uris,
//                    optionally token_endpoint_auth_method, ...).
//   DEVIDP_ACCOUNTS  optional path to a JSON file {"<login>": {claims...}}
//                    overriding/adding claims per login name. The file is
//                    re-read on every account lookup / claims call.
//                    Two keys of an entry are not claims but describe how the
//                    login authenticates, read when the login form is
//                    submitted: "amr" (list of method strings, e.g.
//                    ["pwd", "mfa"]) and "acr" (a string, e.g.
//                    "urn:devidp:mfa"). They reach the ID token (with
//                    auth_time) as the session's authentication properties;
//                    without them the ID token carries neither.
//   DEVIDP_CONFORM_ID_TOKEN_CLAIMS  optional, "0" turns conformIdTokenClaims
//                    off (default on, as in oidc-provider).
//   DEVIDP_ALLOW_LOOPBACK_CALLS  optional, "1" lets the provider's own
//                    outgoing calls (back-channel logout) reach loopback
//                    addresses, where the example site and the test server
//                    listen. oidc-provider refuses special-use addresses by
//                    default as an SSRF guard; only loopback is re-allowed.
//   DEVIDP_TLS_CERT  optional, with DEVIDP_TLS_KEY: PEM paths of a certificate
//   DEVIDP_TLS_KEY   (chain) and its private key. The provider then serves
//                    https and its issuer is https://<host>:<port>, as
//                    production settings require (the browser tests use a
//                    test CA they generate). Setting only one is an error.
//
// Clients may set backchannel_logout_uri (with backchannel_logout_session_required)
// and ask for refresh tokens with the offline_access scope (and prompt=consent, as
// OpenID Connect Core 11 requires); every refresh rotates the refresh token.
//
// When listening it prints exactly one line to stdout:
//   {"ready": true, "issuer": "http://127.0.0.1:<port>"}   (https:// with TLS)
// Everything else (including oidc-provider's notices) goes to stderr.
//
// Runtime: oidc-provider supports Node.js 22 LTS and later only. package.json
// pins Node.js 22 LTS as the npm package "node", so `npm ci` in this directory
// installs it as node_modules/.bin/node; run this file with that binary:
//   example/devidp/node_modules/.bin/node example/devidp/server.mjs
// On an older Node.js it refuses to start (one line on stderr, exit status 1).
//
// Offline: the pages served here load nothing from outside the provider. The
// logout pages are our own (logoutSource, postLogoutSuccessSource), the
// development login/consent pages lose their remote web-font @import (see
// dropRemoteFonts), and GET /favicon.ico answers with a small inline SVG.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';

// Checked before oidc-provider is imported (in main()): on an older Node.js
// oidc-provider only warns "Unsupported runtime" and carries on, unsupported.
const MINIMUM_NODE_MAJOR = 22;
if (Number(process.versions.node.split('.')[0]) < MINIMUM_NODE_MAJOR) {
  process.stderr.write(
    `devidp: Node.js ${process.version} is too old, the development provider needs Node.js ${MINIMUM_NODE_MAJOR} LTS or later: `
    + 'run it with example/devidp/node_modules/.bin/node (the pinned Node.js 22 that `npm ci` in example/devidp installs)\n',
  );
  process.exit(1);
}

// oidc-provider prints its notices with console.info (stdout). stdout is
// reserved for the single "ready" line, so route everything else to stderr.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);
console.debug = (...args) => console.error(...args);

function fail(message, error) {
  process.stderr.write(`devidp: ${message}${error ? `: ${error.stack || error}` : ''}\n`);
  process.exit(1);
}

// ---------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------

function parsePort(raw) {
  if (raw === undefined || raw === '') return 9000;
  if (!/^\d+$/.test(raw)) fail(`DEVIDP_PORT must be an integer, got ${JSON.stringify(raw)}`);
  const port = Number(raw);
  if (port > 65535) fail(`DEVIDP_PORT out of range: ${port}`);
  return port;
}

function isLoopback(host) {
  if (net.isIPv4(host)) return host.split('.')[0] === '127';
  if (net.isIPv6(host)) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

function parseHost(raw) {
  const host = raw === undefined || raw === '' ? '127.0.0.1' : raw;
  if (!isLoopback(host)) {
    fail(`refusing to bind non-loopback address ${JSON.stringify(host)} (this provider accepts any password)`);
  }
  return host;
}

function parseClients(raw) {
  if (raw === undefined || raw.trim() === '') return [];
  let clients;
  try {
    clients = JSON.parse(raw);
  } catch (error) {
    fail('DEVIDP_CLIENTS is not valid JSON', error);
  }
  if (!Array.isArray(clients)) fail('DEVIDP_CLIENTS must be a JSON list of client metadata objects');
  return clients.map((client, index) => {
    if (client === null || typeof client !== 'object' || Array.isArray(client)) {
      fail(`DEVIDP_CLIENTS[${index}] must be an object`);
    }
    if (typeof client.client_id !== 'string' || !client.client_id) {
      fail(`DEVIDP_CLIENTS[${index}] needs a client_id`);
    }
    if (typeof client.client_secret !== 'string' || !client.client_secret) {
      fail(`DEVIDP_CLIENTS[${index}] (${client.client_id}) needs a client_secret (confidential clients only)`);
    }
    return {
      token_endpoint_auth_method: 'client_secret_basic',
      ...client,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    };
  });
}

const PORT = parsePort(process.env.DEVIDP_PORT);
const HOST = parseHost(process.env.DEVIDP_HOST);
const CLIENTS = parseClients(process.env.DEVIDP_CLIENTS);
const ACCOUNTS_PATH = process.env.DEVIDP_ACCOUNTS || '';
const CONFORM_ID_TOKEN_CLAIMS = process.env.DEVIDP_CONFORM_ID_TOKEN_CLAIMS !== '0';
const ALLOW_LOOPBACK_CALLS = process.env.DEVIDP_ALLOW_LOOPBACK_CALLS === '1';

// ---------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------

function readAccounts() {
  if (!ACCOUNTS_PATH) return {};
  let text;
  try {
    text = fs.readFileSync(ACCOUNTS_PATH, 'utf8');
  } catch (error) {
    if (error.code === 'ENOENT') return {};
    throw error;
  }
  if (!text.trim()) return {};
  const accounts = JSON.parse(text);
  if (accounts === null || typeof accounts !== 'object' || Array.isArray(accounts)) {
    throw new TypeError(`${ACCOUNTS_PATH} must contain a JSON object`);
  }
  return accounts;
}

function capitalize(word) {
  return word ? word[0].toUpperCase() + word.slice(1) : word;
}

function defaultClaims(login) {
  const parts = login.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const givenName = capitalize(parts[0] || login);
  const familyName = parts.length > 1 ? parts.slice(1).map(capitalize).join(' ') : 'Test';
  return {
    email: `${login}@example.test`,
    email_verified: true,
    name: `${givenName} ${familyName}`,
    given_name: givenName,
    family_name: familyName,
    preferred_username: login,
    groups: [],
  };
}

// Authentication properties of an accounts file entry, not user claims.
const AUTHENTICATION_KEYS = ['amr', 'acr'];

// Defaults, overridden by the accounts file entry; a claim overridden with
// null is removed. `sub` is always the login name.
function claimsFor(login) {
  const overrides = { ...(readAccounts()[login] || {}) };
  for (const key of AUTHENTICATION_KEYS) delete overrides[key];
  const claims = { ...defaultClaims(login), ...overrides };
  for (const [key, value] of Object.entries(claims)) {
    if (value === null) delete claims[key];
  }
  claims.sub = login;
  return claims;
}

async function findAccount(ctx, sub) {
  if (typeof sub !== 'string' || !sub) return undefined;
  // Read once here too so a broken accounts file shows up early.
  claimsFor(sub);
  return {
    accountId: sub,
    async claims() {
      return claimsFor(sub);
    },
  };
}

// How `login` authenticates this time: { amr, acr } from its accounts file
// entry, each left out when absent. A malformed value is an error (the login
// fails loudly) rather than silently weaker or stronger authentication.
function authenticationFor(login) {
  const entry = readAccounts()[login] || {};
  const result = {};
  if (entry.amr !== undefined && entry.amr !== null) {
    if (!Array.isArray(entry.amr) || !entry.amr.every((v) => typeof v === 'string' && v)) {
      throw new TypeError(`accounts file: "amr" of ${login} must be a list of strings`);
    }
    result.amr = [...entry.amr];
  }
  if (entry.acr !== undefined && entry.acr !== null) {
    if (typeof entry.acr !== 'string' || !entry.acr) {
      throw new TypeError(`accounts file: "acr" of ${login} must be a non-empty string`);
    }
    result.acr = entry.acr;
  }
  return result;
}

// devInteractions finishes a login with { login: { accountId } } only. Every
// finished interaction goes through provider.interactionResult(), so the
// login's amr/acr are added there; oidc-provider then keeps them on the
// session (with the login time, auth_time) and puts them in ID tokens.
function addAuthenticationToLogins(provider) {
  const interactionResult = provider.interactionResult.bind(provider);
  provider.interactionResult = async (req, res, result, options) => {
    if (result && result.login && typeof result.login.accountId === 'string') {
      result = { ...result, login: { ...result.login, ...authenticationFor(result.login.accountId) } };
    }
    return interactionResult(req, res, result, options);
  };
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

function signingJwk(type, options, alg) {
  const { privateKey } = crypto.generateKeyPairSync(type, options);
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig', kid: `devidp-${alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}` };
}

const JWKS = {
  keys: [
    // The first RS256 key is the one used for ID tokens (default alg RS256).
    signingJwk('rsa', { modulusLength: 2048 }, 'RS256'),
    signingJwk('ec', { namedCurve: 'P-256' }, 'ES256'),
  ],
};

// ---------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------

function configuration() {
  return {
    clients: CLIENTS,
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    // Rotate on every use, as Auth0/Okta do with rotation on; a reused refresh
    // token then revokes the grant (oidc-provider's reuse detection).
    rotateRefreshToken: () => true,
    fetch: outgoingFetch,
    responseTypes: ['code'],
    jwks: JWKS,
    cookies: {
      keys: [crypto.randomBytes(32).toString('base64url')],
      // Cookies are not isolated by port: the relying party on
      // 127.0.0.1:<other port> shares the jar, so use distinctive names.
      names: {
        session: 'devidp_session',
        interaction: 'devidp_interaction',
        resume: 'devidp_interaction_resume',
      },
    },
    findAccount,
    // Offered in discovery; an acr value comes from the accounts file ("acr").
    acrValues: ['urn:devidp:pwd', 'urn:devidp:mfa'],
    claims: {
      // acr, amr and auth_time are the session's (see addAuthenticationToLogins),
      // put in every ID token that has them, as providers commonly do.
      openid: ['sub', 'acr', 'amr', 'auth_time'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    conformIdTokenClaims: CONFORM_ID_TOKEN_CLAIMS,
    pkce: {
      // S256 is the only method oidc-provider implements; require it always.
      required: () => true,
    },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
      backchannelLogout: { enabled: true },
      userinfo: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
    },
    // Public clients are not configured, CORS is only needed for browser JS.
    clientBasedCORS: () => false,
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      RefreshToken: 14 * 24 * 3600,
    },
    renderError(ctx, out) {
      ctx.type = 'html';
      const rows = Object.entries(out)
        .map(([key, value]) => `<pre><strong>${escapeHtml(key)}</strong>: ${escapeHtml(value)}</pre>`)
        .join('');
      ctx.body = page('devidp error', `<h1>devidp error</h1>${rows}`);
    },
  };
}

// ---------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------

// Self-contained: no web font, image, script or stylesheet from elsewhere, so
// the pages work offline. System fonts; colours keep a 4.5:1 contrast or more.
const PAGE_STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0;padding:2rem 1rem;background:#f4f5f7;color:#1d2330;line-height:1.5}
main{max-width:26rem;margin:0 auto;padding:1.5rem 2rem;background:#fff;border-radius:6px;box-shadow:0 1px 3px rgba(0,0,0,.25)}
h1{font-size:1.4rem;font-weight:600;margin:0 0 1rem}
p{margin:0 0 1rem}
button{display:block;width:100%;margin:0 0 .75rem;padding:.6rem 1rem;font:inherit;font-weight:600;border-radius:4px;cursor:pointer}
button.primary{background:#1f5fbf;color:#fff;border:2px solid #1f5fbf}
button.secondary{background:#fff;color:#1f5fbf;border:2px solid #1f5fbf}
button:hover{text-decoration:underline}
button:focus-visible{outline:3px solid #1d2330;outline-offset:2px}
.note{font-size:.9rem;color:#4a5263}
`;

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="/favicon.ico" type="image/svg+xml">
<style>${PAGE_STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
}

// RP-initiated logout confirmation. `form` is oidc-provider's own, empty form:
//   <form id="op.logoutForm" method="post" action="<end_session_confirm>">
//     <input type="hidden" name="xsrf" value="..."/></form>
// As in oidc-provider's default page, the buttons sit outside it and submit it
// through form="op.logoutForm": "Yes" posts logout=yes (the whole provider
// session ends), "No" posts only xsrf (only the requesting client's
// authorization ends; the provider session stays).
async function logoutSource(ctx, form) {
  ctx.type = 'html';
  ctx.body = page('Sign out – development provider', `<h1>Sign out of the development provider?</h1>
<p>Do you want to sign out from ${escapeHtml(ctx.host)}?</p>
${form}
<button class="primary" autofocus type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<button class="secondary" type="submit" form="op.logoutForm">No, stay signed in</button>`);
}

async function postLogoutSuccessSource(ctx) {
  const client = ctx.oidc.client;
  const display = client ? client.clientName || client.clientId : '';
  ctx.type = 'html';
  ctx.body = page('Signed out – development provider', `<h1>You are signed out</h1>
<p>You are signed out at the development provider.</p>
${display ? `<p>The sign-out was requested by ${escapeHtml(display)}.</p>\n` : ''}<p class="note">You can close this window.</p>`);
}

// The development login and consent pages (oidc-provider's devInteractions,
// lib/views/layout.js) have no configuration hook for their HTML, and their
// stylesheet starts with @import url(https://fonts.googleapis.com/...): offline
// the page waits for it, and online every visit tells Google. The rule only
// loads the Roboto web font (the CSS falls back to sans-serif), so it is cut
// from every HTML response on its way out.
const REMOTE_FONT_IMPORT = /@import\s+url\(\s*['"]?https?:\/\/fonts\.googleapis\.com\/[^)]*\)\s*;?/g;

async function dropRemoteFonts(ctx, next) {
  await next();
  if (typeof ctx.body === 'string' && ctx.response.is('html')) {
    ctx.body = ctx.body.replace(REMOTE_FONT_IMPORT, '');
  }
}

// A key on a blue square; browsers ask for /favicon.ico on every page.
const FAVICON_SVG = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
  + '<rect width="32" height="32" rx="6" fill="#1f5fbf"/>'
  + '<circle cx="11" cy="16" r="5" fill="none" stroke="#fff" stroke-width="3"/>'
  + '<path d="M16 16h11M23 16v5M27 16v4" fill="none" stroke="#fff" stroke-width="3"/>'
  + '</svg>',
);

// Answers GET/HEAD /favicon.ico (true) before the request reaches the provider,
// which has no such route (404).
function serveFavicon(req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const path = (req.url || '').split('?')[0];
  if (path !== '/favicon.ico') return false;
  res.writeHead(200, {
    'Content-Type': 'image/svg+xml',
    'Content-Length': FAVICON_SVG.length,
    'Cache-Control': 'public, max-age=86400',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : FAVICON_SVG);
  return true;
}

// oidc-provider hands its own fetch an undici dispatcher that destroys
// connections to special-use addresses (SSRF guard). With
// DEVIDP_ALLOW_LOOPBACK_CALLS=1, calls to loopback URLs go without it; every
// other destination keeps the guard.
function outgoingFetch(url, options) {
  if (ALLOW_LOOPBACK_CALLS) {
    let host = '';
    try {
      host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    } catch {
      host = '';
    }
    if (host === 'localhost' || isLoopback(host)) {
      const { dispatcher, ...rest } = options;
      return globalThis.fetch(url, rest);
    }
  }
  return globalThis.fetch(url, options);
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

// DEVIDP_TLS_CERT / DEVIDP_TLS_KEY: both (https) or neither (plain http).
function tlsOptions(certPath, keyPath) {
  if (!certPath && !keyPath) return null;
  if (!certPath || !keyPath) fail('set both DEVIDP_TLS_CERT and DEVIDP_TLS_KEY, or neither');
  try {
    return { cert: fs.readFileSync(certPath), key: fs.readFileSync(keyPath) };
  } catch (error) {
    return fail('cannot read DEVIDP_TLS_CERT / DEVIDP_TLS_KEY', error);
  }
}

async function main() {
  // Imported late so the console redirection above is in place first.
  const { default: Provider } = await import('oidc-provider');

  const tls = tlsOptions(process.env.DEVIDP_TLS_CERT, process.env.DEVIDP_TLS_KEY);
  const server = tls ? https.createServer(tls) : http.createServer();
  server.on('error', (error) => fail(`cannot listen on ${HOST}:${PORT}`, error));
  await new Promise((resolve) => { server.listen(PORT, HOST, resolve); });

  const { port } = server.address();
  const hostPart = net.isIPv6(HOST) ? `[${HOST}]` : HOST;
  const issuer = `${tls ? 'https' : 'http'}://${hostPart}:${port}`;

  let provider;
  try {
    provider = new Provider(issuer, configuration());
  } catch (error) {
    server.close();
    fail('invalid provider configuration', error);
  }
  addAuthenticationToLogins(provider);
  provider.use(dropRemoteFonts);

  for (const event of ['server_error', 'grant.error', 'authorization.error', 'end_session.error', 'userinfo.error', 'introspection.error', 'revocation.error', 'jwks.error', 'discovery.error', 'check_session.error', 'backchannel.error']) {
    provider.on(event, (ctx, error) => {
      const err = error instanceof Error ? error : ctx;
      const detail = err && err.error_description ? ` (${err.error_description})` : '';
      process.stderr.write(`devidp: ${event}: ${err && (err.message || err)}${detail}\n`);
      if (event === 'server_error' && err && err.stack) process.stderr.write(`${err.stack}\n`);
    });
  }

  provider.on('backchannel.success', (ctx, client, accountId, sid) => {
    process.stderr.write(`devidp: backchannel.success: client=${client.clientId} sid=${sid ? 'yes' : 'no'}\n`);
  });

  server.removeAllListeners('error');
  server.on('error', (error) => process.stderr.write(`devidp: server error: ${error.stack || error}\n`));
  const handle = provider.callback();
  server.on('request', (req, res) => {
    if (!serveFavicon(req, res)) handle(req, res);
  });

  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`devidp: ${signal} received, shutting down\n`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  process.stdout.write(`${JSON.stringify({ ready: true, issuer })}\n`);
}

main().catch((error) => fail('startup failed', error));
