// Browser-test harness: starts the real attune-server (--demo, a free port, a
// temporary data directory), drives Debian's Chromium through playwright-core
// (never a downloaded browser), records every WebSocket frame a page
// receives, runs axe-core and saves screenshots under tests/artifacts/.
//
// ATTUNE_E2E_TLS=1 runs the same tests over https:// and wss://: a throwaway
// CA and a certificate for 127.0.0.1 are made for this process
// (tests/integration/pki.js), every server starts with --tls-cert/--tls-key,
// Chromium trusts exactly that certificate
// (--ignore-certificate-errors-spki-list pins its public key; no blanket
// ignore-certificate-errors), and the tests' own node clients trust the CA
// (server.fetch, server.webSocket).
//
// ATTUNE_E2E_CLUSTER=1 (with ATTUNE_TEST_PG, a superuser URI such as
// tests/pg/cluster.sh's) runs them against two nodes on PostgreSQL behind
// nginx (issue 13): every startServer() makes a fresh database, one KEK and
// one invitation key for both nodes, starts nginx with
// deploy/nginx/attune-cluster.conf (its ports replaced:
// tests/cluster/cluster.js's clusterConf) and the two nodes (both --demo:
// the first creates the demo room, the second finds it in the database),
// and the browsers and the tests' own requests go through nginx. Therapist
// accounts and observer links are made with `attune --store`. Over http only
// (not with ATTUNE_E2E_TLS=1). A test that cannot hold across nodes skips
// itself with CLUSTER_SKIP's reason.

import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm, mkdir, readFile } from 'node:fs/promises';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import { makeCa, issueServerCert } from '../integration/pki.js';
import { freshDatabase, sharedKeys, startNginx } from '../cluster/cluster.js';

const require = createRequire(import.meta.url);
export const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const artifacts = join(repo, 'tests', 'artifacts');

const CHROMIUM = process.env.ATTUNE_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Whether this run is over TLS (ATTUNE_E2E_TLS=1). */
export const TLS = process.env.ATTUNE_E2E_TLS === '1';

/** Whether this run is two nodes on PostgreSQL behind nginx (ATTUNE_E2E_CLUSTER=1). */
export const CLUSTER = process.env.ATTUNE_E2E_CLUSTER === '1';
const PG_ADMIN = process.env.ATTUNE_TEST_PG;
if (CLUSTER && !PG_ADMIN) throw new Error('ATTUNE_E2E_CLUSTER=1 needs ATTUNE_TEST_PG (tests/pg/cluster.sh start DIR)');
if (CLUSTER && TLS) throw new Error('ATTUNE_E2E_CLUSTER=1 runs over http only (nginx has no certificate here)');

/**
 * For a test that cannot hold across nodes by its nature: `{ skip:
 * CLUSTER_SKIP(reason) }` skips it in cluster mode only.
 */
export const CLUSTER_SKIP = (reason) => (CLUSTER ? `two nodes behind nginx: ${reason}` : false);

let pki = null;
/** The process's test CA and server certificate (TLS mode), made on first use. */
function testPki() {
  if (!pki) {
    const dir = mkdtempSync(join(tmpdir(), 'attune-e2e-pki-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    const ca = makeCa(dir);
    const cert = issueServerCert(ca, { serial: '5e2e', certPath: join(dir, 'server.pem'), keyPath: join(dir, 'server-key.pem') });
    pki = { ...cert, ca: readFileSync(ca.caCert) };
  }
  return pki;
}

/**
 * fetch() for the tests' own requests: the global one over http, over https
 * one that trusts the test CA (Node 20's fetch takes no CA). Resolves with a
 * Response.
 */
export function nodeFetch(url, { method = 'GET', headers = {}, body } = {}) {
  if (!url.startsWith('https:')) return fetch(url, { method, headers, body });
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca: testPki().ca, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const list = Object.entries(res.headers).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]]));
        const empty = [101, 204, 205, 304].includes(res.statusCode);
        resolve(new Response(empty ? null : Buffer.concat(chunks), { status: res.statusCode, headers: list }));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function builtBinary(...parts) {
  const buildDir = process.env.ATTUNE_BUILD_DIR || join(repo, 'build');
  const bin = join(buildDir, ...parts);
  if (!existsSync(bin)) {
    throw new Error(`${bin} not found: build it first (sh deploy/build.sh) or set ATTUNE_BUILD_DIR`);
  }
  return bin;
}

