import { test, expect, Page } from '@playwright/test';
import { asUser, recordConnectionStates, seenConnectionStates, signIn, startEcho } from './session';

test.beforeEach(async ({ page }) => signIn(page));

/** The seqs the page shows, in page order. */
async function shownSeqs(page: Page): Promise<number[]> {
  return page
    .locator('[data-testid=events] li[data-seq]')
    .evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-seq'))));
}

async function lastSeq(page: Page, id: string): Promise<number> {
  const response = await page.request.get(`/api/workflows/${id}`);
  expect(response.ok()).toBeTruthy();
  return (await response.json()).last_seq;
}

test('home page is server-rendered and lists workflows', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByTestId('start-echo')).toBeVisible();
  await expect(page.locator('h1')).toHaveText('Workflows');
});

test('pages load everything they ask for, with no error in the console', async ({ page }) => {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.goto('/');
  await expect(page.getByTestId('start-echo')).toBeVisible();
  // The page names its icon, and the icon is there.
  const icon = await page.locator('link[rel=icon]').getAttribute('href');
  expect(icon).toBe('/favicon.svg');
  const served = await page.request.get(icon!);
  expect(served.status()).toBe(200);
  expect(served.headers()['content-type']).toContain('image/svg+xml');
  // A run page, live (startEcho waits for the socket), and the list page again.
  await startEcho(page);
  await page.goto('/');
  await expect(page.getByTestId('start-echo')).toBeVisible();
  expect(problems).toEqual([]);
});

test('an echo workflow streams live and survives a dropped connection', async ({ page }) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // Hydration proof: the connection indicator turns live (startEcho waits for it) and the
  // events below arrive over the socket; neither happens without the WASM.
  const id = await startEcho(page);

  const connection = page.getByTestId('connection');
  const rows = page.locator('[data-testid=events] li[data-seq]');
  await expect(rows).toHaveCount(3);
  await expect(page.getByTestId('workflow-status')).toHaveText('waiting input');
  await expect(page.getByTestId('waiting-prompt')).toBeVisible();

  // Send input: the response events appear live.
  await page.getByTestId('input').fill('hello lantern');
  await page.getByTestId('send').click();
  await expect(page.locator('li[data-type=agent_response]')).toContainText('You said: hello lantern');
  await expect(page.locator('li[data-type=tool_completed]')).toContainText('text_stats');
  // The round ends with the echo waiting again; the page then holds every event of the log
  // (the answer and its reasoning arrive streamed, a delta per word, so no fixed count).
  await expect(rows.last()).toHaveAttribute('data-type', 'workflow_status');
  await expect(rows.last()).toContainText('waiting_input');
  await expect(rows).toHaveCount(await lastSeq(page, id));
  expect(await shownSeqs(page)).toEqual(Array.from({ length: await lastSeq(page, id) }, (_, i) => i + 1));

  // Record every connection state from now on.
  await recordConnectionStates(page);

  // Cut the connection for real: the server drops every subscriber socket (no close frame).
  const cut = await page.request.post('/api/test/disconnect', { headers: asUser() });
  expect(cut.status()).toBe(204);
  // Meanwhile the workflow goes on: input arrives over HTTP while the page is away.
  const away = await page.request.post(`/api/workflows/${id}/input`, {
    data: { content: 'sent while the page was away', client_msg_id: 'e2e-away-1' },
  });
  expect(away.ok()).toBeTruthy();

  await expect(connection).toHaveAttribute('data-reconnects', '1');
  await expect(connection).toHaveAttribute('data-state', 'live');
  const seen: string[] = await seenConnectionStates(page);
  expect(seen).toContain('reconnecting');
  expect(seen.indexOf('reconnecting')).toBeLessThan(seen.lastIndexOf('live'));

  // Everything that happened while away arrives, once.
  await expect(page.locator('li[data-type=agent_response]')).toHaveCount(2);
  await expect(page.locator('li[data-type=agent_response]').nth(1)).toContainText('sent while the page was away');

  // Finish the workflow from the page.
  await page.getByTestId('input').fill('done');
  await page.getByTestId('send').click();
  await expect(page.getByTestId('workflow-status')).toHaveText('completed');
  await expect(page.getByTestId('input')).toBeDisabled();
  await expect(page.getByTestId('waiting-prompt')).toHaveCount(0);

  // The final list holds every event of the log exactly once, in order.
  const last = await lastSeq(page, id);
  await expect(rows).toHaveCount(last);
  expect(await shownSeqs(page)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
  expect(pageErrors).toEqual([]);
});

test('a run page for an unknown workflow says so', async ({ page }) => {
  await page.goto('/w/wf_DOESNOTEXIST');
  await expect(page.getByTestId('not-found')).toHaveText('Workflow not found.');
  await expect(page.getByTestId('connection')).toHaveCount(0);
});

test('a cancel the server refuses says why, and the run goes on', async ({ page }) => {
  await startEcho(page);
  await expect(page.getByTestId('workflow-status')).toHaveText('waiting input');
  // Signed out behind the page's back: the server refuses the cancel as unauthenticated.
  await page.context().clearCookies();
  await page.getByTestId('cancel').click();
  await expect(page.getByTestId('cancel-error')).toContainText('Could not cancel');
  await expect(page.getByTestId('cancel-error')).toContainText('sign in first');
  await expect(page.getByTestId('cancel')).toBeEnabled();
  await expect(page.getByTestId('workflow-status')).toHaveText('waiting input');
});
