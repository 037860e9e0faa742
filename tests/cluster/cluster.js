// cluster.js - what the failure campaign's tests share (issue 13): throwaway
// databases and PostgreSQL clusters (tests/pg/cluster.sh), attune-server
// nodes on one database, nginx in front of them with
// deploy/nginx/attune-cluster.conf (only its ports replaced), rooms created
// with `attune-server --create-room --store`, and members that load a room
// through nginx, reconnect with resume_from after a drop and record every
// ack's seq and every event they were sent. Everything started here is
// killed by its pid and every directory removed by `campaign.stop()`.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { ROOT, AS_ROOT, cliBin, serverBin, startServer, tempDir, freePort, sleep, tokenOf } from '../integration/harness.js';

export const ADMIN = process.env.ATTUNE_TEST_PG;
const CLUSTER_SH = path.join(ROOT, 'tests', 'pg', 'cluster.sh');

export function psql(uri, sql) {
  return execFileSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', uri, '-c', sql], {
    encoding: 'utf8',
    timeout: 20000,
    env: { ...process.env, PGOPTIONS: '-c client_min_messages=warning' },
  }).trim();
}

// The URI with its database replaced (a multi-host URI too).
export function withDatabase(uri, db) {
  return uri.replace(/^(postgresql:\/\/[^/]*)\/[^?]*/, `$1/${db}`);
}

