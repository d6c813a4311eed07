"""A workflow as an agent sees it: a `Run` to publish to, `Agent`s that start and complete,
`ToolCall`s that execute and complete, streamed messages, questions to a person.

Every scope here closes what it opened, whatever happens inside it: leaving `async with
agent.tool(...)` by an exception publishes `tool_completed` with `ok: false` and the error
before the exception goes on, so the log never holds a tool or an agent that runs forever
(PROTOCOL.md §1's pairing rules hold by construction, not by the author's care).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import (Any, AsyncIterable, AsyncIterator, Dict, Iterable, List, Optional, Type,
                    Union)

from ._transport import Backoff, HttpTransport, Outbox, SocketTransport
from .errors import Cancelled, Conflict, InterruptCancelled, LanternError

TERMINAL = ("completed", "failed", "cancelled")

Chunks = Union[AsyncIterable[str], Iterable[str]]


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Message:
    """Something a person wrote to the agent (a `user_input` event, as logged)."""

    content: str
    user: Optional[str]
    seq: int
    client_msg_id: Optional[str]


@dataclass(frozen=True)
class Answer:
    """A person's answer to a question (`interrupt_resolved`, as logged)."""

    payload: Any
    user: Optional[str]
    seq: int


class Run:
    """One workflow, published to by this agent. Made by `lantern.connect()`."""

    def __init__(self, url: str, token: str, workflow_id: str, *, transport: str = "websocket",
                 rate: float = 900, give_up_after: Optional[float] = None,
                 max_unacked: int = 10_000, backoff: Optional[Backoff] = None):
        self.url = url
        self.workflow_id = workflow_id
        self.transport_kind = transport
        # The status of the workflow as far as this agent knows: the last it published, or the
        # terminal one it was told of.
        self.status: Optional[str] = None
        self._outbox: Optional[Outbox] = None
        self._max_unacked = max_unacked
        self._token = token
        self._rate = rate
        self._give_up_after = give_up_after
        self._backoff = backoff
        self._transport: Any = None
        # The seq of the last forwarded event handled: asked for as `after` on reconnect, and
        # what a forwarded event repeated on a new connection is recognised by.
        self._last_forwarded: Optional[int] = None
        self._inputs: "asyncio.Queue[Optional[Message]]" = asyncio.Queue()
        self._questions: Dict[str, "asyncio.Future[Dict[str, Any]]"] = {}
        self._answered_early: Dict[str, Dict[str, Any]] = {}
        self._open_questions = 0
        self._ended = asyncio.Event()
        self.ended_status: Optional[str] = None

    # -- opening and closing ------------------------------------------------------------------

    async def open(self) -> "Run":
        self._outbox = Outbox(self._max_unacked)
        if self.transport_kind == "http":
            self._transport = HttpTransport(self.url, self._token, self.workflow_id,
                                            self._outbox, backoff=self._backoff,
                                            give_up_after=self._give_up_after)
        else:
            self._transport = SocketTransport(
                self.url, self._token, self.workflow_id, self._outbox, self._on_forwarded,
                lambda: self._last_forwarded, rate=self._rate, burst=self._rate,
                backoff=self._backoff, give_up_after=self._give_up_after)
        await self._transport.start()
        return self

    async def flush(self) -> None:
        """Wait until everything published so far is acked by the server."""
        assert self._outbox is not None
        await self._outbox.drained()

    async def close(self) -> None:
        """Flush, then close the connection (the workflow stays as it is)."""
        try:
            if self._outbox is not None and self._outbox.fatal is None:
                await self.flush()
        finally:
            if self._transport is not None:
                await self._transport.close()

    @property
    def cancelled(self) -> bool:
        """True once a person has cancelled the workflow."""
        return self.ended_status == "cancelled"

    @property
    def ended(self) -> bool:
        return self.ended_status is not None

    async def wait_ended(self) -> str:
        """Until the workflow ends (by this agent or a person); its terminal status."""
        await self._ended.wait()
        assert self.ended_status is not None
        return self.ended_status

    # -- publishing ----------------------------------------------------------------------------

    async def send(self, event: Dict[str, Any]) -> "asyncio.Future[int]":
        """Queue `event` (it gets an `id` unless it has one) and return, at once, the future of
        its `seq`. Events are delivered in the order they are sent, exactly once."""
        if self.cancelled:
            raise Cancelled(f"workflow {self.workflow_id} was cancelled", event=event)
        assert self._outbox is not None, "the run is not open"
        event = dict(event)
        event.setdefault("id", new_id())
        future = await self._outbox.add(event)
        self._transport.queued(event["id"])
        if event.get("type") == "workflow_status":
            self.status = event.get("status")
        return future

    async def publish(self, event: Dict[str, Any]) -> int:
        """Send `event` and wait until the server has stored it; its `seq`."""
        return await self.settled(await self.send(event))

    async def settled(self, future: "asyncio.Future[int]") -> int:
        """The seq of a sent event; a refusal because a person cancelled reads as `Cancelled`."""
        try:
            return await future
        except Conflict as refused:
            if self.cancelled:
                raise Cancelled(f"workflow {self.workflow_id} was cancelled",
                                event=refused.event) from refused
            raise

    async def set_status(self, status: str, detail: Optional[str] = None) -> int:
        event: Dict[str, Any] = {"type": "workflow_status", "status": status}
        if detail is not None:
            event["detail"] = detail
        seq = await self.publish(event)
        if status in TERMINAL:
            self._end(status)
        return seq

    async def finish(self) -> int:
        """Mark the workflow `completed`."""
        return await self.set_status("completed")

    async def fail(self, detail: str) -> int:
        """Mark the workflow `failed`, saying why (open tools and agents are closed by the
        server with `ok: false`)."""
        return await self.set_status("failed", detail)

    async def node_update(self, node: str, status: str, detail: Optional[str] = None) -> int:
        event: Dict[str, Any] = {"type": "node_update", "node": node, "status": status}
        if detail is not None:
            event["detail"] = detail
        return await self.publish(event)

    def node(self, name: str) -> "Node":
        """`async with run.node("search"):` — a step shown executing, then completed (or failed
        with the error)."""
        return Node(self, name)

    def agent(self, name: str, task: Optional[str] = None) -> "Agent":
        """`async with run.agent("researcher", task) as agent:` — agent_started, then
        agent_completed (ok, or not ok with the error when the block raises)."""
        return Agent(self, name, task)

    async def report(self, markdown: str) -> int:
        """The workflow's `final_report` (Markdown)."""
        return await self.publish({"type": "final_report", "content": markdown})

    async def search_results(self, query: str, results: List[Dict[str, Any]]) -> int:
        """`results`: dicts with `title`, `source`, `snippet`, `score`."""
        return await self.publish({"type": "search_results", "query": query,
                                   "results": results})

    # -- what people send ----------------------------------------------------------------------

    async def inputs(self) -> AsyncIterator[Message]:
        """What people write to the agent, in order, each once; ends when the workflow ends."""
        while True:
            message = await self._inputs.get()
            if message is None:
                self._inputs.put_nowait(None)  # for any other reader
                return
            yield message

    async def _question(self, event: Dict[str, Any]) -> Answer:
        ident = event["interrupt_id"]
        answered: asyncio.Future[Dict[str, Any]] = asyncio.get_running_loop().create_future()
        early = self._answered_early.pop(ident, None)
        if early is not None:
            answered.set_result(early)
        self._questions[ident] = answered
        self._open_questions += 1
        try:
            await self.publish(event)
            if self.status != "waiting_input":
                await self.set_status("waiting_input")
            frame = await answered
        finally:
            self._open_questions -= 1
            self._questions.pop(ident, None)
        if frame.get("status") == "cancelled":
            if frame.get("user") is None:
                # Closed by the server: the workflow ended with the question open.
                raise Cancelled(f"workflow {self.workflow_id} ended before "
                                f"{ident!r} was answered", event=event)
            raise InterruptCancelled(f"{frame.get('user')} withdrew the question", event=event)
        if self._open_questions == 0 and not self.ended:
            await self.set_status("running")
        return Answer(frame.get("payload"), frame.get("user"), int(frame.get("seq", 0)))

    def _on_forwarded(self, frame: Dict[str, Any]) -> None:
        seq = frame.get("seq")
        if isinstance(seq, int):
            if self._last_forwarded is not None and seq <= self._last_forwarded:
                return  # seen on an earlier connection
            self._last_forwarded = seq
        kind = frame.get("type")
        if kind == "user_input":
            self._inputs.put_nowait(Message(str(frame.get("content", "")), frame.get("user"),
                                            int(seq or 0), frame.get("client_msg_id")))
        elif kind == "interrupt_resolved":
            ident = str(frame.get("interrupt_id"))
            waiter = self._questions.get(ident)
            if waiter is None:
                self._answered_early[ident] = frame
            elif not waiter.done():
                waiter.set_result(frame)
        elif kind == "workflow_status" and frame.get("status") in TERMINAL:
            self._end(str(frame["status"]))

    def _end(self, status: str) -> None:
        if self.ended_status is not None:
            return
        self.ended_status = status
        self.status = status
        self._ended.set()
        self._inputs.put_nowait(None)
        for waiter in self._questions.values():
            if not waiter.done():
                waiter.set_exception(Cancelled(f"workflow {self.workflow_id} is {status}"))


