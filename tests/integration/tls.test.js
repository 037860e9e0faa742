// tls.test.js - attune-server's own TLS (--tls-cert/--tls-key): a throwaway
// CA and a server certificate for 127.0.0.1/localhost made with the openssl
// command for this run (pki.js). TLS 1.1 and weak suites are refused, TLS
// 1.2 and 1.3 connect and verify against the CA; every HTTPS answer carries
// Strict-Transport-Security and the login cookie is Secure; a WSS hello
// works; `attune join` takes an https:// link and checks the certificate
// against the trust store it is given (SSL_CERT_FILE); SIGHUP serves a new
// certificate to the next handshake without dropping open connections, and
// a bad new pair leaves the old one served; bad flags and files stop the
// start with a readable message; plain HTTP on a non-loopback address warns;
// behind a TLS proxy (an https:// --public-url) the plain-HTTP answers carry
// HSTS and the Secure cookie too, and without one neither.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import { Client, startServer, createRoom, tempDir, serverBin, cliBin, addAccount, sleep, AS_ROOT } from './harness.js';
import { hasOpenssl, makeCa, issueServerCert } from './pki.js';

const skip = hasOpenssl() ? false : 'no openssl command';
const PASSWORD = 'a long test passphrase for dana';
let pki, dataDir, srv, ca, certPath, keyPath, first;

before(async () => {
  if (skip) return;
  pki = makeCa(tempDir('tls-pki'));
  ca = fs.readFileSync(pki.caCert);
  certPath = path.join(pki.dir, 'server.pem');
  keyPath = path.join(pki.dir, 'server-key.pem');
  first = issueServerCert(pki, { serial: '1001', certPath, keyPath });
  dataDir = tempDir('tls');
  fs.chmodSync(dataDir, 0o700);
  addAccount(dataDir, 'dana', PASSWORD);
  srv = await startServer({ dataDir, args: ['--tls-cert', certPath, '--tls-key', keyPath] });
});
after(async () => {
  if (!srv) return;
  // A clean exit after the reloads (under the sanitizers: no leak, no error).
  const { code } = await srv.stop();
  assert.equal(code, 0, srv.logs.filter((l) => l.unparsed).map((l) => l.unparsed).join('\n'));
});

// A program run to its end without blocking this process (the server's log
// and the test's WebSocket clients keep being read): {code, out, err}.
function run(bin, args, { input = '', env } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, out, err }));
    p.stdin.end(input);
  });
}

// One TLS handshake by openssl s_client, verified against the test CA.
function sClient(args) {
  return run('openssl', ['s_client', '-connect', `127.0.0.1:${srv.port}`, '-CAfile', pki.caCert,
    '-verify_ip', '127.0.0.1', '-verify_return_error', '-showcerts', ...args]);
}

// The serial number of the certificate a new handshake is given.
async function servedSerial() {
  const r = await sClient(['-tls1_3']);
  assert.equal(r.code, 0, r.err);
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.out);
  assert.ok(pem, r.out);
  return new crypto.X509Certificate(pem[0]).serialNumber;
}

