// at-rest.test.js - what a couple said is readable nowhere at rest.
//
// One real session through the server (the therapist and both partners:
// consent, the check-in with notes, the private line both ways, therapist
// notes, every turn of the exercise, a rejected reflection, a blaming turn
// and the therapist's answer to its suspicion, a pause request, a marked
// rupture repaired by a partner's attempt and another by the therapist)
// where every free text a participant types is a unique marker
// ("MARKER-" + 16 random hex digits + a word, some with a quote, a newline
// or an accented letter, so that their JSON-escaped forms differ), and
// every vocabulary id they choose is recorded. Then each marker (as UTF-8,
// JSON-escaped, JSON-escaped ASCII-only, and its bare "MARKER-hex" and hex
// core, which are inside every one of those forms) and each chosen id of 6
// bytes or more (shorter ones could match random ciphertext by chance; the
// test says which it skipped) is searched for, byte for byte, in:
//   - every file of the data directory while the server runs, the WAL and
//     SHM included (no checkpoint has run: the test checks the WAL holds
//     the session), and again after a clean stop (WAL copied back);
//   - a backup taken with `attune backup` while the server runs, and the
//     keys backup (`attune backup --keys`);
//   - the server's stdout and stderr (its logs) and the CLI's output;
//   - a core dump: the server runs with `ulimit -c unlimited` in an empty
//     working directory and is killed with SIGABRT after the session (and
//     once more with SIGSEGV after a restart that reopened the room). Its
//     /proc/PID/limits must show a core limit of 0 (soft and hard); where
//     this process may raise it again (root with CAP_SYS_RESOURCE) it does,
//     so only PR_SET_DUMPABLE 0 stands between the abort and a core. A
//     dumpable control process (sh, killed the same way in its own empty
//     directory) shows whether this machine writes cores into the working
//     directory at all (kernel.core_pattern): when it does, the server's
//     empty directory proves no core was written; when it does not, the test
//     says that check is vacuous here (server/test/test_secure_start.c
//     checks the kernel's dumpable flag in-process either way). `attune
//     replay`, slowed down and killed with SIGABRT mid-way, the same.
// 0 hits everywhere. Positive control: `attune replay` with the KEK prints
// the markers (the search would see them if they were stored in the clear).
//
// Then the data directory is copied WITHOUT its KEK (the KEK is DATA.kek
// beside the directory, outside it): `attune replay` and `attune-server` on
// the copy open no event and say why, with no KEK and with a wrong one; no
// marker is in the copy. Every file under the data directory is 0600 and
// the directory 0700; the KEK file is 0600.
//
// Last, every old data directory of tests/fixtures is migrated by this
// build and none of its old payload bytes (legacy plaintext texts, seals
// under the deleted DATA/data.key) is left in any of its files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, Client, tempDir, inputFor, actorOf, sleep, attune, serverBin, cliBin,
  helloAckOf, AS_ROOT, ROOT, sqliteOnly } from './harness.js';

// --- the markers ---
const WORDS = ['alone', 'dishes', 'café "ici"', 'naïve\tlist', 'line\nbreak', 'Grüße', 'why?\\'];
const markers = [];
function marker(what) {
  const hex = randomBytes(8).toString('hex');
  const text = `MARKER-${hex}-${WORDS[markers.length % WORDS.length]} (${what})`;
  markers.push({ text, hex, what });
  return text;
}
const chosenIds = new Set();

// JSON-escaped (as JSON.stringify writes it) and ASCII-only (as jansson's
// JSON_ENSURE_ASCII would: \uXXXX for every non-ASCII character).
const jsonEscaped = (s) => JSON.stringify(s).slice(1, -1);
const asciiEscaped = (s) =>
  jsonEscaped(s).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

