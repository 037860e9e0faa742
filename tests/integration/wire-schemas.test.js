// Every message the real server sends during a short session (hello acks for
// all four roles, acks, errors, events of several types, states, a bye)
// validates against protocol/schema/: the schemas describe exactly what
// goes over the wire, not only what the core emits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import {
  startServer, createRoom, Client, tempDir, inputFor, actorOf, ROOT, checkinAnswers, stateAfter,
} from './harness.js';

const BASE = 'https://attune.example/schema/';
function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}
const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
addFormats(ajv);
for (const p of walk(path.join(ROOT, 'protocol', 'schema')).filter((f) => f.endsWith('.schema.json')))
  ajv.addSchema(JSON.parse(readFileSync(p, 'utf8')));

function schemaOf(msg) {
  if (msg.type === 'ack') return 'role' in msg ? 'server/ack-hello' : 'server/ack';
  return `server/${msg.type}`;
}

let srv, dir, room;
before(async () => {
  dir = tempDir('wire');
  srv = await startServer({ dataDir: dir });
  room = createRoom(dir);
});
after(async () => {
  await srv?.stop('SIGKILL');
});

test('every server message of a session validates against its schema', async () => {
  const clients = {};
  for (const role of ['therapist', 'observer', 'partner_a', 'partner_b']) {
    clients[role] = await Client.connect(srv.wsUrl);
    await clients[role].hello(room.tokens[role]);
  }
  const { partner_a: a, partner_b: b, therapist } = clients;
  const vocab = therapist.msgs.find((m) => m.type === 'ack').vocab;
  // errors of several kinds
  assert.equal((await a.request({ type: 'nope' })).code, 'unknown_type');
  assert.equal((await a.request({ type: 'turn' })).code, 'bad_message');
  assert.equal((await therapist.request({ type: 'consent', accept: true })).code, 'forbidden');
  // Sends and waits for the commit's state at the therapist (seqs are per role).
  const act = async (c, msg) => {
    const from = therapist.msgs.length;
    const r = await c.request(msg);
    assert.equal(r.type, 'ack', `${JSON.stringify(msg)}: ${JSON.stringify(r)}`);
    if (r.seq !== undefined || c === therapist) return stateAfter(therapist, from);
    return null;
  };
  const safety = therapist.msgs.find((m) => m.type === 'ack').safety;
  // consent, the check-in (one answer holds the room), the private line
  await act(a, { type: 'typing' });
  for (const p of [a, b]) await act(p, { type: 'consent', accept: true });
  await act(a, { type: 'private_message', text: 'a word, please' });
  await act(therapist, { type: 'private_message', to: 'partner_a', text: 'yes, in a minute' });
  await act(b, { type: 'ask_therapist' });
  await act(a, { type: 'checkin', answers: checkinAnswers(safety) });
  await act(b, { type: 'checkin', answers: checkinAnswers(safety, { hold: true }), note: 'not today' });
  await act(therapist, { type: 'control', action: 'proceed' });
  // a few turns, a pause, a mark and its repair, a private note
  let state = therapist.lastState();
  for (let i = 0; i < 3; i++) {
    const actor = clients[actorOf(state)];
    state = await act(actor, { type: 'turn', step: state.step.id, input: inputFor(state.step, vocab) });
  }
  await act(b, { type: 'pause_request', note: 'I need a minute' });
  state = await act(therapist, { type: 'rupture_mark', kind: 'withdrawal', marker: 'minimal_response', who: 'partner_b', with: 'partner_a' });
  const rupture = state.ruptures.at(-1);
  await act(a, { type: 'repair_attempt', text: 'I am sorry', rupture_id: rupture.id });
  const attemptId = therapist.lastState().repair_attempts.at(-1).id;
  await act(b, { type: 'repair_reply', attempt_id: attemptId, reply: 'need_a_moment' });
  await act(therapist, { type: 'repair_reply', attempt_id: attemptId, reply: 'acknowledged' });
  await act(b, { type: 'repair_accept', attempt_id: attemptId });
  await act(therapist, { type: 'note', text: 'slowed down' });
  await act(a, { type: 'consent_withdraw' });
  await act(a, { type: 'consent', accept: true });
  // a second tab for partner_a replaces the first, which gets a bye
  const again = await Client.connect(srv.wsUrl);
  const from = therapist.msgs.length;
  await again.hello(room.tokens.partner_a, a.events().at(-1)?.seq ?? 0);
  await a.closed;
  await therapist.waitFor((m) => m.type === 'event' && m.event.type === 'replaced', { from });
  await stateAfter(again, again.msgs.findIndex((m) => m.type === 'event' && m.event.type === 'replaced'));

  // Every message is checked; the failures are reported together, one per
  // schema and error, each with the first message that showed it.
  const seen = new Map();
  const failures = new Map();
  const check = (role, name, validate, value) => {
    if (validate(value)) return;
    const why = ajv.errorsText(validate.errors.filter((e) => !/oneOf|anyOf/.test(e.keyword)).slice(0, 3));
    const key = `${name}: ${why}`;
    if (!failures.has(key)) failures.set(key, `${role} ${key}\n    ${JSON.stringify(value).slice(0, 400)}`);
  };
  const eventTypes = new Set();
  for (const [role, c] of Object.entries({ ...clients, again })) {
    for (const msg of c.msgs) {
      const name = schemaOf(msg);
      const validate = ajv.getSchema(`${BASE}${name}.schema.json`);
      assert.ok(validate, `no schema for ${name}`);
      seen.set(name, (seen.get(name) || 0) + 1);
      if (msg.type === 'event') {
        eventTypes.add(msg.event.type);
        const ev = ajv.getSchema(`${BASE}event/${msg.event.type}.schema.json`);
        assert.ok(ev, `no schema for event/${msg.event.type}`);
        check(role, `event/${msg.event.type}`, ev, msg.event);
        if (ev(msg.event)) check(role, name, validate, msg);
      } else {
        check(role, name, validate, msg);
      }
    }
  }
  assert.deepEqual([...failures.values()], [], `messages that fail their schema:\n${[...failures.values()].join('\n')}`);
  for (const t of ['replaced', 'consent_withdrawn', 'checkin_answered', 'repair_replied', 'private_message',
    'therapist_requested', 'repair_accepted', 'rupture_repaired', 'rupture_opened'])
    assert.ok(eventTypes.has(t), `no ${t} event seen`);
  for (const name of ['server/ack-hello', 'server/ack', 'server/error', 'server/event', 'server/state', 'server/bye'])
    assert.ok(seen.get(name) > 0, `no ${name} seen`);
});
