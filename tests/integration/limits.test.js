// limits.test.js - connections and requests (issue 10 items 7 and 9): the
// per-address and total connection caps, the trusted proxy (X-Forwarded-For
// believed only from it), the request body deadline, the Host allow-list,
// /metrics behind its token, private data files, the refusal to run as root,
// `attune join -`, a NUL after a JSON value, and error messages that do not
// echo what a participant typed. 127.0.0.x source addresses stand in for
// different clients (node's localAddress binds them).
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import { startServer, createRoom, tempDir, serverBin, sleep, Client, AS_ROOT, startSession, actorOf, ON_PG } from './harness.js';
import { request as httpRequest } from './http.js';

const servers = [];
after(async () => {
  for (const s of servers) await s.stop('SIGKILL');
});
async function start(opts) {
  const s = await startServer(opts);
  servers.push(s);
  return s;
}

// A raw HTTP request (the body and headers as given, no content-type added):
// {status, headers, text}; `from` binds the source address.
const request = (srv, method, urlPath, opts) => httpRequest(srv, method, urlPath, { raw: true, ...opts });

// Opens a WebSocket: resolves 'open', or 'http NNN' for a refused upgrade,
// or 'closed' when the connection is dropped before any response.
function tryWs(srv, { from, headers } = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(srv.wsUrl, 'attune.v1', { localAddress: from, headers });
    ws.once('open', () => resolve({ result: 'open', ws }));
    ws.once('unexpected-response', (req, res) => {
      resolve({ result: `http ${res.statusCode}` });
      req.destroy();
    });
    ws.once('error', () => resolve({ result: 'closed' }));
  });
}

function metric(text, name) {
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.slice(name.length + 1)) : undefined;
}

async function metrics(srv) {
  return (await request(srv, 'GET', '/metrics')).text;
}

describe('connection caps', () => {
  test('the cap+1th connection from one address is refused at accept; another address still connects', async () => {
    const srv = await start({ args: ['--max-conns-per-address', '4'] });
    const held = [];
    for (let i = 0; i < 4; i++) {
      const r = await tryWs(srv, { from: '127.0.0.2' });
      assert.equal(r.result, 'open', `connection ${i + 1} of 4`);
      held.push(r.ws);
    }
    assert.equal((await tryWs(srv, { from: '127.0.0.2' })).result, 'closed', 'the fifth from 127.0.0.2');
    // HTTP counts too.
    await assert.rejects(request(srv, 'GET', '/healthz', { from: '127.0.0.2' }));
    const other = await tryWs(srv, { from: '127.0.0.3' });
    assert.equal(other.result, 'open', '127.0.0.3 is not held up');
    other.ws.close();
    // One closes: 127.0.0.2 may connect again.
    held.pop().close();
    await sleep(100);
    const again = await tryWs(srv, { from: '127.0.0.2' });
    assert.equal(again.result, 'open');
    held.push(again.ws);
    const m = await metrics(srv);
    assert.equal(metric(m, 'attune_connections_refused_total{cap="per_address"}'), 2);
    assert.ok(srv.logs.some((l) => l.event === 'connection_refused' && l.cap === 'per_address' && l.peer === '127.0.0.2'));
    for (const ws of held) ws.close();
  });

  test('--max-conns refuses beyond the total, whatever the address', async () => {
    const srv = await start({ args: ['--max-conns', '3'] });
    const held = [];
    for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
      const r = await tryWs(srv, { from });
      assert.equal(r.result, 'open');
      held.push(r.ws);
    }
    assert.equal((await tryWs(srv, { from: '127.0.0.9' })).result, 'closed');
    for (const ws of held) ws.close();
    await sleep(150);
    const m = await metrics(srv);
    assert.equal(metric(m, 'attune_connections_refused_total{cap="total"}'), 1);
  });
});

