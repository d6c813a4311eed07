"""What the SDK's tests run against: the real `lantern` binary on a free port and a temp data dir,
a real viewer socket, and a TCP proxy between agent and server that can cut connections.

The binary is `$LANTERN_BIN`, else the workspace's `target/debug/lantern` (built by `cargo test`,
which `scripts/test.sh` runs first).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set

import httpx
import pytest
import websockets

ROOT = Path(__file__).resolve().parents[3]
BINARY = Path(os.environ.get("LANTERN_BIN", ROOT / "target" / "debug" / "lantern"))
WAIT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """One `lantern serve` process; `restart()` kills it and starts it again on the same port and
    data dir, as a crash and a supervisor would."""

    def __init__(self, data_dir: str, extra: List[str]):
        self.data_dir = data_dir
        self.extra = extra
        self.port = free_port()
        self.process: Optional[subprocess.Popen[str]] = None
        self.start()
        self.user_token = self.cli("token", "create", "--user", "admin")
        self.agent_token = self.cli("token", "create", "--user", "admin", "--agent")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        out = subprocess.run([str(BINARY), *args, "--data-dir", self.data_dir], check=True,
                             capture_output=True, text=True, env={**os.environ,
                                                                  "RUST_LOG": "warn"})
        return out.stdout.strip().splitlines()[-1]

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(BINARY), "serve", "--addr", f"127.0.0.1:{self.port}", "--data-dir",
             self.data_dir, *self.extra],
            stdout=subprocess.PIPE, stderr=None, text=True,
            env={**os.environ, "RUST_LOG": "warn"})
        ready = threading.Event()

        def drain(stream: Any) -> None:
            for line in stream:
                if "http://" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=drain, args=(self.process.stdout,), daemon=True).start()
        assert ready.wait(WAIT), "lantern printed no address"
        assert self.process.poll() is None, "lantern exited at start"

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    # -- what a person does, over HTTP ---------------------------------------------------------

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=WAIT,
                                 headers={"Authorization": f"Bearer {self.user_token}"})

    async def create(self, title: str = "sdk test") -> str:
        async with self.http() as client:
            answer = await client.post("/api/workflows", json={"kind": "external",
                                                               "title": title})
            answer.raise_for_status()
            return answer.json()["id"]

    async def log(self, workflow: str) -> List[Dict[str, Any]]:
        """The whole log, over the HTTP history API."""
        events: List[Dict[str, Any]] = []
        async with self.http() as client:
            while True:
                answer = await client.get(f"/api/workflows/{workflow}/events",
                                          params={"after": len(events), "limit": 1000})
                answer.raise_for_status()
                page = answer.json()["events"]
                events.extend(page)
                if not page:
                    return events

    async def answer(self, workflow: str, interrupt_id: str, payload: Any,
                     status: str = "resolved", client_msg_id: str = "answer-1") -> int:
        async with self.http() as client:
            answer = await client.post(f"/api/workflows/{workflow}/interrupts/{interrupt_id}",
                                       json={"status": status, "payload": payload,
                                             "client_msg_id": client_msg_id})
            answer.raise_for_status()
            return answer.json()["seq"]

    async def say(self, workflow: str, content: str, client_msg_id: str) -> int:
        async with self.http() as client:
            answer = await client.post(f"/api/workflows/{workflow}/input",
                                       json={"content": content, "client_msg_id": client_msg_id})
            answer.raise_for_status()
            return answer.json()["seq"]

    async def cancel(self, workflow: str) -> None:
        async with self.http() as client:
            (await client.post(f"/api/workflows/{workflow}/cancel")).raise_for_status()


class Viewer:
    """A subscriber socket on one workflow, as a browser holds it."""

    def __init__(self, server: Server, workflow: str):
        self.server, self.workflow = server, workflow
        self.events: List[Dict[str, Any]] = []
        self.ws: Any = None

    async def __aenter__(self) -> "Viewer":
        url = (f"ws://127.0.0.1:{self.server.port}/ws/workflow/{self.workflow}"
               f"?after=0&token={self.server.user_token}")
        self.ws = await websockets.connect(url, max_size=None)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.ws.close()

    async def until(self, done: Callable[[Dict[str, Any]], bool]) -> Dict[str, Any]:
        """Read events until one satisfies `done`; returns it (all are kept in `events`)."""
        for event in self.events:
            if done(event):
                return event
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), WAIT))
            if "seq" not in frame:
                continue  # hello, replay_done
            self.events.append(frame)
            if done(frame):
                return frame


class Proxy:
    """A TCP proxy in front of the server. `cut()` drops every open connection at once;
    `mute()` stops passing the server's bytes on (acks lost in flight); `refuse` turns new
    connections away until cleared."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = 0
        self.refuse = False
        self.muted = False
        self.accepted = 0
        self._links: Set[asyncio.StreamWriter] = set()
        self._server: Optional[asyncio.AbstractServer] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> "Proxy":
        self._server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()

    def cut(self) -> None:
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()
        self.muted = False

    def mute(self) -> None:
        self.muted = True

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            writer.transport.abort()
            return
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._links.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                       downstream: bool) -> None:
            try:
                while data := await src.read(65536):
                    if downstream and self.muted:
                        continue
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))


@pytest.fixture
def server(tmp_path: Path):
    """A fresh server on its own data dir (a short agent grace period is not needed: agents here
    come back within it)."""
    running = Server(str(tmp_path / "data"), [])
    yield running
    running.stop()


def check_pairs(events: List[Dict[str, Any]]) -> None:
    """PROTOCOL.md §1's pairing: each tool and agent opened is closed exactly once."""
    open_tools: Dict[str, Dict[str, Any]] = {}
    running: Dict[str, int] = {}
    for event in events:
        kind = event["type"]
        if kind == "tool_executing":
            assert event["call_id"] not in open_tools
            open_tools[event["call_id"]] = event
        elif kind == "tool_completed":
            assert open_tools.pop(event["call_id"], None) is not None, event
        elif kind == "agent_started":
            running[event["agent"]] = running.get(event["agent"], 0) + 1
        elif kind == "agent_completed":
            assert running.get(event["agent"], 0) > 0, event
            running[event["agent"]] -= 1
    assert not open_tools, f"tools never completed: {list(open_tools)}"
    assert not any(running.values()), f"agents never completed: {running}"


def run_async(test: Callable[..., Any]) -> Callable[..., Any]:
    """Run an `async def` test on a fresh event loop (no plugin needed)."""
    import functools
    import inspect

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(asyncio.wait_for(test(*args, **kwargs), 120))

    wrapper.__signature__ = inspect.signature(test)  # type: ignore[attr-defined]
    return wrapper
