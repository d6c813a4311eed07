import { defineConfig } from '@playwright/test';
import * as path from 'path';

// The release build of Lantern (scripts/test.sh builds it first), started by serve.sh on an
// empty data dir (a first start: it prints the admin's login URL, which the tests read), on its
// own port, with the test hooks on (POST /api/test/disconnect drops every subscriber socket)
// and a short heartbeat so a dead connection is noticed quickly.
const port = Number(process.env.LANTERN_E2E_PORT ?? 3100);
const baseURL = `http://127.0.0.1:${port}`;

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
  webServer: {
    command: `bash ${__dirname}/serve.sh --addr 127.0.0.1:${port} --heartbeat-ms 2000`,
    url: `${baseURL}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    env: {
      LANTERN_TEST_HOOKS: '1',
      LANTERN_DATA_DIR: `${__dirname}/.data`,
      RUST_LOG: 'warn',
    },
  },
});
