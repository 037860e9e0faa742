// crisis.test.js - GET /api/crisis (protocol/HTTP.md) against the real
// server: public (no cookie), JSON, no-store, the security headers; without
// --crisis-file the built-in default (configured false, the default neutral
// address); with deploy/crisis.example.json (given as a flag or in a --config
// file) the practice's lines in their order; and a bad file stops start-up
// with an error naming the member at fault.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, tempDir, serverBin, ROOT } from './harness.js';

const EXAMPLE = path.join(ROOT, 'deploy', 'crisis.example.json');
const DEFAULT_NEUTRAL = 'https://www.wikipedia.org/';

async function getCrisis(srv, init) {
  const res = await fetch(`${srv.httpUrl}/api/crisis`, init);
  const text = await res.text();
  return { res, text, json: text ? JSON.parse(text) : undefined };
}

function assertPublicJson(res) {
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.match(res.headers.get('content-security-policy'), /default-src 'self'/);
  assert.equal(res.headers.get('set-cookie'), null);
}

/** Starts the server with args expecting it to refuse; returns its stderr. */
function refusedStart(args) {
  const r = spawnSync(serverBin(), ['--data', tempDir('crisis-bad'), '--port', '0', ...args], {
    encoding: 'utf8',
    timeout: 10000,
  });
  assert.equal(r.status, 1, `exit status (stderr: ${r.stderr})`);
  const line = r.stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .find((l) => l.event === 'startup_failed');
  assert.ok(line, r.stderr);
  return line.error;
}

describe('GET /api/crisis', () => {
  const servers = [];
  after(async () => {
    for (const s of servers) await s.stop('SIGKILL');
  });

  test('without --crisis-file: the built-in default, public, no login', async () => {
    const srv = await startServer();
    servers.push(srv);
    const { res, json } = await getCrisis(srv);
    assertPublicJson(res);
    assert.deepEqual(json, { configured: false, lines: [], domestic_abuse: [], neutral_url: DEFAULT_NEUTRAL });
    // A stale or forged session cookie changes nothing: the route never authenticates.
    const again = await getCrisis(srv, { headers: { cookie: 'attune_session=forged' } });
    assert.equal(again.res.status, 200);
    assert.equal(again.res.headers.get('set-cookie'), null);
    // Only GET.
    const post = await fetch(`${srv.httpUrl}/api/crisis`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(post.status, 404);
  });

  test('with deploy/crisis.example.json: its lines in order, the practice neutral address', async () => {
    const srv = await startServer({ args: ['--crisis-file', EXAMPLE] });
    servers.push(srv);
    const file = JSON.parse(fs.readFileSync(EXAMPLE, 'utf8'));
    const { res, json } = await getCrisis(srv);
    assertPublicJson(res);
    assert.equal(json.configured, true);
    assert.equal(json.country, file.country);
    assert.equal(json.emergency, file.emergency);
    assert.equal(json.neutral_url, file.neutral_url);
    assert.deepEqual(json.lines, file.lines);
    assert.deepEqual(json.domestic_abuse, file.domestic_abuse);
  });

  test('crisis-file in a --config file works the same', async () => {
    const dir = tempDir('crisis-conf');
    const minimal = path.join(dir, 'crisis.json');
    fs.writeFileSync(minimal, JSON.stringify({ neutral_url: 'https://weather.example/today' }));
    const conf = path.join(dir, 'attune.conf');
    fs.writeFileSync(conf, `# test\ncrisis-file = ${minimal}\n`);
    const srv = await startServer({ args: ['--config', conf] });
    servers.push(srv);
    const { json } = await getCrisis(srv);
    assert.deepEqual(json, { configured: true, lines: [], domestic_abuse: [], neutral_url: 'https://weather.example/today' });
  });

  test('a bad crisis file stops start-up, naming the member', () => {
    const dir = tempDir('crisis-bad');
    const write = (name, body) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, typeof body === 'string' ? body : JSON.stringify(body));
      return p;
    };
    assert.match(refusedStart(['--crisis-file', path.join(dir, 'missing.json')]), /--crisis-file .*missing\.json: No such file/);
    assert.match(refusedStart(['--crisis-file', write('syntax.json', '{"lines": [')]), /--crisis-file .*syntax\.json:1:\d+:/);
    assert.match(
      refusedStart(['--crisis-file', write('phone.json', { lines: [{ name: 'A', phone: '988' }, { name: 'B', phone: '<script>' }] })]),
      /lines\[1\]\.phone: expected a number/,
    );
    assert.match(
      refusedStart(['--crisis-file', write('url.json', { neutral_url: 'javascript:alert(1)' })]),
      /neutral_url: expected an absolute http/,
    );
    assert.match(
      refusedStart(['--crisis-file', write('typo.json', { domestic_abuse: [{ name: 'A', webiste: 'https://x.example/' }] })]),
      /domestic_abuse\[0\]: unknown member 'webiste'/,
    );
  });

  test('--help documents --crisis-file', () => {
    const r = spawnSync(serverBin(), ['--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--crisis-file FILE .*GET \/api\/crisis/);
  });
});
