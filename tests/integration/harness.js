// harness.js - starts the real attune-server on a free loopback port with a
// temporary data directory and drives it with real WebSocket clients (ws).
import assert from 'node:assert/strict';
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// attune-server and attune refuse to run as root without --allow-root; the
// test runner on a fresh machine (CI) is root, so every binary a test starts
// inherits the equivalent ATTUNE_ALLOW_ROOT=1 (limits.test.js checks the
// refusal itself with it removed).
export const AS_ROOT = process.getuid?.() === 0;
if (AS_ROOT) process.env.ATTUNE_ALLOW_ROOT = '1';

// The store under test: the embedded SQLite files of each data directory
// (default), or with ATTUNE_TEST_STORE=pg a PostgreSQL database per data
// directory on the cluster ATTUNE_TEST_PG names (a superuser URI: tests/pg/
// cluster.sh start DIR PORT prints it). Every server, --create-room,
// --verify and `attune` call made through this file then gets --store URI
// and --kek-file DIR.kek (the file SQLite's keyring defaults to, so a test
// that looks for it finds it; the keyring writes it 0600 on first use), and
// servers a --node-name. Tests about the SQLite files themselves are
// skipped on PostgreSQL with ON_PG (see each file's reason).
export const ON_PG = process.env.ATTUNE_TEST_STORE === 'pg';
const PG_ADMIN = process.env.ATTUNE_TEST_PG;
if (ON_PG && !PG_ADMIN) throw new Error('ATTUNE_TEST_STORE=pg needs ATTUNE_TEST_PG (tests/pg/cluster.sh uri DIR)');
if (process.env.ATTUNE_TEST_STORE && !ON_PG && process.env.ATTUNE_TEST_STORE !== 'sqlite')
  throw new Error(`ATTUNE_TEST_STORE: pg or sqlite, not ${process.env.ATTUNE_TEST_STORE}`);

function psql(uri, sql) {
  return execFileSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', uri, '-c', sql], {
    encoding: 'utf8',
    env: { ...process.env, PGOPTIONS: '-c client_min_messages=warning' },
  }).trim();
}

const pgDatabases = new Map(); // path.resolve(dataDir) -> {db, uri}

