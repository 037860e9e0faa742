// The therapist's HTTP API (protocol/HTTP.md): JSON in and out, the session
// cookie sent by the browser, errors turned into ApiError with the server's
// code, and a session that ended (401) sent back to the login page.

export class ApiError extends Error {
  constructor(status, code, message, retryAfterS) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
  }
}

/**
 * Calls the API. Resolves with the parsed body (null for 204); rejects with
 * ApiError (status 0 and code 'offline' when the server could not be reached).
 */
export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  // Every POST says it is JSON, even without a body: the server refuses
  // anything else (a cross-site form cannot send it).
  if (method !== 'GET') init.headers['Content-Type'] = 'application/json';
  if (body !== undefined) init.body = JSON.stringify(body);
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'offline', 'The server could not be reached.');
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (res.ok) return data;
  const retry = Number(res.headers.get('Retry-After'));
  throw new ApiError(
    res.status,
    (data && data.error) || `http_${res.status}`,
    (data && data.message) || res.statusText,
    Number.isFinite(retry) && retry > 0 ? retry : null,
  );
}

const PAGES = /^(dashboard|replay|report)\.html(\?room=[A-Za-z0-9_.~-]{1,128})?$/;

/** The page to return to after logging in: only our own staff pages. */
export function safeNext(next) {
  return next && PAGES.test(next) ? next : 'dashboard.html';
}

/** This page, as a `next` value for the login page. */
export function herePage() {
  const name = location.pathname.split('/').pop();
  return `${name}${location.search}`;
}

let leaving = false;

/** Leaves for the login page, saying why (`expired`, `logged_out`). Only
 * once: the idle watch and a poll's 401 can both get here, and a second
 * navigation would abort the first. */
export function toLogin(reason) {
  if (leaving) return;
  leaving = true;
  const q = new URLSearchParams();
  if (reason) q.set('why', reason);
  if (reason !== 'logged_out') q.set('next', herePage());
  location.replace(`login.html?${q}`);
}

/** Like api(), but a 401 ends the page: back to the login page with a kind message. */
export async function staffApi(method, path, body) {
  try {
    return await api(method, path, body);
  } catch (err) {
    if (err.status === 401) {
      toLogin('expired');
      // Never settles: the page is leaving, nothing more should happen on it.
      return new Promise(() => {});
    }
    throw err;
  }
}

/** Kind words for an API failure a therapist can act on. */
export function apiProblem(err) {
  switch (err && err.code) {
    case 'offline':
      return 'The server cannot be reached just now. Check the connection; we will keep trying.';
    case 'not_found':
      return 'That room does not exist, or it is not one of yours.';
    case 'forbidden':
      return 'The server refused that request from this page.';
    case 'rate_limited':
      return 'That was a lot of requests at once. Please wait a moment.';
    case 'bad_credentials':
      return 'That password is not right.';
    case 'bad_password':
      return `That password cannot be used${err.message ? ` (${err.message})` : ''}.`;
    case 'bad_request':
      return `The server could not use that request${err.message ? ` (${err.message})` : ''}.`;
    default:
      return `Something went wrong on the server${err && err.message ? ` (${err.message})` : ''}. Please try again.`;
  }
}
