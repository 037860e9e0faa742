// helpers.mjs - runs the `attune` command and the real attune-server for the
// command-line client's tests; WebSocket members use the `ws` package.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// ATTUNE_CLI / ATTUNE_SERVER name the binaries (ctest sets them); otherwise
// the newest build*/ that has them.
function newest(rel) {
  const found = fs
    .readdirSync(ROOT)
    .filter((d) => d.startsWith('build'))
    .map((d) => path.join(ROOT, d, rel))
    .filter((p) => fs.existsSync(p))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  return found[0];
}
export const CLI = process.env.ATTUNE_CLI || newest('client/attune');
export const SERVER = process.env.ATTUNE_SERVER || newest('server/attune-server');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// attune and attune-server refuse root without --allow-root; as root (CI on
// a fresh machine) everything started here inherits ATTUNE_ALLOW_ROOT=1.
if (process.getuid?.() === 0) process.env.ATTUNE_ALLOW_ROOT = '1';

export function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'attune-cli-'));
}

// Runs `attune ARGS` to completion: {code, stdout, stderr}.
export function attune(args, { input, timeout = 20000 } = {}) {
  const r = spawnSync(CLI, args, { input, encoding: 'utf8', timeout });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Runs `attune ARGS` in the background: {proc, out(), exited}.
export function attuneAsync(args) {
  const proc = spawn(CLI, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => (stdout += d));
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { proc, out: () => stdout, err: () => stderr, exited };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Starts attune-server on a free loopback port; resolves once it listens.
export async function startServer(dataDir) {
  const port = await freePort();
  const proc = spawn(SERVER, ['--data', dataDir, '--listen', '127.0.0.1', '--port', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  proc.stderr.on('data', (d) => (log += d));
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 10000;
  while (!/"event":"listening"/.test(log)) {
    if (proc.exitCode !== null) throw new Error(`server exited:\n${log}`);
    if (Date.now() > deadline) throw new Error(`server did not start:\n${log}`);
    await sleep(20);
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    log: () => log,
    async stop() {
      proc.kill('SIGTERM');
      return exited;
    },
  };
}

// A WebSocket member: collects every message; waitFor(pred) resolves with the
// first message (from now or earlier, after `from`) that matches.
export async function member(port, token) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, 'attune.v1');
  const msgs = [];
  const waiters = [];
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString());
    msgs.push(m);
    for (const w of [...waiters]) w.check();
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  // ws offers permessage-deflate; the server packs its frames by hand and
  // must never accept an extension (server/net/ws_frame.h).
  if (ws.extensions !== '') throw new Error(`the server negotiated extensions: ${ws.extensions}`);
  let n = 0;
  const m = {
    ws,
    msgs,
    send(obj) {
      const id = `m${++n}`;
      ws.send(JSON.stringify({ ...obj, id }));
      return id;
    },
    waitFor(pred, what = 'message', timeout = 5000) {
      return new Promise((resolve, reject) => {
        const w = {
          check() {
            const hit = msgs.find(pred);
            if (hit) {
              waiters.splice(waiters.indexOf(w), 1);
              clearTimeout(w.timer);
              resolve(hit);
            }
          },
        };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(msgs.slice(-5))}`));
        }, timeout);
        waiters.push(w);
        w.check();
      });
    },
    // Sends a command and resolves with its reply (ack or error).
    async request(obj) {
      const id = m.send(obj);
      return m.waitFor((x) => (x.type === 'ack' || x.type === 'error') && x.id === id, `reply ${id}`);
    },
    lastState() {
      return [...msgs].reverse().find((x) => x.type === 'state');
    },
    close() {
      ws.close();
    },
  };
  const ack = await m.request({ type: 'hello', token });
  m.hello = ack;
  return m;
}

// Parses `room create` output into {partner_a: {url, token}, ...}.
export function invitations(stdout) {
  const out = {};
  for (const line of stdout.trim().split('\n')) {
    const [, role, url] = line.split(' ');
    out[role] = { url, token: url.split('#token=')[1] };
  }
  return out;
}