// Every needle: [label, Buffer].
function needles() {
  const out = [];
  for (const m of markers) {
    const forms = new Set([m.text, jsonEscaped(m.text), asciiEscaped(m.text), `MARKER-${m.hex}`, m.hex]);
    for (const f of forms) out.push([`marker ${JSON.stringify(m.text)} as ${JSON.stringify(f)}`, Buffer.from(f, 'utf8')]);
  }
  for (const id of chosenIds) if (Buffer.byteLength(id) >= 6) out.push([`vocabulary id ${id}`, Buffer.from(id, 'utf8')]);
  return out;
}

// Hits of every needle in buf: ["where: what", ...].
function hitsIn(where, buf) {
  const hits = [];
  for (const [what, n] of needles()) if (buf.indexOf(n) >= 0) hits.push(`${where}: ${what}`);
  return hits;
}

// Every regular file under dir (recursively): [path, ...].
function filesUnder(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

function searchDir(label, dir) {
  const files = filesUnder(dir);
  assert.ok(files.length > 0, `${label}: ${dir} holds files`);
  const hits = files.flatMap((f) => hitsIn(`${label} ${path.relative(dir, f)}`, fs.readFileSync(f)));
  return { files, hits };
}

// Every file under dir 0600, every directory (dir included) 0700.
function modesUnder(dir) {
  const wrong = [];
  const walk = (d) => {
    const m = fs.statSync(d).mode & 0o777;
    if (m !== 0o700) wrong.push(`${d} is a directory of mode ${m.toString(8)}`);
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const fm = fs.lstatSync(p).mode & 0o777;
        if (fm !== 0o600) wrong.push(`${p} has mode ${fm.toString(8)}`);
      }
    }
  };
  walk(dir);
  return wrong;
}

// Raw bytes a child wrote to stdout and stderr, from now on.
function captureOutput(proc) {
  const chunks = [];
  proc.stdout.on('data', (d) => chunks.push(Buffer.from(d)));
  proc.stderr.on('data', (d) => chunks.push(Buffer.from(d)));
  return () => Buffer.concat(chunks);
}

// `kernel.core_pattern` and whether it writes a plain file into the dumping
// process's working directory.
function corePattern() {
  try {
    const p = fs.readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
    return { pattern: p, intoCwd: p !== '' && !p.startsWith('|') && !p.includes('/') };
  } catch {
    return { pattern: '(unreadable)', intoCwd: false };
  }
}

// "Max core file size" soft and hard, from /proc/PID/limits.
function coreLimits(pid) {
  const line = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max core file size'));
  const [soft, hard] = line.replace('Max core file size', '').trim().split(/\s+/);
  return { soft, hard };
}

// Raises a running process's core limit to unlimited; false when this
// process may not (it needs CAP_SYS_RESOURCE once the hard limit is 0).
function raiseCoreLimit(pid) {
  const r = spawnSync('prlimit', ['--pid', String(pid), '--core=unlimited:unlimited'], { encoding: 'utf8' });
  return r.status === 0;
}

const ULIMIT_WRAP = ['sh', '-c', 'ulimit -c unlimited 2>/dev/null || ulimit -c "$(ulimit -H -c)"; exec "$0" "$@"'];

let parent, dataDir, kekFile, srv, getOutput, room, cwd;
const outputs = []; // [label, Buffer] of everything the server and the CLI printed
before(() => {
  parent = tempDir('atrest');
  dataDir = path.join(parent, 'data');
  kekFile = path.join(parent, 'data.kek'); // the default: DATA.kek beside the data directory
  cwd = path.join(parent, 'cwd');
  fs.mkdirSync(cwd);
});
after(async () => {
  await srv?.stop('SIGKILL');
  if (parent) fs.rmSync(parent, { recursive: true, force: true });
});

function cli(label, args) {
  const r = attune(args);
  outputs.push([`attune ${label} stdout`, Buffer.from(r.stdout || '')], [`attune ${label} stderr`, Buffer.from(r.stderr || '')]);
  return r;
}

