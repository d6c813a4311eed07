// A scripted OpenAI-compatible model server for the Playwright tests (CI has no model): real
// HTTP, real `text/event-stream` chunks in OpenAI's chat-completions format. It answers from
// the conversation it is sent:
//   - a person's message that mentions "docs": a call of search_docs (arguments in two chunks);
//   - after a tool's result: "Found it: …", streamed slowly enough to watch;
//   - anything else: "You asked: <message> (message N)", N counting the person's messages.
// Usage: node scripted_llm.mjs PORT   (GET /health answers ok)
import http from 'node:http';

const port = Number(process.argv[2] ?? 3102);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function chunk(delta, finish = null) {
  return { id: 'chatcmpl-1', object: 'chat.completion.chunk', model: 'scripted', choices: [{ index: 0, delta, finish_reason: finish }] };
}

async function answer(body, res) {
  const messages = body.messages ?? [];
  const last = messages[messages.length - 1] ?? {};
  const users = messages.filter((m) => m.role === 'user');
  const send = (data) => res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  if (last.role === 'user' && /docs/.test(last.content) && body.tools) {
    const args = JSON.stringify({ query: 'reconnect' });
    const half = Math.floor(args.length / 2);
    send(chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'search_docs', arguments: args.slice(0, half) } }] }));
    send(chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(half) } }] }));
    send(chunk({}, 'tool_calls'));
  } else {
    const text = last.role === 'tool'
      ? 'Found it: viewers resume with after, and nothing is lost or repeated.'
      : `You asked: ${last.content} (message ${users.length})`;
    send(chunk({ role: 'assistant', reasoning_content: 'Reading the conversation.' }));
    for (const word of text.split(/(?<= )/)) {
      send(chunk({ content: word }));
      await sleep(last.role === 'tool' ? 150 : 20);
    }
    send(chunk({}, 'stop'));
    send({ id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 30, completion_tokens: 12, total_tokens: 42 } });
  }
  send('[DONE]');
  res.end();
}

http
  .createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/health') return res.end('ok');
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ error: { message: `no route ${req.url}` } }));
    }
    let raw = '';
    req.on('data', (part) => (raw += part));
    req.on('end', () => answer(JSON.parse(raw), res).catch(() => res.end()));
  })
  .listen(port, '127.0.0.1');
