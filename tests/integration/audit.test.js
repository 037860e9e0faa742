// audit.test.js - the audit log against the real server and the real
// `attune` command: opening a room (its page, its live view), reading its
// log (replay, report), revoking and reissuing links, inviting and
// removing a supervisor, creating and erasing are recorded with who, what,
// which room and when, and nothing else; repeated opens coalesce; GET
// /api/audit shows an account only its own entries, newest first, a page
// at a time; `attune token revoke` is recorded as the command line's;
// `attune audit` prints the log and verifies it, and names the entry that
// was edited in the database (exit 1), after which the server refuses to
// sign more entries but goes on serving.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, tempDir, sleep, attune, attuneOk, addAccount, ON_PG, pgSql } from './harness.js';
import { request as httpRequest, loginCookie } from './http.js';

const request = (srv, method, urlPath, opts) => httpRequest(srv, method, urlPath, { postBody: '{}', ...opts });

const PW = 'audit-long-password';

async function audit(srv, cookie, query = '') {
  const res = await request(srv, 'GET', `/api/audit${query}`, { cookie });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

// SQL on the store's database: attune.db, or on PostgreSQL the data
// directory's database (harness.js).
function sql(dir, text) {
  if (ON_PG) return pgSql(dir, text);
  return execFileSync('sqlite3', [path.join(dir, 'attune.db'), text], { encoding: 'utf8' });
}

describe('the audit log', () => {
  let srv;
  let dir;
  let dana;
  let sam;
  let room;
  before(async () => {
    dir = tempDir('audit');
    addAccount(dir, 'dana', PW);
    addAccount(dir, 'sam', PW);
    addAccount(dir, 'sup', PW, ['--supervisor']);
    srv = await startServer({ dataDir: dir });
    dana = await loginCookie(srv, 'dana', PW);
    sam = await loginCookie(srv, 'sam', PW);
    const created = await request(srv, 'POST', '/api/rooms', { cookie: dana, json: { exercise: 'enactment' } });
    assert.equal(created.status, 201, created.text);
    ({ room } = created.json);
  });
  after(async () => srv && (await srv.stop()));

  test('what a therapist does to a room is recorded, once per open, with no content', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await request(srv, 'GET', `/api/rooms/${room.id}`, { cookie: dana })).status, 200);
    const ticket = await request(srv, 'POST', `/api/rooms/${room.id}/ticket`, { cookie: dana });
    assert.equal(ticket.status, 200);
    for (let i = 0; i < 2; i++) {
      const page = await request(srv, 'GET', `/api/rooms/${room.id}/log`, { cookie: dana });
      assert.equal(page.status, 200, page.text);
    }
    const later = await request(srv, 'GET', `/api/rooms/${room.id}/log?after=1`, { cookie: dana });
    assert.equal(later.status, 200);
    const re = await request(srv, 'POST', `/api/rooms/${room.id}/invites`, { cookie: dana, json: { role: 'partner_b' } });
    assert.equal(re.status, 200, re.text);
    assert.equal((await request(srv, 'POST', `/api/rooms/${room.id}/observers`, { cookie: dana, json: { name: 'sup' } })).status, 200);
    assert.equal((await request(srv, 'POST', `/api/rooms/${room.id}/observers/remove`, { cookie: dana, json: { name: 'sup' } })).status, 200);
    // A foreign therapist's look is a 404 and no entry of anyone's.
    assert.equal((await request(srv, 'GET', `/api/rooms/${room.id}`, { cookie: sam })).status, 404);

    const { entries, next_before: next } = await audit(srv, dana);
    assert.equal(next, null);
    const mine = entries.map((e) => [e.action, e.room, e.detail]);
    assert.deepEqual(mine, [
      ['observer_removed', room.id, 'sup'],
      ['observer_added', room.id, 'sup'],
      ['link_issued', room.id, 'partner_b'],
      ['links_revoked', room.id, 'partner_b'],
      ['exported', room.id, ''],
      ['opened', room.id, ''],
      ['created', room.id, ''],
    ]);
    // newest first, with times
    for (let i = 1; i < entries.length; i++) assert.ok(entries[i - 1].id > entries[i].id && entries[i - 1].at >= entries[i].at);
    for (const e of entries) assert.ok(Math.abs(e.at - Date.now()) < 60000);
    assert.deepEqual((await audit(srv, sam)).entries, [], "another account sees none of dana's");
  });

  test('GET /api/audit pages, refuses bad queries and needs a login', async () => {
    const all = (await audit(srv, dana)).entries;
    const first = await audit(srv, dana, '?limit=3');
    assert.deepEqual(first.entries, all.slice(0, 3));
    assert.equal(first.next_before, all[2].id);
    const second = await audit(srv, dana, `?limit=3&before=${first.next_before}`);
    assert.deepEqual(second.entries, all.slice(3, 6));
    const rest = await audit(srv, dana, `?limit=3&before=${second.next_before}`);
    assert.deepEqual(rest.entries, all.slice(6));
    assert.equal(rest.next_before, null);
    for (const q of ['?limit=0', '?limit=201', '?before=x', '?before=-1']) {
      const bad = await request(srv, 'GET', `/api/audit${q}`, { cookie: dana });
      assert.equal(bad.status, 400, q);
    }
    assert.equal((await request(srv, 'GET', '/api/audit')).status, 401);
  });

  test('attune token revoke is the command line\'s entry; attune audit prints and verifies the log', async () => {
    const r = attuneOk(['token', 'revoke', '--data', dir, '--room', room.id, '--role', 'partner_a']);
    assert.match(r.stdout, /^revoked 1 /);
    const out = attuneOk(['audit', '--data', dir]);
    const lines = out.stdout.trim().split('\n');
    assert.match(lines[0], /^\s*ID\s+AT \(UTC\)\s+ACTOR\s+ACTION\s+ROOM\s+DETAIL$/);
    assert.ok(lines.some((l) => /\bcli:\S+\s+links_revoked\s+\S+\s+partner_a$/.test(l)), out.stdout);
    assert.ok(lines.some((l) => /\bdana\s+created\s+/.test(l)));
    assert.match(lines.at(-1), /^audit log verified: \d+ entries, head #\d+ [0-9a-f]{16}$/);
    // filters
    const onlySup = attuneOk(['audit', '--data', dir, '--actor', 'dana', '--room', room.id]).stdout.trim().split('\n');
    assert.ok(onlySup.slice(1, -1).every((l) => /\bdana\b/.test(l)) && onlySup.length > 3);
    // and nobody's words: the log's whole text is ids, names and fixed words
    assert.ok(!/words for|Things were hard/.test(out.stdout));
    // The dashboard does not list what the command line did.
    assert.ok(!(await audit(srv, dana)).entries.some((e) => e.action === 'links_revoked' && e.detail === 'partner_a'));
  });

  test('an entry edited in the database: attune audit names it and fails; the server refuses to sign more', async () => {
    const before = attuneOk(['audit', '--data', dir]).stdout;
    const { entries } = await audit(srv, dana);
    const target = entries.find((e) => e.action === 'exported');
    // Someone with write access to attune.db (the triggers dropped first).
    // (on PostgreSQL every open of the log puts its triggers back: dropped
    // again before each edit)
    const dropTriggers = () => sql(dir, ON_PG
      ? 'DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log; DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;'
      : 'DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;');
    dropTriggers();
    sql(dir, `UPDATE audit_log SET room = 'r-someone-else' WHERE id = ${target.id};`);
    const broken = attune(['audit', '--data', dir]);
    assert.equal(broken.code, 1, broken.stdout + broken.stderr);
    assert.match(broken.stdout, new RegExp(`audit log NOT verified: entry ${target.id} does not match its hash`));
    assert.match(broken.stderr, new RegExp(`from entry ${target.id}`));
    assert.notEqual(before, broken.stdout);

    // Recomputing the rest would need the head's key: with every later
    // entry dropped, the head names an entry that is gone.
    dropTriggers();
    sql(dir, `UPDATE audit_log SET room = '${room.id}' WHERE id = ${target.id}; DELETE FROM audit_log WHERE id = (SELECT MAX(id) FROM audit_log);`);
    const cut = attune(['audit', '--data', dir]);
    assert.equal(cut.code, 1);
    assert.match(cut.stdout, /entries at the end were deleted/);

    // The server goes on (the room still opens) and says it could not record.
    const open = await request(srv, 'GET', `/api/rooms/${room.id}/invites`, { cookie: dana });
    assert.equal(open.status, 404, 'no such endpoint (GET): a request that records nothing');
    const page = await request(srv, 'POST', `/api/rooms/${room.id}/invites`, { cookie: dana, json: { role: 'partner_b' } });
    assert.equal(page.status, 200, page.text);
    await sleep(50);
    assert.ok(srv.logs.some((l) => l.event === 'audit_failed' && l.action === 'links_revoked' && /does not match/.test(l.error)), 'audit_failed logged');
    assert.equal(attune(['audit', '--data', dir]).code, 1, 'still broken: nothing was re-signed');
  });
});

describe('the audit log of a fresh data directory', () => {
  test('attune audit on a directory with no entries verifies (empty)', () => {
    const dir = tempDir('audit-empty');
    addAccount(dir, 'dana', PW);
    const out = attuneOk(['audit', '--data', dir]);
    assert.match(out.stdout, /audit log verified: 0 entries, head #0 \(empty\)/);
    if (!ON_PG) assert.ok(fs.existsSync(path.join(dir, 'attune.db')));
  });

  test('attune keys rotate is recorded, and the log still verifies under the new KEK', () => {
    const dir = tempDir('audit-rotate');
    attuneOk(['room', 'create', '--data', dir]);
    attuneOk(['keys', 'rotate', '--data', dir]);
    const out = attuneOk(['audit', '--data', dir]);
    assert.match(out.stdout, /\bcli:\S+\s+keys_rotated\s+-\s+-/);
    assert.match(out.stdout, /audit log verified: 1 entry,/);
  });
});
