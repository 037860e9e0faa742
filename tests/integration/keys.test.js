// keys.test.js - the key hierarchy with the real server and command:
// `attune keys rotate` while a session runs loses no event, every room opens
// after a restart with the rotated KEK (a room the running server made after
// the rotation too), and the old KEK opens nothing; with --new-kek-file the
// running server keeps serving its rooms but refuses to wrap a new room key
// until it is restarted with the new KEK. Also: the KEK is created beside the
// data directory (0600), never inside it, and the data directory without it
// opens nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, createRoom, Client, tempDir, attune, attuneOk, addAccount, startSession, sleep, serverBin,
  AS_ROOT, cliBin, sqliteOnly, storeArgs, ON_PG, pgUriFor } from './harness.js';
import { request, loginCookie } from './http.js';

const PW = 'a long enough password';
// notes come as fast as acks do: past the default per-connection and
// per-link rates
const FAST = ['--rate', '5000', '--burst', '5000', '--link-events-per-minute', '0', '--room-events-per-minute', '0'];

// attune-server --verify DIR [--kek-file F]: {room: line} (each line says
// the room's seq and state hash, or its error).
function verifyWith(dataDir, kekFile) {
  const kekArgs = kekFile ? ['--kek-file', kekFile] : [];
  const args = ['--verify', dataDir, ...kekArgs, ...storeArgs(dataDir, kekArgs), ...(AS_ROOT ? ['--allow-root'] : [])];
  const r = spawnSync(serverBin(), args, { encoding: 'utf8' });
  const rooms = {};
  for (const line of r.stdout.trim().split('\n').filter(Boolean)) {
    const v = JSON.parse(line);
    rooms[v.room] = v;
  }
  return { code: r.status, rooms, stderr: r.stderr };
}

function rotation(stdout) {
  const n = /rewrapped (\d+) keys/.exec(stdout);
  const oldId = /old KEK id ([0-9a-f]{16})/.exec(stdout);
  const newId = /new KEK id ([0-9a-f]{16})/.exec(stdout);
  assert.ok(n && oldId && newId, stdout);
  assert.notEqual(oldId[1], newId[1]);
  return { n: Number(n[1]), oldId: oldId[1], newId: newId[1] };
}

// A session in `room` whose therapist writes notes as fast as acks come
// back until stop() is called; resolves the highest acked seq.
async function noteStream(srv, room) {
  const t = await Client.connect(srv.wsUrl);
  const a = await Client.connect(srv.wsUrl);
  const b = await Client.connect(srv.wsUrl);
  await t.hello(room.tokens.therapist);
  await a.hello(room.tokens.partner_a);
  await b.hello(room.tokens.partner_b);
  await startSession(t, a, b);
  let running = true;
  let acked = 0;
  let refused = 0;
  let firstRefusal;
  const loop = (async () => {
    for (let n = 0; running; n++) {
      const res = await t.request({ type: 'note', text: `note ${n}` });
      if (res.type === 'ack' && res.seq) acked = Math.max(acked, res.seq);
      else if (!refused++) firstRefusal = res;
    }
  })();
  return {
    acked: () => acked,
    async stop() {
      running = false;
      await loop;
      for (const c of [t, a, b]) await c.close();
      assert.equal(refused, 0, `every note was acked: ${JSON.stringify(firstRefusal)}`);
      return acked;
    },
  };
}

async function waitAcked(stream, atLeast) {
  const deadline = Date.now() + 10000;
  while (stream.acked() < atLeast) {
    assert.ok(Date.now() < deadline, `acks stalled at ${stream.acked()}`);
    await sleep(20);
  }
}

