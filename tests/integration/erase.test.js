// erase.test.js - erasing a room for good, against the real server and the
// real `attune` command: POST /api/rooms/{id}/erase (the room's therapist
// only, the id typed again) closes every live member with bye room_erased,
// after which the room is 404, gone from the list, its partner links are
// "not valid" and the audit log records `erased`; another therapist's
// erase is a 404 that changes nothing; `attune room erase` in another
// process does the same, and the running server closes the room's live
// members within about a second; the data directory holds no trace of
// what was said in the erased room.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, Client, tempDir, tokenOf, sleep, attune, addAccount, startSession } from './harness.js';
import { request as httpRequest, loginCookie } from './http.js';

const request = (srv, method, urlPath, opts) => httpRequest(srv, method, urlPath, { postBody: '{}', ...opts });

const PW = 'erase-long-password';

// reasons: the bye reasons accepted. The dashboard's erase closes the room
// itself (room_erased, always). `attune room erase` in another process
// revokes the room's links before it erases the rest, and the running
// server notices revocations (every sweep) sooner than erases (once a
// second, from the audit log), so a member may get `revoked` first; the
// same close code either way.
async function expectErased(c, what, timeout = 4000, reasons = ['room_erased']) {
  const closed = await Promise.race([c.closed, sleep(timeout).then(() => null)]);
  assert.ok(closed, `${what}: still open after ${timeout} ms`);
  assert.equal(closed.code, 4401, what);
  assert.ok(
    c.msgs.some((m) => m.type === 'bye' && reasons.includes(m.reason)),
    `${what}: bye ${reasons.join(' or ')}: ${JSON.stringify(c.msgs.slice(-3))}`,
  );
}

async function helloWith(srv, auth) {
  const c = await Client.connect(srv.wsUrl);
  const reply = await c.request({ type: 'hello', ...auth });
  return { c, reply };
}

// Every byte of the data directory's files (the WAL included).
function dirBytes(dir) {
  return Buffer.concat(
    fs
      .readdirSync(dir)
      .map((f) => path.join(dir, f))
      .filter((p) => fs.statSync(p).isFile())
      .map((p) => fs.readFileSync(p)),
  );
}

// The audit entries of an account (GET /api/audit, newest first).
async function auditOf(srv, cookie) {
  const res = await request(srv, 'GET', '/api/audit', { cookie });
  assert.equal(res.status, 200, res.text);
  return res.json.entries;
}