// The PostgreSQL database of a data directory, created empty on first use
// (tests assume a fresh store per data directory).
export function pgUriFor(dataDir) {
  const key = path.resolve(dataDir);
  let entry = pgDatabases.get(key);
  if (!entry) {
    const db = `attune_it_${process.pid}_${pgDatabases.size + 1}`;
    psql(PG_ADMIN, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    psql(PG_ADMIN, `CREATE DATABASE ${db}`);
    entry = { db, uri: PG_ADMIN.replace(/\/[^/?]*(\?|$)/, `/${db}$1`) };
    pgDatabases.set(key, entry);
  }
  return entry.uri;
}

// SQL on a data directory's PostgreSQL database (a test's tampering).
export function pgSql(dataDir, sql) {
  return psql(pgUriFor(dataDir), sql);
}

// What a data directory's store holds, as bytes to search for something
// that must not be stored: DATA/attune.db and its WAL on SQLite; on
// PostgreSQL a pg_dump of its database, with every bytea value decoded too.
export function storedBytes(dataDir) {
  if (!ON_PG) {
    const db = path.join(dataDir, 'attune.db');
    const wal = `${db}-wal`;
    return Buffer.concat([fs.readFileSync(db), ...(fs.existsSync(wal) ? [fs.readFileSync(wal)] : [])]);
  }
  const dump = execFileSync('pg_dump', ['--data-only', '-d', pgUriFor(dataDir)], { maxBuffer: 1 << 28 });
  const values = [...dump.toString('latin1').matchAll(/\\{1,2}x([0-9a-f]+)/g)].map((m) => Buffer.from(m[1], 'hex'));
  return Buffer.concat([dump, ...values]);
}

if (ON_PG)
  process.on('exit', () => {
    for (const { db } of pgDatabases.values()) {
      try {
        psql(PG_ADMIN, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      } catch {
        // the cluster is thrown away at the end anyway
      }
    }
  });

// A test's skip option when it is about the SQLite files themselves:
// test('...', { skip: sqliteOnly('why') }, ...).
export function sqliteOnly(reason) {
  return ON_PG ? `on PostgreSQL: ${reason}` : false;
}

const hasOption = (args, name) => args.some((a) => a === name || a.startsWith(`${name}=`));

// The store options for a data directory ([] on SQLite); `args` are the
// call's own (a --kek-file there wins).
export function storeArgs(dataDir, args = []) {
  if (!ON_PG || hasOption(args, '--store')) return [];
  const out = ['--store', pgUriFor(dataDir)];
  if (!hasOption(args, '--kek-file')) out.push('--kek-file', `${path.resolve(dataDir)}.kek`);
  return out;
}

// The data directory an argv names with --data DIR or --data=DIR.
function dataDirOf(args) {
  for (let i = 0; i < args.length && args[i] !== '--'; i++) {
    if (args[i] === '--data' && i + 1 < args.length) return args[i + 1];
    if (args[i].startsWith('--data=')) return args[i].slice(7);
  }
  return null;
}

// `attune` words with the store options of their --data directory added.
export function cliArgs(args) {
  const dir = dataDirOf(args);
  if (!dir) return args;
  // before a `--` (after it every word is positional)
  const end = args.indexOf('--');
  const at = end < 0 ? args.length : end;
  return [...args.slice(0, at), ...storeArgs(dir, args.slice(0, at)), ...args.slice(at)];
}

// Data directories must be private (0700) or the server refuses them; a
// copy of a checked-out fixture may carry 0755.
function privateDir(dir) {
  if (fs.existsSync(dir)) fs.chmodSync(dir, 0o700);
  return dir;
}

// ATTUNE_SERVER names the binary, else ATTUNE_BUILD_DIR/server/attune-server;
// otherwise the newest build*/server/attune-server.
export function serverBin() {
  if (process.env.ATTUNE_SERVER) return process.env.ATTUNE_SERVER;
  if (process.env.ATTUNE_BUILD_DIR) return path.join(process.env.ATTUNE_BUILD_DIR, 'server', 'attune-server');
  const found = fs
    .readdirSync(ROOT)
    .filter((d) => d.startsWith('build'))
    .map((d) => path.join(ROOT, d, 'server', 'attune-server'))
    .filter((p) => fs.existsSync(p))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  if (!found.length) throw new Error('attune-server not built: set ATTUNE_SERVER');
  return found[0];
}

// The `attune` command: ATTUNE_CLI, else ATTUNE_BUILD_DIR/client/attune, else
// beside the server binary's build directory.
export function cliBin() {
  if (process.env.ATTUNE_CLI) return process.env.ATTUNE_CLI;
  if (process.env.ATTUNE_BUILD_DIR) return path.join(process.env.ATTUNE_BUILD_DIR, 'client', 'attune');
  return path.resolve(path.dirname(serverBin()), '..', 'client', 'attune');
}

// Runs `attune args...` with `input` on stdin: {code, stdout, stderr}.
export function attune(args, input) {
  const r = spawnSync(cliBin(), cliArgs(args), { input, encoding: 'utf8', timeout: 30000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// attune() that must succeed (exit 0).
export function attuneOk(args, input) {
  const r = attune(args, input);
  assert.equal(r.code, 0, r.stderr);
  return r;
}

// A therapist account made with `attune therapist add` (password on stdin).
export function addAccount(dataDir, name, password, extra = []) {
  return attuneOk(['therapist', 'add', name, '--data', dataDir, ...extra], `${password}\n`);
}

export function tempDir(tag = 'it') {
  return fs.mkdtempSync(path.join(os.tmpdir(), `attune-${tag}-`));
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starts the server; resolves once it logs "listening". `cwd` is its working
// directory; `wrap` an argv that runs it (e.g. ['sh', '-c', 'ulimit -c
// unlimited; exec "$0" "$@"']: the server's pid is the wrapper's).
export async function startServer({ dataDir = tempDir(), args = [], port, cwd, wrap = [] } = {}) {
  port = port ?? (await freePort());
  const argv = [
    ...wrap,
    serverBin(),
    ...['--data', privateDir(dataDir), '--listen', '127.0.0.1', '--port', String(port), ...(AS_ROOT ? ['--allow-root'] : []), ...args],
    ...storeArgs(dataDir, args),
    ...(ON_PG && !hasOption(args, '--node-name') ? ['--node-name', `it-${port}`] : []),
  ];
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd });
  const logs = [];
  const stdout = [];
  let errText = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const lines = (stream, sink) => {
    let buf = '';
    stream.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        sink(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  };
  lines(proc.stdout, (l) => stdout.push(l));
  lines(proc.stderr, (l) => {
    errText += l + '\n';
    try {
      logs.push(JSON.parse(l));
    } catch {
      logs.push({ unparsed: l });
    }
  });
  const deadline = Date.now() + 10000;
  while (!logs.some((l) => l.event === 'listening')) {
    const done = await Promise.race([exited, sleep(20).then(() => null)]);
    if (done) throw new Error(`server exited at start (${JSON.stringify(done)}):\n${errText}`);
    if (Date.now() > deadline) throw new Error(`server did not start:\n${errText}`);
  }
  return {
    proc,
    port,
    dataDir,
    logs,
    stdout,
    exited,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    alive() {
      return proc.exitCode === null && proc.signalCode === null;
    },
  };
}

// A copy of protocol/ (exercises, vocabularies, consent notice, safety
// check-in) in a temporary directory, for --protocol-dir; `edit(dir)` may
// change it (e.g. an exercise's per-step silence_ms).
export function protocolDirCopy(edit) {
  const dir = path.join(tempDir('proto'), 'protocol');
  fs.cpSync(path.join(ROOT, 'protocol'), dir, { recursive: true, filter: (src) => !/[\\/](src|include)$/.test(src) });
  if (edit) edit(dir);
  return dir;
}

// Removes every step's silence_ms from an exercise in a protocol dir copy, so
// the room's default (--silence-ms) applies.
export function withoutStepSilence(exercise = 'enactment') {
  return (dir) => {
    const file = path.join(dir, 'exercises', `${exercise}.json`);
    const script = JSON.parse(fs.readFileSync(file, 'utf8'));
    for (const step of script.steps) delete step.silence_ms;
    fs.writeFileSync(file, JSON.stringify(script, null, 2));
  };
}

export function tokenOf(url) {
  return url.slice(url.indexOf('#token=') + 7);
}

// Creates a room with `attune-server --create-room` (a separate process, as
// an operator would). Returns {room, tokens: {role: token}}.
export function createRoom(dataDir, exercise = 'enactment', extra = []) {
  const out = execFileSync(serverBin(), ['--create-room', exercise, '--data', privateDir(dataDir), ...extra, ...storeArgs(dataDir, extra)], {
    encoding: 'utf8',
  });
  const res = { room: null, tokens: {} };
  for (const line of out.trim().split('\n')) {
    const [kind, a, b] = line.split(' ');
    if (kind === 'room') res.room = a;
    if (kind === 'invite') res.tokens[a] = tokenOf(b);
  }
  return res;
}

export function verify(dataDir) {
  const out = execFileSync(serverBin(), ['--verify', privateDir(dataDir), ...storeArgs(dataDir)], { encoding: 'utf8' });
  const rooms = {};
  for (const line of out.trim().split('\n').filter(Boolean)) {
    const r = JSON.parse(line);
    rooms[r.room] = r;
  }
  return rooms;
}

export class Client {
  constructor(ws) {
    this.ws = ws;
    this.msgs = [];
    this.waiters = [];
    this.nextId = 1;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        this.#poke();
      });
    });
    ws.on('message', (data) => {
      let m;
      try {
        m = JSON.parse(data.toString());
      } catch {
        m = { type: '<unparseable>', raw: data.toString() };
      }
      this.msgs.push(m);
      this.#poke();
    });
    ws.on('error', () => {});
  }

  // localAddress binds the source address (e.g. 127.0.0.2: another client).
  static connect(url, { origin, protocol = 'attune.v1', headers, localAddress } = {}) {
    return new Promise((resolve, reject) => {
      const opts = { headers: { ...(headers || {}) }, maxPayload: 64 << 20 };
      if (origin) opts.origin = origin;
      if (localAddress) opts.localAddress = localAddress;
      const ws = protocol ? new WebSocket(url, protocol, opts) : new WebSocket(url, opts);
      const c = new Client(ws);
      ws.once('open', () => resolve(c));
      ws.once('unexpected-response', (req, res) => {
        reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode }));
        req.destroy();
      });
      ws.once('error', reject);
    });
  }

  #poke() {
    const still = [];
    for (const w of this.waiters) if (!w.check()) still.push(w);
    this.waiters = still;
  }

  // First message at index >= from matching pred (already received or future).
  waitFor(pred, { from = 0, timeout = 8000 } = {}) {
    return new Promise((resolve, reject) => {
      const w = {
        check: () => {
          for (let i = from; i < this.msgs.length; i++)
            if (pred(this.msgs[i], i)) {
              clearTimeout(w.timer);
              resolve(this.msgs[i]);
              return true;
            }
          if (this.closeInfo && !w.afterClose) {
            // let one more turn of messages arrive, then fail
            w.afterClose = true;
          } else if (this.closeInfo) {
            clearTimeout(w.timer);
            reject(new Error(`closed ${JSON.stringify(this.closeInfo)} while waiting`));
            return true;
          }
          return false;
        },
      };
      w.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`timeout waiting; last messages: ${JSON.stringify(this.msgs.slice(-3))}`));
      }, timeout);
      if (!w.check()) this.waiters.push(w);
    });
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  // Sends obj with a fresh id; resolves with its ack or error.
  request(obj, opts) {
    const id = `q${this.nextId++}`;
    this.send({ ...obj, id });
    return this.waitFor((m) => (m.type === 'ack' || m.type === 'error') && m.id === id, opts);
  }

  // hello, then waits for the state that ends the catch-up.
  async hello(token, resume_from) {
    const msg = { type: 'hello', token };
    if (resume_from !== undefined) msg.resume_from = resume_from;
    const at = this.msgs.length;
    const ack = await this.request(msg);
    if (ack.type !== 'ack') return { ack };
    const ackIndex = this.msgs.indexOf(ack, at);
    const state = await this.waitFor((m) => m.type === 'state', { from: ackIndex });
    return { ack, state, ackIndex };
  }

  events() {
    return this.msgs.filter((m) => m.type === 'event');
  }

  lastState() {
    for (let i = this.msgs.length - 1; i >= 0; i--) if (this.msgs[i].type === 'state') return this.msgs[i];
    return null;
  }

  waitState(pred, opts) {
    return this.waitFor((m) => m.type === 'state' && pred(m), opts);
  }

  close() {
    this.ws.close();
    return this.closed;
  }
}

