// invites.test.js - invitation links as server-side records and staff views
// through the login, against the real server and the real `attune` command:
// a revoked link is refused and its live connection closed 4401 (revoked
// through the API and through `attune token revoke` in another process);
// a partner's link ends with its session plus --link-grace; the therapist's
// live view opens with a single-use ticket and closes at logout; an expired
// ticket is refused; --token-ttl and --ttl are capped; the old database
// (tests/fixtures/store-v0) opens and its demo room works with new links
// while the demo's old, unrecorded tokens are refused.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, Client, tempDir, tokenOf, sleep, serverBin, ROOT, AS_ROOT, attune, addAccount, sqliteOnly, storedBytes } from './harness.js';
import { request as httpRequest, loginCookie } from './http.js';

// A POST without json sends {} as its body here.
const request = (srv, method, urlPath, opts) => httpRequest(srv, method, urlPath, { postBody: '{}', ...opts });

// Connects and says hello with a token or a ticket; resolves with the reply
// (ack or error) and the client.
async function helloWith(srv, auth) {
  const c = await Client.connect(srv.wsUrl);
  const reply = await c.request({ type: 'hello', ...auth });
  return { c, reply };
}

async function expectRefused(srv, auth, what) {
  const { c, reply } = await helloWith(srv, auth);
  assert.equal(reply.type, 'error', `${what}: ${JSON.stringify(reply)}`);
  assert.equal(reply.code, 'bad_token', what);
  const closed = await c.closed;
  assert.equal(closed.code, 4401, what);
  assert.ok(c.msgs.some((m) => m.type === 'bye' && m.reason === 'bad_token'), `${what}: bye bad_token`);
}

async function expectClosed(c, reason, what, timeout = 8000) {
  const closed = await Promise.race([c.closed, sleep(timeout).then(() => null)]);
  assert.ok(closed, `${what}: still open after ${timeout} ms`);
  assert.equal(closed.code, 4401, what);
  assert.ok(c.msgs.some((m) => m.type === 'bye' && m.reason === reason), `${what}: bye ${reason}: ${JSON.stringify(c.msgs.slice(-3))}`);
}

const PW = 'alice-long-password';

