// A full enactment over real WebSockets: both partners' rounds and the swap,
// the therapist and an observer watching, role filtering, wrong roles and
// illegal turns rejected, a reopened tab replacing the old connection (a
// `replaced` event for the therapist), and at the end the live state equals
// the fold of the stored log. Seqs are per role (protocol 2): the therapist's
// are the log's, each partner's count only what it sees.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, createRoom, Client, tempDir, inputFor, actorOf, canonical, verify, sleep,
  checkinAnswers, stateAfter,
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

function assertSeqsContiguous(client, label) {
  const seqs = client.events().map((e) => e.seq);
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1), `${label}: seqs 1, 2, 3, ...`);
}

test('full enactment with therapist and observer watching', async () => {
  const therapist = await Client.connect(srv.wsUrl);
  const th = await therapist.hello(room.tokens.therapist);
  assert.equal(th.ack.type, 'ack');
  assert.equal(th.ack.role, 'therapist');
  assert.equal(th.ack.exercise.id, 'enactment');
  assert.equal(th.ack.protocol, 2);
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
  await therapist.waitState((s) => s.status === 'checking_in');
  // A turn while checking in is refused; both answer the check-in clear.
  const early2 = await a.request({ type: 'turn', step: 'what_happened', input: { what_happened: 'x' } });
  assert.equal(early2.type, 'error');
  for (const p of [a, b]) {
    const r = await p.request({ type: 'checkin', answers: checkinAnswers(th.ack.safety) });
    assert.equal(r.type, 'ack', JSON.stringify(r));
  }
  let state = await therapist.waitState((s) => s.status === 'active');
  assert.ok(therapist.events().some((e) => e.event.type === 'checkin_completed'));
  const firstSpeaker = state.speaker;

  // A therapist note mid-session reaches therapist and observer only.
  const note = await therapist.request({ type: 'note', text: 'private clinical note' });
  assert.equal(note.type, 'ack');
  const noteSeq = note.seq;

  let turns = 0;
  let illegalChecked = false;
  const speakersByRound = {};
  while (true) {
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
    const from = { therapist: therapist.msgs.length, observer: observer.msgs.length, a: a.msgs.length, b: b.msgs.length };
    const own = clients[actor].lastState();
    const ack = await clients[actor].request({ type: 'turn', step: state.step.id, input: inputFor(state.step, vocab) });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.ok(ack.seq > own.seq, `ack seq ${ack.seq} after the actor's last state ${own.seq}`);
    turns++;
    // Every member sees the new state (durable before visible: the ack came
    // after the commit, and so does the broadcast).
    await stateAfter(therapist, from.therapist);
    await stateAfter(observer, from.observer);
    await stateAfter(a, from.a);
    await stateAfter(b, from.b);
    assert.equal(clients[actor].lastState().seq, ack.seq, "the actor's state is at its ack's seq");
    assert.ok(turns < 100, 'session did not end');
  }
  assert.equal(state.ended_reason, 'completed');
  assert.equal(state.rounds, 2);
  assert.equal(speakersByRound[0], firstSpeaker);
  assert.notEqual(speakersByRound[1], firstSpeaker, 'speaker and listener swapped for round 2');
  assert.ok(turns >= 16, `turns ${turns}`);

  // Role filtering: the note event reached therapist and observer, not partners.
  const texts = (c) => c.events().filter((e) => e.event.type === 'note').map((e) => e.event.text);
  assert.ok(texts(therapist).includes('private clinical note'));
  assert.ok(texts(observer).includes('private clinical note'));
  assert.equal(therapist.events().find((e) => e.event.type === 'note').seq, noteSeq);
  for (const p of [a, b])
    for (const e of p.events())
      assert.ok(!['note', 'rupture_suspected', 'rupture_confirmed', 'rupture_dismissed', 'checkin_answered'].includes(e.event.type)
        || (e.event.type === 'checkin_answered' && e.event.by === (p === a ? 'partner_a' : 'partner_b')), e.event.type);
  // Each client saw every event it may see exactly once, in order, numbered
  // 1, 2, 3, ... in its own audience; partners saw fewer than the therapist.
  for (const [label, c] of Object.entries({ therapist, observer, a, b })) assertSeqsContiguous(c, label);
  assert.ok(a.events().length < therapist.events().length);

  // After the end, turns are refused with session_ended; the socket stays.
  const late = await a.request({ type: 'turn', step: 'what_happened', input: { what_happened: 'x' } });
  assert.equal(late.code, 'session_ended');
  assert.equal((await a.request({ type: 'ping' })).type, 'ack');

  // A reopened tab replaces the old connection: bye replaced, close 4409, a
  // `replaced` event (no left/joined) that partner B does not see.
  const before = therapist.events().length;
  const bBefore = b.msgs.length;
  const a2 = await Client.connect(srv.wsUrl);
  const h2 = await a2.hello(room.tokens.partner_a);
  assert.equal(h2.ack.type, 'ack');
  const closed = await a.closed;
  assert.equal(closed.code, 4409);
  assert.ok(a.msgs.some((m) => m.type === 'bye' && m.reason === 'replaced'));
  assert.equal((await a2.request({ type: 'ping' })).type, 'ack');
  const replaced = await therapist.waitFor((m) => m.type === 'event' && m.event.type === 'replaced');
  assert.equal(replaced.event.by, 'partner_a');
  await a2.waitFor((m) => m.type === 'event' && m.event.type === 'replaced');
  await sleep(200);
  assert.deepEqual(therapist.events().slice(before).map((e) => e.event.type), ['replaced'], 'a takeover records one replaced event');
  assert.equal(therapist.lastState().present.partner_a, true);
  assert.equal(b.msgs.length, bBefore, 'partner B receives nothing for it');

  // The live state equals the fold of the log: stop abruptly (so nothing is
  // recorded after the last state) and fold the log.
  const last = therapist.lastState();
  await srv.stop('SIGKILL');
  const folded = verify(dir)[room.room];
  assert.equal(folded.seq, last.seq);
  assert.deepEqual(folded.state, canonical(last));
  assert.match(folded.hash, /^[0-9a-f]{64}$/);
});
