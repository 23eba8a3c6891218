"""``Timeout``: how long a client waits, per phase of an HTTP exchange and for a whole call.

``connect``, ``read``, ``write`` and ``pool`` are httpx's phase timeouts and apply to every
attempt: ``read`` is the longest silence between two chunks of the response (so a stream that
keeps sending is never cut by it, and a server that sends nothing for ``read`` seconds is).

``total`` bounds the whole logical call, from the first attempt to the last event: every attempt,
every wait between attempts and every read of a stream count against it. It is the retry budget
too: a retry whose wait would end after it is not made (the retry policy's own ``deadline`` applies
as well; the earlier of the two wins). A call that runs out of ``total`` raises ``APITimeoutError``
(or ``StreamInterruptedError`` once events reached the caller); it is never retried. ``None``
means no bound. The time a consumer spends between two events of a stream counts too: ``total`` is
the budget of the call as the caller experiences it.

``Timeout.coerce`` accepts a ``Timeout``, a number (the ``read`` timeout, the other fields keep
their defaults) or ``None`` (the defaults).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import httpx

from qwenkit._exceptions import UsageError

__all__ = ["DEFAULT_TIMEOUT", "Timeout"]


@dataclass(frozen=True, slots=True)
class Timeout:
    """Seconds to wait (``None``: no limit); see the module docstring."""

    connect: float | None = 10.0
    read: float | None = 300.0
    """Generous: a non-streaming call sends nothing until the whole answer is written."""
    write: float | None = 30.0
    pool: float | None = 30.0
    total: float | None = None
    """Off by default: a long streamed answer may rightly take many minutes."""

    def __post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool", "total"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise UsageError(f"timeout {name} must be positive or None, not {value!r}")

    def to_httpx(self) -> httpx.Timeout:
        """The per-attempt timeouts for httpx (``total`` is enforced by the client, not httpx)."""
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)

    @classmethod
    def coerce(cls, value: Timeout | float | None) -> Timeout:
        """A ``Timeout`` from a ``Timeout``, a number (the read timeout) or ``None`` (defaults)."""
        if value is None:
            return DEFAULT_TIMEOUT
        if isinstance(value, Timeout):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"timeout must be a Timeout, a number or None, not {value!r}")
        return replace(DEFAULT_TIMEOUT, read=float(value))


DEFAULT_TIMEOUT = Timeout()