describe('revoking links', () => {
  let srv;
  let dir;
  let alice;
  before(async () => {
    dir = tempDir('inv');
    addAccount(dir, 'alice', PW);
    srv = await startServer({ dataDir: dir });
    alice = await loginCookie(srv, 'alice', PW);
  });
  after(async () => srv && (await srv.stop()));

  test('a room shows partner links once, staff links never; its invitations are records', async () => {
    const created = await request(srv, 'POST', '/api/rooms', { cookie: alice, json: { exercise: 'enactment' } });
    assert.equal(created.status, 201, created.text);
    const { room, invites, invitations } = created.json;
    assert.deepEqual(Object.keys(invites).sort(), ['partner_a', 'partner_b']);
    assert.deepEqual(invitations.map((i) => [i.role, i.issued_by, i.revoked]), [
      ['partner_a', 'alice', false],
      ['partner_b', 'alice', false],
    ]);
    for (const i of invitations) {
      assert.ok(i.expires_at > Date.now() + 6 * 86400e3 && i.expires_at <= Date.now() + 7 * 86400e3 + 1000, 'the default 7 days');
      assert.ok(Math.abs(i.issued_at - Date.now()) < 60000);
    }
    const again = await request(srv, 'GET', `/api/rooms/${room.id}`, { cookie: alice });
    assert.equal(again.status, 200);
    assert.equal(again.json.invites, undefined, 'a page view mints no link');
    assert.equal(again.json.invitations.length, 2);
    assert.ok(!again.text.includes(tokenOf(invites.partner_a)), 'a link is never shown again');
    // What the database keeps is the nonce's hash, never the token.
    const tok = tokenOf(invites.partner_a);
    assert.ok(!storedBytes(dir).includes(tok), 'the token is not stored');
  });

  test('revoke and reissue through the API: the old link is closed 4401 and refused, the new one works', async () => {
    const created = await request(srv, 'POST', '/api/rooms', { cookie: alice, json: { exercise: 'enactment' } });
    const { room, invites } = created.json;
    const { c: a, reply } = await helloWith(srv, { token: tokenOf(invites.partner_a) });
    assert.equal(reply.type, 'ack', JSON.stringify(reply));
    const { c: b } = await helloWith(srv, { token: tokenOf(invites.partner_b) });

    const re = await request(srv, 'POST', `/api/rooms/${room.id}/invites`, { cookie: alice, json: { role: 'partner_a' } });
    assert.equal(re.status, 200, re.text);
    assert.equal(re.json.role, 'partner_a');
    assert.equal(re.json.revoked, 1);
    assert.match(re.json.url, /#token=/);
    await expectClosed(a, 'revoked', 'partner_a after revoke', 2000);
    assert.equal(b.closeInfo, undefined, "partner_b's link is untouched");
    await expectRefused(srv, { token: tokenOf(invites.partner_a) }, 'the revoked link');
    const { c: a2, reply: r2 } = await helloWith(srv, { token: tokenOf(re.json.url) });
    assert.equal(r2.type, 'ack', JSON.stringify(r2));
    assert.equal(r2.role, 'partner_a');
    const list = re.json.invitations.filter((i) => i.role === 'partner_a');
    assert.deepEqual(list.map((i) => i.revoked), [true, false]);

    const bad = await request(srv, 'POST', `/api/rooms/${room.id}/invites`, { cookie: alice, json: { role: 'system' } });
    assert.equal(bad.status, 400);
    const anon = await request(srv, 'POST', `/api/rooms/${room.id}/invites`, { json: { role: 'partner_a' } });
    assert.equal(anon.status, 401);
    await a2.close();
    await b.close();
  });

  test('attune token revoke in another process: by room and role, and by the token on stdin', async () => {
    const made = attune(['room', 'create', '--data', dir, '--owner', 'alice']);
    assert.equal(made.code, 0, made.stderr);
    const room = /created room (\S+)/.exec(made.stderr)[1];
    const links = Object.fromEntries(made.stdout.trim().split('\n').map((l) => l.split(' ').slice(1)));
    const { c: b, reply } = await helloWith(srv, { token: tokenOf(links.partner_b) });
    assert.equal(reply.type, 'ack', JSON.stringify(reply));
    const { c: a } = await helloWith(srv, { token: tokenOf(links.partner_a) });

    const r = attune(['token', 'revoke', '--data', dir, '--room', room, '--role', 'partner_b']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `revoked 1 ${room} partner_b`);
    await expectClosed(b, 'revoked', 'partner_b after the CLI revoke', 4000);
    assert.equal(a.closeInfo, undefined);

    const s = attune(['token', 'revoke', '--data', dir, '--stdin'], `${links.partner_a}\n`);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout.trim(), `revoked 1 ${room} partner_a`);
    await expectClosed(a, 'revoked', 'partner_a after revoke --stdin', 4000);
    await expectRefused(srv, { token: tokenOf(links.partner_a) }, 'the link revoked by token');
    // Twice is harmless; garbage is a usage error.
    assert.equal(attune(['token', 'revoke', '--data', dir, '--stdin'], `${links.partner_a}\n`).stdout.trim(), `revoked 0 ${room} partner_a`);
    assert.equal(attune(['token', 'revoke', '--data', dir, '--stdin'], 'not-a-token\n').code, 2);
    assert.equal(attune(['token', 'revoke', '--data', dir, '--room', room]).code, 2, '--role is needed');

    // An operator's therapist link from `attune token` is a record too.
    const t = attune(['token', '--data', dir, '--room', room, '--role', 'therapist']);
    assert.equal(t.code, 0, t.stderr);
    const { c: th, reply: tr } = await helloWith(srv, { token: t.stdout.trim() });
    assert.equal(tr.role, 'therapist');
    const detail = await request(srv, 'GET', `/api/rooms/${room}`, { cookie: alice });
    assert.ok(detail.json.invitations.some((i) => i.role === 'therapist' && i.issued_by === 'operator'));
    await th.close();
  });

  test('the therapist view opens with a single-use ticket bound to the login, and closes at logout', async () => {
    const created = await request(srv, 'POST', '/api/rooms', { cookie: alice, json: { exercise: 'enactment' } });
    const { room } = created.json;
    const tk = await request(srv, 'POST', `/api/rooms/${room.id}/ticket`, { cookie: alice });
    assert.equal(tk.status, 200, tk.text);
    assert.equal(tk.json.role, 'therapist');
    assert.equal(tk.json.room, room.id);
    assert.equal(tk.json.expires_in_s, 60);
    const { c: t, reply } = await helloWith(srv, { ticket: tk.json.ticket });
    assert.equal(reply.type, 'ack', JSON.stringify(reply));
    assert.equal(reply.role, 'therapist');
    assert.equal(reply.room, room.id);
    await expectRefused(srv, { ticket: tk.json.ticket }, 'a ticket used twice');
    await expectRefused(srv, { ticket: 'x'.repeat(43) }, 'a made-up ticket');
    const both = await helloWith(srv, { ticket: tk.json.ticket, token: 'abc' });
    assert.equal(both.reply.code, 'bad_message', 'token and ticket together');
    await both.c.close();
    assert.equal((await request(srv, 'POST', `/api/rooms/${room.id}/ticket`)).status, 401, 'no login, no ticket');
    const bob = 'bob';
    addAccount(dir, bob, 'bob-long-password-2');
    const bobCookie = await loginCookie(srv, bob, 'bob-long-password-2');
    assert.equal((await request(srv, 'POST', `/api/rooms/${room.id}/ticket`, { cookie: bobCookie })).status, 404, "someone else's room");

    // A second ticket, a second live view, then logout closes it.
    const out = await request(srv, 'POST', '/api/logout', { cookie: alice });
    assert.equal(out.status, 204);
    await expectClosed(t, 'logged_out', 'the therapist view after logout', 3000);
    alice = await loginCookie(srv, 'alice', PW);
  });

  test("a password change (attune therapist passwd, another process) and an account's removal close its live views", async () => {
    addAccount(dir, 'carol', 'carol-long-password');
    let carol = await loginCookie(srv, 'carol', 'carol-long-password');
    const { room } = (await request(srv, 'POST', '/api/rooms', { cookie: carol, json: { exercise: 'enactment' } })).json;
    const open = async () => {
      const tk = await request(srv, 'POST', `/api/rooms/${room.id}/ticket`, { cookie: carol });
      assert.equal(tk.status, 200, tk.text);
      const { c, reply } = await helloWith(srv, { ticket: tk.json.ticket });
      assert.equal(reply.role, 'therapist');
      return c;
    };
    let t = await open();
    const pw = attune(['therapist', 'passwd', 'carol', '--data', dir], 'carol-newer-password\n');
    assert.equal(pw.code, 0, pw.stderr);
    await expectClosed(t, 'logged_out', 'the live view after a password change', 4000);
    carol = await loginCookie(srv, 'carol', 'carol-newer-password');
    t = await open();
    const rm = attune(['therapist', 'remove', 'carol', '--data', dir]);
    assert.equal(rm.code, 0, rm.stderr);
    await expectClosed(t, 'logged_out', 'the live view after the account was removed', 4000);
  });
});