// A fresh database on the admin URI's server; returns its URI and a drop().
export function freshDatabase(admin, tag) {
  const db = `attune_c_${tag}_${process.pid}`;
  psql(admin, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  psql(admin, `CREATE DATABASE ${db}`);
  return {
    uri: withDatabase(admin, db),
    drop: () => psql(admin, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`),
  };
}

// Polls cond() (sync or async) until it returns a truthy value; throws with
// `what` after timeoutMs.
export async function waitUntil(cond, { timeoutMs = 10000, stepMs = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

// A PostgreSQL cluster of the test's own (tests/pg/cluster.sh): a primary,
// optionally a synchronous standby. Ports: cluster.sh's free ones unless
// ATTUNE_CLUSTER_PG_PORTS="PRIMARY,STANDBY" names them.
export function pgCluster(tag) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `attune-pg-${tag}-`));
  const ports = (process.env.ATTUNE_CLUSTER_PG_PORTS || '').split(',').filter(Boolean);
  const sh = (...args) => execFileSync('sh', [CLUSTER_SH, ...args], { encoding: 'utf8', timeout: 120000 }).trim();
  return {
    dir,
    start: () => sh('start', dir, ...(ports[0] ? [ports[0]] : [])),
    standby: () => sh('standby', dir, ...(ports[1] ? [ports[1]] : [])),
    crash: () => sh('crash', dir),
    promote: () => sh('promote', dir),
    uri: () => sh('uri', dir),
    stop: () => sh('stop', dir),
  };
}

// One KEK and one invitation key for every node (and --create-room).
export function sharedKeys() {
  const dir = tempDir('cluster-keys');
  const kek = path.join(dir, 'kek');
  fs.writeFileSync(kek, execFileSync('openssl', ['rand', '-hex', '32']), { mode: 0o600 });
  return { dir, args: ['--kek-file', kek, '--key-file', path.join(dir, 'secret.key')] };
}

// Adds a therapist account to the shared database with `attune therapist
// add --store` (its --data directory is a throwaway one, removed here).
export function addTherapist(uri, keys, name, password) {
  const admin = tempDir('cluster-account');
  try {
    fs.chmodSync(admin, 0o700);
    const add = spawnSync(cliBin(), ['therapist', 'add', name, '--data', admin, '--store', uri, ...keys.args.slice(0, 2), ...(AS_ROOT ? ['--allow-root'] : [])], {
      input: `${password}\n`,
      encoding: 'utf8',
    });
    assert.equal(add.status, 0, add.stderr);
  } finally {
    fs.rmSync(admin, { recursive: true, force: true });
  }
}

// Creates `count` rooms in the shared database; each {room, tokens}.
export function createRooms(uri, keys, count, exercise = 'enactment') {
  const data = tempDir('cluster-admin');
  fs.chmodSync(data, 0o700);
  const rooms = [];
  try {
    for (let i = 0; i < count; i++) {
      const out = execFileSync(
        serverBin(),
        ['--create-room', exercise, '--data', data, '--store', uri, ...keys.args, ...(AS_ROOT ? ['--allow-root'] : [])],
        { encoding: 'utf8', timeout: 30000 },
      );
      const r = { room: null, tokens: {} };
      for (const line of out.trim().split('\n')) {
        const [kind, a, b] = line.split(' ');
        if (kind === 'room') r.room = a;
        if (kind === 'invite') r.tokens[a] = tokenOf(b);
      }
      assert.ok(r.room && r.tokens.partner_a && r.tokens.partner_b && r.tokens.therapist, out);
      rooms.push(r);
    }
  } finally {
    fs.rmSync(data, { recursive: true, force: true });
  }
  return rooms;
}

// Starts `n` nodes n1..nN on the database, each on its own free port.
// Rate limits are off: the members load the rooms far past a session's pace.
export async function startNodes(n, uri, keys, { leaseMs = 3000, extra = [] } = {}) {
  const nodes = [];
  try {
    for (let i = 1; i <= n; i++) {
      const server = await startServer({
        args: [
          '--store', uri, ...keys.args,
          '--node-name', `n${i}`, '--node-lease-ms', String(leaseMs),
          '--link-events-per-minute', '0', '--room-events-per-minute', '0',
          ...extra,
        ],
      });
      nodes.push({ name: `n${i}`, server });
    }
  } catch (e) {
    for (const node of nodes) await node.server.stop('SIGKILL');
    throw e;
  }
  return nodes;
}

// deploy/nginx/attune-cluster.conf with its listen port and its three
// upstream ports (8081-8083, in both upstreams) replaced; nothing else.
export function clusterConf(listenPort, nodePorts) {
  const src = fs.readFileSync(path.join(ROOT, 'deploy', 'nginx', 'attune-cluster.conf'), 'utf8');
  assert.equal(nodePorts.length, 3, 'attune-cluster.conf names three nodes');
  let conf = src.replace('listen 127.0.0.1:8080;', `listen 127.0.0.1:${listenPort};`);
  nodePorts.forEach((p, i) => {
    conf = conf.replaceAll(`server 127.0.0.1:${8081 + i} `, `server 127.0.0.1:${p} `);
  });
  assert.ok(!/:808\d\b/.test(conf), 'every port of attune-cluster.conf was replaced');
  // nginx started by root runs its workers as nobody: they need nothing but
  // the prefix's temp dirs, which the master creates.
  return AS_ROOT ? `user nobody nogroup;\n${conf}` : conf;
}

// nginx (Debian's nginx-light) in front of three nodes, in a prefix of its
// own, on `port` (default: a free one); resolves once it accepts
// connections. Its probe is a request to a node: start the nodes first
// (max_fails=1 marks a node that is not up yet as down for 5 s).
export async function startNginx(nodePorts, { port: listenPort } = {}) {
  const prefix = tempDir('cluster-nginx');
  fs.chmodSync(prefix, 0o755); // the workers (nobody) create temp files under it
  fs.mkdirSync(path.join(prefix, 'logs'));
  const port = listenPort ?? (await freePort());
  const confFile = path.join(prefix, 'nginx.conf');
  fs.writeFileSync(confFile, clusterConf(port, nodePorts));
  const args = ['-e', path.join(prefix, 'logs', 'error.log'), '-p', prefix, '-c', confFile, '-g', 'daemon off;'];
  execFileSync('nginx', ['-t', '-q', ...args.filter((a) => a !== '-g' && a !== 'daemon off;')], { stdio: 'pipe' });
  const proc = spawn('nginx', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let errText = '';
  proc.stderr.on('data', (d) => (errText += d));
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const up = async () => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return true;
    } catch {
      return proc.exitCode !== null;
    }
  };
  await waitUntil(up, { timeoutMs: 10000, what: 'nginx to listen' });
  if (proc.exitCode !== null) throw new Error(`nginx exited: ${errText}`);
  return {
    port,
    base: `ws://127.0.0.1:${port}`,
    prefix,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const done = await Promise.race([exited, sleep(5000).then(() => null)]);
      if (!done) {
        proc.kill('SIGKILL');
        await exited;
      }
      fs.rmSync(prefix, { recursive: true, force: true });
    },
  };
}

// A room's member (partner_a, partner_b or therapist) connected through
// nginx with /ws?room=ID, as a client of PROTOCOL.md: it says hello with
// resume_from (the last seq it was sent), reconnects after any drop
// (4503 room_moved included) with a short backoff, and, while loading,
// sends one command at a time (a partner's private_message to the
// therapist, the therapist's note), each with a text naming it. It records:
// every event's seq (each must be the previous + 1, across reconnects),
// every acked command's seq and text, the commands whose connection
// dropped before their reply (outcome unknown), and every error reply.
// Each command carries a command_id (PROTOCOL.md 4), and after each
// reconnect the member resends, with the same id, every command whose
// reply it never got, as the clients do: a command the store had committed
// gets its original seq back ("duplicate": true), one it had not is
// recorded now; either way once. With commandIds: false it sends none and
// never resends.
export class Member {
  constructor({ base, room, role, token, backoffMs = 50, commandIds = true, helloTimeoutMs = 5000 }) {
    Object.assign(this, { base, room, role, token, backoffMs, commandIds, helloTimeoutMs });
    this.lastSeq = 0;
    this.events = []; // {seq, event}, in the order sent
    this.violations = []; // seqs out of order, doubled or skipped
    this.acked = []; // {seq, text, at, duplicate, resent}
    this.unknown = []; // {text, cid}: commands whose reply never came (not yet resent)
    this.resent = 0;
    this.messages = 0;
    this.errors = []; // error replies
    this.closes = []; // {code, reason, bye, at}
    this.resumes = []; // times a hello (after the first) completed
    this.ws = null;
    this.ready = false;
    this.pending = new Map(); // command id -> resolve, until its reply
    this.sent = 0;
    this.loading = false;
    this.stopped = false;
  }

  get label() {
    return `${this.room}/${this.role}`;
  }

  #onMessage(ws, m) {
    if (m.type === 'event') {
      if (m.seq !== this.lastSeq + 1) this.violations.push({ after: this.lastSeq, got: m.seq });
      this.events.push({ seq: m.seq, event: m.event });
      if (m.seq > this.lastSeq) this.lastSeq = m.seq;
    } else if (m.type === 'bye') {
      ws.byeReason = m.reason;
    } else if ((m.type === 'ack' || m.type === 'error') && this.pending.has(m.id)) {
      const resolve = this.pending.get(m.id);
      this.pending.delete(m.id);
      resolve(m);
    } else if (m.type === 'state' && ws.helloAcked && !ws.caughtUp) {
      ws.caughtUp = true;
      ws.onCaughtUp();
    } else if ((m.type === 'ack' || m.type === 'error') && m.id === 'hello') {
      ws.onHello(m);
    }
  }

  // One connection and hello; resolves true once caught up, false when the
  // node refused it (closed before the hello's ack) or nginx had no node.
  #attempt() {
    return new Promise((resolve) => {
      const ws = new WebSocket(`${this.base}/ws?room=${encodeURIComponent(this.room)}`, 'attune.v1', {
        handshakeTimeout: 5000,
      });
      let settled = false;
      // A node that neither answers a hello nor closes within this long is
      // broken (loopback, even on a loaded machine): recorded, and retried.
      const helloTimer = setTimeout(() => {
        if (settled) return;
        this.errors.push({ hello: true, code: 'no_reply', at: Date.now() });
        ws.terminate();
        settle(false);
      }, this.helloTimeoutMs);
      const settle = (ok) => {
        if (!settled) {
          settled = true;
          clearTimeout(helloTimer);
          resolve(ok);
        }
      };
      ws.onHello = (m) => {
        if (m.type !== 'ack') {
          this.errors.push({ hello: true, code: m.code, at: Date.now() });
          ws.terminate();
          return settle(false);
        }
        ws.helloAcked = true;
      };
      ws.onCaughtUp = () => {
        this.ws = ws;
        this.ready = true;
        settle(true);
      };
      ws.on('open', () => {
        const hello = { type: 'hello', id: 'hello', token: this.token };
        if (this.lastSeq > 0) hello.resume_from = this.lastSeq;
        ws.send(JSON.stringify(hello));
      });
      ws.on('message', (data) => {
        let m;
        try {
          m = JSON.parse(data.toString());
        } catch {
          this.errors.push({ unparseable: data.toString().slice(0, 80) });
          return;
        }
        this.#onMessage(ws, m);
      });
      ws.on('error', () => {});
      ws.on('unexpected-response', (req) => {
        req.destroy();
        settle(false);
      });
      ws.on('close', (code, reason) => {
        this.closes.push({ code, reason: reason.toString(), bye: ws.byeReason, at: Date.now(), live: ws.caughtUp === true });
        if (this.ws === ws) {
          this.ws = null;
          this.ready = false;
          const lost = [...this.pending.values()];
          this.pending.clear();
          for (const resolve of lost) resolve(null);
          if (!this.stopped) this.#reconnect();
        }
        settle(false);
      });
    });
  }

  // Connects until caught up (deadline: timeoutMs).
  async join(timeoutMs = 20000) {
    const deadline = Date.now() + timeoutMs;
    const first = this.closes.length === 0 && this.events.length === 0;
    while (!this.stopped) {
      if (await this.#attempt()) {
        if (!first) this.resumes.push(Date.now());
        if (this.commandIds) for (const lost of this.unknown.splice(0)) this.command(lost);
        return;
      }
      if (Date.now() > deadline) throw new Error(`${this.label}: no node took the hello within ${timeoutMs} ms`);
      await sleep(this.backoffMs);
    }
  }

  #reconnect() {
    if (this.rejoining) return;
    this.rejoining = this.join(30000)
      .catch((e) => this.errors.push({ rejoin: e.message }))
      .finally(() => {
        this.rejoining = null;
      });
  }

  // Sends one command (or resends `again`, {text, cid}); resolves with its
  // reply, or null when the connection dropped before it came.
  command(again) {
    const text = again ? again.text : `${this.room} ${this.role} #${++this.sent}`;
    const cid = again ? again.cid : this.commandIds ? crypto.randomBytes(16).toString('base64url') : null;
    if (again) this.resent++;
    const id = `c${++this.messages}`;
    const msg =
      this.role === 'therapist' ? { type: 'note', id, text } : { type: 'private_message', id, to: 'therapist', text };
    if (cid) msg.command_id = cid;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(JSON.stringify(msg));
    }).then((reply) => {
      if (reply === null) this.unknown.push({ text, cid });
      else if (reply.type === 'ack')
        this.acked.push({ seq: reply.seq, text, at: Date.now(), duplicate: reply.duplicate === true, resent: !!again });
      else this.errors.push({ text, code: reply.code, message: reply.message });
      return reply;
    });
  }

  // Waits until every command sent has its reply (resends included).
  async settled(timeoutMs = 20000) {
    await waitUntil(() => this.ready && this.pending.size === 0 && (!this.commandIds || this.unknown.length === 0), {
      timeoutMs,
      what: `${this.label}'s commands to be answered`,
    });
  }

  // Sends n commands at once, without waiting for their replies (each is
  // recorded as command() does, when its reply comes or its connection
  // drops).
  burst(n) {
    for (let i = 0; i < n; i++) this.command();
  }

  // Loads the room until stopLoad(): a command, its reply, thinkMs, again;
  // while disconnected it waits for the reconnect.
  startLoad(thinkMs = 20) {
    this.loading = true;
    this.loadDone = (async () => {
      while (this.loading && !this.stopped) {
        if (!this.ready) {
          await sleep(10);
          continue;
        }
        await this.command();
        await sleep(thinkMs);
      }
    })();
  }

  async stopLoad() {
    this.loading = false;
    await this.loadDone;
  }

  // Waits for the member to be connected and caught up again.
  async connected(timeoutMs = 20000) {
    await waitUntil(() => this.ready || this.stopped, { timeoutMs, what: `${this.label} to reconnect` });
  }

  async close() {
    this.stopped = true;
    this.loading = false;
    if (this.ws) {
      const ws = this.ws;
      const closed = new Promise((r) => ws.once('close', r));
      ws.close();
      await Promise.race([closed, sleep(2000)]);
      ws.terminate();
    }
    await this.rejoining;
  }
}