class Node:
    """A step of the workflow (`node_update`): executing, then completed or failed."""

    def __init__(self, run: Run, name: str):
        self.run, self.name = run, name

    async def __aenter__(self) -> "Node":
        await self.run.node_update(self.name, "executing")
        return self

    async def __aexit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                        tb: Optional[TracebackType]) -> None:
        if self.run.ended:
            return
        if error is None:
            await self.run.node_update(self.name, "completed")
        elif not isinstance(error, Cancelled):
            await self.run.node_update(self.name, "failed", _describe(error))


class Agent:
    """One agent of the run: what it thinks, says, asks and which tools it calls."""

    def __init__(self, run: Run, name: str, task: Optional[str] = None):
        self.run, self.name, self.task = run, name, task
        # What `agent_completed` says when the block ends well; set it inside the block.
        self.summary: Optional[str] = None
        self._running = False

    async def start(self) -> "Agent":
        event: Dict[str, Any] = {"type": "agent_started", "agent": self.name}
        if self.task is not None:
            event["task"] = self.task
        await self.run.publish(event)
        self._running = True
        return self

    async def complete(self, ok: bool = True, summary: Optional[str] = None) -> None:
        if not self._running:
            return
        self._running = False
        event: Dict[str, Any] = {"type": "agent_completed", "agent": self.name, "ok": ok}
        if summary is not None:
            event["summary"] = summary
        await self.run.publish(event)

    async def __aenter__(self) -> "Agent":
        return await self.start()

    async def __aexit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                        tb: Optional[TracebackType]) -> None:
        if self.run.ended:
            self._running = False  # the terminal status closed it (PROTOCOL.md §1)
            return
        if error is None:
            await self.complete(True, self.summary)
        elif not isinstance(error, Cancelled):
            await self.complete(False, _describe(error))

    # -- what it says --------------------------------------------------------------------------

    async def say(self, content: str) -> int:
        """A whole answer (`agent_response`)."""
        return await self.run.publish({"type": "agent_response", "agent": self.name,
                                       "content": content})

    async def think(self, content: str) -> int:
        """A whole piece of reasoning (`agent_thinking`)."""
        return await self.run.publish({"type": "agent_thinking", "agent": self.name,
                                       "content": content})

    def message(self, kind: str = "text", message_id: Optional[str] = None) -> "StreamedMessage":
        """A message streamed piece by piece: `kind` "text" (an answer) or "thinking"."""
        return StreamedMessage(self, kind, message_id)

    async def stream_text(self, chunks: Chunks, kind: str = "text") -> str:
        """Stream `chunks` as deltas, then close the message; the whole text."""
        async with self.message(kind) as message:
            async for chunk in _each(chunks):
                await message.add(chunk)
        return message.text

    async def stream_thinking(self, chunks: Chunks) -> str:
        return await self.stream_text(chunks, kind="thinking")

    # -- tools ---------------------------------------------------------------------------------

    def tool(self, name: str, input: Any = None, call_id: Optional[str] = None) -> "ToolCall":
        """`async with agent.tool("search", {"q": ...}) as call:` — tool_executing, then
        tool_completed with `call.output` (or `ok: false` and the error if the block raises)."""
        return ToolCall(self, name, input, call_id)

    async def start_tool(self, name: str, input: Any = None,
                         call_id: Optional[str] = None) -> "ToolCall":
        """A tool call opened now and closed later by `call.complete()` / `call.fail()`."""
        return await ToolCall(self, name, input, call_id).start()

    # -- questions -----------------------------------------------------------------------------

    async def ask(self, message: str, *, reason: str = "input", call_id: Optional[str] = None,
                  schema: Optional[Dict[str, Any]] = None, expires_at: Optional[str] = None,
                  interrupt_id: Optional[str] = None) -> Any:
        """Ask a person and wait for the answer (an `interrupt`; the workflow shows
        `waiting_input` meanwhile). Returns the answer's payload — for `reason="tool_approval"`
        the browser sends `{"approved": true|false}`. Raises `InterruptCancelled` if the question
        is withdrawn, `Cancelled` if the workflow ends first."""
        return (await self.ask_for_answer(message, reason=reason, call_id=call_id,
                                          schema=schema, expires_at=expires_at,
                                          interrupt_id=interrupt_id)).payload

    async def ask_for_answer(self, message: str, *, reason: str = "input",
                             call_id: Optional[str] = None,
                             schema: Optional[Dict[str, Any]] = None,
                             expires_at: Optional[str] = None,
                             interrupt_id: Optional[str] = None) -> Answer:
        """As `ask`, with who answered and the answer's seq."""
        event: Dict[str, Any] = {"type": "interrupt", "agent": self.name,
                                 "interrupt_id": interrupt_id or new_id(), "reason": reason,
                                 "message": message}
        for key, value in (("call_id", call_id), ("response_schema", schema),
                           ("expires_at", expires_at)):
            if value is not None:
                event[key] = value
        return await self.run._question(event)


