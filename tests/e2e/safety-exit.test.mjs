// Leaving quickly and leaving no trace, and the practice's crisis lines, in
// Chromium against the real server started with --crisis-file: the invitation
// token leaves the address bar on load and a reload still reconnects (token
// in sessionStorage); "Leave quickly" and Esc pressed three times each land
// on the practice's neutral address (a small page served by this test on
// loopback) with Attune's storage cleared, the socket closed and no way Back;
// the crisis link opens without the token and leaving there takes the room
// tab along; the therapist gets no quick exit; the crisis page lists the
// practice's lines before the built-in directory, and without them still
// shows the directory. axe-core and screenshots.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchBrowser, openParticipant, axeViolations, screenshots, artifacts } from './harness.mjs';

/** Resolves when the server records that `role` left the room: seen from a
 * therapist connection, so it holds whether or not Playwright reports the
 * page's own socket closing (it may not, once the page has gone). */
function serverSeesLeave(role, timeoutMs = 8000) {
  const token = server.invites.therapist.split('#token=')[1];
  const ws = server.webSocket();
  let ready;
  const opened = new Promise((resolve) => (ready = resolve));
  const left = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server never recorded ${role} leaving`)), timeoutMs);
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.type === 'state') ready();
      if (m.type === 'event' && m.event.type === 'left' && m.event.by === role && m.seq > ws.helloSeq) {
        clearTimeout(timer);
        ws.close();
        resolve();
      }
      if (m.type === 'ack' && m.id === 'h') ws.helloSeq = m.last_seq;
    });
  });
  ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', id: 'h', token })));
  ws.on('error', () => {});
  return { opened, left };
}

const NEUTRAL_TEXT = 'Weather today: mild, light wind';

let server;
let browser;
let neutral; // the neutral site: {server, url}
let crisisDir;

function startNeutralSite() {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><html lang="en"><title>Weather</title><p>${NEUTRAL_TEXT}</p></html>`);
    });
    srv.listen(0, '127.0.0.1', () => resolve({ server: srv, url: `http://127.0.0.1:${srv.address().port}/weather` }));
  });
}

const crisisFile = (neutralUrl) => ({
  country: 'Testland',
  emergency: '119',
  note: 'Our office answers on weekdays from 9 to 5.',
  checked: '2025-01-15',
  lines: [
    { name: 'Testland Crisis Line', phone: '0800 111 222', text: '4242', text_keyword: 'HELLO', hours: '24 hours', url: 'https://crisis.example/' },
    { name: 'Night Listening Service', phone: '0800 333 444', hours: '8 pm to 8 am' },
  ],
  domestic_abuse: [{ name: 'Testland Safe at Home', phone: '0800 555 666', url: 'https://safe.example/' }],
  neutral_url: neutralUrl,
});

async function storage(page) {
  return page.evaluate(() => ({
    session: Object.keys(sessionStorage),
    local: Object.keys(localStorage),
  }));
}

/** Opens a partner's invitation, keeping its WebSockets; waits until the room is connected. */
async function openPartner(role, width = 375) {
  const context = await browser.newContext({ viewport: { width, height: 860 } });
  context.setDefaultTimeout(10000);
  const page = await context.newPage();
  const sockets = [];
  const problems = [];
  page.on('websocket', (ws) => sockets.push(ws));
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(server.invites[role]);
  await page.locator('#connection[data-status="open"]').waitFor();
  assert.ok(sockets.length >= 1);
  return { context, page, sockets, problems, width, role };
}

/** What the room keeps, set up so leaving has something to clear. */
async function leaveSomethingBehind(p) {
  await p.page.evaluate(() => {
    sessionStorage.setItem('attune.draft|test', '"half a sentence"');
    localStorage.setItem('attune.test', 'kept by the app');
  });
  const kept = await storage(p.page);
  assert.ok(kept.session.includes('attune.token'), 'the token is kept in sessionStorage');
  assert.ok(kept.local.includes('attune.test'));
  p.leave = serverSeesLeave(p.role);
  await p.leave.opened;
}

