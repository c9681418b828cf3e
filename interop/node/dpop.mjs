// Runs npm openid-client (v6, on oauth4webapi 3), unmodified, as a DPoP client (RFC 9449) of one provider and of
// DPoP-protected services.
//
//   node dpop.mjs CONFIG.json
//
// Prints one JSON line per step on stdout: {"peer", "step", "ok", "detail"}; exits 0 once every step ran (the
// caller judges `ok`), 2 on a bad config. Two keys, as in the article's system: the front end's (its user's
// tokens are bound to it) and a service's (its client-credentials token and the exchanged one are bound to it). Each
// step's `trail` lists the HTTP exchanges it made (status, and the error of a refusal), so a `use_dpop_nonce`
// retry by openid-client shows.
//
// CONFIG.json:
// {
//   "issuer": "http://127.0.0.1:9001",
//   "resources": {"client_credentials", "authorization_code", "token_exchange"}: the URL each token is sent to with
//                a GET (a token without an entry is not sent anywhere),
//   "login": {"client_id", "client_secret", "redirect_uri", "scope", "username", "password"},
//   "client_credentials": {"client_id", "client_secret", "scope"},
//   "exchange": {"client_id", "client_secret", "scope"}
// }
import { readFileSync } from 'node:fs'
import * as client from 'openid-client'
import { loginOverHttp } from './login.mjs'

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const PEER = 'openid-client'

function report(step, ok, detail) {
  process.stdout.write(JSON.stringify({ peer: PEER, step, ok, detail }) + '\n')
}

function describe(error) {
  const detail = { message: String(error && error.message ? error.message : error) }
  for (const key of ['code', 'error', 'error_description', 'status']) {
    if (error && error[key] !== undefined) detail[key] = error[key]
  }
  return detail
}

// The HTTP exchanges of the current step, recorded by the configurations' custom fetch.
let trail = []

async function recordingFetch(url, options) {
  const response = await fetch(url, options)
  const entry = { method: options?.method ?? 'GET', path: new URL(url).pathname, status: response.status }
  if (options?.headers) entry.dpop_proof = new Headers(options.headers).has('dpop')
  if (response.status >= 400) {
    entry.www_authenticate = response.headers.get('www-authenticate') ?? undefined
    const body = await response.clone().text()
    try {
      entry.error = JSON.parse(body).error
    } catch {
      entry.body = body.slice(0, 200)
    }
  }
  else if (response.headers.get('content-type')?.startsWith('application/json')) {
    // The token_type as the server wrote it (oauth4webapi hands it over lower-cased).
    const tokenType = JSON.parse(await response.clone().text()).token_type
    if (tokenType !== undefined) entry.token_type = tokenType
  }
  trail.push(entry)
  return response
}

async function step(name, fn) {
  trail = []
  try {
    const { value, detail } = await fn()
    report(name, true, { ...detail, trail })
    return value
  } catch (error) {
    report(name, false, { ...describe(error), trail })
    return undefined
  }
}

function skipped(name, needs) {
  report(name, false, { message: `not run: needs step ${needs}` })
}

async function discover(issuer, registration) {
  const config = await client.discovery(
    new URL(issuer),
    registration.client_id,
    registration.client_secret,
    client.ClientSecretBasic(registration.client_secret),
    { execute: [client.allowInsecureRequests] },
  )
  config[client.customFetch] = recordingFetch
  return config
}

// A key pair, its DPoP handle for `config`, its public JWK (the test computes the thumbprint itself) and the
// thumbprint as oauth4webapi computes it.
async function dpopKey(config) {
  const keyPair = await client.randomDPoPKeyPair('ES256')
  const handle = client.getDPoPHandle(config, keyPair)
  const publicJwk = await crypto.subtle.exportKey('jwk', keyPair.publicKey)
  return { handle, public_jwk: publicJwk, jkt: await handle.calculateThumbprint() }
}

function tokenDetail(response) {
  return {
    token_type: response.token_type,
    expires_in: response.expires_in,
    scope: response.scope,
    issued_token_type: response.issued_token_type,
    access_token: response.access_token,
    has_refresh_token: Boolean(response.refresh_token),
  }
}

async function callResource(config, resource, accessToken, key) {
  const response = await client.fetchProtectedResource(config, accessToken, new URL(resource), 'GET', undefined, undefined, {
    DPoP: key.handle,
  })
  const body = await response.json()
  if (response.status !== 200) throw new Error(`the service answered ${response.status}: ${JSON.stringify(body)}`)
  return { value: body, detail: { status: response.status, body } }
}

