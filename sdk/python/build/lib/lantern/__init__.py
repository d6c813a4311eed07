"""Lantern for agents written in Python.

    import lantern

    async with lantern.connect(url, token, workflow="wf_...") as run:
        async with run.agent("researcher", task="find sources") as agent:
            async with agent.tool("search", {"q": "lantern"}) as call:
                call.output = await search("lantern")
            await agent.stream_text(llm_tokens())
            answer = await agent.ask("Long or short?", schema={...})

What it keeps for you (PROTOCOL.md §3): every event carries an id and is sent again after any
drop until the server acks it, so it is logged exactly once, in the order published — across
reconnects and server restarts; tools and agents are closed even when your code raises; a
person's answers and cancel reach you once each.

Layout: `run` (the run and its scopes: agents, tools, messages, questions), `_transport` (the
outbox, the agent socket with reconnects, HTTP ingest), `errors` (one exception per protocol
error code), `sync` (the same for scripts without asyncio).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, Optional

import httpx
import websockets

from ._transport import Backoff, http_base
from .errors import (BadRequest, Cancelled, Conflict, Disconnected, Forbidden, Internal,
                     InterruptCancelled, LanternError, NotFound, RateLimited, TooLarge,
                     Unauthorized, error_for, error_for_status)
from .run import Agent, Answer, Message, Node, Run, StreamedMessage, ToolCall

__version__ = "0.1.0"


async def create_workflow(url: str, user_token: str, title: Optional[str] = None,
                          input: Optional[Dict[str, Any]] = None) -> str:
    """Register an external workflow (owned by the user token's user) and return its id."""
    body: Dict[str, Any] = {"kind": "external"}
    if title is not None:
        body["title"] = title
    if input is not None:
        body["input"] = input
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(f"{http_base(url)}/api/workflows", json=body,
                                   headers={"Authorization": f"Bearer {user_token}"})
    if answer.status_code != 200:
        raise _http_error(answer)
    return str(answer.json()["id"])


def _http_error(answer: httpx.Response) -> LanternError:
    try:
        error = answer.json()["error"]
        return error_for(error["code"], error["message"])
    except (ValueError, KeyError, TypeError):
        return error_for_status(answer.status_code, answer.text)


@asynccontextmanager
async def connect(url: str, token: str, workflow: Optional[str] = None, *,
                  user_token: Optional[str] = None, title: Optional[str] = None,
                  transport: str = "auto", start: bool = True,
                  finish: bool = True, give_up_after: Optional[float] = None,
                  rate: float = 900, backoff: Optional[Backoff] = None) -> AsyncIterator[Run]:
    """Publish to a workflow as its agent, with an agent token.

    `workflow`: its id; or leave it out and give `user_token` (and a `title`) to register a new
    external workflow first. `transport`: "websocket" (publishes, and receives input, answers
    and a cancel), "http" (publishes only, for where no WebSocket gets through) or "auto" (the
    socket, or HTTP when the server's address answers the upgrade with anything but a refusal of
    the token or workflow). `start`: publish `running` first. `rate`: frames per second kept
    under the server's agent rate limit (1,000 by default). `give_up_after`: seconds without a
    connection before pending publishes fail with `Disconnected` (default: keep trying; the
    server fails the workflow when its grace period is over).

    Leaving the block: everything published is flushed; then, unless the workflow has ended,
    it is marked `completed` (when `finish`), or `failed` with the error if the block raised.
    A `Cancelled` raised because a person cancelled ends the block quietly (`run.cancelled`
    tells)."""
    if workflow is None:
        if user_token is None:
            raise ValueError("give a workflow id, or a user token to create one")
        workflow = await create_workflow(url, user_token, title)
    if transport not in ("auto", "websocket", "http"):
        raise ValueError(f"transport is 'auto', 'websocket' or 'http', not {transport!r}")
    run = Run(url, token, workflow, transport="http" if transport == "http" else "websocket",
              rate=rate, give_up_after=give_up_after, backoff=backoff)
    try:
        await run.open()
    except (websockets.exceptions.InvalidStatus, websockets.exceptions.InvalidHandshake,
            OSError) as why:
        if transport != "auto" or isinstance(why, OSError):
            raise
        # Something between us and the server does not carry WebSockets: publish over HTTP.
        run = Run(url, token, workflow, transport="http", rate=rate,
                  give_up_after=give_up_after, backoff=backoff)
        await run.open()
    try:
        if start:
            await run.set_status("running")
        yield run
    except Cancelled:
        if not run.cancelled:
            await run.close()
            raise
    except BaseException as error:
        if not run.ended:
            try:
                await run.fail(f"{type(error).__name__}: {error}" if str(error)
                               else type(error).__name__)
            except LanternError:
                pass  # the original error is the one to see
        await run.close()
        raise
    else:
        if finish and not run.ended:
            await run.finish()
    await run.close()


__all__ = [
    "connect", "create_workflow", "Run", "Agent", "ToolCall", "StreamedMessage", "Node",
    "Message", "Answer", "Backoff", "LanternError", "BadRequest", "Unauthorized", "Forbidden",
    "NotFound", "Conflict", "TooLarge", "RateLimited", "Internal", "Cancelled",
    "InterruptCancelled", "Disconnected",
]
