// Streamed answers and interrupts on the run page, against the real server in Chromium: text
// shown as it arrives (appended in place, the card never re-rendered) and as Markdown once
// closed; an approval answered in one tab shows answered in another at once; Deny keeps the
// tool from running; an answer given offline waits as pending and is delivered exactly once;
// a reload mid-stream shows the text so far and goes on without repeating a character.
import { test, expect, APIRequestContext, Page } from '@playwright/test';
import { asUser, createExternal, publish, signIn, startEcho } from './session';

test.beforeEach(async ({ page }) => signIn(page));

async function logEvents(request: APIRequestContext, id: string): Promise<any[]> {
  const response = await request.get(`/api/workflows/${id}/events?limit=10000`, { headers: asUser() });
  expect(response.ok()).toBeTruthy();
  return (await response.json()).events;
}

const delta = (message_id: string, delta: string) => ({ type: 'text_delta', agent: 'writer', message_id, delta });

/** The exact text of the streamed answer of `agent`'s card (no whitespace normalising). */
async function streamedText(page: Page, agent: string): Promise<string | null> {
  return page
    .locator(`[data-testid=task-card][data-agent=${agent}] [data-testid=agent-response] .stream-text`)
    .evaluate((el) => el.textContent);
}

/** Send `text` from the run page's input box. */
async function say(page: Page, text: string): Promise<void> {
  await page.getByTestId('input').fill(text);
  await page.getByTestId('send').click();
}

test('a streamed answer shows as it arrives with a caret, appended in place, then as Markdown once closed', async ({
  page,
  request,
}) => {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const id = await createExternal(request, 'Streaming');
  await page.goto(`/w/${id}`);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');

  await publish(request, id, [
    { type: 'workflow_status', status: 'running' },
    { type: 'agent_started', agent: 'writer', task: 'write' },
    { type: 'thinking_delta', agent: 'writer', message_id: 'r1', delta: 'Which words ' },
    delta('m1', 'Hello '),
  ]);
  const card = page.locator('[data-testid=task-card][data-agent=writer]');
  const answer = card.getByTestId('agent-response');
  await expect(answer).toHaveAttribute('data-state', 'streaming');
  await expect(answer).toHaveText('Hello');
  await expect(answer.getByTestId('caret')).toBeVisible();
  // Reasoning: collapsed, live inside, open on a click.
  const reasoning = card.getByTestId('reasoning');
  await expect(reasoning).toHaveAttribute('data-state', 'streaming');
  await expect(reasoning).not.toHaveAttribute('open', '');
  await reasoning.locator('summary').click();
  await expect(reasoning.locator('.reasoning-text')).toHaveText('Which words');

  // From here on, the card must not be re-rendered by deltas: only text is added, to the text
  // node that is there now.
  await page.evaluate(() => {
    const w = window as any;
    const card = document.querySelector('[data-testid=task-card][data-agent=writer]')!;
    w.textNode = card.querySelector('[data-testid=agent-response] .stream-text')!.firstChild;
    w.childListChanges = 0;
    w.textChanges = 0;
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === 'childList') w.childListChanges++;
        else if (r.type === 'characterData') w.textChanges++;
      }
    }).observe(card, { childList: true, subtree: true, characterData: true });
  });
  const pieces = ['**wor', 'ld**', ' and ', '`code`', ' — ', 'thé ', 'end'];
  let sofar = 'Hello ';
  for (const piece of pieces) {
    await publish(request, id, delta('m1', piece));
    sofar += piece;
    await expect.poll(() => streamedText(page, 'writer')).toBe(sofar);
  }
  await publish(request, id, { type: 'thinking_delta', agent: 'writer', message_id: 'r1', delta: 'to use?' });
  await expect(reasoning.locator('.reasoning-text')).toHaveText('Which words to use?');
  const dom = await page.evaluate(() => {
    const w = window as any;
    const span = document.querySelector('[data-testid=task-card][data-agent=writer] [data-testid=agent-response] .stream-text')!;
    return {
      sameNode: span.firstChild === w.textNode,
      texts: Array.from(span.childNodes).filter((n) => n.nodeType === Node.TEXT_NODE).length,
      kinds: Array.from(span.childNodes).map((n) => n.nodeName + ':' + JSON.stringify(n.textContent)).join(' '),
      childListChanges: w.childListChanges,
      textChanges: w.textChanges,
    };
  });
  expect(dom.sameNode, 'the answer keeps its one text node').toBe(true);
  // One text node, grown in place (after it, at most the renderer's marker comment).
  expect(dom.texts, dom.kinds).toBe(1);
  expect(dom.childListChanges, 'no element of the card was made or removed by a delta').toBe(0);
  expect(dom.textChanges).toBeGreaterThanOrEqual(pieces.length + 1);

  // Closed without content: the server fills in the deltas joined; the page renders Markdown.
  await publish(request, id, [
    { type: 'agent_thinking', agent: 'writer', message_id: 'r1' },
    { type: 'agent_response', agent: 'writer', message_id: 'm1' },
  ]);
  await expect(answer).toHaveAttribute('data-state', 'done');
  await expect(answer.locator('strong')).toHaveText('world');
  await expect(answer.locator('code')).toHaveText('code');
  await expect(answer).toHaveText('Hello world and code — thé end');
  await expect(answer.getByTestId('caret')).toHaveCount(0);
  await expect(reasoning).toHaveAttribute('data-state', 'done');
  await expect(reasoning).toHaveAttribute('open', '');

  // A whole answer (no message_id) is shown as before: plain text, at once.
  await publish(request, id, { type: 'agent_response', agent: 'writer', content: 'plain **text**' });
  await expect(answer).toHaveText('plain **text**');
  await expect(answer.locator('strong')).toHaveCount(0);
  expect(pageErrors).toEqual([]);
});

