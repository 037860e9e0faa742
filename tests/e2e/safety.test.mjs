// Safe for a real couple (issue 9), in Chromium against the real protocol 2
// server: the consent notice says what each screen receives and the partners
// see when a supervisor observes; a private message goes both ways (also
// before consent) and a request for a private word, and partner B's page,
// partner B's wire and the observer's wire never carry them; a "not sure"
// check-in holds both partners on the same neutral screen until the
// therapist goes on; two rejected reflections are confirmed as a rupture and
// blaming words are dismissed, partners receiving neither suspicion; consent
// withdrawn mid-session pauses the room, tells the therapist and refuses
// further input; a takeover stops the displaced window and says so plainly;
// the dashboard raises the private line and the held check-in; the report and
// replay mark the private line and the check-in private. axe-core on every
// page visited, screenshots at 375 and 1280 px.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openParticipant, axeViolations, screenshots } from './harness.mjs';
import { waitTurn, speakerRound, checkIn } from './enactment-steps.mjs';

const THERAPIST = { name: 'okafor', password: 'quiet-river-17' };
const SECRET_PRIVATE = 'PRIVATE-LINE-a71c: I am scared of how he reacts at home';
const SECRET_REPLY = 'PRIVATE-REPLY-3d0e: Thank you for telling me. We can talk alone first.';
const SECRET_REPLY_2 = 'PRIVATE-REPLY-8b42: I am here whenever you want to write.';
const SECRET_CHECKIN_NOTE = 'CHECKIN-NOTE-62f9: last night was frightening';
const CONFIRM_NOTE = 'CONFIRM-NOTE-1a2b: B could not find the words twice';
const DISMISS_NOTE = 'DISMISS-NOTE-9c8d: said with a smile, not blame';
const SECRETS = [SECRET_PRIVATE, SECRET_REPLY, SECRET_REPLY_2, SECRET_CHECKIN_NOTE];

const ROUND = {
  happened: "You're always on your phone when I'm talking.",
  reactive: 'Frustrated',
  did: 'I raised my voice and walked out.',
  primary: 'Afraid of losing you',
  intensity: 7,
  need: 'To know I matter to you',
  request: 'Look up when I talk to you.',
  reflection1: 'You were angry about the phone.',
  correction: 'It is more that I feel I do not matter.',
  reflection2: 'You felt unimportant to me.',
  response: 'You matter to me more than the phone.',
  rating: 6,
};

let server;
let browser;
let A;
let B;
let T;
let O;
let D; // the therapist's dashboard (logged in)
let roomId;
const axeFindings = [];

async function axeAt(p, where) {
  for (const f of await axeViolations(p.page)) axeFindings.push(`${where}: ${f}`);
}

function frames(p) {
  return p.received.map((f) => JSON.parse(f));
}

function eventTypes(p) {
  return frames(p)
    .filter((m) => m.type === 'event')
    .map((m) => m.event.type);
}

/** The room card on the dashboard. */
function card() {
  return D.page.locator(`.room-card[data-room="${roomId}"]`);
}

/** A raw protocol client (as from another device) with a partner's token; collects every message. */
function rawClient(token) {
  const ws = server.webSocket();
  const got = [];
  let next = 1;
  const waiters = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data));
    got.push(msg);
    for (const w of [...waiters]) {
      if (w.match(msg)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(msg);
      }
    }
  });
  const waitFor = (match, ms = 5000) =>
    new Promise((resolve, reject) => {
      const found = got.find(match);
      if (found) return resolve(found);
      const t = setTimeout(() => reject(new Error('raw client: no such message')), ms);
      waiters.push({ match, resolve: (m) => (clearTimeout(t), resolve(m)) });
    });
  const send = (msg) => {
    const id = `x${next++}`;
    ws.send(JSON.stringify({ ...msg, id }));
    return waitFor((m) => (m.type === 'ack' || m.type === 'error') && m.id === id);
  };
  const open = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  return { ws, got, waitFor, send, open, closed, hello: () => send({ type: 'hello', token }) };
}

