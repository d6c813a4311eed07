"""What can go wrong, as exceptions: one per error code of the protocol (PROTOCOL.md §4), plus
the two ends a person can put to an agent's work (a cancelled workflow, a withdrawn question).

Every refusal names what was refused: the code and message the server gave, and the event's
type and id, so a log line says which publish failed and why.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional


class LanternError(Exception):
    """Base of every error this package raises."""

    code: str = "internal"

    def __init__(self, message: str, *, event: Optional[Mapping[str, Any]] = None):
        self.message = message
        # The event that was refused, when the error is about one (its `type` and `id` at least).
        self.event = dict(event) if event is not None else None
        super().__init__(self._describe())

    def _describe(self) -> str:
        if not self.event:
            return f"{self.code}: {self.message}"
        kind = self.event.get("type", "?")
        ident = self.event.get("id")
        what = f"{kind} (id {ident})" if ident else kind
        return f"{self.code}: {self.message} [refused: {what}]"


class BadRequest(LanternError):
    """The server could not read the event: a missing or mistyped field, an unknown type."""

    code = "bad_request"


class Unauthorized(LanternError):
    """The token is missing, wrong or revoked."""

    code = "unauthorized"


class Forbidden(LanternError):
    """A valid token of the wrong kind, or an agent doing what only people may do."""

    code = "forbidden"


class NotFound(LanternError):
    """No such workflow, or not one of the token's user's."""

    code = "not_found"


class Conflict(LanternError):
    """The event would break a rule of the log (PROTOCOL.md §1): closing a tool that is not open,
    publishing after the workflow ended, answering an interrupt twice."""

    code = "conflict"


class TooLarge(LanternError):
    """The event is over the server's size limit."""

    code = "too_large"


class RateLimited(LanternError):
    """The server refused frames for coming too fast (the SDK paces itself to avoid this)."""

    code = "rate_limited"


class Internal(LanternError):
    code = "internal"


class Cancelled(LanternError):
    """A person cancelled the workflow: the agent should stop. Raised by `ask()`, by publishing
    after the cancel, and by waiting on a run that was cancelled."""

    code = "cancelled"


class InterruptCancelled(LanternError):
    """The question was withdrawn (`interrupt_resolved` with status `cancelled`) rather than
    answered."""

    code = "interrupt_cancelled"


class Disconnected(LanternError):
    """The server could not be reached for longer than the run was told to keep trying."""

    code = "disconnected"


_BY_CODE = {
    cls.code: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, TooLarge, RateLimited,
                Internal)
}

_BY_STATUS = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
              413: TooLarge, 429: RateLimited}


def error_for(code: str, message: str, event: Optional[Mapping[str, Any]] = None) -> LanternError:
    """The exception for an `error` frame's or HTTP error body's code."""
    return _BY_CODE.get(code, Internal)(message, event=event)


def error_for_status(status: int, message: str,
                     event: Optional[Mapping[str, Any]] = None) -> LanternError:
    """The exception for an HTTP status when the body names no code."""
    return _BY_STATUS.get(status, Internal)(message, event=event)
