// docs/INTEGRATIONS.md's JavaScript, run as written: each block is read from the page by its
// `<!-- test: NAME -->` marker — the browser one in a signed-in page, the Node ones as ES
// modules next to end2end's node_modules (where the real @ag-ui/client is installed). The shell
// and Python blocks run in server/tests/it/integrations.rs.
import { expect, test } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { adminToken, asUser, createExternal, publish, signIn } from './session';

function snippet(name: string): string {
  const page = fs.readFileSync(path.resolve(__dirname, '..', '..', 'docs', 'INTEGRATIONS.md'), 'utf8');
  const block = page.match(new RegExp(`<!-- test: ${name} -->\\n\`\`\`js\\n([\\s\\S]*?)\\n\`\`\`\\n`));
  expect(block, `a js block named ${name}`).not.toBeNull();
  return block![1];
}

/** Run Node block `name` with the page's variables set; its output. */
function node(name: string, baseURL: string, env: Record<string, string> = {}): string {
  const file = path.resolve(__dirname, '..', '.data', `snippet-${name}.mjs`);
  fs.writeFileSync(file, snippet(name));
  return execFileSync('node', [file], {
    env: { ...process.env, LANTERN_URL: baseURL, LANTERN_TOKEN: adminToken(), ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

const agent = 'writer';
const hello = [
  { type: 'agent_started', agent },
  { type: 'text_delta', agent, message_id: 'm1', delta: 'Hello ' },
  { type: 'text_delta', agent, message_id: 'm1', delta: 'there' },
  { type: 'agent_response', agent, message_id: 'm1' },
];

test('browser-eventsource: the page follows a workflow, backlog then live, each event once', async ({
  page,
  request,
}) => {
  await signIn(page);
  const id = await createExternal(request, 'EventSource');
  await publish(request, id, hello.slice(0, 2));
  await page.goto('/');
  await page.evaluate(
    ({ code, workflowId }) => {
      const seen: any[] = [];
      (window as any).seen = seen;
      new Function('workflowId', 'show', code)(workflowId, (event: any) => seen.push(event));
    },
    { code: snippet('browser-eventsource'), workflowId: id },
  );
  await expect.poll(() => page.evaluate(() => (window as any).seen.length)).toBe(2);
  await publish(request, id, [...hello.slice(2), { type: 'workflow_status', status: 'completed' }]);
  // The terminal status closes the agent first (one more event): wait for the status itself.
  await expect
    .poll(() => page.evaluate(() => (window as any).seen.some((e: any) => e.status === 'completed')))
    .toBe(true);
  const seen = await page.evaluate(() => (window as any).seen);
  const log = await (await request.get(`/api/workflows/${id}/events`, { headers: asUser() })).json();
  expect(seen).toEqual(log.events);
});

test('agui-http-agent: HttpAgent from the page talks with echo on its own thread', async ({ request, baseURL }) => {
  const printed = node('agui-http-agent', baseURL!);
  expect(printed).toContain('hello from @ag-ui/client');
  const log = await (await request.get('/api/workflows/docs-echo-1/events', { headers: asUser() })).json();
  const inputs = log.events.filter((e: any) => e.type === 'user_input').map((e: any) => e.content);
  expect(inputs).toEqual(['hello from @ag-ui/client']);
});

test('agui-follow: the client follows a finished workflow from its start to its end', async ({
  request,
  baseURL,
}) => {
  const id = await createExternal(request, 'AG-UI follow');
  await publish(request, id, [...hello, { type: 'workflow_status', status: 'completed' }]);
  const printed = node('agui-follow', baseURL!, { WORKFLOW_ID: id }).trim().split('\n');
  expect(printed[0]).toBe('RUN_STARTED');
  expect(printed).toContain('TEXT_MESSAGE_CONTENT');
  expect(printed.slice(-2)).toEqual(['RUN_FINISHED', 'the workflow ended']);
});
