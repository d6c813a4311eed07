// How long a streamed character takes from the server's ack of its delta to the screen, with an
// answer streamed at 500 deltas a second. A measurement, not a test (see playwright.config.ts
// here for the command); it fails only if the text on screen is not exactly what was sent.
//
// An agent (a page of the same browser, so both clocks are the machine's: performance.timeOrigin
// + performance.now()) publishes 2,000 deltas over the agent socket, each with an `id`, and
// notes when each ack arrives. The run page notes, for every change of the answer's text node,
// the time and the text's length, both at the mutation (DOM) and at the next animation frame
// (about when it is painted). Each delta is 8 characters, so delta k is on screen once the
// length reaches 8·(k+1). Every LINE_EVERY-th delta (default 50: paragraphs of 400 characters,
// as an LLM writes them) ends its line with a newline instead of a space; LINE_EVERY=0 streams
// the whole answer as one line.
import { test, expect } from '@playwright/test';
import { adminToken, agentToken, asUser, signIn } from '../tests/session';

const DELTAS = Number(process.env.DELTAS ?? 2000);
const PER_SECOND = Number(process.env.PER_SECOND ?? 500);
const WIDTH = 8;
const LINE_EVERY = Number(process.env.LINE_EVERY ?? 50);
/** Delta k: 8 characters, its number in it (the measurement finds each delta by it). */
const word = (k: number) => `w${String(k).padStart(6, '0')}${LINE_EVERY > 0 && k % LINE_EVERY === LINE_EVERY - 1 ? '\n' : ' '}`;

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

  // When each delta's frame reaches the run page (its socket's `message` event, before the
  // page's own code runs): splits ack → screen into the way there and the page's part.
  await page.addInitScript(() => {
    const w = window as any;
    w.arrived = [] as [number, number][];
    const Native = window.WebSocket;
    w.WebSocket = function (url: string, protocols?: string | string[]) {
      const ws = new Native(url, protocols);
      ws.addEventListener('message', (e: MessageEvent) => {
        const at = performance.timeOrigin + performance.now();
        const m = typeof e.data === 'string' ? /"delta":"w(\d+)/.exec(e.data) : null;
        if (m) w.arrived.push([at, Number(m[1])]);
      });
      return ws;
    } as any;
    w.WebSocket.prototype = Native.prototype;
    Object.assign(w.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  });
  await page.goto(`/w/${id}`);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'live');
  await expect(page.getByTestId('agent-response')).toHaveAttribute('data-state', 'streaming');
  // EXTRA_CSS: a style sheet added to the run page, to try what changes its layout cost.
  if (process.env.EXTRA_CSS) await page.addStyleTag({ content: process.env.EXTRA_CSS });
  await page.evaluate(() => {
    const w = window as any;
    const now = () => performance.timeOrigin + performance.now();
    const span = document.querySelector('[data-testid=agent-response] .stream-text')!;
    w.dom = [] as [number, number][];
    w.frame = [] as [number, number][];
    const length = () => span.textContent?.length ?? 0;
    // Main-thread tasks over 50 ms on the run page while it follows the stream.
    w.longTasks = [] as number[];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) w.longTasks.push(entry.duration);
    }).observe({ type: 'longtask' });
    new MutationObserver(() => {
      const len = length();
      w.dom.push([now(), len]);
      requestAnimationFrame(() => w.frame.push([now(), len]));
    }).observe(span, { characterData: true, childList: true, subtree: true });
  });

  // The agent: a page of the same origin with a socket to /ws/agent/{id}.
  const agent = AGENT_PAGE === 'same' ? await context.newPage() : await (await browser.newContext({ baseURL })).newPage();
  await agent.goto('/healthz');
  // SETTLE_MS: let the browser finish starting up (the agent's process, the WASM's optimizing
  // compile) before the stream begins.
  await page.waitForTimeout(Number(process.env.SETTLE_MS ?? 0));
  // PROFILE=1: a CPU profile of the run page's main thread while it follows the stream.
  const cdp = process.env.PROFILE ? await context.newCDPSession(page) : null;
  if (cdp) {
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
    await cdp.send('Profiler.start');
  }
  // TRACE=1: Chromium's timeline while the page follows the stream, summed by event name
  // (style, layout, paint… — what the CPU profile shows only as "(program)").
  if (process.env.TRACE) await browser.startTracing(page, { categories: ['devtools.timeline'] });
  const { acks, beside } = await agent.evaluate(
    async ({ id, token, viewerToken, deltas, perSecond, lineEvery, withBeside }) => {
      const now = () => performance.timeOrigin + performance.now();
      // BESIDE=1: a viewer socket in the agent's own page, with no page to draw: when the same
      // frames reach a renderer that is otherwise idle. Off by default: its 500 frames a second
      // cost the browser process and the agent's renderer CPU on the cores the run page uses.
      const besideAt: number[] = [];
      const viewer = withBeside
        ? new WebSocket(`ws://${location.host}/ws/workflow/${id}?after=0&token=${encodeURIComponent(viewerToken)}`)
        : null;
      if (viewer) {
        viewer.onmessage = (e) => {
          const m = /"delta":"w(\d+)/.exec(e.data);
          if (m) besideAt[Number(m[1])] = now();
        };
        await new Promise((ok, fail) => {
          viewer.onopen = ok;
          viewer.onerror = fail;
        });
      }
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
      const word = (k: number) => `w${String(k).padStart(6, '0')}${lineEvery > 0 && k % lineEvery === lineEvery - 1 ? '\n' : ' '}`;
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
      viewer?.close();
      return { acks: acked, beside: besideAt };
    },
    { id, token: agentToken(), viewerToken: adminToken(), deltas: DELTAS, perSecond: PER_SECOND, lineEvery: LINE_EVERY, withBeside: !!process.env.BESIDE },
  );

  if (process.env.TRACE) {
    const trace = JSON.parse((await browser.stopTracing()).toString());
    const events = trace.traceEvents as { name: string; ph: string; dur?: number; tid: number; pid: number; args?: any }[];
    const main = events.find((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain' &&
      events.some((x) => x.pid === e.pid && x.name === 'UpdateLayoutTree'));
    const byName = new Map<string, [number, number]>();
    for (const e of events) {
      if (!main || e.pid !== main.pid || e.tid !== main.tid || e.ph !== 'X' || !e.dur) continue;
      const [ms, n] = byName.get(e.name) ?? [0, 0];
      byName.set(e.name, [ms + e.dur / 1000, n + 1]);
    }
    console.log('run page renderer main thread, timeline events (inclusive ms, count):');
    for (const [name, [ms, n]] of [...byName.entries()].sort((a, b) => b[1][0] - a[1][0]).slice(0, 20)) {
      console.log(`  ${ms.toFixed(1).padStart(8)} ms ${String(n).padStart(6)}  ${name}`);
    }
  }
  if (cdp) {
    const { profile } = await cdp.send('Profiler.stop');
    const self = new Map<string, number>();
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const dt = profile.timeDeltas ?? [];
    (profile.samples ?? []).forEach((id, i) => {
      const f = byId.get(id)!.callFrame;
      const name = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber}`;
      self.set(name, (self.get(name) ?? 0) + (dt[i] ?? 0) / 1000);
    });
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    console.log(`run page main thread, ${total.toFixed(0)} ms profiled; self time:`);
    for (const [name, ms] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
      console.log(`  ${ms.toFixed(1).padStart(8)} ms ${((100 * ms) / total).toFixed(1).padStart(5)} %  ${name}`);
    }
  }
  const full = Array.from({ length: DELTAS + 1 }, (_, k) => word(k)).join('');
  await expect
    .poll(() => page.evaluate(() => document.querySelector('[data-testid=agent-response] .stream-text')!.textContent), {
      timeout: 60_000,
    })
    .toBe(full);
  await page.waitForTimeout(100); // the last frame callbacks
  const { dom, frame, longTasks, arrived } = await page.evaluate(() => {
    const w = window as any;
    return { dom: w.dom, frame: w.frame, longTasks: w.longTasks as number[], arrived: w.arrived as [number, number][] };
  });

  // Per delta, in delta order (undefined: never seen on screen).
  const perDelta = (records: [number, number][]) => {
    const out: number[] = [];
    let r = 0;
    for (let k = 1; k <= DELTAS; k++) {
      const end = WIDTH * (k + 1);
      while (r < records.length && records[r][1] < end) r++;
      if (r < records.length) out.push(records[r][0] - acks[k]);
    }
    return out;
  };
  const latencies = (records: [number, number][]) => perDelta(records).sort((a, b) => a - b);
  const report = (name: string, values: number[]) => {
    const line = `${name}: n=${values.length} p50=${percentile(values, 50).toFixed(1)} ms p99=${percentile(values, 99).toFixed(1)} ms max=${values[values.length - 1].toFixed(1)} ms`;
    console.log(line);
    test.info().annotations.push({ type: name, description: line });
  };
  const sent = (acks[DELTAS] - acks[1]) / 1000;
  console.log(`agent page: ${AGENT_PAGE}; a line every ${LINE_EVERY || '(never)'} deltas`);
  console.log(
    `run page main-thread tasks over 50 ms while following: ${longTasks.length}, ` +
      `${longTasks.reduce((a, b) => a + b, 0).toFixed(0)} ms in all, longest ${Math.max(0, ...longTasks).toFixed(0)} ms`,
  );
  console.log(`${DELTAS} deltas acked over ${sent.toFixed(2)} s (${(DELTAS / sent).toFixed(0)}/s); ${dom.length} text-node changes`);
  report('ack → DOM text node', latencies(dom));
  report('ack → next animation frame', latencies(frame));
  const arrival = arrived.filter(([, k]) => k >= 1 && k <= DELTAS).map(([at, k]) => at - acks[k]);
  report('ack → frame at the run page socket', arrival.sort((a, b) => a - b));
  if (process.env.BESIDE) {
    const besideLatency: number[] = [];
    for (let k = 1; k <= DELTAS; k++) if (beside[k]) besideLatency.push(beside[k] - acks[k]);
    report("ack → frame at a viewer socket in the agent's page", besideLatency.sort((a, b) => a - b));
  }
  // Whether the page slows as the answer grows: the DOM latency per quarter of the stream.
  const byDelta = perDelta(dom);
  const quarter = Math.ceil(byDelta.length / 4);
  for (let q = 0; q < 4; q++) {
    const part = byDelta.slice(q * quarter, (q + 1) * quarter).sort((a, b) => a - b);
    if (part.length) report(`ack → DOM, deltas of quarter ${q + 1}`, part);
  }
});
