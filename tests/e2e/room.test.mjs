// A whole Enactment session in three real browser contexts (partner A and B
// at phone width, the therapist at desktop width) against the real server:
// consent and the private check-in, both rounds with one rejected reflection
// and the swap, a pause that must reach the therapist within a second (as a
// pause, not a rupture), a rupture the therapist marks and repairs, a repair
// attempt accepted by the other partner, a reload mid-turn, private notes that
// never reach a partner (DOM and wire), per-audience seqs without gaps,
// axe-core and screenshots.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openParticipant, axeViolations, screenshots } from './harness.mjs';
import { waitTurn, textbox, share, allSee as allSeeStep, noteAndRepair, checkIn, markRupture } from './enactment-steps.mjs';

const SECRET_NOTE = 'PRIVATE-NOTE-7f3a: A softened, B still guarded';
const SECRET_REPAIR_NOTE = 'PRIVATE-REPAIR-2b9c: slowed down, named the cycle';

let server;
let browser;
let A;
let B;
let T;
const axeFindings = [];

async function axeAt(p, where) {
  const found = await axeViolations(p.page);
  for (const f of found) axeFindings.push(`${where}: ${f}`);
}

/** Both partners and the therapist see the same step. */
function allSee(actorName, stepTitle, actor) {
  return allSeeStep({ A, B, T }, actorName, stepTitle, actor);
}

