// session.test.mjs - the `attune` command against the real attune-server:
// invitations from `attune room create` / `attune token` are accepted, a
// session driven over WebSocket replays as a transcript whose state hash
// equals the server's own fold and the live state, `replay --follow` and
// `--speed` pace a live log, and `attune join` completes steps through a pipe.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { SERVER, attune, attuneAsync, tempDir, startServer, member, invitations, sleep } from './helpers.mjs';

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

function createRoom(room, exercise = 'enactment') {
  const r = attune(['room', 'create', '--data', dir, '--room', room, '--exercise', exercise, '--base-url', server.url]);
  assert.equal(r.code, 0, r.stderr);
  return invitations(r.stdout);
}

// The canonical state (PROTOCOL.md section 8): sorted keys, compact, no type/you.
function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}
function stateHash(state) {
  const { type, you, ...rest } = state;
  return crypto.createHash('sha256').update(canonical(rest)).digest('hex');
}

async function ok(m, msg) {
  const r = await m.request(msg);
  assert.equal(r.type, 'ack', `${JSON.stringify(msg)} -> ${JSON.stringify(r)}`);
  return r;
}
// Waits until the member has seen a state with at least this seq.
const stateAt = (m, seq) => m.waitFor((x) => x.type === 'state' && x.seq >= seq, `state seq ${seq}`);

test('invitations from room create and token are accepted by the server', { skip }, async () => {
  const inv = createRoom('inv-1');
  for (const role of ['partner_a', 'partner_b', 'therapist']) {
    assert.ok(inv[role].url.startsWith(`${server.url}/#token=`));
    const m = await member(server.port, inv[role].token);
    assert.equal(m.hello.type, 'ack', JSON.stringify(m.hello));
    assert.equal(m.hello.role, role);
    assert.equal(m.hello.room, 'inv-1');
    m.close();
  }
  const obs = attune(['token', '--data', dir, '--room', 'inv-1', '--role', 'observer']);
  assert.equal(obs.code, 0);
  const o = await member(server.port, obs.stdout.trim());
  assert.equal(o.hello.role, 'observer');
  const denied = await o.request({ type: 'consent', accept: true });
  assert.equal(denied.code, 'forbidden');
  o.close();
  // A token for this room signed with another key is refused.
  const other = tempDir();
  attune(['room', 'create', '--data', other, '--room', 'inv-1']);
  const foreign = attune(['token', '--data', other, '--room', 'inv-1', '--role', 'therapist']).stdout.trim();
  const f = await member(server.port, foreign);
  assert.equal(f.hello.code, 'bad_token');
  // A token that has expired is refused too.
  const short = attune(['token', '--data', dir, '--room', 'inv-1', '--role', 'therapist', '--ttl', '1']).stdout.trim();
  await sleep(2100);
  const e = await member(server.port, short);
  assert.equal(e.hello.code, 'bad_token');
});

