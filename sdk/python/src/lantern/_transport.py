"""How events get to the server exactly once: an outbox of events with ids, sent in order and
kept until acked, over the agent socket (with reconnects) or over HTTP ingest.

Exactly once rests on one server promise (PROTOCOL.md §3): an event whose `id` the server has
seen is not appended again but acked with the `seq` it got the first time — across
connections and restarts. So the outbox never forgets an event before its ack, and after any
drop sends every unacked event again, in the order they were published. The server appends
frames of one connection in the order they arrive, so the log keeps the publish order too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import OrderedDict, deque
from typing import Any, Callable, Deque, Dict, List, Optional
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from .errors import (Disconnected, Forbidden, LanternError, NotFound, TooLarge, Unauthorized,
                     error_for, error_for_status)

log = logging.getLogger("lantern")

# The server's default agent frame limit (PROTOCOL.md §2): a bigger event is refused here, before
# it could close the connection (1009) and be sent again after every reconnect.
MAX_EVENT_BYTES = 1 << 20

# Close codes after which reconnecting cannot help (PROTOCOL.md §4).
_FATAL_CLOSES = {4001: Unauthorized, 4003: Forbidden, 4004: NotFound}


class _Pending:
    """One published event on its way: its JSON, and who waits for its seq."""

    __slots__ = ("id", "event", "text", "future")

    def __init__(self, event: Dict[str, Any], text: str, future: "asyncio.Future[int]"):
        self.id: str = event["id"]
        self.event = event
        self.text = text
        self.future = future


class Backoff:
    """Reconnect delays: exponential with full jitter (a random wait between 0 and the cap of this
    attempt), so many agents cut off together do not all come back at the same instant. Reset
    once a connection has stayed up `stable_after` seconds — not merely opened, because a server
    that accepts and drops at once would otherwise be hammered."""

    def __init__(self, base: float = 0.2, cap: float = 10.0, stable_after: float = 10.0):
        self.base, self.cap, self.stable_after = base, cap, stable_after
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2 ** self.attempt))
        self.attempt += 1
        return random.uniform(0, ceiling)

    def connection_lasted(self, seconds: float) -> None:
        if seconds >= self.stable_after:
            self.attempt = 0


class Pacer:
    """A token bucket that keeps the agent under the server's rate limit (1,000 frames/s with
    bursts of 2,000 by default). Frames over the limit are dropped by the server, and a dropped
    frame sent again later lands after its successors: pacing is what keeps the log in
    publish order."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.stamp = time.monotonic()

    async def take(self) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            await asyncio.sleep((1 - self.tokens) / self.rate)
            self.tokens = 1
            self.stamp = time.monotonic()
        self.tokens -= 1


class Outbox:
    """Events published and not yet acked, in publish order. The one owner of "what still has to
    reach the server"; both transports drain it."""

    def __init__(self, max_unacked: int):
        self.pending: "OrderedDict[str, _Pending]" = OrderedDict()
        self.max_unacked = max_unacked
        self._room = asyncio.Event()
        self._room.set()
        self._empty = asyncio.Event()
        self._empty.set()
        self.fatal: Optional[LanternError] = None

    async def add(self, event: Dict[str, Any]) -> "asyncio.Future[int]":
        if self.fatal is not None:
            raise self.fatal
        while len(self.pending) >= self.max_unacked:
            self._room.clear()
            await self._room.wait()
            if self.fatal is not None:
                raise self.fatal
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        if len(text.encode()) > MAX_EVENT_BYTES:
            raise TooLarge(f"the event is {len(text.encode())} bytes, over the {MAX_EVENT_BYTES}"
                           " the server accepts", event=event)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        item = _Pending(event, text, future)
        self.pending[item.id] = item
        self._empty.clear()
        return future

    def settle(self, ident: str, seq: Optional[int] = None,
               error: Optional[LanternError] = None) -> bool:
        """An ack (seq) or a refusal (error) for `ident`; False when it was not waiting."""
        item = self.pending.pop(ident, None)
        if item is None:
            return False
        if not item.future.done():
            if error is not None:
                item.future.set_exception(error)
            else:
                item.future.set_result(seq)  # type: ignore[arg-type]
        self._changed()
        return True

    def fail_all(self, error: LanternError) -> None:
        """Nothing more can be delivered: every waiter gets `error`, and so does every publish."""
        self.fatal = error
        for item in self.pending.values():
            if not item.future.done():
                item.future.set_exception(error)
        self.pending.clear()
        self._changed()
        self._room.set()

    def _changed(self) -> None:
        if len(self.pending) < self.max_unacked:
            self._room.set()
        if not self.pending:
            self._empty.set()

    async def drained(self) -> None:
        """Until every event published so far is acked (or refused)."""
        await self._empty.wait()
        if self.fatal is not None:
            raise self.fatal


