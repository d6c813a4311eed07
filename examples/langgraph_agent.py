#!/usr/bin/env python3
"""A LangGraph graph whose progress streams to Lantern, live, through the SDK's adapter.

The graph is the search flow users know — analyze → search → synthesize → report — as plain
Python nodes (no LLM: they look words up in a few built-in notes). `lantern.langgraph.run`
shows each node as a step (`node_update` executing → completed, or failed with the error); the
nodes also publish what they do as agent and tool events through the SDK.

    pip install "./sdk/python[langgraph]"
    python examples/langgraph_agent.py --url http://127.0.0.1:3000 --token lantern_... \
        --workflow wf_... --question "how do reconnects work"
"""

import argparse
import asyncio
from typing import TypedDict

from langgraph.graph import END, START, StateGraph

import lantern
import lantern.langgraph

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


def build(run: lantern.Run):
    async def analyze(state: State) -> State:
        terms = [w.strip("?.,!").lower() for w in state["question"].split() if len(w) > 3]
        async with run.agent("analyst", task=state["question"]) as agent:
            await agent.think(f"Looking for: {', '.join(terms)}")
        return {"terms": terms}

    async def search(state: State) -> State:
        async with run.agent("searcher") as agent:
            async with agent.tool("notes_search", {"terms": state["terms"]}) as call:
                hits = [
                    {"title": key, "source": f"notes/{key}", "snippet": text, "score": 1.0}
                    for key, text in NOTES.items()
                    if any(key in term or term in key for term in state["terms"])
                ]
                call.output = {"hits": len(hits)}
            await run.search_results(state["question"], hits)
        return {"hits": hits}

    async def synthesize(state: State) -> State:
        answer = " ".join(hit["snippet"] for hit in state["hits"]) or "No note matches."
        async with run.agent("writer") as agent:
            await agent.say(answer)
        return {"answer": answer}

    async def report(state: State) -> State:
        sources = "\n".join(f"- [{h['title']}]({h['source']})" for h in state["hits"])
        await run.report(f"# {state['question']}\n\n{state['answer']}\n\n{sources}")
        return {}

    graph = StateGraph(State)
    steps = [("analyze", analyze), ("search", search), ("synthesize", synthesize),
             ("report", report)]
    for name, node in steps:
        graph.add_node(name, node)
    graph.add_edge(START, steps[0][0])
    for (before, _), (after, _) in zip(steps, steps[1:]):
        graph.add_edge(before, after)
    graph.add_edge(steps[-1][0], END)
    return graph.compile()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--token", required=True, help="an agent token")
    parser.add_argument("--workflow", required=True)
    parser.add_argument("--question", default="How do reconnect and heartbeat work?")
    args = parser.parse_args()
    async with lantern.connect(args.url, args.token, args.workflow) as run:
        await lantern.langgraph.run(build(run), {"question": args.question}, run)


if __name__ == "__main__":
    asyncio.run(main())
