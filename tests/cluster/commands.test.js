// commands.test.js - command ids across a failover (issue 13, point 5): a
// partner's private message is committed by the node that holds the room;
// that node is killed (kill -9) before the partner does anything with the
// reply; the partner reconnects through nginx, lands on the survivor (which
// folds the room from the shared log) and sends the message again with the
// same command_id. The survivor knows the id from its fold: the resend is
// acked as a duplicate with the original's seq and nothing more is stored.
// (kill9.test.js finds the same under load, by chance of timing; here the
// commit before the kill is certain.)
// Needs ATTUNE_TEST_PG (tests/pg/cluster.sh start); skipped without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ADMIN, freshDatabase, startCampaign, owners, waitUntil, psql } from './cluster.js';

// Sends msg on the member's connection with reply id `id`; resolves with
// the reply (the member matches replies to its pending ids).
function request(member, msg, id) {
  return new Promise((resolve) => {
    member.pending.set(id, resolve);
    member.ws.send(JSON.stringify({ ...msg, id }));
  });
}

test('a survivor acks the resend of what the dead node committed, and stores nothing twice', {
  skip: !ADMIN && 'ATTUNE_TEST_PG is not set',
  timeout: 120000,
}, async () => {
  const db = freshDatabase(ADMIN, 'cmdid');
  const campaign = await startCampaign({ uri: db.uri, roomCount: 1, leaseMs: 3000, nodes: 2 });
  try {
    const room = campaign.rooms[0].room;
    const [ownerName] = Object.keys(owners(db.uri));
    const A = campaign.members.find((m) => m.role === 'partner_a');
    const T = campaign.members.find((m) => m.role === 'therapist');
    const text = 'committed by the node that dies';
    const msg = { type: 'private_message', to: 'therapist', text, command_id: crypto.randomBytes(16).toString('base64url') };
    // Sent outside the member's own request tracking: its reply is ignored.
    A.ws.send(JSON.stringify({ ...msg, id: 'first' }));
    await waitUntil(() => T.events.some((e) => e.event.text === text), { what: 'the therapist to see it (committed)' });
    const original = await waitUntil(() => A.events.find((e) => e.event.text === text), { what: 'partner_a to see it' });

    const owner = campaign.node(ownerName);
    const killedAt = Date.now();
    owner.server.proc.kill('SIGKILL');
    await owner.server.exited;
    await waitUntil(() => A.ready && A.resumes.some((t) => t >= killedAt), { timeoutMs: 30000, what: 'partner_a on the survivor' });
    const [survivor] = Object.keys(owners(db.uri));
    assert.notEqual(survivor, ownerName, 'the survivor holds the room now');

    const reply = await request(A, msg, 'again');
    assert.equal(reply.type, 'ack', JSON.stringify(reply));
    assert.equal(reply.duplicate, true);
    assert.equal(reply.seq, original.seq, "the original's seq in partner_a's numbering");
    const stored = Number(psql(db.uri, `SELECT count(*) FROM events WHERE room = '${room}' AND type = 'private_message'`));
    assert.equal(stored, 1, 'stored once');
    // A new message still goes in (the id is the message's, not the room's).
    const m2 = { ...msg, text: 'after the failover', command_id: crypto.randomBytes(16).toString('base64url') };
    const next = await request(A, m2, 'next');
    assert.equal(next.type, 'ack');
    assert.ok(!next.duplicate && next.seq > original.seq);
    console.log(`kill -9 of ${ownerName}; ${survivor} acked the resend as a duplicate of seq ${original.seq}`);
  } finally {
    await campaign.stop();
    db.drop();
  }
});
