// Entry point of the room page: takes the invitation token from the URL
// fragment (or, after a reload, from sessionStorage), connects, feeds server
// messages into the model and picks the view for the role the server says
// the token has. Partners get "Leave quickly" (quick-exit.js). Staff open
// index.html?room=ID from the dashboard without a token: each connect then
// takes a fresh ticket from their login (POST /api/rooms/ID/ticket). The
// socket carries the room (/ws?room=ID) whenever the page knows it: from the
// link's or the staff page's ?room=, else from the first hello ack.

import { h, replaceChildren } from './dom.js';
import { RoomConnection, socketUrl, takeToken, forgetToken, keptRoom, tokenFromFragment, roomFromSearch } from './connection.js';
import { installQuickExit, loadCrisisConfig, onLeave } from './quick-exit.js';
import { RoomModel } from './model.js';
import { PartnerView } from './partner-view.js';
import { TherapistView } from './therapist-view.js';
import { announcement } from './room-parts.js';
import { kindError, CONNECTION_TEXT } from './words.js';
import { api } from './api.js';

const app = document.getElementById('app');
const politeRegion = document.getElementById('announce');
const alertRegion = document.getElementById('alert');
const connEl = document.getElementById('connection');
const connText = document.getElementById('connection-text');
const roleEl = document.getElementById('role-label');
const toastEl = document.getElementById('toast');
const retryIn = document.getElementById('connection-retry');

function speak(region, text) {
  if (!text) return;
  // Clearing first makes a repeated sentence be read again.
  region.textContent = '';
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

let toastTimer = null;
function notify(text, kind) {
  toastEl.textContent = text;
  toastEl.dataset.kind = kind || 'message';
  toastEl.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    toastEl.hidden = true;
  }, 8000);
}

function showProblem(title, text, ...more) {
  replaceChildren(app, h('section', { class: 'card problem' }, h('h1', {}, title), h('p', {}, text), ...more));
}

const ROLE_LABEL = {
  partner_a: 'Partner A',
  partner_b: 'Partner B',
  therapist: 'Therapist',
  observer: 'Observer (read-only)',
};

// "Leave quickly" is for partners (anyone until the server says the role).
function quickExitActive() {
  const role = document.body.dataset.role;
  return role !== 'therapist' && role !== 'observer';
}

function start() {
  installQuickExit({ button: document.getElementById('quick-exit'), active: quickExitActive });
  loadCrisisConfig();
  // A new invitation pasted into this tab changes only the fragment: start over with it.
  window.addEventListener('hashchange', () => {
    if (tokenFromFragment(location.hash)) location.reload();
  });
  const token = takeToken();
  // A partner's room was kept with the token (the address bar shows the bare page).
  const pageRoom = token ? keptRoom() : roomFromSearch(location.search);
  const staffRoom = token ? null : new URLSearchParams(location.search).get('room');
  if (!token && !staffRoom) {
    showProblem(
      'This page needs your invitation link',
      'Please open the link your therapist sent you. It ends with “#token=” followed by a code.',
      h('p', { class: 'hint' }, 'Are you the therapist? ', h('a', { href: 'login.html' }, 'Log in to your rooms'), '.'),
    );
    setConnection('idle');
    return;
  }
  const model = new RoomModel();
  let view = null;
  let prevState = null;
  let conn = null;

  const send = (msg) => conn.send(msg);

  conn = new RoomConnection({
    url: socketUrl(location),
    room: pageRoom,
    token,
    getTicket: staffRoom
      ? () => api('POST', `/api/rooms/${encodeURIComponent(staffRoom)}/ticket`, {}).then((r) => r.ticket)
      : null,
    resumeFrom: () => model.maxSeq,
    onMessage(msg) {
      switch (msg.type) {
        case 'ack':
          if (msg.protocol) {
            model.setAck(msg);
            if (!view) view = makeView(model, send);
          }
          break;
        case 'event':
          model.addEvent(msg.seq, msg.event);
          break;
        case 'state': {
          model.setState(msg);
          if (!view) return;
          view.render();
          const said = announcement(model, prevState);
          if (said) speak(politeRegion, said);
          prevState = msg;
          break;
        }
        case 'error':
          if (!msg.id) notify(kindError(msg));
          break;
        case 'bye':
          if (msg.reason === 'shutdown') notify(CONNECTION_TEXT.shutdown, 'connection');
          else if (msg.reason === 'room_moved') notify(CONNECTION_TEXT.room_moved, 'connection');
          break;
        default:
          break;
      }
    },
    onStatus(status, detail) {
      setConnection(status, detail);
      if (status === 'open' && toastEl.dataset.kind === 'connection') toastEl.hidden = true;
      if (view) view.setOnline(status === 'open');
      if (status === 'failed') showEnded(detail.reason);
      if (status === 'replaced') showReplaced(conn);
    },
  });
  onLeave(() => conn.close());
  conn.connect();
  document.getElementById('retry-now').addEventListener('click', () => conn.reconnectNow());
}

