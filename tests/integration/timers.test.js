// The server's timers when they move: a room's silence deadline that moves
// later (a turn starts a new step) still fires at the new deadline, once,
// and not at the old one (the room timer is re-armed lazily).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, createRoom, Client, tempDir, sleep, inputFor, actorOf } from './harness.js';

test('a silence deadline moved later by a turn fires at the new deadline', async () => {
  const SILENCE = 800;
  const dir = tempDir('timers');
  const srv = await startServer({ dataDir: dir, args: ['--silence-ms', String(SILENCE)] });
  const room = createRoom(dir);
  const t = await Client.connect(srv.wsUrl);
  const { ack } = await t.hello(room.tokens.therapist);
  const vocab = ack.vocab;
  const a = await Client.connect(srv.wsUrl);
  const b = await Client.connect(srv.wsUrl);
  await a.hello(room.tokens.partner_a);
  await b.hello(room.tokens.partner_b);
  await a.request({ type: 'consent', accept: true });
  await b.request({ type: 'consent', accept: true });
  // Half the silence later, the actor takes its turn: a new step, a new
  // deadline SILENCE ms from now.
  await sleep(SILENCE / 2);
  const st = t.lastState();
  const actor = actorOf(st);
  assert.ok(actor === 'partner_a' || actor === 'partner_b', `a partner acts first (${actor})`);
  const res = await (actor === 'partner_a' ? a : b).request({
    type: 'turn', step: st.step.id, input: inputFor(st.step, vocab),
  });
  assert.equal(res.type, 'ack', JSON.stringify(res));
  const turned = Date.now();
  const next = await t.waitState((s) => s.step && s.step.id !== st.step.id);
  assert.ok(['partner_a', 'partner_b'].includes(actorOf(next)), 'a partner acts next');
  const ev = await t.waitFor((m) => m.type === 'event' && m.event.type === 'rupture_opened',
    { timeout: 5000 });
  const waited = Date.now() - turned;
  assert.equal(ev.event.rupture.marker, 'silence');
  assert.ok(waited >= SILENCE - 100 && waited < SILENCE + 1500,
    `silence rupture ${waited} ms after the turn (deadline ${SILENCE} ms)`);
  await sleep(SILENCE);
  assert.equal(t.events().filter((e) => e.event.type === 'rupture_opened').length, 1, 'once');
  await srv.stop('SIGKILL');
});
