// The live run page and home list against the real server: cards, tool rows, steps, sources
// and a safe report appearing as an agent publishes; offline and a server-side drop with input
// typed meanwhile; one socket after moving between runs; the home list following statuses;
// a 10,000-event run; screenshots on desktop and phone, light and dark.
import { test, expect, APIRequestContext, Page } from '@playwright/test';
import { asUser, createExternal, publish, recordConnectionStates, seenConnectionStates, signIn, startEcho } from './session';

test.beforeEach(async ({ page }) => signIn(page));

async function subscriberSockets(request: APIRequestContext): Promise<number> {
  const response = await request.get('/api/v1/websocket/stats', { headers: asUser() });
  expect(response.ok()).toBeTruthy();
  return (await response.json()).subscriber_connections;
}

/** Every seq the raw log shows, in page order. */
async function shownSeqs(page: Page): Promise<number[]> {
  return page
    .locator('[data-testid=events] li[data-seq]')
    .evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-seq'))));
}

test('cards, tool rows, steps, sources and a safe report appear live as an agent publishes', async ({
  page,
  request,
}, testInfo) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const id = await createExternal(request, 'Live cards');
  await page.goto(`/w/${id}`);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await expect(page.getByTestId('task-card')).toHaveCount(0);

  await publish(request, id, [
    { type: 'workflow_status', status: 'running' },
    { type: 'node_update', node: 'research', status: 'executing' },
    { type: 'agent_started', agent: 'researcher', task: 'Find what the docs say' },
    { type: 'agent_thinking', agent: 'researcher', content: 'Which pages mention reconnects?' },
    { type: 'tool_executing', agent: 'researcher', tool: 'fetch', call_id: 'c1', input: { url: 'https://example.org/docs' } },
  ]);
  const card = page.locator('[data-testid=task-card][data-agent=researcher]');
  await expect(card).toHaveAttribute('data-progress', 'running');
  await expect(card).toContainText('Find what the docs say');
  await expect(card.getByTestId('thinking')).toContainText('Which pages mention reconnects?');
  const row = card.getByTestId('tool-row');
  await expect(row).toHaveAttribute('data-progress', 'running');
  await expect(row.locator('.spinner')).toBeVisible();
  await expect(page.locator('[data-testid=steps] li')).toHaveAttribute('data-step-status', 'executing');

  await publish(request, id, { type: 'tool_update', agent: 'researcher', tool: 'fetch', call_id: 'c1', message: 'halfway', progress: 0.5 });
  await expect(row).toContainText('halfway');
  await expect(row.locator('progress')).toHaveAttribute('value', '50');

  await publish(request, id, [
    { type: 'tool_completed', agent: 'researcher', tool: 'fetch', call_id: 'c1', ok: true, output: { pages: 2 }, duration_ms: 1234 },
    {
      type: 'search_results',
      query: 'reconnects',
      results: [
        { title: 'Resuming', source: 'docs/PROTOCOL.md', snippet: 'resume with after', score: 0.87 },
        { title: 'Backoff', source: 'README.md', snippet: 'full jitter', score: 0.5 },
      ],
    },
    { type: 'agent_response', agent: 'researcher', content: 'Two pages cover it.' },
    { type: 'agent_completed', agent: 'researcher', ok: true, summary: 'found 2 pages' },
    { type: 'node_update', node: 'research', status: 'completed' },
    {
      type: 'final_report',
      content:
        '# Findings\n\n**Resume** with `after`. <script>window.__pwned = 1</script>\n\n' +
        '<img src="x" onerror="window.__pwned = 1">\n\n[click me](javascript:window.__pwned=1)',
    },
  ]);
  await expect(row).toHaveAttribute('data-progress', 'done');
  await expect(row).toContainText('1.2 s');
  await expect(card).toHaveAttribute('data-progress', 'done');
  await expect(card.getByTestId('agent-response')).toHaveText('Two pages cover it.');
  await expect(page.locator('[data-testid=steps] li')).toHaveAttribute('data-step-status', 'completed');
  const hits = page.getByTestId('hit');
  await expect(hits).toHaveCount(2);
  await expect(hits.first()).toContainText('docs/PROTOCOL.md');
  await expect(hits.first()).toContainText('resume with after');
  await expect(hits.first()).toContainText('0.87');

  // The report is rendered Markdown; the agent's HTML is shown as text and runs nothing.
  const report = page.getByTestId('report');
  await expect(report.locator('h2')).toHaveText('Findings');
  await expect(page.locator('h1')).toHaveCount(1);
  await expect(report.locator('strong')).toHaveText('Resume');
  await expect(report).toContainText('<script>window.__pwned = 1</script>');
  await expect(report.locator('script, img')).toHaveCount(0);
  await expect(report.getByRole('link', { name: 'click me' })).toHaveAttribute('href', '#');
  expect(await page.evaluate(() => (window as any).__pwned)).toBeUndefined();

  // The tool row opens with the keyboard and shows its input and output.
  await row.locator('summary').focus();
  await page.keyboard.press('Enter');
  await expect(row.locator('pre').first()).toContainText('https://example.org/docs');
  await expect(row.locator('pre').nth(1)).toContainText('"pages": 2');
  await expect(page.getByTestId('elapsed')).toContainText(/\d/);

  // Screenshots: desktop and phone, light and dark. The phone layout never scrolls sideways.
  await page.screenshot({ path: testInfo.outputPath('run-desktop.png'), fullPage: true });
  await testInfo.attach('run-desktop', { path: testInfo.outputPath('run-desktop.png'), contentType: 'image/png' });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: testInfo.outputPath('run-mobile.png'), fullPage: true });
  await testInfo.attach('run-mobile', { path: testInfo.outputPath('run-mobile.png'), contentType: 'image/png' });
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  const lightBackground = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.emulateMedia({ colorScheme: 'dark' });
  await expect
    .poll(() => page.evaluate(() => getComputedStyle(document.body).backgroundColor))
    .not.toBe(lightBackground);
  await page.screenshot({ path: testInfo.outputPath('run-mobile-dark.png'), fullPage: true });
  await testInfo.attach('run-mobile-dark', { path: testInfo.outputPath('run-mobile-dark.png'), contentType: 'image/png' });
  expect(pageErrors).toEqual([]);
});

