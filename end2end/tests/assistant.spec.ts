// The built-in `assistant` on the page, against end2end/scripted_llm.mjs (a scripted
// OpenAI-compatible server; CI has no model) with --llm-approve-tools search_docs: a person asks
// from the home page, approves the search on its card, watches the answer stream in, and a
// follow-up continues the same conversation.
import { expect, test } from '@playwright/test';
import { signIn } from './session';

test('an assistant run asks before it searches, streams its answer visibly, and takes a follow-up', async ({
  page,
}) => {
  await signIn(page);
  await page.goto('/');
  await expect(page.getByTestId('assistant-hint')).toHaveCount(0);
  await page.getByTestId('agent-kind').selectOption('assistant');
  await page.getByTestId('agent-message').fill('What do the docs say about reconnects?');
  await page.getByTestId('start-agent').click();
  await expect(page).toHaveURL(/\/w\/wf_/);

  // The model calls search_docs; the operator asked for approval first.
  const card = page.getByTestId('interrupt');
  await expect(card).toHaveAttribute('data-state', 'open');
  await expect(card.getByTestId('interrupt-call')).toContainText('search_docs');
  await expect(page.getByTestId('tool-row').getByTestId('awaiting-approval')).toBeVisible();
  await card.getByTestId('approve').click();
  await expect(card.getByTestId('interrupt-outcome')).toHaveText('Approved by admin');
  await expect(page.getByTestId('tool-row')).toHaveAttribute('data-progress', 'done');

  // The answer is seen while it streams, then whole.
  const answer = page.getByTestId('agent-response').last();
  await expect(answer).toHaveAttribute('data-state', 'streaming');
  await expect(answer).toHaveAttribute('data-state', 'done');
  await expect(answer).toHaveText('Found it: viewers resume with after, and nothing is lost or repeated.');
  // What the answer cost, as the model server reported it.
  await expect(page.getByTestId('waiting-prompt')).toHaveText('waiting for your next message · 30 tokens in, 12 out');

  // A follow-up is the same conversation: the model was sent both of the person's messages.
  await page.getByTestId('input').fill('thanks');
  await page.getByTestId('send').click();
  await expect(page.getByTestId('agent-response').last()).toHaveText('You asked: thanks (message 2)');
});
