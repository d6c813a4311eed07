import { test, expect, APIRequestContext } from '@playwright/test';
import { asAgent, asUser, signIn } from './session';

test.beforeEach(async ({ page }) => signIn(page));

/** An external workflow with three events already in its log. */
async function workflowWithHistory(request: APIRequestContext): Promise<string> {
  const created = await request.post('/api/workflows', {
    headers: asUser(),
    data: { kind: 'external', title: 'With history' },
  });
  expect(created.status()).toBe(201);
  const { id } = await created.json();
  const published = await request.post(`/api/workflows/${id}/events`, {
    headers: asAgent(),
    data: [
      { type: 'agent_started', agent: 'writer', task: 'write things' },
      { type: 'agent_thinking', agent: 'writer', content: 'first thought' },
      { type: 'agent_response', agent: 'writer', content: 'rendered on the server' },
    ],
  });
  expect(await published.json()).toEqual({ seqs: [1, 2, 3] });
  return id;
}

test.describe('with JavaScript disabled', () => {
  test.use({ javaScriptEnabled: false });

  test('the run page shows the history', async ({ page, request }) => {
    const id = await workflowWithHistory(request);
    await page.goto(`/w/${id}`);
    await expect(page.locator('h1')).toHaveText('With history');
    await expect(page.locator('li[data-seq]')).toHaveCount(3);
    await expect(page.locator('li[data-type=agent_response]')).toContainText('rendered on the server');
  });

  test('the home page starts workflows and lands on their run pages', async ({ page }) => {
    await page.goto('/');
    await page.getByTestId('query').fill('how do reconnects work?');
    await page.getByTestId('start-search').click();
    await expect(page).toHaveURL(/\/w\/wf_[0-9A-Z]+$/);
    await expect(page.locator('h1')).toHaveText('how do reconnects work?');
    await page.goto('/');
    await page.getByTestId('start-echo').click();
    await expect(page).toHaveURL(/\/w\/wf_[0-9A-Z]+$/);
    await expect(page.locator('h1')).toHaveText('Echo');
  });
});

test('with JavaScript on, the rendered page continues live without duplicating', async ({ page, request }) => {
  const id = await workflowWithHistory(request);
  const sockets: import('@playwright/test').WebSocket[] = [];
  page.on('websocket', (ws) => sockets.push(ws));
  await page.goto(`/w/${id}`);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  // The socket resumed right after what the server rendered.
  expect(sockets).toHaveLength(1);
  expect(sockets[0].url()).toContain(`/ws/workflow/${id}?after=3`);
  await expect(page.locator('li[data-seq]')).toHaveCount(3);

  const live = await request.post(`/api/workflows/${id}/events`, {
    headers: asAgent(),
    data: { type: 'agent_thinking', agent: 'writer', content: 'arrived live' },
  });
  expect(live.ok()).toBeTruthy();
  await expect(page.locator('li[data-seq]')).toHaveCount(4);
  const seqs = await page
    .locator('li[data-seq]')
    .evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-seq'))));
  expect(seqs).toEqual([1, 2, 3, 4]);
  await expect(page.locator('li[data-seq="4"]')).toContainText('arrived live');

  // Leaving the page (a link, so a page load) closes its socket: the server has no viewer left.
  await page.getByRole('link', { name: '← all workflows' }).click();
  await expect(page.locator('h1')).toHaveText('Workflows');
  const viewers = async () =>
    (await (await request.get('/api/v1/websocket/stats', { headers: asUser() })).json()).subscriber_connections;
  await expect.poll(viewers).toBe(0);
  expect(sockets).toHaveLength(1);
});
