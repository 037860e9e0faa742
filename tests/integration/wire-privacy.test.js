// wire-privacy.test.js - hidden means hidden, on the wire (protocol 2).
//
// One session with everything a partner must not see (therapist notes,
// detector suspicions from a blaming turn and two rejected reflections, both
// partners' private lines both ways, ask_therapist, the other partner's
// check-in, a takeover of partner B's seat, a confirmed and a dismissed
// suspicion) and everything they must see (an observer joining, the
// check-in that holds the room until the therapist proceeds, turns, a pause,
// a repair). Every frame each connection receives is recorded, in order and
// as bytes. Then each partner's (and the observer's) wire is compared with
// what it may see, computed here from the therapist's full wire and the
// protocol's visibility table (visibility.js), not from the server:
// - its event frames are exactly the therapist's events it may see,
//   renumbered 1, 2, 3, ... with no gap, byte for byte;
// - it gets a state only after a commit with an event it may see (or at the
//   end of a hello replay), and exactly one per such commit;
// - its acks name only seqs of its own visible events;
// - nothing of the other partner's private line or check-in, no staff-only
//   key anywhere;
// - every event type it received is in the consent notice's `receives` for
//   its role, and `receives` is the visibility table;
// - a reconnect with resume_from = its last seq replays exactly what it
//   missed, in its own numbering.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startServer, createRoom, Client, tempDir, inputFor, actorOf, sleep } from './harness.js';
import { visibleTo, receivesOf, canonicalJson, ROLES } from './visibility.js';

let srv, dir, room;
before(async () => {
  dir = tempDir('privacy');
  srv = await startServer({ dataDir: dir, args: ['--rate', '1000', '--burst', '1000'] });
  room = createRoom(dir);
});
after(async () => {
  await srv?.stop('SIGKILL');
});

// Keys that carry staff-only information or room-log seqs.
const STAFF_KEY = /suspicion|evidence|^next_rupture_id$|^step_started_seq$|^opened_seq$|^raised_seq$|^confirmed$/;

async function connect(label) {
  const c = await Client.connect(srv.wsUrl);
  c.label = label;
  c.raw = [];
  c.ws.on('message', (d) => c.raw.push(d.toString()));
  return c;
}

// Every frame of a role, over all its connections in order: {m, raw, conn}.
function wireOf(conns) {
  return conns.flatMap((c, conn) => c.msgs.map((m, i) => ({ m, raw: c.raw[i], conn })));
}

function keysDeep(v, out = []) {
  if (Array.isArray(v)) for (const x of v) keysDeep(x, out);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) { out.push(k); keysDeep(x, out); }
  return out;
}

function frameKind(m) {
  if (m.type === 'ack') return 'role' in m ? 'ack-hello' : 'ack';
  return m.type;
}

function summary(role, frames) {
  const counts = {};
  const events = {};
  for (const { m } of frames) {
    const k = frameKind(m);
    counts[k] = (counts[k] || 0) + 1;
    if (m.type === 'event') events[m.event.type] = (events[m.event.type] || 0) + 1;
  }
  const list = (o) => Object.entries(o).sort().map(([k, n]) => `${k} ${n}`).join(', ');
  return `${role}: ${frames.length} frames (${list(counts)}); events by type: ${list(events)}`;
}

