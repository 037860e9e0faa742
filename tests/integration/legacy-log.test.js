// legacy-log.test.js - a data directory written by the protocol 1 server
// (tests/fixtures/protocol1) opens with the current one: --verify folds it,
// the therapist replays every event as it was recorded, a partner replays
// what it could see then, numbered in its own sequence, and the protocol 1
// forms fold into protocol 2's state (suspicions apart from ruptures).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, startServer, tempDir, verify, Client, sqliteOnly } from './harness.js';

const FIXTURE = path.join(ROOT, 'tests/fixtures/protocol1');
const ROOM = '6etB01hC3x-_Fhvj';

function copyFixture() {
  const dir = tempDir('legacy');
  for (const f of ['attune.db', 'data.key', 'secret.key']) {
    fs.copyFileSync(path.join(FIXTURE, f), path.join(dir, f));
    fs.chmodSync(path.join(dir, f), 0o600);
  }
  return dir;
}

// A token for a role, minted with `attune token` from the fixture's key.
import { execFileSync } from 'node:child_process';
import { serverBin } from './harness.js';
function token(dataDir, role) {
  const attune = path.join(path.dirname(path.dirname(serverBin())), 'client', 'attune');
  const out = execFileSync(attune, ['token', '--data', dataDir, '--room', ROOM, '--role', role], {
    encoding: 'utf8',
  });
  return out.trim();
}

test('a protocol 1 data directory folds, verifies and replays', { skip: sqliteOnly("it opens a protocol 1 SQLite data directory (tests/fixtures/protocol1)") }, async () => {
  const dataDir = copyFixture();
  const rooms = verify(dataDir);
  const r = rooms[ROOM];
  assert.ok(r, 'the room verifies');
  assert.equal(r.seq, 26);
  assert.equal(r.state.status, 'ended');
  // The confirmed suspicion became rupture 1 (same id), repaired by the
  // accepted attempt named by its seq; the dismissed one stays a suspicion.
  const byId = Object.fromEntries(r.state.ruptures.map((x) => [x.id, x]));
  assert.equal(byId[1].status, 'repaired');
  assert.equal(byId[1].confirmed, true);
  assert.equal(byId[1].repair.how, 'repair_attempt');
  assert.equal(byId[1].repair.attempt_id, 1);
  assert.equal(byId[2].marker, 'pause_requested'); // a protocol 1 pause rupture, as recorded
  assert.equal(byId[4].source, 'therapist');
  assert.equal(byId[3], undefined);
  assert.deepEqual(
    r.state.suspicions.map((s) => [s.id, s.status, s.rupture_id]),
    [
      [1, 'confirmed', 1],
      [3, 'dismissed', null],
    ],
  );

  // Its session ended long ago: partners' links into it need a grace that
  // long (the default, 30 minutes, refuses them).
  const srv = await startServer({ dataDir, args: ['--link-grace', String(10 * 365 * 24 * 3600)] });
  try {
    const url = `ws://127.0.0.1:${srv.port}/ws`;
    // The events of the hello replay: between the ack and the state after it.
    const replayed = (c, h) => {
      const end = c.msgs.indexOf(h.state, h.ackIndex);
      return c.msgs.slice(h.ackIndex + 1, end).filter((m) => m.type === 'event');
    };
    const T = await Client.connect(url);
    const t = await T.hello(token(dataDir, 'therapist'));
    assert.equal(t.ack.type, 'ack');
    assert.equal(t.ack.protocol, 2);
    const tEvents = replayed(T, t);
    assert.deepEqual(
      tEvents.map((e) => e.seq),
      Array.from({ length: 26 }, (_, i) => i + 1),
    );
    const types = tEvents.map((e) => e.event.type);
    for (const t of ['rupture_suspected', 'rupture_confirmed', 'rupture_dismissed', 'note', 'repair_accepted'])
      assert.ok(types.includes(t), `the therapist replays ${t}`);

    const A = await Client.connect(url);
    const a = await A.hello(token(dataDir, 'partner_a'));
    const aEvents = replayed(A, a);
    // Numbered 1, 2, 3... in partner A's own sequence.
    assert.deepEqual(
      aEvents.map((e) => e.seq),
      aEvents.map((_, i) => i + 1),
    );
    assert.equal(a.ack.last_seq, aEvents.length);
    assert.equal(a.state.seq, aEvents.length);
    const aTypes = aEvents.map((e) => e.event.type);
    for (const hidden of ['rupture_suspected', 'rupture_dismissed', 'note'])
      assert.ok(!aTypes.includes(hidden), `partner A never replays ${hidden}`);
    // A protocol 1 confirmation went to the partners when it happened.
    assert.ok(aTypes.includes('rupture_confirmed'));
    const hiddenCount = types.filter((x) => ['rupture_suspected', 'rupture_dismissed', 'note'].includes(x)).length;
    // The log's 26 events less the hidden ones, and the therapist's `joined`
    // if it was committed before A's hello.
    assert.ok(aEvents.length === 26 - hiddenCount || aEvents.length === 27 - hiddenCount);
    assert.ok(!('suspicions' in a.state));
    // Resuming in A's numbering replays exactly what follows.
    const A2 = await Client.connect(url);
    const a2 = await A2.hello(token(dataDir, 'partner_a'), aEvents.length - 3);
    assert.deepEqual(
      replayed(A2, a2).slice(0, 3).map((e) => [e.seq, e.event.type]),
      aEvents.slice(-3).map((e) => [e.seq, e.event.type]),
    );
    await Promise.all([T.close(), A.close(), A2.close()]);
  } finally {
    await srv.stop();
  }
});
