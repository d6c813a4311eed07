// AG-UI 1.0 out (PROTOCOL.md §8), judged by the real @ag-ui/client: Lantern's stream of a
// workflow passes the client's schema checks and event verification from every point a client
// may resume at, and HttpAgent runs Lantern's built-in workflows as AG-UI agents.
import { expect, test } from '@playwright/test';
import { HttpAgent } from '@ag-ui/client';
import { asUser, createExternal, publish } from './session';
import { followAgui, textOf, types } from './agui';

/** Every point of workflow `id`'s log a client may resume at verifies, starts a run and ends
 *  with the workflow's end. */
async function verifiesFromEveryPoint(baseURL: string, id: string, lastSeq: number) {
  for (let after = 0; after < lastSeq; after++) {
    const followed = await followAgui(`${baseURL}/api/workflows/${id}/agui`, {
      ...asUser(),
      'Last-Event-ID': String(after),
    });
    expect(followed.error, `resuming after ${after}: ${followed.error}`).toBeUndefined();
    expect(followed.warnings, `resuming after ${after}`).toEqual([]);
    const seen = types(followed.events);
    expect(seen[0], `resuming after ${after}`).toBe('RUN_STARTED');
    expect(['RUN_FINISHED', 'RUN_ERROR']).toContain(seen[seen.length - 1]);
  }
}

test('a live external workflow streams as valid AG-UI, its interrupt as a run finished for input', async ({
  request,
  baseURL,
}) => {
  const id = await createExternal(request, 'AG-UI out');
  const live = followAgui(`${baseURL}/api/workflows/${id}/agui`, asUser());
  const agent = 'writer';
  await publish(request, id, [
    { type: 'workflow_status', status: 'running' },
    { type: 'agent_started', agent },
    { type: 'thinking_delta', agent, message_id: 't1', delta: 'Let me ' },
    { type: 'thinking_delta', agent, message_id: 't1', delta: 'think.' },
    { type: 'agent_thinking', agent, message_id: 't1' },
    { type: 'tool_executing', agent, tool: 'lookup', call_id: 'c1', input: { q: 'lantern' } },
    { type: 'tool_completed', agent, tool: 'lookup', call_id: 'c1', ok: true, output: { hits: 2 }, duration_ms: 5 },
    { type: 'text_delta', agent, message_id: 'm1', delta: 'Two ' },
    { type: 'text_delta', agent, message_id: 'm1', delta: 'hits.' },
    { type: 'interrupt', agent, interrupt_id: 'ask-1', reason: 'input', message: 'Go on?' },
  ]);
  const answered = await request.post(`/api/workflows/${id}/interrupts/ask-1`, {
    headers: asUser(),
    data: { status: 'resolved', payload: { go: true }, client_msg_id: 'answer-1' },
  });
  expect(answered.status()).toBe(200);
  const seqs = await publish(request, id, [
    { type: 'text_delta', agent, message_id: 'm1', delta: ' Done.' },
    { type: 'agent_response', agent, message_id: 'm1' },
    { type: 'agent_completed', agent, ok: true },
    { type: 'workflow_status', status: 'completed' },
  ]);

  const followed = await live;
  expect(followed.error, String(followed.error)).toBeUndefined();
  expect(followed.warnings).toEqual([]);
  const seen = types(followed.events);
  expect(seen.filter((t) => t === 'RUN_STARTED')).toHaveLength(2);
  const finished = followed.events.filter((e: any) => e.type === 'RUN_FINISHED') as any[];
  expect(finished[0].outcome).toEqual({
    type: 'interrupt',
    interrupts: [{ id: 'ask-1', reason: 'input', message: 'Go on?' }],
  });
  expect(finished[1].outcome).toBeUndefined();
  expect(textOf(followed.events, 'm1')).toBe('Two hits. Done.');
  expect(seen).toContain('REASONING_MESSAGE_CONTENT');
  const result = followed.events.find((e: any) => e.type === 'TOOL_CALL_RESULT') as any;
  expect([result.toolCallId, JSON.parse(result.content)]).toEqual(['c1', { hits: 2 }]);
  const custom = followed.events.find((e: any) => e.type === 'CUSTOM' && e.name === 'interrupt_resolved') as any;
  expect(custom.value.payload).toEqual({ go: true });

  await verifiesFromEveryPoint(baseURL!, id, seqs[seqs.length - 1]);
});

