// Hostile input: each case gets the protocol's answer (an error with its
// code, or the specified close), and the server stays up for the next
// client. Also: bad/expired/foreign tokens, foreign Origin, no hello, rate
// floods, slow readers, and SIGTERM.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { startServer, createRoom, Client, tempDir, sleep, httpGet, serverBin, cliArgs, ON_PG } from './harness.js';
import { request } from './http.js';

let srv, dir, room;
before(async () => {
  dir = tempDir('hostile');
  srv = await startServer({
    dataDir: dir,
    args: ['--origin', 'https://clinic.example', '--hello-timeout', '1', '--rate', '20', '--burst', '40'],
  });
  room = createRoom(dir);
});
after(async () => {
  await srv?.stop('SIGKILL');
});

async function stillUp() {
  assert.ok(srv.alive(), 'server process is alive');
  const h = await httpGet(`${srv.httpUrl}/healthz`);
  assert.equal(h.status, 200);
  const c = await Client.connect(srv.wsUrl);
  const { ack } = await c.hello(room.tokens.observer);
  assert.equal(ack.type, 'ack');
  await c.close();
}

async function errorFor(payload, { binary = false, auth = false } = {}) {
  const c = await Client.connect(srv.wsUrl);
  if (auth) await c.hello(room.tokens.observer);
  const at = c.msgs.length;
  c.ws.send(payload, { binary });
  const m = await c.waitFor((x) => x.type === 'error', { from: at });
  // The connection stays open: a ping still gets an answer.
  const pong = await c.request({ type: 'ping' });
  await c.close();
  return { m, pong };
}

