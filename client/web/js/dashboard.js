// The therapist's dashboard: every room they own with its live status
// (pushed by the server: GET /api/rooms/events), creating a room with an
// exercise and copying its invitation links, and the way into each room's
// live view, replay and report. Cards are updated in place so focus and open
// panels survive an update.
// Suspicions are counted apart (suspected, confirmed, dismissed); a private
// message, a request for a private word or a held check-in in any room raises
// an alert that stays until the therapist says they have seen it.
// A room's therapist can delete its session permanently (after typing the
// room id in a dialog that says what that means: POST /api/rooms/{id}/erase),
// and "My activity" lists their own audit entries (GET /api/audit).

import { h, replaceChildren, formatClock } from './dom.js';
import { staffRoleName } from './words.js';
import { staffApi, apiProblem } from './api.js';
import { startStaffPage, speak, sessionSettled } from './staff-shell.js';
import { inviteList, invitationPanel, observerPanel, openLiveView } from './invites.js';

// The server pushes the room list when a room changes (at most about once a
// second), so an open rupture shows within a second without polling; the
// stream renews nothing, so an untouched dashboard is logged off on time.
// After the stream drops, the page checks its session and reconnects.
const RECONNECT_MS = 1500;

const politeRegion = document.getElementById('announce');
const alertRegion = document.getElementById('alert');
const announce = (t) => speak(politeRegion, t);

const STATUS = {
  waiting_consent: 'Waiting for consent',
  checking_in: 'Safety check-in',
  active: 'In session',
  paused: 'Paused',
  ended: 'Ended',
};

const cards = new Map();
const knownOpen = new Map();
const knownUrgent = new Map();
let exercises = [];
let firstRender = true;

function exerciseTitle(room) {
  const ex = exercises.find((e) => e.id === room.exercise);
  return room.title || (ex && ex.title) || room.exercise;
}

function count(value) {
  if (Array.isArray(value)) return value.length;
  return Number(value) || 0;
}

function dateTime(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay ? `today ${formatClock(ms)}` : `${d.toLocaleDateString([], { day: 'numeric', month: 'short', year: 'numeric' })} ${formatClock(ms)}`;
}

function statusWords(room) {
  let words = STATUS[room.status] || room.status;
  if (room.status === 'ended' && room.ended_reason) {
    words += room.ended_reason === 'completed' ? ' (completed)' : ' (ended by you)';
  }
  return words;
}

function presence(room) {
  const p = room.present || {};
  const items = ['partner_a', 'partner_b', 'therapist'].map((r) =>
    h(
      'li',
      { class: p[r] ? 'here' : 'away' },
      h('span', { class: 'dot', 'aria-hidden': 'true' }),
      `${r === 'therapist' ? 'You' : staffRoleName(r)}: ${p[r] ? 'connected' : 'not connected'}`,
    ),
  );
  if (p.observers) items.push(h('li', { class: 'here' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), `${p.observers} observing`));
  return h('ul', { class: 'presence' }, items);
}

/** The room's suspicion counts: the summary's `suspicions` (protocol 2), else the old count. */
function suspicionCounts(room) {
  const sp = room.suspicions;
  if (sp && typeof sp === 'object' && !Array.isArray(sp)) {
    return { suspected: count(sp.suspected), confirmed: count(sp.confirmed), dismissed: count(sp.dismissed) };
  }
  return { suspected: count(room.suspected_ruptures), confirmed: 0, dismissed: 0 };
}

