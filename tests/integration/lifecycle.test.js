// The server's life around the rooms: --demo prints the same invitations on
// every run, the detector's clock raises a silence suspicion (for the
// therapist only), a slow reader is
// cut off (1008, left slow_reader) without hurting the room, and SIGTERM
// records the leaves, says bye (shutdown, 1001), flushes and exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, createRoom, Client, tempDir, sleep, httpGet, tokenOf, verify,
  protocolDirCopy, withoutStepSilence, startSession,
} from './harness.js';

test('--demo prints the same three invitations on every run', async () => {
  const dir = tempDir('demo');
  const lines = [];
  for (let run = 0; run < 2; run++) {
    const srv = await startServer({ dataDir: dir, args: ['--demo'] });
    const deadline = Date.now() + 5000;
    while (srv.stdout.length < 3 && Date.now() < deadline) await sleep(20);
    lines.push(srv.stdout.slice(0, 3));
    const roles = srv.stdout.slice(0, 3).map((l) => l.split(' ')[1]);
    assert.deepEqual(roles, ['partner_a', 'partner_b', 'therapist']);
    for (const l of srv.stdout.slice(0, 3)) {
      assert.match(l, /^invite \w+ http:\/\/127\.0\.0\.1:\d+\/\?room=demo-[A-Za-z0-9_-]+#token=[A-Za-z0-9_.-]+$/);
      const c = await Client.connect(srv.wsUrl);
      const { ack } = await c.hello(tokenOf(l));
      assert.equal(ack.type, 'ack');
      assert.equal(ack.exercise.id, 'enactment');
      await c.close();
    }
    assert.equal((await srv.stop()).code, 0);
  }
  const strip = (ls) => ls.map((l) => l.replace(/:\d+\//, ':PORT/'));
  assert.deepEqual(strip(lines[0]), strip(lines[1]));
  assert.equal(Object.keys(verify(dir)).length, 1, 'one demo room, reused');
});

test('silence detector fires from the room timer', async () => {
  const dir = tempDir('silence');
  const proto = protocolDirCopy(withoutStepSilence());
  const srv = await startServer({ dataDir: dir, args: ['--silence-ms', '400', '--protocol-dir', proto] });
  const room = createRoom(dir, 'enactment', ['--protocol-dir', proto]);
  const t = await Client.connect(srv.wsUrl);
  await t.hello(room.tokens.therapist);
  const a = await Client.connect(srv.wsUrl);
  const b = await Client.connect(srv.wsUrl);
  await a.hello(room.tokens.partner_a);
  await b.hello(room.tokens.partner_b);
  const started = Date.now();
  await startSession(t, a, b);
  const frames = [a.msgs.length, b.msgs.length];
  const ev = await t.waitFor((m) => m.type === 'event' && m.event.type === 'rupture_suspected');
  const waited = Date.now() - started;
  assert.equal(ev.event.rupture.marker, 'silence');
  assert.equal(ev.event.by, 'system');
  assert.ok(waited >= 350 && waited < 2000, `silence suspicion after ${waited} ms`);
  await sleep(600);
  assert.equal(t.events().filter((e) => e.event.type === 'rupture_suspected').length, 1, 'once per step');
  assert.ok(!t.events().some((e) => e.event.type === 'rupture_opened'), 'the detector opens no rupture');
  // Partners receive nothing at all for it: no event, no state.
  assert.deepEqual([a.msgs.length, b.msgs.length], frames);
  // The therapist confirms it: now it is a rupture everyone sees.
  const c = await t.request({ type: 'rupture_confirm', suspicion_id: ev.event.rupture.id });
  assert.equal(c.type, 'ack', JSON.stringify(c));
  const opened = await a.waitFor((m) => m.type === 'event' && m.event.type === 'rupture_opened');
  assert.equal(opened.event.rupture.marker, 'silence');
  assert.equal(opened.event.by, 'therapist');
  assert.ok(!('evidence' in opened.event.rupture));
  await srv.stop('SIGKILL');
});

test('a slow reader is cut off (1008, left slow_reader); the room goes on', async () => {
  const dir = tempDir('slow');
  const srv = await startServer({
    dataDir: dir,
    // (the log's limits off: the therapist writes notes until the reader
    // falls behind; the observer's left recorded at once, not after the
    // presence window)
    args: ['--max-queue-bytes', '65536', '--rate', '100000', '--burst', '100000',
      '--link-events-per-minute', '0', '--room-events-per-minute', '0', '--presence-debounce-ms', '0'],
  });
  const room = createRoom(dir);
  const t = await Client.connect(srv.wsUrl);
  await t.hello(room.tokens.therapist);
  const slow = await Client.connect(srv.wsUrl);
  await slow.hello(room.tokens.observer);
  slow.ws._socket.pause(); // stop reading: the kernel buffers fill, then our queue
  const text = 'n'.repeat(3900);
  let left = null;
  for (let i = 0; i < 3000 && !left; i++) {
    const r = await t.request({ type: 'note', text });
    assert.equal(r.type, 'ack');
    left = t.events().find((e) => e.event.type === 'left' && e.event.by === 'observer');
  }
  assert.ok(left, 'observer left');
  assert.equal(left.event.reason, 'slow_reader');
  const m = await httpGet(`${srv.httpUrl}/metrics`);
  assert.match(m.text, /attune_slow_reader_closes_total 1/);
  slow.ws._socket.resume();
  const closed = await slow.closed;
  assert.equal(closed.code, 1008);
  // The room is fine and the observer can come back and resume. (Nothing in
  // this room is hidden from observers, so their numbering is the log's.)
  const back = await Client.connect(srv.wsUrl);
  const lastSeen = slow.events().at(-1)?.seq ?? 0;
  await back.hello(room.tokens.observer, lastSeen);
  const joined = await t.waitFor((m) => m.type === 'event' && m.event.type === 'joined' && m.seq > left.seq);
  await back.waitState((s) => s.seq >= joined.seq);
  const seqs = back.events().map((e) => e.seq);
  assert.equal(seqs[0], lastSeen + 1);
  assert.equal(seqs.at(-1), joined.seq);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => lastSeen + 1 + i));
  await srv.stop('SIGKILL');
});

test('SIGTERM: left recorded, bye shutdown + 1001, flushed, exit 0', async () => {
  const dir = tempDir('term');
  const srv = await startServer({ dataDir: dir });
  const room = createRoom(dir);
  const t = await Client.connect(srv.wsUrl);
  await t.hello(room.tokens.therapist);
  const a = await Client.connect(srv.wsUrl);
  await a.hello(room.tokens.partner_a);
  const r = await a.request({ type: 'consent', accept: true });
  assert.equal(r.type, 'ack');
  const exit = await srv.stop('SIGTERM');
  assert.equal(exit.code, 0);
  for (const c of [t, a]) {
    const closed = await c.closed;
    assert.equal(closed.code, 1001);
    assert.deepEqual(c.msgs.at(-1), { type: 'bye', reason: 'shutdown' });
  }
  const f = verify(dir)[room.room];
  assert.ok(f.seq > r.seq, 'leaves recorded after the last command');
  assert.equal(f.state.present.therapist, false);
  assert.equal(f.state.present.partner_a, false);
  assert.equal(f.state.consent.partner_a, true);
  assert.ok(srv.logs.some((l) => l.event === 'stopped'));
});

test('a failed commit: internal to the sender, nothing visible, room rebuilt from the log', async () => {
  const dir = tempDir('storefail');
  // Batches: therapist joined (1), partner_a joined (2), consent (3) fails.
  const srv = await startServer({ dataDir: dir, args: ['--test-fail-store-batch', '3'] });
  const room = createRoom(dir);
  const t = await Client.connect(srv.wsUrl);
  await t.hello(room.tokens.therapist);
  await t.waitFor((m) => m.type === 'event' && m.event.type === 'joined');
  const a = await Client.connect(srv.wsUrl);
  await a.hello(room.tokens.partner_a);
  const before = await t.waitState((s) => s.present.partner_a === true);
  const failed = await a.request({ type: 'consent', accept: true });
  assert.equal(failed.type, 'error');
  assert.equal(failed.code, 'internal');
  await sleep(200);
  assert.ok(!t.events().some((e) => e.event.type === 'consented'), 'nothing reached the room');
  assert.equal(t.lastState().consent.partner_a, false);
  // Memory was rebuilt from the log: the retry gets the seq the failed one
  // would have had (in partner A's numbering: the next after its last state).
  const aBefore = a.lastState().seq;
  const retry = await a.request({ type: 'consent', accept: true });
  assert.equal(retry.type, 'ack');
  assert.equal(retry.seq, aBefore + 1);
  assert.ok(before.seq >= aBefore);
  await t.waitState((s) => s.consent.partner_a === true);
  assert.ok(srv.logs.some((l) => l.event === 'store_commit_failed'));
  assert.ok(srv.logs.some((l) => l.event === 'room_rebuilt'));
  const last = t.lastState();
  await srv.stop('SIGKILL');
  const f = verify(dir)[room.room];
  assert.equal(f.seq, last.seq);
});
