// tamper.test.js - tamper evidence (issue 12, store.h): a stored log is
// edited with the sqlite3 command while the server is stopped (one byte of
// an event changed, an event dropped, two swapped, a copy inserted, the
// log cut short). `attune verify` names each room's first bad event and
// what happened to it and exits 1; `attune-server --verify` fails those
// rooms; the server, started again, refuses each broken room (its log says
// why, a partner's hello gets an error) while the untouched room works. On
// PostgreSQL (ATTUNE_TEST_STORE=pg) the same edits are made with psql.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  startServer, createRoom, Client, tempDir, attune, serverBin, startSession, stateAfter, ON_PG, pgSql,
  storeArgs,
} from './harness.js';

const NOTES = 6;
const KINDS = ['edited', 'dropped', 'swapped', 'inserted', 'truncated', 'untouched'];
let srv, dir, db;
const rooms = {};

function sql(statement) {
  if (ON_PG) return pgSql(dir, statement);
  return execFileSync('sqlite3', [db, statement], { encoding: 'utf8' }).trim();
}

function payloadHex(room, seq) {
  const hex = ON_PG ? "upper(encode(payload, 'hex'))" : 'hex(payload)';
  return sql(`SELECT ${hex} FROM events WHERE room = '${room}' AND seq = ${seq}`);
}

function setPayloadHex(room, seq, hex) {
  const value = ON_PG ? `decode('${hex}', 'hex')` : `X'${hex}'`;
  sql(`UPDATE events SET payload = ${value} WHERE room = '${room}' AND seq = ${seq}`);
}

function lastSeq(room) {
  return Number(sql(`SELECT max(seq) FROM events WHERE room = '${room}'`));
}

before(async () => {
  dir = tempDir('tamper');
  db = `${dir}/attune.db`;
  srv = await startServer({ dataDir: dir });
  // Every room has a session with a few therapist notes: events to tamper with.
  for (const kind of KINDS) {
    const r = createRoom(dir);
    rooms[kind] = r;
    const t = await Client.connect(srv.wsUrl);
    const a = await Client.connect(srv.wsUrl);
    const b = await Client.connect(srv.wsUrl);
    await t.hello(r.tokens.therapist);
    await a.hello(r.tokens.partner_a);
    await b.hello(r.tokens.partner_b);
    await startSession(t, a, b);
    for (let i = 0; i < NOTES; i++) {
      const from = t.msgs.length;
      const res = await t.request({ type: 'note', text: `private note ${i}` });
      assert.equal(res.type, 'ack', JSON.stringify(res));
      await stateAfter(t, from);
    }
    await Promise.all([t.close(), a.close(), b.close()]);
  }
  await srv.stop();
  srv = null;
});

after(async () => {
  await srv?.stop('SIGKILL');
});

test('an untampered data directory verifies', () => {
  const r = attune(['verify', '--data', dir]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const kind of KINDS) {
    const line = r.stdout.split('\n').find((l) => l.startsWith(`${rooms[kind].room} `));
    assert.match(line, /^\S+ verified, (\d+) events, head \1 [0-9a-f]{64}$/, line);
  }
});

