// Runs npm openid-client (v6) and oauth4webapi (v3), unmodified, against one OpenID provider.
//
//   node peer.mjs CONFIG.json
//
// Prints one JSON line per step on stdout: {"peer", "step", "ok", "detail"}; exits 0 once every step ran (the
// caller judges `ok`), 2 on a bad config. The authorization-code login is completed over plain HTTP: the login
// page is fetched, its form (with its CSRF field) is posted, and the code is read from the redirect Location
// without any server listening on the redirect URI.
//
// CONFIG.json:
// {
//   "issuer": "http://127.0.0.1:9001",
//   "login": {"client_id", "client_secret", "redirect_uri", "scope", "username", "password", "audience"},
//   "client_credentials": {"client_id", "client_secret", "scope", "audience"},
//   "exchange": {"client_id", "client_secret", "audience" (optional), "scope" (optional), "expected_audience"}
// }
import { readFileSync } from 'node:fs'
import * as client from 'openid-client'
import * as oauth from 'oauth4webapi'
import { loginOverHttp } from './login.mjs'

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'

function report(peer, step, ok, detail) {
  process.stdout.write(JSON.stringify({ peer, step, ok, detail }) + '\n')
}

// What went wrong, including the server's error response when the library exposes it.
function describe(error) {
  const detail = { message: String(error && error.message ? error.message : error) }
  if (error && error.code) detail.code = error.code
  if (error && error.error) detail.error = error.error
  if (error && error.error_description) detail.error_description = error.error_description
  if (error && error.status) detail.status = error.status
  if (error && error.cause && typeof error.cause === 'object') {
    const cause = error.cause
    if (cause instanceof Response) detail.response_status = cause.status
    else detail.cause = JSON.parse(JSON.stringify(cause, (key, value) => (value instanceof Response ? `Response ${value.status}` : value)))
  }
  return detail
}

// Runs one step; a thrown error becomes {ok: false}. Returns the step's value, or undefined on failure.
async function step(peer, name, fn) {
  try {
    const { value, detail } = await fn()
    report(peer, name, true, detail)
    return value
  } catch (error) {
    report(peer, name, false, describe(error))
    return undefined
  }
}

function skipped(peer, name, needs) {
  report(peer, name, false, { message: `not run: needs step ${needs}` })
}

function decodeJwtPart(jwt, index) {
  return JSON.parse(Buffer.from(jwt.split('.')[index], 'base64url').toString('utf8'))
}

// ---- the steps -----------------------------------------------------------------------------------------

async function discover(issuer, registration) {
  return client.discovery(
    new URL(issuer),
    registration.client_id,
    registration.client_secret,
    client.ClientSecretBasic(registration.client_secret),
    { execute: [client.allowInsecureRequests] },
  )
}

async function validateAccessToken(as, token, audience) {
  const request = new Request('http://127.0.0.1/resource', { headers: { authorization: `Bearer ${token}` } })
  const claims = await oauth.validateJwtAccessToken(as, request, audience, { [oauth.allowInsecureRequests]: true })
  return { typ: decodeJwtPart(token, 0).typ, sub: claims.sub, aud: claims.aud, scope: claims.scope, client_id: claims.client_id }
}

