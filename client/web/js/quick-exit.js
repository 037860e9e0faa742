// "Leave quickly": a button and a shortcut (Esc pressed three times within two
// seconds) that blank the page at once, clear what Attune kept in this tab
// (sessionStorage: the invitation token and unsent drafts; localStorage keys
// starting "attune."), close the room's connection, and replace the page with
// an ordinary website through location.replace, so Back does not lead here.
// Every other Attune tab of this browser that has quick exit on leaves too
// (the crisis page opened from the room, say).
//
// It cannot erase the browser's history of visited pages; crisis.html says so.
// The neutral address comes from GET /api/crisis (the practice's
// --crisis-file); until that answers, or if it never does, the built-in
// default is used, so leaving never waits for the network.

export const DEFAULT_NEUTRAL_URL = 'https://www.wikipedia.org/';
const PRESSES = 3;
const WINDOW_MS = 2000;
const LOCAL_PREFIX = 'attune.';
const CHANNEL = 'attune.quick-exit';

let neutralUrl = DEFAULT_NEUTRAL_URL;
let leaving = false;
let channel = null;
const beforeLeave = [];

function isHttpUrl(text) {
  try {
    const u = new URL(text);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

/** Sets where leaving goes (absolute http/https only; anything else is ignored). */
export function setNeutralUrl(url) {
  if (typeof url === 'string' && isHttpUrl(url)) neutralUrl = url;
}

export function getNeutralUrl() {
  return neutralUrl;
}

/** Runs fn just before leaving (closing the room's WebSocket, for one). */
export function onLeave(fn) {
  beforeLeave.push(fn);
}

/** Removes what Attune keeps in this browser for this site. */
export function clearTraces() {
  try {
    sessionStorage.clear();
  } catch {
    /* storage disabled: nothing kept */
  }
  try {
    const keys = [];
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (key && key.startsWith(LOCAL_PREFIX)) keys.push(key);
    }
    for (const key of keys) localStorage.removeItem(key);
  } catch {
    /* storage disabled */
  }
}

/** Leaves now: blank, clear, close, tell the other tabs, replace the page. */
export function leaveNow() {
  if (leaving) return;
  leaving = true;
  // Blank first: the neutral site may take a moment to load.
  document.title = '\u200b';
  document.body.replaceChildren();
  document.body.className = 'left-quickly';
  for (const fn of beforeLeave) {
    try {
      fn();
    } catch {
      /* leave anyway */
    }
  }
  clearTraces();
  try {
    if (channel) channel.postMessage('leave');
  } catch {
    /* leave anyway */
  }
  location.replace(neutralUrl);
}

/**
 * Wires the button and the Esc shortcut. `active()` says whether quick exit
 * applies right now (the room page turns it off for the therapist and
 * observers); when it returns false, the shortcut and other tabs' leaving
 * are ignored.
 */
export function installQuickExit({ button, active = () => true } = {}) {
  if (button) button.addEventListener('click', () => leaveNow());
  let presses = [];
  document.addEventListener(
    'keydown',
    (e) => {
      if (e.key !== 'Escape' || e.repeat || !active()) return;
      const now = Date.now();
      presses = presses.filter((t) => now - t < WINDOW_MS);
      presses.push(now);
      if (presses.length >= PRESSES) {
        e.preventDefault();
        leaveNow();
      }
    },
    true,
  );
  if (typeof BroadcastChannel === 'function' && !channel) {
    channel = new BroadcastChannel(CHANNEL);
    channel.addEventListener('message', (e) => {
      if (e.data === 'leave' && active()) leaveNow();
    });
  }
}

/**
 * Fetches GET /api/crisis (public: no login) and takes its neutral_url.
 * Resolves with the body, or null when the server cannot be reached.
 */
export async function loadCrisisConfig() {
  try {
    const res = await fetch('/api/crisis', { credentials: 'omit', cache: 'no-store' });
    if (!res.ok) return null;
    const body = await res.json();
    if (body && typeof body === 'object') setNeutralUrl(body.neutral_url);
    return body;
  } catch {
    return null;
  }
}