test('each partner wire carries exactly what that partner may see', async () => {
  const T = await connect('therapist');
  const th = await T.hello(room.tokens.therapist);
  assert.equal(th.ack.protocol, 2);
  const vocab = th.ack.vocab;
  const safety = th.ack.safety;
  const notice = th.ack.consent;
  const A1 = await connect('partner_a');
  const B1 = await connect('partner_b');
  const conns = { partner_a: [A1], partner_b: [B1], therapist: [T], observer: [] };
  const by = (role) => conns[role].at(-1);
  const acks = []; // [role, request, reply]

  // Sends a command and waits until the therapist has the commit's state
  // (the therapist sees every event, so every commit ends in a state there).
  async function act(role, msg, { commits = true } = {}) {
    const from = T.msgs.length;
    const reply = await by(role).request(msg);
    acks.push([role, msg, reply]);
    assert.equal(reply.type, 'ack', `${role} ${JSON.stringify(msg)}: ${JSON.stringify(reply)}`);
    if (commits) await T.waitFor((m) => m.type === 'state', { from });
    return reply;
  }
  const tEvent = (pred, from = 0) => T.waitFor((m) => m.type === 'event' && pred(m.event), { from });
  const lastT = () => T.lastState();

  await A1.hello(room.tokens.partner_a);
  await tEvent((e) => e.type === 'joined' && e.by === 'partner_a');
  await B1.hello(room.tokens.partner_b);
  await tEvent((e) => e.type === 'joined' && e.by === 'partner_b');

  // typing records nothing and is acked without a seq
  const typed = await act('partner_a', { type: 'typing' }, { commits: false });
  assert.equal(typed.seq, undefined, 'typing ack has no seq');

  // consent, then the check-in
  await act('partner_a', { type: 'consent', accept: true });
  await act('partner_b', { type: 'consent', accept: true });
  assert.equal(lastT().status, 'checking_in');

  // the private line, both ways, for both partners, before the check-in
  await act('partner_a', { type: 'private_message', text: 'A-PRIVATE-1 can we talk later?' });
  await act('therapist', { type: 'private_message', to: 'partner_a', text: 'T-TO-A-1 of course' });
  await act('partner_b', { type: 'private_message', to: 'therapist', text: 'B-PRIVATE-1 I am scared' });
  await act('therapist', { type: 'private_message', to: 'partner_b', text: 'T-TO-B-1 thank you for telling me' });
  await act('partner_b', { type: 'ask_therapist' });
  await act('partner_a', { type: 'ask_therapist' });
  await act('therapist', { type: 'note', text: 'T-NOTE-1 watch the check-in' });

  const answer = (hold) => Object.fromEntries(safety.questions.map((q) => [q.id,
    hold ? q.hold[0] : q.options.find((o) => !q.hold.includes(o.id)).id]));
  await act('partner_a', { type: 'checkin', answers: answer(false) });
  await act('partner_b', { type: 'checkin', answers: answer(true), note: 'B-CHECKIN-NOTE not today' });
  let st = lastT();
  assert.equal(st.status, 'checking_in', 'a hold answer keeps the room checking in');
  assert.equal(st.checkin.held, true);
  assert.ok(!T.events().some((e) => e.event.type === 'checkin_completed'), 'no checkin_completed when held');
  await act('therapist', { type: 'control', action: 'proceed' });
  assert.equal(lastT().status, 'active');

  // an observer joins; partners see it
  const O = await connect('observer');
  conns.observer.push(O);
  {
    const from = T.msgs.length;
    await O.hello(room.tokens.observer);
    await tEvent((e) => e.type === 'joined' && e.by === 'observer', from);
    await T.waitFor((m) => m.type === 'state', { from });
  }

  // turns: a blaming first turn, then two rejected reflections and a third that lands
  const BLAME = 'You never listen to me. You always ignore me and it is your fault.';
  let rejections = 0;
  let blamed = false;
  for (let guard = 0; guard < 30; guard++) {
    st = lastT();
    const actor = actorOf(st);
    assert.ok(actor === 'partner_a' || actor === 'partner_b', `actor ${actor} at ${st.step?.id}`);
    const input = inputFor(st.step, vocab);
    if (st.step.id === 'what_happened' && !blamed) {
      input.what_happened = BLAME;
      blamed = true;
    }
    if (st.step.tag === 'reflection_check') input.landed = rejections < 2 ? 'no' : 'yes';
    if (st.step.tag === 'reflection_check' && rejections < 2) rejections++;
    await act(actor, { type: 'turn', step: st.step.id, input });
    if (st.step.id === 'respond') break;
  }
  const suspected = () => T.events().filter((e) => e.event.type === 'rupture_suspected').map((e) => e.event.rupture);
  const blame = suspected().find((s) => s.marker === 'blaming_language');
  const rejected = suspected().find((s) => s.marker === 'reflection_rejected');
  assert.ok(rejected, `two rejected reflections raise a suspicion (got ${JSON.stringify(suspected())})`);
  assert.ok(blame, `the blaming turn raises a suspicion (got ${JSON.stringify(suspected())})`);
  assert.ok(!T.events().some((e) => e.event.type === 'rupture_opened'), 'the detector opened no rupture by itself');

  // a pause is a pause
  await act('partner_b', { type: 'pause_request', note: 'I need a minute' });
  assert.equal(lastT().status, 'paused');
  await act('therapist', { type: 'control', action: 'resume' });

  // the therapist decides: dismiss the blame, confirm the rejected reflections
  await act('therapist', { type: 'rupture_dismiss', suspicion_id: blame.id, note: 'T-DISMISS-NOTE teasing' });
  const confirmFrom = T.msgs.length;
  await act('therapist', { type: 'rupture_confirm', suspicion_id: rejected.id, note: 'T-CONFIRM-NOTE slow down' });
  const opened = await tEvent((e) => e.type === 'rupture_opened', confirmFrom);
  const confirmedTypes = T.msgs.slice(confirmFrom).filter((m) => m.type === 'event').map((m) => m.event.type);
  assert.deepEqual(confirmedTypes, ['rupture_confirmed', 'rupture_opened', 'note']);
  assert.equal(opened.event.by, 'therapist');
  assert.equal(opened.event.rupture.source, 'detector');
  const ruptureId = opened.event.rupture.id;

  // takeover: a second connection with partner B's token
  const bLast = B1.events().at(-1).seq;
  const B2 = await connect('partner_b (2nd device)');
  {
    const from = T.msgs.length;
    await B2.hello(room.tokens.partner_b, bLast);
    const closed = await B1.closed;
    assert.equal(closed.code, 4409);
    assert.deepEqual(B1.msgs.at(-1), { type: 'bye', reason: 'replaced' });
    await tEvent((e) => e.type === 'replaced' && e.by === 'partner_b', from);
    await T.waitFor((m) => m.type === 'state', { from });
    assert.equal(lastT().present.partner_b, true, 'presence stays true on a takeover');
  }
  conns.partner_b.push(B2);

  // a repair between the partners, answered, acknowledged and accepted
  const attempt = await act('partner_a', { type: 'repair_attempt', text: 'I am sorry, I did not hear you', rupture_id: ruptureId });
  const attemptEv = T.events().filter((e) => e.event.type === 'repair_attempt').at(-1).event;
  assert.ok(attempt.seq > 0);
  await act('partner_b', { type: 'repair_reply', attempt_id: attemptEv.attempt_id, reply: 'need_a_moment' });
  await act('therapist', { type: 'repair_reply', attempt_id: attemptEv.attempt_id, reply: 'acknowledged' });
  await act('partner_b', { type: 'repair_accept', attempt_id: attemptEv.attempt_id });
  assert.equal(lastT().ruptures.find((r) => r.id === ruptureId).status, 'repaired');

  // partner A drops off; hidden and visible things happen; A resumes
  const aLast = A1.events().at(-1).seq;
  {
    const from = T.msgs.length;
    await A1.close();
    await tEvent((e) => e.type === 'left' && e.by === 'partner_a', from);
    await T.waitFor((m) => m.type === 'state', { from });
  }
  await act('therapist', { type: 'note', text: 'T-NOTE-2 while A is away' });
  await act('partner_b', { type: 'private_message', text: 'B-PRIVATE-2 while A is away' });
  await act('therapist', { type: 'private_message', to: 'partner_b', text: 'T-TO-B-2 noted' });
  await act('partner_b', { type: 'pause_request' });
  await act('therapist', { type: 'control', action: 'resume' });
  if (actorOf(lastT()) === 'partner_b') {
    st = lastT();
    await act('partner_b', { type: 'turn', step: st.step.id, input: inputFor(st.step, vocab) });
  }
  const A2 = await connect('partner_a (resumed)');
  conns.partner_a.push(A2);
  let a2hello;
  {
    const from = T.msgs.length;
    a2hello = await A2.hello(room.tokens.partner_a, aLast);
    await tEvent((e) => e.type === 'joined' && e.by === 'partner_a', from);
    await T.waitFor((m) => m.type === 'state', { from });
  }
  await act('partner_a', { type: 'private_message', text: 'A-PRIVATE-2 back again' });
  await act('therapist', { type: 'private_message', to: 'partner_a', text: 'T-TO-A-2 welcome back' });
  await act('therapist', { type: 'control', action: 'end' });
  assert.equal(lastT().status, 'ended');
  // after the end a partner records nothing, not even on the private line;
  // the therapist still may
  const late = await by('partner_b').request({ type: 'private_message', text: 'B-PRIVATE-3 after the end' });
  assert.equal(late.code, 'session_ended', JSON.stringify(late));
  await act('therapist', { type: 'private_message', to: 'partner_b', text: 'T-TO-B-3 after the end' });
  await act('partner_a', { type: 'ping' }, { commits: false });
  await act('partner_b', { type: 'ping' }, { commits: false });
  await act('observer', { type: 'ping' }, { commits: false });
  await sleep(300); // anything still in flight would show up as an extra frame

  // ---------------------------------------------------------------- checks
  const tFrames = wireOf([T]);
  const tEvents = tFrames.filter((f) => f.m.type === 'event');
  assert.deepEqual(tEvents.map((f) => f.m.seq), tEvents.map((_, i) => i + 1), "therapist's wire: every room-log seq once");
  // the therapist's commits: runs of events closed by a state
  const commitOf = new Map(); // therapist seq -> commit index
  {
    let commit = 0;
    for (const f of tFrames) {
      if (f.m.type === 'event') commitOf.set(f.m.seq, commit);
      if (f.m.type === 'state') commit++;
    }
  }
  // The server writes frames with sorted keys: the envelope's seq is the
  // member after the event object.
  const SEQ = /,"seq":(\d+),"type":"event"\}$/;
  for (const f of tEvents) assert.match(f.raw, SEQ, 'event frames end ,"seq":N,"type":"event"}');
  const renumber = (raw, seq) => raw.replace(SEQ, `,"seq":${seq},"type":"event"}`);

  // the consent notice: receives is the visibility table, the hash is the notice's
  const { hash, ...unhashed } = notice;
  assert.equal(hash, createHash('sha256').update(canonicalJson(unhashed)).digest('hex'), 'consent.hash');
  for (const role of ROLES)
    assert.deepEqual([...notice.receives[role]].sort(), receivesOf(role).sort(), `receives.${role}`);
  for (const f of tEvents.filter((x) => x.m.event.type === 'consented')) {
    assert.equal(f.m.event.notice_version, notice.version);
    assert.equal(f.m.event.notice_hash, hash);
  }

  const secrets = {
    partner_a: ['A-PRIVATE-1', 'A-PRIVATE-2', 'T-TO-A-1', 'T-TO-A-2'],
    partner_b: ['B-PRIVATE-1', 'B-PRIVATE-2', 'B-PRIVATE-3', 'T-TO-B-1', 'T-TO-B-2', 'T-TO-B-3', 'B-CHECKIN-NOTE'],
    staff: ['T-NOTE-1', 'T-NOTE-2', 'T-DISMISS-NOTE', 'T-CONFIRM-NOTE'],
  };

  const summaries = [];
  for (const role of ['partner_a', 'partner_b', 'observer']) {
    const frames = wireOf(conns[role]);
    const label = (i) => `${role} frame ${i} ${frames[i].raw.slice(0, 160)}`;
    // (1) the events: the therapist's visible ones, renumbered, byte for byte
    const expected = tEvents.filter((f) => visibleTo(f.m.event, role))
      .map((f, i) => ({ tseq: f.m.seq, raw: renumber(f.raw, i + 1) }));
    const got = frames.filter((f) => f.m.type === 'event');
    assert.deepEqual(got.map((f) => f.m.seq), got.map((_, i) => i + 1), `${role}: seqs 1, 2, 3, ... no gap, no repeat`);
    assert.deepEqual(got.map((f) => f.raw), expected.map((e) => e.raw), `${role}: event frames = the therapist's visible events, renumbered`);
    const tseqOf = (seq) => expected[seq - 1].tseq;

    // (2) states: after the hello replay, and once after each commit with a visible event
    let seen = 0; // last own seq received
    let run = []; // own seqs since the last state
    let helloPending = false; // an ack-hello whose replay state has not come yet
    let states = 0;
    let expectedStates = 0;
    for (let i = 0; i < frames.length; i++) {
      const { m } = frames[i];
      if (i > 0 && frames[i].conn !== frames[i - 1].conn) {
        assert.deepEqual(run, [], `${role}: events without a state before reconnecting`);
      }
      if (m.type === 'ack' && 'role' in m) {
        assert.equal(m.protocol, 2);
        assert.equal(m.role, role);
        helloPending = true;
        run = [];
        continue;
      }
      if (m.type === 'event') {
        assert.equal(m.seq, seen + 1, label(i));
        seen = m.seq;
        run.push(m.seq);
        continue;
      }
      if (m.type === 'state') {
        states++;
        assert.equal(m.you, role, label(i));
        assert.equal(m.seq, seen, `${label(i)}: state.seq is the last event it saw, in its own numbering`);
        if (helloPending) {
          // the hello replay: contiguous events up to last_seq (checked below)
          helloPending = false;
          expectedStates++;
        } else {
          assert.ok(run.length > 0, `${label(i)}: a state with no visible event before it`);
          const commits = new Set(run.map((s) => commitOf.get(tseqOf(s))));
          assert.equal(commits.size, 1, `${label(i)}: one state per commit (events of commits ${[...commits]})`);
          const [c] = commits;
          const visibleInCommit = expected.map((e, k) => ({ ...e, seq: k + 1 })).filter((e) => commitOf.get(e.tseq) === c).map((e) => e.seq);
          assert.deepEqual(run, visibleInCommit, `${label(i)}: all of the commit's visible events, then its state`);
          expectedStates++;
        }
        run = [];
        continue;
      }
      if (m.type === 'ack' && m.seq !== undefined) {
        // the command's visible events follow the ack; the ack names the last of them
        let j = i + 1;
        const evs = [];
        while (j < frames.length && frames[j].m.type === 'event') evs.push(frames[j++].m.seq);
        assert.ok(evs.length > 0 && evs.at(-1) === m.seq, `${label(i)}: ack.seq ${m.seq} is not the last visible event of its command (${evs})`);
        assert.equal(frames[j]?.m.type, 'state', `${label(i)}: the ack's events end in a state`);
      }
    }
    assert.deepEqual(run, [], `${role}: events at the end without a state`);
    assert.equal(states, expectedStates);
    // every commit with a visible event while connected gave exactly one state
    const groups = new Set(expected.map((e) => commitOf.get(e.tseq)));
    const replayed = frames.filter((f, i) => f.m.type === 'event' && (() => {
      for (let k = i - 1; k >= 0; k--) {
        if (frames[k].m.type === 'state') return false;
        if (frames[k].m.type === 'ack' && 'role' in frames[k].m) return true;
      }
      return false;
    })()).map((f) => commitOf.get(tseqOf(f.m.seq)));
    const liveGroups = [...groups].filter((g) => !replayed.includes(g));
    const hellos = frames.filter((f) => f.m.type === 'ack' && 'role' in f.m).length;
    assert.equal(states, liveGroups.length + hellos, `${role}: ${states} states for ${liveGroups.length} commits with visible events and ${hellos} hellos`);

    // (3) hello acks: last_seq is the last own seq, and the replay fills exactly the gap
    for (const c of conns[role]) {
      const i = c.msgs.findIndex((m) => m.type === 'ack' && 'role' in m);
      const ack = c.msgs[i];
      const firstState = c.msgs.findIndex((m, k) => k > i && m.type === 'state');
      const replay = c.msgs.slice(i + 1, firstState);
      assert.ok(replay.every((m) => m.type === 'event'), `${c.label}: only events between the hello ack and its state`);
      assert.equal(c.msgs[firstState].seq, ack.last_seq, `${c.label}: the replay state is at last_seq`);
      if (replay.length) assert.equal(replay.at(-1).seq, ack.last_seq);
    }

    // (4) nothing hidden, by key or by content
    for (let i = 0; i < frames.length; i++) {
      const { m, raw } = frames[i];
      if (role !== 'observer') {
        const bad = keysDeep(m).filter((k) => STAFF_KEY.test(k));
        assert.deepEqual(bad, [], `${label(i)}: staff-only keys`);
        for (const r of m.ruptures || []) if (r.repair) assert.ok(!('seq' in r.repair), `${label(i)}: repair.seq`);
        if (m.type === 'state') assert.deepEqual(Object.keys(m.checkin).sort(), ['answered'], `${label(i)}: checkin`);
      }
      const hidden = [...secrets.staff.filter(() => role !== 'observer'),
        ...(role === 'partner_a' ? secrets.partner_b : role === 'partner_b' ? secrets.partner_a : [...secrets.partner_a, ...secrets.partner_b])];
      for (const s of hidden) assert.ok(!raw.includes(s), `${label(i)}: carries ${s}`);
      if (m.type === 'event') {
        assert.ok(notice.receives[role].includes(m.event.type), `${label(i)}: ${m.event.type} is not in receives.${role}`);
        if (m.event.type === 'checkin_answered' || m.event.type === 'therapist_requested')
          assert.equal(m.event.by, role, label(i));
        if (m.event.type === 'private_message') assert.ok(m.event.by === role || m.event.to === role, label(i));
        if (m.event.type === 'replaced') assert.ok(m.event.by === role || role === 'observer', label(i));
      } else if (!(m.type === 'ack' && 'role' in m)) {
        assert.ok(!raw.includes('"answers"'), `${label(i)}: check-in answers outside its own event`);
      }
    }
    // the partner's acks: a seq exactly when its command recorded something it sees
    if (role !== 'observer') {
      for (const [r, msg, reply] of acks.filter(([r]) => r === role)) {
        const silent = msg.type === 'typing' || msg.type === 'ping';
        assert.equal(reply.seq === undefined, silent, `${r} ${msg.type}: ack ${JSON.stringify(reply)}`);
      }
    }
    summaries.push(summary(conns[role].length > 1 ? `${role} (${conns[role].length} connections)` : role, frames));
  }

  // (5) the resume: A2's replay is exactly what A missed, in A's numbering
  {
    const i = A2.msgs.findIndex((m) => m.type === 'ack' && 'role' in m);
    const firstState = A2.msgs.findIndex((m, k) => k > i && m.type === 'state');
    const replay = A2.msgs.slice(i + 1, firstState);
    const aExpected = tEvents.filter((f) => visibleTo(f.m.event, 'partner_a'));
    const missed = aExpected.slice(aLast, a2hello.ack.last_seq);
    assert.ok(missed.length >= 3, `A missed ${missed.length} events`);
    assert.deepEqual(replay.map((m) => m.seq), missed.map((_, k) => aLast + 1 + k), 'replay numbering continues A\'s own');
    assert.deepEqual(replay.map((m) => m.event), missed.map((f) => f.m.event), 'replay = the events A missed');
    assert.ok(!replay.some((m) => ['note', 'private_message'].includes(m.event.type) && m.event.by !== 'partner_a' && m.event.to !== 'partner_a'));
  }

  // (6) what the roles' wires carried, against the consent notice
  const tTypes = new Set(tEvents.map((f) => f.m.event.type));
  for (const t of tTypes) assert.ok(notice.receives.therapist.includes(t), `therapist got ${t}`);
  for (const t of ['rupture_suspected', 'rupture_confirmed', 'rupture_dismissed', 'note', 'private_message',
    'therapist_requested', 'checkin_answered', 'replaced'])
    assert.ok(tTypes.has(t), `the session produced ${t}`);
  summaries.unshift(summary('therapist', tFrames));
  for (const s of summaries) console.log(s);
});