describe('accept failures', () => {
  const prlimit = spawnSync('prlimit', ['--version']).status === 0;
  test('with no fd left, accept failures are logged once a second and do not spin the loop', { skip: !prlimit && 'needs prlimit (util-linux)' }, async () => {
    const srv = await start();
    const pid = String(srv.proc.pid);
    const cpuTicks = () => {
      const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return Number(f[11]) + Number(f[12]); // utime + stime
    };
    // Lower the running server's fd limit under what it holds: every accept
    // now fails with EMFILE (the --max-conns cap was fitted to the old limit).
    const held = fs.readdirSync(`/proc/${pid}/fd`).length;
    assert.equal(spawnSync('prlimit', ['--pid', pid, `--nofile=${held + 2}:`]).status, 0);
    const socks = [];
    for (let i = 0; i < 60; i++) {
      const s = net.connect({ host: '127.0.0.1', port: srv.port, localAddress: `127.0.9.${1 + i}` });
      s.on('error', () => {});
      socks.push(s);
    }
    await sleep(300);
    const t0 = cpuTicks();
    const lines0 = srv.logs.filter((l) => l.event === 'accept_failed').length;
    await sleep(2500);
    const lines = srv.logs.filter((l) => l.event === 'accept_failed').length - lines0;
    const ticks = cpuTicks() - t0;
    assert.ok(lines >= 1 && lines <= 4, `${lines} accept_failed lines in 2.5 s`);
    assert.ok(ticks < 50, `the server used ${ticks} ticks of CPU in 2.5 s`); // 250 ticks: a spinning core
    assert.ok(!srv.logs.some((l) => l.event === 'lws' && /accept/.test(l.message)), 'no unlimited lws line');
    for (const s of socks) s.destroy();
    assert.equal(spawnSync('prlimit', ['--pid', pid, '--nofile=4096:']).status, 0);
    await sleep(600); // the pause ends; accepting resumes
    assert.equal((await request(srv, 'GET', '/healthz')).status, 200);
    assert.ok(metric(await metrics(srv), 'attune_accept_failures_total') >= 2);
  });
});

describe('trusted proxy', () => {
  test('X-Forwarded-For is the client address only from a --trusted-proxy, for the caps and the logs', async () => {
    const dir = tempDir('limits-proxy');
    const srv = await start({ dataDir: dir, args: ['--trusted-proxy', '127.0.0.5', '--max-conns-per-address', '2'] });
    const xff = (a) => ({ 'x-forwarded-for': a });
    // Through the proxy: counted per forwarded client, not per proxy.
    const held = [];
    for (let i = 0; i < 2; i++) {
      const r = await tryWs(srv, { from: '127.0.0.5', headers: xff('198.51.100.7') });
      assert.equal(r.result, 'open');
      held.push(r.ws);
    }
    assert.equal((await tryWs(srv, { from: '127.0.0.5', headers: xff('198.51.100.7') })).result, 'http 429');
    // A client's own X-Forwarded-For is left of what the proxy appended.
    assert.equal((await tryWs(srv, { from: '127.0.0.5', headers: xff('10.9.9.9, 198.51.100.7') })).result, 'http 429');
    const other = await tryWs(srv, { from: '127.0.0.5', headers: xff('198.51.100.8') });
    assert.equal(other.result, 'open', 'another client behind the same proxy');
    // After the upgrade (no headers left) the logs still name the client.
    other.ws.send(JSON.stringify({ type: 'hello', token: 'garbage' }));
    await new Promise((r) => other.ws.once('close', r));
    // Not from the proxy: X-Forwarded-For is ignored (counted as 127.0.0.6).
    const direct = [];
    for (let i = 0; i < 2; i++) {
      const r = await tryWs(srv, { from: '127.0.0.6', headers: xff(`203.0.113.${i}`) });
      assert.equal(r.result, 'open');
      direct.push(r.ws);
    }
    assert.equal((await tryWs(srv, { from: '127.0.0.6', headers: xff('203.0.113.99') })).result, 'closed');

    // The login limits and their log lines see the same client address.
    const body = JSON.stringify({ username: 'nobody', password: 'wrong' });
    const h = { 'content-type': 'application/json' };
    await request(srv, 'POST', '/api/login', { body, from: '127.0.0.5', headers: { ...h, ...xff('198.51.100.20') } });
    await request(srv, 'POST', '/api/login', { body, from: '127.0.0.7', headers: { ...h, ...xff('198.51.100.21') } });
    await sleep(300);
    const peers = srv.logs.filter((l) => l.event === 'login_failed').map((l) => l.peer);
    assert.deepEqual(peers, ['198.51.100.20', '127.0.0.7']);
    assert.deepEqual(srv.logs.filter((l) => l.event === 'bad_token').map((l) => l.peer), ['198.51.100.8']);
    for (const ws of [...held, ...direct]) ws.close();
  });

  test('--trusted-proxy takes an address or a CIDR and refuses anything else', async () => {
    for (const bad of ['nope', '10.0.0.0/33', '::1/129', '10.0.0.1/']) {
      const r = spawnSync(serverBin(), ['--trusted-proxy', bad, '--help'], { encoding: 'utf8' });
      assert.equal(r.status, 2, bad);
      assert.match(r.stderr, /--trusted-proxy/);
    }
    const srv = await start({ args: ['--trusted-proxy', '127.0.0.0/29', '--trusted-proxy', '::1'] });
    assert.equal((await request(srv, 'GET', '/healthz')).status, 200);
  });
});

