// A long session's replay and report in Chromium: a 5,000-event session
// (made with tests/bench/bench_review make, through the core and the store
// API) opens at once from the log's first page, the timeline spans the
// whole session from the start (so does the scrubber), the rest loads in
// the background (the last event shows the session ended),
// and the report, which loads every page without states, counts every
// event. Screenshots at 375 and 1280 px; axe-core on the replay.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startServer, launchBrowser, axeViolations, screenshots, repo, CLUSTER_SKIP } from './harness.mjs';

const THERAPIST = { name: 'okafor', password: 'long-river-2718' };
const EVENTS = Number(process.env.REPLAY_LONG_EVENTS || 5000); // the benchmark's 20,000 works too

// bench_review make writes the session through the SQLite store API into
// the server's data directory; a cluster's store is PostgreSQL.
describe('a long session: replay and report', { timeout: 120000, skip: CLUSTER_SKIP('bench_review make writes the session into a SQLite data directory') }, () => {
  let server, browser, P, roomId, events;

  before(async () => {
    server = await startServer({ therapists: [THERAPIST] });
    const bench = join(process.env.ATTUNE_BUILD_DIR || join(repo, 'build'), 'tests', 'bench', 'bench_review');
    const made = execFileSync(bench, ['make', '--data', server.data, '--events', String(EVENTS), '--owner', THERAPIST.name], { encoding: 'utf8' });
    [, roomId, events] = /^room (\S+) (\d+)$/m.exec(made);
    events = Number(events);
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    context.setDefaultTimeout(15000);
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    P = { page, width: 1280, problems };
    await page.goto(`${server.base}/login.html`);
    await page.getByLabel('Username').fill(THERAPIST.name);
    await page.getByLabel('Password').fill(THERAPIST.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(/\/dashboard\.html$/);
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('shows the first page at once and loads the rest behind it', async () => {
    const pages = [];
    P.page.on('request', (r) => {
      if (r.url().includes('/log?')) pages.push(new URL(r.url()).searchParams);
    });
    const t0 = Date.now();
    await P.page.goto(`${server.base}/replay.html?room=${roomId}`);
    await P.page.getByRole('heading', { name: 'Session replay' }).waitFor();
    await P.page.locator('.position').getByText(`Event 1 of ${events}`).waitFor();
    const shown = Date.now() - t0;
    // Every event, in pages of 1000 in order, each after the one before.
    assert.equal(await P.page.locator('#scrubber').getAttribute('max'), String(events - 1), 'the scrubber spans the whole session at once');
    await P.page.waitForFunction(() => !/loading the rest/.test(document.querySelector('.position').textContent), null, { timeout: 60000 });
    const loaded = Date.now() - t0;
    console.log(`# ${events}-event replay: first page shown in ${shown} ms, all loaded in ${loaded} ms`);
    assert.equal(pages.length, Math.ceil(events / 1000));
    assert.deepEqual(pages.map((q) => q.get('after')), pages.map((_, i) => String(i * 1000)));
    assert.ok(pages.slice(1).every((q) => q.get('upto') === String(events)), 'later pages keep to the first page\'s end');
    assert.doesNotMatch(await P.page.locator('.position').innerText(), /loading the rest/);
    assert.equal(await P.page.locator('.track-unloaded').isVisible(), false);
    assert.ok((await P.page.locator('.chapters li[data-type="turn"]').count()) > 10, 'turns listed');

    // The end of the session: ended, nobody connected, the notes so far.
    await P.page.locator('#scrubber').focus();
    await P.page.keyboard.press('End');
    assert.match(await P.page.locator('.position').innerText(), new RegExp(`Event ${events} of ${events}`));
    assert.match(await P.page.locator('.now-card').innerText(), /Partner A not connected[\s\S]*Partner B not connected/);
    assert.match(await P.page.locator('#replay-step-h').innerText(), /The session had ended/);
    // The latest 20 notes up to here, and how many came before.
    assert.equal(await P.page.locator('section[aria-labelledby="rn-h"] .note').count(), 20);
    assert.match(await P.page.locator('#rn-h').locator('..').innerText(), /\d+ earlier notes \(the report lists every one\)/);
    // The middle, one event back and forth: the state there, not the end's.
    await P.page.keyboard.press('Home');
    for (let i = 0; i < 30; i++) await P.page.keyboard.press('ArrowRight');
    assert.match(await P.page.locator('.position').innerText(), new RegExp(`Event 31 of ${events}`));
    assert.doesNotMatch(await P.page.locator('#replay-step-h').innerText(), /ended/);
    // Scrubbing deep in the session: each step redraws the room as it stood.
    await P.page.locator('#scrubber').fill(String(Math.floor(events * 0.9)));
    const s0 = Date.now();
    for (let i = 0; i < 10; i++) await P.page.keyboard.press('ArrowRight');
    await P.page.locator('.position').getByText(`Event ${Math.floor(events * 0.9) + 11} of ${events}`).waitFor();
    const perStep = (Date.now() - s0) / 10;
    console.log(`# scrubbing at event ${Math.floor(events * 0.9)}: ${perStep.toFixed(0)} ms a step`);
    assert.ok(perStep < 500, `a scrub step took ${perStep} ms`);
    await P.page.keyboard.press('Home');
    for (let i = 0; i < 30; i++) await P.page.keyboard.press('ArrowRight');
    await screenshots(P, 'replay-long');
    const violations = await axeViolations(P.page);
    assert.deepEqual(violations, [], violations.join('\n'));
    assert.deepEqual(P.problems, []);
  });

  it('reports the whole session from pages without states', async () => {
    const pages = [];
    P.page.on('request', (r) => {
      if (r.url().includes('/log?')) pages.push(new URL(r.url()).searchParams);
    });
    await P.page.goto(`${server.base}/report.html?room=${roomId}`);
    await P.page.getByRole('heading', { name: 'Session report' }).waitFor();
    assert.ok(pages.length >= Math.ceil(events / 1000) && pages.every((q) => q.get('states') === 'none'));
    assert.match(await P.page.locator('.report-summary').innerText(), new RegExp(`${events} events; final state hash [0-9a-f]{16}`));
    assert.ok((await P.page.locator('.report-notes li').count()) > 100, 'every note');
    assert.deepEqual(P.problems, []);
  });
});