describe('supervisors observe the rooms they are invited to', () => {
  let srv;
  let dir;
  before(async () => {
    dir = tempDir('inv-sup');
    addAccount(dir, 'alice', PW);
    addAccount(dir, 'sam', 'sam-long-password', ['--supervisor']);
    addAccount(dir, 'sue', 'sue-long-password', ['--supervisor']);
    srv = await startServer({ dataDir: dir });
  });
  after(async () => srv && (await srv.stop()));

  test('an invited supervisor sees the room and observes it with a ticket; one not invited cannot; removal closes the view', async () => {
    const alice = await loginCookie(srv, 'alice', PW);
    const { room } = (await request(srv, 'POST', '/api/rooms', { cookie: alice, json: { exercise: 'enactment' } })).json;
    const add = await request(srv, 'POST', `/api/rooms/${room.id}/observers`, { cookie: alice, json: { name: 'sam' } });
    assert.equal(add.status, 200, add.text);
    assert.deepEqual(add.json.observers, [{ name: 'sam' }]);
    assert.equal((await request(srv, 'POST', `/api/rooms/${room.id}/observers`, { cookie: alice, json: { name: 'alice' } })).status, 400, 'only a supervisor account');
    assert.equal((await request(srv, 'POST', `/api/rooms/${room.id}/observers`, { cookie: alice, json: { name: 'nobody' } })).status, 400);
    assert.deepEqual((await request(srv, 'GET', `/api/rooms/${room.id}`, { cookie: alice })).json.observers, [{ name: 'sam' }]);

    const sam = await loginCookie(srv, 'sam', 'sam-long-password');
    const list = await request(srv, 'GET', '/api/rooms', { cookie: sam });
    assert.deepEqual(list.json.map((r) => r.id), [room.id]);
    const tk = await request(srv, 'POST', `/api/rooms/${room.id}/ticket`, { cookie: sam });
    assert.equal(tk.status, 200, tk.text);
    assert.equal(tk.json.role, 'observer');
    const { c: obs, reply } = await helloWith(srv, { ticket: tk.json.ticket });
    assert.equal(reply.type, 'ack', JSON.stringify(reply));
    assert.equal(reply.role, 'observer');
    const note = await obs.request({ type: 'note', text: 'a supervisor cannot act' });
    assert.equal(note.type, 'error', 'read-only');
    // sam cannot manage the room.
    assert.equal((await request(srv, 'POST', `/api/rooms/${room.id}/invites`, { cookie: sam, json: { role: 'partner_a' } })).status, 404);

    const sue = await loginCookie(srv, 'sue', 'sue-long-password');
    assert.deepEqual((await request(srv, 'GET', '/api/rooms', { cookie: sue })).json, []);
    assert.equal((await request(srv, 'POST', `/api/rooms/${room.id}/ticket`, { cookie: sue })).status, 404, 'not invited');

    const unused = (await request(srv, 'POST', `/api/rooms/${room.id}/ticket`, { cookie: sam })).json.ticket;
    const rm = await request(srv, 'POST', `/api/rooms/${room.id}/observers/remove`, { cookie: alice, json: { name: 'sam' } });
    assert.equal(rm.status, 200, rm.text);
    assert.deepEqual(rm.json.observers, []);
    await expectClosed(obs, 'revoked', "sam's view after the invitation was taken back", 2000);
    await expectRefused(srv, { ticket: unused }, 'a ticket fetched before the invitation was taken back');
    assert.equal((await request(srv, 'POST', `/api/rooms/${room.id}/ticket`, { cookie: sam })).status, 404);
    assert.deepEqual((await request(srv, 'GET', '/api/rooms', { cookie: sam })).json, []);
  });
});