test('malformed JSON, deep nesting, huge numbers, bad UTF-8, wrong types', async () => {
  const cases = [
    ['{"type":"hello","tok', 'bad_json'],
    ['[' .repeat(10000) + ']'.repeat(10000), 'bad_json'],
    ['{"a":'.repeat(10000) + '1' + '}'.repeat(10000), 'bad_json'],
    ['{"type":"hello","token":"x","resume_from":123456789012345678901234567890}', 'bad_json'],
    ['{"type":"hello","token":"x","resume_from":1e999}', null],
    [Buffer.from([0x7b, 0x22, 0x74, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), 'bad_json'],
    ['{"type":"hello","token":"\\u0000"}', 'bad_json'],
    ['{"type":"hello","type":"ping"}', 'bad_json'],
    ['[1,2,3]', 'bad_message'],
    ['"hello"', 'bad_message'],
    ['{"type":5}', 'bad_message'],
    ['{"type":"hello","token":5}', 'bad_message'],
    ['{"type":"hello","token":"x","extra":1}', 'bad_message'],
    // exactly one of token and ticket
    ['{"type":"hello"}', 'bad_message'],
    ['{"type":"hello","token":"x","ticket":"y"}', 'bad_message'],
    ['{"type":"hello","ticket":""}', 'bad_message'],
    ['{"type":"hello","ticket":5}', 'bad_message'],
    ['{"type":"dance"}', 'unknown_type'],
    ['{"type":"turn","step":"x","input":{}}', 'not_authenticated'],
    ['', 'bad_json'],
    // jansson stops at a NUL: `123` then NUL must not decode as 123.
    ['123\u0000', 'bad_json'],
    ['{"type":"ping"}\u0000', 'bad_json'],
    ['{"type":"ping"}\u0000{"type":"ping"}', 'bad_json'],
  ];
  for (const [payload, code] of cases) {
    const { m, pong } = await errorFor(payload);
    if (code) assert.equal(m.code, code, `payload ${String(payload).slice(0, 40)}`);
    else assert.ok(['bad_json', 'bad_message'].includes(m.code), m.code);
    assert.ok(!('id' in m) || typeof m.id === 'string');
    assert.equal(pong.code, 'not_authenticated'); // still open, still unauthenticated
  }
  // An invalid id is not echoed; a valid one is.
  const withId = await errorFor('{"type":"dance","id":"abc"}');
  assert.equal(withId.m.id, 'abc');
  const badId = await errorFor(`{"type":"dance","id":"${'x'.repeat(100)}"}`);
  assert.ok(!('id' in badId.m));
  // Wrong types after authentication, and a second hello.
  const auth = await errorFor('{"type":"turn","step":7,"input":{}}', { auth: true });
  assert.equal(auth.m.code, 'bad_message');
  assert.equal(auth.pong.type, 'ack');
  const again = await errorFor(JSON.stringify({ type: 'hello', token: room.tokens.observer }), { auth: true });
  assert.equal(again.m.code, 'already_authenticated');
  await stillUp();
});

test('binary frames are refused with an error, the connection stays', async () => {
  const { m, pong } = await errorFor(Buffer.from('{"type":"ping"}'), { binary: true });
  assert.equal(m.code, 'bad_message');
  assert.equal(pong.code, 'not_authenticated');
  await stillUp();
});

test('a 1 MiB frame closes 1009; 64 KiB exactly is still parsed', async () => {
  const c = await Client.connect(srv.wsUrl);
  c.ws.send('x'.repeat(1 << 20));
  const closed = await c.closed;
  assert.equal(closed.code, 1009);
  // At the limit: 65,536 bytes of valid-but-useless JSON gets an error, not a close.
  const big = JSON.stringify({ type: 'hello', token: 'y'.repeat(65536 - 30) });
  const pad = big.length < 65536 ? big.slice(0, -2) + ' '.repeat(65536 - big.length) + big.slice(-2) : big;
  assert.equal(Buffer.byteLength(pad), 65536);
  const { m } = await errorFor(pad);
  assert.equal(m.code, 'bad_message'); // token too long
  // One byte more in several fragments: still a close 1009.
  const f = await Client.connect(srv.wsUrl);
  const chunk = 'z'.repeat(20000);
  f.ws.send(chunk, { fin: false });
  f.ws.send(chunk, { fin: false });
  f.ws.send(chunk, { fin: false });
  f.ws.send(chunk, { fin: true });
  assert.equal((await f.closed).code, 1009);
  await stillUp();
});

test('flooding past the rate limit gets rate_limited, then recovers', async () => {
  const c = await Client.connect(srv.wsUrl);
  await c.hello(room.tokens.observer);
  const at = c.msgs.length;
  for (let i = 0; i < 200; i++) c.send({ type: 'ping', id: `p${i}` });
  await c.waitFor((m, i) => i >= at && m.type === 'error' && m.code === 'rate_limited');
  await sleep(300);
  const after = c.msgs.slice(at);
  const acks = after.filter((m) => m.type === 'ack').length;
  const limited = after.filter((m) => m.code === 'rate_limited').length;
  assert.ok(acks >= 39 && acks <= 50, `acks ${acks}`); // burst 40, the hello took one
  assert.equal(acks + limited, 200);
  await sleep(1100);
  assert.equal((await c.request({ type: 'ping' })).type, 'ack');
  await c.close();
  await stillUp();
});

async function expectBadToken(token) {
  const c = await Client.connect(srv.wsUrl);
  c.send({ type: 'hello', token, id: 'h' });
  const closed = await c.closed;
  assert.equal(closed.code, 4401);
  const err = c.msgs.find((m) => m.type === 'error');
  assert.equal(err.code, 'bad_token');
  assert.equal(err.id, 'h');
  assert.ok(!/expired|mac|room/i.test(err.message), 'nothing else disclosed');
  assert.deepEqual(c.msgs.at(-1), { type: 'bye', reason: 'bad_token' });
}

test('bad, tampered, expired and foreign tokens: bad_token and close 4401', async () => {
  await expectBadToken('garbage');
  const t = room.tokens.partner_a;
  const tampered = t.slice(0, 5) + (t[5] === 'A' ? 'B' : 'A') + t.slice(6);
  await expectBadToken(tampered);
  // Expired: a token with a 1-second lifetime.
  const short = createRoom(dir, 'enactment', ['--token-ttl', '1']);
  await sleep(2100);
  await expectBadToken(short.tokens.partner_a);
  // Foreign: a valid token from another server's key.
  const other = tempDir('foreign');
  const foreign = createRoom(other);
  await expectBadToken(foreign.tokens.therapist);
  await stillUp();
});

test('no hello in time: bye hello_timeout and close 4408', async () => {
  const c = await Client.connect(srv.wsUrl);
  const closed = await c.closed;
  assert.equal(closed.code, 4408);
  assert.deepEqual(c.msgs.at(-1), { type: 'bye', reason: 'hello_timeout' });
});

test('Origin allow-list at the handshake', async () => {
  await assert.rejects(Client.connect(srv.wsUrl, { origin: 'https://evil.example' }), (e) => e.statusCode === 403);
  const ok = await Client.connect(srv.wsUrl, { origin: 'https://clinic.example' });
  assert.equal((await ok.hello(room.tokens.observer)).ack.type, 'ack');
  await ok.close();
  // Same origin (the page this server served) is allowed.
  const same = await Client.connect(srv.wsUrl, { origin: srv.httpUrl });
  await same.close();
  // No subprotocol, or a wrong path: refused at the handshake.
  await assert.rejects(Client.connect(srv.wsUrl, { protocol: null }), (e) => e.statusCode === 400);
  await assert.rejects(Client.connect(srv.wsUrl.replace('/ws', '/other')), (e) => e.statusCode === 404);
  const m = await httpGet(`${srv.httpUrl}/metrics`);
  assert.match(m.text, /attune_origin_rejects_total [1-9]/);
  await stillUp();
});

test('a Host that is not this server (DNS rebinding) is refused: 421, and 403 at the upgrade', async () => {
  const rebound = `rebound.example:${srv.port}`;
  await assert.rejects(Client.connect(srv.wsUrl, { headers: { host: rebound }, origin: `http://${rebound}` }), (e) => e.statusCode === 403);
  const res = await new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: srv.port, path: '/healthz', headers: { host: rebound } }, resolve);
    req.on('error', reject);
  });
  assert.equal(res.statusCode, 421);
  res.resume();
  await stillUp();
});

