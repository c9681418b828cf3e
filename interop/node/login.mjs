// Completing a provider's login form over plain HTTP, as a browser would: the login page is fetched, its form (with
// its CSRF field) is posted, and the authorization code is read from the redirect Location without any server
// listening on the redirect URI. Shared by peer.mjs and dpop.mjs.

const MAX_LOGIN_HOPS = 10

class CookieJar {
  #cookies = new Map()

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const eq = pair.indexOf('=')
      if (eq > 0) this.#cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim())
    }
  }

  header() {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }
}

function attributes(tag) {
  const attrs = {}
  for (const match of tag.matchAll(/([a-zA-Z_:-]+)\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))/g)) {
    attrs[match[1].toLowerCase()] = decodeEntities(match[3] ?? match[4] ?? match[5] ?? '')
  }
  return attrs
}

function decodeEntities(text) {
  return text
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
}

// The form holding a password field, with every named input (hidden CSRF fields included).
function loginForm(html) {
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const inputs = [...match[2].matchAll(/<input\b[^>]*>/gi)].map((m) => attributes(m[0]))
    if (!inputs.some((input) => input.type === 'password')) continue
    return { form: attributes(`<form ${match[1]}>`), inputs }
  }
  return undefined
}

// Follows the authorization request through the provider's login page until it redirects to redirectUri.
export async function loginOverHttp(authorizationUrl, redirectUri, username, password) {
  const jar = new CookieJar()
  let url = new URL(authorizationUrl)
  let init = { method: 'GET' }
  const trail = []
  for (let hop = 0; hop < MAX_LOGIN_HOPS; hop++) {
    if (url.href.startsWith(redirectUri)) return { callback: url, trail }
    // Accept: text/html as a browser sends it; Spring Authorization Server answers 401 instead of its login page otherwise.
    const headers = { ...init.headers, accept: 'text/html', cookie: jar.header() }
    const response = await fetch(url, { ...init, redirect: 'manual', headers })
    jar.store(response)
    trail.push(`${init.method} ${url.pathname} -> ${response.status}`)
    if (response.status >= 300 && response.status < 400) {
      url = new URL(response.headers.get('location'), url)
      init = { method: 'GET' }
      continue
    }
    const body = await response.text()
    const found = response.ok ? loginForm(body) : undefined
    if (!found) {
      throw new Error(`no login form and no redirect at ${url.href} (HTTP ${response.status}): ${body.slice(0, 300)}`)
    }
    const fields = new URLSearchParams()
    for (const input of found.inputs) {
      if (!input.name) continue
      if (input.type === 'password') fields.set(input.name, password)
      else if (input.type === 'text' || input.type === 'email' || input.name === 'username') fields.set(input.name, username)
      else if (input.type !== 'submit' && input.type !== 'checkbox') fields.set(input.name, input.value ?? '')
    }
    url = new URL(found.form.action || url.href, url)
    init = {
      method: (found.form.method || 'POST').toUpperCase(),
      body: fields.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    }
  }
  throw new Error(`login did not reach ${redirectUri} within ${MAX_LOGIN_HOPS} hops: ${trail.join(', ')}`)
}