test('keys rotate under a running server: no event lost, every room opens after a restart', async () => {
  const base = tempDir('keys');
  const data = path.join(base, 'data');
  const kek = `${data}.kek`;
  const rooms = [createRoom(data), createRoom(data)];
  // the KEK beside the data directory, 0600, nothing key-like inside it
  assert.equal(fs.statSync(kek).mode & 0o777, 0o600);
  assert.match(fs.readFileSync(kek, 'utf8'), /^[0-9a-f]{64}\n$/);
  if (!ON_PG) {
    // (on PostgreSQL the wrapped keys are in the database)
    assert.ok(fs.existsSync(path.join(data, 'keys.db')));
    assert.equal(fs.statSync(path.join(data, 'keys.db')).mode & 0o777, 0o600);
  }
  addAccount(data, 'tina', PW);

  let srv = await startServer({ dataDir: data, args: FAST });
  const stream = await noteStream(srv, rooms[0]);
  await waitAcked(stream, 20);
  const oldKek = fs.readFileSync(kek, 'utf8');

  const rot = attuneOk(['keys', 'rotate', '--data', data]);
  const { n, oldId, newId } = rotation(rot.stdout);
  assert.ok(n >= rooms.length, `rewrapped ${n} keys for ${rooms.length} rooms`);
  assert.ok(!rot.stdout.includes(oldKek.trim()), 'no key bytes printed');
  const newKek = fs.readFileSync(kek, 'utf8');
  assert.notEqual(newKek, oldKek);
  assert.match(newKek, /^[0-9a-f]{64}\n$/);
  assert.ok(!rot.stdout.includes(newKek.trim()), 'no key bytes printed');
  assert.equal(fs.statSync(kek).mode & 0o777, 0o600);
  assert.ok(!fs.existsSync(`${kek}.new`));

  // the session goes on under the keys the server holds
  const atRotation = stream.acked();
  await waitAcked(stream, atRotation + 20);

  // a room the running server makes now is wrapped under the new KEK
  const cookie = await loginCookie(srv, 'tina', PW);
  const created = await request(srv, 'POST', '/api/rooms', { cookie, json: { exercise: 'enactment' } });
  assert.equal(created.status, 201, created.text);
  const madeAfter = created.json.room.id;
  assert.ok(madeAfter);
  assert.ok(srv.logs.some((l) => l.event === 'listening'));

  const acked = await stream.stop();
  assert.deepEqual(await srv.stop(), { code: 0, signal: null }, 'a clean exit (the sanitizers report at exit)');

  // every room folds with the rotated KEK; room 0 holds every acked note
  const v = verifyWith(data);
  assert.equal(v.code, 0, v.stderr);
  for (const id of [...rooms.map((r) => r.room), madeAfter]) {
    assert.ok(v.rooms[id], `room ${id} listed`);
    assert.equal(v.rooms[id].error, undefined, `room ${id}: ${v.rooms[id].error}`);
  }
  assert.ok(v.rooms[rooms[0].room].seq >= acked, `seq ${v.rooms[rooms[0].room].seq} < acked ${acked}`);

  // and the restarted server serves them
  srv = await startServer({ dataDir: data, args: FAST });
  const t = await Client.connect(srv.wsUrl);
  const hello = await t.hello(rooms[0].tokens.therapist);
  assert.equal(hello.ack.type, 'ack', JSON.stringify(hello.ack));
  assert.equal(hello.state.seq, v.rooms[rooms[0].room].seq);
  await t.close();
  const again = await request(srv, 'POST', '/api/rooms', { cookie: await loginCookie(srv, 'tina', PW), json: { exercise: 'enactment' } });
  assert.equal(again.status, 201, again.text);
  assert.deepEqual(await srv.stop(), { code: 0, signal: null }, 'a clean exit (the sanitizers report at exit)');

  // the old KEK opens nothing now, and says which KEK it would need
  const oldFile = path.join(base, 'old.kek');
  fs.writeFileSync(oldFile, oldKek, { mode: 0o600 });
  const refused = attune(['room', 'list', '--data', data, '--kek-file', oldFile]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`KEK ${oldId} did not wrap.*${newId}`));
});