test('/metrics counts what happened', async () => {
  const m = await httpGet(`${srv.httpUrl}/metrics`);
  assert.equal(m.status, 200);
  for (const name of ['attune_connections', 'attune_rooms', 'attune_events_appended_total',
    'attune_store_commit_seconds_bucket', 'attune_apply_seconds_count',
    'attune_store_checkpoints_total', 'attune_store_wal_pages'])
    assert.ok(m.text.includes(name), name);
  assert.match(m.text, /attune_rejected_messages_total\{code="bad_json"\} [1-9]/);
  assert.match(m.text, /attune_rejected_messages_total\{code="rate_limited"\} [1-9]/);
  assert.match(m.text, /attune_oversize_closes_total [1-9]/);
  // this run's events are in the WAL (SQLite's: PostgreSQL's WAL is the cluster's, not counted)
  if (!ON_PG) assert.match(m.text, /attune_store_wal_pages [1-9]/);
  // Logs are JSON lines and never carry tokens or what people wrote.
  for (const l of srv.logs) assert.ok(!l.unparsed, `non-JSON log line ${l.unparsed}`);
  const all = JSON.stringify(srv.logs);
  assert.ok(!all.includes(room.tokens.partner_a.slice(0, 40)));
  assert.ok(!all.includes('words for'));
});

