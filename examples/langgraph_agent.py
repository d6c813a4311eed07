#!/usr/bin/env python3
"""A LangGraph graph whose progress streams to Lantern, live.

The graph is the search flow users know — analyze → search → synthesize → report — as plain
Python nodes (no LLM: they look words up in a few built-in notes). Each node is wrapped so that
Lantern shows it as a step (`node_update` executing → completed, or failed with the error), and
the nodes publish what they do as agent and tool events. It uses the agent socket through the
small client in `agent.py`.

    pip install websockets langgraph
    python examples/langgraph_agent.py --url http://127.0.0.1:3000 --token lantern_... \
        --workflow wf_... --question "how do reconnects work"
"""

import argparse
import asyncio
import time
import uuid
from typing import TypedDict

from langgraph.graph import END, START, StateGraph

from agent import Lantern

NOTES = {
    "reconnect": "A client resumes with after = the last seq it holds; nothing is lost or repeated.",
    "heartbeat": "The server pings every heartbeat_ms and drops a peer that misses two.",
    "token": "Tokens are stored hashed; revoking one closes its sockets with 4001.",
    "agent": "An agent publishes over /ws/agent/{id}; a retried id is acked with its first seq.",
}


class State(TypedDict, total=False):
    question: str
    terms: list
    hits: list
    answer: str


def traced(lantern: Lantern, name: str, node):
    """Run `node`, showing it in Lantern as a step of the graph."""

    async def run(state: State) -> State:
        await lantern.publish({"type": "node_update", "node": name, "status": "executing"})
        try:
            update = await node(lantern, state)
        except Exception as error:
            await lantern.publish({"type": "node_update", "node": name, "status": "failed",
                                   "detail": str(error)})
            raise
        await lantern.publish({"type": "node_update", "node": name, "status": "completed"})
        return update

    return run


async def analyze(lantern: Lantern, state: State) -> State:
    terms = [w.strip("?.,!").lower() for w in state["question"].split() if len(w) > 3]
    await lantern.publish({"type": "agent_started", "agent": "analyst", "task": state["question"]})
    await lantern.publish({"type": "agent_thinking", "agent": "analyst",
                           "content": f"Looking for: {', '.join(terms)}"})
    await lantern.publish({"type": "agent_completed", "agent": "analyst", "ok": True})
    return {"terms": terms}


async def search(lantern: Lantern, state: State) -> State:
    call = {"agent": "searcher", "tool": "notes_search", "call_id": str(uuid.uuid4())}
    await lantern.publish({"type": "agent_started", "agent": "searcher"})
    await lantern.publish({"type": "tool_executing", **call, "input": {"terms": state["terms"]}})
    started = time.monotonic()
    hits = [
        {"title": key, "source": f"notes/{key}", "snippet": text, "score": 1.0}
        for key, text in NOTES.items()
        if any(key in term or term in key for term in state["terms"])
    ]
    took = int((time.monotonic() - started) * 1000)
    await lantern.publish({"type": "tool_completed", **call, "ok": True,
                           "output": {"hits": len(hits)}, "duration_ms": took})
    await lantern.publish({"type": "search_results", "query": state["question"], "results": hits})
    await lantern.publish({"type": "agent_completed", "agent": "searcher", "ok": True})
    return {"hits": hits}


async def synthesize(lantern: Lantern, state: State) -> State:
    answer = " ".join(hit["snippet"] for hit in state["hits"]) or "No note matches."
    await lantern.publish({"type": "agent_started", "agent": "writer"})
    await lantern.publish({"type": "agent_response", "agent": "writer", "content": answer})
    await lantern.publish({"type": "agent_completed", "agent": "writer", "ok": True})
    return {"answer": answer}


async def report(lantern: Lantern, state: State) -> State:
    sources = "\n".join(f"- [{h['title']}]({h['source']})" for h in state["hits"])
    await lantern.publish({"type": "final_report",
                           "content": f"# {state['question']}\n\n{state['answer']}\n\n{sources}"})
    return {}


def build(lantern: Lantern):
    graph = StateGraph(State)
    steps = [("analyze", analyze), ("search", search), ("synthesize", synthesize),
             ("report", report)]
    for name, node in steps:
        graph.add_node(name, traced(lantern, name, node))
    graph.add_edge(START, steps[0][0])
    for (before, _), (after, _) in zip(steps, steps[1:]):
        graph.add_edge(before, after)
    graph.add_edge(steps[-1][0], END)
    return graph.compile()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--token", required=True, help="an agent token")
    parser.add_argument("--workflow", required=True)
    parser.add_argument("--question", default="How do reconnect and heartbeat work?")
    args = parser.parse_args()
    async with Lantern(args.url, args.token, args.workflow) as lantern:
        await lantern.publish({"type": "workflow_status", "status": "running"})
        try:
            await build(lantern).ainvoke({"question": args.question})
        except Exception as error:
            await lantern.publish({"type": "workflow_status", "status": "failed",
                                   "detail": str(error)})
            raise
        await lantern.publish({"type": "workflow_status", "status": "completed"})


if __name__ == "__main__":
    asyncio.run(main())