test('an approval answered in one tab shows answered, and by whom, in another at once', async ({ page, context }) => {
  const id = await startEcho(page);
  const other = await context.newPage();
  await other.goto(`/w/${id}`);
  await expect(other.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await other.evaluate(() => ((window as any).sameDocument = true));

  await say(page, 'tool: count these words');
  for (const tab of [page, other]) {
    const card = tab.getByTestId('interrupt');
    await expect(card).toHaveAttribute('data-state', 'open');
    await expect(card.getByTestId('interrupt-message')).toHaveText('Run text_stats on “count these words”?');
    await expect(card).toContainText('asked by echo');
    await expect(card.getByTestId('interrupt-call')).toContainText('text_stats');
    await expect(card.getByTestId('interrupt-call')).toContainText('"text": "count these words"');
    await expect(card.getByTestId('approve')).toBeVisible();
    await expect(card.getByTestId('deny')).toBeVisible();
    // The tool row of the call says it waits.
    await expect(tab.getByTestId('tool-row').getByTestId('awaiting-approval')).toBeVisible();
  }

  await page.getByTestId('approve').click();
  const there = other.getByTestId('interrupt');
  await expect(there).toHaveAttribute('data-state', 'answered');
  await expect(there.getByTestId('interrupt-outcome')).toHaveText('Approved by admin');
  await expect(there.getByTestId('approve')).toHaveCount(0);
  await expect(there.getByTestId('deny')).toHaveCount(0);
  await expect(page.getByTestId('interrupt').getByTestId('interrupt-outcome')).toHaveText('Approved by admin');
  expect(await other.evaluate(() => (window as any).sameDocument)).toBe(true);

  // The tool ran, and the echo's streamed answer says who approved it.
  for (const tab of [page, other]) {
    const row = tab.getByTestId('tool-row');
    await expect(row).toHaveAttribute('data-progress', 'done');
    await expect(row.getByTestId('awaiting-approval')).toHaveCount(0);
    const answer = tab.getByTestId('agent-response');
    await expect(answer).toHaveAttribute('data-state', 'done');
    await expect(answer).toHaveText('You said: count these words (3 words, approved by admin)');
  }
  await other.close();
});

test('Deny keeps the tool from running and the echo says it was denied', async ({ page, request }) => {
  const id = await startEcho(page);
  await say(page, 'tool: do not count me');
  const card = page.getByTestId('interrupt');
  await expect(card).toHaveAttribute('data-state', 'open');
  await card.getByTestId('deny').click();
  await expect(card).toHaveAttribute('data-state', 'answered');
  await expect(card.getByTestId('interrupt-outcome')).toHaveText('Denied by admin');

  const row = page.getByTestId('tool-row');
  await expect(row).toHaveAttribute('data-progress', 'failed');
  const answer = page.getByTestId('agent-response');
  await expect(answer).toHaveAttribute('data-state', 'done');
  await expect(answer).toHaveText('I did not run text_stats: denied by admin.');
  await row.locator('summary').click();
  await expect(row.locator('.tool-io')).toContainText('denied by admin');
  await expect(row.locator('.tool-io h4')).toHaveText(['input', 'error']);

  // The log agrees: the call failed, with no output.
  const events = await logEvents(request, id);
  const completed = events.filter((e) => e.type === 'tool_completed');
  expect(completed).toHaveLength(1);
  expect(completed[0].ok).toBe(false);
  expect(completed[0].output).toBeUndefined();
  const answered = events.filter((e) => e.type === 'interrupt_resolved');
  expect(answered).toHaveLength(1);
  expect(answered[0].payload).toEqual({ approved: false });
});

test('an answer given offline waits as pending and is delivered exactly once on reconnect', async ({
  page,
  context,
  request,
}) => {
  const id = await startEcho(page);
  await say(page, 'tool: while offline');
  const card = page.getByTestId('interrupt');
  await expect(card).toHaveAttribute('data-state', 'open');

  await context.setOffline(true);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'offline');
  await card.getByTestId('approve').click();
  await expect(card).toHaveAttribute('data-state', 'pending');
  await expect(card.getByTestId('interrupt-outcome')).toContainText('pending');
  await expect(card.getByTestId('approve')).toHaveCount(0);
  // The server drops every socket too; nothing was sent meanwhile.
  expect((await request.post('/api/test/disconnect', { headers: asUser() })).status()).toBe(204);
  expect((await logEvents(request, id)).filter((e) => e.type === 'interrupt_resolved')).toHaveLength(0);

  await context.setOffline(false);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await expect(card).toHaveAttribute('data-state', 'answered');
  await expect(card.getByTestId('interrupt-outcome')).toHaveText('Approved by admin');
  await expect(page.getByTestId('agent-response')).toHaveText('You said: while offline (2 words, approved by admin)');

  // Dropped once more after the answer went through: the page resends nothing twice.
  const reconnects = Number(await page.getByTestId('connection').getAttribute('data-reconnects'));
  expect((await request.post('/api/test/disconnect', { headers: asUser() })).status()).toBe(204);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-reconnects', String(reconnects + 1));
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  const answered = (await logEvents(request, id)).filter((e) => e.type === 'interrupt_resolved');
  expect(answered).toHaveLength(1);
  expect(answered[0]).toMatchObject({ interrupt_id: 'approve-1', status: 'resolved', payload: { approved: true }, user: 'admin' });
  await expect(page.locator('li[data-type=interrupt_resolved]')).toHaveCount(1);
});

