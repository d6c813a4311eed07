// A real AG-UI agent behind Lantern, on the page (PROTOCOL.md §8 "In"): examples/agui_agent.py —
// Pydantic AI's own AG-UI adapter, with a scripted model — which playwright.config.ts starts and
// registers as the workflow kind `helper`. A person asks it from the home page, sees its tool
// row and its streamed answer, approves the action it asks about on a card, and finds it all
// again after a reload.
import { expect, test } from '@playwright/test';
import { signIn } from './session';

test('an AG-UI agent is asked from the home page; its tool row, answer and approval card are on the run page', async ({
  page,
}) => {
  await signIn(page);
  await page.goto('/');
  await page.getByTestId('agent-kind').selectOption('helper');
  await page.getByTestId('agent-message').fill('What is the weather in Paris?');
  await page.getByTestId('start-agent').click();
  await expect(page).toHaveURL(/\/w\/wf_/);

  const row = page.getByTestId('tool-row');
  await expect(row).toContainText('get_weather');
  await expect(row).toHaveAttribute('data-progress', 'done');
  const answers = page.getByTestId('agent-response');
  await expect(answers.last()).toHaveAttribute('data-state', 'done');
  await expect(answers.last()).toContainText('sunny');

  // The agent asks before it acts: an approval card about its call, answered here.
  await page.getByTestId('input').fill('please approve the deploy');
  await page.getByTestId('send').click();
  const card = page.getByTestId('interrupt');
  await expect(card).toHaveAttribute('data-state', 'open');
  await expect(card.getByTestId('interrupt-call')).toContainText('perform_action');
  await expect(card.getByTestId('interrupt-call')).toContainText('deploy to production');
  await card.getByTestId('approve').click();
  await expect(card.getByTestId('interrupt-outcome')).toHaveText('Approved by admin');
  await expect(answers.last()).toContainText('performed: deploy to production');

  // All of it is in the log: a reload renders it again, from the server.
  await page.reload();
  await expect(page.getByTestId('agent-response').last()).toContainText('performed: deploy to production');
  await expect(page.getByTestId('interrupt').getByTestId('interrupt-outcome')).toHaveText('Approved by admin');
  await expect(page.getByTestId('tool-row').filter({ hasText: 'perform_action' })).toHaveAttribute(
    'data-progress',
    'done',
  );
});