// Why the connection ended for good (close 4401, or no ticket to be had).
function showEnded(reason) {
  const login = h('p', { class: 'hint' }, h('a', { href: 'login.html?next=dashboard.html' }, 'Log in again'), ' to return to your rooms.');
  switch (reason) {
    case 'logged_out':
      showProblem('You are logged out', 'Your login ended (you logged out, it was idle too long, or your password changed), so the live view has closed.', login);
      break;
    case 'not_yours':
      showProblem('This room is not open to you', 'It does not exist, or it is not one of your rooms.', login);
      break;
    case 'revoked':
      forgetToken();
      showProblem('This link has been withdrawn', 'Your therapist has replaced this invitation link. Please ask them for the new one.');
      break;
    case 'session_ended':
      forgetToken();
      showProblem('This session has ended', 'The session this link was for is over, so the link no longer opens it. Thank you for taking part.');
      break;
    case 'wrong_room':
      showProblem('This link does not fit this address', kindError({ code: 'wrong_room' }));
      break;
    case 'room_erased':
      forgetToken();
      showProblem('This session has been deleted', 'As was asked, this session and everything said in it have been deleted for good. Nothing of it is kept, so this link no longer opens anything. Thank you for taking part.');
      break;
    default:
      forgetToken();
      showProblem('This link does not work', kindError({ code: 'bad_token' }));
  }
}

function makeView(model, send) {
  const role = model.role;
  roleEl.textContent = ROLE_LABEL[role] || role;
  document.body.dataset.role = role;
  const common = {
    root: app,
    model,
    send,
    announce: (t) => speak(politeRegion, t),
    alert: (t) => speak(alertRegion, t),
    notify,
  };
  if (role === 'therapist' || role === 'observer') {
    return new TherapistView({ ...common, readOnly: role === 'observer' });
  }
  return new PartnerView(common);
}

function showReplaced(conn) {
  const again = h('button', { type: 'button', class: 'primary' }, 'Use this window again');
  // The stopped room stays in view, dimmed and out of reach, until taken back.
  const frozen = [...app.children];
  for (const el of frozen) el.inert = true;
  app.classList.add('stopped');
  again.addEventListener('click', () => {
    banner.remove();
    for (const el of frozen) el.inert = false;
    app.classList.remove('stopped');
    conn.restart();
  });
  const banner = h(
    'section',
    { class: 'card problem replaced', role: 'alert', 'aria-labelledby': 'replaced-h', tabindex: '-1' },
    h('h2', { id: 'replaced-h' }, 'This window has stopped'),
    h(
      'p',
      {},
      'This link was opened in another window or on another device, so this window has stopped. If that was not you, tell your therapist.',
    ),
    h('div', { class: 'form-actions' }, again),
  );
  app.prepend(banner);
  banner.focus();
}

let countdown = null;
function setConnection(status, detail = {}) {
  connEl.dataset.status = status;
  clearInterval(countdown);
  const retry = document.getElementById('retry-now');
  retry.hidden = status !== 'offline';
  retryIn.textContent = '';
  switch (status) {
    case 'connecting':
      connText.textContent = 'Connecting…';
      break;
    case 'open':
      connText.textContent = 'Connected';
      break;
    case 'reconnecting':
      connText.textContent = 'Reconnecting…';
      break;
    case 'offline': {
      // The live text stays put; the countdown beside it is not announced.
      connText.textContent = 'Connection lost';
      const update = () => {
        const s = Math.max(0, Math.ceil((detail.retryAt - Date.now()) / 1000));
        retryIn.textContent = s > 0 ? `retrying in ${s} s` : 'retrying…';
      };
      update();
      countdown = setInterval(update, 1000);
      break;
    }
    case 'replaced':
      connText.textContent = 'Stopped';
      break;
    case 'failed':
      connText.textContent = 'Not connected';
      break;
    default:
      connText.textContent = 'Not connected';
  }
}

start();
