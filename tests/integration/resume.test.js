// Reconnect with resume_from mid-session: the replay holds exactly the
// events after it (those the role may see, in the role's own numbering),
// then the stream continues live: nothing missing, nothing twice, even while
// the others keep going.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, createRoom, Client, tempDir, inputFor, actorOf, sleep, startSession, stateAfter } from './harness.js';
import { visibleTo } from './visibility.js';

let srv, dir, room;
before(async () => {
  dir = tempDir('resume');
  srv = await startServer({ dataDir: dir, args: ['--rate', '1000', '--burst', '1000'] });
  room = createRoom(dir);
});
after(async () => {
  await srv?.stop('SIGKILL');
});

const visibleToB = (e) => visibleTo(e.event, 'partner_b');

test('resume_from mid-session: no gap, no duplicate', async () => {
  const therapist = await Client.connect(srv.wsUrl);
  const { ack } = await therapist.hello(room.tokens.therapist);
  const vocab = ack.vocab;
  const a = await Client.connect(srv.wsUrl);
  let b = await Client.connect(srv.wsUrl);
  await a.hello(room.tokens.partner_a);
  await b.hello(room.tokens.partner_b);
  await startSession(therapist, a, b);
  const clients = { partner_a: a, partner_b: b };

  // Play while someone is (or is not) listening; returns the ack seq.
  async function playTurn() {
    const st = therapist.lastState();
    const actor = actorOf(st);
    const c = clients[actor];
    const from = therapist.msgs.length;
    const r = await c.request({ type: 'turn', step: st.step.id, input: inputFor(st.step, vocab) });
    assert.equal(r.type, 'ack', JSON.stringify(r));
    await stateAfter(therapist, from);
    return r.seq;
  }

  for (let i = 0; i < 4; i++) await playTurn();
  const bVisible = therapist.events().filter(visibleToB).length;
  await b.waitState((s) => s.seq >= bVisible);
  const lastSeenByB = b.events().at(-1).seq;
  assert.equal(lastSeenByB, bVisible, "B's seqs count only what B sees");
  const lastSeenByBinLog = therapist.events().filter(visibleToB)[lastSeenByB - 1].seq;

  // partner_b drops off; the room goes on (partner_a's turns as speaker, a
  // therapist note that partner_b must not see).
  await b.close();
  await therapist.waitFor((m) => m.type === 'event' && m.event.type === 'left' && m.event.by === 'partner_b');
  await therapist.request({ type: 'note', text: 'note while b is away' });
  let played = 0;
  while (actorOf(therapist.lastState()) === 'partner_a' && played < 3) {
    await playTurn();
    played++;
  }

  // Reconnect with resume_from while partner_a keeps sending (if it is their
  // turn) and the therapist keeps writing notes: live events interleave with
  // the catch-up.
  b = await Client.connect(srv.wsUrl);
  clients.partner_b = b;
  const helloAt = b.msgs.length;
  b.send({ type: 'hello', token: room.tokens.partner_b, resume_from: lastSeenByB, id: 'h' });
  const busy = (async () => {
    for (let i = 0; i < 5; i++) await therapist.request({ type: 'note', text: `n${i}` });
    await therapist.request({ type: 'control', action: 'pause' });
    await therapist.request({ type: 'control', action: 'resume' });
  })();
  const hAck = await b.waitFor((m) => m.type === 'ack' && m.id === 'h', { from: helloAt });
  assert.ok(hAck.last_seq >= lastSeenByB);
  await busy;
  const finalVisible = therapist.events().filter(visibleToB).length;
  await b.waitState((s) => s.seq >= finalVisible);
  await sleep(100);

  // Expected: every event B may see after the one it saw last, renumbered in
  // B's audience from lastSeenByB + 1.
  const expected = therapist.events().filter((e) => e.seq > lastSeenByBinLog && visibleToB(e))
    .map((e, i) => ({ ...e, seq: lastSeenByB + 1 + i }));
  const got = b.events();
  assert.deepEqual(got.map((e) => e.seq), expected.map((e) => e.seq));
  assert.deepEqual(got, expected, 'same event content as the therapist saw');
  // at least its own joined and the therapist's pause and resume (the notes are hidden)
  assert.ok(got.length >= 3, `replayed/live events ${got.length}`);
  // The ack comes first, and a state only after the catch-up.
  const firstState = b.msgs.findIndex((m) => m.type === 'state');
  const lastReplayed = b.msgs.findIndex((m) => m.type === 'event' && m.seq === hAck.last_seq);
  assert.ok(b.msgs.findIndex((m) => m === hAck) < firstState);
  if (hAck.last_seq > lastSeenByB && lastReplayed >= 0) assert.ok(lastReplayed < firstState);
  // The therapist's private notes never reached partner_b.
  assert.ok(!got.some((e) => e.event.type === 'note'));

  // A second reconnect from 0 replays the whole visible log.
  // (b2 takes b's seat: wait until the therapist has the `replaced` too.)
  const b2 = await Client.connect(srv.wsUrl);
  const tFrom = therapist.msgs.length;
  await b2.hello(room.tokens.partner_b, 0);
  await therapist.waitFor((m) => m.type === 'event' && m.event.type === 'replaced' && m.event.by === 'partner_b', { from: tFrom });
  await b2.waitFor((m) => m.type === 'event' && m.event.type === 'replaced');
  const all = therapist.events().filter(visibleToB).map((e, i) => ({ ...e, seq: i + 1 }))
    .filter((e) => e.seq <= b2.lastState().seq);
  assert.deepEqual(b2.events().filter((e) => e.seq <= b2.lastState().seq), all);
});