async function main() {
  if (process.argv.length !== 3) {
    process.stderr.write('usage: node peer.mjs CONFIG.json\n')
    process.exit(2)
  }
  const config = JSON.parse(readFileSync(process.argv[2], 'utf8'))
  const { issuer, login } = config
  const OC = 'openid-client'
  const O4 = 'oauth4webapi'

  const loginConfig = await step(OC, 'discovery', async () => {
    const discovered = await discover(issuer, login)
    const metadata = discovered.serverMetadata()
    return {
      value: discovered,
      detail: { issuer: metadata.issuer, grant_types_supported: metadata.grant_types_supported },
    }
  })
  if (!loginConfig) return
  // Verify ID token signatures too (by default openid-client trusts the TLS-protected token endpoint).
  client.enableNonRepudiationChecks(loginConfig)
  const as = loginConfig.serverMetadata()

  const codeVerifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const callback = await step(OC, 'authorization_code_login', async () => {
    const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier)
    const authorizationUrl = client.buildAuthorizationUrl(loginConfig, {
      redirect_uri: login.redirect_uri,
      scope: login.scope,
      code_challenge: codeChallenge,
      code_challenge_method: 'S256',
      state,
      nonce,
    })
    const { callback: url, trail } = await loginOverHttp(authorizationUrl, login.redirect_uri, login.username, login.password)
    return { value: url, detail: { trail, state_returned: url.searchParams.get('state') === state } }
  })

  let tokens
  if (callback) {
    tokens = await step(OC, 'authorization_code_grant', async () => {
      const response = await client.authorizationCodeGrant(loginConfig, callback, {
        pkceCodeVerifier: codeVerifier,
        expectedState: state,
        expectedNonce: nonce,
        idTokenExpected: true,
      })
      return {
        value: response,
        detail: {
          token_type: response.token_type,
          expires_in: response.expires_in,
          scope: response.scope,
          has_refresh_token: Boolean(response.refresh_token),
        },
      }
    })
  } else skipped(OC, 'authorization_code_grant', 'authorization_code_login')

  if (tokens) {
    await step(OC, 'id_token', async () => {
      const claims = tokens.claims()
      if (!claims) throw new Error('no ID token in the token response')
      if (claims.nonce !== nonce) throw new Error(`nonce ${claims.nonce} != ${nonce}`)
      return { value: claims, detail: { iss: claims.iss, sub: claims.sub, aud: claims.aud, azp: claims.azp, nonce_ok: true } }
    })
    await step(OC, 'userinfo', async () => {
      const userinfo = await client.fetchUserInfo(loginConfig, tokens.access_token, tokens.claims().sub)
      return { value: userinfo, detail: userinfo }
    })
    await step(O4, 'validate_jwt_access_token:authorization_code', async () => {
      const detail = await validateAccessToken(as, tokens.access_token, login.audience)
      return { value: detail, detail }
    })
  } else {
    for (const name of ['id_token', 'userinfo']) skipped(OC, name, 'authorization_code_grant')
    skipped(O4, 'validate_jwt_access_token:authorization_code', 'authorization_code_grant')
  }

  let refreshed
  if (tokens && tokens.refresh_token) {
    refreshed = await step(OC, 'refresh', async () => {
      const response = await client.refreshTokenGrant(loginConfig, tokens.refresh_token)
      return {
        value: response,
        detail: { rotated: response.refresh_token !== undefined && response.refresh_token !== tokens.refresh_token, expires_in: response.expires_in },
      }
    })
  } else skipped(OC, 'refresh', 'authorization_code_grant with a refresh token')

  if (config.client_credentials) {
    const cc = config.client_credentials
    const ccTokens = await step(OC, 'client_credentials', async () => {
      const ccConfig = await discover(issuer, cc)
      const response = await client.clientCredentialsGrant(ccConfig, cc.scope ? { scope: cc.scope } : {})
      return { value: response, detail: { token_type: response.token_type, expires_in: response.expires_in, scope: response.scope } }
    })
    if (ccTokens) {
      await step(O4, 'validate_jwt_access_token:client_credentials', async () => {
        const detail = await validateAccessToken(as, ccTokens.access_token, cc.audience)
        return { value: detail, detail }
      })
    } else skipped(O4, 'validate_jwt_access_token:client_credentials', 'client_credentials')
  }

  const subjectToken = (refreshed || tokens)?.access_token
  if (config.exchange && subjectToken) {
    const ex = config.exchange
    const exchanged = await step(OC, 'token_exchange', async () => {
      const exConfig = await discover(issuer, ex)
      const parameters = { subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE }
      if (ex.audience) parameters.audience = ex.audience
      if (ex.scope) parameters.scope = ex.scope
      const response = await client.genericGrantRequest(exConfig, TOKEN_EXCHANGE, parameters)
      const claims = decodeJwtPart(response.access_token, 1)
      return {
        value: response,
        detail: {
          issued_token_type: response.issued_token_type,
          token_type: response.token_type,
          expires_in: response.expires_in,
          scope: response.scope,
          claims: { sub: claims.sub, aud: claims.aud, scope: claims.scope, client_id: claims.client_id, act: claims.act },
        },
      }
    })
    if (exchanged) {
      await step(O4, 'validate_jwt_access_token:token_exchange', async () => {
        const detail = await validateAccessToken(as, exchanged.access_token, ex.expected_audience)
        return { value: detail, detail }
      })
    } else skipped(O4, 'validate_jwt_access_token:token_exchange', 'token_exchange')
  } else if (config.exchange) {
    skipped(OC, 'token_exchange', 'authorization_code_grant')
    skipped(O4, 'validate_jwt_access_token:token_exchange', 'token_exchange')
  }

  if (subjectToken) {
    await step(OC, 'introspection', async () => {
      const response = await client.tokenIntrospection(loginConfig, subjectToken)
      if (response.active !== true) throw new Error(`introspection says ${JSON.stringify(response)}`)
      return { value: response, detail: { active: response.active, sub: response.sub, client_id: response.client_id, scope: response.scope } }
    })
    await step(OC, 'revocation', async () => {
      await client.tokenRevocation(loginConfig, subjectToken)
      const after = await client.tokenIntrospection(loginConfig, subjectToken)
      if (after.active !== false) throw new Error(`revoked token still introspects as ${JSON.stringify(after)}`)
      return { value: after, detail: { active_after_revocation: after.active } }
    })
  } else {
    skipped(OC, 'introspection', 'authorization_code_grant')
    skipped(OC, 'revocation', 'authorization_code_grant')
  }
}

main().catch((error) => {
  report('runner', 'unexpected', false, describe(error))
  process.exitCode = 1
})
