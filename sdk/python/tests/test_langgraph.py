"""The LangGraph adapter against a real server: a small graph with a scripted chat model (from
langchain_core, no network), a tool node and an `interrupt()`, shown in Lantern as it runs."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Annotated, Any, Dict, Iterator, List, Tuple, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from langgraph.types import interrupt

import lantern
import lantern.langgraph
from conftest import Server, Viewer, check_pairs, run_async


class ScriptedChatModel(GenericFakeChatModel):
    """Answers with the scripted messages in turn, streamed as a real model streams: its
    reasoning (`reasoning_content`) first, then its text word by word, then its tool calls."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> "ScriptedChatModel":
        return self

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        message = next(self.messages)
        assert isinstance(message, AIMessage)
        pieces: List[AIMessageChunk] = []
        reasoning = message.additional_kwargs.get("reasoning_content")
        if reasoning:
            pieces.append(AIMessageChunk(content="",
                                         additional_kwargs={"reasoning_content": reasoning}))
        for word in re.split(r"(\s)", str(message.content)):
            if word:
                pieces.append(AIMessageChunk(content=word))
        for index, call in enumerate(message.tool_calls):
            pieces.append(AIMessageChunk(content="", tool_call_chunks=[
                {"name": call["name"], "args": json.dumps(call["args"]), "id": call["id"],
                 "index": index}]))
        for piece in pieces:
            chunk = ChatGenerationChunk(message=piece)
            if run_manager:
                run_manager.on_llm_new_token(str(piece.content), chunk=chunk)
            yield chunk


class State(TypedDict):
    messages: Annotated[list, add_messages]


@tool
def weather(city: str) -> str:
    """Today's weather in a city."""
    return f"sunny in {city}"


@tool
def broken_weather(city: str) -> str:
    """A weather service that is down."""
    raise RuntimeError(f"no station near {city}")


def weather_graph(model: ScriptedChatModel, tools: List[Any], checkpointer: Any = None,
                  handle_tool_errors: bool = True) -> Any:
    """agent → tools → agent → approve: the model calls a tool, answers, and a person approves
    sending the answer on."""

    async def agent(state: State) -> Dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    def approve(state: State) -> Dict[str, Any]:
        answer = interrupt({"message": "Send this forecast to the team?",
                            "reason": "tool_approval"})
        return {"messages": [HumanMessage("sent" if answer["approved"] else "kept")]}

    def after_agent(state: State) -> str:
        return "tools" if state["messages"][-1].tool_calls else "approve"

    graph = StateGraph(State)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(tools, handle_tool_errors=handle_tool_errors))
    graph.add_node("approve", approve)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", after_agent, ["tools", "approve"])
    graph.add_edge("tools", "agent")
    graph.add_edge("approve", END)
    return graph.compile(checkpointer=checkpointer)


def scripted(city_call: str) -> ScriptedChatModel:
    return ScriptedChatModel(messages=iter([
        AIMessage("Let me look that up.",
                  tool_calls=[{"name": city_call, "args": {"city": "Oslo"}, "id": "call_1"}],
                  additional_kwargs={"reasoning_content": "The user wants Oslo's weather."}),
        AIMessage("It is sunny in Oslo today."),
    ]))


async def run_weather_graph(server: Server, answer: Any) -> Tuple[str, Dict[str, Any]]:
    """Run the weather graph on a new workflow through the adapter; when its question shows up
    at a viewer, answer it with `answer`. The workflow and the graph's final state."""
    workflow = await server.create()
    graph = weather_graph(scripted("weather"), [weather], InMemorySaver())
    async with Viewer(server, workflow) as viewer:
        async with lantern.connect(server.url, server.agent_token, workflow) as run:
            running = asyncio.create_task(lantern.langgraph.run(
                graph, {"messages": [HumanMessage("Weather in Oslo?")]}, run))
            question = await viewer.until(lambda e: e["type"] == "interrupt")
            # The graph stopped at its interrupt and waits for the person.
            assert not running.done()
            await server.answer(workflow, question["interrupt_id"], answer)
            state = await running
    return workflow, state


def kinds(events: List[Dict[str, Any]], *wanted: str) -> List[Dict[str, Any]]:
    return [e for e in events if e["type"] in wanted]


@run_async
async def test_a_graph_shows_its_nodes_tokens_tools_and_question_and_resumes_on_the_answer(
        server: Server):
    workflow, state = await run_weather_graph(server, {"approved": True})
    assert state["messages"][-1].content == "sent"

    log = await server.log(workflow)
    check_pairs(log)
    steps = [(e["node"], e["status"]) for e in kinds(log, "node_update")]
    assert steps == [("agent", "executing"), ("agent", "completed"),
                     ("tools", "executing"), ("tools", "completed"),
                     ("agent", "executing"), ("agent", "completed"),
                     ("approve", "executing"), ("approve", "completed")]

    # Each model call: its tokens as deltas, closed by one response holding them all.
    answers = kinds(log, "agent_response")
    assert [a["content"] for a in answers] == ["Let me look that up.",
                                               "It is sunny in Oslo today."]
    for answer in answers:
        pieces = [e["delta"] for e in kinds(log, "text_delta")
                  if e["message_id"] == answer["message_id"]]
        assert len(pieces) > 1 and "".join(pieces) == answer["content"]
    thought = kinds(log, "agent_thinking")
    assert [t["content"] for t in thought] == ["The user wants Oslo's weather."]
    assert kinds(log, "thinking_delta")[0]["message_id"] == thought[0]["message_id"]

    started, completed = kinds(log, "tool_executing"), kinds(log, "tool_completed")
    assert [(t["tool"], t["input"]) for t in started] == [("weather", {"city": "Oslo"})]
    assert [(t["ok"], t["output"]) for t in completed] == [(True, "sunny in Oslo")]

    asked = kinds(log, "interrupt")
    assert [(q["reason"], q["message"]) for q in asked] == [
        ("tool_approval", "Send this forecast to the team?")]
    resolved = kinds(log, "interrupt_resolved")
    assert [(r["status"], r["payload"]) for r in resolved] == [("resolved", {"approved": True})]
    # The person's answer came before the approving node completed, and the run ended well.
    assert log.index(resolved[0]) < log.index(kinds(log, "node_update")[-1])
    assert log[-1]["type"] == "workflow_status" and log[-1]["status"] == "completed"


@run_async
async def test_a_denied_question_resumes_the_graph_with_the_denial(server: Server):
    _, state = await run_weather_graph(server, {"approved": False})
    assert state["messages"][-1].content == "kept"


@run_async
async def test_a_tool_that_raises_fails_its_row_its_node_and_the_run(server: Server):
    workflow = await server.create()
    # No checkpointer, and tool errors not caught by the tool node: the graph itself raises.
    graph = weather_graph(scripted("broken_weather"), [broken_weather],
                          handle_tool_errors=False)
    with pytest.raises(RuntimeError, match="no station near Oslo"):
        async with lantern.connect(server.url, server.agent_token, workflow) as run:
            await lantern.langgraph.run(graph, {"messages": [HumanMessage("Weather?")]}, run)
    log = await server.log(workflow)
    check_pairs(log)
    [completed] = kinds(log, "tool_completed")
    assert (completed["ok"], completed["error"]) == (False, "RuntimeError: no station near Oslo")
    steps = [(e["node"], e["status"]) for e in kinds(log, "node_update")]
    assert steps[-1] == ("tools", "failed")
    assert log[-1]["status"] == "failed"