function ruptureLine(room) {
  const open = count(room.open_ruptures);
  const sp = suspicionCounts(room);
  const parts = [];
  if (open) {
    const details = Array.isArray(room.open_ruptures)
      ? room.open_ruptures.map((r) => `${r.marker ? r.marker.replace(/_/g, ' ') : r.kind} (${staffRoleName(r.who)})`).join(', ')
      : '';
    parts.push(
      h(
        'p',
        { class: 'room-rupture open' },
        h('span', { class: 'badge' }, 'Open rupture'),
        ` ${open === 1 ? 'One rupture is open' : `${open} ruptures are open`}${details ? `: ${details}` : ''}. Open the live view to respond.`,
      ),
    );
  }
  if (sp.suspected || sp.confirmed || sp.dismissed) {
    parts.push(
      h(
        'p',
        { class: 'room-rupture suspicions' },
        'Suspicions: ',
        h('span', { class: 'chip suspected', dataset: { count: 'suspected' } }, `${sp.suspected} suspected`),
        ' ',
        h('span', { class: 'chip confirmed', dataset: { count: 'confirmed' } }, `${sp.confirmed} confirmed`),
        ' ',
        h('span', { class: 'chip dismissed', dataset: { count: 'dismissed' } }, `${sp.dismissed} dismissed`),
        sp.suspected ? ' · waiting for you to confirm or dismiss.' : '',
      ),
    );
  }
  return parts;
}

function seenKey(room) {
  return `attune.dash-seen|${room.id}`;
}

function loadSeen(room) {
  try {
    return JSON.parse(localStorage.getItem(seenKey(room)) || '{}') || {};
  } catch {
    return {};
  }
}

/**
 * What in this room needs the therapist now: private messages (and requests
 * for a private word) newer than those already seen here, and a held
 * check-in. From the summary's `private_messages` (how many, both kinds),
 * `private_last_seq` (the latest's seq) and `checkin_held`.
 */
function urgentItems(room) {
  const seen = loadSeen(room);
  const items = [];
  const total = count(room.private_messages);
  const last = Number(room.private_last_seq) || 0;
  if (last > (seen.lastSeq || 0)) {
    const n = Math.max(total - (seen.private || 0), 1);
    items.push({ key: 'private', text: n === 1 ? 'A partner wrote to you privately.' : `Partners wrote to you privately ${n} times.` });
  }
  if (room.checkin_held && room.status === 'checking_in' && !seen.held) items.push({ key: 'held', text: 'The safety check-in is holding the session until you decide.' });
  return items;
}

function markSeen(room) {
  const seen = {
    private: count(room.private_messages),
    lastSeq: Number(room.private_last_seq) || 0,
    held: Boolean(room.checkin_held && room.status === 'checking_in'),
  };
  try {
    localStorage.setItem(seenKey(room), JSON.stringify(seen));
  } catch {
    /* storage disabled: the alert comes back with the next update */
  }
}

function urgentBanner(room, items, onSeen) {
  if (!items.length) return null;
  const ok = h('button', { type: 'button', class: 'secondary' }, 'I’ve seen this');
  ok.addEventListener('click', () => {
    markSeen(room);
    onSeen();
  });
  return h(
    'div',
    { class: 'priority-banner high room-urgent', role: 'alert' },
    h('p', {}, h('span', { class: 'badge' }, 'Needs you'), ' ', items.map((it) => it.text).join(' '), ' Open the live view to answer.'),
    h('div', { class: 'form-actions' }, ok),
  );
}

function statusBody(room, rerender) {
  const rows = [];
  if (room.step && room.status === 'waiting_consent') rows.push(['Starts with', `${room.step.title} · ${room.rounds} rounds`]);
  else if (room.step) rows.push(['Step', `${room.step.title} · round ${room.round + 1} of ${room.rounds}`]);
  if (room.status !== 'ended' && room.speaker) rows.push(['Speaker', staffRoleName(room.speaker)]);
  return [
    h(
      'p',
      { class: 'room-status-line' },
      h('span', { class: `chip status-${room.status}` }, statusWords(room)),
      h('span', { class: 'time' }, `created ${dateTime(room.created_at)}`),
    ),
    urgentBanner(room, urgentItems(room), rerender),
    ruptureLine(room),
    rows.length ? h('dl', { class: 'room-facts' }, rows.map(([k, v]) => h('div', {}, h('dt', {}, `${k}:`), ' ', h('dd', {}, v)))) : null,
    presence(room),
  ];
}

const ERASE_RETRIES = 8;