// A turn's input that satisfies the step's input descriptions.
export function inputFor(step, vocab, { rating = 8, choice } = {}) {
  const input = {};
  for (const d of step.inputs) {
    switch (d.kind) {
      case 'text':
        input[d.name] = `words for ${d.name}`;
        break;
      case 'emotion_reactive':
        input[d.name] = { id: vocab.reactive[0].id };
        break;
      case 'emotion_primary':
        input[d.name] = { id: vocab.primary[0].id };
        break;
      case 'need':
        input[d.name] = { id: vocab.needs[0].id };
        break;
      case 'rating':
        input[d.name] = Math.min(d.max ?? 10, Math.max(d.min ?? 0, rating));
        break;
      case 'choice':
        input[d.name] = choice && choice[d.name] ? choice[d.name] : d.options[0].id;
        break;
      default:
        throw new Error(`unknown input kind ${d.kind}`);
    }
  }
  return input;
}

// A safety check-in that answers every question of the hello ack's `safety`:
// clear (the first option not in the question's hold list), or with `hold`
// the question's first hold option.
export function checkinAnswers(safety, { hold = false } = {}) {
  return Object.fromEntries(safety.questions.map((q) => [q.id,
    hold ? q.hold[0] : q.options.find((o) => !q.hold.includes(o.id)).id]));
}