describe('ticket lifetime and link grace', () => {
  let srv;
  let dir;
  let alice;
  before(async () => {
    dir = tempDir('inv2');
    addAccount(dir, 'alice', PW);
    srv = await startServer({ dataDir: dir, args: ['--ticket-ttl', '1', '--link-grace', '2'] });
    alice = await loginCookie(srv, 'alice', PW);
  });
  after(async () => srv && (await srv.stop()));

  test("the therapist's commands over the WebSocket keep the login alive; idle, the login ends and closes the view", async () => {
    const idleSrv = await startServer({ dataDir: tempDir('inv-idle'), args: ['--session-idle', '2'] });
    try {
      addAccount(idleSrv.dataDir, 'dora', 'dora-long-password');
      const dora = await loginCookie(idleSrv, 'dora', 'dora-long-password');
      const { room } = (await request(idleSrv, 'POST', '/api/rooms', { cookie: dora, json: { exercise: 'enactment' } })).json;
      const tk = await request(idleSrv, 'POST', `/api/rooms/${room.id}/ticket`, { cookie: dora });
      const { c: t, reply } = await helloWith(idleSrv, { ticket: tk.json.ticket });
      assert.equal(reply.role, 'therapist');
      // 3.5 s of notes, 0.7 s apart: past the 2 s idle time, still logged in.
      for (let i = 0; i < 5; i++) {
        const r = await t.request({ type: 'note', text: `note ${i}` });
        assert.equal(r.type, 'ack', JSON.stringify(r));
        await sleep(700);
      }
      assert.equal(t.closeInfo, undefined, 'the view stays while the therapist acts');
      assert.equal((await request(idleSrv, 'GET', '/api/me', { cookie: dora })).status, 200, 'the login lives on');
      // Pings alone are not the therapist's actions.
      const quiet = setInterval(() => t.send({ type: 'ping' }), 300);
      try {
        await expectClosed(t, 'logged_out', 'the live view after the idle time', 5000);
      } finally {
        clearInterval(quiet);
      }
      assert.equal((await request(idleSrv, 'GET', '/api/me', { cookie: dora })).status, 401);
    } finally {
      await idleSrv.stop();
    }
  });

  test('an expired ticket is refused', async () => {
    const created = await request(srv, 'POST', '/api/rooms', { cookie: alice, json: { exercise: 'enactment' } });
    const tk = await request(srv, 'POST', `/api/rooms/${created.json.room.id}/ticket`, { cookie: alice });
    assert.equal(tk.json.expires_in_s, 1);
    await sleep(1300);
    await expectRefused(srv, { ticket: tk.json.ticket }, 'a ticket past --ticket-ttl');
  });

  test("a partner's link ends --link-grace after the session ended: live ones closed, new hellos refused", async () => {
    const created = await request(srv, 'POST', '/api/rooms', { cookie: alice, json: { exercise: 'enactment' } });
    const { room, invites } = created.json;
    const { c: a, reply } = await helloWith(srv, { token: tokenOf(invites.partner_a) });
    assert.equal(reply.type, 'ack');
    const tk = await request(srv, 'POST', `/api/rooms/${room.id}/ticket`, { cookie: alice });
    const { c: t } = await helloWith(srv, { ticket: tk.json.ticket });
    const end = await t.request({ type: 'control', action: 'end' });
    assert.equal(end.type, 'ack', JSON.stringify(end));
    const endedAt = Date.now();
    // Within the grace the other partner's link still works.
    const { c: b, reply: rb } = await helloWith(srv, { token: tokenOf(invites.partner_b) });
    assert.equal(rb.type, 'ack', 'within the grace: ' + JSON.stringify(rb));
    await expectClosed(a, 'session_ended', 'partner_a after the grace', 6000);
    await expectClosed(b, 'session_ended', 'partner_b after the grace', 2000);
    assert.ok(Date.now() - endedAt >= 1900, 'not before the grace');
    assert.equal(t.closeInfo, undefined, 'the therapist stays');
    await expectRefused(srv, { token: tokenOf(invites.partner_b) }, "a partner's link after the grace");
    // Review is through the login.
    const log = await request(srv, 'GET', `/api/rooms/${room.id}/log`, { cookie: alice });
    assert.equal(log.status, 200);
    await t.close();
  });
});