test('keys rotate --new-kek-file: the old file stays, the running server refuses new rooms until restarted', async () => {
  const base = tempDir('keys-op');
  const data = path.join(base, 'data');
  const kek = `${data}.kek`;
  const room = createRoom(data);
  addAccount(data, 'tina', PW);
  let srv = await startServer({ dataDir: data, args: FAST });
  const stream = await noteStream(srv, room);
  await waitAcked(stream, 10);

  const opKek = path.join(base, 'operator.kek');
  fs.writeFileSync(opKek, `${crypto.randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  const before = fs.readFileSync(kek, 'utf8');
  const rot = attuneOk(['keys', 'rotate', '--data', data, '--new-kek-file', opKek]);
  rotation(rot.stdout);
  assert.match(rot.stdout, /was not rewritten/);
  assert.equal(fs.readFileSync(kek, 'utf8'), before, '--kek-file is left as it was');

  // live rooms keep working (their keys are held); a new room cannot be
  // wrapped under a KEK the server does not have
  const atRotation = stream.acked();
  await waitAcked(stream, atRotation + 10);
  const cookie = await loginCookie(srv, 'tina', PW);
  const created = await request(srv, 'POST', '/api/rooms', { cookie, json: { exercise: 'enactment' } });
  assert.notEqual(created.status, 201);
  await sleep(100);
  assert.ok(
    srv.logs.some((l) => JSON.stringify(l).includes('restart with the new key-encryption key')),
    'the log says what to do',
  );
  const acked = await stream.stop();
  assert.deepEqual(await srv.stop(), { code: 0, signal: null }, 'a clean exit (the sanitizers report at exit)');

  // the old file no longer starts it; the operator's does
  await assert.rejects(startServer({ dataDir: data, args: FAST }), /did not wrap/);
  const v = verifyWith(data, opKek);
  assert.equal(v.code, 0, v.stderr);
  assert.ok(v.rooms[room.room].seq >= acked);
  srv = await startServer({ dataDir: data, args: [...FAST, '--kek-file', opKek] });
  const ok = await request(srv, 'POST', '/api/rooms', { cookie: await loginCookie(srv, 'tina', PW), json: { exercise: 'enactment' } });
  assert.equal(ok.status, 201, ok.text);
  assert.deepEqual(await srv.stop(), { code: 0, signal: null }, 'a clean exit (the sanitizers report at exit)');
});

test('the KEK: never inside the data directory, never recreated over existing keys', { skip: sqliteOnly("it checks the SQLite keyring's default KEK beside the data directory and keys.db; the PostgreSQL keyring takes --kek-file only") }, async () => {
  const base = tempDir('keys-kek');
  const data = path.join(base, 'data');
  createRoom(data);
  // inside the data directory: refused
  const inside = attune(['room', 'list', '--data', data, '--kek-file', path.join(data, 'attune.kek')]);
  assert.equal(inside.code, 1);
  assert.match(inside.stderr, /outside the data directory/);
  // group-readable: refused
  fs.chmodSync(`${data}.kek`, 0o640);
  const loose = attune(['room', 'list', '--data', data]);
  assert.equal(loose.code, 1);
  assert.match(loose.stderr, /group or others/);
  fs.chmodSync(`${data}.kek`, 0o600);
  // the data directory alone (its KEK moved away) opens nothing, and no
  // new KEK is made in its place
  fs.renameSync(`${data}.kek`, path.join(base, 'moved.kek'));
  const alone = attune(['room', 'list', '--data', data]);
  assert.equal(alone.code, 1);
  assert.match(alone.stderr, /nothing in the data directory can be read/);
  assert.ok(!fs.existsSync(`${data}.kek`));
  const r = spawnSync(serverBin(), ['--verify', data, ...(AS_ROOT ? ['--allow-root'] : [])], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.ok(!fs.existsSync(`${data}.kek`));
  // $CREDENTIALS_DIRECTORY (systemd's LoadCredential) is the default when set
  const creds = path.join(base, 'creds');
  fs.mkdirSync(creds, { mode: 0o700 });
  fs.renameSync(path.join(base, 'moved.kek'), path.join(creds, 'attune-kek'));
  const viaCreds = spawnSync(cliBin(), ['room', 'list', '--data', data], {
    encoding: 'utf8',
    env: { ...process.env, CREDENTIALS_DIRECTORY: creds },
  });
  assert.equal(viaCreds.status, 0, viaCreds.stderr);
});

test('on PostgreSQL: --store needs --kek-file, a private one, never recreated over the database\'s keys', { skip: !ON_PG && 'PostgreSQL only (ATTUNE_TEST_STORE=pg)' }, () => {
  const base = tempDir('keys-kek-pg');
  const data = path.join(base, 'data');
  const kek = `${data}.kek`;
  createRoom(data);
  assert.equal(fs.statSync(kek).mode & 0o777, 0o600, 'the KEK the keyring made');
  const bare = ['room', 'list', '--data', data, '--store', pgUriFor(data)];
  const noKek = spawnSync(cliBin(), bare, { encoding: 'utf8' });
  assert.equal(noKek.status, 1);
  assert.match(noKek.stderr, /--store needs --kek-file/);
  const srvNoKek = spawnSync(serverBin(), ['--data', data, '--port', '0', '--store', pgUriFor(data), ...(AS_ROOT ? ['--allow-root'] : [])], { encoding: 'utf8', timeout: 10000 });
  assert.notEqual(srvNoKek.status, 0);
  assert.match(srvNoKek.stderr, /--store needs --kek-file/);
  // group-readable: refused
  fs.chmodSync(kek, 0o640);
  const loose = attune(['room', 'list', '--data', data]);
  assert.equal(loose.code, 1);
  assert.match(loose.stderr, /group or others/);
  fs.chmodSync(kek, 0o600);
  // its KEK moved away, the database opens nothing and no new KEK is made
  fs.renameSync(kek, path.join(base, 'moved.kek'));
  const alone = attune(['room', 'list', '--data', data]);
  assert.equal(alone.code, 1);
  assert.match(alone.stderr, /nothing in the database can be read/);
  assert.ok(!fs.existsSync(kek));
  assert.equal(attune(['room', 'list', '--data', data, '--kek-file', path.join(base, 'moved.kek')]).code, 0);
});