/** After leaving: on the neutral page; back on Attune's origin in the same tab, nothing is left. */
async function assertLeftWithoutTrace(p) {
  await p.page.waitForURL(neutral.url);
  await p.page.getByText(NEUTRAL_TEXT).waitFor();
  // The room's connection is gone: the server recorded the partner leaving.
  if (p.leave) await p.leave.left;
  assert.deepEqual(p.problems, []);
  // location.replace: the room is not one step Back.
  await p.page.goBack().catch(() => null);
  assert.notEqual(p.page.url(), `${server.base}/`, 'Back does not lead to the room');
  // Same tab, same origin again: sessionStorage and Attune's localStorage keys are gone.
  await p.page.goto(`${server.base}/favicon.svg`);
  const left = await storage(p.page);
  assert.deepEqual(left.session, [], 'sessionStorage cleared');
  assert.ok(!left.local.some((k) => k.startsWith('attune.')), `localStorage keys left: ${left.local}`);
}

describe('leave quickly, leave no trace, and the practice crisis lines', { timeout: 120000 }, () => {
  before(async () => {
    neutral = await startNeutralSite();
    crisisDir = await mkdtemp(join(tmpdir(), 'attune-crisis-'));
    const file = join(crisisDir, 'crisis.json');
    await writeFile(file, JSON.stringify(crisisFile(neutral.url), null, 2));
    server = await startServer({ args: ['--crisis-file', file] });
    browser = await launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
    if (neutral) neutral.server.close();
    if (crisisDir) await rm(crisisDir, { recursive: true, force: true });
  });

  it('takes the token out of the address bar on load, and a reload still reconnects', async () => {
    const A = await openParticipant(browser, server.invites.partner_a, 375);
    const hellos = () => A.sent.filter((f) => f.includes('"type":"hello"')).length;
    await A.page.locator('#connection[data-status="open"]').waitFor();
    assert.ok(!A.page.url().includes('#token'), `address bar: ${A.page.url()}`);
    assert.equal(A.page.url(), `${server.base}/`);
    assert.equal(await A.page.evaluate(() => history.state), null);
    await A.page.getByRole('heading', { name: 'Before we begin' }).waitFor();
    await A.page.getByRole('button', { name: 'Leave quickly' }).waitFor();
    // The crisis page names the room's private line by this button.
    await A.page.getByRole('button', { name: /^Message my therapist/ }).waitFor();
    await screenshots(A, 'safety-room');
    const axe = await axeViolations(A.page);
    assert.deepEqual(axe, [], axe.join('\n'));

    const before = hellos();
    await A.page.reload();
    await A.page.locator('#connection[data-status="open"]').waitFor();
    await A.page.getByRole('heading', { name: 'Before we begin' }).waitFor();
    assert.equal(hellos(), before + 1, 'one new hello after the reload');
    assert.ok(!A.page.url().includes('#token'));
    assert.deepEqual(A.problems, []);

    // Scrolled down on a phone: the button stays on screen.
    await A.page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    const box = await A.page.getByRole('button', { name: 'Leave quickly' }).boundingBox();
    assert.ok(box && box.y >= 0 && box.y < 60, `button on screen after scrolling (y=${box && box.y})`);
    await A.page.screenshot({ path: join(artifacts, 'safety-room-scrolled-375.png') });
    await A.context.close();
  });

  it('"Leave quickly" clears what the app kept, closes the socket and replaces the page with the neutral site', async () => {
    const A = await openPartner('partner_a', 375);
    await leaveSomethingBehind(A);
    await A.page.getByRole('button', { name: 'Leave quickly' }).click();
    await assertLeftWithoutTrace(A);
    await A.context.close();
  });

  it('Esc three times within two seconds leaves too; three spread over longer do not', async () => {
    const B = await openPartner('partner_b', 1280);
    await leaveSomethingBehind(B);
    await B.page.keyboard.press('Escape');
    await B.page.keyboard.press('Escape');
    await B.page.waitForTimeout(2200);
    await B.page.keyboard.press('Escape');
    await B.page.waitForTimeout(300);
    assert.equal(B.page.url(), `${server.base}/`, 'still in the room');
    await B.page.keyboard.press('Escape');
    await B.page.keyboard.press('Escape');
    await assertLeftWithoutTrace(B);
    await B.context.close();
  });

  it('the crisis link opens without the token, and leaving from it takes the room tab along', async () => {
    const A = await openPartner('partner_a', 375);
    const link = A.page.getByRole('link', { name: 'Get help now' });
    assert.equal(await link.getAttribute('href'), 'crisis.html');
    assert.match(await link.getAttribute('rel'), /noopener/);
    const [crisis] = await Promise.all([A.context.waitForEvent('page'), link.click()]);
    await crisis.waitForLoadState();
    assert.equal(crisis.url(), `${server.base}/crisis.html`);
    const kept = await storage(crisis);
    assert.ok(!kept.session.includes('attune.token'), 'the crisis tab does not receive the token');
    await crisis.getByRole('heading', { name: /From your therapist’s practice/ }).waitFor();
    await crisis.getByRole('button', { name: 'Leave quickly' }).click();
    await crisis.waitForURL(neutral.url);
    await A.page.waitForURL(neutral.url);
    await A.context.close();
  });

  it('gives the therapist no quick exit, but still takes the token out of the address bar', async () => {
    const T = await openParticipant(browser, server.invites.therapist, 1280);
    await T.page.locator('#connection[data-status="open"]').waitFor();
    await T.page.waitForFunction(() => document.body.dataset.role === 'therapist');
    assert.ok(!T.page.url().includes('#token'));
    assert.equal(await T.page.getByRole('button', { name: 'Leave quickly' }).isVisible(), false);
    for (let i = 0; i < 3; i++) await T.page.keyboard.press('Escape');
    await T.page.waitForTimeout(300);
    assert.equal(T.page.url(), `${server.base}/`);
    await T.context.close();
  });

  it('the crisis page lists the practice lines first, then the international directory', async () => {
    const res = await server.fetch('/api/crisis');
    assert.equal(res.status, 200);
    assert.equal((await res.json()).country, 'Testland');

    const C = await openParticipant(browser, `${server.base}/crisis.html`, 375);
    const practice = C.page.locator('#practice-lines');
    await practice.getByRole('heading', { name: 'From your therapist’s practice: Testland' }).waitFor();
    const headings = await C.page.locator('main h2').allInnerTexts();
    assert.equal(headings[0], 'From your therapist’s practice: Testland', `headings: ${headings}`);
    assert.ok(headings.indexOf('In an emergency') > 0);
    const text = await practice.innerText();
    assert.ok(text.indexOf('Testland Crisis Line') < text.indexOf('Night Listening Service'), 'the file order is kept');
    assert.match(text, /In an emergency, call 119/);
    assert.match(text, /text HELLO to 4242/);
    assert.match(text, /Testland Safe at Home/);
    assert.match(text, /last checked these on 2025-01-15/);
    assert.equal(await practice.getByRole('link', { name: '0800 111 222' }).getAttribute('href'), 'tel:0800111222');
    assert.equal(await practice.getByRole('link', { name: '4242' }).getAttribute('href'), 'sms:4242');

    const page = await C.page.locator('main').innerText();
    assert.match(page, /Canada: call or text 988/);
    assert.match(page, /United States: call or text 988/);
    assert.match(page, /Find A Helpline/);
    assert.match(page, /“Message my therapist” button opens “Message my therapist only”/);
    assert.match(page, /“I need a pause” is not private/);
    assert.match(page, /sees the note you write with it/);
    assert.match(page, /history may still list the pages you visited/);
    assert.match(page, /private or incognito window keeps less/);
    assert.doesNotMatch(page, /press “I need a pause”/);
    const axe = await axeViolations(C.page);
    assert.deepEqual(axe, [], axe.join('\n'));
    await screenshots(C, 'safety-crisis');
    assert.deepEqual(C.problems, []);

    // Esc three times on the crisis page.
    for (let i = 0; i < 3; i++) await C.page.keyboard.press('Escape');
    await C.page.waitForURL(neutral.url);
    await C.context.close();
  });

  it('without practice lines (or without the server) the crisis page still shows the built-in directory', async () => {
    for (const mode of ['default', 'offline']) {
      const context = await browser.newContext({ viewport: { width: 375, height: 860 } });
      const page = await context.newPage();
      await page.route('**/api/crisis', (route) =>
        mode === 'offline'
          ? route.abort()
          : route.fulfill({
              status: 200,
              contentType: 'application/json',
              body: JSON.stringify({ configured: false, lines: [], domestic_abuse: [], neutral_url: 'https://www.wikipedia.org/' }),
            }),
      );
      await page.goto(`${server.base}/crisis.html`);
      await page.getByRole('heading', { name: 'In an emergency' }).waitFor();
      await page.waitForLoadState('networkidle');
      assert.equal(await page.locator('#practice-lines').isVisible(), false, mode);
      assert.match(await page.locator('main').innerText(), /Find A Helpline/);
      if (mode === 'default') await screenshots({ page, width: 375 }, 'safety-crisis-builtin');
      await context.close();
    }
  });
});
