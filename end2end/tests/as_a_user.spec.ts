// The browser, tried as a user would: a burst of events on an open run page (the socket stays
// live, the page keeps pace, and the figures are reported), a finished search on a phone, the
// report's sources, what a screen reader and a thumb need, and pages that are not there.
import { test, expect, Page } from '@playwright/test';
import { asUser, createExternal, publish, recordConnectionStates, seenConnectionStates, signIn } from './session';

test.beforeEach(async ({ page }) => signIn(page));

/** Start watching, in the page, for the raw log's row `seq`: the time (epoch ms) it appears. */
async function whenRowAppears(page: Page, seq: number): Promise<void> {
  await page.evaluate((seq) => {
    const w = window as any;
    w.rowAt = undefined;
    const found = () => document.querySelector(`[data-testid=events] li[data-seq="${seq}"]`);
    const observer = new MutationObserver(() => {
      if (w.rowAt === undefined && found()) {
        w.rowAt = Date.now();
        observer.disconnect();
      }
    });
    observer.observe(document.body, { childList: true, subtree: true });
    // The longest gap between two frames while the burst is drawn: the page must not freeze.
    w.longestFrameGap = 0;
    let last = performance.now();
    const frame = () => {
      const now = performance.now();
      w.longestFrameGap = Math.max(w.longestFrameGap, now - last);
      last = now;
      if (w.rowAt === undefined) requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }, seq);
}

test('a burst of 5,000 events keeps the socket live and the page keeps pace', async ({ page, request }) => {
  test.setTimeout(120_000);
  const id = await createExternal(request, 'A burst');
  await page.goto(`/w/${id}`);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await recordConnectionStates(page);
  await whenRowAppears(page, 5000);

  // 5,000 events in batches of 100, as fast as the server acks them. The server's heartbeat
  // here is 2 s: a page that counted only heartbeat answers as life would drop the socket.
  let ackedAt = 0;
  for (let batch = 0; batch < 50; batch++) {
    const events = Array.from({ length: 100 }, (_, n) => ({
      type: 'agent_thinking',
      agent: 'burst',
      content: `thought ${batch * 100 + n + 1}`,
    }));
    const seqs = await publish(request, id, events);
    expect(seqs[99]).toBe((batch + 1) * 100);
    ackedAt = Date.now();
  }
  await expect(page.locator('[data-testid=events] li[data-seq="5000"]')).toHaveCount(1, { timeout: 60_000 });
  const shownAt: number = await page.evaluate(() => (window as any).rowAt);
  const longestFrameGap: number = await page.evaluate(() => (window as any).longestFrameGap);
  test.info().annotations.push(
    { type: 'last event on screen after its ack (ms)', description: String(shownAt - ackedAt) },
    { type: 'longest frame gap during the burst (ms)', description: longestFrameGap.toFixed(0) },
  );
  console.log(`burst of 5,000: last event on screen ${shownAt - ackedAt} ms after its ack; ` +
    `longest frame gap ${longestFrameGap.toFixed(0)} ms`);

  // Every event once, in order, on a socket that never dropped.
  await expect(page.getByTestId('event-count')).toHaveText('5000 events');
  const seen: string[] = await seenConnectionStates(page);
  expect(seen.filter((s) => s !== 'live'), `states: ${seen.join(', ')}`).toEqual([]);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  const rows = await page
    .locator('[data-testid=events] li[data-seq]')
    .evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-seq'))));
  expect(rows).toEqual(Array.from({ length: 200 }, (_, n) => 4801 + n));
});

test('a finished search fits a phone, names its sources without dead links, and is usable by thumb and screen reader', async ({
  page,
  request,
}) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto('/');
  await page.getByTestId('query').fill('how does a client resume after a reconnect');
  await page.getByTestId('start-search').click();
  await expect(page.getByTestId('workflow-status')).toHaveText('waiting input');
  await page.getByTestId('finish').click();
  await expect(page.getByTestId('workflow-status')).toHaveText('completed');

  // Long words in snippets and sources wrap: nothing scrolls sideways.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);

  // The report names its sources; every link in it goes somewhere that exists.
  const report = page.getByTestId('report');
  await expect(report).toContainText('PROTOCOL.md');
  for (const href of await report.locator('a[href]').evaluateAll((links) => links.map((a) => (a as HTMLAnchorElement).href))) {
    if (href.startsWith('#') || href.endsWith('#')) continue;
    const response = await request.get(href, { headers: asUser() });
    expect(response.status(), href).toBeLessThan(400);
  }

  // A message box with a name, and tap targets a thumb can hit (24 px at least).
  await page.goto(page.url());
  await expect(page.getByRole('textbox', { name: 'Message to the workflow' })).toBeVisible();
  const targets = [
    page.getByRole('link', { name: '← all workflows' }),
    page.getByTestId('tool-row').first().locator('summary'),
    page.getByTestId('thinking').first(),
  ];
  for (const target of targets) {
    const box = await target.boundingBox();
    expect(box, `${target}`).not.toBeNull();
    expect(box!.height, `${target}`).toBeGreaterThanOrEqual(24);
  }
});

test('a page that is not there says so with a 404', async ({ page }) => {
  const missing = await page.goto('/no/such/page');
  expect(missing!.status()).toBe(404);
  await expect(page.getByTestId('not-found')).toHaveText('Page not found.');
  const run = await page.goto('/w/wf_NOT_THERE');
  expect(run!.status()).toBe(404);
  await expect(page.getByTestId('not-found')).toHaveText('Workflow not found.');
});
