// The failure campaign, a node's writer connection cut mid-commit (issue
// 13): three nodes behind nginx on one PostgreSQL database, six rooms
// under load; five times, every node's writer session is ended with
// pg_terminate_backend (application_name attune-writer-NODE), each time
// once the load has gone on since the last. Whatever was in flight has an
// unknown outcome for the node: it must read back before it acks, never
// ack what did not commit and never append twice. Checked as in
// kill9.test.js: every acked command stored once at its seq, every
// member's seqs gapless, every unanswered command resent with its
// command_id and recorded once, an error reply (internal) never stored,
// and the session goes on. Needs ATTUNE_TEST_PG; skipped without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, freshDatabase, startCampaign, checkAll, summary, waitUntil, psql } from './cluster.js';

const ROOMS = 6;
const CUTS = 5;

test('pg_terminate_backend of every writer mid-load: no ack for what did not commit, nothing stored twice', {
  skip: !ADMIN && 'ATTUNE_TEST_PG is not set',
  timeout: 120000,
}, async () => {
  const db = freshDatabase(ADMIN, 'terminate');
  const campaign = await startCampaign({ uri: db.uri, roomCount: ROOMS, leaseMs: 3000 });
  try {
    const { members } = campaign;
    const total = () => members.reduce((n, m) => n + m.acked.length, 0);
    for (const m of members) m.startLoad(10);
    await waitUntil(() => members.every((m) => m.acked.length >= 5), { timeoutMs: 30000, what: 'load on every member' });
    let terminated = 0;
    for (let i = 0; i < CUTS; i++) {
      terminated += Number(
        psql(
          db.uri,
          "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE 'attune-writer-%'",
        ),
      );
      // The next cut once the nodes have reconnected and committed again.
      const at = total();
      await waitUntil(() => total() >= at + 3 * ROOMS, { timeoutMs: 30000, what: `the load to go on after cut ${i + 1}` });
    }
    assert.ok(terminated >= CUTS, `writer sessions ended: ${terminated}`);
    const mark = new Map(members.map((m) => [m, m.acked.length]));
    await waitUntil(() => members.every((m) => m.acked.length >= mark.get(m) + 5), {
      timeoutMs: 30000,
      what: 'five more acks on every member',
    });
    for (const m of members) await m.stopLoad();
    // What members saw of the cuts (before they leave for the checks).
    const closes = {};
    for (const m of members) for (const c of m.closes) closes[`${c.code} ${c.bye ?? ''}`.trim()] = (closes[`${c.code} ${c.bye ?? ''}`.trim()] || 0) + 1;
    await checkAll(campaign, db.uri);
    const s = summary(members);
    const codes = {};
    for (const m of members) for (const e of m.errors) codes[e.code] = (codes[e.code] || 0) + 1;
    for (const code of Object.keys(codes)) assert.equal(code, 'internal', `an error a member may see: ${code}`);
    console.log(
      `pg_terminate_backend of the writers ${CUTS} times (${terminated} sessions): ${s.acked} commands acked, ` +
        `${s.resent} resent (${s.duplicates} stored before), errors ${JSON.stringify(codes)}, closes ${JSON.stringify(closes)}`,
    );
  } finally {
    await campaign.stop();
    db.drop();
  }
});
