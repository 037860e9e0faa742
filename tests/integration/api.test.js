// api.test.js - the therapists' HTTP API (protocol/HTTP.md) against the real
// server: accounts made with `attune therapist add` through stdin, login and
// the session cookie, wrong passwords, growing delays per (username, client
// address) and per address, idle expiry, logout, room ownership, invitations that work
// over WebSocket, the session log (states folded by the core, final hash equal
// to --verify), cross-site refusals, body cap and the security headers.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, Client, tempDir, tokenOf, verify, inputFor, actorOf, canonical, sleep, serverBin,
  startSession, stateAfter, attune, addAccount, storedBytes,
} from './harness.js';
import { request, cookieOf, login, loginCookie } from './http.js';

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

function assertSecurityHeaders(res, what) {
  assert.equal(res.headers['content-security-policy'], CSP, `${what}: CSP`);
  assert.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`);
  assert.equal(res.headers['referrer-policy'], 'no-referrer', `${what}: referrer-policy`);
}

const PW = { alice: 'alice-long-password', bob: 'bob-long-password-2' };

describe('accounts, sessions and rooms', () => {
  let srv, dir;
  before(async () => {
    dir = tempDir('api');
    addAccount(dir, 'alice', PW.alice);
    addAccount(dir, 'bob', PW.bob);
    srv = await startServer({ dataDir: dir, args: ['--origin', 'https://clinic.example'] });
  });
  after(async () => {
    await srv?.stop('SIGKILL');
  });

  test('attune therapist add/list/remove through stdin', () => {
    const d = tempDir('api-cli');
    assert.equal(attune(['therapist', 'add', 'carol', '--data', d], 'short\n').code, 2, 'under 10 characters');
    // (refused before the password is read: no stdin, or the write could hit EPIPE)
    assert.equal(attune(['therapist', 'add', 'bad name', '--data', d]).code, 2, 'bad name');
    const ok = attune(['therapist', 'add', 'carol', '--data', d], 'long-enough-pw\n');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(attune(['therapist', 'add', 'carol', '--data', d], 'long-enough-pw\n').code, 2, 'duplicate');
    const list = attune(['therapist', 'list', '--data', d]);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^carol\s+therapist\s+\d{4}-\d\d-\d\dT/m);
    assert.equal(attune(['therapist', 'remove', 'carol', '--data', d]).code, 0);
    assert.doesNotMatch(attune(['therapist', 'list', '--data', d]).stdout, /carol/);
    assert.equal(attune(['therapist', 'remove', 'carol', '--data', d]).code, 2, 'already removed');
    // The hash is scrypt with the parameters HTTP.md names, never the password.
    const db = storedBytes(dir);
    assert.ok(db.length > 0);
    assert.equal(db.includes(Buffer.from(PW.alice)), false, 'password not stored in clear');
  });

  test('login sets the session cookie; /api/me answers with it', async () => {
    const res = await login(srv, 'alice', PW.alice);
    assert.equal(res.status, 200, res.text);
    const { expires_at: loginExpires, ...loginRest } = res.json;
    assert.deepEqual(loginRest, { name: 'alice', kind: 'therapist', idle_timeout_s: 900, lifetime_s: 43200 });
    assert.ok(Math.abs(loginExpires - (Date.now() + 900e3)) < 60e3, 'expires_at: the idle limit from now');
    assert.equal(res.headers['cache-control'], 'no-store');
    assertSecurityHeaders(res, 'login');
    const c = cookieOf(res);
    assert.match(c.value, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
    const attrs = c.header.split(';').slice(1).map((s) => s.trim());
    assert.deepEqual(attrs.sort(), ['HttpOnly', 'Path=/', 'SameSite=Strict'], 'no Secure over plain HTTP');
    const me = await request(srv, 'GET', '/api/me', { cookie: c.value });
    assert.equal(me.status, 200);
    const { expires_at: meExpires, ...meRest } = me.json;
    assert.deepEqual(meRest, { name: 'alice', kind: 'therapist', idle_timeout_s: 900, lifetime_s: 43200 });
    assert.equal(meExpires, loginExpires, 'a GET does not renew the session');
    assert.equal(me.headers['cache-control'], 'no-store');
    // Two logins are two sessions.
    const other = await loginCookie(srv, 'alice', PW.alice);
    assert.notEqual(other, c.value);
  });

  test('wrong password, unknown user and no cookie are refused', async () => {
    const wrong = await login(srv, 'alice', 'not-the-password');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error, 'bad_credentials');
    assert.equal(wrong.headers['set-cookie'], undefined);
    const unknown = await login(srv, 'nobody', 'whatever-password');
    assert.equal(unknown.status, 401);
    assert.equal(unknown.json.error, 'bad_credentials');
    assert.equal(unknown.json.message, wrong.json.message, 'same answer for both');
    const none = await request(srv, 'GET', '/api/me');
    assert.equal(none.status, 401);
    assert.equal(none.json.error, 'not_authenticated');
    const forged = await request(srv, 'GET', '/api/rooms', { cookie: 'A'.repeat(43) });
    assert.equal(forged.status, 401);
    const bad = await request(srv, 'POST', '/api/login', { body: '{"username":', headers: { 'content-type': 'application/json' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error, 'bad_request');
  });

  test('logout ends the session and clears the cookie', async () => {
    const cookie = await loginCookie(srv, 'bob', PW.bob);
    assert.equal((await request(srv, 'GET', '/api/me', { cookie })).status, 200);
    const out = await request(srv, 'POST', '/api/logout', { cookie });
    assert.equal(out.status, 204);
    assert.equal(out.text, '');
    const cleared = cookieOf(out);
    assert.equal(cleared.value, '');
    assert.match(cleared.header, /Max-Age=0/);
    assert.match(cleared.header, /HttpOnly/);
    const after = await request(srv, 'GET', '/api/me', { cookie });
    assert.equal(after.status, 401);
    assert.equal(after.json.error, 'not_authenticated');
  });

  test('exercises list', async () => {
    const cookie = await loginCookie(srv, 'alice', PW.alice);
    const res = await request(srv, 'GET', '/api/exercises', { cookie });
    assert.equal(res.status, 200);
    const ids = res.json.map((e) => e.id).sort();
    assert.ok(ids.includes('enactment'), JSON.stringify(ids));
    for (const e of res.json) {
      assert.equal(typeof e.title, 'string');
      assert.equal(typeof e.summary, 'string');
    }
  });

  test('a therapist sees only their own rooms; invitations work over WebSocket; the log folds to --verify', async () => {
    const alice = await loginCookie(srv, 'alice', PW.alice);
    const bob = await loginCookie(srv, 'bob', PW.bob);
    // Rooms made on the command line: one for alice, one for nobody.
    const cliRoom = attune(['room', 'create', '--data', dir, '--owner', 'alice']);
    assert.equal(cliRoom.code, 0, cliRoom.stderr);
    const cliRoomId = /created room (\S+)/.exec(cliRoom.stderr)[1];
    const orphan = attune(['room', 'create', '--data', dir]);
    const orphanId = /created room (\S+)/.exec(orphan.stderr)[1];
    await sleep(5); // created_at in ms: the API's room is the newest

    const bad = await request(srv, 'POST', '/api/rooms', { cookie: alice, json: { exercise: 'no_such' } });
    assert.equal(bad.status, 400);
    const created = await request(srv, 'POST', '/api/rooms', { cookie: alice, json: { exercise: 'enactment' } });
    assert.equal(created.status, 201, created.text);
    const { room, invites } = created.json;
    assert.equal(room.exercise, 'enactment');
    assert.equal(typeof room.title, 'string');
    assert.equal(room.status, 'waiting_consent');
    assert.equal(room.last_seq, 1);
    assert.equal(room.open_ruptures, 0);
    assert.equal(room.suspected_ruptures, 0);
    assert.equal(room.ended_reason, null);
    assert.deepEqual(room.present, { partner_a: false, partner_b: false, therapist: false, observers: 0 });
    assert.ok(room.step && typeof room.step.id === 'string' && typeof room.step.title === 'string');
    assert.ok(Math.abs(room.created_at - Date.now()) < 60000);
    // Partner links only, shown once; staff open with their login (a ticket).
    assert.deepEqual(Object.keys(invites).sort(), ['partner_a', 'partner_b']);
    for (const url of Object.values(invites)) assert.match(url, new RegExp(`^http://127\\.0\\.0\\.1:\\d+/\\?room=${room.id}#token=`));

    // Dashboards: alice has both her rooms, newest first; bob has none.
    const aliceList = await request(srv, 'GET', '/api/rooms', { cookie: alice });
    assert.equal(aliceList.status, 200);
    assert.deepEqual(aliceList.json.map((r) => r.id), [room.id, cliRoomId]);
    const bobList = await request(srv, 'GET', '/api/rooms', { cookie: bob });
    assert.deepEqual(bobList.json, []);
    assert.ok(!aliceList.json.some((r) => r.id === orphanId), 'a room without owner is on no dashboard');
    for (const p of [`/api/rooms/${room.id}`, `/api/rooms/${room.id}/log`]) {
      const r = await request(srv, 'GET', p, { cookie: bob });
      assert.equal(r.status, 404, `${p} for bob`);
      assert.equal(r.json.error, 'not_found');
    }
    assert.equal((await request(srv, 'GET', `/api/rooms/${orphanId}`, { cookie: alice })).status, 404);
    assert.equal((await request(srv, 'GET', '/api/rooms/../../etc', { cookie: alice })).status, 404);
    const again = await request(srv, 'GET', `/api/rooms/${room.id}`, { cookie: alice });
    assert.equal(again.status, 200);
    assert.equal(again.json.room.id, room.id);
    assert.equal(again.json.invites, undefined, 'a page view mints no link');
    assert.deepEqual(again.json.invitations.map((i) => i.role), ['partner_a', 'partner_b']);

    // The invitations work over WebSocket, each with its role: the partners'
    // links, the therapist's ticket, an operator's observer link.
    const ticket = (await request(srv, 'POST', `/api/rooms/${room.id}/ticket`, { cookie: alice })).json.ticket;
    const observerToken = () => attune(['token', '--data', dir, '--room', room.id, '--role', 'observer']).stdout.trim();
    const auth = {
      partner_a: { token: tokenOf(invites.partner_a) },
      partner_b: { token: tokenOf(invites.partner_b) },
      therapist: { ticket },
      observer: { token: observerToken() },
    };
    const clients = {};
    for (const role of ['partner_a', 'partner_b', 'therapist', 'observer']) {
      const c = await Client.connect(srv.wsUrl);
      const h = await c.request({ type: 'hello', ...auth[role] }).then((ack) => ({ ack }));
      assert.equal(h.ack.type, 'ack', `${role}: ${JSON.stringify(h.ack)}`);
      assert.equal(h.ack.role, role);
      assert.equal(h.ack.room, room.id);
      clients[role] = c;
    }
    // Observers may be many.
    const obs2 = await Client.connect(srv.wsUrl);
    assert.equal((await obs2.hello(observerToken())).ack.role, 'observer');
    await obs2.close();

    // A little session: consent and check-in, a few turns, a pause, a
    // therapist's mark and a note.
    const { partner_a: a, partner_b: b, therapist } = clients;
    const vocab = (await therapist.waitFor((m) => m.type === 'ack' && m.vocab)).vocab;
    let state = await startSession(therapist, a, b);
    for (let i = 0; i < 3; i++) {
      const actor = actorOf(state);
      const who = clients[actor];
      const from = therapist.msgs.length;
      const r = await who.request({ type: 'turn', step: state.step.id, input: inputFor(state.step, vocab) });
      assert.equal(r.type, 'ack', JSON.stringify(r));
      state = await stateAfter(therapist, from);
    }
    const pause = await a.request({ type: 'pause_request' });
    assert.equal(pause.type, 'ack', JSON.stringify(pause));
    const mark = await therapist.request({ type: 'rupture_mark', kind: 'withdrawal', marker: 'minimal_response', who: 'partner_b', with: 'partner_a' });
    assert.equal(mark.type, 'ack', JSON.stringify(mark));
    const note = await therapist.request({ type: 'note', text: 'private words' });
    assert.equal(note.type, 'ack');
    const live = await therapist.waitState((s) => s.seq >= note.seq);

    // Summary from the live room.
    const summary = (await request(srv, 'GET', `/api/rooms/${room.id}`, { cookie: alice })).json.room;
    assert.equal(summary.last_seq, live.seq);
    assert.equal(summary.status, live.status);
    assert.deepEqual(summary.present, live.present);
    assert.equal(summary.speaker, live.speaker);
    assert.equal(summary.round, live.round);
    assert.equal(summary.rounds, live.rounds);
    assert.equal(summary.open_ruptures, live.ruptures.filter((r) => r.status === 'open').length);
    assert.equal(summary.open_ruptures, 1, 'the mark opened a rupture; the pause did not');

    // The log (one page here; tests/integration/review.test.js pages it):
    // every seq from 1, each with the state after it (the first whole, then
    // patches of the keys that changed).
    const log = await request(srv, 'GET', `/api/rooms/${room.id}/log`, { cookie: alice });
    assert.equal(log.status, 200);
    assert.equal(log.headers['cache-control'], 'no-store');
    const L = log.json;
    assert.equal(L.room.id, room.id);
    assert.equal(L.exercise.id, 'enactment');
    assert.ok(Array.isArray(L.vocab.needs) && L.vocab.needs.length > 0);
    assert.equal(typeof L.consent.text, 'string');
    assert.deepEqual(L.events.map((e) => e.seq), Array.from({ length: live.seq }, (_, i) => i + 1));
    assert.equal(L.more, false);
    let folded = null;
    for (const e of L.events) {
      assert.equal(typeof e.event.type, 'string');
      folded = e.state || { ...folded, ...e.patch };
      assert.equal(folded.seq, e.seq);
    }
    assert.equal(L.events[0].event.type, 'room_created');
    assert.ok(L.events.some((e) => e.event.type === 'note'), 'therapist view: notes included');
    assert.deepEqual(canonical(folded), canonical(live), 'last folded state = live state');
    assert.deepEqual(L.final_state, folded);
    assert.match(L.state_hash, /^[0-9a-f]{64}$/);

    for (const c of Object.values(clients)) await c.close();
    await sleep(100);
    const v = verify(dir)[room.id];
    const log2 = (await request(srv, 'GET', `/api/rooms/${room.id}/log`, { cookie: alice })).json;
    assert.equal(log2.state_hash, v.hash, 'state_hash equals attune-server --verify');
    assert.equal(log2.events.at(-1).seq, v.seq);
  });

  test('cross-site POSTs are refused; bodies over 16 KiB are too large', async () => {
    const cookie = await loginCookie(srv, 'alice', PW.alice);
    const json = { exercise: 'enactment' };
    const foreign = await request(srv, 'POST', '/api/rooms', { cookie, json, headers: { origin: 'http://evil.example' } });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.json.error, 'forbidden');
    const form = await request(srv, 'POST', '/api/rooms', {
      cookie, body: 'exercise=enactment', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(form.status, 403);
    const plain = await request(srv, 'POST', '/api/rooms', {
      cookie, body: JSON.stringify(json), headers: { 'content-type': 'text/plain' },
    });
    assert.equal(plain.status, 403);
    const loginForm = await request(srv, 'POST', '/api/login', {
      body: `username=alice&password=${PW.alice}`, headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(loginForm.status, 403);
    const foreignLogout = await request(srv, 'POST', '/api/logout', { cookie, headers: { origin: 'http://evil.example' } });
    assert.equal(foreignLogout.status, 403);
    assert.equal((await request(srv, 'GET', '/api/me', { cookie })).status, 200, 'still logged in');
    // Same origin and the --origin allow-list pass.
    const same = await request(srv, 'POST', '/api/rooms', { cookie, json, headers: { origin: srv.httpUrl } });
    assert.equal(same.status, 201, same.text);
    const listed = await request(srv, 'POST', '/api/rooms', {
      cookie, json, headers: { origin: 'https://clinic.example', 'content-type': 'application/json; charset=utf-8' },
    });
    assert.equal(listed.status, 201, listed.text);
    // 16 KiB is the cap.
    const big = await request(srv, 'POST', '/api/rooms', { cookie, body: JSON.stringify({ exercise: 'x'.repeat(17000) }), headers: { 'content-type': 'application/json' } });
    assert.equal(big.status, 413);
    assert.equal(big.json.error, 'too_large');
    const bigLogin = await request(srv, 'POST', '/api/login', { json: { username: 'alice', password: 'p'.repeat(16 * 1024) } });
    assert.equal(bigLogin.status, 413);
    assert.ok(srv.alive());
  });

  test('security headers on pages, files, the API and errors', async () => {
    for (const p of ['/', '/index.html', '/app.css', '/api/me', '/api/nowhere', '/healthz', '/no-such-file.html']) {
      const res = await request(srv, 'GET', p);
      assertSecurityHeaders(res, p);
    }
    const api404 = await request(srv, 'GET', '/api/nowhere');
    assert.equal(api404.status, 404);
    assert.equal(api404.json.error, 'not_found');
  });

  test('a removed account is logged out at its next request', async () => {
    addAccount(dir, 'dave', 'dave-long-password');
    const cookie = await loginCookie(srv, 'dave', 'dave-long-password');
    assert.equal((await request(srv, 'GET', '/api/me', { cookie })).status, 200);
    assert.equal(attune(['therapist', 'remove', 'dave', '--data', dir]).code, 0);
    const res = await request(srv, 'GET', '/api/me', { cookie });
    assert.equal(res.status, 401);
    assert.equal((await login(srv, 'dave', 'dave-long-password')).status, 401);
  });
});

describe('login rate limits', () => {
  let srv, dir;
  before(async () => {
    dir = tempDir('api-rl');
    addAccount(dir, 'alice', PW.alice);
    addAccount(dir, 'bob', PW.bob);
    srv = await startServer({ dataDir: dir });
  });
  after(async () => {
    await srv?.stop('SIGKILL');
  });

  test('growing delays per (name, address) and per address; the name stays usable from elsewhere', async () => {
    // Five wrong passwords for alice from 127.0.0.2: free of delay.
    for (let i = 0; i < 5; i++) {
      const r = await login(srv, 'alice', `wrong-password-${i}`, { from: '127.0.0.2' });
      assert.equal(r.status, 401, `attempt ${i + 1}`);
    }
    // The sixth from there waits, even with the right password.
    const limited = await login(srv, 'alice', PW.alice, { from: '127.0.0.2' });
    assert.equal(limited.status, 429);
    assert.equal(limited.json.error, 'rate_limited');
    const retry = Number(limited.headers['retry-after']);
    assert.ok(retry >= 1 && retry <= 5, `Retry-After ${limited.headers['retry-after']}`);
    assert.equal(limited.headers['set-cookie'], undefined);
    // alice herself, from another address, is not held up.
    assert.equal((await login(srv, 'alice', PW.alice, { from: '127.0.0.3' })).status, 200);
    // Nor is another name from 127.0.0.2 (the address alone has more room).
    assert.equal((await login(srv, 'bob', PW.bob, { from: '127.0.0.2' })).status, 200);
    // Twenty failures spread over different names from one address slow that address.
    for (let i = 0; i < 20; i++)
      assert.equal((await login(srv, `guess${i}`, 'whatever-password', { from: '127.0.0.5' })).status, 401, `guess ${i}`);
    assert.equal((await login(srv, 'bob', PW.bob, { from: '127.0.0.5' })).status, 429);
    assert.equal((await login(srv, 'bob', PW.bob, { from: '127.0.0.6' })).status, 200);
  });
});

describe('password checks off the service thread', () => {
  let srv, dir;
  before(async () => {
    dir = tempDir('api-hash');
    addAccount(dir, 'alice', PW.alice);
    srv = await startServer({ dataDir: dir });
  });
  after(async () => {
    await srv?.stop('SIGKILL');
  });

  test('parallel guesses cannot outrun the limit, and the loop keeps serving meanwhile', async () => {
    // Ten wrong passwords at once from one address: at most four wait for
    // the hasher at once from one address, and an attempt counts from the
    // moment it is queued (five free per name and address), so four or five
    // are checked and the rest refused.
    const guesses = Array.from({ length: 10 }, (_, i) => login(srv, 'alice', `guess-number-${i}`, { from: '127.0.0.7' }));
    // While scrypt runs (~0.1 s per check), the service thread still answers.
    const t0 = Date.now();
    const health = await request(srv, 'GET', '/healthz');
    const healthMs = Date.now() - t0;
    const answers = await Promise.all(guesses);
    const checked = answers.filter((r) => r.status === 401).length;
    const refused = answers.filter((r) => r.status === 429);
    assert.ok(checked >= 4 && checked <= 5, `${checked} checked`);
    assert.equal(checked + refused.length, 10, answers.map((r) => r.status).join(' '));
    for (const r of refused) assert.ok(Number(r.headers['retry-after']) >= 1, 'Retry-After');
    assert.equal(health.status, 200);
    assert.ok(healthMs < 150, `healthz took ${healthMs} ms during the logins`);
    // Those failures do not lock alice out from another address.
    assert.equal((await login(srv, 'alice', PW.alice, { from: '127.0.0.8' })).status, 200, 'alice logs in elsewhere');
  });
});

describe('idle sessions', () => {
  let srv, dir;
  before(async () => {
    dir = tempDir('api-idle');
    addAccount(dir, 'alice', PW.alice);
    srv = await startServer({ dataDir: dir, args: ['--session-idle', '1'] });
  });
  after(async () => {
    await srv?.stop('SIGKILL');
  });

  test('--session-idle is in --help', () => {
    const out = execFileSync(serverBin(), ['--help'], { encoding: 'utf8' });
    assert.match(out, /--session-idle SECONDS.*\[900\]/);
  });

  test('a session ends after --session-idle seconds without the therapist\'s own actions; each renews it', async () => {
    const res = await login(srv, 'alice', PW.alice);
    assert.equal(res.json.idle_timeout_s, 1);
    const cookie = cookieOf(res).value;
    // Actions (POSTs) 0.6 s apart keep it alive past the 1 s idle limit.
    for (let i = 0; i < 3; i++) {
      await sleep(600);
      assert.equal((await request(srv, 'POST', '/api/activity', { cookie })).status, 204, `renewal ${i}`);
    }
    await sleep(1300);
    const expired = await request(srv, 'GET', '/api/me', { cookie });
    assert.equal(expired.status, 401);
    assert.equal(expired.json.error, 'not_authenticated');
    assert.match(expired.headers['set-cookie'][0], /^attune_session=;.*Max-Age=0/, 'cookie cleared');
    assert.equal((await request(srv, 'GET', '/api/me', { cookie })).status, 401, 'stays expired');
  });
});