test('a reload in the middle of a streamed answer shows the text so far and goes on without repeating it', async ({
  page,
  request,
}) => {
  const id = await createExternal(request, 'Reload mid-stream');
  await publish(request, id, [
    { type: 'workflow_status', status: 'running' },
    { type: 'agent_started', agent: 'writer' },
    delta('m1', 'One '),
    delta('m1', 'two '),
  ]);
  await page.goto(`/w/${id}`);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await publish(request, id, delta('m1', 'three '));
  await expect.poll(() => streamedText(page, 'writer')).toBe('One two three ');

  // The server renders the text so far into the page itself.
  const html = await (await page.request.get(`/w/${id}`)).text();
  expect(html).toContain('One two three ');

  await page.reload();
  await expect(page.getByTestId('agent-response')).toHaveAttribute('data-state', 'streaming');
  expect(await streamedText(page, 'writer')).toBe('One two three ');
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await publish(request, id, [delta('m1', 'four '), delta('m1', 'five')]);
  await expect.poll(() => streamedText(page, 'writer')).toBe('One two three four five');
  await publish(request, id, { type: 'agent_response', agent: 'writer', message_id: 'm1' });
  await expect(page.getByTestId('agent-response')).toHaveAttribute('data-state', 'done');
  await expect(page.getByTestId('agent-response')).toHaveText('One two three four five');
  // Every event once in the raw log.
  const last = (await (await request.get(`/api/workflows/${id}`, { headers: asUser() })).json()).last_seq;
  await expect(page.locator('[data-testid=events] li[data-seq]')).toHaveCount(last);
});

