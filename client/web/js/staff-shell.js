// The frame shared by the therapist's pages (dashboard, replay, report):
// checks the session (GET /api/me, else back to the login page), shows who is
// signed in, wires "Log out", and logs off after the idle timeout even when
// the page itself keeps talking to the server (the dashboard polls, which
// would otherwise renew the session for ever).

import { api, toLogin } from './api.js';

const ACTIVITY = ['pointerdown', 'keydown', 'wheel', 'touchstart', 'scroll'];

/** Resolves with `{name, idle_timeout_s}` once the therapist is known to be signed in. */
export async function startStaffPage() {
  let me;
  try {
    me = await api('GET', '/api/me');
  } catch (err) {
    // Not signed in (or signed out elsewhere): the login page, then back here.
    if (err.status === 401) toLogin();
    else document.getElementById('app').textContent = 'The server cannot be reached just now. Please reload the page in a moment.';
    return new Promise(() => {});
  }
  const who = document.getElementById('signed-in');
  if (who) who.textContent = `Signed in as ${me.name}`;
  const logout = document.getElementById('logout');
  if (logout) {
    logout.hidden = false;
    logout.addEventListener('click', async () => {
      logout.disabled = true;
      try {
        await api('POST', '/api/logout');
      } catch {
        /* the cookie is cleared either way once it expires; leave regardless */
      }
      toLogin('logged_out');
    });
  }
  watchIdle(me.idle_timeout_s);
  return me;
}

function watchIdle(idleS) {
  if (!(idleS > 0)) return;
  let last = Date.now();
  const touch = () => {
    last = Date.now();
  };
  for (const type of ACTIVITY) window.addEventListener(type, touch, { passive: true, capture: true });
  const check = async () => {
    if (Date.now() - last < idleS * 1000) return;
    clearInterval(timer);
    try {
      await api('POST', '/api/logout');
    } catch {
      /* leaving anyway */
    }
    toLogin('expired');
  };
  const timer = setInterval(check, Math.min(15000, idleS * 250));
}

/** Speaks a sentence in a live region (cleared first so a repeat is read again). */
export function speak(region, text) {
  if (!region || !text) return;
  region.textContent = '';
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}
