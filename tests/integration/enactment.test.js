// A full enactment over real WebSockets: both partners' rounds and the swap,
// the therapist and an observer watching, role filtering, wrong roles and
// illegal turns rejected, a reopened tab replacing the old connection, and
// at the end the live state equals the fold of the stored log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, createRoom, Client, tempDir, inputFor, actorOf, canonical, verify, sleep,
} from './harness.js';

let srv, dir, room;
before(async () => {
  dir = tempDir('enact');
  srv = await startServer({ dataDir: dir });
  room = createRoom(dir);
});
after(async () => {
  await srv?.stop('SIGKILL');
});

function assertSeqsIncreasing(client, label) {
  const seqs = client.events().map((e) => e.seq);
  for (let i = 1; i < seqs.length; i++)
    assert.ok(seqs[i] > seqs[i - 1], `${label}: seq ${seqs[i]} after ${seqs[i - 1]}`);
}

test('full enactment with therapist and observer watching', async () => {
  const therapist = await Client.connect(srv.wsUrl);
  const th = await therapist.hello(room.tokens.therapist);
  assert.equal(th.ack.type, 'ack');
  assert.equal(th.ack.role, 'therapist');
  assert.equal(th.ack.exercise.id, 'enactment');
  assert.equal(th.ack.protocol, 1);
  const vocab = th.ack.vocab;

  const observer = await Client.connect(srv.wsUrl);
  assert.equal((await observer.hello(room.tokens.observer)).ack.role, 'observer');
  const a = await Client.connect(srv.wsUrl);
  const b = await Client.connect(srv.wsUrl);
  await a.hello(room.tokens.partner_a);
  await b.hello(room.tokens.partner_b);
  const clients = { partner_a: a, partner_b: b, therapist };

  // Wrong roles: therapist cannot consent, observer cannot act, partners
  // cannot steer the session.
  assert.equal((await therapist.request({ type: 'consent', accept: true })).code, 'forbidden');
  assert.equal((await observer.request({ type: 'control', action: 'pause' })).code, 'forbidden');
  assert.equal((await observer.request({ type: 'note', text: 'x' })).code, 'forbidden');
  assert.equal((await a.request({ type: 'control', action: 'advance' })).code, 'forbidden');
  // Before consent a turn is refused; the connection stays open.
  const early = await a.request({ type: 'turn', step: 'what_happened', input: { what_happened: 'x' } });
  assert.equal(early.type, 'error');

  for (const p of [a, b]) {
    const r = await p.request({ type: 'consent', accept: true });
    assert.equal(r.type, 'ack');
    assert.ok(r.seq > 0, 'consent recorded with a seq');
  }
  let state = await therapist.waitState((s) => s.status === 'active');
  const firstSpeaker = state.speaker;

  // A therapist note mid-session reaches therapist and observer only.
  const note = await therapist.request({ type: 'note', text: 'private clinical note' });
  assert.equal(note.type, 'ack');
  const noteSeq = note.seq;

  let turns = 0;
  let illegalChecked = false;
  const speakersByRound = {};
  while (true) {
    state = await therapist.waitState((s) => s.seq >= (state.seq ?? 0), { from: therapist.msgs.length - 1 });
    state = therapist.lastState();
    if (state.status === 'ended') break;
    const actor = actorOf(state);
    assert.ok(actor === 'partner_a' || actor === 'partner_b', `actor ${actor}`);
    speakersByRound[state.round] = state.speaker;
    const other = clients[actor === 'partner_a' ? 'partner_b' : 'partner_a'];
    if (!illegalChecked) {
      // The other partner tries the actor's step: not their turn.
      const bad = await other.request({ type: 'turn', step: state.step.id, input: inputFor(state.step, vocab) });
      assert.equal(bad.code, 'not_your_turn');
      // The actor names a step that is not the current one.
      const wrong = await clients[actor].request({ type: 'turn', step: 'connection', input: { connection: 5 } });
      assert.equal(wrong.type, 'error');
      assert.ok(['invalid_step', 'invalid_input'].includes(wrong.code), wrong.code);
      // Missing required input.
      const missing = await clients[actor].request({ type: 'turn', step: state.step.id, input: {} });
      assert.equal(missing.code, 'invalid_input');
      illegalChecked = true;
    }
    const ack = await clients[actor].request({ type: 'turn', step: state.step.id, input: inputFor(state.step, vocab) });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.ok(ack.seq > state.seq);
    turns++;
    // Every member sees the new state (durable before visible: the ack came
    // after the commit, and so does the broadcast).
    for (const c of [therapist, observer, a, b]) await c.waitState((s) => s.seq >= ack.seq);
    assert.ok(turns < 100, 'session did not end');
  }
  assert.equal(state.ended_reason, 'completed');
  assert.equal(state.rounds, 2);
  assert.equal(speakersByRound[0], firstSpeaker);
  assert.notEqual(speakersByRound[1], firstSpeaker, 'speaker and listener swapped for round 2');
  assert.ok(turns >= 16, `turns ${turns}`);

  // Role filtering: the note event reached therapist and observer, not partners.
  const seqsOf = (c) => new Set(c.events().map((e) => e.seq));
  assert.ok(seqsOf(therapist).has(noteSeq));
  assert.ok(seqsOf(observer).has(noteSeq));
  assert.ok(!seqsOf(a).has(noteSeq) && !seqsOf(b).has(noteSeq));
  for (const p of [a, b])
    for (const e of p.events()) assert.ok(!['note', 'rupture_suspected', 'rupture_dismissed'].includes(e.event.type));
  // Each client saw every event it may see exactly once, in order.
  for (const [label, c] of Object.entries({ therapist, observer, a, b })) assertSeqsIncreasing(c, label);
  const thSeqs = therapist.events().map((e) => e.seq);
  assert.deepEqual(thSeqs, Array.from({ length: thSeqs.length }, (_, i) => i + 1), 'therapist sees every seq');

  // After the end, turns are refused with session_ended; the socket stays.
  const late = await a.request({ type: 'turn', step: 'what_happened', input: { what_happened: 'x' } });
  assert.equal(late.code, 'session_ended');
  assert.equal((await a.request({ type: 'ping' })).type, 'ack');

  // A reopened tab replaces the old connection: bye replaced, close 4409, no
  // left/joined events.
  const before = therapist.events().length;
  const a2 = await Client.connect(srv.wsUrl);
  const h2 = await a2.hello(room.tokens.partner_a);
  assert.equal(h2.ack.type, 'ack');
  const closed = await a.closed;
  assert.equal(closed.code, 4409);
  assert.ok(a.msgs.some((m) => m.type === 'bye' && m.reason === 'replaced'));
  assert.equal((await a2.request({ type: 'ping' })).type, 'ack');
  await sleep(200);
  assert.equal(therapist.events().length, before, 'replacement records no events');
  assert.equal(therapist.lastState().present.partner_a, true);

  // The live state equals the fold of the log: stop abruptly (so nothing is
  // recorded after the last state) and fold the log.
  const last = therapist.lastState();
  await srv.stop('SIGKILL');
  const folded = verify(dir)[room.room];
  assert.equal(folded.seq, last.seq);
  assert.deepEqual(folded.state, canonical(last));
  assert.match(folded.hash, /^[0-9a-f]{64}$/);
});
