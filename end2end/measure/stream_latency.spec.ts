// How long a streamed character takes from the server's ack of its delta to the screen, with an
// answer streamed at 500 deltas a second. A measurement, not a test (see playwright.config.ts
// here for the command); it fails only if the text on screen is not exactly what was sent.
//
// An agent (a page of the same browser, so both clocks are the machine's: performance.timeOrigin
// + performance.now()) publishes 2,000 deltas over the agent socket, each with an `id`, and
// notes when each ack arrives. The run page notes, for every change of the answer's text node,
// the time and the text's length, both at the mutation (DOM) and at the next animation frame
// (about when it is painted). Each delta is 8 characters, so delta k is on screen once the
// length reaches 8·(k+1).
import { test, expect } from '@playwright/test';
import { agentToken, asUser, signIn } from '../tests/session';

const DELTAS = Number(process.env.DELTAS ?? 2000);
const PER_SECOND = Number(process.env.PER_SECOND ?? 500);
const WIDTH = 8;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// Where the agent page runs: `separate` (default) — its own browser context, so its own
// renderer process, as a real agent would be another machine; `same` — a second tab of the run
// page's context, which Chromium may put in the run page's process (sharing its main thread).
const AGENT_PAGE = process.env.AGENT_PAGE ?? 'separate';

test('delta acked → character on screen, at 500 deltas/s', async ({ page, context, browser, request, baseURL }) => {
  await signIn(page);
  const created = await request.post('/api/workflows', {
    headers: asUser(),
    data: { kind: 'external', title: 'Stream latency' },
  });
  const id = (await created.json()).id;
  const word = (k: number) => `w${String(k).padStart(6, '0')} `;
  expect(word(0)).toHaveLength(WIDTH);
  const opened = await request.post(`/api/workflows/${id}/events`, {
    headers: { Authorization: `Bearer ${agentToken()}` },
    data: [
      { type: 'workflow_status', status: 'running' },
      { type: 'agent_started', agent: 'fast' },
      { type: 'text_delta', agent: 'fast', message_id: 'm1', delta: word(0) },
    ],
  });
  expect(opened.ok()).toBeTruthy();

  await page.goto(`/w/${id}`);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await expect(page.getByTestId('agent-response')).toHaveAttribute('data-state', 'streaming');
  await page.evaluate(() => {
    const w = window as any;
    const now = () => performance.timeOrigin + performance.now();
    const span = document.querySelector('[data-testid=agent-response] .stream-text')!;
    w.dom = [] as [number, number][];
    w.frame = [] as [number, number][];
    const length = () => (span.firstChild as Text | null)?.length ?? 0;
    new MutationObserver(() => {
      const len = length();
      w.dom.push([now(), len]);
      requestAnimationFrame(() => w.frame.push([now(), len]));
    }).observe(span, { characterData: true, childList: true, subtree: true });
  });

  // The agent: a page of the same origin with a socket to /ws/agent/{id}.
  const agent = AGENT_PAGE === 'same' ? await context.newPage() : await (await browser.newContext({ baseURL })).newPage();
  await agent.goto('/healthz');
  const acks: number[] = await agent.evaluate(
    async ({ id, token, deltas, perSecond }) => {
      const now = () => performance.timeOrigin + performance.now();
      const ws = new WebSocket(`ws://${location.host}/ws/agent/${id}?token=${encodeURIComponent(token)}`);
      await new Promise((ok, fail) => {
        ws.onopen = ok;
        ws.onerror = fail;
      });
      const acked: number[] = new Array(deltas + 1).fill(0);
      let left = deltas;
      const done = new Promise<void>((resolve) => {
        ws.onmessage = (e) => {
          const m = JSON.parse(e.data);
          if (m.type === 'ack' && m.id?.startsWith('d')) {
            acked[Number(m.id.slice(1))] = now();
            if (--left === 0) resolve();
          } else if (m.type === 'error') {
            console.error(JSON.stringify(m));
          }
        };
      });
      const word = (k: number) => `w${String(k).padStart(6, '0')} `;
      const start = now();
      let k = 1;
      while (k <= deltas) {
        const due = Math.min(deltas, Math.floor(((now() - start) / 1000) * perSecond) + 1);
        for (; k <= due; k++) {
          ws.send(JSON.stringify({ id: `d${k}`, type: 'text_delta', agent: 'fast', message_id: 'm1', delta: word(k) }));
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      await done;
      return acked;
    },
    { id, token: agentToken(), deltas: DELTAS, perSecond: PER_SECOND },
  );

  const full = Array.from({ length: DELTAS + 1 }, (_, k) => word(k)).join('');
  await expect
    .poll(() => page.evaluate(() => document.querySelector('[data-testid=agent-response] .stream-text')!.textContent), {
      timeout: 60_000,
    })
    .toBe(full);
  await page.waitForTimeout(100); // the last frame callbacks
  const { dom, frame } = await page.evaluate(() => ({ dom: (window as any).dom, frame: (window as any).frame }));

  const latencies = (records: [number, number][]) => {
    const out: number[] = [];
    let r = 0;
    for (let k = 1; k <= DELTAS; k++) {
      const end = WIDTH * (k + 1);
      while (r < records.length && records[r][1] < end) r++;
      if (r < records.length) out.push(records[r][0] - acks[k]);
    }
    return out.sort((a, b) => a - b);
  };
  const report = (name: string, values: number[]) => {
    const line = `${name}: n=${values.length} p50=${percentile(values, 50).toFixed(1)} ms p99=${percentile(values, 99).toFixed(1)} ms max=${values[values.length - 1].toFixed(1)} ms`;
    console.log(line);
    test.info().annotations.push({ type: name, description: line });
  };
  const sent = (acks[DELTAS] - acks[1]) / 1000;
  console.log(`agent page: ${AGENT_PAGE}`);
  console.log(`${DELTAS} deltas acked over ${sent.toFixed(2)} s (${(DELTAS / sent).toFixed(0)}/s); ${dom.length} text-node changes`);
  report('ack → DOM text node', latencies(dom));
  report('ack → next animation frame', latencies(frame));
});
