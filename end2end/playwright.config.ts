import { defineConfig } from '@playwright/test';
import * as path from 'path';

// The release build of Lantern (scripts/test.sh builds it first), started by serve.sh on an
// empty data dir (a first start: it prints the admin's login URL, which the tests read), on its
// own port, with the test hooks on (POST /api/test/disconnect drops every subscriber socket)
// and a short heartbeat so a dead connection is noticed quickly.
const port = Number(process.env.LANTERN_E2E_PORT ?? 3100);
const baseURL = `http://127.0.0.1:${port}`;
const agentPort = Number(process.env.LANTERN_E2E_AGENT_PORT ?? 3101);
const llmPort = Number(process.env.LANTERN_E2E_LLM_PORT ?? 3102);

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: process.env.CI ? 'list' : [['list']],
  use: {
    baseURL,
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: [
    // A real AG-UI agent (examples/agui_agent.py: Pydantic AI, scripted model) that Lantern
    // offers as the workflow kind `helper`, in the examples' Python environment.
    {
      command: `bash -c 'exec "$(bash ../scripts/py-venv.sh)" ../examples/agui_agent.py ${agentPort}'`,
      cwd: __dirname,
      url: `http://127.0.0.1:${agentPort}/health`,
      reuseExistingServer: false,
      timeout: 180_000,
    },
    // A scripted OpenAI-compatible model server for the `assistant` (CI has no model).
    {
      command: `node ${__dirname}/scripted_llm.mjs ${llmPort}`,
      url: `http://127.0.0.1:${llmPort}/health`,
      reuseExistingServer: false,
      timeout: 30_000,
    },
    // --conn-attempts-per-ip: the AG-UI tests resume a workflow's stream from each of its
    // events in turn, a connection each, far faster than any browser reconnects.
    {
      command: `bash ${__dirname}/serve.sh --addr 127.0.0.1:${port} --heartbeat-ms 2000 --conn-attempts-per-ip 1000 --agui-agent helper=http://127.0.0.1:${agentPort}/ --llm-base-url http://127.0.0.1:${llmPort}/v1 --llm-model scripted --llm-approve-tools search_docs`,
      url: `${baseURL}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      env: {
        LANTERN_TEST_HOOKS: '1',
        LANTERN_DATA_DIR: `${__dirname}/.data`,
        RUST_LOG: 'warn',
      },
    },
  ],
});
