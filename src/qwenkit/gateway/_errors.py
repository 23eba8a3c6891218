"""Errors as the caller's wire format speaks them: ``GatewayError`` and ``error_info``.

Every failure a route can meet becomes an ``ErrorInfo`` (HTTP status, DashScope code, message,
request id), then a body in the caller's format (``_responses``): the OpenAI envelope on the
compatible routes, the DashScope envelope on the native ones, an SSE ``event:error`` inside a
stream. ``error_info`` maps the SDK's exceptions:

- the upstream's own error (``APIStatusError``): its status, code and message, as it said them
  (the upstream key is never in them: DashScope does not echo keys, and the gateway sends its
  own requests);
- a check of the pipeline before any network call (``ValidationError``: history, parameters,
  context length): 400 ``InvalidParameter``;
- ``BudgetExceededError``: 429 with its code (``BudgetExceeded``/``RateLimited``) and message;
- the upstream unreachable or too slow: 502 / 504;
- anything else: 500 ``InternalError`` with a fixed message (the exception is logged, never
  shown).
"""

from __future__ import annotations

import dataclasses
import logging

from qwenkit._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    BudgetExceededError,
    QwenError,
)
from qwenkit.streaming import StreamFailed
from qwenkit.types import ErrorInfo
from qwenkit.wire.errors import make_error

__all__ = ["GatewayError", "error_info"]

_log = logging.getLogger("qwenkit.gateway")


class GatewayError(Exception):
    """A request the gateway refuses, with the error to answer."""

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__(str(error))
        self.error = error

    @classmethod
    def of(cls, code: str, message: str, *, status: int | None = None) -> GatewayError:
        return cls(make_error(code, message, status=status))


def error_info(exc: BaseException, *, request_id: str | None = None) -> ErrorInfo:
    """The ``ErrorInfo`` to answer for ``exc``; see the module docstring."""
    if isinstance(exc, (GatewayError, StreamFailed)):
        info = exc.error
    elif isinstance(exc, BudgetExceededError):
        info = make_error(exc.code, str(exc), status=429)
    elif isinstance(exc, APIStatusError) and exc.status:
        info = make_error(exc.code or "InternalError", exc.message, status=exc.status)
    elif isinstance(exc, APITimeoutError):
        info = make_error("RequestTimeOut", "The upstream did not answer in time.", status=504)
    elif isinstance(exc, APIConnectionError):
        info = make_error("InternalError", "The upstream cannot be reached.", status=502)
    elif isinstance(exc, APIError):
        info = make_error(exc.code or "InternalError", exc.message, status=exc.status or 502)
    elif isinstance(exc, QwenError):  # a check before any network call (UsageError...)
        info = make_error("InvalidParameter", str(exc), status=400)
    else:
        _log.exception("gateway: unexpected error", exc_info=exc)
        info = make_error("InternalError", "An internal error has occurred.", status=500)
    if request_id is not None and info.request_id is None:
        info = dataclasses.replace(info, request_id=request_id)
    return info
