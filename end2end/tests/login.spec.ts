import { test, expect } from '@playwright/test';
import { printedLoginPath, loginPath, adminToken } from './session';

test('a signed-out visit to a page lands on the login page', async ({ page }) => {
  await page.goto('/');
  await expect(page).toHaveURL(/\/login\?next=%2F$/);
  await expect(page.locator('h1')).toHaveText('Sign in to Lantern');
  await expect(page.getByTestId('user')).toHaveCount(0);
});

test('the printed login URL signs the browser in, once, with an HttpOnly, SameSite=Strict cookie', async ({
  page,
  context,
  browser,
}) => {
  const link = printedLoginPath();
  await page.goto(link);
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator('h1')).toHaveText('Workflows');
  await expect(page.getByTestId('user')).toHaveText('admin');
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'lantern_session');
  expect(session).toBeDefined();
  expect(session!.httpOnly).toBe(true);
  expect(session!.sameSite).toBe('Strict');
  expect(session!.value).not.toContain(adminToken());
  // Page scripts cannot read it.
  expect(await page.evaluate(() => document.cookie)).not.toContain('lantern_session');

  // Sign out: back to the login page, and pages are closed again.
  await page.getByTestId('sign-out').click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto('/');
  await expect(page).toHaveURL(/\/login\?next=/);

  // The link was for one sign-in: another browser that opens it is told so, and not signed in.
  const other = await browser.newContext();
  const stranger = await other.newPage();
  await stranger.goto(link);
  await expect(stranger).toHaveURL(/\/login\?error=link$/);
  await expect(stranger.getByTestId('login-error')).toContainText('used already or has expired');
  await other.close();
});

test('a login link opened from another site asks before signing in', async ({ page, baseURL }) => {
  // A page of another site (served by Playwright itself) links to a login link.
  const link = `${baseURL}${loginPath()}`;
  await page.route('http://elsewhere.example/', (route) =>
    route.fulfill({ contentType: 'text/html', body: `<a id="go" href="${link}">sign in</a>` }),
  );
  await page.goto('http://elsewhere.example/');
  await page.click('#go');
  await expect(page.getByTestId('confirm-sign-in')).toHaveText('Sign in as admin');
  await expect(page.getByTestId('user')).toHaveCount(0);
  await page.getByTestId('confirm-sign-in').click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId('user')).toHaveText('admin');
});

test('the login page accepts a pasted token and goes on to the page asked for', async ({ page }) => {
  await page.goto('/w/wf_SOMEWHERE');
  await expect(page).toHaveURL(/\/login\?next=%2Fw%2Fwf_SOMEWHERE$/);
  await page.getByTestId('token').fill('lantern_not_a_real_token');
  await page.getByTestId('sign-in').click();
  await expect(page.getByTestId('login-error')).toContainText('not valid');

  await page.goto('/login?next=/w/wf_SOMEWHERE');
  await page.getByTestId('token').fill(adminToken());
  await page.getByTestId('sign-in').click();
  await expect(page).toHaveURL(/\/w\/wf_SOMEWHERE$/);
  await expect(page.getByTestId('not-found')).toHaveText('Workflow not found.');
});
