// The server's timers: a room's silence deadline that moves later (a turn
// starts a new step, or the actor is typing) still fires at the new
// deadline, once (the room timer is re-armed lazily), as a suspicion only the
// therapist sees; the keepalive sweep pings quiet peers and reaps the mute.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import {
  startServer, createRoom, Client, tempDir, sleep, inputFor, actorOf, httpGet,
  protocolDirCopy, withoutStepSilence, startSession,
} from './harness.js';

test('a silence deadline moved later by a turn fires at the new deadline', async () => {
  const SILENCE = 800;
  const dir = tempDir('timers');
  const proto = protocolDirCopy(withoutStepSilence());
  const srv = await startServer({ dataDir: dir, args: ['--silence-ms', String(SILENCE), '--protocol-dir', proto] });
  try {
  const room = createRoom(dir, 'enactment', ['--protocol-dir', proto]);
  const t = await Client.connect(srv.wsUrl);
  const { ack } = await t.hello(room.tokens.therapist);
  const vocab = ack.vocab;
  const a = await Client.connect(srv.wsUrl);
  const b = await Client.connect(srv.wsUrl);
  await a.hello(room.tokens.partner_a);
  await b.hello(room.tokens.partner_b);
  await startSession(t, a, b);
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
  const partnerFrames = [a.msgs.length, b.msgs.length];
  const ev = await t.waitFor((m) => m.type === 'event' && m.event.type === 'rupture_suspected',
    { timeout: 5000 });
  const waited = Date.now() - turned;
  assert.equal(ev.event.rupture.marker, 'silence');
  assert.ok(waited >= SILENCE - 100 && waited < SILENCE + 1500,
    `silence suspicion ${waited} ms after the turn (deadline ${SILENCE} ms)`);
  await sleep(SILENCE);
  assert.equal(t.events().filter((e) => e.event.type === 'rupture_suspected').length, 1, 'once');
  assert.ok(!t.events().some((e) => e.event.type === 'rupture_opened'), 'a suspicion, not a rupture');
  assert.deepEqual([a.msgs.length, b.msgs.length], partnerFrames, 'partners receive nothing for it');
  } finally {
    await srv.stop('SIGKILL');
  }
});

test('typing pushes back the silence clock', async () => {
  const SILENCE = 1000;
  const dir = tempDir('typing');
  const proto = protocolDirCopy(withoutStepSilence());
  const srv = await startServer({ dataDir: dir, args: ['--silence-ms', String(SILENCE), '--protocol-dir', proto] });
  try {
    const room = createRoom(dir, 'enactment', ['--protocol-dir', proto]);
    const t = await Client.connect(srv.wsUrl);
    await t.hello(room.tokens.therapist);
    const a = await Client.connect(srv.wsUrl);
    const b = await Client.connect(srv.wsUrl);
    await a.hello(room.tokens.partner_a);
    await b.hello(room.tokens.partner_b);
    const st = await startSession(t, a, b);
    const started = Date.now();
    const actor = actorOf(st) === 'partner_a' ? a : b;
    const other = actor === a ? b : a;
    // The actor composes: two typing signals, the last 1.4 * SILENCE after the
    // turn began; the other partner's typing does not count.
    await sleep(SILENCE * 0.7);
    assert.equal((await actor.request({ type: 'typing' })).seq, undefined);
    await sleep(SILENCE * 0.7);
    const typedAt = Date.now();
    const r = await actor.request({ type: 'typing' });
    assert.equal(r.type, 'ack');
    assert.equal(r.seq, undefined, 'typing records nothing');
    assert.equal((await other.request({ type: 'typing' })).type, 'ack');
    assert.ok(!t.events().some((e) => e.event.type === 'rupture_suspected'), 'no suspicion while composing');
    const ev = await t.waitFor((m) => m.type === 'event' && m.event.type === 'rupture_suspected', { timeout: 5000 });
    const sinceTyping = Date.now() - typedAt;
    assert.equal(ev.event.rupture.marker, 'silence');
    assert.ok(sinceTyping >= SILENCE - 100 && sinceTyping < SILENCE + 1500,
      `silence suspicion ${sinceTyping} ms after the last typing (${Date.now() - started} ms after the turn began)`);
  } finally {
    await srv.stop('SIGKILL');
  }
});

// Keepalive: the server pings a quiet peer (every --ping-interval seconds of
// silence); a peer that answers stays, one that never answers is reaped
// about half an interval after its ping and leaves with reason timeout.
test('keepalive pings quiet peers and reaps the silent ones', async () => {
  const dir = tempDir('keepalive');
  const srv = await startServer({ dataDir: dir, args: ['--ping-interval', '2'] });
  try {
  const room = createRoom(dir);
  const t = await Client.connect(srv.wsUrl);
  await t.hello(room.tokens.therapist);
  let tPings = 0;
  t.ws.on('ping', () => tPings++);
  const mute = await new Promise((resolve, reject) => {
    const ws = new WebSocket(srv.wsUrl, 'attune.v1', { autoPong: false });
    const c = new Client(ws);
    ws.once('open', () => resolve(c));
    ws.once('error', reject);
  });
  let mutePings = 0;
  mute.ws.on('ping', () => mutePings++);
  await mute.hello(room.tokens.partner_a);
  const joinedAt = Date.now();
  const closed = await Promise.race([mute.closed, sleep(10000).then(() => null)]);
  const after = Date.now() - joinedAt;
  assert.ok(closed, 'the mute peer was reaped');
  assert.ok(mutePings >= 1, 'it was pinged first');
  assert.ok(after >= 2000 && after < 6000, `reaped ${after} ms after going quiet`);
  const left = await t.waitFor((m) => m.type === 'event' && m.event.type === 'left' &&
    m.event.by === 'partner_a');
  assert.equal(left.event.reason, 'timeout');
  // The therapist answered its pings (ws answers by default) and is still here.
  assert.ok(tPings >= 1, 'the therapist was pinged');
  assert.equal(t.ws.readyState, WebSocket.OPEN);
  assert.equal((await t.request({ type: 'ping' })).type, 'ack');
  const metrics = await httpGet(`${srv.httpUrl}/metrics`);
  assert.match(metrics.text, /^attune_keepalive_closes_total 1$/m);
  } finally {
    await srv.stop('SIGKILL');
  }
});
