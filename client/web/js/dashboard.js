// The therapist's dashboard: every room they own with its live status
// (pushed by the server: GET /api/rooms/events), creating a room with an
// exercise and copying its invitation links, and the way into each room's
// live view, replay and report. Cards are updated in place so focus and open
// panels survive an update.
// Suspicions are counted apart (suspected, confirmed, dismissed); a private
// message, a request for a private word or a held check-in in any room raises
// an alert that stays until the therapist says they have seen it.

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
    await loadExercises();
  }
  subscribe();
}

start();
