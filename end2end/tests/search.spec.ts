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

  // The graph streams: each node, the tool call, the results from Lantern's own docs, a report.
  await expect(page.getByTestId('workflow-status')).toHaveText('waiting input');
  for (const type of ['node_update', 'agent_started', 'tool_executing', 'tool_completed', 'agent_response']) {
    await expect(page.locator(`li[data-type=${type}]`).first()).toBeVisible();
  }
  await expect(page.locator('li[data-type=search_results]')).toHaveCount(1);
  await expect(page.locator('li[data-type=search_results]')).toContainText('PROTOCOL.md');
  await expect(page.locator('li[data-type=final_report]')).toHaveCount(1);

  // A follow-up question runs another round on the same workflow.
  await page.getByTestId('input').fill('what happens to a slow consumer');
  await page.getByTestId('send').click();
  await expect(page.locator('li[data-type=final_report]')).toHaveCount(2);
  await expect(page.locator('li[data-type=search_results]').nth(1)).toContainText('what happens to a slow consumer');
  await expect(page.getByTestId('workflow-status')).toHaveText('waiting input');

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
  await expect(page.locator('li[data-type=tool_executing]')).toHaveCount(1);
  await expect(page.getByTestId('workflow-status')).toHaveText('running');

  await page.getByTestId('cancel').click();
  await expect(page.getByTestId('workflow-status')).toHaveText('cancelled');
  await expect(page.locator('li[data-type=tool_completed]')).toHaveCount(1);
  await expect(page.locator('li[data-type=agent_completed]').last()).toBeVisible();
  await expect(page.getByTestId('input')).toBeDisabled();
});
