// commands.test.mjs - a command sent while the link is down is kept and
// delivered once after the reconnect (PROTOCOL.md section 4: command ids).
// Partner A writes to the therapist while the server is down; the page
// keeps the message, reconnects by itself when the server is back, resumes,
// then sends it with a command id: the therapist gets it once, A's page
// shows it sent once, and no other wire carries the command id.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openParticipant } from './harness.mjs';

const WORDS = 'OFFLINE-WORDS-5d1e: written while the link was down';

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
});
