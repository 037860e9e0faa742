// kill -9 in the middle of a busy multi-room session, then restart: every
// acknowledged event is in the log, the events members saw are exactly the
// stored ones, and each room's live state equals the fold of its log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, createRoom, Client, tempDir, inputFor, actorOf, canonical, verify, sleep,
  startSession, stateAfter,
} from './harness.js';

const ROOMS = Number(process.env.CRASH_ROOMS || 12);
let srv, dir;
before(async () => {
  dir = tempDir('crash');
});
after(async () => {
  await srv?.stop('SIGKILL');
});

test('kill -9 during a busy multi-room session', async () => {
  srv = await startServer({ dataDir: dir, args: ['--rate', '5000', '--burst', '5000'] });
  const rooms = [];
  for (let i = 0; i < ROOMS; i++) rooms.push(createRoom(dir));
  const acked = new Map(); // room -> highest seq acked to the therapist (the log's numbering)
  const seen = new Map(); // room -> Map(seq -> event) as the therapist saw them
  let vocab;
  const sessions = await Promise.all(
    rooms.map(async (r) => {
      const t = await Client.connect(srv.wsUrl);
      const a = await Client.connect(srv.wsUrl);
      const b = await Client.connect(srv.wsUrl);
      vocab = (await t.hello(r.tokens.therapist)).ack.vocab;
      await a.hello(r.tokens.partner_a);
      await b.hello(r.tokens.partner_b);
      await startSession(t, a, b);
      acked.set(r.room, 0);
      return { r, t, a, b };
    }),
  );

  // Every room: partners take turns as fast as acks come back, and the
  // therapist writes notes concurrently (several commands in flight).
  let running = true;
  const ack = (room, res) => {
    if (res.type === 'ack' && res.seq) acked.set(room, Math.max(acked.get(room), res.seq));
  };
  const loops = sessions.flatMap(({ r, t, a, b }) => [
    (async () => {
      while (running) {
        const st = t.lastState();
        const actor = actorOf(st);
        if (!actor) break;
        const c = actor === 'partner_a' ? a : b;
        let res;
        const from = t.msgs.length;
        try {
          res = await c.request({ type: 'turn', step: st.step.id, input: inputFor(st.step, vocab) });
        } catch {
          break; // server gone
        }
        // a partner's seq counts in its own audience: wait for the therapist's state instead
        if (res.type === 'ack') await stateAfter(t, from).catch(() => {});
      }
    })(),
    (async () => {
      let n = 0;
      while (running) {
        let res;
        try {
          res = await t.request({ type: 'note', text: `note ${n++}` });
        } catch {
          break;
        }
        ack(r.room, res);
      }
    })(),
  ]);
  await sleep(1500);
  const totalAcked = [...acked.values()].reduce((x, y) => x + y, 0);
  srv.proc.kill('SIGKILL');
  await srv.exited;
  running = false;
  await Promise.race([Promise.all(loops), sleep(3000)]);
  for (const { r, t } of sessions) {
    const m = new Map();
    for (const e of t.events()) m.set(e.seq, e.event);
    seen.set(r.room, m);
  }
  assert.ok(totalAcked > ROOMS * 10, `busy enough: ${totalAcked} acked seqs`);

  // The log after the crash: folds cleanly, and holds every acked event.
  const folded = verify(dir);
  for (const { r } of sessions) {
    const f = folded[r.room];
    assert.ok(f && !f.error, `room ${r.room} folds: ${f && f.error}`);
    assert.ok(f.seq >= acked.get(r.room), `room ${r.room}: log ends at ${f.seq}, acked ${acked.get(r.room)}`);
  }

  // Restart: rooms are folded when first needed (none at start-up); the
  // therapist's hello loads its room, which records the left the crash
  // left unrecorded (stale presence), then the therapist replays from 0 and
  // gets exactly the events it saw before the crash (same seq, same
  // content), then those lefts.
  srv = await startServer({ dataDir: dir });
  assert.ok(srv.logs.some((l) => l.event === 'listening' && l.rooms === 0));
  const after = await Promise.all(
    sessions.map(async ({ r }) => {
      const t = await Client.connect(srv.wsUrl);
      try {
        await t.hello(r.tokens.therapist, 0);
      } catch (e) {
        if (process.env.DEBUG) console.error('hello failed', r.room, t.msgs.length, JSON.stringify(t.msgs.slice(-2)).slice(0,300), t.closeInfo, srv.logs.slice(-5));
        throw e;
      }
      return { r, t };
    }),
  );
  await sleep(300); // let the joins commit and broadcast
  const cleared = new Set(srv.logs.filter((l) => l.event === 'stale_presence_cleared').map((l) => l.room));
  for (const { r } of sessions) assert.ok(cleared.has(r.room), `room ${r.room}: stale presence cleared on load`);
  for (const { r, t } of after) {
    const replay = new Map(t.events().map((e) => [e.seq, e.event]));
    const seqs = t.events().map((e) => e.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), `room ${r.room}: no gap, no duplicate`);
    for (const [seq, ev] of seen.get(r.room)) assert.deepEqual(replay.get(seq), ev, `room ${r.room} seq ${seq}`);
    assert.ok(seqs.length >= folded[r.room].seq);
  }

  // Live state after restart (recovered, then joins and leaves applied
  // incrementally) equals the fold of the log: kill again, fold, compare.
  const lastStates = new Map(after.map(({ r, t }) => [r.room, t.lastState()]));
  srv.proc.kill('SIGKILL');
  await srv.exited;
  const refolded = verify(dir);
  for (const [room, st] of lastStates) {
    assert.equal(refolded[room].seq, st.seq, `room ${room} seq`);
    assert.deepEqual(refolded[room].state, canonical(st), `room ${room} state`);
  }
});