describe('safe for a real couple: private line, check-in, observer, consent, suspicions, takeover', { timeout: 300000 }, () => {
  before(async () => {
    server = await startServer({ therapists: [THERAPIST], args: ['--demo-owner', THERAPIST.name] });
    browser = await launchBrowser();
    A = await openParticipant(browser, server.invites.partner_a, 375);
    B = await openParticipant(browser, server.invites.partner_b, 375);
    T = await openParticipant(browser, server.invites.therapist, 1280);
    D = await openParticipant(browser, `${server.base}/login.html`, 1280);
    await D.page.getByLabel('Username').fill(THERAPIST.name);
    await D.page.getByLabel('Password').fill(THERAPIST.password);
    await D.page.getByRole('button', { name: 'Log in' }).click();
    await D.page.waitForURL(/\/dashboard\.html$/);
    await D.page.locator('.room-card').first().waitFor();
    roomId = await D.page.locator('.room-card').first().getAttribute('data-room');
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('the consent notice says what each screen receives; both partners see when a supervisor observes', async () => {
    await A.page.getByRole('heading', { name: 'Before we begin' }).waitFor();
    const consent = A.page.locator('.consent');
    assert.match(await consent.innerText(), /A supervisor may observe this session/);
    await consent.getByText('Exactly what reaches each screen').click();
    const receives = await consent.locator('.receives-grid').innerText();
    assert.match(receives, /Your therapist’s screen[\s\S]*the software’s suggestions \(unconfirmed\)/);
    assert.match(receives, /Your partner’s screen[\s\S]*private messages with the therapist \(only their own\)/);
    assert.match(receives, /A supervisor’s screen/);
    assert.equal(await A.page.locator('.observer-badge').count(), 0, 'no badge while nobody observes');

    O = await openParticipant(browser, await server.observerUrl(), 1280);
    await O.page.locator('#connection[data-status="open"]').waitFor();
    for (const p of [A, B]) await p.page.locator('.observer-badge', { hasText: 'A supervisor is observing' }).waitFor();
    await A.page.waitForFunction(() => /A supervisor is now observing/.test(document.getElementById('announce').textContent));
    await screenshots(A, 'safety-partner-consent-observed');
    await axeAt(A, 'partner consent with an observer');
  });

  it('a private message goes both ways before consent; partner B and the observer never receive it; it stays an alert until seen', async () => {
    await A.page.getByRole('button', { name: /^Message my therapist/ }).click();
    const dialog = A.page.getByRole('dialog', { name: 'Message my therapist only' });
    await dialog.waitFor();
    assert.match(await dialog.innerText(), /Only your therapist sees this\./);
    await dialog.getByRole('textbox', { name: 'Your message' }).fill(SECRET_PRIVATE);
    await dialog.getByRole('button', { name: 'Send to my therapist' }).click();
    await dialog.locator('.private-item.mine', { hasText: SECRET_PRIVATE }).waitFor();

    // The therapist: a high-priority alert that stays, and the message in the private line.
    const alert = T.page.locator('.priority-banner[role="alert"]', { hasText: 'Private message from Partner A' });
    await alert.waitFor();
    assert.match(await alert.innerText(), new RegExp(SECRET_PRIVATE));
    await T.page.locator('.private-thread[data-partner="partner_a"]').getByText(SECRET_PRIVATE).waitFor();
    assert.match(await T.page.title(), /needs you/);

    // The dashboard raises it too, until the therapist says it was seen.
    await card().locator('.room-urgent', { hasText: 'A partner wrote to you privately' }).waitFor();
    assert.match(await D.page.locator('#rooms-summary').innerText(), /1 room needs you/);
    await screenshots(D, 'safety-dashboard-private');
    await axeAt(D, 'dashboard with a private message');
    await card().locator('.room-urgent').getByRole('button', { name: 'I’ve seen this' }).click();
    await card().locator('.room-urgent').waitFor({ state: 'detached' });

    // A private reply, seen in the open dialog.
    await T.page.getByRole('textbox', { name: 'Reply privately to Partner A' }).fill(SECRET_REPLY);
    await T.page.getByRole('button', { name: 'Send to Partner A only' }).click();
    await dialog.locator('.private-item:not(.mine)', { hasText: SECRET_REPLY }).waitFor();
    await screenshots(A, 'safety-partner-private-line', { full: false });
    await axeAt(A, 'partner private line');

    // The neutral request for a private word.
    await dialog.getByRole('button', { name: 'I need to check something with my therapist' }).click();
    await dialog.getByText('Your therapist has been asked for a private word').waitFor();
    await dialog.getByRole('button', { name: 'Close' }).click();
    await T.page.locator('.priority-banner', { hasText: 'Partner A asked for a private word' }).waitFor();

    // A reply while the dialog is closed shows as new on the button.
    await T.page.getByRole('textbox', { name: 'Reply privately to Partner A' }).fill(SECRET_REPLY_2);
    await T.page.getByRole('button', { name: 'Send to Partner A only' }).click();
    await A.page.getByRole('button', { name: /Message my therapist \(1 new\)/ }).waitFor();
    await screenshots(T, 'safety-therapist-private-alerts');
    await axeAt(T, 'therapist with private alerts');

    // Alerts stay until acknowledged, one by one.
    const banners = T.page.locator('.priority-banner');
    const n = await banners.count();
    assert.ok(n >= 2, `${n} alerts`);
    for (let i = 0; i < n; i += 1) await banners.first().getByRole('button', { name: 'I’ve seen this' }).click();
    assert.equal(await banners.count(), 0);

    // Partner B and the observer: nothing of it in the page or on the wire.
    for (const [name, p] of [['B', B], ['observer', O]]) {
      const html = await p.page.content();
      for (const secret of [SECRET_PRIVATE, SECRET_REPLY, SECRET_REPLY_2]) {
        assert.ok(!html.includes(secret), `${name}'s page shows a private message`);
        assert.ok(!p.received.some((f) => f.includes(secret)), `${name} received a private message`);
      }
      const types = eventTypes(p);
      assert.ok(!types.includes('private_message') && !types.includes('therapist_requested'), `${name} received the private line`);
    }
    assert.ok(T.received.some((f) => f.includes(SECRET_PRIVATE)), 'the check is live: the therapist received it');
  });

  it('a "not sure" check-in holds both partners on the same neutral screen until the therapist goes on', async () => {
    for (const p of [A, B]) await p.page.getByRole('button', { name: /I agree/ }).click();
    for (const p of [A, B]) await p.page.locator('.checkin').getByRole('radio', { name: 'Yes', exact: true }).waitFor();
    assert.match(await A.page.locator('.checkin').innerText(), /Private: only your therapist sees this/);
    await screenshots(A, 'safety-partner-checkin');
    await axeAt(A, 'partner check-in');

    await checkIn(A, "I'm not sure", SECRET_CHECKIN_NOTE);
    await checkIn(B, 'Yes');
    for (const p of [A, B]) await p.page.locator('.checkin').getByRole('heading', { name: 'One moment' }).waitFor();
    // Identical whatever the answers: the card and the bar above it.
    assert.equal(await A.page.locator('.checkin').innerText(), await B.page.locator('.checkin').innerText());
    assert.equal(await A.page.locator('.turn-who').innerText(), await B.page.locator('.turn-who').innerText());
    assert.match(await A.page.locator('.checkin').innerText(), /Your therapist will be with you in a moment/);
    await A.page.waitForTimeout(300);
    assert.equal(await A.page.locator('.step-card:visible').count(), 0, 'no exercise while held');

    // The therapist: told, with the answers, the hold and the note.
    await T.page.locator('.priority-banner', { hasText: 'Check-in: the session is held' }).waitFor();
    const checkin = await T.page.locator('.checkin-staff').innerText();
    assert.match(checkin, /Check-in: the session is held/);
    assert.match(checkin, /Partner A[\s\S]*holds the session[\s\S]*I'm not sure/);
    assert.match(checkin, new RegExp(SECRET_CHECKIN_NOTE));
    assert.match(checkin, /Partner B[\s\S]*clear[\s\S]*Yes/);
    await card().locator('.room-urgent', { hasText: 'holding the session' }).waitFor();
    await screenshots(A, 'safety-partner-held');
    await screenshots(B, 'safety-partner-b-held');
    await screenshots(T, 'safety-therapist-held');
    await screenshots(D, 'safety-dashboard-held');
    await axeAt(A, 'partner held');
    await axeAt(T, 'therapist held');
    await axeAt(D, 'dashboard held');

    // Neither partner B nor the observer can tell why.
    for (const [name, p] of [['B', B], ['observer', O]]) {
      // (The hello ack's questions name every option, "not_sure" too: only events and states count.)
      const carried = frames(p).filter((m) => m.type === 'event' || m.type === 'state').map((m) => JSON.stringify(m));
      assert.ok(!carried.some((f) => f.includes('"not_sure"') || f.includes(SECRET_CHECKIN_NOTE)), `${name} received A's check-in`);
      assert.ok(!p.received.some((f) => f.includes(SECRET_CHECKIN_NOTE)), `${name} received A's check-in note`);
      assert.ok(!eventTypes(p).includes('checkin_answered') || name === 'B', `${name} received a check-in answer`);
      for (const m of frames(p).filter((x) => x.type === 'event' && x.event.type === 'checkin_answered')) {
        assert.equal(m.event.by, 'partner_b', `${name} received A's check-in answer`);
      }
      for (const st of frames(p).filter((x) => x.type === 'state')) assert.ok(!st.checkin || !('held' in st.checkin), `${name}'s state says held`);
    }

    await T.page.getByRole('button', { name: 'Go on with the joint session' }).click();
    await waitTurn(A, 'Your turn', 'What happened');
    await waitTurn(B, 'Partner A', 'What happened');
  });

  it('two rejected reflections are confirmed as a rupture, blaming words are dismissed; partners never receive either suspicion', async () => {
    await speakerRound({ A, B, T }, A, B, 'Partner A', 'Partner B', ROUND, { rejections: 2 });
    await waitTurn(B, 'Your turn', 'What happened');

    const reflection = T.page.locator('.suspicion.suspected', { hasText: 'Reflection rejected' });
    const blame = T.page.locator('.suspicion.suspected', { hasText: 'Blaming language' });
    await reflection.waitFor();
    await blame.waitFor();
    assert.match(await blame.innerText(), /criticism/);
    assert.match(await blame.innerText(), /always on your phone/);
    assert.match(await reflection.innerText(), /Partner B with Partner A/);
    assert.match(await T.page.locator('.suspicions .suspicion-counts').innerText(), /2 waiting for you[\s\S]*0 confirmed[\s\S]*0 dismissed/);
    assert.equal(await T.page.locator('.rupture-banner').count(), 0, 'a suspicion is not a rupture');
    await screenshots(T, 'safety-therapist-suspicions');
    await axeAt(T, 'therapist suspicions');

    await reflection.getByRole('textbox', { name: /Note/ }).fill(CONFIRM_NOTE);
    await reflection.getByRole('button', { name: 'Confirm' }).click();
    await T.page.locator('.rupture-banner.open', { hasText: 'Misattunement: Reflection rejected' }).waitFor();
    await blame.getByRole('textbox', { name: /Note/ }).fill(DISMISS_NOTE);
    await blame.getByRole('button', { name: 'Dismiss' }).click();
    await blame.waitFor({ state: 'detached' });
    assert.match(await T.page.locator('.suspicions .suspicion-counts').innerText(), /0 waiting for you[\s\S]*1 confirmed[\s\S]*1 dismissed/);
    await T.page.locator('.suspicions details.decided summary').click();
    const decided = await T.page.locator('.suspicion-list').innerText();
    assert.match(decided, /confirmed as rupture 1/);
    assert.match(decided, new RegExp(`dismissed: “${DISMISS_NOTE}”`));
    assert.match(await T.page.locator('.timeline').innerText(), /Misattunement: Reflection rejected · Partner B with Partner A · confirmed suspicion/);
    await O.page.locator('.suspicions .suspicion-counts', { hasText: '1 dismissed' }).waitFor();
    await card().locator('.chip.confirmed', { hasText: '1 confirmed' }).waitFor();
    await card().locator('.chip.dismissed', { hasText: '1 dismissed' }).waitFor();
    assert.match(await D.page.locator('#rooms-summary').innerText(), /suspicions: 0 suspected, 1 confirmed, 1 dismissed/);

    for (const [name, p] of [['A', A], ['B', B]]) {
      const types = eventTypes(p);
      for (const hidden of ['rupture_suspected', 'rupture_confirmed', 'rupture_dismissed', 'note']) assert.ok(!types.includes(hidden), `partner ${name} received ${hidden}`);
      assert.ok(types.includes('rupture_opened'), `partner ${name} sees the confirmed rupture`);
      assert.ok(!p.received.some((f) => f.includes(DISMISS_NOTE) || f.includes(CONFIRM_NOTE)), `partner ${name} received a therapist note`);
      for (const st of frames(p).filter((x) => x.type === 'state')) assert.ok(!('suspicions' in st), `partner ${name}'s state has suspicions`);
    }
  });

  it('consent withdrawn mid-session pauses the room, tells the therapist and refuses further input; a takeover stops the displaced window', async () => {
    await B.page.getByRole('button', { name: 'Withdraw my consent' }).click();
    const confirm = B.page.getByRole('dialog', { name: 'Withdraw your consent?' });
    await confirm.waitFor();
    await confirm.getByRole('button', { name: 'Withdraw my consent' }).click();
    await B.page.getByRole('heading', { name: 'You have withdrawn your consent' }).waitFor();
    await B.page.getByRole('button', { name: 'Give my consent again' }).waitFor();
    assert.equal(await B.page.locator('.step-card:visible').count(), 0, 'no exercise form after withdrawing');
    assert.ok(await B.page.getByRole('button', { name: 'Let me try again' }).isHidden());
    assert.ok(await B.page.getByRole('button', { name: /^Message my therapist/ }).isVisible(), 'the private line stays');
    await A.page.locator('.paused-note', { hasText: 'Partner B has withdrawn their consent' }).waitFor();
    await T.page.locator('.priority-banner', { hasText: 'Partner B withdrew their consent' }).waitFor();
    await T.page.locator('.turn-meta', { hasText: 'Paused by Partner B' }).waitFor();
    await T.page.locator('.staff-paused', { hasText: 'Partner B withdrew their consent' }).waitFor();
    await screenshots(B, 'safety-partner-withdrawn');
    await screenshots(T, 'safety-therapist-withdrawn');
    await axeAt(B, 'partner withdrawn');
    await axeAt(T, 'therapist withdrawn');

    // The same link opened elsewhere (a raw client): partner B's window stops and says why.
    const token = new URL(server.invites.partner_b).hash.replace(/^#token=/, '');
    const other = rawClient(token);
    await other.open;
    const hello = await other.hello();
    assert.equal(hello.type, 'ack');
    assert.equal(hello.protocol, 2);
    await B.page.getByRole('heading', { name: 'This window has stopped' }).waitFor();
    assert.match(
      await B.page.locator('.replaced').innerText(),
      /This link was opened in another window or on another device, so this window has stopped\. If that was not you, tell your therapist\./,
    );
    await T.page.locator('.priority-banner', { hasText: 'Partner B reconnected from another device' }).waitFor();
    await screenshots(B, 'safety-partner-replaced');
    await axeAt(B, 'partner replaced');

    // Further input from partner B is refused while consent is withdrawn; the private line is not.
    const state = await other.waitFor((m) => m.type === 'state');
    const turn = await other.send({ type: 'turn', step: state.step.id, input: { happened: 'Trying anyway.' } });
    assert.equal(turn.code, 'consent_required');
    assert.equal((await other.send({ type: 'repair_attempt', text: 'sorry' })).code, 'consent_required');
    assert.equal((await other.send({ type: 'typing' })).type, 'ack');

    // Partner B takes this window back, and gives consent again; the therapist resumes.
    await B.page.getByRole('button', { name: 'Use this window again' }).click();
    assert.equal(await other.closed, 4409);
    await B.page.locator('#connection[data-status="open"]').waitFor();
    await B.page.getByRole('button', { name: 'Give my consent again' }).click();
    await B.page.getByRole('heading', { name: 'You gave your consent again' }).waitFor();
    await T.page.locator('.staff-paused', { hasText: 'has given consent again' }).waitFor();
    await T.page.getByRole('button', { name: 'Resume' }).click();
    await waitTurn(B, 'Your turn', 'What happened');
    await waitTurn(A, 'Partner B', 'What happened');

    await T.page.getByRole('button', { name: 'End session' }).click();
    await T.page.getByRole('dialog', { name: 'End this session?' }).getByRole('button', { name: 'End the session' }).click();
    await A.page.getByRole('heading', { name: 'The session has ended' }).waitFor();
    // After the end a partner can send nothing (the room refuses it), but the
    // private line stays readable and the therapist can still write.
    await A.page.getByRole('button', { name: /^Message my therapist/ }).click();
    const endedLine = A.page.getByRole('dialog', { name: 'Message my therapist only' });
    await endedLine.getByText('this line takes no new messages').waitFor();
    assert.equal(await endedLine.getByRole('textbox', { name: 'Your message' }).isVisible(), false, 'no composer after the end');
    await T.page.getByRole('textbox', { name: 'Reply privately to Partner A' }).fill('Thank you for today.');
    await T.page.getByRole('button', { name: 'Send to Partner A only' }).click();
    await endedLine.locator('.private-item:not(.mine)', { hasText: 'Thank you for today.' }).waitFor();
    await endedLine.getByRole('button', { name: 'Close' }).click();
    await screenshots(A, 'safety-partner-ended');
  });

  it('the report and the replay mark the check-in and the private line private, show pauses as pauses, suspicions apart and the takeover', async () => {
    await D.page.goto(`${server.base}/report.html?room=${roomId}`);
    await D.page.getByRole('heading', { name: 'Session report' }).waitFor();
    const priv = await D.page.locator('.private-report').innerText();
    assert.match(priv, /private/);
    assert.match(priv, new RegExp(SECRET_PRIVATE));
    assert.match(priv, new RegExp(SECRET_CHECKIN_NOTE));
    assert.match(priv, /held the session/);
    assert.match(priv, /you chose to go on with the joint session/);
    assert.match(await D.page.locator('.report-takeovers').innerText(), /Partner B reconnected from another device/);
    assert.match(await D.page.locator('.report-pauses').innerText(), /Partner B withdrew their consent/);
    const sus = await D.page.locator('section[aria-labelledby="suspicions-h"]').innerText();
    assert.match(sus, /0 never decided[\s\S]*1 confirmed[\s\S]*1 dismissed/);
    assert.match(sus, /Suspicion \d: Confrontation, Blaming language[\s\S]*criticism[\s\S]*dismissed, “DISMISS-NOTE/);
    await screenshots(D, 'safety-report');
    await axeAt(D, 'report');

    await D.page.goto(`${server.base}/replay.html?room=${roomId}`);
    await D.page.getByRole('heading', { name: 'Session replay' }).waitFor();
    const chapters = D.page.locator('.chapters');
    assert.ok((await chapters.locator('li.private-chapter').count()) >= 4, 'private chapters');
    assert.match(await chapters.locator('li.private-chapter').first().innerText(), /^private/);
    assert.match(await chapters.innerText(), /Partner B reconnected from another device/);
    assert.equal(await D.page.locator('.rband.suspicion').count(), 2);
    await D.page.locator('.chapters li', { hasText: 'answered the check-in' }).first().getByRole('button').click();
    assert.match(await D.page.locator('.private-card').innerText(), /Partner A's check-in[\s\S]*held the session/);
    await screenshots(D, 'safety-replay');
    await axeAt(D, 'replay');
  });

  it('has no serious or critical axe-core violations on the partner, therapist and dashboard pages', () => {
    assert.deepEqual(axeFindings, []);
  });

  it('ran without page errors', () => {
    for (const p of [A, B, T, O, D]) assert.deepEqual(p.problems.filter((x) => !/status of 401/.test(x)), []);
  });
});
