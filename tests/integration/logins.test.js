// logins.test.js - logins that cannot be turned against their owner
// (issue 10 item 8) against the real server and the real `attune` command:
// failed-login delays per (name, client address) and per address, growing
// and answered 429 + Retry-After; `attune therapist passwd` and
// POST /api/password ending the account's sessions, also in the running
// server when another process made the change; a removed and re-added name
// not inheriting rooms; the absolute session lifetime and idle logoff that
// background reads do not renew; the pre-migration data directory
// (tests/fixtures/store-v0) migrating with its owner's rooms; and the
// dashboard's pushed room updates (GET /api/rooms/events).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startServer, tempDir, sleep, serverBin, ROOT, Client, tokenOf, attune, addAccount, sqliteOnly } from './harness.js';
import { request, loginCookie, login as loginWith, cookieOf as sessionCookie } from './http.js';

const login = (srv, username, password, from) => loginWith(srv, username, password, { from });
const cookieOf = (res) => sessionCookie(res).value;
const me = (srv, cookie) => request(srv, 'GET', '/api/me', { cookie });

// Polls until fn() is truthy or the time is up.
async function until(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out: ${what}`);
    await sleep(50);
  }
}

const PW = { dana: 'dana-long-password', eve: 'eve-long-password-2' };

describe('failed-login limits', () => {
  let srv;
  before(async () => {
    const dir = tempDir('logins-limit');
    addAccount(dir, 'dana', PW.dana);
    addAccount(dir, 'eve', PW.eve);
    srv = await startServer({ dataDir: dir });
  });
  after(async () => {
    await srv?.stop('SIGKILL');
  });

  test('five wrong passwords for dana from one address do not stop her right one from another', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await login(srv, 'dana', `wrong-password-${i}`, '127.0.0.2')).status, 401, `attempt ${i + 1}`);
    const ok = await login(srv, 'dana', PW.dana, '127.0.0.3');
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.name, 'dana');
    // The guessing address itself waits, for dana, even with her right password.
    const held = await login(srv, 'dana', PW.dana, '127.0.0.2');
    assert.equal(held.status, 429);
    assert.equal(held.json.error, 'rate_limited');
    assert.equal(held.headers['set-cookie'], undefined);
  });

  test('the delay grows with each further failure (429 with Retry-After while it runs)', async () => {
    const from = '127.0.0.4';
    for (let i = 0; i < 5; i++) assert.equal((await login(srv, 'eve', `wrong-password-${i}`, from)).status, 401);
    const first = await login(srv, 'eve', 'wrong-again-0', from);
    assert.equal(first.status, 429);
    const wait1 = Number(first.headers['retry-after']);
    assert.ok(wait1 >= 1 && wait1 <= 5, `first delay ${wait1} s`);
    // After the delay one more try is checked (and fails) ...
    await sleep(wait1 * 1000 + 100);
    assert.equal((await login(srv, 'eve', 'wrong-again-1', from)).status, 401);
    // ... and the next delay is twice as long.
    const second = await login(srv, 'eve', PW.eve, from);
    assert.equal(second.status, 429);
    const wait2 = Number(second.headers['retry-after']);
    assert.ok(wait2 > 5 && wait2 <= 10, `second delay ${wait2} s (5 s doubled)`);
    // eve from elsewhere is fine all along.
    assert.equal((await login(srv, 'eve', PW.eve, '127.0.0.5')).status, 200);
  });

  test('an address spraying many names is slowed as a whole', async () => {
    const from = '127.0.0.6';
    for (let i = 0; i < 20; i++) assert.equal((await login(srv, `someone${i}`, 'a-guessed-password', from)).status, 401, `name ${i}`);
    const held = await login(srv, 'dana', PW.dana, from);
    assert.equal(held.status, 429);
    assert.ok(Number(held.headers['retry-after']) >= 1);
    assert.equal((await login(srv, 'dana', PW.dana, '127.0.0.7')).status, 200);
  });
});

describe('password changes and removed accounts end sessions', () => {
  let srv, dir;
  before(async () => {
    dir = tempDir('logins-passwd');
    addAccount(dir, 'dana', PW.dana);
    addAccount(dir, 'eve', PW.eve);
    srv = await startServer({ dataDir: dir });
  });
  after(async () => {
    await srv?.stop('SIGKILL');
  });

  test('attune therapist passwd (another process) ends a live session; the new password works', async () => {
    const cookie = await loginCookie(srv, 'dana', PW.dana);
    const other = await loginCookie(srv, 'eve', PW.eve);
    assert.equal((await me(srv, cookie)).status, 200);
    const bad = attune(['therapist', 'passwd', 'nobody', '--data', dir], 'whatever-password\n');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /no account named nobody/);
    assert.equal(attune(['therapist', 'passwd', 'dana', '--data', dir], 'short\n').code, 2, 'too short');
    const r = attune(['therapist', 'passwd', 'dana', '--data', dir], 'dana-new-password\n');
    assert.equal(r.code, 0, r.stderr);
    // The server's once-a-second sweep ends it without any request ...
    await until(() => srv.logs.some((l) => l.event === 'session_ended' && l.name === 'dana' && l.why === 'password_changed'), 3000, 'session_ended logged');
    const after = await me(srv, cookie);
    assert.equal(after.status, 401);
    assert.equal(after.json.error, 'not_authenticated');
    assert.equal((await me(srv, other)).status, 200, "eve's session is untouched");
    assert.equal((await login(srv, 'dana', PW.dana)).status, 401, 'old password');
    assert.equal((await login(srv, 'dana', 'dana-new-password')).status, 200, 'new password');
  });

  test('POST /api/password: the current password is checked; every other session ends; this one goes on', async () => {
    const mine = await loginCookie(srv, 'eve', PW.eve);
    const elsewhere = await loginCookie(srv, 'eve', PW.eve);
    const wrong = await request(srv, 'POST', '/api/password', { cookie: mine, json: { current_password: 'not-it-at-all', new_password: 'eve-new-password' } });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.json.error, 'bad_credentials');
    const weak = await request(srv, 'POST', '/api/password', { cookie: mine, json: { current_password: PW.eve, new_password: 'short' } });
    assert.equal(weak.status, 400);
    assert.equal(weak.json.error, 'bad_password');
    assert.match(weak.json.message, /at least 10 characters/);
    assert.equal((await request(srv, 'POST', '/api/password', { json: { current_password: PW.eve, new_password: 'eve-new-password' } })).status, 401, 'needs a session');
    const ok = await request(srv, 'POST', '/api/password', { cookie: mine, json: { current_password: PW.eve, new_password: 'eve-new-password' } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.name, 'eve');
    const fresh = cookieOf(ok);
    assert.notEqual(fresh, mine);
    assert.equal((await me(srv, fresh)).status, 200, 'the page that changed it keeps working');
    assert.equal((await me(srv, mine)).status, 401, 'its old cookie ended');
    assert.equal((await me(srv, elsewhere)).status, 401, 'other sessions ended');
    assert.equal((await login(srv, 'eve', PW.eve)).status, 401);
    assert.equal((await login(srv, 'eve', 'eve-new-password')).status, 200);
  });

  test('a removed then re-added name does not inherit the rooms, and its old session ends', async () => {
    addAccount(dir, 'finn', 'finn-long-password');
    const cookie = await loginCookie(srv, 'finn', 'finn-long-password');
    const created = await request(srv, 'POST', '/api/rooms', { cookie, json: { exercise: 'enactment' } });
    assert.equal(created.status, 201, created.text);
    const roomId = created.json.room.id;
    assert.deepEqual((await request(srv, 'GET', '/api/rooms', { cookie })).json.map((r) => r.id), [roomId]);
    assert.equal(attune(['therapist', 'remove', 'finn', '--data', dir]).code, 0);
    addAccount(dir, 'finn', 'finn-other-password');
    assert.equal((await me(srv, cookie)).status, 401, 'the removed account\'s session ended');
    const again = await loginCookie(srv, 'finn', 'finn-other-password');
    const list = await request(srv, 'GET', '/api/rooms', { cookie: again });
    assert.equal(list.status, 200);
    assert.deepEqual(list.json, [], 'the new finn has no rooms');
    assert.equal((await request(srv, 'GET', `/api/rooms/${roomId}`, { cookie: again })).status, 404);
  });
});

describe('session lifetime and idle logoff', () => {
  let srv;
  before(async () => {
    const dir = tempDir('logins-life');
    addAccount(dir, 'dana', PW.dana);
    srv = await startServer({ dataDir: dir, args: ['--session-idle', '2', '--session-lifetime', '4'] });
  });
  after(async () => {
    await srv?.stop('SIGKILL');
  });

  test('--session-lifetime is in --help with its 12 h default', () => {
    const r = spawnSync(serverBin(), ['--help'], { encoding: 'utf8' });
    assert.match(r.stdout, /--session-lifetime SECONDS.*\[43200\]/);
  });

  test('background reads do not renew a session: it ends after the idle time', async () => {
    const cookie = await loginCookie(srv, 'dana', PW.dana);
    const t0 = Date.now();
    // The dashboard's kind of traffic: summaries and me, every 0.4 s.
    let status = 200;
    while (status === 200 && Date.now() - t0 < 5000) {
      status = (await request(srv, 'GET', '/api/rooms', { cookie })).status;
      if (status === 200) status = (await me(srv, cookie)).status;
      await sleep(400);
    }
    const lasted = Date.now() - t0;
    assert.equal(status, 401);
    assert.ok(lasted >= 1500 && lasted < 3500, `ended after ${lasted} ms of background reads (idle 2 s)`);
  });

  test("the therapist's own actions renew it, up to the absolute lifetime", async () => {
    const cookie = await loginCookie(srv, 'dana', PW.dana);
    const t0 = Date.now();
    let status = 204;
    while (status === 204 && Date.now() - t0 < 7000) {
      await sleep(500);
      status = (await request(srv, 'POST', '/api/activity', { cookie })).status;
    }
    const lasted = Date.now() - t0;
    assert.equal(status, 401);
    assert.ok(lasted >= 3500 && lasted < 5500, `ended after ${lasted} ms of activity (lifetime 4 s, idle 2 s)`);
  });

  test('the sweep ends an idle session without a request', async () => {
    await loginCookie(srv, 'dana', PW.dana);
    const since = srv.logs.length;
    await until(() => srv.logs.slice(since).some((l) => l.event === 'session_ended' && l.why === 'idle'), 4000, 'idle end logged');
  });
});

describe('a data directory from before account ids (tests/fixtures/store-v0)', { skip: sqliteOnly("it migrates an old SQLite data directory (tests/fixtures/store-v0)") }, () => {
  let srv;
  before(async () => {
    const dir = tempDir('logins-v0');
    fs.cpSync(path.join(ROOT, 'tests/fixtures/store-v0/data'), dir, { recursive: true });
    srv = await startServer({ dataDir: dir });
  });
  after(async () => {
    await srv?.stop('SIGKILL');
  });

  test('migrates: dana logs in with her password and sees her two rooms', async () => {
    const cookie = await loginCookie(srv, 'dana', 'correct horse battery');
    const mine = await me(srv, cookie);
    assert.equal(mine.json.kind, 'therapist');
    const rooms = await request(srv, 'GET', '/api/rooms', { cookie });
    assert.equal(rooms.status, 200, rooms.text);
    assert.equal(rooms.json.length, 2, JSON.stringify(rooms.json));
    for (const r of rooms.json) assert.equal((await request(srv, 'GET', `/api/rooms/${r.id}`, { cookie })).status, 200);
    const list = attune(['therapist', 'list', '--data', srv.dataDir]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^dana\s+therapist\s+\d{4}-/m);
  });
});

// GET /api/rooms/events as a reader of server-sent events: `events` collects
// {event, data} as they come, `ended` resolves when the server closes it.
function openEvents(srv, cookie) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: srv.port, path: '/api/rooms/events', headers: cookie ? { cookie: `attune_session=${cookie}` } : {}, agent: false },
      (res) => {
        const stream = { status: res.statusCode, headers: res.headers, events: [], comments: 0, req };
        let buf = '';
        stream.ended = new Promise((done) => res.on('close', () => done(Date.now())));
        res.setEncoding('utf8');
        res.on('data', (d) => {
          buf += d;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (block.startsWith(':')) {
              stream.comments++;
              continue;
            }
            const ev = {};
            for (const line of block.split('\n')) {
              const c = line.indexOf(': ');
              ev[line.slice(0, c)] = line.slice(c + 2);
            }
            stream.events.push({ event: ev.event, data: ev.data === undefined ? undefined : JSON.parse(ev.data), at: Date.now() });
          }
        });
        resolve(stream);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('pushed room updates (GET /api/rooms/events)', () => {
  let srv, dir;
  before(async () => {
    dir = tempDir('logins-events');
    addAccount(dir, 'dana', PW.dana);
    addAccount(dir, 'eve', PW.eve);
    srv = await startServer({ dataDir: dir });
  });
  after(async () => {
    await srv?.stop('SIGKILL');
  });

  test('needs a session; sends the list at once, a new room, and a partner joining; renews nothing', async () => {
    const none = await openEvents(srv);
    assert.equal(none.status, 401);
    const cookie = await loginCookie(srv, 'dana', PW.dana);
    const expiresBefore = (await me(srv, cookie)).json.expires_at;
    const s = await openEvents(srv, cookie);
    assert.equal(s.status, 200);
    assert.match(s.headers['content-type'], /^text\/event-stream/);
    assert.equal(s.headers['cache-control'], 'no-store');
    await until(() => s.events.length >= 1, 2000, 'the first list');
    assert.deepEqual(s.events[0], { event: 'rooms', data: [], at: s.events[0].at });
    // eve's stream is about eve's rooms only.
    const eve = await openEvents(srv, await loginCookie(srv, 'eve', PW.eve));
    await until(() => eve.events.length >= 1, 2000, "eve's first list");

    const created = await request(srv, 'POST', '/api/rooms', { cookie, json: { exercise: 'enactment' } });
    assert.equal(created.status, 201, created.text);
    const roomId = created.json.room.id;
    const withRoom = await until(() => s.events.find((e) => e.data?.some((r) => r.id === roomId)), 3000, 'the new room pushed');
    assert.equal(withRoom.data[0].present.partner_a, false);

    const partner = await Client.connect(srv.wsUrl);
    const t0 = Date.now();
    const hello = await partner.hello(tokenOf(created.json.invites.partner_a));
    assert.equal(hello.ack.type, 'ack', JSON.stringify(hello.ack));
    const joined = await until(() => s.events.find((e) => e.data?.[0]?.present?.partner_a === true), 3000, 'partner A joining pushed');
    assert.ok(joined.at - t0 < 2000, `pushed ${joined.at - t0} ms after the hello`);
    assert.deepEqual(eve.events.map((e) => e.data), [[]], "eve heard nothing of dana's room");
    // The list as GET /api/rooms has it.
    const list = await request(srv, 'GET', '/api/rooms', { cookie });
    assert.deepEqual(list.json.map((r) => r.id), joined.data.map((r) => r.id));
    assert.equal((await me(srv, cookie)).json.expires_at > expiresBefore, true, 'the POST renewed it');
    const expiresNow = (await me(srv, cookie)).json.expires_at;
    await sleep(300);
    assert.equal((await me(srv, cookie)).json.expires_at, expiresNow, 'the stream renews nothing');
    partner.ws.close();
    s.req.destroy();
    eve.req.destroy();
  });

  test('the stream closes when its session ends: logout, and a password change from the CLI', async () => {
    const cookie = await loginCookie(srv, 'dana', PW.dana);
    const s = await openEvents(srv, cookie);
    await until(() => s.events.length >= 1, 2000, 'the first list');
    const t0 = Date.now();
    await request(srv, 'POST', '/api/logout', { cookie });
    const ended = await Promise.race([s.ended, sleep(3000).then(() => null)]);
    assert.ok(ended, 'closed at logout');
    assert.ok(ended - t0 < 1000, `closed ${ended - t0} ms after the logout`);

    const again = await loginCookie(srv, 'dana', PW.dana);
    const s2 = await openEvents(srv, again);
    await until(() => s2.events.length >= 1, 2000, 'the first list');
    const r = attune(['therapist', 'passwd', 'dana', '--data', dir], 'dana-changed-password\n');
    assert.equal(r.code, 0, r.stderr);
    const t1 = Date.now();
    const ended2 = await Promise.race([s2.ended, sleep(4000).then(() => null)]);
    assert.ok(ended2, 'closed after the password change, without any request');
    assert.ok(ended2 - t1 < 2500, `closed ${ended2 - t1} ms after attune therapist passwd`);
  });
});
