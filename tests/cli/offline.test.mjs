// offline.test.mjs - `attune room`, `attune token`, `attune replay`, `attune therapist` on a data
// directory without a server: output format, exit codes, bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { attune, tempDir, invitations } from './helpers.mjs';

const LINE = /^invite (partner_a|partner_b|therapist) http:\/\/127\.0\.0\.1:8123\/\?room=[A-Za-z0-9_-]+#token=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

test('room create prints the three invitation lines and stores seq 1', () => {
  const dir = path.join(tempDir(), 'data');
  const r = attune(['room', 'create', '--data', dir, '--exercise', 'demon_dialogue', '--base-url', 'http://127.0.0.1:8123/']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 3);
  assert.deepEqual(lines.map((l) => l.split(' ')[1]), ['partner_a', 'partner_b', 'therapist']);
  for (const l of lines) assert.match(l, LINE);
  const room = /created room (\S+) \(demon_dialogue\)/.exec(r.stderr)[1];
  // The key file is created like the server creates it: mode 0600.
  assert.equal(fs.statSync(path.join(dir, 'secret.key')).mode & 0o777, 0o600);
  const list = attune(['room', 'list', '--data', dir]);
  assert.equal(list.code, 0);
  assert.match(list.stdout, new RegExp(`^${room}\\s+demon_dialogue\\s+\\S+Z\\s+1$`, 'm'));
  const rep = attune(['replay', '--data', dir, '--room', room, '--no-color']);
  assert.equal(rep.code, 0, rep.stderr);
  assert.match(rep.stdout, /^\s+1 \+0:00  system\s+room created: Recognising the demon dialogue \(demon_dialogue\), partner_a speaks first, safety check-in first(, language [a-z_]+)?$/m);
  assert.match(rep.stdout, /^-- ruptures: 0 opened, 0 repaired; pauses: 0; repair attempts: 0\n-- 1 events, waiting for consent$/m);
  // Tokens name the room and the role (payload is base64url "v1|room|role|expiry|nonce").
  const inv = invitations(r.stdout);
  for (const role of ['partner_a', 'partner_b', 'therapist']) {
    const payload = Buffer.from(inv[role].token.split('.')[0], 'base64url').toString();
    const [v, pr, prole, exp] = payload.split('|');
    assert.equal(v, 'v1');
    assert.equal(pr, room);
    assert.equal(prole, role);
    const ttl = Number(exp) - Date.now() / 1000;
    assert.ok(ttl > 7 * 86400 - 60 && ttl <= 7 * 86400 + 1, `ttl ${ttl}`);
  }
});

test('room create: chosen id, --ttl, first speaker; a duplicate id fails', () => {
  const dir = tempDir();
  const r = attune(['room', 'create', '--data', dir, '--room', 'clinic-7', '--ttl', '60', '--first-speaker', 'partner_b']);
  assert.equal(r.code, 0, r.stderr);
  const payload = Buffer.from(invitations(r.stdout).therapist.token.split('.')[0], 'base64url').toString();
  const ttl = Number(payload.split('|')[3]) - Date.now() / 1000;
  assert.ok(ttl > 50 && ttl <= 61, `ttl ${ttl}`);
  assert.match(attune(['replay', '--data', dir, '--room', 'clinic-7', '--no-color']).stdout, /partner_b speaks first/);
  const again = attune(['room', 'create', '--data', dir, '--room', 'clinic-7']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /exists/);
  assert.equal(again.stdout, '');
});