const serverBinary = () => builtBinary('server', 'attune-server');

// attune-server and attune refuse root without --allow-root; as root (CI on
// a fresh machine) every binary started here inherits ATTUNE_ALLOW_ROOT=1.
if (process.getuid?.() === 0) process.env.ATTUNE_ALLOW_ROOT = '1';

function run(bin, args) {
  return new Promise((resolve, reject) => {
    execFile(bin, args, (err, stdout, stderr) => (err ? reject(new Error(`${bin} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitHealthy(base, child, deadlineMs) {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`attune-server exited with ${child.exitCode}`);
    try {
      const res = await nodeFetch(`${base}/healthz`);
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > until) throw new Error('attune-server did not become healthy');
    await new Promise((r) => setTimeout(r, 50));
  }
}

// `health`: where /healthz is asked (the node itself; base may be nginx's).
async function spawnServer(port, data, base, extraArgs = [], health = base) {
  const child = spawn(
    serverBinary(),
    [
      '--demo',
      '--port', String(port),
      '--data', data,
      '--web-dir', join(repo, 'client', 'web'),
      '--protocol-dir', process.env.ATTUNE_PROTOCOL_DIR || join(repo, 'protocol'),
      '--public-url', base,
      ...(TLS ? ['--tls-cert', testPki().cert, '--tls-key', testPki().key] : []),
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const invites = {};
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  await new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no invitations printed; stderr:\n${stderr}`)), 10000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`attune-server exited with ${code}; stderr:\n${stderr}`));
    });
    child.stdout.on('data', (d) => {
      buf += d;
      for (const line of buf.split('\n')) {
        const m = /^invite (\w+) (\S+)$/.exec(line.trim());
        if (m) invites[m[1]] = m[2];
      }
      if (invites.partner_a && invites.partner_b && invites.therapist) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  child.removeAllListeners('exit');
  await waitHealthy(health, child, 5000);
  return { child, invites };
}

async function stopChild(child) {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  return exited;
}

/** `attune therapist add NAME --data DIR`, the password on stdin (as from a script). */
function addTherapist(data, name, password, extra = [], store = []) {
  return new Promise((resolve, reject) => {
    const child = execFile(builtBinary('client', 'attune'), ['therapist', 'add', name, '--data', data, ...store, ...extra], (err, stdout, stderr) =>
      err ? reject(new Error(`attune therapist add ${name}: ${stderr || err.message}`)) : resolve(stdout),
    );
    child.stdin.end(`${password}\n`);
  });
}

/**
 * Starts a server with a fresh demo room; resolves with its base URL and
 * invitations. `therapists` ([{name, password}]) are added to the data
 * directory before the server starts, `supervisors` likewise as supervisor
 * accounts (they observe rooms a therapist invites them to); `args` are
 * more server options.
 */
export async function startServer({ therapists = [], supervisors = [], args = [] } = {}) {
  if (CLUSTER) return startCluster({ therapists, supervisors, args });
  const port = await freePort();
  const data = await mkdtemp(join(tmpdir(), 'attune-e2e-'));
  const base = `${TLS ? 'https' : 'http'}://127.0.0.1:${port}`;
  for (const t of therapists) await addTherapist(data, t.name, t.password);
  for (const t of supervisors) await addTherapist(data, t.name, t.password, ['--supervisor']);
  let { child, invites } = await spawnServer(port, data, base, args);
  return {
    base,
    invites,
    data, // the data directory (e.g. for tests/bench/bench_review make)
    /** fetch(base + path) from the test itself (nodeFetch: trusts the test CA in TLS mode). */
    fetch(path, init) {
      return nodeFetch(`${base}${path}`, init);
    },
    /** A WebSocket (the ws package) to the server's /ws, as another device would open it. */
    webSocket(protocol = 'attune.v1') {
      return new WebSocket(`${base.replace(/^http/, 'ws')}/ws`, protocol, TLS ? { ca: testPki().ca } : {});
    },
    /** An observer invitation for the demo room, made with the `attune` command-line tool. */
    async observerUrl() {
      const cli = builtBinary('client', 'attune');
      const list = await run(cli, ['room', 'list', '--data', data]);
      const room = list.split('\n')[1].split(/\s+/)[0];
      const token = (await run(cli, ['token', '--data', data, '--room', room, '--role', 'observer'])).trim();
      return `${base}/?room=${room}#token=${token}`;
    },
    /** Stops the server (SIGTERM) and starts it again on the same port and data. */
    async restart() {
      const code = await stopChild(child);
      if (code !== 0) throw new Error(`attune-server exited with ${code} on SIGTERM`);
      ({ child, invites } = await spawnServer(port, data, base, args));
      return invites;
    },
    /** Stops the server (SIGTERM) and leaves it down until up(). */
    async down() {
      const code = await stopChild(child);
      if (code !== 0) throw new Error(`attune-server exited with ${code} on SIGTERM`);
      child = null;
    },
    /** Starts it again after down(), on the same port and data. */
    async up() {
      ({ child, invites } = await spawnServer(port, data, base, args));
      return invites;
    },
    async stop() {
      if (child) await stopChild(child);
      await rm(data, { recursive: true, force: true });
    },
  };
}

let clusterCount = 0;

// The room of an invitation link: its token's payload is
// base64url("v1|ROOM|ROLE|..."), signed, not secret (server/store/token.h).
function roomOfLink(url) {
  const token = url.split('#token=')[1];
  return Buffer.from(token.split('.')[0], 'base64url').toString('utf8').split('|')[1];
}

/**
 * startServer() in cluster mode: the same object (base is nginx's), two
 * nodes behind it. `data` is the first node's directory, which on
 * PostgreSQL holds only that node's own files.
 */
async function startCluster({ therapists, supervisors, args }) {
  const db = freshDatabase(PG_ADMIN, `e2e${++clusterCount}`);
  const keys = sharedKeys();
  // The `attune` command's data directory: the keys' (its secret.key is the
  // nodes' invitation key), the store the database.
  const admin = keys.dir;
  const nodes = [];
  let nginx = null;
  const stopAll = async () => {
    for (const n of nodes) await stopChild(n.child);
    if (nginx) await nginx.stop();
    for (const n of nodes) await rm(n.data, { recursive: true, force: true });
    await rm(keys.dir, { recursive: true, force: true });
    db.drop();
  };
  try {
    const ports = [await freePort(), await freePort()];
    for (const port of ports) nodes.push({ port, data: await mkdtemp(join(tmpdir(), 'attune-e2e-node-')) });
    const nginxPort = await freePort();
    const base = `http://127.0.0.1:${nginxPort}`;
    const store = ['--store', db.uri, '--kek-file', join(keys.dir, 'kek')];
    for (const t of therapists) await addTherapist(admin, t.name, t.password, [], store);
    for (const t of supervisors) await addTherapist(admin, t.name, t.password, ['--supervisor'], store);
    // nginx passes Host without its port (proxy_set_header Host $host), so
    // the page's Origin is not "same origin" to a node: allow it by name.
    // Client addresses come from nginx's X-Forwarded-For.
    const nodeArgs = (i) => ['--store', db.uri, ...keys.args, '--node-name', `e2e${i + 1}`, '--origin', base, '--trusted-proxy', '127.0.0.1', ...args];
    const startNodes = async () => {
      let invites = null;
      for (const [i, n] of nodes.entries()) {
        const started = await spawnServer(n.port, n.data, base, nodeArgs(i), `http://127.0.0.1:${n.port}`);
        n.child = started.child;
        invites ??= started.invites;
      }
      return invites;
    };
    // The demo room is made by a node that then stops: a room is created
    // held by its maker, and a member nginx sends to the other node would be
    // refused (4503) until the maker hands it over; a room whose holder is
    // gone is taken at once by the first node a member reaches.
    const maker = await spawnServer(nodes[0].port, nodes[0].data, base, nodeArgs(0), `http://127.0.0.1:${nodes[0].port}`);
    const makerCode = await stopChild(maker.child);
    if (makerCode !== 0) throw new Error(`attune-server exited with ${makerCode} on SIGTERM`);
    let invites = await startNodes();
    // nginx last: a node not up yet would count as failed for 5 s
    // (max_fails=1 fail_timeout=5s). Two nodes in the conf's three upstream
    // slots: the second twice.
    nginx = await startNginx([ports[0], ports[1], ports[1]], { port: nginxPort });
    const cli = (sub) => run(builtBinary('client', 'attune'), [...sub, '--data', admin, ...store]);
    return {
      base,
      invites,
      data: nodes[0].data,
      fetch(path, init) {
        return nodeFetch(`${base}${path}`, init);
      },
      /** A WebSocket to the demo room (/ws?room=ID: nginx sends a room's sockets to one node). */
      webSocket(protocol = 'attune.v1') {
        return new WebSocket(`${base.replace(/^http/, 'ws')}/ws?room=${encodeURIComponent(roomOfLink(invites.therapist))}`, protocol);
      },
      async observerUrl() {
        const list = await cli(['room', 'list']);
        const room = list.split('\n')[1].split(/\s+/)[0];
        const token = (await cli(['token', '--room', room, '--role', 'observer'])).trim();
        return `${base}/#token=${token}`;
      },
      /** Stops both nodes (SIGTERM) and starts them again; nginx and the database stay. */
      async restart() {
        for (const n of nodes) {
          const code = await stopChild(n.child);
          if (code !== 0) throw new Error(`attune-server exited with ${code} on SIGTERM`);
        }
        invites = await startNodes();
        return invites;
      },
      stop: stopAll,
    };
  } catch (e) {
    await stopAll().catch(() => {});
    throw e;
  }
}

/**
 * Launches Debian's Chromium. playwright's launch() always starts it with a
 * fresh temporary --user-data-dir of its own and removes it on close.
 */
/**
 * Logs a staff account in through the login page of a fresh page in
 * `context` and waits for the dashboard: the way into a live view (which
 * then opens with a ticket from this login, not a link).
 */
export async function loginPage(context, base, { name, password }) {
  const page = await context.newPage();
  await page.goto(`${base}/login.html`);
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(/\/dashboard\.html$/);
  return page;
}

export function launchBrowser() {
  // In TLS mode: this one certificate is accepted, by its public key.
  const args = TLS ? [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${testPki().spki}`] : CHROMIUM_ARGS;
  return chromium.launch({ executablePath: CHROMIUM, args, headless: true });
}

/** Opens an invitation in its own browser context; records frames and page errors. */
export async function openParticipant(browser, url, width) {
  const context = await browser.newContext({ viewport: { width, height: 860 } });
  context.setDefaultTimeout(10000);
  const page = await context.newPage();
  const received = [];
  const sent = [];
  const problems = [];
  const sockets = []; // every socket URL the page opened, in order
  page.on('websocket', (ws) => {
    sockets.push(ws.url());
    // In TLS mode every socket the app opens must be wss:// (the page's own
    // scheme picks it: client/web/js/connection.js).
    if (TLS && !ws.url().startsWith('wss://')) problems.push(`websocket not over TLS: ${ws.url()}`);
    ws.on('framereceived', (f) => received.push(String(f.payload)));
    ws.on('framesent', (f) => sent.push(String(f.payload)));
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(url);
  return { context, page, received, sent, problems, sockets, width };
}

let axeSource = null;
/** Serious and critical axe-core violations on the page as it is now. */
export async function axeViolations(page) {
  if (!axeSource) axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  // Evaluated through the DevTools protocol, so the page's CSP (no inline
  // scripts) stays in force for the app itself.
  const loaded = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!loaded) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  if (!result.passes.length) throw new Error('axe-core ran no checks');
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/**
 * Saves the page at phone (375 px) and desktop (1280 px) width, then restores
 * its width. The whole page by default; `{ full: false }` keeps the window's
 * height (for an open dialog, as a person sees it).
 */
export async function screenshots(p, name, { full = true } = {}) {
  await mkdir(artifacts, { recursive: true });
  for (const width of [375, 1280]) {
    await p.page.setViewportSize({ width, height: 860 });
    if (full) await p.page.evaluate(() => window.scrollTo(0, 0));
    await p.page.waitForTimeout(100);
    if (full) {
      // A viewport as tall as the page, so sticky bars sit where a reader
      // scrolling to the end would see them.
      const height = await p.page.evaluate(() => document.documentElement.scrollHeight);
      await p.page.setViewportSize({ width, height: Math.max(860, height) });
      await p.page.waitForTimeout(100);
    }
    await p.page.screenshot({ path: join(artifacts, `${name}-${width}.png`) });
  }
  await p.page.setViewportSize({ width: p.width, height: 860 });
}