class ToolCall:
    """One tool call: `tool_executing`, any `tool_update`s, exactly one `tool_completed`."""

    def __init__(self, agent: Agent, tool: str, input: Any, call_id: Optional[str]):
        self.agent, self.tool, self.input = agent, tool, input
        self.call_id = call_id or new_id()
        # What `tool_completed` carries when the block ends well; set it inside the block.
        self.output: Any = None
        self._started = 0.0
        self._open = False

    def _event(self, kind: str) -> Dict[str, Any]:
        return {"type": kind, "agent": self.agent.name, "tool": self.tool,
                "call_id": self.call_id}

    async def start(self) -> "ToolCall":
        self._started = time.monotonic()
        await self.agent.run.publish({**self._event("tool_executing"), "input": self.input})
        self._open = True
        return self

    async def progress(self, progress: Optional[float], message: str = "") -> int:
        """A `tool_update`: how far along (0.0–1.0, or None) and what it is doing."""
        event = {**self._event("tool_update"), "message": message}
        if progress is not None:
            event["progress"] = max(0.0, min(1.0, float(progress)))
        return await self.agent.run.publish(event)

    async def complete(self, output: Any = None) -> None:
        if output is not None:
            self.output = output
        await self._close({"ok": True, "output": self.output})

    async def fail(self, error: Union[str, BaseException]) -> None:
        await self._close({"ok": False, "error": error if isinstance(error, str)
                           else _describe(error)})

    async def _close(self, outcome: Dict[str, Any]) -> None:
        if not self._open:
            return
        self._open = False
        took = int((time.monotonic() - self._started) * 1000)
        await self.agent.run.publish({**self._event("tool_completed"), **outcome,
                                      "duration_ms": took})

    async def __aenter__(self) -> "ToolCall":
        return await self.start()

    async def __aexit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                        tb: Optional[TracebackType]) -> None:
        if self.agent.run.ended:
            self._open = False
            return
        if error is None:
            await self.complete()
        elif not isinstance(error, Cancelled):
            await self.fail(error)