// Every event this role may see, replayed by a fresh connection (hello
// without resume_from) through nginx: [{seq, event}].
export async function replayOf(base, room, token, timeoutMs = 20000) {
  const m = new Member({ base, room, role: 'replay', token });
  await m.join(timeoutMs);
  const events = m.events.slice();
  const violations = m.violations.slice();
  await m.close();
  assert.deepEqual(violations, [], `${room}: a fresh replay is gapless`);
  return events;
}

// The checks of a member's record against the store's replay of its role:
// every event it was sent numbered 1, 2, 3... across its reconnects, the
// same events as the store holds, every acked command's text once in the
// replay at the acked seq, every command of unknown outcome at most once.
export function checkMember(member, replay) {
  const who = member.label;
  assert.deepEqual(member.violations, [], `${who}: seqs across reconnects, each the previous + 1`);
  assert.ok(replay.length >= member.events.length, `${who}: the store holds all ${member.events.length} events it was sent`);
  assert.deepEqual(member.events, replay.slice(0, member.events.length), `${who}: what it was sent is what the store replays`);
  const count = new Map();
  for (const { event } of replay) {
    if (event.type === 'note' || event.type === 'private_message') count.set(event.text, (count.get(event.text) || 0) + 1);
  }
  for (const { seq, text } of member.acked) {
    assert.equal(count.get(text), 1, `${who}: acked "${text}" is stored once`);
    const at = replay.find((r) => r.seq === seq);
    assert.ok(at && at.event.text === text, `${who}: acked "${text}" is the event at its seq ${seq}`);
  }
  for (const { text } of member.unknown) assert.ok((count.get(text) || 0) <= 1, `${who}: "${text}" (reply lost) is stored at most once`);
  if (member.commandIds) {
    // Resent with its command_id until answered: every command sent is
    // acked (or refused) once, and none is left unanswered.
    assert.deepEqual(member.unknown, [], `${who}: every command was answered`);
    const texts = member.acked.map((a) => a.text);
    assert.equal(new Set(texts).size, texts.length, `${who}: no command acked twice`);
    assert.equal(texts.length + member.errors.filter((e) => e.text).length, member.sent, `${who}: every command answered once`);
  }
  // An error reply means "not recorded, may be retried" (PROTOCOL.md 13):
  // such a command stored anyway would be doubled by the retry.
  for (const e of member.errors.filter((x) => x.text))
    assert.equal(count.get(e.text) || 0, 0, `${who}: "${e.text}" answered ${e.code} is not stored`);
}

