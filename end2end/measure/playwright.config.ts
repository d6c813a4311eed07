// Measurements, not tests: run on demand, never in the normal Playwright run (whose testDir
// is ./tests). Same server and browser as the tests:
//   cd end2end && npx playwright test --config measure/playwright.config.ts
import { defineConfig } from '@playwright/test';
import base from '../playwright.config';

export default defineConfig({
  ...base,
  testDir: '.',
  timeout: 180_000,
});
