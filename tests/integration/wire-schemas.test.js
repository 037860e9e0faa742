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
import { startServer, createRoom, Client, tempDir, inputFor, actorOf, ROOT } from './harness.js';

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
  // consent and a few turns, a pause and its repair, a private note
  for (const p of [a, b]) assert.equal((await p.request({ type: 'consent', accept: true })).type, 'ack');
  let state = await therapist.waitState((s) => s.status === 'active');
  for (let i = 0; i < 3; i++) {
    const actor = clients[actorOf(state)];
    const r = await actor.request({ type: 'turn', step: state.step.id, input: inputFor(state.step, vocab) });
    assert.equal(r.type, 'ack', JSON.stringify(r));
    state = await therapist.waitState((s) => s.seq >= r.seq);
  }
  const paused = await b.request({ type: 'pause_request', note: 'I need a minute' });
  assert.equal(paused.type, 'ack');
  state = await therapist.waitState((s) => s.seq >= paused.seq);
  const rupture = state.ruptures.find((r) => r.kind === 'flooding');
  const repaired = await therapist.request({ type: 'rupture_repair', rupture_id: rupture.id, strategy: 'empathize', note: 'slowed down' });
  assert.equal(repaired.type, 'ack');
  await a.waitState((s) => s.seq >= repaired.seq - 1);
  // a second tab for partner_a replaces the first, which gets a bye
  const again = await Client.connect(srv.wsUrl);
  await again.hello(room.tokens.partner_a, a.events().at(-1)?.seq ?? 0);
  await a.closed;

  const seen = new Map();
  for (const [role, c] of Object.entries({ ...clients, again })) {
    for (const msg of c.msgs) {
      const name = schemaOf(msg);
      const validate = ajv.getSchema(`${BASE}${name}.schema.json`);
      assert.ok(validate, `no schema for ${name}`);
      assert.ok(validate(msg), `${role} ${name}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(msg)}`);
      seen.set(name, (seen.get(name) || 0) + 1);
      if (msg.type === 'event') {
        const ev = ajv.getSchema(`${BASE}event/${msg.event.type}.schema.json`);
        assert.ok(ev(msg.event), `${role} event/${msg.event.type}: ${ajv.errorsText(ev.errors)}`);
      }
    }
  }
  for (const name of ['server/ack-hello', 'server/ack', 'server/error', 'server/event', 'server/state', 'server/bye'])
    assert.ok(seen.get(name) > 0, `no ${name} seen`);
});