// The hello ack a client received (its first one).
export function helloAckOf(client) {
  return client.msgs.find((m) => m.type === 'ack' && 'role' in m);
}

// Sequence numbers are per role (protocol 2): a partner's ack seq says
// nothing about the therapist's numbering. To wait for a command's commit,
// note where a staff client's messages are before sending (from =
// client.msgs.length) and wait for the first state after that.
export function stateAfter(client, from, opts) {
  return client.waitFor((m) => m.type === 'state', { from, ...opts });
}

// Both partners consent and answer the safety check-in clear; resolves with
// the watcher's (the therapist's) state once the session is active.
export async function startSession(watcher, a, b) {
  for (const p of [a, b]) {
    const r = await p.request({ type: 'consent', accept: true });
    if (r.type !== 'ack') throw new Error(`consent: ${JSON.stringify(r)}`);
  }
  const st = await watcher.waitState((s) => s.status === 'checking_in' || s.status === 'active');
  if (st.status === 'checking_in') {
    for (const p of [a, b]) {
      const r = await p.request({ type: 'checkin', answers: checkinAnswers(helloAckOf(p).safety) });
      if (r.type !== 'ack') throw new Error(`checkin: ${JSON.stringify(r)}`);
    }
  }
  return watcher.waitState((s) => s.status === 'active');
}

// The role that must act in this state (null when nobody).
export function actorOf(state) {
  if (!state.step || state.status !== 'active') return null;
  const a = state.step.actor;
  if (a === 'speaker' || a === 'listener') return state[a];
  return a;
}

export function canonical(state) {
  const { type, you, ...rest } = state;
  return rest;
}

export async function httpGet(url) {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}