async function main() {
  if (process.argv.length !== 3) {
    process.stderr.write('usage: node dpop.mjs CONFIG.json\n')
    process.exit(2)
  }
  const config = JSON.parse(readFileSync(process.argv[2], 'utf8'))
  const { issuer, resources, login } = config

  const loginConfig = await step('discovery', async () => {
    const discovered = await discover(issuer, login)
    const metadata = discovered.serverMetadata()
    return { value: discovered, detail: { dpop_signing_alg_values_supported: metadata.dpop_signing_alg_values_supported } }
  })
  if (!loginConfig) return
  const frontEnd = await dpopKey(loginConfig)
  const cc = config.client_credentials
  const ccConfig = await discover(issuer, cc)
  const service = await dpopKey(ccConfig)
  report('keys', true, {
    front_end: { public_jwk: frontEnd.public_jwk, jkt: frontEnd.jkt },
    service: { public_jwk: service.public_jwk, jkt: service.jkt },
  })

  // user-service's own token, bound to its key; the server's nonce is asked for and sent on the retry.
  const ccTokens = await step('client_credentials', async () => {
    const response = await client.clientCredentialsGrant(ccConfig, { scope: cc.scope }, { DPoP: service.handle })
    return { value: response, detail: tokenDetail(response) }
  })
  if (resources.client_credentials) {
    if (ccTokens) {
      await step('resource:client_credentials', () => callResource(ccConfig, resources.client_credentials, ccTokens.access_token, service))
    } else skipped('resource:client_credentials', 'client_credentials')
  }

  // The user's login through the front end, with dpop_jkt (RFC 9449 10) binding the code to the front end's key.
  const codeVerifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const callback = await step('authorization_code_login', async () => {
    const authorizationUrl = client.buildAuthorizationUrl(loginConfig, {
      redirect_uri: login.redirect_uri,
      scope: login.scope,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      dpop_jkt: frontEnd.jkt,
    })
    const { callback: url, trail: hops } = await loginOverHttp(authorizationUrl, login.redirect_uri, login.username, login.password)
    return { value: url, detail: { hops } }
  })
  let userTokens
  if (callback) {
    userTokens = await step('authorization_code_grant', async () => {
      const response = await client.authorizationCodeGrant(
        loginConfig,
        callback,
        { pkceCodeVerifier: codeVerifier, expectedState: state },
        undefined,
        { DPoP: frontEnd.handle },
      )
      return { value: response, detail: tokenDetail(response) }
    })
  } else skipped('authorization_code_grant', 'authorization_code_login')

  if (resources.authorization_code) {
    if (userTokens) {
      await step('resource:authorization_code', () => callResource(loginConfig, resources.authorization_code, userTokens.access_token, frontEnd))
    } else skipped('resource:authorization_code', 'authorization_code_grant')
  }

  if (userTokens?.refresh_token) {
    await step('refresh', async () => {
      const response = await client.refreshTokenGrant(loginConfig, userTokens.refresh_token, undefined, { DPoP: frontEnd.handle })
      return { value: response, detail: tokenDetail(response) }
    })
  } else skipped('refresh', 'authorization_code_grant with a refresh token')

  // The article's exchange: user-service (its key, as client message-service) swaps the user's token, bound to the
  // front end's key, for one aimed at message-service and bound to user-service's key.
  const ex = config.exchange
  let exchanged
  if (userTokens) {
    const exConfig = await discover(issuer, ex)
    exchanged = await step('token_exchange', async () => {
      const parameters = { subject_token: userTokens.access_token, subject_token_type: ACCESS_TOKEN_TYPE, scope: ex.scope }
      const response = await client.genericGrantRequest(exConfig, TOKEN_EXCHANGE, parameters, { DPoP: service.handle })
      return { value: response, detail: tokenDetail(response) }
    })
    if (resources.token_exchange) {
      if (exchanged) {
        await step('resource:token_exchange', () => callResource(exConfig, resources.token_exchange, exchanged.access_token, service))
      } else skipped('resource:token_exchange', 'token_exchange')
    }
  } else {
    skipped('token_exchange', 'authorization_code_grant')
  }
}

main().catch((error) => {
  report('unexpected', false, describe(error))
  process.exitCode = 1
})
