// tls.test.mjs - `attune join` over TLS (wss://): a TLS front on loopback
// (node's tls, with a throwaway self-signed certificate made by `openssl req`
// for this run) pipes each connection to the real attune-server. With
// --insecure an https:// invitation completes a turn through the front; without
// it the same link is refused with a certificate error and exit code 1, and
// nothing reaches the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { SERVER, attune, attuneAsync, tempDir, startServer, member, invitations, sleep } from './helpers.mjs';

const openssl = spawnSync('openssl', ['version']).status === 0;
const skip = !SERVER ? 'attune-server is not built' : !openssl ? 'no openssl command' : false;
let dir, server, front, frontPort;
let handshakes = 0; // TLS sessions the front completed
let piped = 0; // of them, the ones that sent bytes on to the server

before(async () => {
  if (skip) return;
  dir = tempDir();
  server = await startServer(dir);
  const key = path.join(dir, 'front-key.pem');
  const cert = path.join(dir, 'front-cert.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=attune-test-front',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  front = tls.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (sock) => {
    handshakes++;
    const up = net.connect(server.port, '127.0.0.1');
    sock.once('data', () => piped++);
    sock.pipe(up);
    up.pipe(sock);
    const end = () => {
      sock.destroy();
      up.destroy();
    };
    sock.on('error', end);
    up.on('error', end);
    sock.on('close', end);
    up.on('close', end);
  });
  // A refused handshake is the test's point, not an error of the front.
  front.on('tlsClientError', () => {});
  await new Promise((resolve) => front.listen(0, '127.0.0.1', resolve));
  frontPort = front.address().port;
});
after(async () => {
  if (front) await new Promise((resolve) => front.close(resolve));
  if (server) await server.stop();
});

function createRoom(room) {
  const r = attune(['room', 'create', '--data', dir, '--room', room, '--exercise', 'enactment',
    '--base-url', `https://127.0.0.1:${frontPort}`]);
  assert.equal(r.code, 0, r.stderr);
  return invitations(r.stdout);
}

async function ok(m, msg) {
  const r = await m.request(msg);
  assert.equal(r.type, 'ack', `${JSON.stringify(msg)} -> ${JSON.stringify(r)}`);
  return r;
}

test('attune join --insecure takes part through TLS: https:// link, a turn completed', { skip }, async () => {
  const inv = createRoom('tls-1');
  assert.ok(inv.partner_a.url.startsWith(`https://127.0.0.1:${frontPort}/?room=tls-1#token=`));
  const T = await member(server.port, inv.therapist.token);
  const before = handshakes;
  const join = attuneAsync(['join', '--no-color', '--insecure', inv.partner_a.url]);
  join.proc.stdin.write('/consent\n1\n\nThe dishes, again\n');
  await T.waitFor((x) => x.type === 'event' && x.event.type === 'consented' && x.event.by === 'partner_a', 'A consents');
  const B = await member(server.port, inv.partner_b.token);
  await ok(B, { type: 'consent', accept: true });
  await B.waitFor((x) => x.type === 'state' && x.status === 'checking_in', 'checking in');
  await ok(B, { type: 'checkin', answers: { safe_to_talk: 'yes' } });
  const turn = await T.waitFor((x) => x.type === 'event' && x.event.type === 'turn' && x.event.step === 'what_happened', 'the turn');
  assert.equal(turn.event.by, 'partner_a');
  assert.deepEqual(turn.event.input, { what_happened: 'The dishes, again' });
  join.proc.stdin.end();
  const done = await join.exited;
  assert.equal(done.code, 0, done.stderr + done.stdout);
  assert.match(done.stdout, /^Joined room tls-1 as partner_a: /m);
  assert.match(done.stdout, />> Your turn: What happened\n[\s\S]*> The dishes, again\n/);
  assert.equal(done.stderr, '');
  assert.equal(handshakes - before, 1, 'one TLS session through the front');
  B.close();
  T.close();
});

test('without --insecure the self-signed front is refused: a certificate error, exit 1', { skip }, async () => {
  const inv = createRoom('tls-2');
  const T = await member(server.port, inv.therapist.token);
  const before = piped;
  // (asynchronously: the front runs in this process, so spawnSync would stall it)
  const join = attuneAsync(['join', '--no-color', inv.partner_a.url]);
  join.proc.stdin.end('/consent\n');
  const r = await join.exited;
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^attune: cannot connect to 127\.0\.0\.1:\d+: the server's TLS certificate was refused \(self[- ]signed certificate\); --insecure skips the check, for a test server only\n$/);
  assert.equal(r.stdout, '');
  // The link never left this machine's TLS handshake: no bytes reached the
  // server and partner_a never joined.
  assert.equal(piped, before);
  await sleep(200);
  assert.ok(!T.msgs.some((x) => x.type === 'event' && x.event.by === 'partner_a'));
  T.close();
  // wss:// is the same link's other spelling.
  const again = attuneAsync(['join', '--no-color', inv.partner_a.url.replace('https://', 'wss://')]);
  again.proc.stdin.end();
  const wss = await again.exited;
  assert.equal(wss.code, 1);
  assert.match(wss.stderr, /TLS certificate was refused/);
});
