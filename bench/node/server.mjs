// node oidc-provider as the benchmark's peer authorization server.
//
// It serves the two grants tokensmith is measured on, with JWT access tokens signed by one key of the
// benchmark's algorithm:
// - client_credentials: oidc-provider's built-in grant (features.clientCredentials), with a default resource
//   server whose access token format is `jwt`;
// - token exchange (RFC 8693) through `registerGrantType`: verify the JWT subject token (signature, issuer,
//   audience, expiry) and issue a JWT access token for `message-service`, as the article's exchange does.
//
// Usage: node server.mjs CONFIG.json   (written by bench/run.py: port, workers, alg, issuer, keys, clients)
// With workers > 1 the primary forks that many cluster workers sharing the port, as uvicorn --workers does.

import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import process from 'node:process';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function tokenExchangeGrant(provider, subjectKeys, target) {
  return async function tokenExchange(ctx) {
    const { params, client } = ctx.oidc;
    if (!client.grantTypeAllowed(TOKEN_EXCHANGE)) {
      throw new errors.UnauthorizedClient('token exchange is not allowed for this client');
    }
    if (!params.subject_token || !params.subject_token_type) {
      throw new errors.InvalidRequest('subject_token and subject_token_type are required');
    }
    if (params.subject_token_type !== ACCESS_TOKEN_TYPE && params.subject_token_type !== JWT_TOKEN_TYPE) {
      throw new errors.InvalidRequest('unsupported subject_token_type');
    }
    let claims;
    try {
      ({ payload: claims } = await jose.jwtVerify(params.subject_token, subjectKeys, {
        issuer: config.issuer,
        audience: config.subject_audience,
        algorithms: [config.alg],
      }));
    } catch {
      throw new errors.InvalidGrant('subject_token is invalid');
    }
    const token = new provider.AccessToken({
      accountId: claims.sub,
      client,
      gty: 'token-exchange',
      scope: target.scope,
    });
    token.resourceServer = target;
    ctx.oidc.entity('AccessToken', token);
    const value = await token.save();
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: token.expiration,
      scope: token.scope,
    };
  };
}

async function startServer() {
  const resourceServerInfo = (audience, scope) => ({
    audience,
    scope,
    accessTokenTTL: 300,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: config.alg } },
  });
  const provider = new Provider(config.issuer, {
    clients: config.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      grant_types: ['client_credentials', TOKEN_EXCHANGE],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: config.scope,
    })),
    clientDefaults: { id_token_signed_response_alg: config.alg },
    ttl: { AccessToken: 300, ClientCredentials: 300 },
    jwks: { keys: [config.signing_jwk] },
    scopes: config.scope.split(' '),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => config.client_credentials_audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator) => resourceServerInfo(indicator, config.scope),
      },
    },
  });
  const publicJwk = { ...config.signing_jwk };
  for (const field of ['d', 'p', 'q', 'dp', 'dq', 'qi']) delete publicJwk[field];
  const subjectKeys = jose.createLocalJWKSet({ keys: [publicJwk] });
  const target = new provider.ResourceServer(
    config.exchange_audience,
    resourceServerInfo(config.exchange_audience, config.scope),
  );
  provider.registerGrantType(
    TOKEN_EXCHANGE,
    tokenExchangeGrant(provider, subjectKeys, target),
    ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource', 'scope'],
    ['audience', 'resource'],
  );
  http.createServer(provider.callback()).listen(config.port, '127.0.0.1');
}

if (config.workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < config.workers; i += 1) cluster.fork();
  // The benchmark stops the primary by PID; take the workers down with it.
  const stop = () => {
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  await startServer();
}