test('a replaced connection that keeps sending does not reach the room (nor bring the server down)', async () => {
  const { tokens } = createRoom(dir);
  const old = await Client.connect(srv.wsUrl);
  await old.hello(tokens.partner_a);
  // Keep the old window talking while a new one takes its seat.
  let sending = true;
  const chatter = (async () => {
    while (sending && !old.closeInfo) {
      for (let i = 0; i < 20; i++) {
        old.send({ type: 'typing' });
        old.send({ type: 'consent', accept: true });
      }
      await sleep(1);
    }
  })();
  const fresh = await Client.connect(srv.wsUrl);
  await fresh.hello(tokens.partner_a);
  const closed = await old.closed;
  sending = false;
  await chatter;
  // 4409 with its bye; or 1006 when the close handshake meets the chatter.
  assert.ok([4409, 1006].includes(closed.code), `closed ${closed.code}`);
  await stillUp();
  // The new window holds the seat and is served.
  assert.equal((await fresh.request({ type: 'ping' })).type, 'ack');
});

test('members still talking while the server stops do not bring it down: SIGTERM exits 0', async () => {
  const dataDir = tempDir('stop-talk');
  const { tokens } = createRoom(dataDir);
  const s = await startServer({ dataDir });
  const clients = [];
  for (const role of ['partner_a', 'partner_b', 'therapist']) {
    const c = await Client.connect(s.wsUrl);
    await c.hello(tokens[role]);
    clients.push(c);
  }
  let sending = true;
  const chatter = clients.map(async (c) => {
    // Under the rate limit, so each one reaches the room's code.
    while (sending && !c.closeInfo) {
      c.send({ type: 'typing' });
      await sleep(60);
    }
  });
  await sleep(200);
  const exit = s.stop('SIGTERM');
  const { code, signal } = await exit;
  sending = false;
  await Promise.all(chatter);
  assert.deepEqual({ code, signal }, { code: 0, signal: null });
});

test('the log\'s limits and gates: consent_required, session_ended, rate_limited, room_busy, log_full (and the server stays up)', async () => {
  const dataDir = tempDir('hostile-log');
  const s = await startServer({
    dataDir,
    args: ['--link-events-per-minute', '6', '--room-events-per-minute', '9'],
  });
  try {
    const { tokens } = createRoom(dataDir);
    const c = {};
    for (const role of ['therapist', 'partner_a', 'partner_b']) {
      c[role] = await Client.connect(s.wsUrl);
      await c[role].hello(tokens[role]);
    }
    const codeOf = async (role, msg) => {
      const r = await c[role].request(msg);
      return r.type === 'error' ? r.code : r.type;
    };
    // before both consents: only consent, the private line and typing
    for (const msg of [{ type: 'repair_attempt', text: 'x'.repeat(4000) }, { type: 'pause_request', note: 'y'.repeat(4000) },
      { type: 'repair_reply', attempt_id: 1, reply: 'need_a_moment' }, { type: 'turn', step: 'x', input: {} }])
      assert.equal(await codeOf('partner_a', msg), 'consent_required', JSON.stringify(msg).slice(0, 40));
    assert.equal(await codeOf('partner_a', { type: 'note', text: 'x' }), 'forbidden');
    assert.equal(await codeOf('partner_a', { type: 'private_message', text: 'hello' }), 'ack');
    // a link past its events a minute (6: the private message, the consent, ...)
    assert.equal(await codeOf('partner_a', { type: 'consent', accept: true }), 'ack');
    assert.equal(await codeOf('partner_b', { type: 'consent', accept: true }), 'ack');
    const fromA = [];
    for (let i = 0; i < 8; i++) fromA.push(await codeOf('partner_a', { type: 'private_message', text: `a${i}` }));
    assert.ok(fromA.includes('rate_limited'), fromA.join());
    // the room past its events a minute (9 for the partners together)
    const fromB = [];
    for (let i = 0; i < 8; i++) fromB.push(await codeOf('partner_b', { type: 'private_message', text: `b${i}` }));
    assert.ok(fromB.includes('room_busy'), fromB.join());
    // the therapist has a link budget of its own
    assert.equal(await codeOf('therapist', { type: 'note', text: 'still here' }), 'ack');
    // after the end: nothing from a partner
    assert.equal(await codeOf('therapist', { type: 'control', action: 'end' }), 'ack');
    assert.equal(await codeOf('partner_b', { type: 'private_message', text: 'late' }), 'session_ended');
    assert.equal(await codeOf('partner_b', { type: 'typing' }), 'session_ended');
    assert.ok(s.alive());
  } finally {
    await s.stop('SIGKILL');
  }
  // the cap: a partner filling the log with private messages gets log_full
  const capDir = tempDir('hostile-cap');
  const capped = await startServer({
    dataDir: capDir,
    args: ['--room-event-cap', '20', '--link-events-per-minute', '0', '--room-events-per-minute', '0'],
  });
  try {
    const { tokens } = createRoom(capDir);
    const a = await Client.connect(capped.wsUrl);
    await a.hello(tokens.partner_a);
    let r = { type: 'ack' };
    for (let i = 0; i < 40 && r.type === 'ack'; i++) r = await a.request({ type: 'private_message', text: 'z'.repeat(4000) });
    assert.equal(r.code, 'log_full', JSON.stringify(r));
    const t = await Client.connect(capped.wsUrl);
    await t.hello(tokens.therapist);
    assert.equal((await t.request({ type: 'control', action: 'end' })).type, 'ack', 'the therapist can still end it');
    assert.ok(capped.alive());
  } finally {
    await capped.stop('SIGKILL');
  }
  await stillUp();
});

