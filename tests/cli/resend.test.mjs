// resend.test.mjs - `attune join` keeps what it sent until it is answered
// (PROTOCOL.md section 4: command ids). Between join and the server, a TCP
// proxy cuts both connections the moment the server's reply to a private
// message comes back, so the message is recorded but join never sees its
// ack. join reconnects by itself, resumes, and sends the message again with
// the same command_id: the server acks it as a duplicate with the
// original's seq and records nothing more.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { SERVER, attune, attuneAsync, tempDir, startServer, member, invitations, sleep, freePort } from './helpers.mjs';

const skip = SERVER ? false : 'attune-server is not built';
let dir, server;

before(async () => {
  if (skip) return;
  dir = tempDir();
  server = await startServer(dir);
});
after(async () => {
  if (server) await server.stop();
});

// A proxy to the server's port; cutWhen(text) cuts every open connection as
// soon as server->client bytes contain text (those bytes are not passed on).
async function proxy(targetPort) {
  const port = await freePort();
  const open = new Set();
  let cutOn = null;
  const srv = net.createServer((c) => {
    const up = net.connect(targetPort, '127.0.0.1');
    open.add(c);
    const cut = () => {
      for (const s of open) s.destroy();
      open.clear();
    };
    c.on('data', (d) => up.write(d));
    up.on('data', (d) => {
      if (cutOn && d.includes(cutOn)) {
        cutOn = null;
        up.destroy();
        cut();
        return;
      }
      c.write(d);
    });
    c.on('close', () => up.destroy());
    up.on('close', () => c.destroy());
    c.on('error', () => {});
    up.on('error', () => c.destroy());
  });
  await new Promise((r) => srv.listen(port, '127.0.0.1', r));
  return {
    port,
    cutWhen(text) {
      cutOn = Buffer.from(text);
    },
    close: () => new Promise((r) => srv.close(r)),
  };
}

async function waitOut(join, re, what, ms = 15000) {
  const until = Date.now() + ms;
  while (!re.test(join.out())) {
    if (Date.now() > until) throw new Error(`waiting for ${what}; output:\n${join.out()}\n${join.err()}`);
    await sleep(20);
  }
}

test('a command whose ack was lost is sent again once, and recorded once', { skip, timeout: 90000 }, async () => {
  const r = attune(['room', 'create', '--data', dir, '--room', 'resend-1', '--exercise', 'enactment', '--base-url', server.url]);
  assert.equal(r.code, 0, r.stderr);
  const inv = invitations(r.stdout);
  const p = await proxy(server.port);
  const A = await member(server.port, inv.partner_a.token);
  const link = inv.therapist.url.replace(`:${server.port}/`, `:${p.port}/`);
  assert.notEqual(link, inv.therapist.url);
  const join = attuneAsync(['join', '--no-color', link]);
  await waitOut(join, /^Joined room resend-1 as therapist/m, 'the join');

  // The server's reply carries the text back (the therapist sees its own
  // private message): cut there, after the commit, before join reads it.
  p.cutWhen('LOST-ACK-41c2');
  join.proc.stdin.write('/private a LOST-ACK-41c2 are you all right?\n');
  const first = await A.waitFor((x) => x.type === 'event' && x.event.type === 'private_message', 'the message');
  await waitOut(join, /the connection dropped \(\d+\); joining again/, 'the drop');
  await waitOut(join, /\(connected again; going on after seq \d+\)/, 'the reconnect');
  await waitOut(join, /\(sent again what was not confirmed: 1\)/, 'the resend');

  // One more: nothing else was recorded for the resend.
  join.proc.stdin.write('/private a SECOND-5e7d\n');
  const second = await A.waitFor((x) => x.type === 'event' && x.event.text === 'SECOND-5e7d', 'the second message');
  const mine = A.msgs.filter((x) => x.type === 'event' && x.event.type === 'private_message');
  assert.deepEqual(mine.map((x) => x.event.text), ['LOST-ACK-41c2 are you all right?', 'SECOND-5e7d']);
  assert.equal(second.seq, first.seq + 1, 'nothing between them in partner_a\'s numbering');

  join.proc.stdin.end();
  const done = await join.exited;
  assert.equal(done.code, 0, done.stderr + done.stdout);
  const out = done.stdout;
  assert.doesNotMatch(out, /command_id|error:/);
  const rep = attune(['replay', '--data', dir, '--room', 'resend-1', '--no-color']);
  assert.equal(rep.code, 0, rep.stderr);
  assert.equal(rep.stdout.split('LOST-ACK-41c2').length - 1, 1, rep.stdout);
  assert.equal(rep.stdout.split('SECOND-5e7d').length - 1, 1);
  A.close();
  await p.close();
});