// One HTTPS request trusting only the test CA: {status, headers, text}.
function get(method, urlPath, { json } = {}) {
  return new Promise((resolve, reject) => {
    const body = json === undefined ? undefined : JSON.stringify(json);
    const req = https.request(
      { host: '127.0.0.1', port: srv.port, method, path: urlPath, ca, agent: false,
        headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

// A WebSocket member over wss://, trusting only the test CA, after its hello.
async function wssMember(token) {
  const ws = new WebSocket(`wss://127.0.0.1:${srv.port}/ws`, 'attune.v1', { ca });
  const c = new Client(ws);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const { ack } = await c.hello(token);
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  return c;
}

test('TLS 1.1 and suites without ECDHE+AEAD are refused; TLS 1.2 and 1.3 connect and verify', { skip }, async () => {
  // The client really offers TLS 1.1 (SECLEVEL=0 lets this OpenSSL do it):
  // the refusal is the server's protocol_version alert, not the client's.
  const old = await sClient(['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0']);
  assert.notEqual(old.code, 0);
  assert.match(old.err, /alert protocol version/, old.err);
  const weak = await sClient(['-tls1_2', '-cipher', 'AES128-SHA256:AES256-SHA:DHE-RSA-AES128-GCM-SHA256']);
  assert.notEqual(weak.code, 0);
  assert.match(weak.err, /handshake failure/, weak.err);
  for (const [flag, version] of [['-tls1_2', 'TLSv1.2'], ['-tls1_3', 'TLSv1.3']]) {
    const r = await sClient([flag]);
    assert.equal(r.code, 0, `${flag}: ${r.err}`);
    const suite = new RegExp(`^New, ${version.replace('.', '\\.')}, Cipher is (\\S+)$`, 'm').exec(r.out);
    assert.ok(suite, r.out);
    assert.match(suite[1], version === 'TLSv1.2' ? /^ECDHE-ECDSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/ : /^TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$/);
    assert.match(r.out, /Verify return code: 0 \(ok\)/);
    assert.match(r.out, /Compression: NONE/);
  }
  // Renegotiation is refused: s_client's R command asks for one.
  const reneg = await new Promise((resolve) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${srv.port}`, '-tls1_2', '-CAfile', pki.caCert]);
    let err = '';
    p.stdout.on('data', () => {});
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', () => resolve(err));
    p.stdin.write('R\n');
    setTimeout(() => p.stdin.end(), 1500);
  });
  assert.match(reneg, /RENEGOTIATING[\s\S]*no renegotiation/, reneg);
  // Plain HTTP on the TLS port gets no HTTP answer.
  const plain = await new Promise((resolve) => {
    const s = net.connect(srv.port, '127.0.0.1', () => s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('error', () => {});
    s.on('close', () => resolve(got));
    setTimeout(() => s.destroy(), 3000);
  });
  assert.doesNotMatch(plain, /HTTP\/1\.1 200/);
  assert.ok(srv.logs.some((l) => l.event === 'tls_serving' && l.serial === first.serial), 'tls_serving names the certificate');
  assert.ok(srv.logs.some((l) => l.event === 'listening' && l.tls === true));
  assert.ok(!srv.logs.some((l) => l.event === 'plaintext_listen'));
});

test('HTTPS: HSTS on every answer (API, files, errors), the login cookie Secure', { skip }, async () => {
  for (const p of ['/healthz', '/', '/login.html', '/no-such-file', '/api/me']) {
    const r = await get('GET', p);
    assert.equal(r.headers['strict-transport-security'], 'max-age=31536000', `${p} (${r.status})`);
    assert.equal(r.headers['x-content-type-options'], 'nosniff', p);
  }
  assert.equal((await get('GET', '/healthz')).text.trim(), '{"status":"ok"}');
  const login = await get('POST', '/api/login', { json: { username: 'dana', password: PASSWORD } });
  assert.equal(login.status, 200, login.text);
  const cookie = login.headers['set-cookie'][0];
  assert.match(cookie, /^attune_session=[^;]+;.*; Secure/);
});

test('a WSS hello, and `attune join` with an https:// link checked against the CA it is given', { skip }, async () => {
  const room = createRoom(dataDir);
  const T = await wssMember(room.tokens.therapist);
  const link = `https://127.0.0.1:${srv.port}/#token=${room.tokens.partner_a}`;
  // Without the test CA in its trust store the certificate is refused and
  // the link never reaches the server.
  const env = { ...process.env };
  delete env.SSL_CERT_FILE;
  delete env.SSL_CERT_DIR;
  const refused = await run(cliBin(), ['join', '--no-color', link], { input: '/consent\n', env });
  assert.equal(refused.code, 1, refused.out + refused.err);
  assert.match(refused.err, /TLS certificate was refused \(unable to get local issuer certificate\)/);
  // With it (SSL_CERT_FILE, as OpenSSL reads it), and no --insecure.
  const join = spawn(cliBin(), ['join', '--no-color', '-'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...env, SSL_CERT_FILE: pki.caCert } });
  let out = '';
  let err = '';
  join.stdout.on('data', (d) => (out += d));
  join.stderr.on('data', (d) => (err += d));
  const exited = new Promise((resolve) => join.on('exit', (code) => resolve(code)));
  join.stdin.write(`${link}\n/consent\n`);
  await T.waitFor((m) => m.type === 'event' && m.event.type === 'consented' && m.event.by === 'partner_a');
  join.stdin.end();
  assert.equal(await exited, 0, out + err);
  assert.match(out, /^Joined room \S+ as partner_a: /m);
  T.close();
});

test('SIGHUP: the next handshake gets the new certificate, open connections stay; a bad pair changes nothing', { skip }, async () => {
  assert.equal(await servedSerial(), first.serial);
  const room = createRoom(dataDir);
  const T = await wssMember(room.tokens.therapist);
  const B = await wssMember(room.tokens.partner_b);
  const second = issueServerCert(pki, { serial: '2002', certPath, keyPath });
  const from = srv.logs.length;
  srv.proc.kill('SIGHUP');
  const deadline = Date.now() + 5000;
  while (!srv.logs.slice(from).some((l) => l.event === 'tls_reloaded')) {
    assert.ok(Date.now() < deadline, JSON.stringify(srv.logs.slice(from)));
    await sleep(20);
  }
  assert.ok(srv.logs.slice(from).some((l) => l.event === 'tls_reloaded' && l.serial === second.serial));
  assert.equal(await servedSerial(), second.serial);
  // The connections from before the reload still carry the session.
  assert.equal((await B.request({ type: 'consent', accept: true })).type, 'ack');
  await T.waitFor((m) => m.type === 'event' && m.event.type === 'consented' && m.event.by === 'partner_b');
  assert.equal(B.closeInfo, undefined);
  // A key that is not the certificate's: refused, logged, the served pair kept.
  const stray = issueServerCert(pki, { serial: '3003', certPath: path.join(pki.dir, 'stray.pem'), keyPath: path.join(pki.dir, 'stray-key.pem') });
  fs.copyFileSync(stray.key, keyPath);
  const from2 = srv.logs.length;
  srv.proc.kill('SIGHUP');
  const deadline2 = Date.now() + 5000;
  let failed;
  while (!(failed = srv.logs.slice(from2).find((l) => l.event === 'tls_reload_failed'))) {
    assert.ok(Date.now() < deadline2, JSON.stringify(srv.logs.slice(from2)));
    await sleep(20);
  }
  assert.match(failed.error, /is not the private key of --tls-cert/);
  assert.equal(await servedSerial(), second.serial);
  // A file that is not a certificate at all: the same.
  fs.copyFileSync(second.key, keyPath);
  fs.writeFileSync(certPath, 'not a certificate\n');
  const from3 = srv.logs.length;
  srv.proc.kill('SIGHUP');
  const deadline3 = Date.now() + 5000;
  while (!(failed = srv.logs.slice(from3).find((l) => l.event === 'tls_reload_failed'))) {
    assert.ok(Date.now() < deadline3);
    await sleep(20);
  }
  assert.match(failed.error, /no PEM certificate/);
  assert.equal(await servedSerial(), second.serial);
  assert.equal((await get('GET', '/healthz')).status, 200);
  assert.ok(srv.alive());
  B.close();
  T.close();
});

test('start-up: --tls-cert without --tls-key, a missing file, a key of another certificate: a readable refusal', { skip }, async () => {
  const dir = tempDir('tls-start');
  fs.chmodSync(dir, 0o700);
  const base = ['--data', dir, '--port', '0', ...(AS_ROOT ? ['--allow-root'] : [])];
  const half = await run(serverBin(), [...base, '--tls-cert', certPath]);
  assert.equal(half.code, 2);
  assert.match(half.err, /--tls-cert needs --tls-key/);
  const missing = await run(serverBin(), [...base, '--tls-cert', path.join(pki.dir, 'nope.pem'), '--tls-key', keyPath]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /"startup_failed".*--tls-cert [^"]*nope\.pem: No such file or directory/);
  const other = issueServerCert(pki, { serial: '4004', certPath: path.join(pki.dir, 'other.pem'), keyPath: path.join(pki.dir, 'other-key.pem') });
  const mismatch = await run(serverBin(), [...base, '--tls-cert', other.cert, '--tls-key', keyPath]);
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.err, /is not the private key of --tls-cert/);
});

test('plain HTTP on a non-loopback address logs a warning at start', { skip }, async () => {
  const plain = await startServer({ args: ['--listen', '0.0.0.0'] });
  try {
    const warn = plain.logs.find((l) => l.event === 'plaintext_listen');
    assert.ok(warn, JSON.stringify(plain.logs));
    assert.equal(warn.level, 'warn');
    assert.match(warn.why, /in the clear unless a TLS proxy is in front/);
  } finally {
    await plain.stop();
  }
});

test('behind a TLS proxy (an https:// --public-url): HSTS and a Secure cookie over plain HTTP to the proxy; neither without', { skip }, async () => {
  const { request } = await import('./http.js');
  const dir = tempDir('tls-proxied');
  fs.chmodSync(dir, 0o700);
  addAccount(dir, 'dana', PASSWORD);
  for (const [publicUrl, behindTls] of [['https://attune.clinic.example', true], ['', false]]) {
    const s = await startServer({ dataDir: dir, args: publicUrl ? ['--public-url', publicUrl, '--allowed-host', '127.0.0.1'] : [] });
    try {
      for (const p of ['/healthz', '/', '/no-such-file']) {
        const r = await request(s, 'GET', p);
        assert.equal(r.headers['strict-transport-security'], behindTls ? 'max-age=31536000' : undefined, `${publicUrl || 'plain'} ${p}`);
      }
      const login = await request(s, 'POST', '/api/login', { json: { username: 'dana', password: PASSWORD } });
      assert.equal(login.status, 200, login.text);
      assert.equal(/; Secure/.test(login.headers['set-cookie'][0]), behindTls, login.headers['set-cookie'][0]);
      assert.ok(s.logs.some((l) => l.event === 'listening' && l.tls === false));
    } finally {
      await s.stop();
    }
  }
});
