// The WebSocket link to the server (protocol attune.v1): hello with
// resume_from, request ids matched to ack/error replies, an application-level
// heartbeat and automatic reconnection with backoff. It knows nothing about
// rooms beyond the envelope and the room id in the socket's URL
// (/ws?room=ID, by which a proxy in front of several nodes routes: the link's
// or staff page's room, else the one the first hello ack names, kept for
// every reconnect); callers receive every server message. Also where the
// invitation token is kept between reloads (takeToken). Staff (the
// therapist's and an observer's live view) have no token: each (re)connect
// asks getTicket for a fresh single-use ticket from their login. Close 4503
// (room_moved: the room is moving to another node) is one more drop: it
// reconnects after the usual backoff and resumes.
//
// Every command that records something gets a random command_id
// (PROTOCOL.md section 4) and stays in `unacked` until its ack or error:
// a command sent while offline waits there, and after each (re)connect,
// once the hello's replay has ended (its state), every unacked command is
// sent again with the same command_id, in the order it was first sent. The
// server records it once and acks a resend with the original's seq, so a
// person's words are neither lost when a link or a node drops before the
// ack, nor recorded twice.

const HEARTBEAT_MS = 20000;
const HEARTBEAT_TIMEOUT_MS = 10000;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000];
// What records nothing takes no command id, and is not kept for a resend.
const NOT_COMMANDS = new Set(['hello', 'ping', 'typing']);