test('offline and a dropped socket: the indicator says so, input typed meanwhile waits as pending, then everything arrives once', async ({
  page,
  context,
  request,
}) => {
  const id = await startEcho(page);
  const connection = page.getByTestId('connection');
  await expect(page.getByTestId('workflow-status')).toHaveText('waiting input');
  await recordConnectionStates(page);

  await context.setOffline(true);
  await expect(connection).toHaveAttribute('data-state', 'offline');
  await expect(connection).toHaveText('offline');
  await expect(page.getByTestId('retry-now')).toBeVisible();

  // Typed while offline: shown as pending, not lost.
  await page.getByTestId('input').fill('typed while offline');
  await page.getByTestId('send').click();
  const typed = page.getByTestId('message').filter({ hasText: 'typed while offline' });
  await expect(typed).toHaveAttribute('data-state', 'pending');

  // The server drops every socket too, and the workflow goes on without the page.
  expect((await request.post('/api/test/disconnect', { headers: asUser() })).status()).toBe(204);
  const away = await request.post(`/api/workflows/${id}/input`, {
    headers: asUser(),
    data: { content: 'sent over HTTP meanwhile', client_msg_id: 'e2e-offline-1' },
  });
  expect(away.ok()).toBeTruthy();

  await context.setOffline(false);
  await expect(connection).toHaveAttribute('data-state', 'live');
  await expect(typed).toHaveCount(1);
  await expect(typed).toHaveAttribute('data-state', 'delivered');
  const seen: string[] = await seenConnectionStates(page);
  expect(seen.indexOf('offline')).toBeGreaterThanOrEqual(0);
  expect(seen.indexOf('offline')).toBeLessThan(seen.lastIndexOf('live'));

  // Both inputs were answered; the log holds every event exactly once, in order.
  const answers = page.locator('li[data-type=agent_response]');
  await expect(answers).toHaveCount(2);
  // Which input reached the server first is a race; each is answered exactly once.
  const texts = await answers.allTextContents();
  expect(texts.filter((t) => t.includes('typed while offline'))).toHaveLength(1);
  expect(texts.filter((t) => t.includes('sent over HTTP meanwhile'))).toHaveLength(1);
  await expect(page.locator('li[data-type=user_input]').filter({ hasText: 'typed while offline' })).toHaveCount(1);
  const last = (await (await request.get(`/api/workflows/${id}`, { headers: asUser() })).json()).last_seq;
  await expect(page.locator('[data-testid=events] li[data-seq]')).toHaveCount(last);
  expect(await shownSeqs(page)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
});

test('moving from one run page to another leaves exactly one open socket', async ({ page, request }) => {
  const first = await createExternal(request, 'First run');
  const second = await createExternal(request, 'Second run');
  await page.goto(`/w/${first}`);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await expect.poll(() => subscriberSockets(request)).toBe(1);

  // Links are page loads (only islands run in the browser): back to the list, then into the
  // other run; each page load leaves the previous socket behind closed.
  await page.getByRole('link', { name: '← all workflows' }).click();
  await page.locator(`a[href="/w/${second}"]`).click();
  await expect(page.locator('h1')).toHaveText('Second run');
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await expect.poll(() => subscriberSockets(request)).toBe(1);

  // And back through the browser history.
  await page.goBack();
  await page.goBack();
  await expect(page.locator('h1')).toHaveText('First run');
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await expect.poll(() => subscriberSockets(request)).toBe(1);
});

test('the home list follows new workflows and status changes without reloading', async ({ page, request }) => {
  await page.goto('/');
  await expect(page.locator('h1')).toHaveText('Workflows');
  await page.evaluate(() => ((window as any).sameDocument = true));
  const id = await createExternal(request, 'Appears by itself');
  const row = page.locator(`[data-testid=workflow-row][data-id="${id}"]`);
  await expect(row).toHaveAttribute('data-status', 'pending');
  await expect(page.getByTestId('workflow-row').first()).toHaveAttribute('data-id', id);
  await expect(row).toContainText('just now');
  await publish(request, id, { type: 'workflow_status', status: 'running' });
  await expect(row).toHaveAttribute('data-status', 'running');
  await publish(request, id, { type: 'workflow_status', status: 'completed' });
  await expect(row).toHaveAttribute('data-status', 'completed');
  await expect(row.getByTestId('workflow-status')).toHaveText('completed');
  expect(await page.evaluate(() => (window as any).sameDocument)).toBe(true);
});

test('a 10,000-event run renders, scrolls and stays live', async ({ page, request }) => {
  test.setTimeout(120_000);
  const id = await createExternal(request, 'Ten thousand events');
  const events: object[] = [
    { type: 'workflow_status', status: 'running' },
    { type: 'agent_started', agent: 'crawler', task: 'fetch every page' },
    { type: 'agent_thinking', agent: 'crawler', content: 'starting' },
  ];
  for (let n = 1; events.length < 10_000; n++) {
    events.push({ type: 'tool_executing', agent: 'crawler', tool: 'fetch', call_id: `c${n}`, input: { page: n } });
    events.push({ type: 'tool_completed', agent: 'crawler', tool: 'fetch', call_id: `c${n}`, ok: true, output: { bytes: n }, duration_ms: n % 97 });
  }
  expect(events).toHaveLength(10_001);
  events.pop(); // the last executing call stays open: 10,000 events
  for (let at = 0; at < events.length; at += 1000) {
    await publish(request, id, events.slice(at, at + 1000));
  }

  await page.goto(`/w/${id}`);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await expect(page.getByTestId('event-count')).toHaveText('10000 events');
  // Only windows of it are in the page: the newest tool rows and log rows.
  await expect(page.getByTestId('tool-row')).toHaveCount(50);
  await expect(page.getByTestId('earlier-tools')).toContainText('4949 hidden');
  await expect(page.locator('[data-testid=events] li[data-seq]')).toHaveCount(200);
  await expect(page.locator('[data-testid=events] li[data-seq]').last()).toHaveAttribute('data-seq', '10000');
  expect(await page.locator('li').count()).toBeLessThan(400);

  // Scrolling to the bottom and back keeps producing frames.
  const longestFrameGap = await page.evaluate(async () => {
    let last = performance.now();
    let longest = 0;
    let running = true;
    const frame = () => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
      if (running) requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
    for (let i = 0; i < 10; i++) {
      window.scrollTo(0, i % 2 ? 0 : document.body.scrollHeight);
      await new Promise((r) => setTimeout(r, 50));
    }
    running = false;
    return longest;
  });
  test.info().annotations.push({ type: 'longest frame gap (ms)', description: longestFrameGap.toFixed(0) });
  expect(longestFrameGap).toBeLessThan(2000);

  // Still live: the next event shows at once; earlier rows load on demand.
  await publish(request, id, { type: 'tool_completed', agent: 'crawler', tool: 'fetch', call_id: 'c4999', ok: false, error: 'gave up', duration_ms: 5 });
  await expect(page.getByTestId('event-count')).toHaveText('10001 events');
  await expect(page.getByTestId('tool-row').last()).toHaveAttribute('data-progress', 'failed');
  await page.getByTestId('earlier-tools').click();
  await expect(page.getByTestId('tool-row')).toHaveCount(100);
});
