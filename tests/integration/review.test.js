// review.test.js - the session log in pages (GET /api/rooms/{id}/log,
// protocol/HTTP.md), built by the server's review worker off the service
// thread: pages cover every event once and in order; each page's first event
// carries the whole state and later ones a patch, and the states they make
// are the ones the old endpoint gave (a page of one event is exactly that
// state); the last page's state is the live room's and its hash is
// attune-server --verify's; states=none sends the events and the final state
// only; page limits and bad queries are refused clearly; someone else's room
// and an unknown room are 404; a long session (made with `bench_review
// make`, the benchmark's generator, through the store API) loads while
// another room's pings stay fast.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  startServer, Client, tempDir, tokenOf, verify, inputFor, actorOf, canonical, sleep, serverBin,
  startSession, stateAfter, cliBin, cliArgs, sqliteOnly,
} from './harness.js';
import { request, loginCookie } from './http.js';

const buildDir = () => (process.env.ATTUNE_BUILD_DIR ? path.resolve(process.env.ATTUNE_BUILD_DIR) : path.resolve(path.dirname(serverBin()), '..'));
const benchReviewBin = () => path.join(buildDir(), 'tests', 'bench', 'bench_review');

function run(bin, args, input) {
  const r = spawnSync(bin, args, { input, encoding: 'utf8', timeout: 120000 });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `${path.basename(bin)} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const PW = { alice: 'alice-long-password', bob: 'bob-long-password-2' };

const get = (srv, urlPath, cookie, agent) => request(srv, 'GET', urlPath, { cookie, agent });

// Every page of a room's log in order, as the web replay loads it: the
// events with their states rebuilt from each page's whole state and patches.
async function loadAll(srv, cookie, roomId, { limit = 1000, states = 'each', agent } = {}) {
  const pages = [];
  const events = [];
  let after = 0;
  let upto = null;
  let prev = null;
  for (;;) {
    const q = new URLSearchParams({ after: String(after), limit: String(limit), states });
    if (upto !== null) q.set('upto', String(upto));
    const res = await get(srv, `/api/rooms/${roomId}/log?${q}`, cookie, agent);
    if (res.status === 503) {
      assert.equal(res.headers['retry-after'], '1');
      await sleep(50);
      continue;
    }
    assert.equal(res.status, 200, res.text);
    const p = res.json;
    pages.push(p);
    assert.equal(p.after, after);
    assert.ok(p.events.length <= limit, `page of ${p.events.length} > limit ${limit}`);
    if (upto === null) upto = p.upto;
    assert.equal(p.upto, upto, 'later pages keep to the first page\'s end');
    p.events.forEach((e, i) => {
      if (states === 'none') {
        assert.ok(!('state' in e) && !('patch' in e), 'states=none: no states');
        prev = null;
      } else if (i === 0) {
        assert.ok(e.state && !e.patch, 'a page starts with a whole state');
        prev = e.state;
      } else {
        assert.ok(e.patch && !e.state, 'later events carry a patch');
        prev = { ...prev, ...e.patch };
      }
      events.push({ seq: e.seq, event: e.event, state: prev });
    });
    if (!p.more) break;
    assert.ok(p.events.length > 0, 'a page with more after it is not empty');
    assert.equal(p.next_after, p.events.at(-1).seq);
    after = p.next_after;
  }
  return { pages, events, last: pages.at(-1), first: pages[0] };
}

describe('the session log in pages', () => {
  let srv, dir, alice, bob, room, live;
  const members = [];

  before(async () => {
    dir = tempDir('review');
    for (const [name, pw] of Object.entries(PW)) run(cliBin(), cliArgs(['therapist', 'add', name, '--data', dir]), `${pw}\n`);
    const out = spawnSync(cliBin(), cliArgs(['room', 'create', '--data', dir, '--owner', 'alice']), { encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    const invites = Object.fromEntries(out.stdout.trim().split('\n').map((l) => l.split(' ')).filter((p) => p[0] === 'invite').map((p) => [p[1], p[2]]));
    srv = await startServer({ dataDir: dir });
    alice = await loginCookie(srv, 'alice', PW.alice);
    bob = await loginCookie(srv, 'bob', PW.bob);

    // A little live session: consent, check-in, turns, a note, a mark.
    const clients = {};
    for (const role of ['partner_a', 'partner_b', 'therapist']) {
      const c = await Client.connect(srv.wsUrl);
      const h = await c.hello(tokenOf(invites[role]));
      assert.equal(h.ack.type, 'ack', JSON.stringify(h.ack));
      clients[role] = c;
      room = h.ack.room;
    }
    const { partner_a: a, partner_b: b, therapist } = clients;
    members.push(a, b, therapist);
    const vocab = (await therapist.waitFor((m) => m.type === 'ack' && m.vocab)).vocab;
    let state = await startSession(therapist, a, b);
    for (let i = 0; i < 4; i++) {
      const who = clients[actorOf(state)];
      const from = therapist.msgs.length;
      const r = await who.request({ type: 'turn', step: state.step.id, input: inputFor(state.step, vocab) });
      assert.equal(r.type, 'ack', JSON.stringify(r));
      state = await stateAfter(therapist, from);
    }
    const note = await therapist.request({ type: 'note', text: 'they slowed down together' });
    assert.equal(note.type, 'ack');
    const mark = await therapist.request({ type: 'rupture_mark', kind: 'withdrawal', marker: 'minimal_response', who: 'partner_b', with: 'partner_a' });
    assert.equal(mark.type, 'ack', JSON.stringify(mark));
    live = await therapist.waitState((s) => s.seq >= mark.seq);
    await sleep(50); // committed (the log is served up to the durable seq)
  });

  after(async () => {
    if (srv) await srv.stop();
  });

  test('pages cover every event once, in order, with the states the old endpoint gave', async () => {
    const whole = await loadAll(srv, alice, room, { limit: 1000 });
    const n = whole.events.length;
    assert.ok(n >= 15, `a session of ${n} events`);
    assert.deepEqual(whole.events.map((e) => e.seq), Array.from({ length: n }, (_, i) => i + 1));
    assert.equal(whole.pages.length, 1);
    assert.equal(whole.first.room.id, room);
    assert.equal(whole.first.exercise.id, 'enactment');
    assert.ok(Array.isArray(whole.first.vocab.needs));
    assert.equal(typeof whole.first.consent.text, 'string');
    assert.ok(whole.first.safety.questions.length > 0);
    assert.equal(whole.events[0].event.type, 'room_created');
    assert.ok(whole.events.some((e) => e.event.type === 'note'), 'the therapist\'s view: notes included');
    for (const e of whole.events) assert.equal(e.state.seq, e.seq);
    assert.deepEqual(canonical(whole.events.at(-1).state), canonical(live), 'last folded state = live state');
    assert.deepEqual(whole.last.final_state, whole.events.at(-1).state);

    // A page of one event carries its whole state: what the old endpoint
    // put after every event. Pages of 3 rebuild the same states from patches.
    const single = await loadAll(srv, alice, room, { limit: 1 });
    assert.equal(single.pages.length, n);
    const threes = await loadAll(srv, alice, room, { limit: 3 });
    assert.equal(threes.pages.length, Math.ceil(n / 3));
    assert.ok(whole.pages[0].events.slice(1).every((e) => Object.keys(e.patch).length < Object.keys(e.state || live).length), 'patches are smaller than states');
    for (let i = 0; i < n; i++) {
      assert.deepEqual(whole.events[i].state, single.events[i].state, `state after seq ${i + 1}`);
      assert.deepEqual(threes.events[i].state, single.events[i].state, `state after seq ${i + 1} (pages of 3)`);
      assert.deepEqual(whole.events[i].event, single.events[i].event);
    }
    // Only the last page says the hash; every page of one states it or not consistently.
    assert.ok(single.pages.slice(0, -1).every((p) => p.more && !('state_hash' in p)));
    assert.match(whole.last.state_hash, /^[0-9a-f]{64}$/);
    assert.equal(single.last.state_hash, whole.last.state_hash);

    // states=none: the events and, on the last page, the final state and hash.
    const bare = await loadAll(srv, alice, room, { limit: 4, states: 'none' });
    assert.deepEqual(bare.events.map((e) => e.event), whole.events.map((e) => e.event));
    assert.deepEqual(bare.last.final_state, whole.last.final_state);
    assert.equal(bare.last.state_hash, whole.last.state_hash);

    // A page after the end: empty, the last one, with the hash.
    const end = await get(srv, `/api/rooms/${room}/log?after=${n}`, alice);
    assert.equal(end.status, 200);
    assert.deepEqual(end.json.events, []);
    assert.equal(end.json.more, false);
    assert.equal(end.json.state_hash, whole.last.state_hash);
    assert.ok(!('room' in end.json), 'only the first page (after=0) describes the session');
    // upto beyond what is stored is what is stored.
    const far = await get(srv, `/api/rooms/${room}/log?upto=999999`, alice);
    assert.equal(far.json.upto, n);
  });

  test('bad queries are refused clearly; other therapists and unknown rooms get 404', async () => {
    for (const q of ['limit=0', 'limit=1001', 'limit=-1', 'limit=abc', 'after=-1', 'after=1x', 'states=all', 'upto=-2', 'after=99999']) {
      const r = await get(srv, `/api/rooms/${room}/log?${q}`, alice);
      assert.equal(r.status, 400, q);
      assert.equal(r.json.error, 'bad_request', q);
      assert.match(r.json.message, /after|limit|states/, q);
    }
    const ok = await get(srv, `/api/rooms/${room}/log?limit=1000`, alice);
    assert.equal(ok.status, 200);
    for (const [who, id] of [[bob, room], [alice, 'r-nosuchroom']]) {
      const r = await get(srv, `/api/rooms/${id}/log`, who);
      assert.equal(r.status, 404, id);
      assert.equal(r.json.error, 'not_found');
    }
    assert.equal((await get(srv, `/api/rooms/${room}/log`, null)).status, 401);
  });

  test('the last state\'s hash is attune-server --verify\'s, before and after a restart', async () => {
    // --verify folds the data directory while the server runs; the log may
    // grow meanwhile (presence, the detector), so both are read until they
    // describe the same seq.
    async function agreed() {
      for (let i = 0; ; i++) {
        const whole = await loadAll(srv, alice, room);
        const v = verify(dir)[room];
        if (v.seq === whole.events.at(-1).seq) return { whole, v };
        assert.ok(i < 20, `the log kept growing (${whole.events.at(-1).seq} vs ${v.seq})`);
        await sleep(250);
      }
    }
    const before = await agreed();
    assert.equal(before.whole.last.state_hash, before.v.hash);
    assert.deepEqual(before.whole.last.final_state, before.v.state);
    for (const c of members) await c.close();
    await srv.stop();
    srv = await startServer({ dataDir: dir });
    alice = await loginCookie(srv, 'alice', PW.alice);
    const again = await agreed();
    assert.equal(again.whole.last.state_hash, again.v.hash, 'the same after a restart (nothing cached)');
    assert.ok(again.whole.events.length >= before.whole.events.length);
  });
});

describe('a long session loads while other rooms stay fast', {
  timeout: 180000,
  skip: sqliteOnly('tests/bench/bench_review make writes its 3,000-event room straight into a SQLite data directory (it has no --store)'),
}, () => {
  let EVENTS = 3000;
  let srv, dir, alice, longRoom;
  const pingTokens = [];

  before(async () => {
    assert.ok(fs.existsSync(benchReviewBin()), `build tests/bench/bench_review first (${benchReviewBin()})`);
    dir = tempDir('review-long');
    run(cliBin(), cliArgs(['therapist', 'add', 'alice', '--data', dir]), `${PW.alice}\n`);
    const made = run(benchReviewBin(), ['make', '--data', dir, '--events', String(EVENTS), '--owner', 'alice']);
    const m = /^room (\S+) (\d+)$/m.exec(made);
    longRoom = m[1];
    EVENTS = Number(m[2]); // a few more than asked: everyone leaves at the end
    assert.ok(EVENTS >= 3000 && EVENTS < 3010, made);
    for (let i = 0; i < 3; i++) {
      const other = spawnSync(cliBin(), cliArgs(['room', 'create', '--data', dir]), { encoding: 'utf8' });
      assert.equal(other.status, 0, other.stderr);
      pingTokens.push(tokenOf(other.stdout.split('\n').find((l) => l.startsWith('invite therapist ')).split(' ')[2]));
    }
    srv = await startServer({ dataDir: dir });
    alice = await loginCookie(srv, 'alice', PW.alice);
  });

  after(async () => {
    if (srv) await srv.stop();
  });

  // Other live rooms' therapists ping from a worker thread, so this thread's
  // own work on the pages (parsing, rebuilding states) is not in the figure;
  // each 15 times a second (the server allows a connection 20 messages a second).
  function startPingers() {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      (async () => {
        const { Client } = await import(workerData.harness);
        const clients = [];
        for (const token of workerData.tokens) {
          const c = await Client.connect(workerData.wsUrl);
          const h = await c.hello(token);
          if (h.ack.type !== 'ack') throw new Error(JSON.stringify(h.ack));
          clients.push(c);
        }
        let stop = false;
        parentPort.on('message', () => { stop = true; });
        parentPort.postMessage({ ready: true });
        const rtts = [];
        let i = 0;
        await Promise.all(clients.map(async (c) => {
          while (!stop) {
            const t0 = process.hrtime.bigint();
            const r = await c.request({ type: 'ping', id: 'p' + i++ });
            if (r.type !== 'ack') throw new Error(JSON.stringify(r));
            rtts.push(Number(process.hrtime.bigint() - t0) / 1e6);
            await new Promise((res) => setTimeout(res, 66));
          }
        }));
        for (const c of clients) await c.close();
        parentPort.postMessage({ rtts });
      })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));`;
    const worker = new Worker(code, { eval: true, workerData: { harness: new URL('./harness.js', import.meta.url).href, wsUrl: srv.wsUrl, tokens: pingTokens } });
    const ready = new Promise((resolve, reject) => {
      worker.once('message', (m) => (m.ready ? resolve() : reject(new Error(m.error))));
      worker.once('error', reject);
    });
    const done = new Promise((resolve, reject) => {
      worker.on('message', (m) => {
        if (m.rtts) resolve(m.rtts);
        else if (m.error) reject(new Error(m.error));
      });
      worker.on('error', reject);
    });
    return { ready, stop: async () => { worker.postMessage('stop'); const r = await done; await worker.terminate(); return r; } };
  }

  test('every event once, in order, and the hash of --verify; pings in another room stay fast', async () => {
    const agent = new http.Agent({ keepAlive: true });
    const pingers = startPingers();
    await pingers.ready;
    const t0 = Date.now();
    // Three reviews at once, as three therapists' browsers would, twice.
    let loads;
    for (let round = 0; round < 2; round++) loads = await Promise.all([0, 1, 2].map(() => loadAll(srv, alice, longRoom, { agent })));
    const ms = Date.now() - t0;
    const rtts = await pingers.stop();
    agent.destroy();
    for (const l of loads) {
      assert.equal(l.events.length, EVENTS);
      assert.deepEqual(l.events.map((e) => e.seq), Array.from({ length: EVENTS }, (_, i) => i + 1));
      assert.equal(l.pages.length, Math.ceil(EVENTS / 1000));
      assert.deepEqual(l.events.at(-1).state, l.last.final_state);
    }
    assert.ok(loads[0].events.some((e) => e.event.type === 'turn') && loads[0].events.some((e) => e.event.type === 'note') && loads[0].events.some((e) => e.event.type === 'left'));
    rtts.sort((x, y) => x - y);
    const p99 = rtts[Math.min(rtts.length - 1, Math.floor(rtts.length * 0.99))];
    console.log(`# three ${EVENTS}-event reviews at once, twice, in ${ms} ms; other rooms' pings: ${rtts.length}, p99 ${p99.toFixed(2)} ms`);
    assert.ok(rtts.length >= 5, 'pings ran during the load');
    assert.ok(p99 < 200, `another room's ping p99 ${p99} ms while reviews load`);

    // The queue is bounded: a burst far past it is answered 200 or 503 with
    // Retry-After, never left waiting, never a failure.
    const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => get(srv, `/api/rooms/${longRoom}/log?after=${i * 50}&limit=1000`, alice)));
    for (const r of burst) {
      assert.ok(r.status === 200 || (r.status === 503 && r.headers['retry-after'] === '1' && r.json.error === 'busy'), `${r.status} ${r.text.slice(0, 200)}`);
    }
    assert.ok(burst.some((r) => r.status === 200));

    await srv.stop();
    srv = null;
    assert.equal(verify(dir)[longRoom].hash, loads[0].last.state_hash);
  });
});