/** 16 random bytes in base64url (22 characters): a command id. */
export function newCommandId(crypto = globalThis.crypto) {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export class RoomConnection {
  /**
   * @param {object} opts
   * @param {string} opts.url  ws:// or wss:// URL of /ws
   * @param {string} [opts.room]  the room id, when the link or page names it
   * @param {string} [opts.token]  invitation token (partners, operator links)
   * @param {() => Promise<string>} [opts.getTicket]  a fresh staff ticket per connect
   * @param {() => number} opts.resumeFrom  highest seq seen so far
   * @param {(msg: object) => void} opts.onMessage  every server message
   * @param {(status: string, detail?: object) => void} opts.onStatus
   */
  constructor(opts) {
    this.opts = opts;
    this.ws = null;
    this.status = 'idle';
    this.nextId = 1;
    this.pending = new Map();
    // command_id -> {msg, resolve, reject, id}: sent or waiting, not yet
    // answered; `resumed` once this connection's replay has ended.
    this.unacked = new Map();
    this.resumed = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.heartbeatTimer = null;
    this.heartbeatDeadline = null;
    this.authenticated = false;
    this.stopped = false;
    this.retryAt = null;
    this.room = opts.room || null;
    window.addEventListener('online', () => this.reconnectNow());
  }

  setStatus(status, detail) {
    this.status = status;
    this.opts.onStatus(status, detail || {});
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.authenticated = false;
    this.resumed = false;
    this.setStatus(this.attempt === 0 ? 'connecting' : 'reconnecting');
    if (!this.opts.getTicket) {
      this.open({ token: this.opts.token });
      return;
    }
    // A ticket lives a minute and works once: one per connect, fetched first.
    this.opts.getTicket().then(
      (ticket) => {
        if (!this.stopped) this.open({ ticket });
      },
      (err) => {
        if (this.stopped) return;
        if (err && err.status === 401) {
          this.stopped = true;
          this.setStatus('failed', { reason: 'logged_out' });
        } else if (err && (err.status === 404 || err.status === 403)) {
          this.stopped = true;
          this.setStatus('failed', { reason: 'not_yours' });
        } else {
          this.scheduleReconnect();
        }
      },
    );
  }

  open(auth) {
    this.byeReason = null;
    let ws;
    try {
      ws = new WebSocket(withRoom(this.opts.url, this.room), 'attune.v1');
    } catch (err) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (ws !== this.ws) return;
      const hello = { type: 'hello', id: this.newId('h'), ...auth };
      const resume = this.opts.resumeFrom();
      if (resume > 0) hello.resume_from = resume;
      this.track(hello).then(
        (ack) => {
          // An older link has no ?room=: the ack says which, for the reconnects.
          if (!this.room && typeof ack.room === 'string') this.room = ack.room;
          this.authenticated = true;
          this.attempt = 0;
          this.setStatus('open', { ack });
          this.startHeartbeat();
        },
        () => {
          /* bad_token arrives as error + bye + close 4401; handled on close */
        },
      );
      ws.send(JSON.stringify(hello));
    });
    ws.addEventListener('message', (e) => {
      if (ws !== this.ws) return;
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      this.handle(msg);
    });
    ws.addEventListener('close', (e) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.stopHeartbeat();
      this.resumed = false;
      this.failPending({ code: 'disconnected', message: 'connection closed' });
      if (e.code === 4401) {
        // bye says why: bad_token, revoked, session_ended, logged_out, room_erased, wrong_room.
        this.stopped = true;
        this.failUnacked({ code: this.byeReason || 'bad_token', message: 'the link no longer works' });
        this.setStatus('failed', { reason: this.byeReason || 'bad_token' });
      } else if (e.code === 4409) {
        this.stopped = true;
        this.failUnacked({ code: 'replaced', message: 'another window took this seat' });
        this.setStatus('replaced', {});
      } else {
        // 4503 room_moved included: the next connect lands on the node that
        // holds the room once its lease has moved.
        this.scheduleReconnect(e.code === 4503 ? 'room_moved' : undefined);
      }
    });
  }

  handle(msg) {
    if (msg.type === 'bye') this.byeReason = msg.reason;
    if ((msg.type === 'ack' || msg.type === 'error') && msg.id && this.pending.has(msg.id)) {
      const entry = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.type === 'ack') entry.resolve(msg);
      else entry.reject(msg);
    }
    this.opts.onMessage(msg);
    // The state after the hello ack ends the replay: now what was never
    // acked goes again, before anything new.
    if (msg.type === 'state' && this.authenticated && !this.resumed) {
      this.resumed = true;
      for (const entry of this.unacked.values()) this.transmit(entry);
    }
  }

  newId(prefix) {
    const id = `${prefix || 'm'}${this.nextId}`;
    this.nextId += 1;
    return id;
  }

  track(msg) {
    return new Promise((resolve, reject) => {
      this.pending.set(msg.id, { resolve, reject, type: msg.type });
    });
  }

  ready() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN && this.authenticated && this.resumed;
  }

  /**
   * Sends a message; resolves with its ack, rejects with an error object.
   * A command that records something is kept until it is answered: sent
   * now when connected, else (and again after any drop) once reconnected.
   */
  send(msg) {
    if (NOT_COMMANDS.has(msg.type)) {
      if (!this.ready()) return Promise.reject({ code: 'offline', message: 'not connected' });
      const full = { ...msg, id: this.newId(msg.type === 'ping' ? 'p' : 'm') };
      const promise = this.track(full);
      this.ws.send(JSON.stringify(full));
      return promise;
    }
    if (this.stopped) return Promise.reject({ code: 'offline', message: 'not connected' });
    return new Promise((resolve, reject) => {
      const entry = { msg: { ...msg, command_id: newCommandId() }, resolve, reject, id: null };
      this.unacked.set(entry.msg.command_id, entry);
      if (this.ready()) this.transmit(entry);
    });
  }

  /** Sends an unacked command on this connection, with a fresh reply id. */
  transmit(entry) {
    const id = this.newId('m');
    entry.id = id;
    const done = () => this.unacked.get(entry.msg.command_id) === entry && entry.id === id;
    this.pending.set(id, {
      type: entry.msg.type,
      resolve: (ack) => {
        if (!done()) return;
        this.unacked.delete(entry.msg.command_id);
        entry.resolve(ack);
      },
      reject: (err) => {
        // A dropped link keeps it for the resend; a real answer ends it.
        if (!done() || err.code === 'disconnected') return;
        this.unacked.delete(entry.msg.command_id);
        entry.reject(err);
      },
    });
    this.ws.send(JSON.stringify({ ...entry.msg, id }));
  }

  failPending(error) {
    for (const entry of this.pending.values()) entry.reject(error);
    this.pending.clear();
  }

  failUnacked(error) {
    for (const entry of this.unacked.values()) entry.reject(error);
    this.unacked.clear();
  }

  scheduleReconnect(reason) {
    if (this.stopped) return;
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.setStatus('offline', reason ? { retryAt: this.retryAt, reason } : { retryAt: this.retryAt });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Used by the "try now" button and the browser's online event. */
  reconnectNow() {
    if (this.stopped || this.ws) return;
    this.connect();
  }

  /** Takes over after "replaced" when the person chooses this window. */
  restart() {
    this.stopped = false;
    this.attempt = 0;
    this.connect();
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.heartbeatTimer = setInterval(() => {
      const ws = this.ws;
      if (!ws) return;
      const deadline = setTimeout(() => {
        // No answer: the link is dead even if the socket has not noticed.
        if (ws === this.ws) ws.close(4000, 'heartbeat timeout');
      }, HEARTBEAT_TIMEOUT_MS);
      this.send({ type: 'ping' }).then(
        () => clearTimeout(deadline),
        () => clearTimeout(deadline),
      );
    }, HEARTBEAT_MS);
  }

  stopHeartbeat() {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  /** Closes for good (no reconnect): used when the person leaves quickly. */
  close() {
    this.stopped = true;
    this.failUnacked({ code: 'offline', message: 'left' });
    clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, 'left');
  }
}