/** POST .../erase, again while the server says the room is finishing a write (503). */
async function eraseRoom(id) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await staffApi('POST', `/api/rooms/${encodeURIComponent(id)}/erase`, { confirm: id });
    } catch (err) {
      if (err.status !== 503 || attempt >= ERASE_RETRIES) throw err;
      await new Promise((r) => setTimeout(r, (err.retryAfterS || 1) * 1000));
    }
  }
}

/**
 * The confirmation before a session is deleted for good: what it means in
 * plain words, and the room id typed again (the button stays off until it
 * matches). Resolves when the dialog closes.
 */
function confirmErase(room, onErased) {
  const inputId = `erase-${room.id}-confirm`;
  const input = h('input', { id: inputId, type: 'text', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off', 'aria-describedby': `${inputId}-hint` });
  const go = h('button', { type: 'submit', class: 'danger', disabled: true }, 'Delete permanently');
  const keep = h('button', { type: 'button', class: 'secondary' }, 'Keep it');
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const dialog = h(
    'dialog',
    { class: 'sheet erase-sheet', 'aria-labelledby': `${inputId}-h` },
    h(
      'form',
      { method: 'dialog' },
      h('h2', { id: `${inputId}-h` }, 'Delete this session permanently?'),
      h('p', {}, `This deletes the ${exerciseTitle(room)} session in room ${room.id} and everything said in it: both partners’ words, your notes, the replay and the report. It cannot be undone.`),
      h('p', {}, 'Anyone still in the room is disconnected, and the partners’ links stop working. Its key is destroyed, so backups of the sessions cannot be read for it any more; only an older backup of the keys could, and whoever runs Attune for your practice can destroy those. The activity log keeps only that you deleted it, and when.'),
      h('div', { class: 'field' }, h('label', { for: inputId }, `Type the room id, ${room.id}, to confirm`), input, h('p', { id: `${inputId}-hint`, class: 'hint' }, 'The id is shown on the room’s card.')),
      error,
      h('div', { class: 'form-actions' }, go, keep),
    ),
  );
  input.addEventListener('input', () => {
    go.disabled = input.value.trim() !== room.id;
  });
  keep.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  dialog.querySelector('form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (input.value.trim() !== room.id) return;
    go.disabled = true;
    keep.disabled = true;
    error.hidden = true;
    go.textContent = 'Deleting…';
    try {
      await eraseRoom(room.id);
      dialog.close();
      onErased();
    } catch (err) {
      error.textContent = err.status === 404 ? 'This room is already gone.' : apiProblem(err);
      error.hidden = false;
      go.textContent = 'Delete permanently';
      go.disabled = false;
      keep.disabled = false;
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  input.focus();
}

function buildCard(room) {
  const headingId = `room-${room.id}-h`;
  const title = h('h3', { id: headingId }, exerciseTitle(room));
  const idLine = h('p', { class: 'room-id' }, `Room ${room.id}`);
  const body = h('div', { class: 'room-body' });
  const linksPanel = h('div', { class: 'room-links', hidden: true, id: `room-${room.id}-links` });
  const live = h('button', { type: 'button', class: 'primary live' }, 'Open live view');
  const links = h('button', { type: 'button', class: 'secondary', 'aria-expanded': 'false', 'aria-controls': linksPanel.id }, 'Invitation links');
  const q = `?room=${encodeURIComponent(room.id)}`;
  const actions = supervisor
    ? h('div', { class: 'room-actions' }, live)
    : h(
        'div',
        { class: 'room-actions' },
        live,
        links,
        h('a', { class: 'button-link', href: `replay.html${q}` }, 'Replay'),
        h('a', { class: 'button-link', href: `report.html${q}` }, 'Report'),
      );
  if (!supervisor) {
    const erase = h('button', { type: 'button', class: 'quiet-button erase', 'aria-haspopup': 'dialog' }, 'Delete this session permanently');
    erase.addEventListener('click', () =>
      confirmErase(room, () => {
        const card = cards.get(room.id);
        if (card) card.el.remove();
        cards.delete(room.id);
        // The new room's links, if this was it, open nothing any more.
        const fresh = document.getElementById('new-room');
        if (!fresh.hidden && fresh.textContent.includes(`Room ${room.id} is ready`)) {
          replaceChildren(fresh);
          fresh.hidden = true;
        }
        announce(`The session in room ${room.id} has been deleted permanently.`);
        loadActivity(true);
      }),
    );
    actions.append(erase);
  }
  const problem = h('p', { class: 'form-error', role: 'alert', hidden: true });
  live.addEventListener('click', async () => {
    live.disabled = true;
    problem.hidden = true;
    // The live view opens with this login (a ticket per connect), no link.
    openLiveView(room.id);
    live.disabled = false;
  });
  links.addEventListener('click', async () => {
    const open = links.getAttribute('aria-expanded') === 'true';
    if (open) {
      links.setAttribute('aria-expanded', 'false');
      linksPanel.hidden = true;
      return;
    }
    links.disabled = true;
    problem.hidden = true;
    try {
      const base = `/api/rooms/${encodeURIComponent(room.id)}`;
      const { invitations, observers } = await staffApi('GET', base);
      const kindly = (p) =>
        p.catch((err) => {
          throw new Error(apiProblem(err));
        });
      const reissue = (role) => kindly(staffApi('POST', `${base}/invites`, { role }));
      const observe = (name, remove) => kindly(staffApi('POST', `${base}/observers${remove ? '/remove' : ''}`, { name }));
      replaceChildren(linksPanel, invitationPanel(invitations, { reissue, announce }), observerPanel(observers || [], { observe, announce }));
      linksPanel.hidden = false;
      links.setAttribute('aria-expanded', 'true');
    } catch (err) {
      problem.textContent = apiProblem(err);
      problem.hidden = false;
    } finally {
      links.disabled = false;
    }
  });
  const el = h(
    'li',
    { class: 'card room-card', dataset: { room: room.id }, 'aria-labelledby': headingId },
    h('div', { class: 'room-head' }, title, idLine),
    body,
    actions,
    problem,
    linksPanel,
  );
  return { el, body, title };
}

function renderRooms(rooms) {
  const list = document.getElementById('rooms');
  document.getElementById('rooms-empty').hidden = rooms.length > 0;
  const seen = new Set();
  let openTotal = 0;
  rooms.forEach((room, i) => {
    seen.add(room.id);
    let card = cards.get(room.id);
    if (!card) {
      card = buildCard(room);
      cards.set(room.id, card);
    }
    // Keep the server's order (newest first) without re-inserting cards in place.
    if (list.children[i] !== card.el) list.insertBefore(card.el, list.children[i] || null);
    card.title.textContent = exerciseTitle(room);
    const rerender = () => {
      replaceChildren(card.body, ...statusBody(room, rerender));
      card.el.classList.toggle('has-urgent', urgentItems(room).length > 0);
      summarise(rooms);
    };
    replaceChildren(card.body, ...statusBody(room, rerender));
    const open = count(room.open_ruptures);
    openTotal += open;
    const urgent = urgentItems(room).length;
    card.el.classList.toggle('has-open', open > 0);
    card.el.classList.toggle('has-urgent', urgent > 0);
    const urgentBefore = knownUrgent.get(room.id);
    if (urgentBefore !== undefined && urgent > urgentBefore) {
      speak(alertRegion, `Room ${room.id} (${exerciseTitle(room)}) needs you: ${urgentItems(room).map((it) => it.text).join(' ')}`);
    }
    knownUrgent.set(room.id, urgent);
    card.el.classList.toggle('is-ended', room.status === 'ended');
    const before = knownOpen.get(room.id);
    if (before !== undefined && open > before) {
      speak(alertRegion, `Open rupture in room ${room.id} (${exerciseTitle(room)}).`);
    }
    knownOpen.set(room.id, open);
  });
  for (const [id, card] of cards) {
    if (!seen.has(id)) {
      card.el.remove();
      cards.delete(id);
      knownOpen.delete(id);
      knownUrgent.delete(id);
    }
  }
  const { urgentRooms } = summarise(rooms);
  if (firstRender && openTotal) speak(alertRegion, `${openTotal === 1 ? 'One rupture is' : `${openTotal} ruptures are`} open in your rooms.`);
  else if (firstRender && urgentRooms) speak(alertRegion, `${urgentRooms === 1 ? 'One room needs' : `${urgentRooms} rooms need`} you: a private message or a held check-in.`);
  firstRender = false;
}

/** The line above the rooms, and the page title. */
function summarise(rooms) {
  const live = rooms.filter((r) => r.status !== 'ended').length;
  const openTotal = rooms.reduce((n, r) => n + count(r.open_ruptures), 0);
  const totals = { suspected: 0, confirmed: 0, dismissed: 0 };
  for (const r of rooms) {
    const sp = suspicionCounts(r);
    for (const k of Object.keys(totals)) totals[k] += sp[k];
  }
  const urgentRooms = rooms.filter((r) => urgentItems(r).length > 0).length;
  const summary = document.getElementById('rooms-summary');
  summary.hidden = rooms.length === 0;
  const anySuspicion = totals.suspected || totals.confirmed || totals.dismissed;
  replaceChildren(
    summary,
    `${live} in progress · ${rooms.length - live} finished`,
    urgentRooms ? h('strong', { class: 'urgent-count' }, ` · ${urgentRooms} room${urgentRooms === 1 ? ' needs' : 's need'} you`) : null,
    openTotal ? h('strong', { class: 'open-count' }, ` · ${openTotal} open rupture${openTotal === 1 ? '' : 's'}`) : null,
    anySuspicion ? ` · suspicions: ${totals.suspected} suspected, ${totals.confirmed} confirmed, ${totals.dismissed} dismissed` : null,
  );
  const title = [];
  if (urgentRooms) title.push(`${urgentRooms} needs you`);
  if (openTotal) title.push(`${openTotal} open rupture${openTotal === 1 ? '' : 's'}`);
  document.title = title.length ? `(${title.join(', ')}) · Attune` : 'Attune · Your rooms';
  document.body.classList.toggle('has-open-rupture', openTotal > 0);
  document.body.classList.toggle('has-priority', urgentRooms > 0);
  return { urgentRooms, openTotal };
}

let stream = null;
let reconnectTimer = null;
let failing = false;

function showProblem(err) {
  const updated = document.getElementById('rooms-updated');
  updated.textContent = `${apiProblem(err)}`;
  updated.classList.add('stale');
  if (!failing) announce(apiProblem(err));
  failing = true;
}

function showRooms(rooms) {
  const updated = document.getElementById('rooms-updated');
  renderRooms(rooms);
  updated.textContent = `Live · updated ${formatClock(Date.now())}`;
  updated.classList.remove('stale');
  if (failing) announce('Connected to the server again.');
  failing = false;
}

// The stream ended (the session ended, the server restarted, the network
// dropped): a 401 from /api/me goes to the login page (staffApi), anything
// else is shown and the stream reopened.
async function streamLost() {
  if (stream) stream.close();
  stream = null;
  await sessionSettled();
  try {
    await staffApi('GET', '/api/me');
  } catch (err) {
    showProblem(err);
  }
  clearTimeout(reconnectTimer);
  reconnectTimer = setTimeout(subscribe, RECONNECT_MS);
}

function subscribe() {
  clearTimeout(reconnectTimer);
  if (stream) stream.close();
  stream = new EventSource('/api/rooms/events');
  stream.addEventListener('rooms', (e) => {
    let rooms;
    try {
      rooms = JSON.parse(e.data);
    } catch {
      return;
    }
    showRooms(rooms);
  });
  // EventSource would retry on its own, but not after a 401: handle both here.
  stream.addEventListener('error', streamLost);
}

async function loadExercises() {
  const select = document.getElementById('exercise');
  const summary = document.getElementById('exercise-summary');
  const submit = document.getElementById('create-submit');
  try {
    exercises = await staffApi('GET', '/api/exercises');
  } catch (err) {
    replaceChildren(select, h('option', { value: '' }, 'Could not load the exercises'));
    summary.textContent = apiProblem(err);
    return;
  }
  replaceChildren(select, exercises.map((e) => h('option', { value: e.id }, e.title)));
  const sync = () => {
    const e = exercises.find((x) => x.id === select.value);
    summary.textContent = e ? e.summary : '';
  };
  select.addEventListener('change', sync);
  sync();
  select.disabled = false;
  submit.disabled = false;
}

function wireCreate() {
  const form = document.getElementById('create-form');
  const select = document.getElementById('exercise');
  const submit = document.getElementById('create-submit');
  const err = document.getElementById('create-error');
  const panel = document.getElementById('new-room');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.hidden = true;
    if (!select.value) return;
    submit.disabled = true;
    try {
      const { room, invites } = await staffApi('POST', '/api/rooms', { exercise: select.value });
      replaceChildren(
        panel,
        h('h3', {}, `Room ${room.id} is ready`),
        h('p', { class: 'hint' }, `${exerciseTitle(room)}. Send each partner their own link, privately (a message only they read). Anyone with a link can join as that person. The links are shown only now: if one is lost, revoke and reissue it under “Invitation links”. You open the room yourself with “Open live view”.`),
        inviteList(invites, announce),
      );
      panel.hidden = false;
      panel.focus();
      announce(`Room ${room.id} created. Its invitation links follow.`);
      // The server pushes the list with the new room.
    } catch (error) {
      err.textContent = apiProblem(error);
      err.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
}

// "My activity": the therapist's own audit entries (GET /api/audit), newest
// first, a page at a time; loaded when the section is opened.
const ACTIVITY = {
  created: () => 'Created the room',
  opened: () => 'Opened the room',
  observed: () => 'Observed the live view',
  exported: () => 'Read the session record (replay or report)',
  links_revoked: (d) => `Withdrew the links for ${staffRoleName(d)}`,
  link_issued: (d) => `Issued a new link for ${staffRoleName(d)}`,
  observer_added: (d) => `Invited ${d} to observe`,
  observer_removed: (d) => `Took back ${d}’s invitation to observe`,
  erased: () => 'Deleted the session permanently',
  keys_rotated: () => 'Rotated the keys',
  backup: () => 'Made a backup',
  restored: () => 'Restored from a backup',
};

let activityNext = null;
let activityLoaded = false;

function activityRow(e) {
  const words = ACTIVITY[e.action] ? ACTIVITY[e.action](e.detail) : e.action;
  return h('li', { class: 'activity-entry', dataset: { action: e.action, room: e.room } }, h('span', { class: 'time' }, dateTime(e.at)), ' ', h('span', { class: 'what' }, words), e.room ? h('span', { class: 'room-id' }, ` · room ${e.room}`) : null);
}

async function loadActivity(fresh) {
  const list = document.getElementById('activity-list');
  const more = document.getElementById('activity-more');
  const status = document.getElementById('activity-status');
  if (fresh) {
    if (!activityLoaded) return; // not opened yet: it loads when it is
    replaceChildren(list);
    activityNext = null;
  }
  const q = activityNext ? `?before=${activityNext}` : '';
  status.textContent = 'Loading…';
  try {
    const { entries, next_before: next } = await staffApi('GET', `/api/audit${q}`);
    activityLoaded = true;
    activityNext = next;
    list.append(...entries.map(activityRow));
    more.hidden = !next;
    status.textContent = list.childElementCount ? '' : 'Nothing yet.';
  } catch (err) {
    status.textContent = apiProblem(err);
  }
}

function wireActivity() {
  const box = document.getElementById('activity');
  box.hidden = false;
  box.addEventListener('toggle', () => {
    if (box.open && !activityLoaded) loadActivity(false);
  });
  document.getElementById('activity-more').addEventListener('click', () => loadActivity(false));
}

// A supervisor's dashboard: the rooms they observe, each with its live view
// only (no links to hand out, no rooms to create).
let supervisor = false;

async function start() {
  const me = await startStaffPage();
  supervisor = me.kind === 'supervisor';
  if (supervisor) {
    document.querySelector('.create-card').hidden = true;
    document.getElementById('rooms-empty').textContent = 'No rooms to observe yet. A therapist who invites you to observe a room will make it appear here.';
  } else {
    wireCreate();
    wireActivity();
    await loadExercises();
  }
  subscribe();
}

start();
