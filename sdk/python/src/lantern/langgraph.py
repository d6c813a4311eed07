"""Run a compiled LangGraph graph and show it in Lantern, without mapping events by hand.

    import lantern.langgraph

    async with lantern.connect(url, token, workflow) as run:
        state = await lantern.langgraph.run(graph, {"messages": [...]}, run)

What the graph does becomes Lantern events, from LangGraph's own event stream
(`astream_events(version="v2")`):

- each top-level node → `node_update` `executing`, then `completed` (or `failed` with the
  error when the graph raises while the node runs);
- each chat model call → its tokens as `text_delta`s (reasoning, where the model streams it as
  `reasoning`/`thinking` content blocks or `reasoning_content`, as `thinking_delta`s), closed by
  one `agent_response` whose text the server joins from the deltas; a model that did not stream
  → one whole `agent_response`;
- each tool run → a paired `tool_executing` / `tool_completed` (`ok: false` with the error when
  the tool raises);
- each `interrupt(value)` → a Lantern `interrupt` (see `question_of` for how `value` is read);
  a person's answer resumes the graph (`Command(resume=...)`) until it finishes.

All of it is published as one agent (`agent=`, default "langgraph"), inside the run the caller
opened. `interrupt()` needs a checkpointer (LangGraph's own rule): compile the graph with one;
its thread is the workflow id unless `config` names another. Nodes of subgraphs are not shown as
steps (their tokens and tools are).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Set, Tuple

from .run import Agent, Run, StreamedMessage, ToolCall, _describe

__all__ = ["run", "question_of"]


async def run(graph: Any, inputs: Any, lantern_run: Run, *,
              config: Optional[Dict[str, Any]] = None, agent: str = "langgraph") -> Any:
    """Run `graph` on `inputs` until it finishes, publishing what it does to `lantern_run`;
    the graph's final state (its output when it has no checkpointer).

    Raises what the graph raises (after closing what it had open in Lantern), and the run's
    `Cancelled` / `InterruptCancelled` when a person cancels the workflow or withdraws a
    question."""
    # Imported here so `import lantern` does not need LangGraph installed.
    from langgraph.types import Command  # type: ignore[import-not-found, unused-ignore]

    config = _with_thread(config, lantern_run.workflow_id)
    async with lantern_run.agent(agent) as publisher:
        shown = _Shown(lantern_run, publisher)
        payload: Any = inputs
        while True:
            output = await shown.stream(graph, payload, config)
            pending = await _pending_interrupts(graph, config)
            if not pending:
                break
            answers = {}
            for question in pending:
                answers[question.id] = await publisher.ask(**question_of(question))
            payload = Command(resume=answers)
        if getattr(graph, "checkpointer", None) is not None:
            return (await graph.aget_state(config)).values
        return output


def question_of(interrupt: Any) -> Dict[str, Any]:
    """The `agent.ask(...)` arguments for a LangGraph `Interrupt`: a string value is the
    question; a dict may say `message` (or `question`), `reason` (default "input"; say
    "tool_approval" for Approve/Deny, answered `{"approved": true|false}`), `call_id`,
    `schema` (JSON Schema of the answer; or pass `response_schema=` to `interrupt()`) and
    `expires_at`; any other value is shown as JSON."""
    value = interrupt.value
    asked: Dict[str, Any] = {"reason": "input"}
    if isinstance(value, str):
        asked["message"] = value
    elif isinstance(value, dict):
        text = value.get("message", value.get("question"))
        asked["message"] = text if isinstance(text, str) else _json(value)
        for key, arg in (("reason", "reason"), ("call_id", "call_id"), ("schema", "schema"),
                         ("response_schema", "schema"), ("expires_at", "expires_at")):
            if value.get(key) is not None:
                asked[arg] = value[key]
    else:
        asked["message"] = _json(value)
    schema = getattr(interrupt, "response_schema", None)
    if schema is not None and "schema" not in asked:
        # A Pydantic model's schema, or a dict that is one already.
        asked["schema"] = schema.model_json_schema() if hasattr(schema,
                                                                "model_json_schema") else schema
    return asked


class _Shown:
    """What of one graph run is open in Lantern, keyed by LangGraph's run ids — so events of
    nodes, models and tools running in parallel land on the right rows."""

    def __init__(self, lantern_run: Run, agent: Agent):
        self.run, self.agent = lantern_run, agent
        # Steps shown executing. A node stopped by `interrupt()` stays open and is not shown
        # again when the resumed graph runs it from its start.
        self.nodes: Dict[str, str] = {}  # LangGraph run id → node name
        self.open_nodes: Set[str] = set()
        # Per model call: its text and its reasoning, each opened by its first piece.
        self.texts: Dict[str, StreamedMessage] = {}
        self.thoughts: Dict[str, StreamedMessage] = {}
        self.tools: Dict[str, ToolCall] = {}

    async def stream(self, graph: Any, payload: Any, config: Dict[str, Any]) -> Any:
        """One pass of the graph, until it finishes or stops at interrupts; its output."""
        output: Any = None
        try:
            async for event in graph.astream_events(payload, config, version="v2"):
                if not event.get("parent_ids"):
                    if event["event"] == "on_chain_end":
                        output = event["data"].get("output")
                    continue
                await self.show(event)
        except BaseException as error:
            await self.close_all(error)
            raise
        return output

    async def show(self, event: Dict[str, Any]) -> None:
        kind, ident, data = event["event"], event["run_id"], event.get("data", {})
        if kind == "on_chain_start" and _is_node(event):
            name = event["name"]
            self.nodes[ident] = name
            if name not in self.open_nodes:
                self.open_nodes.add(name)
                await self.run.node_update(name, "executing")
        elif kind == "on_chain_end" and ident in self.nodes:
            name = self.nodes.pop(ident)
            if name in self.open_nodes:
                self.open_nodes.discard(name)
                await self.run.node_update(name, "completed")
        elif kind == "on_chat_model_stream":
            for thinking, piece in _pieces(data.get("chunk")):
                await self.add(ident, thinking, piece)
        elif kind == "on_chat_model_end":
            await self.model_ended(ident, data.get("output"))
        elif kind == "on_tool_start":
            self.tools[ident] = await self.agent.start_tool(event["name"],
                                                            _jsonable(data.get("input")),
                                                            call_id=ident)
        elif kind == "on_tool_end" and ident in self.tools:
            await self.tools.pop(ident).complete(_tool_output(data.get("output")))
        elif kind == "on_tool_error" and ident in self.tools:
            await self.tools.pop(ident).fail(_error(data.get("error")))

    async def add(self, call: str, thinking: bool, piece: str) -> None:
        if thinking:
            message = self.thoughts.get(call)
            if message is None:
                message = self.thoughts[call] = self.agent.message("thinking")
        else:
            # The answer has begun: the reasoning before it is whole.
            thought = self.thoughts.pop(call, None)
            if thought is not None:
                await thought.close()
            message = self.texts.get(call)
            if message is None:
                message = self.texts[call] = self.agent.message("text")
        await message.add(piece)

    async def model_ended(self, call: str, output: Any) -> None:
        thought = self.thoughts.pop(call, None)
        if thought is not None:
            await thought.close()
        text = self.texts.pop(call, None)
        if text is not None:
            await text.close()
            return
        # A model that did not stream (or streamed nothing): its whole answer, if it has one.
        whole = "".join(piece for thinking, piece in _pieces(output) if not thinking)
        if whole:
            await self.agent.say(whole)

    async def close_all(self, error: BaseException) -> None:
        """The graph stopped by `error`: close what it left open, so the log pairs every row."""
        if self.run.ended:
            return
        for message in [*self.thoughts.values(), *self.texts.values()]:
            await message.close()
        for call in self.tools.values():
            await call.fail(error)
        for name in sorted(self.open_nodes):
            await self.run.node_update(name, "failed", _describe(error))
        self.thoughts.clear()
        self.texts.clear()
        self.tools.clear()
        self.open_nodes.clear()


def _is_node(event: Dict[str, Any]) -> bool:
    """A step of the top-level graph: a chain directly under the graph's own run, named as
    the node it runs in (routing functions and a node's inner chains sit deeper)."""
    metadata = event.get("metadata") or {}
    return (len(event.get("parent_ids") or ()) == 1
            and event.get("name") == metadata.get("langgraph_node"))


def _pieces(message: Any) -> List[Tuple[bool, str]]:
    """The (is_reasoning, text) pieces of a chat message or chunk, in order."""
    if message is None:
        return []
    out: List[Tuple[bool, str]] = []
    extra = getattr(message, "additional_kwargs", None) or {}
    reasoning = extra.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        out.append((True, reasoning))
    content = getattr(message, "content", None)
    if isinstance(content, str):
        if content:
            out.append((False, content))
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, str):
                if block:
                    out.append((False, block))
            elif isinstance(block, dict):
                kind = block.get("type")
                text = block.get(kind) if kind in ("reasoning", "thinking") else block.get("text")
                if isinstance(text, str) and text:
                    out.append((kind in ("reasoning", "thinking"), text))
    return out


def _tool_output(output: Any) -> Any:
    """A tool's result as JSON: a `ToolMessage`'s content, else the value itself."""
    content = getattr(output, "content", output)
    return _jsonable(content)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def _json(value: Any) -> str:
    return json.dumps(_jsonable(value))


def _error(error: Any) -> str:
    return _describe(error) if isinstance(error, BaseException) else str(error)


def _with_thread(config: Optional[Dict[str, Any]], workflow_id: str) -> Dict[str, Any]:
    """`config` with a thread id: the workflow's unless the caller chose one."""
    config = dict(config or {})
    configurable = dict(config.get("configurable") or {})
    configurable.setdefault("thread_id", workflow_id)
    config["configurable"] = configurable
    return config


async def _pending_interrupts(graph: Any, config: Dict[str, Any]) -> List[Any]:
    """The interrupts the graph stopped at (none without a checkpointer: it cannot stop)."""
    if getattr(graph, "checkpointer", None) is None:
        return []
    state = await graph.aget_state(config)
    return list(getattr(state, "interrupts", ()) or ())