test('--token-ttl and --ttl are capped at 30 days', async () => {
  const dir = tempDir('inv3');
  const r = spawnSync(serverBin(), ['--data', dir, '--token-ttl', '2592001', ...(AS_ROOT ? ['--allow-root'] : [])], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--token-ttl: at most 2592000 seconds \(30 days\)/);
  const made = attune(['room', 'create', '--data', dir, '--ttl', '2592001']);
  assert.equal(made.code, 2);
  assert.match(made.stderr, /ttl/);
  const ok = attune(['room', 'create', '--data', dir, '--ttl', '2592000']);
  assert.equal(ok.code, 0, ok.stderr);
  const room = /created room (\S+)/.exec(ok.stderr)[1];
  assert.equal(attune(['token', '--data', dir, '--room', room, '--role', 'partner_a', '--ttl', '2592001']).code, 2);
});

test('the old database opens; its demo re-mints links that work, the old unrecorded tokens are refused', { skip: sqliteOnly("it migrates an old SQLite data directory (tests/fixtures/store-v0)") }, async () => {
  const dir = path.join(tempDir('inv-v0'), 'data');
  fs.cpSync(path.join(ROOT, 'tests/fixtures/store-v0/data'), dir, { recursive: true });
  // The demo's tokens as the old build stored them (settings, plain text).
  const old = [...new Set(fs.readFileSync(path.join(dir, 'attune.db')).toString('latin1').match(/djF8[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}/g) || [])];
  assert.ok(old.length >= 3, `old demo tokens found: ${old.length}`);
  const srv = await startServer({ dataDir: dir, args: ['--demo'] });
  try {
    const deadline = Date.now() + 5000;
    while (srv.stdout.filter((l) => l.startsWith('invite ')).length < 3 && Date.now() < deadline) await sleep(20);
    const lines = Object.fromEntries(srv.stdout.filter((l) => l.startsWith('invite ')).map((l) => l.split(' ').slice(1)));
    for (const role of ['partner_a', 'partner_b', 'therapist']) {
      assert.ok(lines[role], role);
      assert.ok(!old.includes(tokenOf(lines[role])), `${role}: a new link`);
    }
    for (const t of old) await expectRefused(srv, { token: t }, 'an old token without a record');
    const { c, reply } = await helloWith(srv, { token: tokenOf(lines.partner_a) });
    assert.equal(reply.type, 'ack', JSON.stringify(reply));
    assert.equal(reply.role, 'partner_a');
    const { c: t, reply: tr } = await helloWith(srv, { token: tokenOf(lines.therapist) });
    assert.equal(tr.role, 'therapist');
    // The room's history is there: the note the therapist wrote before.
    await t.waitFor((m) => m.type === 'event' && m.event.type === 'note');
    await c.close();
    await t.close();
    // The demo keeps its (now recorded) links across a restart.
    await srv.stop();
    const again = await startServer({ dataDir: dir, args: ['--demo'] });
    try {
      const d2 = Date.now() + 5000;
      while (again.stdout.filter((l) => l.startsWith('invite ')).length < 3 && Date.now() < d2) await sleep(20);
      const l2 = Object.fromEntries(again.stdout.filter((l) => l.startsWith('invite ')).map((l) => l.split(' ').slice(1)));
      assert.equal(tokenOf(l2.partner_a), tokenOf(lines.partner_a), 'the same link after a restart');
    } finally {
      await again.stop();
    }
  } finally {
    if (srv.alive()) await srv.stop();
  }
});
