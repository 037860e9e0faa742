// commands.test.js - client command ids (PROTOCOL.md section 4): a command
// resent after a reconnect (its sender did not see the ack) is recorded
// once, and the resend gets the original's seq with "duplicate":true: on the
// same server, while the original still waits for its commit, and after a
// kill -9 and restart (the restarted server's fold knows the commands the
// log holds). A command id is its sender's alone: it is on no wire (no
// other role's, not the sender's own events), not in the log API, not in
// `attune replay`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startServer, Client, tempDir, tokenOf, startSession, cliBin, cliArgs, attune } from './harness.js';
import { request, loginCookie } from './http.js';

const PW = 'alice-long-password';
let srv, dir, invites, roomId, cookie;
const conns = []; // every connection, with its raw frames
const ID = {
  note: 'note-0123456789abcdef',
  priv: 'priv_0123456789ABCDEF',
  twice: 'twice-0123456789abcdef',
  restart: 'restart-0123456789abc',
};

before(async () => {
  dir = tempDir('commands');
  let r = spawnSync(cliBin(), cliArgs(['therapist', 'add', 'alice', '--data', dir]), { input: `${PW}\n`, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  r = spawnSync(cliBin(), cliArgs(['room', 'create', '--data', dir, '--owner', 'alice']), { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  invites = Object.fromEntries(
    r.stdout.trim().split('\n').map((l) => l.split(' ')).filter((p) => p[0] === 'invite').map((p) => [p[1], p[2]]),
  );
  srv = await startServer({ dataDir: dir, args: ['--rate', '1000', '--burst', '1000'] });
  cookie = await loginCookie(srv, 'alice', PW);
});
after(async () => {
  await srv?.stop('SIGKILL');
});

async function connect(role, resumeFrom) {
  const c = await Client.connect(srv.wsUrl);
  c.raw = [];
  c.ws.on('message', (d) => c.raw.push(d.toString()));
  conns.push(c);
  const h = await c.hello(tokenOf(invites[role]), resumeFrom);
  assert.equal(h.ack.type, 'ack', JSON.stringify(h.ack));
  roomId = h.ack.room;
  return c;
}

const lastSeq = (c) => c.events().at(-1)?.seq ?? 0;
const eventsWith = (c, type, text) => c.events().filter((m) => m.event.type === type && m.event.text === text);

test('a resent command is recorded once and acked with the original seq', async () => {
  const T = await connect('therapist');
  let A = await connect('partner_a');
  const B = await connect('partner_b');
  await startSession(T, A, B);

  // A note from the therapist, acked, then resent on the same link.
  const first = await T.request({ type: 'note', text: 'a note once', command_id: ID.note });
  assert.equal(first.type, 'ack', JSON.stringify(first));
  assert.ok(first.seq > 0 && !('duplicate' in first));
  const again = await T.request({ type: 'note', text: 'a note once', command_id: ID.note });
  assert.deepEqual({ ...again, id: first.id }, { ...first, duplicate: true });
  assert.equal(eventsWith(T, 'note', 'a note once').length, 1);

  // partner_a writes to the therapist and the link drops before it reads
  // the ack; the therapist's wire shows the message was recorded.
  const from = T.msgs.length;
  A.send({ type: 'private_message', text: 'for the therapist', id: 'p1', command_id: ID.priv });
  const recorded = await T.waitFor((m) => m.type === 'event' && m.event.text === 'for the therapist', { from });
  const seenByA = lastSeq(A);
  A.ws.terminate();
  await A.closed;
  // Reconnect with resume, then resend what was not acked.
  A = await connect('partner_a', seenByA);
  const replayed = A.events().filter((m) => m.event.type === 'private_message' && m.event.text === 'for the therapist');
  assert.equal(replayed.length, 1, 'the replay carries the message once');
  const resent = await A.request({ type: 'private_message', text: 'for the therapist', command_id: ID.priv });
  assert.equal(resent.type, 'ack', JSON.stringify(resent));
  assert.equal(resent.duplicate, true);
  assert.equal(resent.seq, replayed[0].seq, "the original's seq in partner_a's numbering");
  await T.request({ type: 'ping' });
  assert.equal(eventsWith(T, 'private_message', 'for the therapist').length, 1, 'one event in the log');
  assert.equal(recorded.seq, T.events().at(-1).seq, 'nothing appended after it');

  // The same command twice back to back: the second arrives while the
  // first may still wait for its commit; both acks name the same seq.
  const [x, y] = await Promise.all([
    A.request({ type: 'pause_request', note: 'twice sent', command_id: ID.twice }),
    A.request({ type: 'pause_request', note: 'twice sent', command_id: ID.twice }),
  ]);
  assert.equal(x.type, 'ack', JSON.stringify(x));
  assert.equal(y.type, 'ack', JSON.stringify(y));
  assert.equal(y.seq, x.seq);
  assert.equal(y.duplicate, true);
  assert.ok(!('duplicate' in x));
  await T.request({ type: 'ping' });
  assert.equal(T.events().filter((m) => m.event.type === 'pause_requested').length, 1);

  // A malformed command id is bad_message; another role's id space is its own.
  const bad = await T.request({ type: 'note', text: 'x', command_id: 'short' });
  assert.equal(bad.type, 'error');
  assert.equal(bad.code, 'bad_message');
  const other = await B.request({ type: 'ask_therapist', command_id: ID.note });
  assert.equal(other.type, 'ack');
  assert.ok(!('duplicate' in other), 'the therapist\'s id is not partner_b\'s');
});

test('after kill -9 and a restart the fold knows the recorded commands', async () => {
  const A = await connect('partner_a');
  const ack = await A.request({ type: 'private_message', text: 'before the crash', command_id: ID.restart });
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  // the ack is sent after the commit: durable now
  await srv.stop('SIGKILL');
  srv = await startServer({ dataDir: dir, args: ['--rate', '1000', '--burst', '1000'] });
  cookie = await loginCookie(srv, 'alice', PW);
  const A2 = await connect('partner_a');
  const T2 = await connect('therapist');
  const resent = await A2.request({ type: 'private_message', text: 'before the crash', command_id: ID.restart });
  assert.equal(resent.type, 'ack', JSON.stringify(resent));
  assert.equal(resent.duplicate, true);
  assert.equal(resent.seq, ack.seq);
  // and the older ones too
  const note = await T2.request({ type: 'note', text: 'a note once', command_id: ID.note });
  assert.equal(note.duplicate, true);
  await T2.request({ type: 'ping' });
  assert.equal(eventsWith(T2, 'private_message', 'before the crash').length, 1, 'once in the log');
  assert.equal(eventsWith(T2, 'note', 'a note once').length, 1);
});

test('a command id is on no wire, in no log page, in no replay', async () => {
  const ids = Object.values(ID);
  let frames = 0;
  for (const c of conns)
    for (const raw of c.raw) {
      frames++;
      for (const id of ids) assert.ok(!raw.includes(id), `a wire frame carries a command id: ${raw.slice(0, 200)}`);
      const m = JSON.parse(raw);
      if (m.type === 'event' || m.type === 'state')
        assert.ok(!raw.includes('"command_'), `a command member on the wire: ${raw.slice(0, 200)}`);
    }
  assert.ok(frames > 50);
  const log = await request(srv, 'GET', `/api/rooms/${roomId}/log?limit=1000`, { cookie });
  assert.equal(log.status, 200, log.text);
  assert.ok(log.json.events.length > 10);
  assert.ok(!log.text.includes('command_'), 'the log API carries no command id');
  // still the log with the recorded commands in it
  assert.equal(log.json.events.filter((e) => e.event.type === 'note' && e.event.text === 'a note once').length, 1);
  await srv.stop('SIGTERM');
  const replay = attune(['replay', '--data', dir, '--room', roomId, '--no-color']);
  assert.equal(replay.code, 0, replay.stderr);
  assert.ok(replay.stdout.includes('a note once'));
  for (const id of ids) assert.ok(!replay.stdout.includes(id), 'attune replay prints no command id');
  srv = null;
});