test('a session over WebSocket replays as an ordered transcript with the server\'s hash', { skip }, async () => {
  const inv = createRoom('sess-1');
  const T = await member(server.port, inv.therapist.token);
  const A = await member(server.port, inv.partner_a.token);
  const B = await member(server.port, inv.partner_b.token);
  await ok(A, { type: 'consent', accept: true });
  await ok(B, { type: 'consent', accept: true });
  const turn = (m, step, input) => ok(m, { type: 'turn', step, input });
  await turn(A, 'what_happened', { what_happened: 'You came home late again.' });
  await turn(A, 'reactive', { reactive: { id: 'angry', text: 'I snapped' } });
  await turn(A, 'primary', { primary: { id: 'afraid_of_losing_you' }, intensity: 8 });
  await turn(A, 'need', { need: { id: 'to_matter' } });
  await turn(B, 'reflect', { reflection: 'You were angry.' });
  await turn(A, 'check', { landed: 'no', what_i_meant: 'More scared than angry.' });
  await turn(B, 'reflect', { reflection: 'You were scared of losing me.' });
  await turn(A, 'check', { landed: 'yes' });
  await turn(B, 'respond', { response: 'I want you to know you matter.' });
  await turn(A, 'connection', { connection: 2 });
  await ok(B, { type: 'pause_request', note: 'You never listen to me.' });
  const suspected = await T.waitFor((x) => x.type === 'event' && x.event.type === 'rupture_suspected', 'suspicion');
  await ok(T, { type: 'rupture_dismiss', rupture_id: suspected.event.rupture.id, note: 'Said with a smile.' });
  await ok(T, { type: 'control', action: 'resume' });
  const attempt = await ok(A, { type: 'repair_attempt', text: 'I am sorry I went cold.' });
  await ok(B, { type: 'repair_accept', attempt_seq: attempt.seq });
  const mark = await ok(T, { type: 'rupture_mark', kind: 'withdrawal', marker: 'minimal_response', who: 'partner_b', with: 'partner_a' });
  const marked = await T.waitFor((x) => x.type === 'event' && x.seq === mark.seq, 'mark event');
  await ok(T, { type: 'note', text: 'B went quiet after the rating.', rupture_id: marked.event.rupture.id });
  await ok(T, { type: 'rupture_repair', rupture_id: marked.event.rupture.id, strategy: 'discuss_what_happened' });
  const end = await ok(T, { type: 'control', action: 'end' });
  const finalState = await stateAt(T, end.seq);
  assert.equal(finalState.status, 'ended');

  // While everyone is still connected, the log ends at the therapist's last state.
  const live = attune(['replay', '--data', dir, '--room', 'sess-1', '--no-color', '--verify']);
  assert.equal(live.code, 0, live.stderr);
  const liveHash = /^state hash ([0-9a-f]{64}) seq (\d+)$/m.exec(live.stdout);
  assert.equal(Number(liveHash[2]), finalState.seq);
  assert.equal(liveHash[1], stateHash(finalState), 'replay hash = hash of the live therapist state');
  assert.doesNotMatch(live.stdout, /\x1b\[/, 'no colours with --no-color');

  const expected = [
    /^\s+1 \+0:\d\d  system\s+room created: Enactment: turning toward each other \(enactment\), partner_a speaks first$/,
    /therapist\s+joined$/,
    /partner_a\s+consented$/,
    /partner_b\s+consented$/,
    /partner_a\s+turn, round 1: What happened$/,
    /^\s+What happened: "You came home late again\."$/,
    /^\s+What I felt on the surface: Angry - "I snapped"$/,
    /^\s+What I felt underneath: Afraid of losing you$/,
    /^\s+How strong is it now\? \(0 = barely, 10 = very\): 8\/10$/,
    /^\s+What I need: To know I matter to you$/,
    /partner_b\s+turn, round 1: Reflect back$/,
    /^\s+Did that capture it\?: Not quite$/,
    /partner_a\s+turn, round 1: How connected\?$/,
    /^\s+\S.*: 2\/10$/,
    /system\s+RUPTURE opened #1 disconnection_felt \/ rating_low \(Connection rating low\), partner_a with partner_b, by detector, at How connected\? \(round 1\), evidence seq \d+$/,
    /partner_b\s+asked for a pause: "You never listen to me\."$/,
    /RUPTURE opened #\d flooding \/ pause_requested \(Pause requested\), partner_b with partner_a, by partner/,
    /rupture suspected \(private\) #\d confrontation \/ blaming_language \(Blaming language\), partner_b with partner_a/,
    /rupture #\d dismissed \(private\): "Said with a smile\."$/,
    /therapist\s+control: resume$/,
    /partner_a\s+repair attempt \(accept with \/accept \d+\): "I am sorry I went cold\."$/,
    /partner_b\s+accepted repair attempt \d+$/,
    /REPAIRED rupture #\d \S+ \/ \S+ by repair_attempt \(attempt \d+\), time to repair \d+\.\d s$/,
    /therapist\s+RUPTURE opened #\d withdrawal \/ minimal_response \(Minimal response\), partner_b with partner_a, by therapist/,
    /therapist\s+note \(private\) on rupture #\d: "B went quiet after the rating\."$/,
    /REPAIRED rupture #\d withdrawal \/ minimal_response by therapist_strategy \(Talk about what just happened\), time to repair/,
    /therapist\s+control: end$/,
    /^-- \d+ events, ended by the therapist$/,
  ];
  const lines = live.stdout.split('\n');
  let at = 0;
  for (const re of expected) {
    const i = lines.findIndex((l, k) => k >= at && re.test(l));
    assert.ok(i >= 0, `missing in order: ${re}\n${live.stdout}`);
    at = i + 1;
  }
  // seqs are printed 1..N in order, with nothing missing.
  const seqs = lines.map((l) => /^\s+(\d+) \+/.exec(l)).filter(Boolean).map((m) => Number(m[1]));
  assert.deepEqual(seqs, Array.from({ length: finalState.seq }, (_, i) => i + 1));

  // A partner's view leaves out what only the therapist may see.
  const asA = attune(['replay', '--data', dir, '--room', 'sess-1', '--no-color', '--as', 'partner_a']);
  assert.doesNotMatch(asA.stdout, /private/);
  assert.match(asA.stdout, /control: end/);
  // --color forces ANSI colours.
  assert.match(attune(['replay', '--data', dir, '--room', 'sess-1', '--color']).stdout, /\x1b\[36mpartner_a/);

  A.close();
  B.close();
  T.close();
  await sleep(300);
  // After the members left: a second replay and the server's own fold agree.
  const r1 = attune(['replay', '--data', dir, '--room', 'sess-1', '--no-color', '--verify']);
  const r2 = attune(['replay', '--data', dir, '--room', 'sess-1', '--no-color', '--verify']);
  assert.equal(r1.stdout, r2.stdout);
  assert.match(r1.stdout, /partner_a\s+left \(closed\)/);
  const h = /^state hash ([0-9a-f]{64}) seq (\d+)$/m.exec(r1.stdout);
  const verify = spawnSync(SERVER, ['--verify', dir], { encoding: 'utf8' });
  assert.equal(verify.status, 0, verify.stderr);
  const row = verify.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((x) => x.room === 'sess-1');
  assert.equal(row.hash, h[1], 'replay hash = attune-server --verify hash');
  assert.equal(row.seq, Number(h[2]));
  assert.ok(row.seq > finalState.seq);
});

test('replay --follow prints a live session until it ends; --speed keeps its pace', { skip }, async () => {
  const inv = createRoom('follow-1');
  const follow = attuneAsync(['replay', '--data', dir, '--room', 'follow-1', '--follow', '--poll-ms', '50', '--no-color', '--verify']);
  await sleep(300);
  assert.equal(follow.proc.exitCode, null, 'still following');
  const T = await member(server.port, inv.therapist.token);
  const A = await member(server.port, inv.partner_a.token);
  await ok(A, { type: 'consent', accept: true });
  await sleep(800); // a gap in the log for --speed
  await ok(A, { type: 'repair_attempt', text: 'Sorry.' });
  const end = await ok(T, { type: 'control', action: 'end' });
  const done = await follow.exited;
  assert.equal(done.code, 0, done.stderr);
  assert.match(done.stdout, /partner_a\s+consented\n[\s\S]*repair attempt[\s\S]*therapist\s+control: end\n-- (\d+) events, ended by the therapist\nstate hash [0-9a-f]{64} seq (\d+)\n$/);
  assert.equal(Number(/seq (\d+)\n$/.exec(done.stdout)[1]), end.seq);
  A.close();
  T.close();
  // Same room replayed at double speed takes at least half the 800 ms gap; at 0 it does not wait.
  const t0 = Date.now();
  attune(['replay', '--data', dir, '--room', 'follow-1', '--no-color', '--speed', '2']);
  const paced = Date.now() - t0;
  const t1 = Date.now();
  attune(['replay', '--data', dir, '--room', 'follow-1', '--no-color']);
  const fast = Date.now() - t1;
  assert.ok(paced >= 380, `--speed 2 took ${paced} ms`);
  assert.ok(fast < paced - 200, `--speed 0 took ${fast} ms vs ${paced} ms`);
});

test('attune join through a pipe consents and completes steps', { skip }, async () => {
  const inv = createRoom('join-1');
  const T = await member(server.port, inv.therapist.token);
  const join = attuneAsync(['join', '--no-color', inv.partner_a.url]);
  // Every answer is queued and waits for its question; 11 is out of range and is asked again.
  join.proc.stdin.write('/consent\nThe dishes, again\n1 I snapped at you\n\n2\n11\n7\n\n');
  await T.waitFor((x) => x.type === 'event' && x.event.type === 'consented', 'A consents');
  const B = await member(server.port, inv.partner_b.token);
  await ok(B, { type: 'consent', accept: true });
  const turns = [];
  for (const step of ['what_happened', 'reactive', 'primary']) {
    const ev = await T.waitFor((x) => x.type === 'event' && x.event.type === 'turn' && x.event.step === step, step);
    turns.push(ev.event);
  }
  join.proc.stdin.end();
  const done = await join.exited;
  assert.equal(done.code, 0, done.stderr + done.stdout);
  assert.deepEqual(turns.map((t) => [t.by, t.input]), [
    ['partner_a', { what_happened: 'The dishes, again' }],
    ['partner_a', { reactive: { id: 'angry', text: 'I snapped at you' } }],
    ['partner_a', { primary: { id: 'afraid_i_dont_matter' }, intensity: 7 }],
  ]);
  const out = done.stdout;
  assert.match(out, /^Joined room join-1 as partner_a: Enactment: turning toward each other$/m);
  assert.match(out, /Consent\n[\s\S]*Type \/consent to accept/);
  assert.match(out, />> Your turn: What happened\nSpeaker, [^\n]+\n\? What happened \(one line of text\)\n> The dishes, again\n/);
  assert.match(out, / 1\) Angry - I get angry/);
  assert.match(out, /please give a whole number from 0 to 10/);
  assert.match(out, /partner_b\s+consented/);
  assert.match(out, />> Your turn: What you need/);
  // The transcript the participant saw names the step and the labels.
  assert.match(out, /partner_a\s+turn, round 1: Underneath\n\s+What I felt underneath: Afraid I don't matter\n\s+How strong is it now\? \(0 = barely, 10 = very\): 7\/10/);
  B.close();
  T.close();
});

test('attune join as therapist runs commands; a bad invitation fails with exit 1', { skip }, async () => {
  const inv = createRoom('join-2');
  const r = attune(['join', '--no-color', inv.therapist.url], { input: '/note Watch for withdrawal.\n/bogus\n/end\n/quit\n' });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /unknown command \/bogus/);
  assert.match(r.stdout, /therapist\s+note \(private\): "Watch for withdrawal\."/);
  assert.match(r.stdout, /therapist\s+control: end/);
  assert.match(r.stdout, /-- the session has ended \(therapist\)/);
  // The server records the therapist's `left` once it sees the close, a
  // moment after `join` exits: wait for it rather than race it.
  const want = /note \(private\): "Watch for withdrawal\."[\s\S]*control: end[\s\S]*therapist\s+left \(closed\)/;
  let rep = attune(['replay', '--data', dir, '--room', 'join-2', '--no-color']);
  for (let i = 0; i < 50 && !want.test(rep.stdout); i++) {
    await sleep(100);
    rep = attune(['replay', '--data', dir, '--room', 'join-2', '--no-color']);
  }
  assert.match(rep.stdout, want);

  const token = inv.partner_a.token;
  const tampered = `${inv.partner_a.url.split('#')[0]}#token=${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
  const bad = attune(['join', '--no-color', tampered], { input: '' });
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /error: bad_token/);
  assert.match(bad.stdout, /did not accept this invitation/);
  const refused = attune(['join', `http://127.0.0.1:1/#token=${token}`], { input: '' });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /cannot connect/);
});