test('whole lines of a streamed answer become blocks of their own, live and after a reload, the text exact', async ({
  page,
  request,
}) => {
  const id = await createExternal(request, 'Lines');
  await page.goto(`/w/${id}`);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await publish(request, id, [
    { type: 'workflow_status', status: 'running' },
    { type: 'agent_started', agent: 'writer' },
    delta('m1', 'Line one\nLine '),
    delta('m1', 'two\n\nLine th'),
  ]);
  await expect.poll(() => streamedText(page, 'writer')).toBe('Line one\nLine two\n\nLine th');
  const shape = () =>
    page.evaluate(() => {
      const span = document.querySelector('[data-testid=agent-response] .stream-text')!;
      const lines = Array.from(span.querySelectorAll(':scope > span')) as HTMLElement[];
      const writing = Array.from(span.childNodes).filter((n) => n.nodeType === Node.TEXT_NODE);
      return {
        lines: lines.map((l) => l.textContent),
        // Drawn as the text is: each line on its own row, the empty one too.
        tops: lines.map((l) => Math.round(l.getBoundingClientRect().top)),
        heights: lines.map((l) => Math.round(l.getBoundingClientRect().height)),
        writing: writing.map((n) => n.textContent),
        display: lines.map((l) => getComputedStyle(l).display),
      };
    });
  let drawn = await shape();
  expect(drawn.lines).toEqual(['Line one\n', 'Line two\n', '\n']);
  expect(drawn.writing).toEqual(['Line th']);
  expect(drawn.display).toEqual(['block', 'block', 'block']);
  expect(drawn.heights.every((h) => h > 0), JSON.stringify(drawn)).toBe(true);
  expect(drawn.tops[1]).toBeGreaterThan(drawn.tops[0]);
  expect(drawn.tops[2]).toBeGreaterThan(drawn.tops[1]);
  // The line being written grows in place: the same text node, no element made.
  await page.evaluate(() => {
    const w = window as any;
    const span = document.querySelector('[data-testid=agent-response] .stream-text')!;
    w.writing = Array.from(span.childNodes).find((n) => n.nodeType === Node.TEXT_NODE);
  });
  await publish(request, id, delta('m1', 'ree'));
  await expect.poll(() => streamedText(page, 'writer')).toBe('Line one\nLine two\n\nLine three');
  expect(
    await page.evaluate(() => {
      const w = window as any;
      const span = document.querySelector('[data-testid=agent-response] .stream-text')!;
      return Array.from(span.childNodes).find((n) => n.nodeType === Node.TEXT_NODE) === w.writing;
    }),
  ).toBe(true);

  // After a reload the server's text (one text node) is split into the same lines, and the
  // stream goes on from where it was.
  await page.reload();
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await publish(request, id, delta('m1', '\nLine four'));
  await expect.poll(() => streamedText(page, 'writer')).toBe('Line one\nLine two\n\nLine three\nLine four');
  drawn = await shape();
  expect(drawn.lines).toEqual(['Line one\n', 'Line two\n', '\n', 'Line three\n']);
  expect(drawn.writing).toEqual(['Line four']);
  await publish(request, id, { type: 'agent_response', agent: 'writer', message_id: 'm1' });
  await expect(page.getByTestId('agent-response')).toHaveAttribute('data-state', 'done');
});