// In SQL: every room's seqs are 1..last_seq, once each.
export function checkGapless(uri) {
  const bad = psql(
    uri,
    'SELECT r.id FROM rooms r LEFT JOIN events e ON e.room = r.id GROUP BY r.id, r.last_seq ' +
      'HAVING count(e.seq) <> r.last_seq OR coalesce(max(e.seq), 0) <> r.last_seq',
  );
  assert.equal(bad, '', `rooms whose stored seqs are not 1..last_seq: ${bad}`);
}

// The rooms each node holds: {node name: [room ids]} from rooms.owner
// (NAME:boot-id).
export function owners(uri) {
  const out = {};
  for (const line of psql(uri, 'SELECT id, owner FROM rooms ORDER BY id').split('\n').filter(Boolean)) {
    const [id, owner] = line.split('|');
    const name = owner.split(':')[0];
    (out[name] ||= []).push(id);
  }
  return out;
}

// Three nodes behind nginx on one database, `roomCount` rooms, three
// members in each (connected and caught up). stop() ends it all.
export async function startCampaign({ uri, roomCount, leaseMs = 3000, nodes: nodeCount = 3 }) {
  const cleanups = [];
  const campaign = { members: [], nodes: [], rooms: [] };
  campaign.stop = async () => {
    for (const m of campaign.members) await m.close().catch(() => {});
    for (const fn of cleanups.reverse()) await fn().catch(() => {});
  };
  try {
    const keys = sharedKeys();
    cleanups.push(async () => fs.rmSync(keys.dir, { recursive: true, force: true }));
    campaign.rooms = createRooms(uri, keys, roomCount);
    campaign.nodes = await startNodes(nodeCount, uri, keys, { leaseMs });
    for (const node of campaign.nodes)
      cleanups.push(async () => {
        await node.server.stop('SIGKILL');
        fs.rmSync(node.server.dataDir, { recursive: true, force: true });
      });
    const ports = campaign.nodes.map((n) => n.server.port);
    while (ports.length < 3) ports.push(ports[ports.length - 1]);
    campaign.nginx = await startNginx(ports);
    cleanups.push(() => campaign.nginx.stop());
    for (const r of campaign.rooms)
      for (const role of ['partner_a', 'partner_b', 'therapist'])
        campaign.members.push(new Member({ base: campaign.nginx.base, room: r.room, role, token: r.tokens[role] }));
    for (const m of campaign.members) await m.join();
  } catch (e) {
    await campaign.stop();
    throw e;
  }
  campaign.node = (name) => campaign.nodes.find((n) => n.name === name);
  return campaign;
}

// After the load: every member's record against a fresh replay of its role
// (the members leave first: a fresh connection would take their seats).
export async function checkAll(campaign, uri) {
  await checkMembers(campaign.members, campaign.rooms, campaign.nginx.base, uri);
}

// The same for any members: `rooms` gives the tokens, `base` the node (or
// nginx) the replays ask.
export async function checkMembers(members, rooms, base, uri) {
  for (const m of members) await m.settled();
  for (const m of members) await m.close();
  checkGapless(uri);
  for (const m of members) {
    const r = rooms.find((x) => x.room === m.room);
    checkMember(m, await replayOf(base, m.room, r.tokens[m.role]));
  }
}

export function summary(members) {
  const acked = members.reduce((n, m) => n + m.acked.length, 0);
  const unknown = members.reduce((n, m) => n + m.unknown.length, 0);
  const resent = members.reduce((n, m) => n + m.resent, 0);
  const duplicates = members.reduce((n, m) => n + m.acked.filter((a) => a.duplicate).length, 0);
  const errors = members.flatMap((m) => m.errors.map((e) => `${m.label}: ${JSON.stringify(e)}`));
  return { acked, unknown, resent, duplicates, errors };
}
