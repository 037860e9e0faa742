// reconnect.test.mjs - `attune join` keeps a session going across its
// server's restarts: after a SIGTERM (bye shutdown, close 1001) and after a
// kill -9 (no close at all) it reconnects by itself to /ws?room=ID with
// resume_from the last seq it saw, its piped answers go on where they were,
// and the transcript it printed has every seq of its audience once, with
// no gap and no repeat (checked against a fresh replay of the room).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SERVER, attune, attuneAsync, tempDir, member, invitations, sleep } from './helpers.mjs';
import { startServer } from '../integration/harness.js';

const skip = SERVER ? false : 'attune-server is not built';

async function until(pred, what, ms = 15000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

test('attune join reconnects after a restart and a kill -9, resuming with no gap and no repeat', { skip, timeout: 90000 }, async () => {
  const dir = tempDir();
  let server = await startServer({ dataDir: dir });
  const port = server.port;
  const made = attune(['room', 'create', '--data', dir, '--room', 'rejoin-1', '--exercise', 'enactment', '--base-url', server.httpUrl]);
  assert.equal(made.code, 0, made.stderr);
  const inv = invitations(made.stdout);
  assert.match(inv.partner_a.url, /\/\?room=rejoin-1#token=/);

  const join = attuneAsync(['join', '--no-color', inv.partner_a.url]);
  const reconnects = () => (join.out().match(/^\s+\(connected again; going on after seq \d+\)$/gm) || []).length;
  try {
    join.proc.stdin.write('/consent\n');
    let T = await member(port, inv.therapist.token);
    await T.waitFor((x) => x.type === 'event' && x.event.type === 'consented' && x.event.by === 'partner_a', 'A consents');
    const B = await member(port, inv.partner_b.token);
    assert.equal((await B.request({ type: 'consent', accept: true })).type, 'ack');
    await B.waitFor((x) => x.type === 'state' && x.status === 'checking_in', 'checking in');
    assert.equal((await B.request({ type: 'checkin', answers: { safe_to_talk: 'yes' } })).type, 'ack');
    await until(() => /Before we begin/.test(join.out()), "A's check-in questions");

    // 1: a clean restart. The server says bye shutdown and closes 1001.
    await server.stop('SIGTERM');
    await until(() => /the server is restarting; joining again in a moment/.test(join.out()), 'the calm bye');
    await sleep(300); // a failed attempt or two while nothing listens
    server = await startServer({ dataDir: dir, port });
    await until(() => reconnects() === 1, 'the first reconnect');

    // The check-in answers typed now reach the open questions.
    join.proc.stdin.write('1\n\n');
    T = await member(port, inv.therapist.token);
    await T.waitFor((x) => x.type === 'event' && x.event.type === 'checkin_answered' && x.event.by === 'partner_a', "A's check-in");
    await until(() => /Your turn: What happened/.test(join.out()), "A's turn");

    // 2: kill -9: no bye, no close frame.
    await server.stop('SIGKILL');
    server = await startServer({ dataDir: dir, port });
    await until(() => reconnects() === 2, 'the second reconnect');
    join.proc.stdin.write('The dishes, again\n');
    T = await member(port, inv.therapist.token);
    await T.waitFor((x) => x.type === 'event' && x.event.type === 'turn' && x.event.by === 'partner_a', "A's turn after the kill");
    join.proc.stdin.end();
    const done = await join.exited;
    assert.equal(done.code, 0, done.stderr + done.stdout);
    T.close();

    // Every seq the transcript printed, in order: 1..N once each (an event
    // may land right after an open question's "> " prompt).
    const seqs = [...done.stdout.matchAll(/^(?:> )?\s*(\d+) \+\d+:\d+\s/gm)].map((m) => Number(m[1]));
    assert.ok(seqs.length > 5, done.stdout);
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), `a gap or a repeat:\n${done.stdout}`);
    assert.match(done.stdout, /^Joined room rejoin-1 as partner_a/m);
    assert.equal((done.stdout.match(/^Joined room/gm) || []).length, 1, 'the header once');
    assert.match(done.stdout, /the connection dropped \(1001\); joining again/);
    assert.match(done.stdout, /the connection dropped \(1006\); joining again/);

    // The room's own numbering for partner A agrees: the same events, same seqs.
    const A = await member(port, inv.partner_a.token);
    assert.equal(A.hello.type, 'ack');
    await A.waitFor((x) => x.type === 'state', 'the catch-up');
    const logged = A.msgs.filter((x) => x.type === 'event').map((x) => x.seq);
    assert.deepEqual(logged.slice(0, seqs.length), seqs);
    const turn = A.msgs.find((x) => x.type === 'event' && x.event.type === 'turn');
    assert.deepEqual(turn.event.input, { what_happened: 'The dishes, again' });
    assert.equal(A.msgs.filter((x) => x.type === 'event' && x.event.type === 'checkin_answered' && x.event.by === 'partner_a').length, 1);
    A.close();
  } finally {
    if (join.proc.exitCode === null) join.proc.kill('SIGKILL');
    await server.stop('SIGKILL');
  }
});

test('a link revoked while attune join is away: the reconnect is refused, and that is final', { skip, timeout: 90000 }, async () => {
  const dir = tempDir();
  const server = await startServer({ dataDir: dir });
  const made = attune(['room', 'create', '--data', dir, '--room', 'rejoin-2', '--exercise', 'enactment', '--base-url', server.httpUrl]);
  const inv = invitations(made.stdout);
  const join = attuneAsync(['join', '--no-color', inv.partner_b.url]);
  try {
    await until(() => /^Joined room rejoin-2/m.test(join.out()), 'joined');
    // The link revoked while it is away: the reconnect's hello is refused, and that is final.
    await server.stop('SIGTERM');
    const revoked = attune(['token', 'revoke', '--data', dir, '--room', 'rejoin-2', '--role', 'partner_b']);
    assert.equal(revoked.code, 0, revoked.stderr);
    const again = await startServer({ dataDir: dir, port: server.port });
    const done = await join.exited;
    await again.stop('SIGKILL');
    assert.equal(done.code, 1, done.stdout);
    assert.match(done.stdout, /joining again/);
    assert.match(done.stdout, /error: bad_token/);
    assert.match(done.stdout, /did not accept this invitation/);
  } finally {
    if (join.proc.exitCode === null) join.proc.kill('SIGKILL');
    await server.stop('SIGKILL');
  }
});