describe('request deadlines', () => {
  test('a body sent a byte at a time is closed at --body-timeout', async () => {
    const srv = await start({ args: ['--body-timeout', '2'] });
    const sock = net.connect({ host: '127.0.0.1', port: srv.port });
    await new Promise((r) => sock.once('connect', r));
    const t0 = Date.now();
    sock.write(
      'POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n',
    );
    const drip = setInterval(() => sock.writable && sock.write('x'), 300);
    let received = '';
    sock.on('data', (d) => (received += d));
    await new Promise((r) => sock.once('close', r));
    clearInterval(drip);
    const took = Date.now() - t0;
    assert.ok(took >= 1800 && took < 4000, `closed after ${took} ms`);
    assert.equal(received, '', 'no answer to a request that never finished');
    const m = await metrics(srv);
    assert.equal(metric(m, 'attune_body_timeouts_total'), 1);
    assert.ok(srv.logs.some((l) => l.event === 'body_timeout' && l.path === '/api/login'));
    // A whole body in time is answered as usual (the deadline was cleared).
    const ok = await request(srv, 'POST', '/api/login', {
      body: JSON.stringify({ username: 'x', password: 'y' }),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(ok.status, 401);
  });

  test('a body anywhere but a POST under /api, or a chunked one, is refused at once (400)', async () => {
    const srv = await start();
    const raw = (head) =>
      new Promise((resolve) => {
        const sock = net.connect({ host: '127.0.0.1', port: srv.port });
        let got = '';
        const t0 = Date.now();
        sock.on('connect', () => sock.write(`${head}\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\r\nx`));
        sock.on('data', (d) => (got += d));
        sock.on('error', () => {});
        sock.on('close', () => resolve({ status: Number(got.split(' ')[1]), ms: Date.now() - t0 }));
      });
    for (const head of [
      'POST /index.html HTTP/1.1\r\nContent-Length: 400',
      'POST /healthz HTTP/1.1\r\nContent-Length: 400',
      'GET /api/me HTTP/1.1\r\nContent-Length: 400',
      'POST /ws HTTP/1.1\r\nContent-Length: 400',
      'POST /api/login HTTP/1.1\r\nTransfer-Encoding: chunked',
    ]) {
      const r = await raw(head);
      assert.equal(r.status, 400, head);
      assert.ok(r.ms < 1000, `${head}: closed after ${r.ms} ms`);
    }
    assert.equal(srv.logs.filter((l) => l.event === 'body_refused').length, 5);
  });

  test('headers that never finish are cut by lws at 10 s', { timeout: 20000 }, async () => {
    const srv = await start();
    const sock = net.connect({ host: '127.0.0.1', port: srv.port });
    await new Promise((r) => sock.once('connect', r));
    const t0 = Date.now();
    sock.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const drip = setInterval(() => sock.writable && sock.write('X-A: b\r\n'), 1000);
    await new Promise((r) => sock.once('close', r));
    clearInterval(drip);
    const took = Date.now() - t0;
    assert.ok(took >= 9000 && took < 13000, `closed after ${took} ms`);
  });
});

describe('Host allow-list and /metrics', () => {
  test('a Host that is not this server is refused (421, upgrade 403); --allowed-host and loopback pass', async () => {
    const srv = await start({ args: ['--public-url', 'https://attune.clinic.example', '--allowed-host', 'attune.internal:8443'] });
    const ok = ['127.0.0.1', `127.0.0.1:${srv.port}`, `localhost:${srv.port}`, 'attune.clinic.example', 'ATTUNE.clinic.example:443', 'attune.internal:8443'];
    for (const host of ok) assert.equal((await request(srv, 'GET', '/healthz', { headers: { host } })).status, 200, host);
    const bad = ['evil.example', `evil.example:${srv.port}`, 'attune.clinic.example:8080', 'attune.internal', 'attune.clinic.example.evil.example'];
    for (const host of bad) assert.equal((await request(srv, 'GET', '/healthz', { headers: { host } })).status, 421, host);
    assert.equal((await request(srv, 'GET', '/', { headers: { host: 'evil.example' } })).status, 421, 'static files too');
    assert.equal((await request(srv, 'GET', '/api/me', { headers: { host: 'evil.example' } })).status, 421, 'the API too');
    // The DNS rebinding case of the review: Origin and Host both the rebound name.
    const rebound = `evil.example:${srv.port}`;
    const ws = await tryWs(srv, { headers: { host: rebound, origin: `http://${rebound}` } });
    assert.equal(ws.result, 'http 403');
    const good = await tryWs(srv, { headers: { host: 'attune.clinic.example', origin: 'https://attune.clinic.example' } });
    assert.equal(good.result, 'open');
    good.ws.close();
    const m = await metrics(srv);
    assert.equal(metric(m, 'attune_host_rejects_total'), bad.length + 3);
  });

  test('/metrics needs --metrics-token (Bearer); without one only a direct loopback peer; /healthz says only ok', async () => {
    const srv = await start({ args: ['--metrics-token', 's3cret-metrics', '--trusted-proxy', '127.0.0.5'] });
    assert.equal((await request(srv, 'GET', '/metrics')).status, 403);
    assert.equal((await request(srv, 'GET', '/metrics', { headers: { authorization: 'Bearer wrong' } })).status, 403);
    assert.equal((await request(srv, 'GET', '/metrics', { headers: { authorization: 'Basic s3cret-metrics' } })).status, 403);
    const ok = await request(srv, 'GET', '/metrics', { headers: { authorization: 'Bearer s3cret-metrics' } });
    assert.equal(ok.status, 200);
    assert.match(ok.text, /^attune_connections /m);
    const health = await request(srv, 'GET', '/healthz');
    assert.deepEqual(JSON.parse(health.text), { status: 'ok' });

    const open = await start({ args: ['--trusted-proxy', '127.0.0.5'] });
    assert.equal((await request(open, 'GET', '/metrics')).status, 200, 'direct loopback');
    assert.equal((await request(open, 'GET', '/metrics', { from: '127.0.0.5', headers: { 'x-forwarded-for': '127.0.0.1' } })).status, 403, 'through the proxy');
    assert.equal((await request(open, 'GET', '/metrics', { headers: { 'x-forwarded-for': '198.51.100.1' } })).status, 403, 'forwarded by some other proxy');
  });
});

describe('files and users', () => {
  test('a data directory open to others is refused with the fix; the files the server creates are 0600', async () => {
    const dir = tempDir('limits-mode');
    fs.chmodSync(dir, 0o755);
    const r = spawnSync(serverBin(), ['--data', dir, '--port', '0'], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /open to other users \(mode 755\).*chmod 700/);
    assert.deepEqual(fs.readdirSync(dir), [], 'nothing created in it');
    const cli = path.resolve(path.dirname(serverBin()), '..', 'client', 'attune');
    const c = spawnSync(cli, ['room', 'list', '--data', dir], { encoding: 'utf8' });
    assert.equal(c.status, 1);
    assert.match(c.stderr, /chmod 700/);

    fs.chmodSync(dir, 0o700);
    const srv = await start({ dataDir: dir });
    createRoom(dir);
    const files = fs.readdirSync(dir).filter((f) => /^(attune\.db(-wal|-shm)?|secret\.key|keys\.db)$/.test(f));
    // (on PostgreSQL the data directory keeps only this node's secret.key and
    // its audit log; the rest is in the database)
    const made = ON_PG ? ['secret.key'] : ['attune.db', 'attune.db-wal', 'attune.db-shm', 'secret.key', 'keys.db'];
    for (const f of made) assert.ok(files.includes(f), f);
    for (const f of files) assert.equal(fs.statSync(path.join(dir, f)).mode & 0o777, 0o600, f);
    // No data key in the data directory any more (issue 12): the rooms' keys
    // are wrapped in keys.db under the KEK, which is beside it (DIR.kek).
    assert.ok(!fs.readdirSync(dir).includes('data.key'), 'no data.key');
    assert.equal(fs.statSync(`${dir}.kek`).mode & 0o777, 0o600, 'the KEK');
    await srv.stop();
  });

  test('attune-server and attune refuse to run as root without --allow-root', { skip: !AS_ROOT && 'only testable as root' }, () => {
    const env = { ...process.env };
    delete env.ATTUNE_ALLOW_ROOT;
    const dir = tempDir('limits-root');
    const r = spawnSync(serverBin(), ['--data', dir, '--port', '0'], { encoding: 'utf8', env, timeout: 10000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /will not run as root.*--allow-root/);
    assert.deepEqual(fs.readdirSync(dir), []);
    const cli = path.resolve(path.dirname(serverBin()), '..', 'client', 'attune');
    const c = spawnSync(cli, ['room', 'list', '--data', dir], { encoding: 'utf8', env });
    assert.equal(c.status, 1);
    assert.match(c.stderr, /will not run as root/);
    const allowed = spawnSync(cli, ['therapist', 'list', '--data', dir, '--allow-root'], { encoding: 'utf8', env });
    assert.doesNotMatch(allowed.stderr, /will not run as root/);
  });
});

describe('what the server says back', () => {
  test('a NUL after a JSON value is bad_json; error messages never echo names or values a participant sent', async () => {
    const dir = tempDir('limits-echo');
    const srv = await start({ dataDir: dir });
    const room = createRoom(dir);
    const probe = await Client.connect(srv.wsUrl);
    probe.ws.send('123\u0000');
    const nul = await probe.waitFor((m) => m.type === 'error');
    assert.equal(nul.code, 'bad_json');
    await probe.close();

    const SECRET = 'zqSecretNameQz';
    const clients = {};
    for (const role of ['partner_a', 'partner_b', 'therapist']) {
      clients[role] = await Client.connect(srv.wsUrl);
      await clients[role].hello(room.tokens[role]);
    }
    const state = await startSession(clients.therapist, clients.partner_a, clients.partner_b);
    const actor = clients[actorOf(state)];
    const sent = [
      { type: 'turn', step: state.step.id, input: { [SECRET]: SECRET } },
      { type: 'turn', step: SECRET, input: {} },
      { type: SECRET },
      { type: 'turn', step: state.step.id, input: {}, [SECRET]: 1 },
      { type: 'rupture_mark', kind: 'withdrawal', marker: SECRET, who: 'partner_b', with: 'partner_a' },
    ];
    const codes = [];
    for (const msg of sent) {
      const who = msg.type === 'rupture_mark' ? clients.therapist : actor;
      const r = await who.request(msg);
      assert.equal(r.type, 'error', JSON.stringify(r));
      assert.ok(!r.message.includes(SECRET) && !r.message.includes('SecretName'), r.message);
      codes.push(r.code);
    }
    assert.deepEqual(codes, ['invalid_input', 'invalid_step', 'unknown_type', 'bad_message', 'invalid_input']);
    for (const c of Object.values(clients)) await c.close();
  });
});

describe('attune join keeps the link out of argv', () => {
  const cli = () => path.resolve(path.dirname(serverBin()), '..', 'client', 'attune');
  function join(args, { env, input }) {
    const proc = spawn(cli(), ['join', '--no-color', ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    const exited = new Promise((resolve) => proc.on('exit', (code) => resolve({ code, out })));
    if (input !== undefined) proc.stdin.write(input);
    return { proc, exited };
  }

  test('`attune join -` reads the link from stdin, ATTUNE_LINK from the environment', async () => {
    const dir = tempDir('limits-join');
    const srv = await start({ dataDir: dir });
    const room = createRoom(dir);
    const url = (role) => `http://127.0.0.1:${srv.port}/#token=${room.tokens[role]}`;
    const t = await Client.connect(srv.wsUrl);
    await t.hello(room.tokens.therapist);
    const consented = (by) => t.waitFor((m) => m.type === 'event' && m.event.type === 'consented' && m.event.by === by, { timeout: 10000 });

    // The first line is the link; the lines after it are the session's input.
    const a = join(['-'], { input: `${url('partner_a')}\n/consent\n` });
    await consented('partner_a');
    a.proc.stdin.end();
    const ra = await a.exited;
    assert.equal(ra.code, 0, ra.out);

    const b = join([], { env: { ATTUNE_LINK: url('partner_b') }, input: '/consent\n' });
    await consented('partner_b');
    b.proc.stdin.end();
    const rb = await b.exited;
    assert.equal(rb.code, 0, rb.out);
    await t.close();

    const none = join([], { env: { ATTUNE_LINK: '' }, input: '' });
    none.proc.stdin.end();
    const rn = await none.exited;
    assert.equal(rn.code, 2);
    assert.match(rn.out, /ATTUNE_LINK/);
    const empty = join(['-'], { input: '' });
    empty.proc.stdin.end();
    assert.equal((await empty.exited).code, 2);
  });
});