async function speakerRound(speaker, listener, speakerName, listenerName, words, { rejectOnce, beforeCheck, reloadListener } = {}) {
  await allSee(speakerName, 'What happened', speaker);
  await textbox(speaker, 'What happened').fill(words.happened);
  await share(speaker);

  await allSee(speakerName, 'On the surface', speaker);
  await speaker.page.getByRole('radio', { name: /^Frustrated/ }).check();
  await textbox(speaker, /^What I did/).fill(words.did);
  await share(speaker);

  await allSee(speakerName, 'Underneath', speaker);
  await speaker.page.getByRole('searchbox', { name: 'Search feelings' }).fill('losing');
  assert.equal(await speaker.page.getByRole('radio', { name: /^Hurt/ }).count(), 0, 'search hides non-matching feelings');
  await speaker.page.getByRole('radio', { name: /^Afraid of losing you/ }).check();
  await speaker.page.getByRole('slider', { name: /How strong is it now/ }).fill('8');
  await share(speaker);

  await allSee(speakerName, 'What you need', speaker);
  await speaker.page.getByRole('radio', { name: /^To know I matter to you/ }).check();
  await textbox(speaker, /^My request to you/).fill(words.request);
  await share(speaker);

  await allSee(speakerName === 'Partner A' ? 'Partner B' : 'Partner A', 'Reflect back', listener);
  // The listener sees the speaker's words from this round to reflect them.
  await listener.page.locator('.thread').getByText(words.happened).waitFor();
  await listener.page.locator('.thread').getByText(/Afraid of losing you/).waitFor();
  await textbox(listener, 'What I heard you say').fill(words.reflection1);
  if (reloadListener) {
    // Mid-turn reload: the page must come back to the same step with the
    // words typed so far, and the session must go on from there.
    await listener.page.reload();
    await waitTurn(listener, 'Your turn', 'Reflect back');
    await listener.page.locator('#connection[data-status="open"]').waitFor();
    assert.equal(await textbox(listener, 'What I heard you say').inputValue(), words.reflection1);
    await listener.page.locator('.thread').getByText(words.happened).waitFor();
  }
  await share(listener);

  if (beforeCheck) await beforeCheck();

  await allSee(speakerName, 'Did it land?', speaker);
  if (rejectOnce) {
    await speaker.page.getByRole('radio', { name: 'Not quite' }).check();
    await textbox(speaker, /^What I'd add or correct/).fill(words.correction);
    await share(speaker);
    await allSee(listenerName, 'Reflect back', listener);
    await listener.page.locator('.thread').getByText(words.correction).waitFor();
    await textbox(listener, 'What I heard you say').fill(words.reflection2);
    await share(listener);
    await allSee(speakerName, 'Did it land?', speaker);
  }
  await speaker.page.getByRole('radio', { name: "Yes, that's it" }).check();
  await share(speaker);

  await allSee(listenerName, 'Respond', listener);
  await textbox(listener, 'My response').fill(words.response);
  await share(listener);

  await allSee(speakerName, 'How connected?', speaker);
  await speaker.page.getByRole('radio', { name: words.rating, exact: true }).check();
  await share(speaker);
}

describe('room page: a whole Enactment session in three browsers', { timeout: 180000 }, () => {
  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    A = await openParticipant(browser, server.invites.partner_a, 375);
    B = await openParticipant(browser, server.invites.partner_b, 375);
    // The therapist's link as made before issue 13 (no ?room=): the page
    // learns the room from the hello ack and routes every reconnect by it.
    T = await openParticipant(browser, server.invites.therapist.replace(/\?room=[^#]*/, ''), 1280);
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('shows each partner the consent notice, then who they are waiting for', async () => {
    await A.page.getByRole('heading', { name: 'Before we begin' }).waitFor();
    const consentText = await A.page.locator('.consent').innerText();
    assert.match(consentText, /What is recorded/);
    assert.match(consentText, /Who sees it/);
    assert.match(consentText, /your ratings/);
    await A.page.locator('#connection[data-status="open"]').waitFor();
    await screenshots(A, 'partner-consent');
    await axeAt(A, 'partner consent');

    await A.page.getByRole('button', { name: /I agree/ }).click();
    await A.page.getByRole('heading', { name: 'Waiting for Partner B' }).waitFor();
    await T.page.getByText('Partner A: has agreed').waitFor();
    await screenshots(A, 'partner-waiting');

    await B.page.getByRole('button', { name: /I agree/ }).click();
    // The private check-in comes first; every answer clear, the joint work begins by itself.
    await checkIn(A, 'Yes');
    await checkIn(B, 'Yes');
    await waitTurn(A, 'Your turn', 'What happened');
    await waitTurn(B, 'Partner A', 'What happened');
    assert.match(await A.page.locator('.role-pill').innerText(), /You are the speaker/);
    assert.match(await B.page.locator('.role-pill').innerText(), /You are the listener/);
    // The turn change is announced in the polite live region.
    await A.page.waitForFunction(() => /Your turn: What happened/.test(document.getElementById('announce').textContent));
    assert.equal(await A.page.locator('#announce').getAttribute('aria-live'), 'polite');
  });

  it('reconnects by itself after the server restarts, resumes from the last seq and keeps unsent words', async () => {
    const unsent = 'Half a thought I have not sent yet';
    await textbox(A, 'What happened').fill(unsent);
    const hellosBefore = [A, B, T].map((p) => p.sent.filter((f) => f.includes('"type":"hello"')).length);
    const invitesAfter = await server.restart();
    assert.equal(invitesAfter.partner_a, server.invites.partner_a, 'the demo room keeps its invitations');
    // Every page notices and comes back on its own: a new hello, then connected.
    const until = Date.now() + 15000;
    for (const [i, p] of [A, B, T].entries()) {
      while (p.sent.filter((f) => f.includes('"type":"hello"')).length <= hellosBefore[i]) {
        assert.ok(Date.now() < until, 'a page did not reconnect within 15 s');
        await new Promise((r) => setTimeout(r, 50));
      }
      await p.page.locator('#connection[data-status="open"]').waitFor({ timeout: 15000 });
    }
    await waitTurn(A, 'Your turn', 'What happened');
    assert.equal(await textbox(A, 'What happened').inputValue(), unsent);
    const hellos = A.sent.map((f) => JSON.parse(f)).filter((m) => m.type === 'hello');
    assert.ok(hellos.length >= 2, 'a second hello after the restart');
    assert.ok(hellos[hellos.length - 1].resume_from > 0, 'the reconnect resumes from the last seq seen');
    // Every socket names the room, so a proxy can route it (PROTOCOL.md 1);
    // the old-style link's first one could not, its reconnects do.
    const room = new URL(server.invites.partner_a).searchParams.get('room');
    assert.match(room, /^demo-/);
    const wsRoom = (u) => new URL(u).searchParams.get('room');
    for (const p of [A, B]) {
      assert.ok(p.sockets.length >= 2, JSON.stringify(p.sockets));
      for (const u of p.sockets) assert.equal(wsRoom(u), room, u);
    }
    assert.equal(new URL(T.sockets[0]).search, '', T.sockets[0]);
    assert.ok(T.sockets.length >= 2);
    for (const u of T.sockets.slice(1)) assert.equal(wsRoom(u), room, u);
  });

  it('round 1: partner A speaks, one reflection is rejected and tried again', async () => {
    await speakerRound(
      A,
      B,
      'Partner A',
      'Partner B',
      {
        happened: 'You worked late on Friday and did not call.',
        did: 'I kept texting, then I went quiet.',
        request: 'Call me when you will be late.',
        reflection1: 'You were annoyed that I was late.',
        correction: 'It is less about being late, more about feeling alone.',
        reflection2: 'You felt alone and scared you are losing me.',
        response: 'I want you to feel you matter. I will call.',
        rating: '7',
      },
      {
        rejectOnce: true,
        beforeCheck: async () => {
          await waitTurn(A, 'Your turn', 'Did it land?');
          await screenshots(A, 'partner-check');
        },
      },
    );
    // The rejected reflection and the retry are both in the record.
    const thread = await T.page.locator('.thread-slot').innerText();
    assert.match(thread, /Not quite/);
    assert.match(thread, /You felt alone and scared you are losing me/);
  });

  it('swaps speaker and listener for round 2, and the therapist can swap them by hand', async () => {
    await waitTurn(B, 'Your turn', 'What happened');
    assert.match(await B.page.locator('.role-pill').innerText(), /You are the speaker/);
    assert.match(await A.page.locator('.role-pill').innerText(), /You are the listener/);
    assert.match(await A.page.locator('.turn-meta').innerText(), /Round 2 of 2/);

    await T.page.getByRole('button', { name: 'Swap speaker and listener' }).click();
    await B.page.locator('.role-pill', { hasText: 'You are the listener' }).waitFor();
    await T.page.getByRole('button', { name: 'Swap speaker and listener' }).click();
    await B.page.locator('.role-pill', { hasText: 'You are the speaker' }).waitFor();
    await screenshots(B, 'partner-speaker-turn');
    await axeAt(B, 'partner form');
  });

  it('a pause request pauses the room and shows on the therapist page within one second, as a pause and not a rupture; the therapist marks a rupture and repairs it', async () => {
    await waitTurn(A, 'Partner B', 'What happened');
    await A.page.getByRole('button', { name: 'I need a pause' }).click();
    await A.page.getByRole('dialog', { name: 'Take a pause' }).waitFor();
    // The dialog says who sees the note, and where the private line is.
    assert.match(await A.page.getByRole('dialog', { name: 'Take a pause' }).innerText(), /Your partner sees this note too/);
    await A.page.getByRole('textbox', { name: /Anything you want to say/ }).fill('I need a minute.');
    const started = Date.now();
    await A.page.getByRole('button', { name: 'Pause now' }).click();
    await T.page.locator('.staff-paused', { hasText: 'Partner A asked for a pause' }).waitFor({ timeout: 1000 });
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 1000, `pause visible after ${elapsed} ms`);
    assert.match(await T.page.locator('.staff-paused').innerText(), /I need a minute/);
    assert.equal(await T.page.locator('.rupture-banner').count(), 0, 'a pause opens no rupture');
    assert.equal(await T.page.locator('.suspicion.suspected').count(), 0, 'a pause raises no suspicion');

    await A.page.getByRole('heading', { name: 'You asked for a pause' }).waitFor();
    await B.page.getByRole('heading', { name: 'We are taking a pause' }).waitFor();
    await screenshots(A, 'partner-paused');
    await axeAt(A, 'partner paused');

    // The therapist judges a rupture happened, marks it, notes it and repairs it.
    await markRupture(T, { kind: 'Withdrawal', marker: 'Minimal response', who: 'partner_a', withRole: 'partner_b' });
    const banner = await T.page.locator('.rupture-banner.open').innerText();
    assert.match(banner, /Withdrawal: Minimal response/);
    assert.match(banner, /Partner A with Partner B/);
    await screenshots(T, 'therapist-open-rupture');
    await axeAt(T, 'therapist open rupture');
    await noteAndRepair(T, SECRET_NOTE, SECRET_REPAIR_NOTE);
    const timeline = await T.page.locator('.timeline').innerText();
    assert.match(timeline, /repaired after .*Talk about what just happened/);
    await T.page.locator('.notes-list').getByText(SECRET_REPAIR_NOTE).waitFor();

    await T.page.getByRole('button', { name: 'Resume' }).click();
    await waitTurn(B, 'Your turn', 'What happened');
    await A.page.getByRole('heading', { name: 'You asked for a pause' }).waitFor({ state: 'hidden' });
  });

  it('a repair attempt by one partner can be accepted by the other', async () => {
    await B.page.getByRole('button', { name: 'Let me try again' }).click();
    await B.page.getByRole('textbox', { name: /What you would like to say/ }).fill('Sorry, can I say that more gently?');
    await B.page.getByRole('button', { name: 'Send', exact: true }).click();
    await A.page.getByRole('heading', { name: 'Partner B would like to try again' }).waitFor();
    // The therapist can acknowledge it, never accept it for a partner.
    assert.equal(await T.page.getByRole('button', { name: /^Accept/ }).count(), 0);
    await T.page.locator('.offers').getByRole('button', { name: 'Acknowledge' }).click();
    await B.page.locator('.offer.mine', { hasText: 'Your therapist has seen it' }).waitFor();
    await A.page.getByRole('button', { name: 'Accept', exact: true }).click();
    await A.page.getByRole('heading', { name: 'Partner B would like to try again' }).waitFor({ state: 'detached' });
  });

  it('round 2: partner B speaks; partner A reloads mid-turn and comes back where they were', async () => {
    const words = {
      happened: 'At dinner you looked at your phone the whole time.',
      did: 'I got short with you and left the table.',
      request: 'Put the phone away when we eat.',
      reflection1: 'You felt shut out when I was on my phone.',
      response: 'I did not know it hurt that much. I want to be with you.',
      rating: '8',
    };
    await speakerRound(B, A, 'Partner B', 'Partner A', words, { reloadListener: true });
    await A.page.getByRole('heading', { name: 'The session has ended' }).waitFor();
    await B.page.getByRole('heading', { name: 'The session has ended' }).waitFor();
    await T.page.locator('.turn-who', { hasText: 'The session has ended' }).waitFor();
    await screenshots(A, 'partner-ended');
    await screenshots(T, 'therapist-ended');
    await axeAt(A, 'partner ended');
    await axeAt(T, 'therapist ended');
  });

  it('never shows a partner the therapist\'s private notes, in the page or on the wire', async () => {
    for (const secret of [SECRET_NOTE, SECRET_REPAIR_NOTE]) {
      assert.ok((await T.page.content()).includes(secret), 'the therapist sees the note (the check is live)');
      assert.ok(T.received.some((f) => f.includes(secret)), 'the note reached the therapist on the wire');
      for (const [name, p] of [['A', A], ['B', B]]) {
        assert.ok(!(await p.page.content()).includes(secret), `partner ${name}'s page shows a private note`);
        assert.ok(!p.received.some((f) => f.includes(secret)), `partner ${name} received a private note`);
      }
    }
    for (const [name, p] of [['A', A], ['B', B]]) {
      const types = p.received.map((f) => JSON.parse(f)).filter((m) => m.type === 'event').map((m) => m.event.type);
      assert.ok(types.includes('turn'), `partner ${name} received events`);
      for (const hidden of ['note', 'rupture_suspected', 'rupture_confirmed', 'rupture_dismissed']) {
        assert.ok(!types.includes(hidden), `partner ${name} received a ${hidden} event`);
      }
      // Per-audience seqs: every seq from 1 to the last, none missing (replays after reconnects repeat some).
      const frames = p.received.map((f) => JSON.parse(f));
      const seqs = new Set(frames.filter((m) => m.type === 'event').map((m) => m.seq));
      const last = Math.max(...seqs);
      for (let i = 1; i <= last; i += 1) assert.ok(seqs.has(i), `partner ${name}: seq ${i} missing (a gap)`);
      for (const st of frames.filter((m) => m.type === 'state')) {
        for (const key of ['suspicions', 'suspicions_dropped', 'next_rupture_id', 'step_started_seq']) {
          assert.ok(!(key in st), `partner ${name}'s state carries ${key}`);
        }
        assert.ok(st.seq <= last, `partner ${name}'s state names seq ${st.seq} beyond its events`);
      }
    }
  });

  it('gives an observer the therapist view, read-only', async () => {
    const O = await openParticipant(browser, await server.observerUrl(), 1280);
    await O.page.locator('#connection[data-status="open"]').waitFor();
    await O.page.getByText('You are observing this room').waitFor();
    await O.page.locator('.notes-list').getByText(SECRET_NOTE).waitFor();
    assert.match(await O.page.locator('.timeline').innerText(), /Withdrawal: Minimal response/);
    // The partners are told a supervisor is observing.
    await A.page.locator('.observer-badge', { hasText: 'A supervisor is observing' }).waitFor();
    for (const name of ['Next step', 'Mark rupture', 'Save note', 'Mark repaired', 'End session', 'Confirm', 'Dismiss']) {
      assert.equal(await O.page.getByRole('button', { name }).count(), 0, `observer has no "${name}" button`);
    }
    assert.match(await O.page.locator('#role-label').innerText(), /Observer/);
    await screenshots(O, 'observer');
    await axeAt(O, 'observer');
    assert.deepEqual(O.problems, []);
    await O.context.close();
  });

  it('has no serious or critical axe-core violations on any page it visited', () => {
    assert.deepEqual(axeFindings, []);
  });

  it('ran without page errors or Content-Security-Policy violations', () => {
    // While the server restarts, Chromium itself logs each refused reconnect
    // attempt; that is the browser reporting the outage, not a page problem.
    const outage = /^console: WebSocket connection to '.*' failed/;
    for (const p of [A, B, T]) assert.deepEqual(p.problems.filter((x) => !outage.test(x)), []);
  });
});
