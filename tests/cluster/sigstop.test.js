// The failure campaign, a hung owner (issue 13): two nodes on one
// PostgreSQL database, one room loaded by partner_a and the therapist on
// the node holding it. That node is SIGSTOPped with commands in flight (a
// group may be inside its transaction, holding the room row's lock:
// PostgreSQL ends that session after SRV_PG_IDLE_TX_MS, and meanwhile the
// other node's acquire waits at most SRV_PG_LOCK_WAIT_MS and refuses with
// 4503, server/store/pg.h). Once its lease (--node-lease-ms 2000) has run
// out in the nodes table, partner_b's hello on the other node takes the
// room over (epoch + 1) and loads it. Then SIGCONT: the old owner, waking
// with its members' commands queued, appends nothing (no event of its
// epoch from the takeover on, none of those commands acked), closes its
// members with 4503 room_moved, and they resume on the new owner with
// resume_from, gaplessly. Needs ATTUNE_TEST_PG; skipped without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN, freshDatabase, sharedKeys, createRooms, startNodes, Member, owners, psql, waitUntil, checkMembers, summary,
} from './cluster.js';
import fs from 'node:fs';

test('an owner stopped past its lease appends nothing after SIGCONT', {
  skip: !ADMIN && 'ATTUNE_TEST_PG is not set',
  timeout: 90000,
}, async () => {
  const db = freshDatabase(ADMIN, 'sigstop');
  const keys = sharedKeys();
  const nodes = [];
  const members = [];
  let stopped = null;
  try {
    const rooms = createRooms(db.uri, keys, 1);
    const [{ room, tokens }] = rooms;
    nodes.push(...(await startNodes(2, db.uri, keys, { leaseMs: 2000 })));
    const [one, two] = nodes.map((n) => n.server);
    const baseOf = (server) => `ws://127.0.0.1:${server.port}`;
    const a = new Member({ base: baseOf(one), room, role: 'partner_a', token: tokens.partner_a });
    const t = new Member({ base: baseOf(one), room, role: 'therapist', token: tokens.therapist });
    members.push(a, t);
    await a.join();
    await t.join();
    assert.deepEqual(owners(db.uri), { n1: [room] });
    const ownerId = psql(db.uri, `SELECT owner FROM rooms WHERE id = '${room}'`);
    // --create-room's process owned it at epoch 1, n1 took it over (2).
    const epoch = Number(psql(db.uri, `SELECT epoch FROM rooms WHERE id = '${room}'`));
    for (const m of [a, t]) m.startLoad(10);
    await waitUntil(() => a.acked.length >= 5 && t.acked.length >= 5, { timeoutMs: 20000, what: 'load on n1' });

    one.proc.kill('SIGSTOP');
    stopped = one;
    const stoppedAt = Date.now();
    const ackedAtStop = a.acked.length + t.acked.length;
    // Queued in its sockets: the first things it reads when it wakes up.
    a.burst(3);
    t.burst(3);
    // Its session (and advisory lock) stay alive; its lease row does not.
    await waitUntil(() => psql(db.uri, `SELECT lease_until < now() FROM nodes WHERE id = '${ownerId}'`) === 't', {
      timeoutMs: 15000,
      what: "the stopped node's lease to run out",
    });
    const b = new Member({ base: baseOf(two), room, role: 'partner_b', token: tokens.partner_b });
    members.push(b);
    await b.join(30000);
    const takeoverMs = Date.now() - stoppedAt;
    assert.equal(a.acked.length + t.acked.length, ackedAtStop, 'nothing acked by the stopped node');
    assert.deepEqual(owners(db.uri), { n2: [room] });
    assert.equal(Number(psql(db.uri, `SELECT epoch FROM rooms WHERE id = '${room}'`)), epoch + 1);
    b.startLoad(10);
    await waitUntil(() => b.acked.length >= 5, { timeoutMs: 20000, what: 'load on n2' });
    const takeoverSeq = Number(psql(db.uri, `SELECT min(seq) FROM events WHERE room = '${room}' AND epoch = ${epoch + 1}`));

    // A client behind a proxy reconnects to the node holding the room;
    // here they are sent to n2 directly.
    for (const m of [a, t]) m.base = baseOf(two);
    const contAt = Date.now();
    one.proc.kill('SIGCONT');
    stopped = null;
    await waitUntil(() => [a, t].every((m) => m.closes.some((c) => c.at >= contAt)), {
      timeoutMs: 15000,
      what: 'the old owner to close its members',
    });
    for (const m of [a, t]) {
      const c = m.closes.find((x) => x.at >= contAt);
      assert.equal(c.code, 4503, `${m.label}: closed with room_moved (${JSON.stringify(c)})`);
      assert.equal(c.bye, 'room_moved');
    }
    const closedMs = Math.max(...[a, t].map((m) => m.closes.find((x) => x.at >= contAt).at)) - contAt;
    // The stopped node's members resume on n2 and go on.
    const mark = new Map(members.map((m) => [m, m.acked.length]));
    await waitUntil(() => members.every((m) => m.ready && m.acked.length >= mark.get(m) + 5), {
      timeoutMs: 30000,
      what: 'every member to go on on n2',
    });
    for (const m of members) await m.stopLoad();

    assert.equal(psql(db.uri, `SELECT count(*) FROM events WHERE room = '${room}' AND epoch <= ${epoch} AND seq >= ${takeoverSeq}`), '0');
    assert.equal(psql(db.uri, `SELECT count(*) FROM events WHERE room = '${room}' AND epoch > ${epoch + 1}`), '0');
    await checkMembers(members, rooms, baseOf(two), db.uri);
    const s = summary(members);
    assert.deepEqual(s.errors, [], 'no command was refused');
    console.log(
      `SIGSTOP of the owner: taken over by n2 ${takeoverMs} ms after the stop (lease 2000 ms); after SIGCONT ` +
        `its members were closed 4503 in ${closedMs} ms, the ${s.resent} commands it never answered were resent ` +
        `to n2 (${s.duplicates} stored before the stop), ` +
        `${s.acked} acked in all, none of the old epoch stored from seq ${takeoverSeq} on`,
    );
  } finally {
    if (stopped) stopped.proc.kill('SIGCONT');
    for (const m of members) await m.close().catch(() => {});
    for (const n of nodes) {
      await n.server.stop('SIGKILL');
      fs.rmSync(n.server.dataDir, { recursive: true, force: true });
    }
    fs.rmSync(keys.dir, { recursive: true, force: true });
    db.drop();
  }
});
