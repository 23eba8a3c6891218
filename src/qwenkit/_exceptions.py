"""The one exception tree of qwenkit. Catch ``QwenError`` to catch anything qwenkit raises.

::

    QwenError
    ├── UsageError (ValueError)            a caller's mistake, caught before any network call
    │   ├── ValidationError                a request that cannot be valid (history, parameters)
    │   ├── ConfigError                    settings or a config file that cannot be used
    │   ├── UnknownModelError (KeyError)   a model name the catalog does not know
    │   ├── UnknownTaskError               a task kind the router does not know
    │   ├── UnknownTokenizerError          no Qwen vocabulary for this name
    │   └── PriceUnavailableError (LookupError)
    ├── WireError (ValueError)             bytes or JSON that are not a valid message of a wire format
    │   ├── SSEProtocolError               a broken or over-long event stream
    │   ├── CompatError                    → CompatRequestError, CompatResponseError, CompatStreamError
    │   └── NativeError                    → NativeRequestError, NativeResponseError, NativeStreamError
    ├── BudgetExceededError                a budget or rate limit refused the call (nothing was sent)
    ├── StorageError                       a store (SQLite, PostgreSQL, Redis) that cannot be used
    ├── DataError                          a packaged or user data file that cannot be used
    │   ├── CatalogDataError (ValueError)
    │   └── VocabularyError (RuntimeError) a tokenizer rank file missing or not matching its hash
    ├── APIError                           a request that failed: status, code, message, request_id
    │   ├── APIStatusError                 the service answered with an error (any other status)
    │   │   ├── BadRequestError            400 (``InvalidParameter*``, ``BadRequest.*``, 413)
    │   │   │   └── ContentFilterError     ``DataInspectionFailed``: moderation refused the text
    │   │   ├── AuthenticationError        401 ``InvalidApiKey``
    │   │   ├── PermissionDeniedError      403 ``AccessDenied*``, ``AllocationQuota.FreeTierOnly``
    │   │   ├── NotFoundError              404 ``ModelNotFound``, ``WorkSpaceNotFound``
    │   │   ├── RateLimitError             429 ``Throttling*``
    │   │   └── ServerError                5xx
    │   ├── APIConnectionError             no response at all (DNS, connect, reset)
    │   │   └── APITimeoutError            the response (or its first byte) did not come in time
    │   └── StreamInterruptedError         a stream failed after bytes reached the caller
    └── StreamFailed                       (``qwenkit.streaming``) a stream that reported an error

Each subclass also derives from the builtin it used to be (``ValueError``, ``KeyError``...), so
``except ValueError`` keeps working.

``APIStatusError`` subclasses are chosen by ``error_from_info``: by the DashScope code first, then
by HTTP status. ``Arrearage`` (an overdue account) is an HTTP 400 and stays a ``BadRequestError``;
test ``error.code`` to tell it apart. ``retryable`` says whether the failure is transient (throttling,
500/502/503/504, 408, no response); the retry policy itself (``qwenkit._core.retries``) adds what
only the caller knows: whether bytes of a stream already reached the caller, and the budget.

``ValidationError`` shares its name with pydantic's; inside qwenkit it always means this class
(import it as ``qwenkit.ValidationError`` when both are in scope).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from qwenkit.types.errors import ErrorInfo
    from qwenkit.types.response import ChatResponse


class QwenError(Exception):
    """Base of every exception qwenkit raises."""


class UsageError(QwenError, ValueError):
    """The caller asked for something that cannot work; nothing was sent."""


class ValidationError(UsageError):
    """A request that cannot be valid (message history, tool schema, a parameter out of range),
    found before any network call. ``param`` names the offending field when there is one."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class WireError(QwenError, ValueError):
    """Data that is not a valid message of one of the wire formats."""


class DataError(QwenError):
    """A data file (catalog, routes, tokenizer ranks) that cannot be used."""


class StorageError(QwenError):
    """A store that cannot be used: unreachable at start, a schema too new, a corrupt file.
    ``url`` is the store's URL with any password masked."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class BudgetExceededError(QwenError):
    """A call refused before it was sent because it would pass a budget or a rate limit.

    ``scope`` names the budget (``key:<id>``, ``env:<name>``, ``sdk``...), ``kind`` which limit
    (``daily_cost``, ``requests_per_minute``, ``tokens_per_minute``); ``limit``, ``spent`` and
    ``reserved`` are in the budget's unit (money in the catalog's currency, or requests, or
    tokens), ``requested`` what this call asked to reserve; ``resets_at`` when the window starts
    again. ``code`` is ``"BudgetExceeded"`` or ``"RateLimited"`` (what the gateway sends in its
    429), ``request_id`` the call's id when it had one."""

    def __init__(
        self,
        message: str,
        *,
        scope: str,
        kind: str,
        limit: Decimal,
        spent: Decimal,
        reserved: Decimal,
        requested: Decimal,
        resets_at: datetime,
        currency: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.scope = scope
        self.kind = kind
        self.limit = limit
        self.spent = spent
        self.reserved = reserved
        self.requested = requested
        self.resets_at = resets_at
        self.currency = currency
        self.request_id = request_id
        self.code = "BudgetExceeded" if kind == "daily_cost" else "RateLimited"
        self.status = 429

    @property
    def retry_after(self) -> float:
        """Seconds until the window resets (never negative)."""
        return max(0.0, (self.resets_at - datetime.now(timezone.utc)).total_seconds())


# -- errors of a request ------------------------------------------------------------------------

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses of failures that may pass if the same request is sent again."""

PERMANENT_CODES = frozenset(
    {
        "Arrearage",
        "PrepaidBillOverdue",
        "PostpaidBillOverdue",  # seen with HTTP 429: still never worth a retry
        "AllocationQuota.FreeTierOnly",
        "AllocationQuota.FreeExceeded",
        "CommodityNotPurchased",
    }
)
"""Account and billing codes: whatever their status, sending again cannot help."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One failed attempt of a request. ``delay`` is the wait before the next one (``None`` on
    the last); ``elapsed`` the seconds since the first attempt started, when this one failed."""

    number: int
    error: str
    status: int | None
    code: str | None
    elapsed: float
    delay: float | None


class APIError(QwenError):
    """A request that failed. ``code`` is the DashScope native code, ``error`` the decoded
    ``ErrorInfo`` and ``body`` the decoded body when the service answered; ``attempts`` lists every
    attempt when the request was retried."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        error: ErrorInfo | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.error = error
        self.body = body
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        self.attempts: tuple[Attempt, ...] = ()

    @property
    def retryable(self) -> bool:
        """Whether sending the same request again may succeed."""
        return False

    def __str__(self) -> str:
        head = " ".join(str(part) for part in (self.status, self.code) if part is not None)
        text = f"{head}: {self.message}" if head else self.message
        return f"{text} (request_id {self.request_id})" if self.request_id else text