def http_base(url: str) -> str:
    return url.rstrip("/")


def socket_url(url: str, path: str, query: Dict[str, Any]) -> str:
    parts = urlsplit(url.rstrip("/"))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    q = urlencode({k: v for k, v in query.items() if v is not None})
    return urlunsplit((scheme, parts.netloc, parts.path + path, q, ""))


async def _stop(task: Optional["asyncio.Task[None]"]) -> None:
    """Cancel a transport's background task and wait until it is gone (whatever it raised is
    over: the outbox already told the waiters)."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass


class SocketTransport:
    """The agent socket, kept open: reconnects with backoff, resends what is unacked, and hands
    every event the server forwards (a person's input, answers, a cancel) to `on_forwarded`.

    `after` is asked for on each connect: the seq of the last forwarded event already handled,
    so the server sends only newer ones (PROTOCOL.md §3)."""

    def __init__(self, url: str, token: str, workflow: str, outbox: Outbox,
                 on_forwarded: Callable[[Dict[str, Any]], None], after: Callable[[], Optional[int]],
                 *, rate: float = 900, burst: float = 900, backoff: Optional[Backoff] = None,
                 give_up_after: Optional[float] = None):
        self.url, self.token, self.workflow = url, token, workflow
        self.outbox = outbox
        self.on_forwarded = on_forwarded
        self.after = after
        self.pacer = Pacer(rate, burst)
        self.backoff = backoff or Backoff()
        # How long the server may stay unreachable before pending publishes fail (None: forever;
        # the server fails the workflow itself once its grace period is over).
        self.give_up_after = give_up_after
        self._wake = asyncio.Event()
        # Ids published since the current connection began, not yet sent on it (a new
        # connection sends all of the outbox's pending instead, and starts this afresh).
        self._fresh: Deque[str] = deque()
        self._closing = False
        self._runner: Optional[asyncio.Task[None]] = None
        self.connections = 0  # how many times a connection was opened (for tests and logs)

    def queued(self, ident: str) -> None:
        """Event `ident` was added to the outbox: send it."""
        self._fresh.append(ident)
        self._wake.set()

    async def start(self) -> None:
        """Connect once (a refused token or an unknown workflow raises here, at once), then keep
        the connection up in the background."""
        ws = await self._connect()
        self._runner = asyncio.create_task(self._run(ws))

    async def close(self) -> None:
        self._closing = True
        await _stop(self._runner)

    async def _connect(self) -> Any:
        uri = socket_url(self.url, f"/ws/agent/{quote(self.workflow, safe='')}",
                         {"after": self.after()})
        try:
            ws = await websockets.connect(
                uri, additional_headers={"Authorization": f"Bearer {self.token}"},
                max_size=None, open_timeout=10)
        except InvalidStatus as refused:
            status = refused.response.status_code
            if status in (401, 403, 404):
                raise error_for_status(status, f"the agent socket of {self.workflow} answered "
                                       f"HTTP {status}") from refused
            raise
        self.connections += 1
        return ws

    async def _run(self, ws: Any) -> None:
        offline_since: Optional[float] = None
        while not self._closing:
            opened = time.monotonic()
            close_code = await self._serve(ws)
            self.backoff.connection_lasted(time.monotonic() - opened)
            if close_code in _FATAL_CLOSES:
                self.outbox.fail_all(_FATAL_CLOSES[close_code](
                    f"the server closed the agent socket with {close_code}"))
                return
            ws = None
            offline_since = time.monotonic()
            while ws is None and not self._closing:
                await asyncio.sleep(self.backoff.next_delay())
                try:
                    ws = await self._connect()
                except (Unauthorized, Forbidden, NotFound) as refused:
                    self.outbox.fail_all(refused)
                    return
                except (OSError, asyncio.TimeoutError, WebSocketException) as why:
                    log.info("lantern: reconnecting to %s failed: %s", self.url, why)
                    if (self.give_up_after is not None
                            and time.monotonic() - offline_since > self.give_up_after):
                        self.outbox.fail_all(Disconnected(
                            f"no connection to {self.url} for {self.give_up_after:.0f} s"))
                        return

    async def _serve(self, ws: Any) -> Optional[int]:
        """One connection: send what is unacked, then what is published, while reading acks and
        forwarded events. Returns the close code when it ends."""
        # Everything still unacked goes again, oldest first: the server acks the ones it already
        # has with their first seq.
        queue: Deque[str] = deque(self.outbox.pending.keys())
        self._fresh.clear()
        reader = asyncio.create_task(self._read(ws))
        writer = asyncio.create_task(self._write(ws, queue))
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                task.cancel()
            ended = await asyncio.gather(reader, writer, return_exceptions=True)
            await ws.close()
        for why in ended:
            if isinstance(why, Exception) and not isinstance(why, ConnectionClosed):
                log.error("lantern: the agent socket failed: %r", why)
        log.info("lantern: the agent socket closed (%s %s)", ws.close_code, ws.close_reason)
        return ws.close_code if ws.close_code is not None else None

    async def _write(self, ws: Any, queue: Deque[str]) -> None:
        fresh = self._fresh
        while True:
            while queue or fresh:
                item = self.outbox.pending.get(queue.popleft() if queue else fresh.popleft())
                if item is None:
                    continue  # acked or refused meanwhile
                await self.pacer.take()
                await ws.send(item.text)
            self._wake.clear()
            if not fresh:
                await self._wake.wait()

    async def _read(self, ws: Any) -> None:
        async for text in ws:
            try:
                frame = json.loads(text)
            except ValueError:
                log.warning("lantern: a frame that is not JSON: %.200s", text)
                continue
            kind = frame.get("type")
            if kind == "ack":
                self.outbox.settle(str(frame.get("id")), seq=frame.get("seq"))
            elif kind == "error":
                code = frame.get("code", "internal")
                ident = frame.get("id")
                if code == "rate_limited":
                    # Dropped frames: start over on a new connection, which resends every
                    # unacked event in order.
                    log.warning("lantern: rate limited; reconnecting to resend in order")
                    return
                item = self.outbox.pending.get(ident) if ident else None
                error = error_for(code, frame.get("message", ""),
                                  item.event if item else ({"id": ident} if ident else None))
                if item is not None:
                    self.outbox.settle(item.id, error=error)
                else:
                    log.warning("lantern: the server reported %s", error)
            elif kind in ("user_input", "interrupt_resolved", "workflow_status"):
                self.on_forwarded(frame)


class HttpTransport:
    """Publishing over `POST /api/workflows/{id}/events`, for where a WebSocket cannot go. Sends
    what is pending in batches (an array is appended all or nothing), retries a batch on a network
    error or a 5xx — safe, ids make it idempotent — and, when a batch is refused, sends its
    events one by one so that only the faulty one fails. Publishing only: an agent token may not
    read, so inputs and answers need the socket."""

    BATCH = 256

    def __init__(self, url: str, token: str, workflow: str, outbox: Outbox, *,
                 backoff: Optional[Backoff] = None, give_up_after: Optional[float] = None):
        self.endpoint = f"{http_base(url)}/api/workflows/{quote(workflow, safe='')}/events"
        self.outbox = outbox
        self.client = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                        timeout=30)
        self.backoff = backoff or Backoff()
        self.give_up_after = give_up_after
        self._wake = asyncio.Event()
        self._runner: Optional[asyncio.Task[None]] = None

    def queued(self, ident: str) -> None:
        """Event `ident` was added to the outbox: the next batch takes it."""
        self._wake.set()

    async def start(self) -> None:
        self._runner = asyncio.create_task(self._run())

    async def close(self) -> None:
        await _stop(self._runner)
        await self.client.aclose()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            if not self.outbox.pending:
                await self._wake.wait()
                continue
            batch = list(self.outbox.pending.values())[: self.BATCH]
            await self._deliver(batch)

    async def _deliver(self, batch: List[_Pending]) -> None:
        offline_since = None
        body = "[" + ",".join(item.text for item in batch) + "]"
        while True:
            try:
                answer = await self.client.post(
                    self.endpoint, content=body, headers={"Content-Type": "application/json"})
            except httpx.TransportError as why:
                answer = None
                log.info("lantern: posting events failed: %s", why)
            if answer is not None and answer.status_code < 500 and answer.status_code != 429:
                break
            offline_since = offline_since or time.monotonic()
            if (self.give_up_after is not None
                    and time.monotonic() - offline_since > self.give_up_after):
                self.outbox.fail_all(Disconnected(f"could not post events to {self.endpoint}"))
                return
            await asyncio.sleep(self.backoff.next_delay())
        self.backoff.attempt = 0
        if answer.status_code == 200:
            for item, seq in zip(batch, answer.json().get("seqs", [])):
                self.outbox.settle(item.id, seq=seq)
            return
        try:
            error = answer.json().get("error", {})
        except ValueError:
            error = {}
        code, message = error.get("code"), error.get("message", answer.text)
        if answer.status_code in (401, 404):  # the token or the workflow: every event alike
            self.outbox.fail_all(error_for(code, message) if code
                                 else error_for_status(answer.status_code, message))
            return
        if len(batch) > 1:
            for item in batch:  # find the faulty one; nothing of the batch was appended
                if item.id in self.outbox.pending:
                    await self._deliver([item])
            return
        item = batch[0]
        self.outbox.settle(item.id, error=error_for(code, message, item.event) if code
                           else error_for_status(answer.status_code, message, item.event))

