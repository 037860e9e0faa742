// helpers.mjs - runs the `attune` command for the command-line client's
// tests; the real attune-server and the WebSocket members (the `ws` package)
// come from the integration tests' harness (tests/integration/harness.js),
// so both suites start and drive the server the same way.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, freePort, sleep, startServer as startHarnessServer, tempDir as harnessTempDir } from '../integration/harness.js';

export { freePort, sleep };

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// ATTUNE_CLI / ATTUNE_SERVER name the binaries (ctest sets them); otherwise
// the newest build*/ that has them (the harness finds the server the same way).
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
// The harness starts ATTUNE_SERVER: make it the binary found here.
if (SERVER) process.env.ATTUNE_SERVER = SERVER;

// (The harness sets ATTUNE_ALLOW_ROOT=1 when run as root: attune and
// attune-server refuse root without it, and everything started here inherits it.)

export function tempDir() {
  return harnessTempDir('cli');
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

// Starts attune-server on a free loopback port with this data directory;
// resolves once it listens.
export async function startServer(dataDir) {
  const s = await startHarnessServer({ dataDir });
  return {
    port: s.port,
    url: s.httpUrl,
    async stop() {
      return (await s.stop()).code;
    },
  };
}

// A WebSocket member (the harness's Client) after its hello: collects every
// message; waitFor(pred) resolves with the first message (received earlier
// or later) that matches.
export async function member(port, token) {
  const c = await Client.connect(`ws://127.0.0.1:${port}/ws`);
  // ws offers permessage-deflate; the server packs its frames by hand and
  // must never accept an extension (server/net/ws_frame.h).
  if (c.ws.extensions !== '') throw new Error(`the server negotiated extensions: ${c.ws.extensions}`);
  let n = 0;
  const m = {
    ws: c.ws,
    msgs: c.msgs,
    send(obj) {
      const id = `m${++n}`;
      c.send({ ...obj, id });
      return id;
    },
    waitFor(pred, what = 'message', timeout = 5000) {
      return c.waitFor(pred, { timeout }).catch((e) => {
        throw new Error(`waiting for ${what}: ${e.message}`);
      });
    },
    // Sends a command and resolves with its reply (ack or error).
    request(obj) {
      const id = m.send(obj);
      return m.waitFor((x) => (x.type === 'ack' || x.type === 'error') && x.id === id, `reply ${id}`);
    },
    lastState() {
      return c.lastState() ?? undefined;
    },
    close() {
      c.ws.close();
    },
  };
  m.hello = await m.request({ type: 'hello', token });
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
