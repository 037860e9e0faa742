// Deleting a session for good, and the report's record check, in Chromium
// against the real server: the report of a room shows "Record verified"
// with the head; the dashboard's "Delete this session permanently" opens a
// dialog that says plainly what happens (it cannot be undone, backups) and
// keeps its button off until the room id is typed; "Keep it" changes
// nothing; deleting closes the partner's open room with a calm message,
// takes the card off the dashboard, and "My activity" lists the deletion.
// axe-core on the dialog, the activity list and the report; screenshots.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openParticipant, axeViolations, screenshots, loginPage } from './harness.mjs';

const THERAPIST = { name: 'lindqvist', password: 'quiet-meadow-58' };

let server;
let browser;
let staff;
let D;
let roomId;
let partnerLink;
const problems = [];
const axeFindings = [];

async function axeAt(p, where) {
  for (const f of await axeViolations(p.page)) axeFindings.push(`${where}: ${f}`);
}

function card() {
  return D.page.locator(`.room-card[data-room="${roomId}"]`);
}

describe('erasing a session from the dashboard; the report says the record is verified', { timeout: 120000 }, () => {
  before(async () => {
    server = await startServer({ therapists: [THERAPIST] });
    browser = await launchBrowser();
    staff = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    staff.setDefaultTimeout(10000);
    const page = await loginPage(staff, server.base, THERAPIST);
    page.on('pageerror', (e) => problems.push(`dashboard pageerror: ${e.message}`));
    D = { page, width: 1280 };
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('creates a room; its report shows "Record verified" with the head', async () => {
    await D.page.getByLabel('Exercise').selectOption('enactment');
    await D.page.getByRole('button', { name: 'Create room' }).click();
    const panel = D.page.locator('#new-room');
    await panel.getByRole('heading', { name: /^Room r-.* is ready$/ }).waitFor();
    roomId = /Room (\S+) is ready/.exec(await panel.getByRole('heading').innerText())[1];
    partnerLink = await panel.getByRole('textbox', { name: 'Partner A', exact: true }).inputValue();
    await card().waitFor();

    const report = await staff.newPage();
    report.on('pageerror', (e) => problems.push(`report pageerror: ${e.message}`));
    await report.goto(`${server.base}/report.html?room=${roomId}`);
    const check = report.locator('.record-check');
    await check.waitFor();
    assert.equal(await check.getAttribute('data-verified'), 'yes');
    assert.match(await check.innerText(), /^Record verified · 1 event, head #1, [0-9a-f]{12}\./);
    const R = { page: report, width: 1280 };
    await screenshots(R, 'report-record-verified', { full: false });
    await axeAt(R, 'report');
    await report.close();
  });

  it('asks before deleting: plain words, the id typed again, "Keep it" keeps it', async () => {
    await card().getByRole('button', { name: 'Delete this session permanently' }).click();
    const dialog = D.page.getByRole('dialog', { name: 'Delete this session permanently?' });
    await dialog.waitFor();
    const text = await dialog.innerText();
    assert.match(text, /cannot be undone/);
    assert.match(text, /backups of the sessions cannot be read for it any more/);
    const go = dialog.getByRole('button', { name: 'Delete permanently' });
    assert.equal(await go.isDisabled(), true, 'off until the id is typed');
    const field = dialog.getByLabel(`Type the room id, ${roomId}, to confirm`);
    await field.fill(roomId.slice(0, -1));
    assert.equal(await go.isDisabled(), true, 'a near miss is not the id');
    await screenshots(D, 'dashboard-erase-dialog', { full: false });
    await axeAt(D, 'erase dialog');
    await dialog.getByRole('button', { name: 'Keep it' }).click();
    await dialog.waitFor({ state: 'detached' });
    await card().waitFor();
  });

  it('deleting closes the partner calmly, takes the card away and shows in My activity', async () => {
    const A = await openParticipant(browser, partnerLink, 375);
    await A.page.locator('#connection[data-status="open"]').waitFor();

    await card().getByRole('button', { name: 'Delete this session permanently' }).click();
    const dialog = D.page.getByRole('dialog', { name: 'Delete this session permanently?' });
    await dialog.getByLabel(`Type the room id, ${roomId}, to confirm`).fill(roomId);
    await dialog.getByRole('button', { name: 'Delete permanently' }).click();
    await dialog.waitFor({ state: 'detached' });
    await card().waitFor({ state: 'detached' });
    assert.equal(await D.page.locator('#new-room').isVisible(), false, "the deleted room's links are gone too");
    await D.page.waitForFunction((id) => document.getElementById('announce').textContent.includes(`room ${id} has been deleted`), roomId);

    await A.page.getByRole('heading', { name: 'This session has been deleted' }).waitFor();
    assert.match(await A.page.locator('main').innerText(), /deleted for good/);
    await screenshots(A, 'partner-room-erased', { full: false });
    assert.deepEqual(A.problems.filter((p) => !/WebSocket|ERR_|status of 4/.test(p)), []);
    await A.context.close();

    // The report of the deleted room is no room at all.
    const report = await staff.newPage();
    await report.goto(`${server.base}/report.html?room=${roomId}`);
    await report.getByText(/does not exist, or it is not one of yours/).waitFor();
    await report.close();

    await D.page.getByText('My activity').click();
    const list = D.page.locator('#activity-list');
    const first = list.locator('.activity-entry').first();
    await first.waitFor();
    assert.equal(await first.getAttribute('data-action'), 'erased');
    assert.equal(await first.getAttribute('data-room'), roomId);
    assert.match(await first.innerText(), /Deleted the session permanently · room /);
    const actions = await list.locator('.activity-entry').evaluateAll((els) => els.map((e) => e.dataset.action));
    assert.deepEqual(actions.slice(0, 1), ['erased']);
    assert.ok(actions.includes('created') && actions.includes('exported'), actions.join(','));
    await screenshots(D, 'dashboard-my-activity');
    await axeAt(D, 'my activity');
  });

  it('had no page errors and no serious accessibility findings', () => {
    assert.deepEqual(problems, []);
    assert.deepEqual(axeFindings, []);
  });
});
