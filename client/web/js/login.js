// The therapist's login page: straight on to the dashboard (or the page that
// sent us here) when already signed in; otherwise POST /api/login with kind
// words for a wrong password or too many attempts (with the wait).

import { api, safeNext } from './api.js';

const params = new URLSearchParams(location.search);
const next = safeNext(params.get('next'));
const form = document.getElementById('login-form');
const user = document.getElementById('username');
const pass = document.getElementById('password');
const submit = document.getElementById('login-submit');
const errorEl = document.getElementById('login-error');
const noteEl = document.getElementById('login-note');

const NOTES = {
  expired:
    'You were logged out (after a while without activity, or from another window), to keep your clients’ sessions private. Please log in again.',
  logged_out: 'You have logged out. See you next time.',
};

function showError(text) {
  errorEl.textContent = text;
  errorEl.hidden = !text;
}

function waitWords(seconds) {
  if (seconds >= 90) return `about ${Math.ceil(seconds / 60)} minutes`;
  if (seconds > 1) return `${seconds} seconds`;
  return 'a moment';
}

let lockTimer = null;
function lockFor(seconds) {
  const until = Date.now() + seconds * 1000;
  submit.disabled = true;
  clearInterval(lockTimer);
  // The message is set once (read once by screen readers); only the button counts down.
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(lockTimer);
      submit.disabled = false;
      submit.textContent = 'Log in';
      return;
    }
    const clock = left >= 60 ? `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}` : `${left} s`;
    submit.textContent = `Log in (wait ${clock})`;
  };
  tick();
  lockTimer = setInterval(tick, 1000);
}

async function checkAlreadyIn() {
  try {
    await api('GET', '/api/me');
    location.replace(next);
  } catch (err) {
    if (err.code === 'offline') showError('The server cannot be reached just now. Please check the connection and try again.');
  }
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  showError('');
  const username = user.value.trim();
  const password = pass.value;
  if (!username || !password) {
    showError(!username ? 'Please enter your username.' : 'Please enter your password.');
    (username ? pass : user).focus();
    user.setAttribute('aria-invalid', String(!username));
    pass.setAttribute('aria-invalid', String(!!username && !password));
    return;
  }
  user.removeAttribute('aria-invalid');
  pass.removeAttribute('aria-invalid');
  submit.disabled = true;
  submit.textContent = 'Logging in…';
  try {
    await api('POST', '/api/login', { username, password });
    location.replace(next);
    return;
  } catch (err) {
    submit.disabled = false;
    submit.textContent = 'Log in';
    if (err.code === 'bad_credentials') {
      showError('That username and password do not match. Please check them and try again.');
      pass.value = '';
      pass.focus();
    } else if (err.code === 'rate_limited') {
      const wait = err.retryAfterS || 300;
      showError(
        `Too many attempts to log in. To keep accounts safe, please wait ${waitWords(wait)} before trying again.`,
      );
      lockFor(wait);
    } else if (err.code === 'offline') {
      showError('The server cannot be reached just now. Please check the connection and try again.');
    } else {
      showError(`Logging in did not work${err.message ? ` (${err.message})` : ''}. Please try again.`);
    }
  }
});

const why = params.get('why');
if (NOTES[why]) {
  noteEl.textContent = NOTES[why];
  noteEl.hidden = false;
}
checkAlreadyIn();
