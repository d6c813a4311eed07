"""The SDK for scripts that do not use asyncio: the same run, agents and tools, blocking.

    from lantern.sync import connect

    with connect(url, token, workflow="wf_...") as run:
        with run.agent("researcher") as agent:
            with agent.tool("search", {"q": "lantern"}) as call:
                call.output = search("lantern")
            agent.stream_text(["Found ", "two ", "sources."])
            length = agent.ask("Long or short?")

An event loop runs in a background thread and owns the connection (so reconnects and acks go
on while your code blocks); each call here waits for its coroutine there.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Awaitable, Callable, Dict, Iterable, Iterator, Optional, Type, TypeVar

from . import connect as _connect
from .run import Agent, Answer, Message, Run, ToolCall

T = TypeVar("T")


class _Loop:
    """An event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="lantern",
                                       daemon=True)
        self.thread.start()

    def call(self, coroutine: Awaitable[T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)  # type: ignore
        return future.result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class SyncToolCall:
    def __init__(self, loop: _Loop, call: ToolCall):
        self._loop, self._call = loop, call

    @property
    def output(self) -> Any:
        return self._call.output

    @output.setter
    def output(self, value: Any) -> None:
        self._call.output = value

    @property
    def call_id(self) -> str:
        return self._call.call_id

    def progress(self, progress: Optional[float], message: str = "") -> int:
        return self._loop.call(self._call.progress(progress, message))

    def __enter__(self) -> "SyncToolCall":
        self._loop.call(self._call.__aenter__())
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self._loop.call(self._call.__aexit__(kind, error, tb))


class SyncAgent:
    def __init__(self, loop: _Loop, agent: Agent):
        self._loop, self._agent = loop, agent

    @property
    def name(self) -> str:
        return self._agent.name

    def say(self, content: str) -> int:
        return self._loop.call(self._agent.say(content))

    def think(self, content: str) -> int:
        return self._loop.call(self._agent.think(content))

    def stream_text(self, chunks: Iterable[str], kind: str = "text") -> str:
        # The chunks are pulled here, in the caller's thread (a blocking LLM client's stream).
        message = self._agent.message(kind)
        try:
            for chunk in chunks:
                self._loop.call(message.add(chunk))
        except BaseException:
            self._loop.call(message.close())
            raise
        return self._loop.call(message.close())

    def tool(self, name: str, input: Any = None, call_id: Optional[str] = None) -> SyncToolCall:
        return SyncToolCall(self._loop, self._agent.tool(name, input, call_id))

    def ask(self, message: str, **options: Any) -> Any:
        return self._loop.call(self._agent.ask(message, **options))

    def ask_for_answer(self, message: str, **options: Any) -> Answer:
        return self._loop.call(self._agent.ask_for_answer(message, **options))

    @property
    def summary(self) -> Optional[str]:
        return self._agent.summary

    @summary.setter
    def summary(self, value: Optional[str]) -> None:
        self._agent.summary = value

    def __enter__(self) -> "SyncAgent":
        self._loop.call(self._agent.__aenter__())
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self._loop.call(self._agent.__aexit__(kind, error, tb))


class SyncRun:
    """A `Run`, blocking. `run.aio` is the asyncio `Run` underneath."""

    def __init__(self, loop: _Loop, run: Run):
        self._loop, self.aio = loop, run

    @property
    def workflow_id(self) -> str:
        return self.aio.workflow_id

    @property
    def cancelled(self) -> bool:
        return self.aio.cancelled

    def agent(self, name: str, task: Optional[str] = None) -> SyncAgent:
        return SyncAgent(self._loop, self.aio.agent(name, task))

    def publish(self, event: Dict[str, Any]) -> int:
        return self._loop.call(self.aio.publish(event))

    def node_update(self, node: str, status: str, detail: Optional[str] = None) -> int:
        return self._loop.call(self.aio.node_update(node, status, detail))

    def report(self, markdown: str) -> int:
        return self._loop.call(self.aio.report(markdown))

    def finish(self) -> int:
        return self._loop.call(self.aio.finish())

    def fail(self, detail: str) -> int:
        return self._loop.call(self.aio.fail(detail))

    def inputs(self) -> Iterator[Message]:
        """What people write, in order, each once; ends when the workflow ends."""
        messages = self.aio.inputs()
        while True:
            try:
                yield self._loop.call(messages.__anext__())
            except StopAsyncIteration:
                return


class connect:
    """`with lantern.sync.connect(url, token, workflow=...) as run:` — as `lantern.connect`."""

    def __init__(self, url: str, token: str, workflow: Optional[str] = None, **options: Any):
        self._args: Callable[[], Any] = lambda: _connect(url, token, workflow, **options)
        self._loop: Optional[_Loop] = None
        self._context: Any = None

    def __enter__(self) -> SyncRun:
        self._loop = _Loop()
        self._context = self._args()
        try:
            run = self._loop.call(self._context.__aenter__())
        except BaseException:
            self._loop.stop()
            raise
        return SyncRun(self._loop, run)

    def __exit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                 tb: Optional[TracebackType]) -> Optional[bool]:
        assert self._loop is not None
        try:
            suppressed: Optional[bool] = self._loop.call(
                self._context.__aexit__(kind, error, tb))
            return suppressed
        finally:
            self._loop.stop()
