// http.js - HTTP helpers for the integration tests: one request to the
// server's API with full control over the body, headers, cookie and local
// address, and the login helpers built on it.
import assert from 'node:assert/strict';
import http from 'node:http';

// One HTTP request to srv; resolves {status, headers, text, json} (json is
// the parsed body, or undefined when it is empty or not JSON).
//   json     a value sent as the JSON body (content-type application/json
//            unless headers say otherwise)
//   body     a raw body, sent as it is
//   cookie   the attune_session cookie's value
//   headers  extra request headers
//   from     the local address (127.0.0.x stand in for different clients)
//   agent    an http.Agent (default: none)
//   raw      add no content-type of our own (a POST without json gets none)
//   postBody the body of a POST with neither json nor body (with
//            content-type application/json); default: no body
//   open     resolve at the response headers, with the request as `req`,
//            leaving a streamed answer open
export function request(
  srv,
  method,
  urlPath,
  { body, json, cookie, headers = {}, from, agent, raw = false, postBody, open = false } = {},
) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    let data = body;
    if (json !== undefined) {
      data = JSON.stringify(json);
      if (!('content-type' in h)) h['content-type'] = 'application/json';
    }
    if (method === 'POST' && data === undefined && !raw) {
      data = postBody;
      if (!('content-type' in h)) h['content-type'] = 'application/json';
    }
    if (data !== undefined) h['content-length'] = Buffer.byteLength(data);
    if (cookie) h.cookie = `attune_session=${cookie}`;
    const req = http.request(
      { host: '127.0.0.1', port: srv.port, method, path: urlPath, headers: h, localAddress: from, agent: agent || false },
      (res) => {
        if (open) return resolve({ status: res.statusCode, headers: res.headers, req });
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let parsed;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json: parsed });
        });
      },
    );
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

// The response's one attune_session Set-Cookie: {value, header}.
export function cookieOf(res) {
  const sc = res.headers['set-cookie'];
  assert.ok(sc && sc.length === 1, `one Set-Cookie expected, got ${JSON.stringify(sc)}`);
  const m = /^attune_session=([^;]*)/.exec(sc[0]);
  assert.ok(m, sc[0]);
  return { value: m[1], header: sc[0] };
}

// POST /api/login; opts as request()'s (from, headers...).
export function login(srv, username, password, opts = {}) {
  return request(srv, 'POST', '/api/login', { json: { username, password }, ...opts });
}

// A successful login's session cookie value.
export async function loginCookie(srv, username, password, opts = {}) {
  const res = await login(srv, username, password, opts);
  assert.equal(res.status, 200, res.text);
  const { value } = cookieOf(res);
  assert.ok(value, `a session cookie expected: ${res.headers['set-cookie']}`);
  return value;
}