test('attune verify names the first edited, dropped, reordered, inserted event and a truncated log', () => {
  const n = lastSeq(rooms.edited.room);
  assert.ok(n > 8, `${n} events`);
  // one byte of event 5's sealed payload (in its ciphertext) flipped
  const hex = payloadHex(rooms.edited.room, 5);
  const at = 40; // hex digits: byte 20
  const flipped = (parseInt(hex.slice(at, at + 2), 16) ^ 1).toString(16).padStart(2, '0').toUpperCase();
  setPayloadHex(rooms.edited.room, 5, hex.slice(0, at) + flipped + hex.slice(at + 2));
  // event 4 deleted
  sql(`DELETE FROM events WHERE room = '${rooms.dropped.room}' AND seq = 4`);
  // the payloads of two notes (same type) swapped: the first and the third
  const notes = sql(`SELECT seq FROM events WHERE room = '${rooms.swapped.room}' AND type = 'note' ORDER BY seq`)
    .split('\n')
    .map(Number);
  const [s1, s2] = [notes[0], notes[2]];
  const p1 = payloadHex(rooms.swapped.room, s1);
  const p2 = payloadHex(rooms.swapped.room, s2);
  setPayloadHex(rooms.swapped.room, s1, p2);
  setPayloadHex(rooms.swapped.room, s2, p1);
  // a copy of event 5 (payload, type and link) appended after the last one
  const end = lastSeq(rooms.inserted.room);
  const epoch = ON_PG ? ', epoch' : ''; // PostgreSQL's events carry the writer's epoch
  sql(
    `INSERT INTO events (room, seq${epoch}, type, payload, chain) SELECT room, ${end + 1}${epoch}, type, payload, chain ` +
      `FROM events WHERE room = '${rooms.inserted.room}' AND seq = 5`,
  );
  // the last two events cut off
  const tEnd = lastSeq(rooms.truncated.room);
  sql(`DELETE FROM events WHERE room = '${rooms.truncated.room}' AND seq > ${tEnd - 2}`);

  const r = attune(['verify', '--data', dir, '--all']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const lineOf = (kind) => r.stdout.split('\n').find((l) => l.startsWith(`${rooms[kind].room} `));
  // PostgreSQL's verify (store_pg.c) finds the first bad event but does not
  // yet say which kind of edit it was (SQLite's classify() does): there the
  // seq is checked, the words only on SQLite.
  const verdict = (kind, seq, words) =>
    assert.match(lineOf(kind), ON_PG ? new RegExp(` BROKEN at event ${seq}: `) : new RegExp(` BROKEN at event ${seq}: ${words}`));
  verdict('edited', 5, 'edited: its payload or type was changed');
  verdict('dropped', 4, 'dropped');
  verdict('swapped', s1, `reordered: it holds the payload sealed for event ${s2}`);
  verdict('inserted', end + 1, `inserted: past the room's head \\(event ${end}\\), a copy of event 5`);
  verdict('truncated', tEnd - 1, `truncated: the log ends at event ${tEnd - 2} but its head says ${tEnd}`);
  assert.match(lineOf('untouched'), / verified, \d+ events, head \d+ [0-9a-f]{64}$/);
  // one room at a time: the same verdicts and exit codes
  const one = attune(['verify', '--data', dir, `--room=${rooms.untouched.room}`]);
  assert.equal(one.code, 0, one.stdout + one.stderr);
  const bad = attune(['verify', '--data', dir, `--room=${rooms.swapped.room}`]);
  assert.equal(bad.code, 1);
  if (!ON_PG) assert.match(bad.stdout, /reordered/);
  // what a verdict says is seqs and kinds, never what an event says
  assert.doesNotMatch(r.stdout + r.stderr, /private note/);
});

test('attune-server --verify fails the broken rooms and folds the untouched one', () => {
  const res = spawnSync(serverBin(), ['--verify', dir, ...storeArgs(dir)], { encoding: 'utf8' });
  assert.notEqual(res.status, 0);
  const lines = Object.fromEntries(
    res.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)).map((l) => [l.room, l]),
  );
  for (const kind of KINDS.filter((k) => k !== 'untouched')) {
    assert.ok(lines[rooms[kind].room].error, `${kind}: ${JSON.stringify(lines[rooms[kind].room])}`);
    assert.doesNotMatch(lines[rooms[kind].room].error, /private note/);
  }
  assert.match(lines[rooms.untouched.room].hash, /^[0-9a-f]{64}$/);
});

test('the server refuses a broken room, says why in its log, and serves the others', async () => {
  srv = await startServer({ dataDir: dir });
  for (const kind of KINDS.filter((k) => k !== 'untouched')) {
    const a = await Client.connect(srv.wsUrl);
    const res = await a.request({ type: 'hello', token: rooms[kind].tokens.partner_a });
    assert.equal(res.type, 'error', `${kind}: ${JSON.stringify(res)}`);
    await a.closed;
    const refused = srv.logs.find((l) => l.event === 'room_refused' && l.room === rooms[kind].room);
    assert.ok(refused, `${kind}: no room_refused in the log`);
    assert.match(refused.reason, /event \d+/);
    assert.doesNotMatch(JSON.stringify(refused), /private note/);
  }
  const t = await Client.connect(srv.wsUrl);
  const { ack, state } = await t.hello(rooms.untouched.tokens.therapist);
  assert.equal(ack.type, 'ack');
  assert.equal(state.status, 'active');
  const from = t.msgs.length;
  assert.equal((await t.request({ type: 'note', text: 'after the restart' })).type, 'ack');
  await stateAfter(t, from);
  await t.close();
  assert.ok(srv.alive());
  await srv.stop();
  srv = null;
  // the room that kept working still verifies, with its new event
  const r = attune(['verify', '--data', dir, `--room=${rooms.untouched.room}`]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
});
