// commands.test.mjs - command ids in the web app (PROTOCOL.md section 4).
// A command sent while the link is down is kept and delivered once after
// the reconnect: partner A writes to the therapist while the server is
// down; the page keeps the message, reconnects by itself when the server is
// back, resumes, then sends it with a command id: the therapist gets it
// once, A's page shows it sent once, and no other wire carries the command
// id. And a command whose ack a drop took is sent again, once, after the
// resume: the server acks it as a duplicate and records nothing more.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openParticipant } from './harness.mjs';

const WORDS = 'OFFLINE-WORDS-5d1e: written while the link was down';
const LOST = 'LOST-ACK-WORDS-9a7c: the ack of this one is lost';

let server;
let browser;
let A;
let T;

const frames = (p) => p.sent.map((f) => JSON.parse(f));

describe('a command sent while offline', { timeout: 120000 }, () => {
  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    A = await openParticipant(browser, server.invites.partner_a, 375);
    T = await openParticipant(browser, server.invites.therapist, 1280);
    for (const p of [A, T]) await p.page.locator('#connection[data-status="open"]').waitFor();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('is delivered once after the reconnect', async () => {
    await server.down();
    await A.page.locator('#connection:not([data-status="open"])').waitFor();
    const hellos = frames(A).filter((m) => m.type === 'hello').length;

    await A.page.getByRole('button', { name: /^Message my therapist/ }).click();
    const dialog = A.page.getByRole('dialog', { name: 'Message my therapist only' });
    await dialog.getByRole('textbox', { name: 'Your message' }).fill(WORDS);
    await dialog.getByRole('button', { name: 'Send to my therapist' }).click();
    // Kept, not refused: nothing on the wire yet, no error shown.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(frames(A).filter((m) => m.type === 'private_message').length, 0);

    await server.up();
    for (const p of [A, T]) await p.page.locator('#connection[data-status="open"]').waitFor({ timeout: 15000 });
    await T.page.locator('.private-thread[data-partner="partner_a"]').getByText(WORDS).waitFor();
    await dialog.locator('.private-item.mine', { hasText: WORDS }).waitFor();
    await dialog.getByText('Sent. Only your therapist sees it.').waitFor();

    const sent = frames(A);
    const hello = sent.findLastIndex((m) => m.type === 'hello');
    assert.ok(frames(A).filter((m) => m.type === 'hello').length > hellos, 'a new hello');
    assert.ok(sent[hello].resume_from > 0, 'it resumed');
    const msgs = sent.filter((m) => m.type === 'private_message');
    assert.equal(msgs.length, 1, 'sent once, after the reconnect');
    assert.ok(sent.indexOf(msgs[0]) > hello, 'after the hello');
    assert.match(msgs[0].command_id, /^[A-Za-z0-9_-]{22}$/);
    const ack = A.received.map((f) => JSON.parse(f)).find((m) => m.type === 'ack' && m.id === msgs[0].id);
    assert.ok(ack && ack.seq > 0 && !ack.duplicate, JSON.stringify(ack));

    // Recorded once: the therapist's private line and wire.
    assert.equal(await T.page.locator('.private-thread[data-partner="partner_a"]').getByText(WORDS).count(), 1);
    assert.equal(await dialog.locator('.private-item.mine', { hasText: WORDS }).count(), 1);
    const tEvents = T.received.map((f) => JSON.parse(f)).filter((m) => m.type === 'event' && m.event.text === WORDS);
    assert.equal(tEvents.length, 1);
    for (const f of [...T.received, ...A.received]) assert.ok(!f.includes(msgs[0].command_id), 'no wire carries the command id');
    for (const p of [A, T]) assert.deepEqual(p.problems.filter((x) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(x)), []);
  });

  it('is sent again once when the ack was lost, and recorded once', async () => {
    // Partner B's page, its socket through a route that drops the link the
    // moment the server's ack of the message comes back (after the commit).
    const context = await browser.newContext({ viewport: { width: 375, height: 860 } });
    context.setDefaultTimeout(10000);
    const page = await context.newPage();
    const wire = []; // {dir, m}, every frame of every socket
    let lostId = null;
    await page.routeWebSocket(/\/ws/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((m) => {
        const msg = JSON.parse(m);
        wire.push({ dir: 'out', m: msg });
        if (msg.type === 'private_message' && msg.text === LOST && lostId === null) lostId = msg.id;
        server.send(m);
      });
      server.onMessage((m) => {
        const msg = JSON.parse(m);
        if (lostId && msg.type === 'ack' && msg.id === lostId) {
          lostId = 'done';
          ws.close({ code: 4000, reason: 'test drop' });
          server.close();
          return;
        }
        wire.push({ dir: 'in', m: msg });
        ws.send(m);
      });
    });
    await page.goto(server.invites.partner_b);
    await page.locator('#connection[data-status="open"]').waitFor();
    const from = T.received.length;

    await page.getByRole('button', { name: /^Message my therapist/ }).click();
    const dialog = page.getByRole('dialog', { name: 'Message my therapist only' });
    await dialog.getByRole('textbox', { name: 'Your message' }).fill(LOST);
    await dialog.getByRole('button', { name: 'Send to my therapist' }).click();
    await dialog.getByText('Sent. Only your therapist sees it.').waitFor({ timeout: 15000 });
    await T.page.locator('.private-thread[data-partner="partner_b"]').getByText(LOST).waitFor();

    const sent = wire.filter((f) => f.dir === 'out' && f.m.type === 'private_message');
    assert.equal(sent.length, 2, 'sent, then sent again after the resume');
    assert.equal(sent[0].m.command_id, sent[1].m.command_id, 'with the same command id');
    const hellos = wire.filter((f) => f.dir === 'out' && f.m.type === 'hello');
    assert.equal(hellos.length, 2);
    assert.ok(wire.indexOf(hellos[1]) < wire.indexOf(sent[1]), 'the resend follows the new hello');
    const ack = wire.find((f) => f.dir === 'in' && f.m.type === 'ack' && f.m.id === sent[1].m.id);
    assert.ok(ack && ack.m.duplicate === true && ack.m.seq > 0, JSON.stringify(ack));
    // The therapist got it once, and no second event came for the resend.
    await new Promise((r) => setTimeout(r, 300));
    const got = T.received.slice(from).map((f) => JSON.parse(f)).filter((m) => m.type === 'event' && m.event.text === LOST);
    assert.equal(got.length, 1);
    assert.equal(await T.page.locator('.private-thread[data-partner="partner_b"]').getByText(LOST).count(), 1);
    assert.equal(await dialog.locator('.private-item.mine', { hasText: LOST }).count(), 1);
    await context.close();
  });
});