class StreamedMessage:
    """An answer (or reasoning) streamed as deltas and closed once. Deltas are pipelined — not
    each waited for — and their acks are checked when the message closes."""

    def __init__(self, agent: Agent, kind: str, message_id: Optional[str]):
        if kind not in ("text", "thinking"):
            raise ValueError(f"a message is 'text' or 'thinking', not {kind!r}")
        self.agent, self.kind = agent, kind
        self.message_id = message_id or new_id()
        self._parts: List[str] = []
        self._unacked: List["asyncio.Future[int]"] = []
        self._closed = False

    @property
    def text(self) -> str:
        """What was streamed so far."""
        return "".join(self._parts)

    async def add(self, delta: str) -> "Optional[asyncio.Future[int]]":
        """Send one piece; the future of its seq (None for an empty piece, which is skipped)."""
        if self._closed:
            raise RuntimeError(f"message {self.message_id} is closed")
        if not delta:
            return None  # a delta is a non-empty string (PROTOCOL.md §1)
        self._parts.append(delta)
        kind = "text_delta" if self.kind == "text" else "thinking_delta"
        sent = await self.agent.run.send({"type": kind, "agent": self.agent.name,
                                          "message_id": self.message_id, "delta": delta})
        self._unacked.append(sent)
        if len(self._unacked) >= 512:  # check acks as it goes, so memory stays bounded
            await self._check(self._unacked[:256])
            del self._unacked[:256]
        return sent

    async def close(self, content: Optional[str] = None) -> str:
        """Close the message; the server fills its text from the deltas unless `content` is
        given (then that is the final word)."""
        if self._closed:
            return self.text
        self._closed = True
        if not self._parts and content is None:
            content = ""  # nothing was streamed: close it as an empty answer
        kind = "agent_response" if self.kind == "text" else "agent_thinking"
        event: Dict[str, Any] = {"type": kind, "agent": self.agent.name,
                                 "message_id": self.message_id}
        if content is not None:
            event["content"] = content
        closing = await self.agent.run.send(event)
        await self._check(self._unacked + [closing])
        self._unacked = []
        return content if content is not None else self.text

    async def _check(self, futures: List["asyncio.Future[int]"]) -> None:
        for future in futures:
            await self.agent.run.settled(future)

    async def __aenter__(self) -> "StreamedMessage":
        return self

    async def __aexit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                        tb: Optional[TracebackType]) -> None:
        if self.agent.run.ended or isinstance(error, Cancelled):
            self._closed = True
            return
        await self.close()


async def _each(chunks: Chunks) -> AsyncIterator[str]:
    if hasattr(chunks, "__aiter__"):
        async for chunk in chunks:
            yield chunk
    else:
        for chunk in chunks:
            yield chunk


def _describe(error: BaseException) -> str:
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


__all__ = ["Run", "Agent", "ToolCall", "StreamedMessage", "Node", "Message", "Answer",
           "LanternError"]
