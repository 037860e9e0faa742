// Two attune-server nodes on one PostgreSQL database (issue 13): a room is
// served by one node at a time; a node that gets a hello for a room the
// other live node holds refuses it with bye room_moved (4503); after kill -9
// of the holder the other node takes the room over (epoch + 1) and serves
// the same link. Needs ATTUNE_TEST_PG (tests/pg/cluster.sh start); skipped
// without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Client, startServer, sleep } from '../integration/harness.js';
import { ADMIN, psql, freshDatabase, sharedKeys } from './cluster.js';

const connect = (server) => Client.connect(server.wsUrl, { origin: server.httpUrl });

function tokensOf(server) {
  const out = {};
  for (const line of server.stdout) {
    const m = /^invite (\S+) \S+#token=(\S+)$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

test('a room has one node; kill -9 of it moves the room to the other', { skip: !ADMIN && 'ATTUNE_TEST_PG is not set', timeout: 60000 }, async () => {
  const db = freshDatabase(ADMIN, 'failover');
  const { uri } = db;
  const keys = sharedKeys();
  const shared = ['--store', uri, ...keys.args, '--node-lease-ms', '3000'];
  let one = null;
  let two = null;
  try {
    one = await startServer({ args: [...shared, '--demo'] });
    two = await startServer({ args: shared });
    const tokens = tokensOf(one);
    assert.ok(tokens.partner_a && tokens.partner_b, 'the demo printed its links');

    const a = await connect(one);
    const { ack } = await a.hello(tokens.partner_a);
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    const owner = psql(uri, 'SELECT owner FROM rooms');
    assert.match(owner, /:\w+$/);

    // The other node refuses while the first one holds the room.
    const b = await connect(two);
    b.send({ type: 'hello', id: 'h1', token: tokens.partner_b });
    const closed = await b.closed;
    assert.equal(closed.code, 4503, `refused with room_moved: ${JSON.stringify(closed)}`);

    // kill -9 of the holder: its members reconnect to the survivor.
    const seqBefore = Number(psql(uri, 'SELECT last_seq FROM rooms'));
    const killedAt = Date.now();
    const logsAtKill = two.logs.length;
    one.proc.kill('SIGKILL');
    await one.exited;
    await a.closed;
    let resumed = null;
    for (let i = 0; i < 100 && !resumed; i++) {
      const c = await connect(two);
      const r = await c.hello(tokens.partner_a, seqBefore).catch(() => ({}));
      if (r.ack?.type === 'ack') resumed = c;
      else await sleep(100);
    }
    const tookMs = Date.now() - killedAt;
    assert.ok(resumed, 'the room was taken over by the surviving node');
    console.log(`kill -9 to a member resumed on the survivor: ${tookMs} ms`);
    if (tookMs > 2000) console.log(`slow: the survivor logged ${JSON.stringify(two.logs.slice(logsAtKill))}`);
    assert.equal(psql(uri, 'SELECT epoch FROM rooms'), '2');
    assert.notEqual(psql(uri, 'SELECT owner FROM rooms'), owner);
    // No gap: seqs 1..last_seq are all there, once each.
    assert.equal(psql(uri, 'SELECT count(*) = max(seq) FROM events'), 't');
    await resumed.close();
  } finally {
    // Whatever failed: a node left running would keep this file's process
    // (and the test run) alive.
    for (const node of [one, two].filter(Boolean)) {
      await node.stop('SIGKILL');
      fs.rmSync(node.dataDir, { recursive: true, force: true });
    }
    fs.rmSync(keys.dir, { recursive: true, force: true });
    db.drop();
  }
});

// SIGSTOP of the owner past its lease: sigstop.test.js.