test('a whole session leaves no readable text or chosen id at rest', { skip: sqliteOnly("it scans the data directory's SQLite files (attune.db, its WAL, keys.db) and a core dump for plaintext; the rows are in the cluster's files there, sealed by the same seal.h") }, async (t) => {
  // The room is created by the server's own tool, as an operator would.
  const made = spawnSync(serverBin(), ['--create-room', 'enactment', '--data', dataDir, ...(AS_ROOT ? ['--allow-root'] : [])], {
    encoding: 'utf8',
    cwd,
  });
  assert.equal(made.status, 0, made.stderr);
  outputs.push(['create-room stdout', Buffer.from(made.stdout)], ['create-room stderr', Buffer.from(made.stderr)]);
  room = { room: null, tokens: {} };
  for (const line of made.stdout.trim().split('\n')) {
    const [kind, a, b] = line.split(' ');
    if (kind === 'room') room.room = a;
    if (kind === 'invite') room.tokens[a] = b.slice(b.indexOf('#token=') + 7);
  }
  assert.ok(room.room && room.tokens.therapist && room.tokens.partner_a && room.tokens.partner_b);

  srv = await startServer({ dataDir, cwd, wrap: ULIMIT_WRAP, args: ['--rate', '1000', '--burst', '1000'] });
  getOutput = captureOutput(srv.proc);

  const T = await Client.connect(srv.wsUrl);
  const vocab = (await T.hello(room.tokens.therapist)).ack.vocab;
  const A = await Client.connect(srv.wsUrl);
  const B = await Client.connect(srv.wsUrl);
  const by = { partner_a: A, partner_b: B, therapist: T };
  await A.hello(room.tokens.partner_a);
  await B.hello(room.tokens.partner_b);

  // A command that must be acked and committed (the therapist sees every commit).
  async function act(role, msg) {
    const from = T.msgs.length;
    const reply = await by[role].request(msg);
    assert.equal(reply.type, 'ack', `${role} ${JSON.stringify(msg)}: ${JSON.stringify(reply)}`);
    await T.waitFor((m) => m.type === 'state', { from });
    return reply;
  }
  const tEvent = (pred, from = 0) => T.waitFor((m) => m.type === 'event' && pred(m.event), { from });

  await act('partner_a', { type: 'consent', accept: true });
  await act('partner_b', { type: 'consent', accept: true });
  const safety = helloAckOf(A).safety;
  const answers = (hold) =>
    Object.fromEntries(safety.questions.map((q) => [q.id, hold ? q.hold[0] : q.options.find((o) => !q.hold.includes(o.id)).id]));

  // the private line both ways, before the check-in ends; a therapist note
  await act('partner_a', { type: 'private_message', text: marker('A to therapist') });
  await act('therapist', { type: 'private_message', to: 'partner_a', text: marker('therapist to A') });
  await act('partner_b', { type: 'private_message', to: 'therapist', text: marker('B to therapist') });
  await act('therapist', { type: 'private_message', to: 'partner_b', text: marker('therapist to B') });
  await act('therapist', { type: 'note', text: marker('therapist note') });
  await act('partner_a', { type: 'checkin', answers: answers(false), note: marker('A check-in note') });
  await act('partner_b', { type: 'checkin', answers: answers(true), note: marker('B check-in note') });
  if (T.lastState().status === 'checking_in') await act('therapist', { type: 'control', action: 'proceed' });
  assert.equal(T.lastState().status, 'active');

  // Every turn of the exercise: each text input a marker, each vocabulary
  // pick an id (a different one each time) with a marker beside it. The first
  // turn also blames, so the detector suspects; the first reflection is
  // rejected.
  const picks = { emotion_reactive: vocab.reactive, emotion_primary: vocab.primary, need: vocab.needs };
  let nPick = 0;
  let blamed = false;
  let rejected = false;
  let turns = 0;
  let midDone = false;
  for (let guard = 0; guard < 80 && T.lastState().status !== 'ended'; guard++) {
    const st = T.lastState();
    const actor = actorOf(st);
    assert.ok(actor === 'partner_a' || actor === 'partner_b', `actor ${actor} at ${st.step?.id} (${st.status})`);
    const input = inputFor(st.step, vocab);
    for (const d of st.step.inputs) {
      if (d.kind === 'text') input[d.name] = marker(`${actor} ${st.step.id}.${d.name}`);
      if (picks[d.kind]) {
        const entries = picks[d.kind];
        const id = entries[1 + (nPick++ % (entries.length - 1))].id;
        chosenIds.add(id);
        input[d.name] = { id, text: marker(`${actor} ${st.step.id}.${d.name} words`) };
      }
    }
    if (st.step.id === 'what_happened' && !blamed) {
      input.what_happened = `You never listen to me. You always ignore me and it is your fault. ${marker('blaming turn')}`;
      blamed = true;
    }
    if (st.step.tag === 'reflection_check') {
      input.landed = rejected ? 'yes' : 'no';
      rejected = true;
    }
    await act(actor, { type: 'turn', step: st.step.id, input });
    turns++;

    // Half way: a pause request, ruptures and their repairs, the
    // therapist's answer to the detector.
    if (!midDone && st.step.id === 'respond') {
      midDone = true;
      await act('partner_b', { type: 'pause_request', note: marker('B pause request') });
      assert.equal(T.lastState().status, 'paused');
      await act('therapist', { type: 'control', action: 'resume' });

      for (const s of T.events().filter((e) => e.event.type === 'rupture_suspected')) {
        const open = T.lastState().suspicions?.find?.((x) => x.id === s.event.rupture.id);
        if (open && open.status && open.status !== 'suspected') continue;
        await act('therapist', { type: 'rupture_dismiss', suspicion_id: s.event.rupture.id, note: marker('dismiss note') });
      }

      let from = T.msgs.length;
      await act('therapist', {
        type: 'rupture_mark', kind: 'withdrawal', marker: 'minimal_response', who: 'partner_b', with: 'partner_a',
        note: marker('rupture mark note'),
      });
      const r1 = (await tEvent((e) => e.type === 'rupture_opened', from)).event.rupture.id;
      from = T.msgs.length;
      await act('partner_a', { type: 'repair_attempt', text: marker('A repair attempt'), rupture_id: r1 });
      const attempt = (await tEvent((e) => e.type === 'repair_attempt', from)).event.attempt_id;
      await act('partner_b', { type: 'repair_accept', attempt_id: attempt });
      await act('therapist', { type: 'note', text: marker('note on a rupture'), rupture_id: r1 });

      from = T.msgs.length;
      await act('therapist', {
        type: 'rupture_mark', kind: 'withdrawal', marker: 'minimal_response', who: 'partner_a', with: 'partner_b',
        note: marker('second rupture mark note'),
      });
      const r2 = (await tEvent((e) => e.type === 'rupture_opened', from)).event.rupture.id;
      await act('therapist', { type: 'rupture_repair', rupture_id: r2, strategy: 'discuss_what_happened', note: marker('repair note') });
    }
  }
  assert.equal(T.lastState().status, 'ended', `the exercise ran to its end (${turns} turns)`);
  assert.ok(midDone && blamed && rejected, 'the session had its pause, ruptures, blame and a rejected reflection');
  await act('therapist', { type: 'note', text: marker('note after the end') });
  const shortIds = [...chosenIds].filter((id) => Buffer.byteLength(id) < 6);
  t.diagnostic(`${turns} turns, ${markers.length} markers, ${chosenIds.size} vocabulary ids chosen` +
    (shortIds.length ? `; skipped as too short to search (< 6 bytes): ${shortIds.join(', ')}` : '; none shorter than 6 bytes'));
  assert.ok(chosenIds.size - shortIds.length >= 3, 'enough chosen ids to search');

  // Positive control: with the KEK, the stored session reads back (so the
  // markers were stored, and a search would find them if they were plain).
  const replay = attune(['replay', '--data', dataDir, '--room', room.room]); // not in `outputs`: it is the session
  assert.equal(replay.code, 0, replay.stderr);
  const replayed = markers.filter((m) => replay.stdout.includes(`MARKER-${m.hex}`)).length;
  assert.ok(replayed >= markers.length / 2, `attune replay prints the session's markers (${replayed} of ${markers.length})`);
  assert.ok(hitsIn('control', Buffer.from(replay.stdout)).length > 0, 'the search finds markers in plain text');

  // `attune` holds the KEK and decrypted events too: a slowed-down replay
  // under ulimit -c unlimited, killed with SIGABRT mid-way, leaves no core.
  {
    const replayCwd = path.join(parent, 'replay-cwd');
    fs.mkdirSync(replayCwd);
    const slow = spawn(ULIMIT_WRAP[0], [...ULIMIT_WRAP.slice(1), cliBin(), 'replay', '--data', dataDir, '--room', room.room, '--speed', '0.0001', '--no-color'],
      { cwd: replayCwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const slowOut = captureOutput(slow);
    const slowExit = new Promise((r) => slow.on('exit', (code, signal) => r({ code, signal })));
    const deadline = Date.now() + 5000;
    // Its first event printed: the room's key is unwrapped and events opened.
    while (slowOut().length === 0 && Date.now() < deadline) await sleep(20);
    assert.ok(slowOut().length > 0, 'the slowed replay has begun printing');
    assert.deepEqual(coreLimits(slow.pid), { soft: '0', hard: '0' }, "attune set its own core limit to 0");
    slow.kill('SIGABRT');
    assert.equal((await slowExit).signal, 'SIGABRT', 'the replay was still running when aborted');
    await sleep(300);
    assert.deepEqual(fs.readdirSync(replayCwd), [], 'no core file from attune');
  }

  // --- the data directory while the server runs, before any checkpoint ---
  await sleep(200);
  {
    const wal = path.join(dataDir, 'attune.db-wal');
    assert.ok(fs.existsSync(wal) && fs.statSync(wal).size > 0, 'the WAL holds the session');
    const metrics = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    const ckpt = /^attune_store_checkpoints_total (\d+)/m.exec(metrics);
    assert.ok(ckpt, 'the server reports its checkpoints');
    assert.equal(ckpt[1], '0', 'no checkpoint has run: the session is only in the WAL');
    assert.ok(fs.existsSync(path.join(dataDir, 'attune.db-shm')), 'the SHM file exists while the server runs');
    const { files, hits } = searchDir('running data directory', dataDir);
    t.diagnostic(`searched while running: ${files.map((f) => path.relative(dataDir, f)).join(', ')}`);
    assert.deepEqual(hits, [], 'no marker or chosen id in the data directory while the server runs');
    assert.deepEqual(modesUnder(dataDir), [], 'every file under the data directory 0600, the directory 0700');
  }

  // --- backups, taken while the server runs ---
  await t.test('a backup and a keys backup hold nothing readable', () => {
    const dest = path.join(parent, 'backup');
    const r = cli('backup', ['backup', '--data', dataDir, dest]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(fs.existsSync(path.join(dest, 'attune.db')), 'the backup wrote DEST/attune.db');
    assert.ok(!filesUnder(dest).some((f) => /\.kek$|keys\.db$/.test(f)), 'no KEK and no keys.db in an events backup');
    const k = cli('backup --keys', ['backup', '--keys', '--data', dataDir, path.join(parent, 'keys-backup')]);
    assert.equal(k.code, 0, k.stderr);
    const found = [...searchDir('backup', dest).hits, ...searchDir('keys backup', path.join(parent, 'keys-backup')).hits];
    assert.deepEqual(found, [], 'no marker or chosen id in either backup');
    for (const f of [...filesUnder(dest), ...filesUnder(path.join(parent, 'keys-backup'))])
      assert.equal(fs.statSync(f).mode & 0o777, 0o600, `${f} is 0600`);
  });

  // --- a core dump ---
  const pid = srv.proc.pid;
  const limits = coreLimits(pid);
  assert.deepEqual(limits, { soft: '0', hard: '0' }, 'the server set its own core limit to 0, soft and hard, under ulimit -c unlimited');
  const raised = raiseCoreLimit(pid);
  if (raised) assert.equal(coreLimits(pid).soft, 'unlimited');
  const cp = corePattern();
  const controlDir = path.join(parent, 'control-cwd');
  fs.mkdirSync(controlDir);
  const control = spawn(ULIMIT_WRAP[0], [...ULIMIT_WRAP.slice(1), 'sleep', '30'], { cwd: controlDir, stdio: 'ignore' });
  const controlExit = new Promise((r) => control.on('exit', (code, signal) => r(signal)));
  await sleep(100);
  if (raised) raiseCoreLimit(control.pid);
  control.kill('SIGABRT');
  assert.equal(await controlExit, 'SIGABRT');
  await sleep(300);
  const controlDumped = fs.readdirSync(controlDir).length > 0;
  fs.rmSync(controlDir, { recursive: true, force: true });
  t.diagnostic(`kernel.core_pattern ${JSON.stringify(cp.pattern)}; a dumpable control ${controlDumped ? 'left a core in its cwd' : 'left NO core in its cwd: the no-core-file check below is vacuous on this machine'}; ` +
    (raised ? "the server's core limit was raised to unlimited from outside, so only its PR_SET_DUMPABLE 0 stops a dump" : 'this process may not raise the core limit (no CAP_SYS_RESOURCE): the limit of 0 and PR_SET_DUMPABLE 0 both stand'));
  if (cp.intoCwd) assert.ok(controlDumped, 'core_pattern writes into the cwd, so the control must have dumped');

  srv.proc.kill('SIGABRT');
  const ended = await srv.exited;
  assert.equal(ended.signal, 'SIGABRT');
  await sleep(300);
  assert.deepEqual(fs.readdirSync(cwd), [], 'no core file (or anything else) in the server\'s working directory');
  outputs.push(['server stdout and stderr (raw)', getOutput()]);
  outputs.push(['server log lines', Buffer.from(srv.logs.map((l) => JSON.stringify(l)).join('\n') + srv.stdout.join('\n'))]);

  // --- after a clean stop (the killed server's WAL recovered, then copied back) ---
  srv = await startServer({ dataDir, cwd, args: [] });
  const out2 = captureOutput(srv.proc);
  {
    const c = await Client.connect(srv.wsUrl);
    const { ack } = await c.hello(room.tokens.therapist);
    assert.equal(ack.type, 'ack', 'the room opens again after the abort');
    c.close();
  }
  const stopped = await srv.stop('SIGTERM');
  assert.equal(stopped.code, 0);
  outputs.push(['second server output', out2()], ['second server logs', Buffer.from(srv.logs.map((l) => JSON.stringify(l)).join('\n'))]);
  srv = null;
  {
    const { hits } = searchDir('stopped data directory', dataDir);
    assert.deepEqual(hits, [], 'no marker or chosen id in the data directory after a clean stop');
    assert.deepEqual(modesUnder(dataDir), [], 'every file under the data directory 0600, the directory 0700, after the stop');
  }

  // --- SIGSEGV too, with the room's key and its folded session in memory ---
  srv = await startServer({ dataDir, cwd, wrap: ULIMIT_WRAP });
  const out3 = captureOutput(srv.proc);
  {
    const c = await Client.connect(srv.wsUrl);
    const { ack } = await c.hello(room.tokens.therapist);
    assert.equal(ack.type, 'ack', 'the room opens (its key unwrapped, its log folded)');
    assert.deepEqual(coreLimits(srv.proc.pid), { soft: '0', hard: '0' });
    if (raised) assert.ok(raiseCoreLimit(srv.proc.pid));
    srv.proc.kill('SIGSEGV');
    // A sanitizer build catches SIGSEGV and exits with its report instead.
    await srv.exited;
    await sleep(300);
    assert.deepEqual(fs.readdirSync(cwd), [], 'no core file in the server\'s working directory after SIGSEGV');
  }
  outputs.push(['third server output', out3()], ['third server logs', Buffer.from(srv.logs.map((l) => JSON.stringify(l)).join('\n'))]);
  srv = null;

  // --- every log and every line printed ---
  assert.deepEqual(outputs.flatMap(([label, buf]) => hitsIn(label, buf)), [], 'no marker or chosen id in any log or output');
});

test('the data directory without its KEK opens no event', { skip: sqliteOnly("it copies a data directory's SQLite files without keys.db or the KEK; the PostgreSQL keyring requires --kek-file") }, async () => {
  assert.ok(room?.room, 'the session test ran first');
  assert.ok(fs.existsSync(kekFile), `the KEK is beside the data directory, at ${kekFile}`);
  assert.equal(fs.statSync(kekFile).mode & 0o777, 0o600, 'the KEK file is 0600');
  assert.ok(!filesUnder(dataDir).some((f) => fs.readFileSync(f).includes(fs.readFileSync(kekFile, 'utf8').trim())),
    'the KEK is in no file of the data directory');

  const elsewhere = tempDir('atrest-copy');
  try {
    const copy = path.join(elsewhere, 'data');
    fs.cpSync(dataDir, copy, { recursive: true });
    fs.chmodSync(copy, 0o700);
    assert.deepEqual(searchDir('copy', copy).hits, [], 'no marker or chosen id in the copy');

    const refusals = (label, extra) => {
      const r = attune(['replay', '--data', copy, '--room', room.room, ...extra]);
      assert.notEqual(r.code, 0, `${label}: attune replay must fail`);
      assert.match(r.stderr, /kek/i, `${label}: attune replay says it is the key (${r.stderr.trim()})`);
      assert.deepEqual(hitsIn(`${label} replay output`, Buffer.from(r.stdout + r.stderr)), []);
      const v = spawnSync(serverBin(), ['--verify', copy, ...extra, ...(AS_ROOT ? ['--allow-root'] : [])], { encoding: 'utf8' });
      assert.notEqual(v.status, 0, `${label}: attune-server --verify must fail`);
      assert.deepEqual(hitsIn(`${label} verify output`, Buffer.from(v.stdout + v.stderr)), []);
    };

    // no KEK at all: the default (copy.kek beside it) is missing and keys.db
    // has keys, so none is made up
    refusals('no KEK', []);
    assert.ok(!fs.existsSync(path.join(elsewhere, 'data.kek')), 'no KEK was created for a keys.db that has keys');
    await assert.rejects(startServer({ dataDir: copy }), /kek/i, 'attune-server refuses the copy without its KEK and says why');

    // a wrong KEK
    const wrong = path.join(elsewhere, 'wrong.kek');
    fs.writeFileSync(wrong, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    refusals('a wrong KEK', ['--kek-file', wrong]);
    await assert.rejects(startServer({ dataDir: copy, args: ['--kek-file', wrong] }), /kek/i,
      'attune-server refuses the copy with a wrong KEK and says why');
    assert.deepEqual(searchDir('copy after the attempts', copy).hits, []);
  } finally {
    fs.rmSync(elsewhere, { recursive: true, force: true });
  }
});

// Every data directory an earlier release wrote (tests/fixtures), migrated
// by this build: none of its old payload bytes is left in any file, neither
// a legacy plaintext row's text nor an old seal under DATA/data.key (which
// the migration deletes, but which old backups of the directory carried),
// not in a free page, not in a WAL. Each fixture is copied first and only
// the copy is read (sqlite3 leaves -wal and -shm files beside what it opens).
const FIXTURES = ['protocol1', 'store-v0/data', 'store-v1/data', 'store-v2/data']
  .map((f) => path.join(ROOT, 'tests', 'fixtures', f))
  .filter((f) => fs.existsSync(path.join(f, 'attune.db')));
const HAS_SQLITE3 = spawnSync('sqlite3', ['-version']).status === 0;

test('migrating an old data directory leaves none of its old payloads readable', { skip: sqliteOnly("it migrates old SQLite data directories (tests/fixtures)") || (HAS_SQLITE3 ? false : 'the sqlite3 command is not installed (deploy/setup.sh installs it)'),
}, async (t) => {
  assert.ok(FIXTURES.length > 0, 'fixtures to migrate');
  for (const fixture of FIXTURES) {
    const where = tempDir('atrest-migrate');
    try {
      const copy = path.join(where, 'data');
      fs.cpSync(fixture, copy, { recursive: true, filter: (f) => !/\.(md|mjs)$/.test(f) });
      fs.chmodSync(copy, 0o700);
      const rows = spawnSync('sqlite3', [path.join(copy, 'attune.db'), 'SELECT hex(payload) FROM events'], { encoding: 'utf8' });
      assert.equal(rows.status, 0, rows.stderr);
      const payloads = rows.stdout.trim().split('\n').filter(Boolean).map((h) => Buffer.from(h, 'hex'));
      // sqlite3 may have left a WAL and SHM: the migration takes them as they are.
      const oldKey = fs.existsSync(path.join(copy, 'data.key')) ? fs.readFileSync(path.join(copy, 'data.key'), 'utf8').trim() : null;

      // The needles: of a sealed row, its nonce and the start of its
      // ciphertext (random bytes); of a plaintext row, every text in it
      // that someone wrote (notes, messages, inputs: strings of 6 bytes or
      // more under those keys).
      const needlesOf = [];
      let plain = 0;
      for (const p of payloads) {
        if (p[0] === 0x7b) {
          plain++;
          const texts = [];
          const walk = (v, k) => {
            if (typeof v === 'string' && /^(text|note|what_|in_my|request|reflection|response)/.test(k || '') && Buffer.byteLength(v) >= 6) texts.push(v);
            else if (v && typeof v === 'object') for (const [kk, x] of Object.entries(v)) walk(x, Array.isArray(v) ? k : kk);
          };
          walk(JSON.parse(p.toString('utf8')));
          for (const s of texts) needlesOf.push([`plaintext ${JSON.stringify(s)}`, Buffer.from(s)], [`plaintext ${JSON.stringify(s)} escaped`, Buffer.from(jsonEscaped(s))]);
        } else {
          needlesOf.push([`old seal version ${p[0]}`, p.subarray(1, 1 + 28)]);
        }
      }

      // Control: before the migration every needle is in the copy.
      const before = Buffer.concat(filesUnder(copy).map((f) => fs.readFileSync(f)));
      const absent = needlesOf.filter(([, n]) => before.indexOf(n) < 0).map(([what]) => what);
      assert.deepEqual(absent, [], `${path.relative(ROOT, fixture)}: the needles are in the old files`);

      const v = spawnSync(serverBin(), ['--verify', copy, ...(AS_ROOT ? ['--allow-root'] : [])], { encoding: 'utf8', cwd: where });
      assert.equal(v.status, 0, `${fixture} migrates: ${v.stderr}`);
      assert.ok(!fs.existsSync(path.join(copy, 'data.key')), `${fixture}: the old data key is deleted`);
      const hits = [];
      for (const f of filesUnder(copy)) {
        const buf = fs.readFileSync(f);
        for (const [what, n] of needlesOf) if (buf.indexOf(n) >= 0) hits.push(`${path.relative(where, f)}: ${what}`);
        if (oldKey && buf.includes(oldKey)) hits.push(`${path.relative(where, f)}: the old data key`);
      }
      assert.deepEqual(hits, [], `${path.relative(ROOT, fixture)}: nothing of the old payloads is left`);
      assert.deepEqual(modesUnder(copy), [], `${path.relative(ROOT, fixture)}: every file 0600 after the migration`);
      t.diagnostic(`${path.relative(ROOT, fixture)}: ${payloads.length} old payloads (${plain} plaintext), ${needlesOf.length} needles, 0 found`);
    } finally {
      fs.rmSync(where, { recursive: true, force: true });
    }
  }
});