class APIStatusError(APIError):
    """The service answered with an error status."""

    default_status: ClassVar[int | None] = None
    default_code: ClassVar[str | None] = None
    permanent: ClassVar[bool] = False
    """True for classes whose errors never succeed on a retry (400, 401, 403, 404)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        error: ErrorInfo | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            message,
            status=status if status is not None else self.default_status,
            code=code if code is not None else self.default_code,
            request_id=request_id,
            error=error,
            body=body,
            headers=headers,
        )

    @property
    def retryable(self) -> bool:
        if self.permanent:
            return False
        return self.status in TRANSIENT_STATUSES and self.code not in PERMANENT_CODES


class BadRequestError(APIStatusError):
    """The request was refused as it is (HTTP 400: ``InvalidParameter``, ``Arrearage``...)."""

    default_status = 400

    permanent = True


class ContentFilterError(BadRequestError):
    """Moderation refused the input or the output (``DataInspectionFailed``)."""

    default_code = "DataInspectionFailed"


class AuthenticationError(APIStatusError):
    """The API key was refused (HTTP 401, ``InvalidApiKey``)."""

    default_status = 401

    permanent = True


class PermissionDeniedError(APIStatusError):
    """The key may not use this model or workspace (HTTP 403)."""

    default_status = 403

    permanent = True


class NotFoundError(APIStatusError):
    """No such model or workspace (HTTP 404)."""

    default_status = 404

    permanent = True


class RateLimitError(APIStatusError):
    """Throttled (HTTP 429, ``Throttling*``); retryable unless the code is about billing."""

    default_status = 429
    default_code = "Throttling"

    @property
    def retryable(self) -> bool:
        return self.code not in PERMANENT_CODES


class ServerError(APIStatusError):
    """The service failed (HTTP 5xx); 500, 502, 503 and 504 are retryable."""

    default_status = 500


class APIConnectionError(APIError):
    """No response: the connection could not be made or was lost before any answer."""

    def __init__(
        self, message: str = "Connection error.", *, request_id: str | None = None
    ) -> None:
        super().__init__(message, request_id=request_id)

    @property
    def retryable(self) -> bool:
        return True


class APITimeoutError(APIConnectionError):
    """The response, or its first byte, did not arrive in time."""

    def __init__(
        self, message: str = "Request timed out.", *, request_id: str | None = None
    ) -> None:
        super().__init__(message, request_id=request_id)


class StreamInterruptedError(APIError):
    """A stream failed after some of it reached the caller, so it was not retried. ``partial`` is
    the response assembled from what arrived; the cause (a timeout, a reset, an error event) is
    ``__cause__`` or, for an error the service sent, ``error``."""

    def __init__(
        self,
        message: str,
        *,
        partial: ChatResponse | None = None,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        error: ErrorInfo | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(
            message, status=status, code=code, request_id=request_id, error=error, body=body
        )
        self.partial = partial


def error_from_info(
    info: ErrorInfo, *, body: Any = None, headers: Mapping[str, str] | None = None
) -> APIStatusError:
    """The exception for an error the service reported: by DashScope code first, then by status."""
    cls = _class_for_code(info.code) or _class_for_status(info.status)
    return cls(
        info.message,
        status=info.status,
        code=info.code,
        request_id=info.request_id,
        error=info,
        body=body,
        headers=headers,
    )


def _class_for_code(code: str) -> type[APIStatusError] | None:
    parts = code.split(".")
    if "DataInspectionFailed" in parts:  # also InternalError.Algo.DataInspectionFailed
        return ContentFilterError
    if parts[0] == "Throttling":
        return RateLimitError
    if code == "InvalidApiKey":
        return AuthenticationError
    if code in ("ModelNotFound", "WorkSpaceNotFound"):
        return NotFoundError
    if "AccessDenied" in parts or code == "AllocationQuota.FreeTierOnly":
        return PermissionDeniedError
    if parts[0] == "BadRequest" or "InvalidParameter" in parts:  # BadRequest.TooLarge is a 413
        return BadRequestError
    return None


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: BadRequestError,
    429: RateLimitError,
}


def _class_for_status(status: int) -> type[APIStatusError]:
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIStatusError)
