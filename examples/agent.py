#!/usr/bin/env python3
"""A small Lantern agent in Python, with nothing but the `websockets` package.

It connects to a workflow's agent socket, runs a little research job that publishes every kind
of event an agent publishes (status, node updates, an agent that thinks, a tool call with
progress, search results, a question to a person, an answer streamed word by word, a Markdown
report), then waits for the user: each message gets an answer, and "done" completes the
workflow. A person's cancel reaches it as the terminal `workflow_status`, and it stops.

    pip install websockets
    lantern token create --user alice --agent          # the agent's token
    python examples/agent.py --url http://127.0.0.1:3000 --token lantern_... --workflow wf_...

Every event carries an `id` and is sent again until the server acks it, so a dropped connection
loses nothing and duplicates nothing: the server recognises a retried `id` (PROTOCOL.md §3).
"""

import argparse
import asyncio
import json
import time
import uuid

import websockets


class Lantern:
    """One workflow's agent socket: publish events (waiting for their acks), receive input."""

    def __init__(self, url: str, token: str, workflow: str):
        base = url.rstrip("/").replace("http://", "ws://").replace("https://", "wss://")
        self.uri = f"{base}/ws/agent/{workflow}?token={token}"
        self.ws = None
        self.inputs: asyncio.Queue = asyncio.Queue()
        self.acks: dict = {}
        self.answers: dict = {}  # interrupt_id -> future of its interrupt_resolved
        self.ended: asyncio.Future = None

    async def __aenter__(self):
        self.ended = asyncio.get_running_loop().create_future()
        self.ws = await websockets.connect(self.uri)
        self.reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc):
        self.reader.cancel()
        await self.ws.close()

    async def _read(self):
        async for text in self.ws:
            frame = json.loads(text)
            kind = frame.get("type")
            if kind == "ack":
                self.acks.pop(frame["id"]).set_result(frame["seq"])
            elif kind == "error":
                waiter = self.acks.pop(frame.get("id"), None)
                error = RuntimeError(f"{frame['code']}: {frame['message']}")
                if waiter:
                    waiter.set_exception(error)
                else:
                    raise error
            elif kind == "user_input":
                await self.inputs.put(frame)
            elif kind == "interrupt_resolved":
                waiter = self.answers.pop(frame["interrupt_id"], None)
                if waiter and not waiter.done():
                    waiter.set_result(frame)
            elif kind == "workflow_status" and not self.ended.done():
                self.ended.set_result(frame["status"])  # a person cancelled

    async def publish(self, event: dict) -> int:
        """Append one event; returns its seq once the server has stored it."""
        event = {**event, "id": str(uuid.uuid4())}
        acked = asyncio.get_running_loop().create_future()
        self.acks[event["id"]] = acked
        await self.ws.send(json.dumps(event))
        return await asyncio.wait_for(acked, timeout=30)

    async def stream(self, agent: str, text: str, pause: float = 0.02) -> None:
        """Stream `text` word by word as `text_delta`s, then close the message; the server fills
        the close's `content` with the words joined (PROTOCOL.md §1)."""
        message_id = str(uuid.uuid4())
        words = text.split(" ")
        for n, word in enumerate(words):
            piece = word if n == len(words) - 1 else word + " "
            if piece:
                await self.publish({"type": "text_delta", "agent": agent,
                                    "message_id": message_id, "delta": piece})
            await asyncio.sleep(pause)
        await self.publish({"type": "agent_response", "agent": agent, "message_id": message_id})

    async def ask(self, agent: str, message: str, schema: dict) -> dict:
        """Ask a person (an `interrupt`) and wait for the answer's `interrupt_resolved`."""
        interrupt_id = str(uuid.uuid4())
        answered = asyncio.get_running_loop().create_future()
        self.answers[interrupt_id] = answered
        await self.publish({"type": "interrupt", "agent": agent, "interrupt_id": interrupt_id,
                            "reason": "input", "message": message, "response_schema": schema})
        await self.publish({"type": "workflow_status", "status": "waiting_input"})
        answer = await answered
        await self.publish({"type": "workflow_status", "status": "running"})
        return answer


async def research(lantern: Lantern, question: str):
    """The multi-step job: plan, search (a tool call with progress), answer, report."""
    agent = "researcher"
    await lantern.publish({"type": "node_update", "node": "research", "status": "executing"})
    await lantern.publish({"type": "agent_started", "agent": agent, "task": question})
    await lantern.publish({"type": "agent_thinking", "agent": agent,
                           "content": f"Which sources answer: {question}?"})
    started = time.monotonic()
    call = {"agent": agent, "tool": "search", "call_id": str(uuid.uuid4())}
    await lantern.publish({"type": "tool_executing", **call, "input": {"query": question}})
    await lantern.publish({"type": "tool_update", **call, "message": "reading sources", "progress": 0.5})
    results = [
        {"title": "Lantern protocol", "source": "docs/PROTOCOL.md",
         "snippet": "every event reaches every viewer, in order, exactly once", "score": 0.92},
        {"title": "README", "source": "README.md",
         "snippet": "one Rust binary with a Leptos web UI", "score": 0.71},
    ]
    took = int((time.monotonic() - started) * 1000)
    await lantern.publish({"type": "tool_completed", **call, "ok": True,
                           "output": {"hits": len(results)}, "duration_ms": took})
    await lantern.publish({"type": "search_results", "query": question, "results": results})
    answer = await lantern.ask(agent, "How long should the answer be?", {
        "type": "object",
        "properties": {"length": {"type": "string", "enum": ["short", "long"]}},
        "required": ["length"],
    })
    length = (answer.get("payload") or {}).get("length", "short")
    text = f"Found {len(results)} sources."
    if length == "long":
        text += " " + " ".join(r["snippet"] + "." for r in results)
    await lantern.stream(agent, text)
    await lantern.publish({"type": "agent_completed", "agent": agent, "ok": True,
                           "summary": "two sources"})
    await lantern.publish({"type": "node_update", "node": "research", "status": "completed"})
    report = "\n".join([f"# {question}", ""] +
                       [f"- {r['snippet']} ([{r['title']}]({r['source']}))" for r in results])
    await lantern.publish({"type": "final_report", "content": report})


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--token", required=True, help="an agent token")
    parser.add_argument("--workflow", required=True)
    parser.add_argument("--question", default="How does Lantern stream events?")
    args = parser.parse_args()
    async with Lantern(args.url, args.token, args.workflow) as lantern:
        await lantern.publish({"type": "workflow_status", "status": "running"})
        await research(lantern, args.question)
        await lantern.publish({"type": "workflow_status", "status": "waiting_input"})
        while True:
            said = asyncio.ensure_future(lantern.inputs.get())
            await asyncio.wait([said, lantern.ended], return_when=asyncio.FIRST_COMPLETED)
            if lantern.ended.done():
                said.cancel()
                return  # cancelled by a person: nothing more to do
            said = said.result()["content"]
            if said.strip().lower() == "done":
                await lantern.publish({"type": "workflow_status", "status": "completed"})
                return
            await lantern.publish({"type": "agent_response", "agent": "researcher",
                                   "content": f"You asked: {said}"})


if __name__ == "__main__":
    asyncio.run(main())
