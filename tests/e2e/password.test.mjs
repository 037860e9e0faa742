// The dashboard's "Change your password" form against the real server, in
// Chromium: a wrong current password and two differing new ones are refused
// with a kind message; the right one changes it, ends the account's other
// login (another browser is sent to the login page) while this dashboard
// goes on with its pushed updates; the old password no longer logs in, the
// new one does. axe-core on the open form, screenshots at 375 and 1280 px.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, axeViolations, screenshots, loginPage } from './harness.mjs';

const THERAPIST = { name: 'nakamura', password: 'quiet-river-2048' };
const NEW_PASSWORD = 'open-window-7731';

describe('changing your password on the dashboard', { timeout: 90000 }, () => {
  let srv;
  let browser;
  before(async () => {
    srv = await startServer({ therapists: [THERAPIST] });
    browser = await launchBrowser();
  });
  after(async () => {
    if (browser) await browser.close();
    if (srv) await srv.stop();
  });

  it('checks the current password, ends the other login, keeps this page live, and the new password works', async () => {
    const here = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    here.setDefaultTimeout(10000);
    const other = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    other.setDefaultTimeout(10000);
    const problems = [];
    const page = await loginPage(here, srv.base, THERAPIST);
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    const elsewhere = await loginPage(other, srv.base, THERAPIST);
    await page.locator('#rooms-updated', { hasText: /^Live · updated/ }).waitFor();

    await page.getByText('Change your password').click();
    const status = page.locator('#password-status');
    await page.getByLabel('Current password').fill('not-my-password');
    await page.getByLabel('New password (at least 10 characters)').fill(NEW_PASSWORD);
    await page.getByLabel('The new password again').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    await status.getByText('That is not your current password.').waitFor();

    await page.getByLabel('Current password').fill(THERAPIST.password);
    await page.getByLabel('The new password again').fill(`${NEW_PASSWORD}x`);
    await page.getByRole('button', { name: 'Change password' }).click();
    await status.getByText(/The two new passwords differ/).waitFor();
    const p = { page, width: 1280 };
    await screenshots(p, 'dashboard-password-form');
    assert.deepEqual(await axeViolations(page), []);

    await page.getByLabel('The new password again').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    await status.getByText(/Your password is changed/).waitFor();
    // The other browser's login ended: its pushed updates stopped, it went to the login page.
    await elsewhere.waitForURL(/\/login\.html\?why=expired/);
    // This page kept its (new) login: its updates reconnect and it stays.
    const before = await page.locator('#rooms-updated').innerText();
    await page.waitForTimeout(2500);
    assert.ok(page.url().endsWith('/dashboard.html'), `still on the dashboard: ${page.url()}`);
    assert.equal(await page.evaluate(() => fetch('/api/me').then((r) => r.status)), 200);
    assert.match(before, /^Live · updated/);
    assert.match(await page.locator('#rooms-updated').innerText(), /^Live · updated/);

    const fresh = await browser.newContext();
    const login = await fresh.newPage();
    await login.goto(`${srv.base}/login.html`);
    await login.getByLabel('Username').fill(THERAPIST.name);
    await login.getByLabel('Password').fill(THERAPIST.password);
    await login.getByRole('button', { name: 'Log in' }).click();
    await login.getByText('That username and password do not match').waitFor();
    await login.getByLabel('Password').fill(NEW_PASSWORD);
    await login.getByRole('button', { name: 'Log in' }).click();
    await login.waitForURL(/\/dashboard\.html$/);
    assert.deepEqual(problems.filter((x) => !/status of (401|403)/.test(x)), []);
    await fresh.close();
    await other.close();
    await here.close();
  });
});