test('other questions get a form from their schema; expired ones have no buttons; a withdrawn one says so', async ({
  page,
  request,
}) => {
  const id = await createExternal(request, 'Questions');
  await publish(request, id, [
    { type: 'workflow_status', status: 'running' },
    { type: 'agent_started', agent: 'planner' },
    {
      type: 'interrupt',
      agent: 'planner',
      interrupt_id: 'late',
      reason: 'tool_approval',
      message: 'Too late to approve?',
      expires_at: '2020-01-01T00:00:00.000Z',
    },
  ]);
  await page.goto(`/w/${id}`);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  const late = page.locator('[data-testid=interrupt][data-interrupt-id=late]');
  await expect(late).toHaveAttribute('data-state', 'expired');
  await expect(late.getByTestId('interrupt-outcome')).toContainText('Expired');
  await expect(late.locator('button')).toHaveCount(0);

  await publish(request, id, [
    {
      type: 'interrupt',
      agent: 'planner',
      interrupt_id: 'trip',
      reason: 'input',
      message: 'Where to?',
      response_schema: {
        type: 'object',
        properties: {
          city: { type: 'string', title: 'City' },
          nights: { type: 'integer' },
          pets: { type: 'boolean' },
          class: { enum: ['economy', 'business'] },
        },
        required: ['city', 'nights', 'class'],
      },
    },
    { type: 'interrupt', agent: 'planner', interrupt_id: 'note', reason: 'input', message: 'Anything else?' },
    { type: 'interrupt', agent: 'planner', interrupt_id: 'gone', reason: 'input', message: 'Never mind?' },
  ]);
  const trip = page.locator('[data-testid=interrupt][data-interrupt-id=trip]');
  await expect(trip).toHaveAttribute('data-state', 'open');
  await expect(trip).toContainText('asked by planner');
  const form = trip.getByTestId('interrupt-form');
  await form.getByLabel('City').fill('Lisbon');
  await form.getByLabel('nights').fill('2.5');
  await form.getByLabel('class').selectOption({ label: 'business' });
  await form.getByLabel('pets').check();
  await form.getByTestId('answer').click();
  await expect(form.getByRole('alert')).toHaveText('nights: a whole number is needed');
  await form.getByLabel('nights').fill('3');
  await form.getByTestId('answer').click();
  await expect(trip).toHaveAttribute('data-state', 'answered');
  await expect(trip.getByTestId('interrupt-outcome')).toHaveText('Answered by admin');

  // No schema: one text box, sent as the payload string.
  const note = page.locator('[data-testid=interrupt][data-interrupt-id=note]');
  await note.getByTestId('interrupt-form').locator('input').fill('a window seat');
  await note.getByTestId('answer').click();
  await expect(note).toHaveAttribute('data-state', 'answered');

  // The agent withdraws its own question.
  await publish(request, id, { type: 'interrupt_resolved', interrupt_id: 'gone', status: 'cancelled' });
  const gone = page.locator('[data-testid=interrupt][data-interrupt-id=gone]');
  await expect(gone).toHaveAttribute('data-state', 'withdrawn');
  await expect(gone.getByTestId('interrupt-outcome')).toHaveText('Withdrawn');
  await expect(gone.locator('button')).toHaveCount(0);

  const answers = (await logEvents(request, id)).filter((e) => e.type === 'interrupt_resolved');
  expect(answers.map((e) => [e.interrupt_id, e.payload, e.user])).toEqual([
    ['trip', { city: 'Lisbon', nights: 3, pets: true, class: 'business' }, 'admin'],
    ['note', 'a window seat', 'admin'],
    ['gone', undefined, null],
  ]);
});