// One raw HTTP request to srv (status, headers, body text); `open` keeps a
// streamed answer open and resolves at its headers.
const rawHttp = (method, urlPath, opts) => request(srv, method, urlPath, { raw: true, ...opts });

test('hostile logins, password changes and event streams: clear refusals, and the server stays up', async () => {
  const json = { 'content-type': 'application/json' };
  // A huge, invalid name and a password past the maximum: a plain no.
  const huge = await rawHttp('POST', '/api/login', { headers: json, body: JSON.stringify({ username: 'x'.repeat(5000), password: 'p'.repeat(3000) }) });
  assert.equal(huge.status, 401);
  assert.equal(JSON.parse(huge.text).error, 'bad_credentials');
  for (const body of ['{"username": 1, "password": "x"}', '[]', '{"username": "a"}', 'not json']) {
    const r = await rawHttp('POST', '/api/login', { headers: json, body });
    assert.equal(r.status, 400, body);
    assert.equal(JSON.parse(r.text).error, 'bad_request');
  }
  // A password change or a stream without a session, or with a forged cookie.
  const forged = { cookie: `attune_session=${'A'.repeat(43)}` };
  assert.equal((await rawHttp('POST', '/api/password', { headers: json, body: '{"current_password":"a","new_password":"bbbbbbbbbbbb"}' })).status, 401);
  assert.equal((await rawHttp('POST', '/api/activity', { headers: { ...json, ...forged } })).status, 401);
  const streams = await Promise.all(Array.from({ length: 40 }, (_, i) => rawHttp('GET', '/api/rooms/events', { headers: i % 2 ? forged : {} })));
  for (const s of streams) {
    assert.equal(s.status, 401);
    assert.equal(JSON.parse(s.text).error, 'not_authenticated');
  }
  // Streams whose reader goes away at once.
  const r = spawnSync(path.join(path.dirname(serverBin()), '..', 'client', 'attune'), cliArgs(['therapist', 'add', 'vera', '--data', dir]), { input: 'vera-long-password\n', encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const login = await rawHttp('POST', '/api/login', { headers: json, body: JSON.stringify({ username: 'vera', password: 'vera-long-password' }) });
  assert.equal(login.status, 200, login.text);
  const cookie = { cookie: /^attune_session=[^;]*/.exec(login.headers['set-cookie'][0])[0] };
  for (let i = 0; i < 20; i++) {
    const s = await rawHttp('GET', '/api/rooms/events', { headers: cookie, open: true });
    assert.equal(s.status, 200);
    s.req.destroy();
  }
  await stillUp();
});
