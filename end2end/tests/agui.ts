// Reading Lantern's AG-UI streams with the real @ag-ui/client (npm), exactly as its HttpAgent
// reads a run: parse the SSE, check each event against the protocol's schema (enforceEvents),
// join chunks, and verify the order of the whole stream (verifyEvents). Nothing hand-written
// judges validity here.
import {
  BaseEvent,
  enforceEvents,
  runHttpRequest,
  transformChunks,
  transformHttpEventStream,
  verifyEvents,
} from '@ag-ui/client';

export interface Followed {
  events: BaseEvent[];
  /** What the client rejected the stream for, if it did. */
  error?: Error;
  /** What the client warned about (unknown fields stripped, events dropped…). */
  warnings: string[];
}

/** Follow an AG-UI stream at `url` until it ends (or the client rejects it). */
export function followAgui(url: string, headers: Record<string, string>): Promise<Followed> {
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    warnings.push(args.map(String).join(' '));
  };
  const events: BaseEvent[] = [];
  const http$ = runHttpRequest(() => fetch(url, { headers: { Accept: 'text/event-stream', ...headers } }));
  const events$ = verifyEvents()(transformChunks()(enforceEvents()(transformHttpEventStream(http$))));
  return new Promise((resolve) => {
    const done = (error?: Error) => {
      console.warn = warn;
      resolve({ events, error, warnings });
    };
    events$.subscribe({ next: (e) => events.push(e), error: (e) => done(e), complete: () => done() });
  });
}

/** The types of `events`, in order. */
export const types = (events: BaseEvent[]) => events.map((e) => e.type as string);

/** The text of message `messageId`: its TEXT_MESSAGE_CONTENT deltas, joined. */
export function textOf(events: BaseEvent[], messageId: string): string {
  return events
    .filter((e: any) => e.type === 'TEXT_MESSAGE_CONTENT' && e.messageId === messageId)
    .map((e: any) => e.delta)
    .join('');
}
