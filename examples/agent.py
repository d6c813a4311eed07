#!/usr/bin/env python3
"""A small Lantern agent in Python, on the SDK in sdk/python (`pip install ./sdk/python`).

It runs a little research job that publishes every kind of event an agent publishes (status, a
step, an agent that thinks, a tool call with progress, search results, a question to a person,
an answer streamed word by word, a Markdown report), then waits for the user: each message gets
an answer, and "done" completes the workflow. A person's cancel ends it quietly.

    lantern token create --user alice --agent          # the agent's token
    python examples/agent.py --url http://127.0.0.1:3000 --token lantern_... --workflow wf_...

The SDK gives every event an id and sends it again until the server acks it, so a dropped
connection or a server restart loses nothing and repeats nothing (PROTOCOL.md §3), and it closes
the tool and the agent even if the code inside raises.
"""

import argparse
import asyncio

import lantern

SOURCES = [
    {"title": "Lantern protocol", "source": "docs/PROTOCOL.md",
     "snippet": "every event reaches every viewer, in order, exactly once", "score": 0.92},
    {"title": "README", "source": "README.md",
     "snippet": "one Rust binary with a Leptos web UI", "score": 0.71},
]

LENGTH = {
    "type": "object",
    "properties": {"length": {"type": "string", "enum": ["short", "long"]}},
    "required": ["length"],
}


async def words(text: str):
    """The answer as an LLM would stream it: a word at a time."""
    pieces = text.split(" ")
    for n, word in enumerate(pieces):
        yield word if n == len(pieces) - 1 else word + " "
        await asyncio.sleep(0.02)


async def research(run: lantern.Run, question: str) -> None:
    """The multi-step job: plan, search (a tool call with progress), ask, answer, report."""
    async with run.node("research"), run.agent("researcher", task=question) as agent:
        await agent.think(f"Which sources answer: {question}?")
        async with agent.tool("search", {"query": question}) as call:
            await call.progress(0.5, "reading sources")
            call.output = {"hits": len(SOURCES)}
        await run.search_results(question, SOURCES)
        answer = await agent.ask("How long should the answer be?", schema=LENGTH)
        text = f"Found {len(SOURCES)} sources."
        if (answer or {}).get("length") == "long":
            text += " " + " ".join(s["snippet"] + "." for s in SOURCES)
        await agent.stream_text(words(text))
        agent.summary = "two sources"
    await run.report("\n".join([f"# {question}", ""] + [
        f"- {s['snippet']} ([{s['title']}]({s['source']}))" for s in SOURCES]))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--token", required=True, help="an agent token")
    parser.add_argument("--workflow", required=True)
    parser.add_argument("--question", default="How does Lantern stream events?")
    args = parser.parse_args()
    async with lantern.connect(args.url, args.token, args.workflow) as run:
        await research(run, args.question)
        await run.set_status("waiting_input")
        async for message in run.inputs():  # ends if a person cancels
            if message.content.strip().lower() == "done":
                break  # leaving the block completes the workflow
            await run.agent("researcher").say(f"You asked: {message.content}")


if __name__ == "__main__":
    asyncio.run(main())
