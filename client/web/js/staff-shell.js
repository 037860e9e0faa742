// The frame shared by the therapist's pages (dashboard, replay, report):
// checks the session (GET /api/me, else back to the login page), shows who is
// signed in, wires "Log out" and the password form, tells the server when the
// therapist uses the page (POST /api/activity: only the therapist's own
// actions renew a session, never the page's background reads or pushed
// updates), and logs off after the idle timeout.

import { api, staffApi, apiProblem, toLogin } from './api.js';

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
  reportActivity(me.idle_timeout_s);
  watchIdle(me.idle_timeout_s);
  wirePasswordForm();
  return me;
}

// Opening a page and using it are the therapist's actions: say so, at most
// every third of the idle time (and at most once a minute).
function reportActivity(idleS) {
  const every = Math.min(60000, Math.max(1000, ((idleS > 0 ? idleS : 900) * 1000) / 3));
  let lastSent = 0;
  const send = () => {
    const now = Date.now();
    if (now - lastSent < every) return;
    lastSent = now;
    api('POST', '/api/activity').catch(() => {
      /* the stream or the next request notices an ended session */
    });
  };
  for (const type of ACTIVITY) window.addEventListener(type, send, { passive: true, capture: true });
  send();
}

let settling = Promise.resolve();

/** Resolves once no password change is under way: that change ends every
 * session of the account and gives this page a new cookie, so a page that
 * lost its stream meanwhile should check its session only after it. */
export function sessionSettled() {
  return settling;
}

function wirePasswordForm() {
  const form = document.getElementById('password-form');
  if (!form) return;
  const current = document.getElementById('current-password');
  const fresh = document.getElementById('new-password');
  const again = document.getElementById('new-password-again');
  const status = document.getElementById('password-status');
  const submit = document.getElementById('password-submit');
  const say = (text, problem) => {
    status.textContent = text;
    status.classList.toggle('form-error', Boolean(problem));
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    say('');
    if (fresh.value !== again.value) {
      say('The two new passwords differ. Please type the same new password twice.', true);
      again.focus();
      return;
    }
    if ([...fresh.value].length < 10) {
      say('The new password needs at least 10 characters.', true);
      fresh.focus();
      return;
    }
    submit.disabled = true;
    const change = staffApi('POST', '/api/password', { current_password: current.value, new_password: fresh.value });
    settling = change.then(
      () => {},
      () => {},
    );
    try {
      await change;
      form.reset();
      say('Your password is changed. Anywhere else you were signed in has been logged out.');
    } catch (err) {
      if (err.code === 'bad_credentials') say('That is not your current password.', true);
      else if (err.code === 'bad_password') say(`That new password cannot be used: ${err.message}.`, true);
      else if (err.code === 'rate_limited') say(`Too many wrong tries. Please wait ${err.retryAfterS || 'a few'} seconds and try again.`, true);
      else say(apiProblem(err), true);
    } finally {
      submit.disabled = false;
    }
  });
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