export function socketUrl(loc) {
  const scheme = loc.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${loc.host}/ws`;
}

/** The socket URL with ?room=ID when the room is known (room ids need no escaping; encoded anyway). */
export function withRoom(url, room) {
  return room ? `${url}?room=${encodeURIComponent(room)}` : url;
}

/** The page's ?room= (an invitation link's, or the staff live view's), or null. */
export function roomFromSearch(search) {
  const room = new URLSearchParams(search || '').get('room');
  return room && /^[A-Za-z0-9_-]{1,64}$/.test(room) ? room : null;
}

export function tokenFromFragment(hash) {
  const params = new URLSearchParams((hash || '').replace(/^#/, ''));
  return params.get('token');
}

// The invitation token lives in this tab's sessionStorage, not in the
// address bar: it is gone when the tab closes or someone leaves quickly.
const TOKEN_KEY = 'attune.token';
const ROOM_KEY = 'attune.room';

function tabStorage() {
  try {
    return window.sessionStorage; // throws where the browser blocks storage
  } catch {
    return null;
  }
}

/**
 * The invitation token. From the link's #token=...: it is then kept in this
 * tab's sessionStorage, with the link's ?room= (keptRoom), and both are taken
 * out of the address bar and of this history entry (history.replaceState),
 * which shows the bare page: nothing there names the session. Without one (a
 * reload, or the page coming back), from sessionStorage. null when neither
 * has one.
 */
export function takeToken(loc = location, hist = history, store = tabStorage()) {
  const fromLink = tokenFromFragment(loc.hash);
  if (fromLink) {
    const room = roomFromSearch(loc.search);
    try {
      store.setItem(TOKEN_KEY, fromLink);
      if (room) store.setItem(ROOM_KEY, room);
      else store.removeItem(ROOM_KEY);
    } catch {
      /* storage blocked or full: a reload will need the link again */
    }
    hist.replaceState(null, '', loc.pathname);
    return fromLink;
  }
  try {
    return store.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** The room of the link whose token takeToken kept, or null. */
export function keptRoom(store = tabStorage()) {
  try {
    return roomFromSearch(`?room=${store.getItem(ROOM_KEY) || ''}`);
  } catch {
    return null;
  }
}

/** Drops the kept token (the server refused it). */
export function forgetToken(store = tabStorage()) {
  try {
    store.removeItem(ROOM_KEY);
    store.removeItem(TOKEN_KEY);
  } catch {
    /* ignore */
  }
}