test('token: one line per role, observer allowed, errors for bad input', () => {
  const dir = tempDir();
  assert.equal(attune(['room', 'create', '--data', dir, '--room', 'r1']).code, 0);
  for (const role of ['partner_a', 'partner_b', 'therapist', 'observer']) {
    const t = attune(['token', '--data', dir, '--room', 'r1', '--role', role, '--ttl', '120']);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/);
    const payload = Buffer.from(t.stdout.split('.')[0], 'base64url').toString().split('|');
    assert.deepEqual(payload.slice(0, 3), ['v1', 'r1', role]);
  }
  const cases = [
    [['token', '--data', dir, '--room', 'r1', '--role', 'system'], 2, /--role must be/],
    [['token', '--data', dir, '--room', 'r1'], 2, /required/],
    [['token', '--data', dir, '--room', 'nope', '--role', 'observer'], 1, /no room 'nope'/],
    [['token', '--data', dir, '--room', 'bad id!', '--role', 'observer'], 2, /--room/],
    [['token', '--data', dir, '--room', 'r1', '--role', 'therapist', '--ttl', '0'], 2, /--ttl/],
    [['token', '--data', path.join(dir, 'missing'), '--room', 'r1', '--role', 'therapist'], 1, /no event store/],
    [['room', 'create', '--data', dir, '--exercise', 'yoga'], 2, /unknown exercise 'yoga'; known:.*enactment/],
    [['room', 'create'], 2, /--data DIR is required/],
    [['room', 'create', '--data', dir, '--base-url', 'ftp://x'], 2, /--base-url/],
    [['room', 'create', '--data', dir, '--bogus'], 2, /unknown option --bogus/],
    [['room', 'frobnicate'], 2, /usage/],
    [['replay', '--data', dir, '--room', 'nope'], 1, /no room 'nope'/],
    [['replay', '--data', dir, '--room', 'r1', '--speed', '-1'], 2, /--speed/],
    [['replay', '--data', dir, '--room', 'r1', '--color', '--no-color'], 2, /exclude/],
    [['join', 'ftp://x/#token=a'], 2, /invitation URL/],
    [['join', 'http://127.0.0.1:9/'], 2, /no #token/],
    [['join'], 2, /join needs the invitation: URL, `-` \(read from standard input\) or ATTUNE_LINK/],
    [['join', 'a', 'b'], 2, /unexpected argument 'b'/],
    [['launch'], 2, /unknown command/],
  ];
  for (const [args, code, re] of cases) {
    const r = attune(args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
  }
});

test('every subcommand documents itself with --help', () => {
  for (const args of [[], ['room', 'create'], ['room', 'list'], ['token'], ['replay'], ['join']]) {
    const r = attune([...args, '--help']);
    assert.equal(r.code, 0, args.join(' '));
    assert.match(r.stdout, /^usage: attune/);
    assert.match(r.stdout, /exit codes/);
  }
  assert.match(attune(['replay', '--help']).stdout, /--follow[\s\S]*--verify/);
});

test('replay refuses a log that does not fold', (t) => {
  const dir = tempDir();
  assert.equal(attune(['room', 'create', '--data', dir, '--room', 'r1']).code, 0);
  // Append a turn before anyone consented: it cannot follow room_created.
  const turn = JSON.stringify({ type: 'turn', at: Date.now(), by: 'partner_a', step: 'what_happened', round: 0, input: { what_happened: 'x' } });
  const py = spawnSync('python3', ['-c',
    'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("INSERT INTO events (room, seq, payload) VALUES (?, 2, ?)", ("r1", sys.argv[2].encode())); c.commit()',
    path.join(dir, 'attune.db'), turn], { encoding: 'utf8' });
  if (py.error) {
    t.skip('python3 is needed to write a corrupt log');
    return;
  }
  assert.equal(py.status, 0, py.stderr);
  const r = attune(['replay', '--data', dir, '--room', 'r1', '--no-color', '--verify']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /does not fold at seq 2/);
  assert.doesNotMatch(r.stdout, /state hash/);
});

// A protocol 1 log, as that server recorded it: pauses opened flooding
// ruptures, suspicions shared the ruptures' ids, repair attempts were named
// by seq, a confirmation carried the whole rupture to everyone. Written into
// the store in the clear (the store reads unsealed legacy payloads).
const LEGACY = (() => {
  const R = (id, kind, marker, source, who, w, step, evidence) => ({ id, kind, marker, source, who, with: w, step, round: 0, evidence });
  return [
    { type: 'room_created', by: 'system', exercise: 'enactment', first_speaker: 'partner_a' },
    { type: 'joined', by: 'therapist' },
    { type: 'joined', by: 'partner_a' },
    { type: 'joined', by: 'partner_b' },
    { type: 'consented', by: 'partner_a' },
    { type: 'consented', by: 'partner_b' },
    { type: 'turn', by: 'partner_a', step: 'what_happened', round: 0, input: { what_happened: 'The dishes, again.' } },
    { type: 'pause_requested', by: 'partner_b', note: 'You never listen to me.' },
    { type: 'rupture_opened', by: 'partner_b', rupture: R(1, 'flooding', 'pause_requested', 'partner', 'partner_b', 'partner_a', 'reactive', [8]) },
    { type: 'rupture_suspected', by: 'system', rupture: R(2, 'confrontation', 'blaming_language', 'detector', 'partner_b', 'partner_a', 'reactive', [8]) },
    { type: 'rupture_dismissed', by: 'therapist', rupture_id: 2, note: 'Said with a smile.' },
    { type: 'control', by: 'therapist', action: 'resume' },
    { type: 'repair_attempt', by: 'partner_a', text: 'Sorry.' },
    { type: 'repair_accepted', by: 'partner_b', attempt_seq: 13 },
    { type: 'rupture_repaired', by: 'partner_b', rupture_id: 1, how: 'repair_attempt', attempt_seq: 13 },
    { type: 'turn', by: 'partner_a', step: 'reactive', round: 0, input: { reactive: { id: 'angry' }, what_i_did: 'You always ignore me.' } },
    { type: 'rupture_suspected', by: 'system', rupture: R(3, 'confrontation', 'blaming_language', 'detector', 'partner_a', 'partner_b', 'primary', [16]) },
    { type: 'rupture_confirmed', by: 'therapist', rupture: R(3, 'confrontation', 'blaming_language', 'detector', 'partner_a', 'partner_b', 'primary', [16]) },
    { type: 'note', by: 'therapist', text: 'Criticism, worth slowing down.', rupture_id: 3 },
    { type: 'control', by: 'therapist', action: 'end' },
  ].map((e, i) => ({ ...e, at: 1764059000000 + i * 1000 }));
})();

test('replay prints a protocol 1 log as it was recorded', (t) => {
  // Written as a build from before sealing and before versioned migrations
  // stored it (plaintext JSON rows, store format 0): the current build's
  // migration reseals them under the room's key when replay opens the
  // directory. (A plaintext row written into a current database is refused.)
  const dir = tempDir();
  fs.chmodSync(dir, 0o700);
  const py = spawnSync('python3', ['-c',
    'import json,sqlite3,sys; c=sqlite3.connect(sys.argv[1]); evs=json.loads(sys.argv[2])\n' +
    'c.executescript("CREATE TABLE rooms (id TEXT PRIMARY KEY, exercise TEXT NOT NULL, created_at INTEGER NOT NULL);' +
    ' CREATE TABLE events (room TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (room, seq)) WITHOUT ROWID;' +
    ' CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);")\n' +
    'c.execute("INSERT INTO rooms VALUES (?, ?, ?)", ("old", "enactment", evs[0]["at"]))\n' +
    'for i, e in enumerate(evs): c.execute("INSERT INTO events (room, seq, payload) VALUES (?, ?, ?)", ("old", i + 1, json.dumps(e).encode()))\n' +
    'c.commit()',
    path.join(dir, 'attune.db'), JSON.stringify(LEGACY)], { encoding: 'utf8' });
  if (py.error) {
    t.skip('python3 is needed to write a protocol 1 log');
    return;
  }
  assert.equal(py.status, 0, py.stderr);
  const r = attune(['replay', '--data', dir, '--room', 'old', '--no-color', '--verify']);
  assert.equal(r.code, 0, r.stderr);
  const expected = [
    /^\s+1 \+0:00  system\s+room created: Enactment: turning toward each other \(enactment\), partner_a speaks first$/,
    /^\s+5 \+0:04  partner_a\s+consented$/,
    /^\s+8 \+0:07  partner_b\s+asked for a pause: "You never listen to me\."$/,
    /^\s+9 \+0:08  partner_b\s+\(protocol 1 recorded the pause above as rupture #1 flooding \/ pause_requested\)$/,
    /^\s+10 \+0:09  system\s+suspected \(private\) rupture #2 confrontation \/ blaming_language \(Blaming language\), partner_b with partner_a, by detector, at On the surface \(round 1\), evidence seq 8$/,
    /^\s+11 \+0:10  therapist\s+dismissed suspected rupture #2 confrontation \/ blaming_language \(private\): "Said with a smile\."$/,
    /^\s+13 \+0:12  partner_a\s+repair attempt at seq 13: "Sorry\."$/,
    /^\s+14 \+0:13  partner_b\s+accepted the repair attempt at seq 13$/,
    /^\s+15 \+0:14  partner_b\s+REPAIRED rupture #1 flooding \/ pause_requested by repair_attempt \(the attempt at seq 13\), time to repair 6\.0 s$/,
    /^\s+17 \+0:16  system\s+suspected \(private\) rupture #3 confrontation/,
    /^\s+18 \+0:17  therapist\s+RUPTURE confirmed #3 confrontation \/ blaming_language/,
    /^\s+19 \+0:18  therapist\s+note \(private\) on rupture #3: "Criticism, worth slowing down\."$/,
    /^-- ruptures: 1 opened, 0 repaired; suspicions \(private\): 2 raised, 1 confirmed, 1 dismissed, 0 undecided; pauses: 1; repair attempts: 1$/,
    /^-- 20 events, ended by the therapist$/,
    /^state hash [0-9a-f]{64} seq 20$/,
  ];
  const lines = r.stdout.split('\n');
  let at = 0;
  for (const re of expected) {
    const i = lines.findIndex((l, k) => k >= at && re.test(l));
    assert.ok(i >= 0, `missing in order: ${re}\n${r.stdout}`);
    at = i + 1;
  }
  // A partner saw protocol 1's room seqs (with gaps), the confirmation, not the suspicions.
  const a = attune(['replay', '--data', dir, '--room', 'old', '--no-color', '--as', 'partner_a']);
  assert.equal(a.code, 0, a.stderr);
  assert.doesNotMatch(a.stdout, /suspected|dismissed|note \(private\)/);
  assert.match(a.stdout, /^\s+13 \+0:12  partner_a\s+repair attempt at seq 13: "Sorry\."$/m);
  assert.match(a.stdout, /^\s+18 \+0:17  therapist\s+RUPTURE confirmed #3/m);
  assert.match(a.stdout, /^-- ruptures: 1 opened, 0 repaired; pauses: 1; repair attempts: 1\n-- 16 events, ended by the therapist$/m);
});

test('therapist add/passwd/list/remove: kinds, a new password, clear errors', () => {
  const dir = path.join(tempDir(), 'data');
  assert.equal(attune(['therapist', 'add', 'mara', '--data', dir], { input: 'mara-long-password\n' }).code, 0);
  const sup = attune(['therapist', 'add', 'osei', '--data', dir, '--supervisor'], { input: 'osei-long-password\n' });
  assert.equal(sup.code, 0, sup.stderr);
  assert.match(sup.stdout, /^supervisor osei added$/m);
  const list = attune(['therapist', 'list', '--data', dir]);
  assert.match(list.stdout, /^NAME\s+KIND\s+CREATED \(UTC\)$/m);
  assert.match(list.stdout, /^mara\s+therapist\s+\d{4}-\d\d-\d\dT\S+Z$/m);
  assert.match(list.stdout, /^osei\s+supervisor\s+\d{4}-/m);
  const pw = attune(['therapist', 'passwd', 'mara', '--data', dir], { input: 'mara-newer-password\n' });
  assert.equal(pw.code, 0, pw.stderr);
  assert.match(pw.stdout, /password of mara changed; its login sessions end/);
  const short = attune(['therapist', 'passwd', 'mara', '--data', dir], { input: 'short\n' });
  assert.equal(short.code, 2);
  assert.match(short.stderr, /at least 10 characters/);
  const unknown = attune(['therapist', 'passwd', 'nobody', '--data', dir], { input: 'whatever-password\n' });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no account named nobody/);
  assert.equal(attune(['therapist', 'passwd', '--data', dir]).code, 2, 'NAME is required');
  const help = attune(['therapist', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /attune therapist passwd NAME --data DIR/);
  assert.match(attune(['therapist', 'passwd', '--help']).stdout, /Every login session of the\s+account ends/);
  const rm = attune(['therapist', 'remove', 'osei', '--data', dir]);
  assert.equal(rm.code, 0);
  assert.match(rm.stdout, /^account osei removed$/m);
});
