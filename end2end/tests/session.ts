// Signing in for the tests: the one-time login link the server printed on its first start
// (kept in .data/server.out by serve.sh), fresh login links and tokens minted with the binary
// (`lantern token login-link`, `lantern token create`) as an operator would.
import { APIRequestContext, expect, Page } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const dataDir = path.resolve(__dirname, '..', '.data');
const lantern = path.resolve(__dirname, '..', '..', 'target', 'release', 'lantern');

/** `lantern ARGS --data-dir <the test server's>`: its last line of output. */
function cli(...args: string[]): string {
  return execFileSync(lantern, [...args, '--data-dir', dataDir], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop()!;
}

/** The `/login?code=…` path the server printed on its first start (without scheme and host).
 *  It works once. */
export function printedLoginPath(): string {
  const printed = fs.readFileSync(path.join(dataDir, 'server.out'), 'utf8');
  const url = printed.match(/http:\/\/\S+\/login\?code=\S+/);
  expect(url, `a login URL in: ${printed}`).not.toBeNull();
  return new URL(url![0]).pathname + new URL(url![0]).search;
}

/** A fresh one-time login link's path, as `lantern token login-link` makes it. */
export function loginPath(user = 'admin'): string {
  const url = new URL(cli('token', 'login-link', '--user', user));
  return url.pathname + url.search;
}

let user: string | undefined;
let agent: string | undefined;

/** A user token of admin's (minted once per test worker). */
export function adminToken(): string {
  user ??= cli('token', 'create', '--user', 'admin');
  return user;
}

/** An agent token of admin's (minted once per test worker). */
export function agentToken(): string {
  agent ??= cli('token', 'create', '--user', 'admin', '--agent');
  return agent;
}

export const asUser = () => ({ Authorization: `Bearer ${adminToken()}` });
export const asAgent = () => ({ Authorization: `Bearer ${agentToken()}` });

/** Sign the page's browser context in with a fresh login link. */
export async function signIn(page: Page): Promise<void> {
  await page.goto(loginPath());
  await expect(page).toHaveURL(/\/$/);
}

/** Start an echo workflow from the home page (a plain form: the server answers with a redirect
 *  to the run page) and wait for its run page's socket to be live; returns the workflow id. */
export async function startEcho(page: Page): Promise<string> {
  await page.goto('/');
  await page.getByTestId('start-echo').click();
  await expect(page).toHaveURL(/\/w\/wf_[0-9A-Z]+$/);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  return page.url().split('/w/')[1];
}

/** Record every `data-state` the connection indicator takes from now on (read them back with
 *  {@link seenConnectionStates}), so a test can prove a state was passed through, however briefly. */
export async function recordConnectionStates(page: Page): Promise<void> {
  await page.evaluate(() => {
    const el = document.querySelector('[data-testid=connection]')!;
    (window as any).seenStates = [];
    new MutationObserver(() => (window as any).seenStates.push(el.getAttribute('data-state'))).observe(el, {
      attributes: true,
      attributeFilter: ['data-state'],
    });
  });
}

/** The connection states recorded since {@link recordConnectionStates}, in order. */
export async function seenConnectionStates(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as any).seenStates);
}

/** A new `external` workflow of admin's; its id. */
export async function createExternal(request: APIRequestContext, title: string): Promise<string> {
  const created = await request.post('/api/workflows', { headers: asUser(), data: { kind: 'external', title } });
  expect(created.status()).toBe(201);
  return (await created.json()).id;
}

/** Publish events as admin's agent over HTTP ingest; their seqs. */
export async function publish(request: APIRequestContext, id: string, events: object | object[]): Promise<number[]> {
  const response = await request.post(`/api/workflows/${id}/events`, { headers: asAgent(), data: events });
  expect(response.status(), await response.text()).toBe(200);
  return (await response.json()).seqs;
}
