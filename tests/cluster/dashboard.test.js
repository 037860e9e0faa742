// A dashboard on one node follows a room another node serves (issue 13):
// the serving node writes the room's summary to the shared store once a
// sweep when its state changed, and every node's dashboard streams read
// their lists again every SRV_EVENTS_SHARED_POLL_MS (server/net/
// room_events.h), pushing a list only when it differs. Two nodes, one
// database: the room is created and served on n1, the stream is opened on
// n2, a partner joins on n1; n2's stream shows them present.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { ADMIN, addTherapist, freshDatabase, sharedKeys, startNodes } from './cluster.js';
import { Client, tokenOf } from '../integration/harness.js';
import { request, loginCookie } from '../integration/http.js';

// The `data: ` lines of a server-sent-events response, as parsed lists.
function listsOf(res) {
  const lists = [];
  let buf = '';
  res.req.res.setEncoding('utf8');
  res.req.res.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const chunk = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const m = /^data: (.*)$/m.exec(chunk);
      if (m) lists.push({ at: Date.now(), rooms: JSON.parse(m[1]) });
    }
  });
  return lists;
}

test('a dashboard on another node follows the room within a few seconds', {
  skip: !ADMIN && 'ATTUNE_TEST_PG is not set',
  timeout: 90000,
}, async () => {
  const db = freshDatabase(ADMIN, 'dashboard');
  const keys = sharedKeys();
  let nodes = [];
  let stream = null;
  let a = null;
  try {
    addTherapist(db.uri, keys, 'alice', 'alice-long-password');
    nodes = await startNodes(2, db.uri, keys, { leaseMs: 3000 });
    const [one, two] = nodes.map((n) => n.server);
    const cookie = await loginCookie(one, 'alice', 'alice-long-password');
    const made = await request(one, 'POST', '/api/rooms', { cookie, json: { exercise: 'enactment' } });
    assert.equal(made.status, 201, made.text);
    const id = made.json.room.id;

    // n2's stream: the session made on n1 is valid there (shared sessions).
    stream = await request(two, 'GET', '/api/rooms/events', { cookie, open: true });
    assert.equal(stream.status, 200);
    const lists = listsOf(stream);
    const present = (list) => list.rooms.find((r) => r.id === id)?.present?.partner_a === true;
    const deadline = Date.now() + 15000;
    while (!lists.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(lists.length, 'the stream sent its first list');
    assert.ok(!present(lists[0]), `nobody present yet: ${JSON.stringify(lists[0].rooms)}`);

    // Partner A joins on n1, which serves the room.
    a = await Client.connect(`${one.wsUrl}?room=${id}`, { origin: one.httpUrl });
    const { ack } = await a.hello(tokenOf(made.json.invites.partner_a));
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    const joined = Date.now();
    while (!lists.some(present) && Date.now() < joined + 15000) await new Promise((r) => setTimeout(r, 50));
    const seen = lists.find(present);
    assert.ok(seen, `n2's dashboard saw partner A join: ${JSON.stringify(lists.at(-1)?.rooms)}`);
    console.log(`joined on n1 -> on n2's dashboard: ${seen.at - joined} ms; lists pushed: ${lists.length}`);
    // Lists identical to the last are not pushed again: a quiet stream
    // gets keepalives only.
    const count = lists.length;
    await new Promise((r) => setTimeout(r, 4500));
    assert.equal(lists.length, count, 'no list pushed while nothing changed');
  } finally {
    if (a) await a.close().catch(() => {});
    if (stream) stream.req.destroy();
    for (const n of nodes) {
      await n.server.stop('SIGKILL');
      fs.rmSync(n.server.dataDir, { recursive: true, force: true });
    }
    fs.rmSync(keys.dir, { recursive: true, force: true });
    db.drop();
  }
});
