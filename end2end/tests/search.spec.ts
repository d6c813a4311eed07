import { test, expect } from '@playwright/test';
import { signIn } from './session';

test.beforeEach(async ({ page }) => signIn(page));

test('a search started from the home page streams, takes a follow-up, and finishes', async ({ page }) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto('/');
  await page.getByTestId('query').fill('how does a client resume after a reconnect');
  await page.getByTestId('start-search').click();
  await expect(page).toHaveURL(/\/w\/wf_[0-9A-Z]+$/);
  await expect(page.locator('h1')).toHaveText('how does a client resume after a reconnect');

  // The graph streams: the step rail, one card per agent with its tool rows, the sources
  // from Lantern's own docs, and the report rendered from Markdown.
  await expect(page.getByTestId('workflow-status')).toHaveText('waiting input');
  const steps = page.locator('[data-testid=steps] li');
  await expect(steps).toHaveText([/analyze/, /search/, /synthesize/, /report/]);
  for (const step of await steps.all()) await expect(step).toHaveAttribute('data-step-status', 'completed');
  const cards = page.getByTestId('task-card');
  await expect(cards.first()).toBeVisible();
  await expect(page.locator('[data-testid=task-card][data-progress=running]')).toHaveCount(0);
  const tool = page.getByTestId('tool-row').filter({ hasText: 'full_text_search' });
  await expect(tool).toHaveCount(1);
  await expect(tool).toHaveAttribute('data-progress', 'done');
  await expect(tool).toContainText(/\d+(\.\d)? m?s/);
  await expect(page.getByTestId('search-results')).toHaveCount(1);
  await expect(page.getByTestId('hit').first()).toBeVisible();
  await expect(page.getByTestId('search-results')).toContainText('PROTOCOL.md');
  const report = page.getByTestId('report');
  await expect(report).toHaveCount(1);
  await expect(report.locator('h2')).toHaveText('how does a client resume after a reconnect');
  await expect(report.locator('h3')).toHaveText('Sources');

  // A follow-up question runs another round on the same workflow.
  await page.getByTestId('input').fill('what happens to a slow consumer');
  await page.getByTestId('send').click();
  await expect(page.getByTestId('report')).toHaveCount(2);
  await expect(page.getByTestId('search-results').nth(1)).toContainText('what happens to a slow consumer');
  await expect(page.getByTestId('workflow-status')).toHaveText('waiting input');
  await expect(page.locator('[data-testid=message][data-state=delivered]')).toContainText(['what happens to a slow consumer']);

  // Finish completes it; the controls go away.
  await page.getByTestId('finish').click();
  await expect(page.getByTestId('workflow-status')).toHaveText('completed');
  await expect(page.getByTestId('finish')).toHaveCount(0);
  await expect(page.getByTestId('cancel')).toHaveCount(0);
  expect(pageErrors).toEqual([]);
});

test('cancel stops a search whose tool is still running', async ({ page }) => {
  await page.goto('/');
  // With the test hooks on, this query makes the search tool hang.
  await page.getByTestId('query').fill('lantern-test-stall');
  await page.getByTestId('start-search').click();
  await expect(page).toHaveURL(/\/w\/wf_[0-9A-Z]+$/);
  // The stalled call shows as running, live.
  const tool = page.getByTestId('tool-row');
  await expect(tool).toHaveCount(1);
  await expect(tool).toHaveAttribute('data-progress', 'running');
  await expect(tool.locator('.spinner')).toBeVisible();
  await expect(page.getByTestId('workflow-status')).toHaveText('running');

  await page.getByTestId('cancel').click();
  await expect(page.getByTestId('workflow-status')).toHaveText('cancelled');
  await expect(tool).toHaveAttribute('data-progress', 'failed');
  await expect(page.locator('[data-testid=task-card][data-progress=running]')).toHaveCount(0);
  await expect(page.locator('li[data-type=tool_completed]')).toHaveCount(1);
  await expect(page.getByTestId('input')).toBeDisabled();
});