describe('erasing a room', () => {
  let srv;
  let dir;
  let dana;
  let sam;
  before(async () => {
    dir = tempDir('erase');
    addAccount(dir, 'dana', PW);
    addAccount(dir, 'sam', PW);
    srv = await startServer({ dataDir: dir });
    dana = await loginCookie(srv, 'dana', PW);
    sam = await loginCookie(srv, 'sam', PW);
  });
  after(async () => srv && (await srv.stop()));

  test('the dashboard erase: members closed room_erased, then 404, off the list, links not valid, audited', async () => {
    const created = await request(srv, 'POST', '/api/rooms', { cookie: dana, json: { exercise: 'enactment' } });
    assert.equal(created.status, 201, created.text);
    const { room, invites } = created.json;
    const ticket = await request(srv, 'POST', `/api/rooms/${room.id}/ticket`, { cookie: dana });
    assert.equal(ticket.status, 200, ticket.text);
    const t = await Client.connect(srv.wsUrl);
    const a = await Client.connect(srv.wsUrl);
    const b = await Client.connect(srv.wsUrl);
    assert.equal((await t.request({ type: 'hello', ticket: ticket.json.ticket })).type, 'ack');
    assert.equal((await a.hello(tokenOf(invites.partner_a))).ack.type, 'ack');
    assert.equal((await b.hello(tokenOf(invites.partner_b))).ack.type, 'ack');
    // Something is said, so there is something to erase.
    await startSession(t, a, b);
    const secret = 'the words only this couple said';
    const note = await t.request({ type: 'note', text: secret });
    assert.equal(note.type, 'ack', JSON.stringify(note));

    // A foreign therapist cannot erase it, nor see it: 404, nothing changes.
    const foreign = await request(srv, 'POST', `/api/rooms/${room.id}/erase`, { cookie: sam, json: { confirm: room.id } });
    assert.equal(foreign.status, 404, foreign.text);
    assert.equal(a.closeInfo, undefined, 'a foreign erase closes nobody');
    // Without the id typed again, nothing happens either.
    const unconfirmed = await request(srv, 'POST', `/api/rooms/${room.id}/erase`, { cookie: dana, json: { confirm: 'r-something-else' } });
    assert.equal(unconfirmed.status, 400, unconfirmed.text);
    const anon = await request(srv, 'POST', `/api/rooms/${room.id}/erase`, { json: { confirm: room.id } });
    assert.equal(anon.status, 401);
    assert.equal(a.closeInfo, undefined);

    // The erase itself (a commit in flight answers 503: try again).
    let erased;
    for (let i = 0; i < 10; i++) {
      erased = await request(srv, 'POST', `/api/rooms/${room.id}/erase`, { cookie: dana, json: { confirm: room.id } });
      if (erased.status !== 503) break;
      assert.equal(erased.headers['retry-after'], '1');
      await sleep(200);
    }
    assert.equal(erased.status, 200, erased.text);
    assert.equal(erased.json.erased, room.id);
    assert.ok(erased.json.links_revoked >= 2, JSON.stringify(erased.json));
    await expectErased(a, 'partner_a');
    await expectErased(b, 'partner_b');
    await expectErased(t, 'the therapist');

    const gone = await request(srv, 'GET', `/api/rooms/${room.id}`, { cookie: dana });
    assert.equal(gone.status, 404, gone.text);
    const log = await request(srv, 'GET', `/api/rooms/${room.id}/log`, { cookie: dana });
    assert.equal(log.status, 404, log.text);
    const list = await request(srv, 'GET', '/api/rooms', { cookie: dana });
    assert.equal(list.status, 200);
    assert.ok(!list.json.some((r) => r.id === room.id), 'off the dashboard');
    // A partner's link: "this invitation is not valid".
    const { c: again, reply } = await helloWith(srv, { token: tokenOf(invites.partner_a) });
    assert.equal(reply.type, 'error');
    assert.equal(reply.code, 'bad_token');
    await again.closed;
    // Erasing again finds no room.
    const twice = await request(srv, 'POST', `/api/rooms/${room.id}/erase`, { cookie: dana, json: { confirm: room.id } });
    assert.equal(twice.status, 404, twice.text);

    // The audit log says that it happened, by whom; not what it held.
    const mine = await auditOf(srv, dana);
    assert.equal(mine[0].action, 'erased');
    assert.equal(mine[0].room, room.id);
    assert.equal(mine[0].id, erased.json.audit_id);
    assert.ok(mine.some((e) => e.action === 'created' && e.room === room.id));
    assert.ok(mine.some((e) => e.action === 'opened' && e.room === room.id), 'the live view was opened');
    assert.ok(!JSON.stringify(mine).includes(secret));

    // No byte of what was said is left in the data directory (the server's
    // own log lines never had it).
    assert.ok(!dirBytes(dir).includes(Buffer.from(secret)), 'the note is nowhere in the data directory');
    assert.ok(!srv.logs.some((l) => JSON.stringify(l).includes(secret)));
    assert.ok(srv.logs.some((l) => l.event === 'room_erased' && l.room === room.id && l.by === 'dana'));
  });

  test('attune room erase in another process: the server closes the live room within seconds', async () => {
    const made = attune(['room', 'create', '--data', dir, '--owner', 'dana']);
    assert.equal(made.code, 0, made.stderr);
    const room = /created room (\S+)/.exec(made.stderr)[1];
    const links = Object.fromEntries(made.stdout.trim().split('\n').map((l) => l.split(' ').slice(1)));
    const a = await Client.connect(srv.wsUrl);
    assert.equal((await a.hello(tokenOf(links.partner_a))).ack.type, 'ack');
    const shown = await request(srv, 'GET', `/api/rooms/${room}`, { cookie: dana });
    assert.equal(shown.status, 200);

    // Asked to type the id: a wrong one erases nothing.
    const wrong = attune(['room', 'erase', room, '--data', dir], 'not-the-id\n');
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(wrong.stderr, /nothing was erased/);
    assert.equal((await request(srv, 'GET', `/api/rooms/${room}`, { cookie: dana })).status, 200);
    const unknown = attune(['room', 'erase', 'r-no-such-room', '--data', dir, '--yes']);
    assert.equal(unknown.code, 2, unknown.stderr);

    const ok = attune(['room', 'erase', room, '--data', dir], `${room}\n`);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`^erased ${room}: key destroyed, events deleted`));
    await expectErased(a, 'partner_a after the command line erased the room', 5000, ['room_erased', 'revoked']);
    assert.equal((await request(srv, 'GET', `/api/rooms/${room}`, { cookie: dana })).status, 404);
    const list = await request(srv, 'GET', '/api/rooms', { cookie: dana });
    assert.ok(!list.json.some((r) => r.id === room));
    const { c: again, reply } = await helloWith(srv, { token: tokenOf(links.partner_b) });
    assert.equal(reply.code, 'bad_token');
    await again.closed;

    // `attune audit` shows the erase as the command line's, and verifies.
    const audit = attune(['audit', '--data', dir, '--room', room]);
    assert.equal(audit.code, 0, audit.stderr);
    assert.match(audit.stdout, /cli:\S+\s+erased\s+/);
    assert.match(audit.stdout, /audit log verified: \d+ entries/);
    // The account's own list has no command-line entries.
    assert.ok(!(await auditOf(srv, dana)).some((e) => e.action === 'erased' && e.room === room));
  });
});