test('HttpAgent runs the built-in search as an AG-UI agent and gets its answer as a text message', async ({
  request,
  baseURL,
}) => {
  const threadId = `agui-search-${Date.now()}`;
  const agent = new HttpAgent({ url: `${baseURL}/agui/search`, headers: asUser(), threadId });
  agent.addMessage({ id: 'q1', role: 'user', content: 'how does a viewer resume after a reconnect' });
  const { newMessages } = await agent.runAgent();
  const answer = newMessages.find((m: any) => m.role === 'assistant' && typeof m.content === 'string' && m.content);
  expect(answer, JSON.stringify(newMessages)).toBeDefined();

  // The thread is a Lantern workflow with that very id, waiting for a follow-up; once finished,
  // its whole stream verifies from every point.
  const workflow = async () => (await request.get(`/api/workflows/${threadId}`, { headers: asUser() })).json();
  expect(await workflow()).toMatchObject({ kind: 'search', status: 'waiting_input' });
  const finish = await request.post(`/api/workflows/${threadId}/input`, {
    headers: asUser(),
    data: { content: 'done', client_msg_id: 'finish-1' },
  });
  expect(finish.status()).toBe(200);
  await expect.poll(async () => (await workflow()).status).toBe('completed');
  await verifiesFromEveryPoint(baseURL!, threadId, (await workflow()).last_seq);
});

test('HttpAgent talks with echo: a follow-up continues the thread, an approval is an interrupt answered by resume', async ({
  request,
  baseURL,
}) => {
  const threadId = `agui-echo-${Date.now()}`;
  const agent = new HttpAgent({ url: `${baseURL}/agui/echo`, headers: asUser(), threadId });
  agent.addMessage({ id: 'u1', role: 'user', content: 'hello there' });
  const first = await agent.runAgent();
  const said = (messages: any[]) =>
    messages.filter((m) => m.role === 'assistant' && typeof m.content === 'string' && m.content).map((m) => m.content);
  expect(said(first.newMessages).join(' ')).toContain('hello there');

  agent.addMessage({ id: 'u2', role: 'user', content: 'tool: count these words' });
  let outcome: any;
  await agent.runAgent(undefined, { onRunFinishedEvent: ({ event }: any) => void (outcome = event.outcome) });
  expect(outcome?.type).toBe('interrupt');
  const [asked] = outcome.interrupts;
  expect(asked.reason).toBe('tool_approval');

  let resultContent: string | undefined;
  const resumed = await agent.runAgent(
    { resume: [{ interruptId: asked.id, status: 'resolved', payload: { approved: true } }] },
    { onToolCallResultEvent: ({ event }: any) => void (resultContent = event.content) },
  );
  expect(JSON.parse(resultContent!)).toMatchObject({ words: 3 });
  expect(said(resumed.newMessages).length).toBeGreaterThan(0);

  // One workflow, one log: both messages and the answer are in it once each.
  const log = await (await request.get(`/api/workflows/${threadId}/events`, { headers: asUser() })).json();
  const inputs = log.events.filter((e: any) => e.type === 'user_input').map((e: any) => e.content);
  expect(inputs).toEqual(['hello there', 'tool: count these words']);
  const answers = log.events.filter((e: any) => e.type === 'interrupt_resolved');
  expect(answers).toHaveLength(1);
});

test('the AG-UI endpoints answer like every other: no token 401, a bad thread id 400, someone else’s 404', async ({
  request,
}) => {
  const anonymous = await request.post('/agui/echo', { data: { threadId: 't', runId: 'r', messages: [] } });
  expect(anonymous.status()).toBe(401);
  const bad = await request.post('/agui/echo', {
    headers: asUser(),
    data: { threadId: 'no spaces allowed', runId: 'r', messages: [{ id: 'm', role: 'user', content: 'hi' }] },
  });
  expect(bad.status()).toBe(400);
  const missing = await request.get('/api/workflows/nope/agui', { headers: asUser() });
  expect(missing.status()).toBe(404);
});
